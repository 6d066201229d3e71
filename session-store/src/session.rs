//! A session and its stored format (described in `format.md`, shown in the crate docs).

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use databank_core::validate::{entry_size, object_size};
use databank_core::Revision;
use serde_json::{Map, Value};

use crate::SessionError;

/// The `format` field of every stored session.
pub const FORMAT: &str = "databank-session";
/// The `version` this crate writes and the highest it reads.
pub const VERSION: u64 = 2;
/// What precedes a session key in the stored record (version 2).
const KEY_PREFIX: &str = "d:";

/// A session: its data and its expiry, plus what the store needs to save only what changed.
///
/// ```
/// use databank_session_store::Session;
/// let mut session = Session::new();
/// session.insert("user", "ada");
/// assert_eq!(session.get("user"), Some(&serde_json::json!("ada")));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Session {
    /// The session's keys and values.
    pub data: Map<String, Value>,
    /// When the session stops being valid; `None` for never.
    pub expires_at: Option<DateTime<Utc>>,
    /// The revision and data as loaded, to tell what changed; `None` for a new session.
    /// (Shared: the framework adapters' token table holds the same one.)
    pub(crate) origin: Option<Arc<Origin>>,
}

/// What a session looked like when loaded: its revision and a fingerprint of each key's value,
/// enough to tell which keys this request set, changed or removed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Origin {
    pub revision: Revision,
    pub fingerprints: Fingerprints,
    /// The record is in an older format: the next save rewrites it whole.
    pub rewrite: bool,
}

impl Origin {
    pub fn of<'d>(
        revision: Revision,
        data: impl IntoIterator<Item = (&'d String, &'d Value)>,
    ) -> databank_core::Result<Self> {
        Ok(Self::with(revision, Fingerprints::of(data)?))
    }

    /// An origin from fingerprints already taken.
    pub fn with(revision: Revision, fingerprints: Fingerprints) -> Self {
        Origin {
            rewrite: false,
            revision,
            fingerprints,
        }
    }
}

/// A fingerprint of each key's value in some session data, in key order (by a hash of the
/// name, then the name: sorting thousands of keys compares integers, not strings): three
/// allocations whatever the number of keys (the names sit end to end in one string).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Fingerprints {
    /// Every key's name, one after another, in key order.
    names: String,
    /// For each key, in key order: where its name ends in `names`, the name's hash, and its
    /// value's fingerprint.
    prints: Vec<(usize, u64, u64)>,
    /// The size of the data as stored.
    encoded_size: usize,
}

/// One key where two sets of fingerprints differ (see [`Fingerprints::differences`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Difference<'a> {
    /// The key is new or its value changed.
    Set(&'a str),
    /// The key is gone.
    Removed(&'a str),
}

impl Fingerprints {
    /// The fingerprints of some data (a map's entries), and its encoded size, in one walk of
    /// it. Fails on a value nested too deep.
    pub fn of<'d>(
        data: impl IntoIterator<Item = (&'d String, &'d Value)>,
    ) -> databank_core::Result<Self> {
        let data = data.into_iter();
        // A framework's map filtered of the reserved key hints no length: room for a usual
        // session's keys from the start.
        let mut pairs: Vec<((u64, &str), u64)> = Vec::with_capacity(data.size_hint().0.max(16));
        let mut entries = 0;
        for (key, value) in data {
            let (print, size) = fingerprint(value)?;
            entries += entry_size(key, size) + KEY_PREFIX.len();
            pairs.push(((key_hash(key), key.as_str()), print));
        }
        pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut names = String::with_capacity(pairs.iter().map(|((_, key), _)| key.len()).sum());
        let prints = pairs
            .iter()
            .map(|((hash, key), print)| {
                names.push_str(key);
                (names.len(), *hash, *print)
            })
            .collect();
        let markers = entry_size("format", FORMAT.len() + 2) + entry_size("version", 1);
        Ok(Fingerprints {
            names,
            prints,
            encoded_size: object_size(markers + entries, 2 + pairs.len()),
        })
    }

    /// The size of the data as stored (see [`encode_data`]), in bytes of compact JSON.
    pub fn encoded_size(&self) -> usize {
        self.encoded_size
    }

    /// The number of keys.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.prints.len()
    }

    /// The `i`th key (its hash and name) and its fingerprint.
    fn entry(&self, i: usize) -> Option<((u64, &str), u64)> {
        let (end, hash, print) = *self.prints.get(i)?;
        let start = match i.checked_sub(1) {
            Some(before) => self.prints.get(before).map_or(0, |p| p.0),
            None => 0,
        };
        Some(((hash, self.names.get(start..end)?), print))
    }

    /// The keys, in order.
    #[cfg(test)]
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).filter_map(|i| self.entry(i).map(|((_, key), _)| key))
    }

    /// The fingerprint of `key`'s value.
    #[cfg(test)]
    pub fn get(&self, key: &str) -> Option<u64> {
        self.find(key_name(key)).map(|(_, print)| print)
    }

    /// Where the key `name` ([`key_name`]) sits in key order, and its value's fingerprint (a
    /// search comparing integers, and names only when their hashes tie).
    #[cfg(test)]
    pub fn find(&self, name: (u64, &str)) -> Option<(usize, u64)> {
        let (mut low, mut high) = (0, self.len());
        let key = name;
        while low < high {
            let middle = low + (high - low) / 2;
            let (name, print) = self.entry(middle)?;
            match name.cmp(&key) {
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
                std::cmp::Ordering::Equal => return Some((middle, print)),
            }
        }
        None
    }

    /// The keys set, changed or removed going from `self` to `now`, in key order (one walk of
    /// both, as both are sorted).
    pub fn differences<'a>(&'a self, now: &'a Fingerprints) -> Vec<Difference<'a>> {
        use std::cmp::Ordering::{Equal, Greater, Less};
        let (mut i, mut j) = (0, 0);
        let mut differences = Vec::new();
        loop {
            match (self.entry(i), now.entry(j)) {
                (Some((was, before)), Some((is, after))) => match was.cmp(&is) {
                    Less => {
                        differences.push(Difference::Removed(was.1));
                        i += 1;
                    }
                    Greater => {
                        differences.push(Difference::Set(is.1));
                        j += 1;
                    }
                    Equal => {
                        if before != after {
                            differences.push(Difference::Set(is.1));
                        }
                        i += 1;
                        j += 1;
                    }
                },
                (Some((was, _)), None) => {
                    differences.push(Difference::Removed(was.1));
                    i += 1;
                }
                (None, Some((is, _))) => {
                    differences.push(Difference::Set(is.1));
                    j += 1;
                }
                (None, None) => return differences,
            }
        }
    }
}

/// What a request changed in a session since it was loaded: the stored keys to set (with the
/// values `data` holds for them) and to remove. `now` is `data`'s fingerprints.
pub(crate) fn changes<'d>(
    origin: &Fingerprints,
    now: &Fingerprints,
    data: impl IntoIterator<Item = (&'d String, &'d Value)>,
) -> (Vec<(String, &'d Value)>, Vec<String>) {
    let differences = origin.differences(now);
    let mut remove = Vec::new();
    let mut set_keys = Vec::new();
    for difference in &differences {
        match difference {
            Difference::Set(key) => set_keys.push(*key),
            Difference::Removed(key) => remove.push(stored_key(key)),
        }
    }
    set_keys.sort_unstable();
    let set = if set_keys.is_empty() {
        Vec::new()
    } else {
        data.into_iter()
            .filter(|(key, _)| set_keys.binary_search(&key.as_str()).is_ok())
            .map(|(key, value)| (stored_key(key), value))
            .collect()
    };
    (set, remove)
}

/// A hash of a value, equal for equal JSON values (object keys in any order, `-0.0` and `0.0`),
/// stable within this process, and the value's size as compact JSON (taken in the same walk). Walks the value: no canonical text is built. The hash is
/// foldhash's (several times faster than SipHash on kilobytes of text), seeded once per process
/// from the OS's random source, so values that collide cannot be chosen ahead of time.
fn fingerprint(value: &Value) -> databank_core::Result<(u64, usize)> {
    use std::hash::BuildHasher;
    let mut hasher = hash_state().build_hasher();
    // A session key's value sits two levels down in the stored record.
    let size = hash_and_measure(value, 2, &mut hasher)?;
    Ok((hasher.finish(), size))
}

/// A key as [`Fingerprints`] order it: its hash, then itself (hashed once, searched in as
/// many sets of fingerprints as needed).
#[cfg(test)]
fn key_name(key: &str) -> (u64, &str) {
    (key_hash(key), key)
}

/// A hash of a key's name (it orders [`Fingerprints`]), or of a session id (the token table
/// keeps it to check a token is used with its own session): seeded per process.
pub(crate) fn key_hash(key: &str) -> u64 {
    use std::hash::BuildHasher;
    hash_state().hash_one(key)
}

/// The hasher of fingerprints: seeded once per process.
fn hash_state() -> &'static foldhash::quality::FixedState {
    static STATE: std::sync::OnceLock<foldhash::quality::FixedState> = std::sync::OnceLock::new();
    STATE.get_or_init(|| {
        let mut seed = [0u8; 8];
        // Without the OS's random source the seed is the address layout's: still per process.
        if getrandom::fill(&mut seed).is_err() {
            seed = (&seed as *const _ as usize as u64).to_le_bytes();
        }
        foldhash::quality::FixedState::with_seed(u64::from_le_bytes(seed))
    })
}

/// Adds a value to a hash and returns its size in bytes of compact JSON, in one walk; fails
/// with `InvalidInput` on a value nested past [`MAX_DEPTH`](databank_core::validate::MAX_DEPTH)
/// (`depth` is the value's: 1 for a record, 2 for a session key's value).
fn hash_and_measure(
    value: &Value,
    depth: usize,
    h: &mut impl Hasher,
) -> databank_core::Result<usize> {
    use databank_core::validate::{escaped_len, json_size, MAX_DEPTH};
    if depth > MAX_DEPTH {
        return Err(databank_core::Error::InvalidInput(format!(
            "a session value is nested more than {MAX_DEPTH} levels deep"
        )));
    }
    Ok(match value {
        Value::Null => {
            0u8.hash(h);
            4
        }
        Value::Bool(b) => {
            (1u8, b).hash(h);
            4 + usize::from(!*b)
        }
        Value::Number(n) => {
            2u8.hash(h);
            match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => (0u8, u).hash(h),
                (None, Some(i), _) => (1u8, i).hash(h),
                // `+ 0.0` turns -0.0 into 0.0, which equals it as a JSON value.
                (None, None, Some(f)) => (2u8, (f + 0.0).to_bits()).hash(h),
                _ => n.to_string().hash(h),
            }
            json_size(value)?
        }
        Value::String(s) => {
            (3u8, s).hash(h);
            escaped_len(s)
        }
        Value::Array(items) => {
            (4u8, items.len()).hash(h);
            let mut size = 2 + items.len().saturating_sub(1);
            for item in items {
                size += hash_and_measure(item, depth + 1, h)?;
            }
            size
        }
        Value::Object(map) => {
            (5u8, map.len()).hash(h);
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            let mut size = 2 + map.len().saturating_sub(1);
            for (key, item) in entries {
                key.hash(h);
                size += escaped_len(key) + 1 + hash_and_measure(item, depth + 1, h)?;
            }
            size
        }
    })
}

impl Session {
    /// An empty session with no expiry.
    pub fn new() -> Self {
        Session::default()
    }

    /// A session with this data and expiry, not loaded from any store.
    pub fn with_data(data: Map<String, Value>, expires_at: Option<DateTime<Utc>>) -> Self {
        Session {
            data,
            expires_at,
            origin: None,
        }
    }

    /// The value of a key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.data.get(key)
    }

    /// Sets a key, returning the previous value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) -> Option<Value> {
        self.data.insert(key.into(), value.into())
    }

    /// Removes a key, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.data.remove(key)
    }

    /// The revision the session was loaded at, if it came from a store.
    pub fn revision(&self) -> Option<Revision> {
        self.origin.as_ref().map(|o| o.revision)
    }
}

/// The key under which the framework adapters carry a session's origin token inside the
/// framework's own session data between `load` and `save` (frameworks give a store nothing
/// else to carry it in). Adapters add it on load and take it out on save; it is never stored.
/// See the crate docs, "The reserved key".
pub const ORIGIN_KEY: &str = "__databank_origin";

/// The stored name of a session key.
pub(crate) fn stored_key(key: &str) -> String {
    let mut stored = String::with_capacity(KEY_PREFIX.len() + key.len());
    stored.push_str(KEY_PREFIX);
    stored.push_str(key);
    stored
}

/// Encodes a session as its stored JSON value (version 2).
pub fn encode(session: &Session) -> Value {
    encode_data(&session.data)
}

/// Encodes session data (a map's entries) as a stored JSON value (version 2).
pub(crate) fn encode_data<'d>(data: impl IntoIterator<Item = (&'d String, &'d Value)>) -> Value {
    let mut fields = Map::new();
    fields.insert("format".into(), Value::from(FORMAT));
    fields.insert("version".into(), Value::from(VERSION));
    for (key, value) in data {
        fields.insert(stored_key(key), value.clone());
    }
    Value::Object(fields)
}

/// Decodes a stored JSON value (version 1 or 2) into session data (the caller sets the expiry
/// and origin).
pub fn decode(value: Value) -> Result<Map<String, Value>, SessionError> {
    decode_versioned(value).map(|(data, _)| data)
}

/// [`decode`] into any map type, with the version the record was stored in.
pub(crate) fn decode_versioned<C: FromIterator<(String, Value)>>(
    value: Value,
) -> Result<(C, u64), SessionError> {
    let Value::Object(mut fields) = value else {
        return Err(SessionError::Corrupt(
            "a session must be a JSON object".into(),
        ));
    };
    if fields.get("format").and_then(Value::as_str) != Some(FORMAT) {
        return Err(SessionError::Corrupt(format!("format is not {FORMAT:?}")));
    }
    match fields.get("version").and_then(Value::as_u64) {
        Some(1) => match fields.remove("data") {
            Some(Value::Object(data)) => Ok((data.into_iter().collect(), 1)),
            _ => Err(SessionError::Corrupt("data is not an object".into())),
        },
        Some(VERSION) => {
            // Counted first, so that the map is made at its size (no regrowth and rehashing).
            let keys = fields.keys().filter(|k| k.starts_with(KEY_PREFIX)).count();
            let data = fields.into_iter().filter_map(|(mut key, value)| {
                // The prefix goes in place: no new string per key.
                key.starts_with(KEY_PREFIX).then(|| {
                    key.replace_range(..KEY_PREFIX.len(), "");
                    (key, value)
                })
            });
            Ok((Counted { data, left: keys }.collect(), VERSION))
        }
        other => Err(SessionError::Corrupt(format!(
            "version {other:?} is not one this store reads (1 to {VERSION})"
        ))),
    }
}

/// An iterator that yields exactly `left` more items and says so, so that a map collected from
/// it is allocated once at its size.
struct Counted<I> {
    data: I,
    left: usize,
}

impl<I: Iterator> Iterator for Counted<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let item = self.data.next()?;
        self.left = self.left.saturating_sub(1);
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn fingerprints_follow_json_equality() {
        let f = |v: serde_json::Value| fingerprint(&v).map(|(print, _)| print).ok();
        assert_eq!(f(json!(-0.0)), f(json!(0.0)));
        assert_eq!(
            f(json!({"a": 1, "b": [true, null]})),
            f(json!({"b": [true, null], "a": 1}))
        );
        assert_ne!(f(json!(1)), f(json!("1")));
        assert_ne!(f(json!(1)), f(json!(1.0)));
        assert_ne!(f(json!(["a", "b"])), f(json!(["ab"])));
        assert_ne!(f(json!({"a": "b"})), f(json!(["a", "b"])));
    }

    use super::*;

    #[test]
    fn round_trips() -> Result<(), SessionError> {
        let mut s = Session::new();
        s.insert("user", "ada");
        s.insert("n", json!([1, {"a": null}]));
        assert_eq!(decode(encode(&s))?, s.data);
        assert_eq!(encode(&s)["format"], FORMAT);
        Ok(())
    }

    #[test]
    fn refuses_foreign_and_future_records() {
        for bad in [
            json!(null),
            json!("x"),
            json!({"data": {}}),
            json!({"format": FORMAT, "version": 3, "d:a": {}}),
            json!({"format": FORMAT, "version": 1, "data": []}),
        ] {
            assert!(
                matches!(decode(bad.clone()), Err(SessionError::Corrupt(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn changes_are_what_this_session_did() -> Result<(), SessionError> {
        let mut loaded = Map::new();
        loaded.insert("keep".into(), json!(1));
        loaded.insert("drop".into(), json!(2));
        loaded.insert("change".into(), json!(3));
        let mut s = Session::with_data(loaded.clone(), None);
        let origin = Fingerprints::of(&loaded)?;
        s.remove("drop");
        s.insert("change", 30);
        s.insert("mine", true);
        let now = Fingerprints::of(&s.data)?;
        let (set, remove) = changes(&origin, &now, &s.data);
        let set: Map<String, Value> = set.into_iter().map(|(k, v)| (k, v.clone())).collect();
        assert_eq!(Value::Object(set), json!({"d:change": 30, "d:mine": true}));
        assert_eq!(remove, vec!["d:drop".to_owned()]);
        assert!(changes(&now, &now, &s.data) == (Vec::new(), Vec::new()));
        Ok(())
    }

    #[test]
    fn fingerprints_find_every_key() -> Result<(), SessionError> {
        let mut data = Map::new();
        for key in ["", "b", "a", "ab", "é", "a.b", "\0"] {
            data.insert(key.to_owned(), json!(key));
        }
        let prints = Fingerprints::of(&data)?;
        assert_eq!(prints.len(), data.len());
        for (key, value) in &data {
            assert_eq!(
                prints.get(key),
                fingerprint(value).ok().map(|(print, _)| print),
                "{key:?}"
            );
        }
        assert_eq!(prints.get("c"), None);
        let mut keys: Vec<&str> = data.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut found: Vec<&str> = prints.keys().collect();
        found.sort_unstable();
        assert_eq!(found, keys);
        assert!(Fingerprints::of(&Map::new())?.differences(&prints).len() == data.len());
        Ok(())
    }

    #[test]
    fn deep_values_are_refused_without_overflow() {
        let mut deep = json!(1);
        for _ in 0..10_000 {
            deep = Value::Array(vec![deep]);
        }
        let mut data = Map::new();
        data.insert("deep".into(), deep);
        assert!(matches!(
            Fingerprints::of(&data),
            Err(databank_core::Error::InvalidInput(_))
        ));
    }

    #[test]
    fn reads_version_1() -> Result<(), SessionError> {
        let v1 = json!({"format": FORMAT, "version": 1, "data": {"user": "ada", "d:x": 1}});
        let data = decode(v1)?;
        assert_eq!(Value::Object(data), json!({"user": "ada", "d:x": 1}));
        Ok(())
    }

    #[test]
    fn encoded_size_is_exact() -> Result<(), SessionError> {
        let mut s = Session::new();
        assert_eq!(
            Fingerprints::of(&s.data)?.encoded_size(),
            encode(&s).to_string().len()
        );
        s.insert("user", "ada\n");
        s.insert("", json!({"a": [1, 2.5]}));
        assert_eq!(
            Fingerprints::of(&s.data)?.encoded_size(),
            encode(&s).to_string().len()
        );
        Ok(())
    }
}
