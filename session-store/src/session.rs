//! A session and its stored format (described in `format.md`, shown in the crate docs).

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use chrono::{DateTime, Utc};
use databank_core::Revision;
use serde_json::{json, Map, Value};

use crate::SessionError;

/// The `format` field of every stored session.
pub const FORMAT: &str = "databank-session";
/// The `version` this crate writes and the highest it reads.
pub const VERSION: u64 = 1;

/// A session: its data and its expiry, plus what the store needs to detect concurrent changes.
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
    /// The revision and data as loaded, for optimistic concurrency; `None` for a new session.
    pub(crate) origin: Option<Origin>,
}

/// What a session looked like when loaded: its revision and a fingerprint of each key's value,
/// enough to tell which keys this request set, changed or removed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Origin {
    pub revision: Revision,
    pub fingerprints: BTreeMap<String, u64>,
}

impl Origin {
    pub fn of(revision: Revision, data: &Map<String, Value>) -> Self {
        Origin {
            revision,
            fingerprints: data
                .iter()
                .map(|(k, v)| (k.clone(), fingerprint(v)))
                .collect(),
        }
    }

    /// The origin as a JSON value, for adapters that must carry it inside session data.
    #[cfg_attr(
        not(any(feature = "tower-sessions", feature = "actix")),
        allow(dead_code)
    )] // used by the adapters and tests
    pub fn to_value(&self) -> Value {
        let fingerprints: Map<String, Value> = self
            .fingerprints
            .iter()
            .map(|(k, f)| (k.clone(), Value::from(*f)))
            .collect();
        json!({"revision": self.revision.get().to_string(), "keys": fingerprints})
    }

    /// Reads what [`Origin::to_value`] wrote; `None` for anything else.
    #[cfg_attr(
        not(any(feature = "tower-sessions", feature = "actix")),
        allow(dead_code)
    )] // used by the adapters and tests
    pub fn from_value(value: &Value) -> Option<Self> {
        let revision = value.get("revision")?.as_str()?.parse().ok()?;
        let fingerprints = value
            .get("keys")?
            .as_object()?
            .iter()
            .map(|(k, f)| Some((k.clone(), f.as_u64()?)))
            .collect::<Option<BTreeMap<_, _>>>()?;
        Some(Origin {
            revision: Revision::new(revision),
            fingerprints,
        })
    }
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

    /// Applies this session's changes since it was loaded (keys set or changed, keys removed)
    /// onto `fresh`, the current stored data. Keys this session did not touch keep their fresh
    /// values.
    pub(crate) fn merge_onto(&self, mut fresh: Map<String, Value>) -> Map<String, Value> {
        let empty = BTreeMap::new();
        let loaded = self.origin.as_ref().map_or(&empty, |o| &o.fingerprints);
        for (key, value) in &self.data {
            if loaded.get(key) != Some(&fingerprint(value)) {
                fresh.insert(key.clone(), value.clone());
            }
        }
        for key in loaded.keys() {
            if !self.data.contains_key(key) {
                fresh.remove(key);
            }
        }
        fresh
    }
}

/// The key under which framework adapters carry a session's origin inside the framework's own
/// session data between `load` and `save` (frameworks give a store nothing else to carry it
/// in). Adapters add it on load and take it out on save; it is never stored.
pub const ORIGIN_KEY: &str = "__databank_origin";

#[cfg(any(feature = "tower-sessions", feature = "actix"))]
impl Session {
    /// The data with the origin added under [`ORIGIN_KEY`], for a framework's load.
    pub(crate) fn into_data_with_origin(self) -> Map<String, Value> {
        let mut data = self.data;
        if let Some(origin) = &self.origin {
            data.insert(ORIGIN_KEY.to_owned(), origin.to_value());
        }
        data
    }

    /// A session from a framework's data, its origin taken out of [`ORIGIN_KEY`].
    pub(crate) fn from_framework(
        mut data: Map<String, Value>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Self {
        let origin = data
            .remove(ORIGIN_KEY)
            .as_ref()
            .and_then(Origin::from_value);
        Session {
            data,
            expires_at,
            origin,
        }
    }
}

/// Encodes a session as its stored JSON value.
pub fn encode(session: &Session) -> Value {
    json!({"format": FORMAT, "version": VERSION, "data": session.data})
}

/// Decodes a stored JSON value into session data (the caller sets the expiry and origin).
pub fn decode(value: Value) -> Result<Map<String, Value>, SessionError> {
    let Value::Object(mut fields) = value else {
        return Err(SessionError::Corrupt(
            "a session must be a JSON object".into(),
        ));
    };
    if fields.get("format").and_then(Value::as_str) != Some(FORMAT) {
        return Err(SessionError::Corrupt(format!("format is not {FORMAT:?}")));
    }
    match fields.get("version").and_then(Value::as_u64) {
        Some(v) if (1..=VERSION).contains(&v) => {}
        other => {
            return Err(SessionError::Corrupt(format!(
                "version {other:?} is not one this store reads (1 to {VERSION})"
            )))
        }
    }
    match fields.remove("data") {
        Some(Value::Object(data)) => Ok(data),
        _ => Err(SessionError::Corrupt("data is not an object".into())),
    }
}

#[cfg(test)]
mod tests {
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
            json!({"format": FORMAT, "version": 2, "data": {}}),
            json!({"format": FORMAT, "version": 1, "data": []}),
        ] {
            assert!(
                matches!(decode(bad.clone()), Err(SessionError::Corrupt(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn merge_applies_only_this_sessions_changes() {
        let mut loaded = Map::new();
        loaded.insert("keep".into(), json!(1));
        loaded.insert("drop".into(), json!(2));
        loaded.insert("change".into(), json!(3));
        let mut s = Session::with_data(loaded.clone(), None);
        s.origin = Some(Origin::of(Revision::new(1), &loaded));
        let carried = s.origin.as_ref().map(Origin::to_value);
        assert_eq!(carried.as_ref().and_then(Origin::from_value), s.origin);
        s.remove("drop");
        s.insert("change", 30);
        s.insert("mine", true);
        let mut fresh = Map::new();
        fresh.insert("keep".into(), json!(1));
        fresh.insert("drop".into(), json!(2));
        fresh.insert("change".into(), json!(3));
        fresh.insert("theirs".into(), json!("x"));
        let merged = s.merge_onto(fresh);
        assert_eq!(
            Value::Object(merged),
            json!({"keep": 1, "change": 30, "mine": true, "theirs": "x"})
        );
    }
}
