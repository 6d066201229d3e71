//! The sessions this process saved or loaded lately: with each, the revision it is stored at.
//!
//! A load of a session known here asks the bank for it only if it changed since
//! ([`Bank::read_if_changed`](databank_core::Bank::read_if_changed)): an unchanged session
//! costs the server no value to send and this process no JSON to decode, and the bank still
//! decides (a session changed, destroyed or expired elsewhere is read, or gone, as without
//! this). An entry is only ever what the bank stored at its revision: a whole save, a load,
//! or a patch the bank says applied to the revision this process knew the value of.
//!
//! Memory is bounded by the sessions' encoded size: two generations of at most half the
//! budget each; a session over half the budget is not kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::session::{key_name, Origin};

/// A session as stored at `origin.revision`.
#[derive(Debug)]
pub(crate) struct Known {
    pub origin: Arc<Origin>,
    /// The session's keys and values (without the reserved key), in the order of
    /// `origin.fingerprints` (by key hash, then name): entry `i` is the key fingerprint `i`
    /// describes. Values a save did not change are shared with the entry it replaced, not
    /// copied again.
    data: Vec<Entry>,
}

/// A kept key and its value, each shared between the copies that hold it unchanged.
type Entry = (Arc<str>, Arc<Value>);

impl Known {
    /// The data into any map type.
    pub fn data<C: FromIterator<(String, Value)>>(&self) -> C {
        self.data
            .iter()
            .map(|(key, value)| (String::from(&**key), Value::clone(value)))
            .collect()
    }

    /// The entry under `key`, if its value has fingerprint `print`. Fingerprints, not values,
    /// are compared: a save sends only the keys whose fingerprints changed, so an entry with the
    /// same fingerprint is what the bank still holds; and the values kept here are cold in
    /// memory, their fingerprints are not.
    fn same(&self, name: (u64, &str), print: u64) -> Option<&Entry> {
        let (i, was) = self.origin.fingerprints.find(name)?;
        if was != print {
            return None;
        }
        self.data.get(i).filter(|(k, _)| **k == *name.1)
    }
}

#[derive(Debug, Default)]
struct Generations {
    current: HashMap<String, Arc<Known>>,
    previous: HashMap<String, Arc<Known>>,
    /// Encoded bytes added to `current` since it began.
    bytes: usize,
}

/// Recently stored sessions by id, bounded by bytes.
#[derive(Debug)]
pub(crate) struct Recent {
    generations: Mutex<Generations>,
    budget: usize,
}

impl Recent {
    /// Keeps sessions of about `budget` encoded bytes at most (0: none).
    pub fn new(budget: usize) -> Self {
        Recent {
            generations: Mutex::new(Generations::default()),
            budget,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations> {
        // Each change is one map call: a poisoned lock holds nothing half-done.
        self.generations
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The session stored under `sid`, as this process last knew it.
    pub fn get(&self, sid: &str) -> Option<Arc<Known>> {
        if self.budget == 0 {
            return None;
        }
        let generations = self.lock();
        generations
            .current
            .get(sid)
            .or_else(|| generations.previous.get(sid))
            .cloned()
    }

    /// Remembers that `sid` is stored as `data` at `origin.revision` (the caller knows it is:
    /// `origin.stored`).
    pub fn put<'d>(
        &self,
        sid: &str,
        origin: Arc<Origin>,
        data: impl IntoIterator<Item = (&'d String, &'d Value)>,
    ) {
        let size = origin.fingerprints.encoded_size();
        let half = self.budget / 2;
        if size > half || !origin.stored {
            self.forget(sid);
            return;
        }
        // A save changes a few keys: the others are shared with what this process knew.
        let previous = self.get(sid);
        let prints = &origin.fingerprints;
        let mut entries: Vec<(usize, Entry)> = Vec::with_capacity(prints.len());
        for (key, value) in data {
            let name = key_name(key);
            let Some((at, print)) = prints.find(name) else {
                // Data its origin does not describe: nothing sure to keep.
                self.forget(sid);
                return;
            };
            let entry = previous
                .as_ref()
                .and_then(|known| known.same(name, print))
                .cloned()
                .unwrap_or_else(|| (Arc::from(key.as_str()), Arc::new(value.clone())));
            entries.push((at, entry));
        }
        if entries.len() != prints.len() {
            self.forget(sid);
            return;
        }
        entries.sort_unstable_by_key(|(at, _)| *at);
        let known = Arc::new(Known {
            origin,
            data: entries.into_iter().map(|(_, entry)| entry).collect(),
        });
        let mut generations = self.lock();
        if generations.bytes + size > half {
            let mut dropped = std::mem::take(&mut generations.previous);
            dropped.clear();
            generations.previous = std::mem::replace(&mut generations.current, dropped);
            generations.bytes = 0;
        }
        generations.bytes += size;
        generations.previous.remove(sid);
        generations.current.insert(sid.to_owned(), known);
    }

    /// Forgets `sid` (destroyed, or stored at a revision whose value this process does not
    /// know).
    pub fn forget(&self, sid: &str) {
        if self.budget == 0 {
            return;
        }
        let mut generations = self.lock();
        generations.current.remove(sid);
        generations.previous.remove(sid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Fingerprints;
    use databank_core::Revision;
    use serde_json::json;

    fn entry(revision: u64, value: &str) -> (Arc<Origin>, Vec<(String, Value)>) {
        let data = vec![("k".to_owned(), json!(value))];
        let prints = Fingerprints::of(data.iter().map(|(k, v)| (k, v)))
            .unwrap_or_else(|e| panic!("fingerprints: {e}"));
        (
            Arc::new(Origin::with(Revision::new(revision), prints).stored(true)),
            data,
        )
    }

    #[test]
    fn keeps_the_newest_of_each_session() {
        let recent = Recent::new(1 << 20);
        let (origin, data) = entry(1, "a");
        recent.put("s", origin, data.iter().map(|(k, v)| (k, v)));
        let (origin, data) = entry(2, "b");
        recent.put("s", origin.clone(), data.iter().map(|(k, v)| (k, v)));
        let known = recent.get("s").unwrap_or_else(|| panic!("just put"));
        assert_eq!(known.origin, origin);
        assert_eq!(known.data::<Vec<_>>(), data);
        assert!(recent.get("other").is_none());
        // An origin not known to be what is stored (a patch merged with others) is not kept,
        // and drops the stale copy.
        let (origin, data) = entry(3, "c");
        let merged = Arc::new(Origin::clone(&origin).stored(false));
        recent.put("s", merged, data.iter().map(|(k, v)| (k, v)));
        assert!(recent.get("s").is_none());
        recent.put("s", origin, data.iter().map(|(k, v)| (k, v)));
        recent.forget("s");
        assert!(recent.get("s").is_none());
    }

    #[test]
    fn a_save_shares_the_values_it_did_not_change() {
        let recent = Recent::new(1 << 20);
        let put = |revision: u64, data: &[(String, Value)]| {
            let prints = Fingerprints::of(data.iter().map(|(k, v)| (k, v)))
                .unwrap_or_else(|e| panic!("fingerprints: {e}"));
            let origin = Arc::new(Origin::with(Revision::new(revision), prints).stored(true));
            recent.put("s", origin, data.iter().map(|(k, v)| (k, v)));
            recent.get("s").unwrap_or_else(|| panic!("just put"))
        };
        let long = json!("x".repeat(100));
        let first = put(1, &[("b".into(), json!(1)), ("a".into(), long.clone())]);
        // Another order (a framework's map), one value changed, one key added.
        let second = put(
            2,
            &[
                ("c".into(), json!(3)),
                ("a".into(), long.clone()),
                ("b".into(), json!(2)),
            ],
        );
        let value = |known: &Known, key: &str| {
            known
                .data
                .iter()
                .find(|(k, _)| &**k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("{key} missing"))
        };
        assert!(
            Arc::ptr_eq(&value(&first, "a"), &value(&second, "a")),
            "a was copied"
        );
        assert!(!Arc::ptr_eq(&value(&first, "b"), &value(&second, "b")));
        let mut kept = second.data::<Vec<(String, Value)>>();
        kept.sort_by(|x, y| x.0.cmp(&y.0));
        let expected: Vec<(String, Value)> = vec![
            ("a".into(), long),
            ("b".into(), json!(2)),
            ("c".into(), json!(3)),
        ];
        assert_eq!(kept, expected);
    }

    #[test]
    fn data_its_origin_does_not_describe_is_not_kept() {
        let recent = Recent::new(1 << 20);
        let (origin, data) = entry(1, "a");
        recent.put("s", origin.clone(), data.iter().map(|(k, v)| (k, v)));
        assert!(recent.get("s").is_some());
        // Another key than the fingerprints name: the stale copy goes too.
        let other = [("other".to_owned(), json!("a"))];
        recent.put("s", origin.clone(), other.iter().map(|(k, v)| (k, v)));
        assert!(recent.get("s").is_none());
        // Fewer keys than the fingerprints name.
        recent.put("s", origin, std::iter::empty());
        assert!(recent.get("s").is_none());
    }

    #[test]
    fn memory_stays_within_the_budget() {
        // Each entry is about 12 bytes encoded; a budget of 120 keeps at most two generations
        // of 60.
        let recent = Recent::new(120);
        for n in 0..1_000u64 {
            let (origin, data) = entry(n, "v");
            recent.put(&format!("s{n}"), origin, data.iter().map(|(k, v)| (k, v)));
        }
        let generations = recent.lock();
        let kept = generations.current.len() + generations.previous.len();
        assert!(kept > 0 && kept <= 20, "{kept} kept");
        drop(generations);
        assert!(recent.get("s999").is_some());
        assert!(recent.get("s0").is_none());
        // A session over half the budget is not kept, and replaces nothing stale.
        let (origin, data) = entry(5_000, &"x".repeat(100));
        recent.put("s999", origin, data.iter().map(|(k, v)| (k, v)));
        assert!(recent.get("s999").is_none());
        // No budget: nothing kept.
        let none = Recent::new(0);
        let (origin, data) = entry(1, "a");
        none.put("s", origin, data.iter().map(|(k, v)| (k, v)));
        assert!(none.get("s").is_none());
    }
}
