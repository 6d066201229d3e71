//! The key layout; the table and the reasoning are in `layout.md`, shown in the crate docs.
//!
//! A type's records are spread over [`BUCKETS`] buckets by a hash of the id; every key of one
//! bucket carries the same hash tag `{<type>:<bucket>}`, so a record, its expiry entry and its
//! index entries share a Redis Cluster slot and every script touches one slot.

use databank_core::driver::{canonical, lookup};
use serde_json::Value;

/// How many buckets a type's records are spread over (see the key layout). Part of the layout:
/// changing it would move every record, so it is fixed.
pub const BUCKETS: u32 = 64;

/// The bucket an id's record lives in: FNV-1a (32 bits) of its bytes, modulo [`BUCKETS`].
/// Part of the layout.
///
/// ```
/// assert!(databank_redis::bucket("session-1") < databank_redis::BUCKETS);
/// ```
pub fn bucket(id: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in id.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % BUCKETS
}

/// The keys of one bank.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_owned(),
        }
    }

    /// A key of one bucket: `<prefix>:{<type>:<bucket>}:` then `tail`, built in one
    /// allocation (keys are built on every call).
    fn bucket_key(&self, kind: &str, bucket: u32, tail: &[&str]) -> String {
        use std::fmt::Write as _;
        let tail_len: usize = tail.iter().map(|part| part.len()).sum();
        let mut key = String::with_capacity(self.prefix.len() + kind.len() + 16 + tail_len);
        // Writing to a `String` cannot fail.
        let _ = write!(key, "{}:{{{kind}:{bucket}}}:", self.prefix);
        for part in tail {
            key.push_str(part);
        }
        key
    }

    /// What every key of one bucket starts with: `<prefix>:{<type>:<bucket>}:`.
    pub fn bucket_prefix(&self, kind: &str, bucket: u32) -> String {
        self.bucket_key(kind, bucket, &[])
    }

    /// What the record keys of one bucket start with (the id follows).
    pub fn record_prefix(&self, kind: &str, bucket: u32) -> String {
        self.bucket_key(kind, bucket, &["r:"])
    }

    pub fn record(&self, kind: &str, id: &str) -> Vec<u8> {
        self.bucket_key(kind, bucket(id), &["r:", id]).into_bytes()
    }

    /// The sorted set of a bucket's ids, scored by expiry.
    pub fn members(&self, kind: &str, bucket: u32) -> Vec<u8> {
        self.bucket_key(kind, bucket, &["z"]).into_bytes()
    }

    /// The hash of a bucket's ids to the index keys holding them.
    pub fn index_lists(&self, kind: &str, bucket: u32) -> Vec<u8> {
        self.bucket_key(kind, bucket, &["x"]).into_bytes()
    }

    /// The three keys every write of an id touches: record, members, index lists.
    pub fn of_record(&self, kind: &str, id: &str) -> Vec<Vec<u8>> {
        let b = bucket(id);
        vec![
            self.record(kind, id),
            self.members(kind, b),
            self.index_lists(kind, b),
        ]
    }

    pub fn index(&self, kind: &str, bucket: u32, field: &str, value: &Value) -> Vec<u8> {
        format!(
            "{}{}",
            self.index_prefix(kind, bucket, field),
            canonical(value)
        )
        .into_bytes()
    }

    /// What every index key of one field in one bucket starts with.
    pub fn index_prefix(&self, kind: &str, bucket: u32, field: &str) -> String {
        format!(
            "{}i:{}:{field}:",
            self.bucket_prefix(kind, bucket),
            field.len()
        )
    }

    /// The index keys a value of `id` belongs in, for the given indexed fields.
    pub fn indices_of(
        &self,
        kind: &str,
        id: &str,
        fields: &[String],
        value: &Value,
    ) -> Vec<Vec<u8>> {
        let b = bucket(id);
        fields
            .iter()
            .filter_map(|field| Some(self.index(kind, b, field, lookup(value, field)?)))
            .collect()
    }

    /// The `SCAN` pattern of every bucket's sorted set, of every type.
    pub fn members_pattern(&self) -> String {
        format!("{}:\\{{*\\}}:z", self.prefix)
    }

    /// The type a key matched by [`Keys::members_pattern`] belongs to.
    pub fn kind_of_members<'k>(&self, key: &'k [u8]) -> Option<&'k str> {
        let rest = key
            .strip_prefix(self.prefix.as_bytes())?
            .strip_prefix(b":{")?;
        let rest = std::str::from_utf8(rest.strip_suffix(b"}:z")?).ok()?;
        let (kind, bucket) = rest.rsplit_once(':')?;
        bucket.parse::<u32>().ok().filter(|b| *b < BUCKETS)?;
        Some(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_with_colons_cannot_collide() {
        let k = Keys::new("p");
        assert_ne!(
            k.index("t", 1, "a:b", &json!("c")),
            k.index("t", 1, "a", &json!("b:c"))
        );
        assert_eq!(
            k.index("t", 7, "a", &json!({"y": 1, "x": 2})),
            br#"p:{t:7}:i:1:a:{"x":2,"y":1}"#.to_vec()
        );
    }

    #[test]
    fn ids_stand_last_and_share_their_bucket_tag() {
        let k = Keys::new("p");
        let b = bucket("a:b*");
        assert_eq!(
            k.record("t", "a:b*"),
            format!("p:{{t:{b}}}:r:a:b*").into_bytes()
        );
        assert_ne!(k.record("t", "x"), k.record("tx", ""));
        let keys = k.of_record("t", "a:b*");
        assert!(keys
            .iter()
            .all(|key| key.starts_with(format!("p:{{t:{b}}}:").as_bytes())));
    }

    #[test]
    fn keys_built_in_place_match_the_prefixes() {
        let k = Keys::new("app");
        for b in [0, 9, 10, 63, 1234] {
            assert_eq!(
                k.members("t", b),
                format!("{}z", k.bucket_prefix("t", b)).into_bytes()
            );
            assert_eq!(
                k.index_lists("t", b),
                format!("{}x", k.bucket_prefix("t", b)).into_bytes()
            );
        }
        let b = bucket("id-7");
        assert_eq!(
            k.record("t", "id-7"),
            format!("{}id-7", k.record_prefix("t", b)).into_bytes()
        );
    }

    #[test]
    fn buckets_are_fixed_and_spread() {
        // The layout depends on these never changing.
        assert_eq!(bucket(""), 0x811c_9dc5 % BUCKETS);
        assert_eq!(bucket("a"), 0xe40c_292c % BUCKETS);
        let mut seen = std::collections::HashSet::new();
        for i in 0..1000 {
            seen.insert(bucket(&format!("session-{i}")));
        }
        assert_eq!(seen.len(), BUCKETS as usize);
    }

    #[test]
    fn members_keys_name_their_type() {
        let k = Keys::new("p");
        assert_eq!(
            k.kind_of_members(&k.members("my-type", 63)),
            Some("my-type")
        );
        assert_eq!(k.kind_of_members(b"p:{t:64}:z"), None);
        assert_eq!(k.kind_of_members(b"q:{t:1}:z"), None);
        assert_eq!(k.members_pattern(), "p:\\{*\\}:z");
    }
}
