//! How a record is stored: its document key and its JSON document (see `layout.md`).

use databank_core::driver::{canonical, index_field, lookup};
use databank_core::driver::{json_size, MAX_VALUE_BYTES};
use databank_core::driver::{record, DateTime, Utc};
use databank_core::{Error, Expiry, Record, Revision};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// Couchbase's limit on a document key, in bytes.
pub const MAX_KEY_BYTES: usize = 250;

/// The document key of a record, given its type tag (the type, or `<prefix>:<type>`):
/// `<type>::<id>`, or `<type>::#<sha-256 of the id in hex>` when
/// the id would not make a plain key (too long, a control character, or a leading `#`).
///
/// Type names and prefixes hold no `:` (a tag has at most one, between them), so the first `::`
/// always ends the tag; a plain key never starts its
/// id part with `#`, so a plain key and a hashed key never meet.
pub fn key(tag: &str, id: &str) -> String {
    let plain = tag.len() + 2 + id.len() <= MAX_KEY_BYTES
        && !id.starts_with('#')
        && !id.chars().any(char::is_control);
    if plain {
        format!("{tag}::{id}")
    } else {
        let digest = Sha256::digest(id.as_bytes());
        let mut key = format!("{tag}::#");
        for b in digest {
            key.push_str(&format!("{b:02x}"));
        }
        key
    }
}

/// The document for a record: `{"t", "id", "v", "r", "e", "ix", "p"}`, `t` being the type tag
/// and `p` the guards a patch checks (see `patch.rs`).
pub fn to_document(
    tag: &str,
    id: &str,
    value: &Value,
    revision: Revision,
    expires_at: Expiry,
    indexed: &[String],
) -> Value {
    let mut ix = Map::new();
    for path in indexed {
        if let Some(found) = lookup(value, path) {
            ix.insert(index_field(path), Value::String(canonical(found)));
        }
    }
    // A value that cannot be measured leaves no budget: its patches go the read-and-write way.
    let size = json_size(value).unwrap_or(MAX_VALUE_BYTES);
    json!({
        "t": tag,
        "id": id,
        "v": value,
        "r": revision.get(),
        "e": expires_at.map(|at| at.timestamp_millis()),
        "ix": ix,
        "p": {"g": expiry_guard(expires_at), "q": size_budget(size)},
    })
}

/// What a stored document holds, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// The record's id (the key may be a hash of it).
    pub id: String,
    /// The value, revision and expiry.
    pub record: Record,
}

/// Reads a document back; anything that is not our layout (or another tag's) is
/// [`Error::Corrupt`].
pub fn from_document(tag: &str, key: &str, document: Value) -> Result<Stored, Error> {
    let corrupt = |reason: &str| Error::Corrupt {
        location: format!("couchbase document {key:?}"),
        reason: reason.to_owned(),
    };
    let Value::Object(mut map) = document else {
        return Err(corrupt("not a JSON object"));
    };
    if map.get("t").and_then(Value::as_str) != Some(tag) {
        return Err(corrupt("its t field does not name this type"));
    }
    let id = match map.remove("id") {
        Some(Value::String(id)) => id,
        _ => return Err(corrupt("id is not a string")),
    };
    let revision = map
        .get("r")
        .and_then(Value::as_u64)
        .ok_or_else(|| corrupt("r is not an unsigned integer"))?;
    let expires_at = match map.get("e") {
        None | Some(Value::Null) => None,
        Some(e) => Some(
            e.as_i64()
                .and_then(DateTime::<Utc>::from_timestamp_millis)
                .ok_or_else(|| corrupt("e is not a time in milliseconds"))?,
        ),
    };
    let value = map.remove("v").ok_or_else(|| corrupt("v is missing"))?;
    Ok(Stored {
        id,
        record: record(value, Revision::new(revision), expires_at),
    })
}

/// What `p.g` (the expiry guard, see `patch.rs`) holds for a record expiring at `expires_at`.
pub fn expiry_guard(expires_at: Expiry) -> i64 {
    match expires_at {
        // For an expiry at or before 1970 this saturates to `i64::MAX`: always expired.
        Some(at) => i64::MAX.saturating_sub(at.timestamp_millis().saturating_sub(1)),
        None => 0,
    }
}

/// What `p.q` (the size budget, see `patch.rs`) holds for a value of `size` bytes.
pub fn size_budget(size: usize) -> i64 {
    let size = i64::try_from(size.min(MAX_VALUE_BYTES)).unwrap_or(i64::MAX);
    i64::MAX - MAX_VALUE_BYTES as i64 + size
}

/// The SDK's expiry for a record: whole seconds from now, rounded up (Couchbase counts in
/// seconds; the exact time is in `e` and checked on every read). `None` keeps it forever.
pub fn server_expiry(expires_at: Expiry, now: DateTime<Utc>) -> Option<std::time::Duration> {
    let at = expires_at?;
    let ms = (at - now).num_milliseconds().max(1) as u64;
    Some(std::time::Duration::from_secs(ms.div_ceil(1000)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_ids_make_distinct_plain_keys() {
        let ids = [
            "a::b",
            "a",
            "a:",
            ":a",
            "a/b",
            "../x",
            "a b",
            "😀",
            "A",
            "a\u{200f}",
            "%41",
        ];
        let keys: std::collections::HashSet<String> = ids.iter().map(|id| key("t", id)).collect();
        assert_eq!(keys.len(), ids.len());
        assert_eq!(key("session", "a::b"), "session::a::b");
        // `session::x` + `y` would make the same key, but a type name can hold no `:`.
        assert!(databank_core::driver::validate::kind("session::x").is_err());
    }

    #[test]
    fn long_control_and_hash_like_ids_are_hashed_and_distinct() {
        let long = "é".repeat(512);
        for id in [long.as_str(), "nul\0id", "tab\tid", "#abc"] {
            let k = key("session", id);
            assert!(k.starts_with("session::#"), "{k}");
            assert_eq!(k.len(), "session::#".len() + 64);
            assert!(k.len() <= MAX_KEY_BYTES);
        }
        assert_ne!(key("t", "nul\0id"), key("t", "nul\0id2"));
        // A plain id that looks like a hashed key is itself hashed, so it cannot collide.
        let hashed = key("t", "\0");
        let forged_id = hashed.trim_start_matches("t::");
        assert_ne!(key("t", forged_id), hashed);
        // The longest plain key.
        let id = "x".repeat(MAX_KEY_BYTES - 3);
        assert_eq!(key("t", &id).len(), MAX_KEY_BYTES);
        assert!(key("t", &format!("{id}x")).starts_with("t::#"));
    }

    #[test]
    fn documents_round_trip() -> Result<(), Error> {
        let at = DateTime::<Utc>::from_timestamp_millis(1_800_000_000_123);
        let value = json!({"user": {"name": "ann"}, "n": u64::MAX, "f": -1.5e-300});
        let doc = to_document(
            "session",
            "a\0b",
            &value,
            Revision::new(7),
            at,
            &["user.name".into(), "missing".into()],
        );
        assert_eq!(doc["ix"], json!({ index_field("user.name"): "\"ann\"" }));
        let back = from_document("session", "k", doc)?;
        assert_eq!(back.id, "a\0b");
        assert_eq!(back.record, record(value, Revision::new(7), at));
        Ok(())
    }

    #[test]
    fn foreign_documents_are_corrupt() {
        let good = to_document("t", "i", &json!(1), Revision::new(1), None, &[]);
        let mut cases = vec![json!("text"), json!([1]), json!({"t": "t"})];
        for (field, bad) in [
            ("t", json!("other")),
            ("id", json!(5)),
            ("r", json!(-1)),
            ("e", json!("soon")),
        ] {
            let mut doc = good.clone();
            doc[field] = bad;
            cases.push(doc);
        }
        let mut no_value = good.clone();
        if let Some(map) = no_value.as_object_mut() {
            map.remove("v");
        }
        cases.push(no_value);
        for doc in cases {
            assert!(
                matches!(
                    from_document("t", "k", doc.clone()),
                    Err(Error::Corrupt { .. })
                ),
                "{doc}"
            );
        }
    }

    #[test]
    fn server_expiry_rounds_up_to_whole_seconds() {
        let now = Utc::now();
        let secs = |ms: i64| {
            server_expiry(
                Some(now + databank_core::driver::chrono::Duration::milliseconds(ms)),
                now,
            )
            .map(|d| d.as_secs())
        };
        assert_eq!(secs(1), Some(1));
        assert_eq!(secs(1_000), Some(1));
        assert_eq!(secs(1_001), Some(2));
        assert_eq!(secs(-5_000), Some(1));
        assert_eq!(server_expiry(None, now), None);
    }

    #[test]
    fn guards_overflow_exactly_at_their_limits() {
        let at = DateTime::<Utc>::from_timestamp_millis(1_000).expect("a time");
        let guard = expiry_guard(Some(at));
        assert!(
            guard.checked_add(999).is_some(),
            "live a millisecond before"
        );
        assert!(
            guard.checked_add(1_000).is_none(),
            "expired at its millisecond"
        );
        assert_eq!(expiry_guard(None), 0);
        let long_ago = DateTime::<Utc>::from_timestamp_millis(-5).expect("a time");
        assert_eq!(expiry_guard(Some(long_ago)), i64::MAX);
        let budget = size_budget(100);
        assert!(budget.checked_add((MAX_VALUE_BYTES - 100) as i64).is_some());
        assert!(budget.checked_add((MAX_VALUE_BYTES - 99) as i64).is_none());
    }
}
