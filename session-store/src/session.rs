//! A session and its stored format (described in `format.md`, shown in the crate docs).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use chrono::{DateTime, Utc};
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
    pub fingerprints: HashMap<String, u64>,
    /// The record is in an older format: the next save rewrites it whole.
    pub rewrite: bool,
}

impl Origin {
    pub fn of(revision: Revision, data: &Map<String, Value>) -> Self {
        Self::with(
            revision,
            data.iter()
                .map(|(k, v)| (k.clone(), fingerprint(v)))
                .collect(),
        )
    }

    /// An origin from fingerprints already taken (see [`Changes::fingerprints`]).
    pub fn with(revision: Revision, fingerprints: HashMap<String, u64>) -> Self {
        Origin {
            rewrite: false,
            revision,
            fingerprints,
        }
    }
}

/// Of the versions a token names (oldest first), the one `data` differs least from: keys whose
/// value differs or that only one side has. That is the version the request started from
/// (what it changed is small), so a patch against it never undoes another request's save;
/// on a tie the newest wins.
pub(crate) fn closest(versions: &[Arc<Origin>], data: &Map<String, Value>) -> Option<Arc<Origin>> {
    if versions.len() <= 1 {
        return versions.first().cloned();
    }
    let now: Vec<(&String, u64)> = data.iter().map(|(k, v)| (k, fingerprint(v))).collect();
    versions
        .iter()
        .rev()
        .min_by_key(|version| {
            let differing = now
                .iter()
                .filter(|(key, print)| version.fingerprints.get(*key) != Some(print))
                .count();
            let only_in_version = version
                .fingerprints
                .keys()
                .filter(|key| !data.contains_key(*key))
                .count();
            differing + only_in_version
        })
        .cloned()
}

/// What a request changed in a session since it was loaded: the keys to set and to remove.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Changes {
    pub set: Map<String, Value>,
    pub remove: Vec<String>,
    /// The fingerprint of every key the session holds now: the origin once saved.
    pub fingerprints: HashMap<String, u64>,
}

/// A hash of a value, equal for equal JSON values (object keys in any order, `-0.0` and `0.0`),
/// stable within this process. Walks the value: no canonical text is built.
fn fingerprint(value: &Value) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    hash_value(value, &mut hasher);
    hasher.finish()
}

fn hash_value(value: &Value, h: &mut impl Hasher) {
    match value {
        Value::Null => 0u8.hash(h),
        Value::Bool(b) => (1u8, b).hash(h),
        Value::Number(n) => {
            2u8.hash(h);
            match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => (0u8, u).hash(h),
                (None, Some(i), _) => (1u8, i).hash(h),
                // `+ 0.0` turns -0.0 into 0.0, which equals it as a JSON value.
                (None, None, Some(f)) => (2u8, (f + 0.0).to_bits()).hash(h),
                _ => n.to_string().hash(h),
            }
        }
        Value::String(s) => (3u8, s).hash(h),
        Value::Array(items) => {
            (4u8, items.len()).hash(h);
            items.iter().for_each(|item| hash_value(item, h));
        }
        Value::Object(map) => {
            (5u8, map.len()).hash(h);
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            for key in keys {
                key.hash(h);
                if let Some(v) = map.get(key) {
                    hash_value(v, h);
                }
            }
        }
    }
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

    /// The keys this session set, changed or removed since `origin` was taken, as stored
    /// keys (with their prefix).
    pub(crate) fn changes_since(&self, origin: &Origin) -> Changes {
        let mut changes = Changes {
            fingerprints: HashMap::with_capacity(self.data.len()),
            ..Changes::default()
        };
        for (key, value) in &self.data {
            let now = fingerprint(value);
            if origin.fingerprints.get(key) != Some(&now) {
                changes.set.insert(stored_key(key), value.clone());
            }
            changes.fingerprints.insert(key.clone(), now);
        }
        for key in origin.fingerprints.keys() {
            if !self.data.contains_key(key) {
                changes.remove.push(stored_key(key));
            }
        }
        changes
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

/// The encoded size of a session, in bytes of compact JSON, counted without encoding it.
pub(crate) fn encoded_size(session: &Session) -> databank_core::Result<usize> {
    use databank_core::validate::{entries_size, entry_size, object_size};
    let markers = entry_size("format", FORMAT.len() + 2) + entry_size("version", 1);
    // Each key is stored with its prefix: two more bytes than `entries_size` counts.
    let entries = entries_size(&session.data)? + KEY_PREFIX.len() * session.data.len();
    Ok(object_size(markers + entries, 2 + session.data.len()))
}

/// Encodes a session as its stored JSON value (version 2).
pub fn encode(session: &Session) -> Value {
    let mut fields = Map::new();
    fields.insert("format".into(), Value::from(FORMAT));
    fields.insert("version".into(), Value::from(VERSION));
    for (key, value) in &session.data {
        fields.insert(stored_key(key), value.clone());
    }
    Value::Object(fields)
}

/// Decodes a stored JSON value (version 1 or 2) into session data (the caller sets the expiry
/// and origin).
pub fn decode(value: Value) -> Result<Map<String, Value>, SessionError> {
    decode_versioned(value).map(|(data, _)| data)
}

/// [`decode`], with the version the record was stored in.
pub(crate) fn decode_versioned(value: Value) -> Result<(Map<String, Value>, u64), SessionError> {
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
            Some(Value::Object(data)) => Ok((data, 1)),
            _ => Err(SessionError::Corrupt("data is not an object".into())),
        },
        Some(VERSION) => Ok((
            fields
                .into_iter()
                .filter_map(|(mut key, value)| {
                    // The prefix goes in place: no new string per key.
                    key.starts_with(KEY_PREFIX).then(|| {
                        key.replace_range(..KEY_PREFIX.len(), "");
                        (key, value)
                    })
                })
                .collect(),
            VERSION,
        )),
        other => Err(SessionError::Corrupt(format!(
            "version {other:?} is not one this store reads (1 to {VERSION})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn fingerprints_follow_json_equality() {
        let f = |v: serde_json::Value| fingerprint(&v);
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
    fn changes_are_what_this_session_did() {
        let mut loaded = Map::new();
        loaded.insert("keep".into(), json!(1));
        loaded.insert("drop".into(), json!(2));
        loaded.insert("change".into(), json!(3));
        let mut s = Session::with_data(loaded.clone(), None);
        let origin = Origin::of(Revision::new(1), &loaded);
        s.remove("drop");
        s.insert("change", 30);
        s.insert("mine", true);
        let changes = s.changes_since(&origin);
        assert_eq!(
            changes.fingerprints,
            Origin::of(Revision::new(2), &s.data).fingerprints
        );
        assert_eq!(
            Value::Object(changes.set),
            json!({"d:change": 30, "d:mine": true})
        );
        assert_eq!(changes.remove, vec!["d:drop".to_owned()]);
    }

    #[test]
    fn the_closest_version_is_where_the_request_started() {
        let data = |pairs: &[(&str, i64)]| -> Map<String, Value> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), json!(v)))
                .collect()
        };
        let start = data(&[("n", 1)]);
        let after_a = data(&[("n", 1), ("a", 1)]);
        let versions = [
            Arc::new(Origin::of(Revision::new(1), &start)),
            Arc::new(Origin::of(Revision::new(2), &after_a)),
        ];
        // Started before `a` was saved: patching against `after_a` would remove `a`.
        let picked = closest(&versions, &data(&[("n", 1), ("b", 1)]));
        assert_eq!(picked.map(|o| o.revision), Some(Revision::new(1)));
        let picked = closest(&versions, &data(&[("n", 1), ("a", 1), ("c", 1)]));
        assert_eq!(picked.map(|o| o.revision), Some(Revision::new(2)));
        // A tie goes to the newest.
        let picked = closest(&versions, &data(&[("n", 2), ("a", 1), ("x", 0)]));
        assert_eq!(picked.map(|o| o.revision), Some(Revision::new(2)));
        assert!(closest(&[], &start).is_none());
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
        assert_eq!(encoded_size(&s)?, encode(&s).to_string().len());
        s.insert("user", "ada\n");
        s.insert("", json!({"a": [1, 2.5]}));
        assert_eq!(encoded_size(&s)?, encode(&s).to_string().len());
        Ok(())
    }
}
