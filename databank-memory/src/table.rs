//! One type's records, with its indices and its expiry order.

use std::collections::{BTreeSet, HashMap, HashSet};

use databank_core::criteria::{canonical, lookup};
use databank_core::driver::is_expired;
use databank_core::driver::{DateTime, Utc};
use databank_core::Value;
use databank_core::{Criteria, Expiry, Revision};

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub value: Value,
    pub revision: Revision,
    pub expires_at: Expiry,
}

#[derive(Debug)]
pub(crate) struct Table {
    records: HashMap<String, Entry>,
    /// field -> canonical value -> ids.
    indices: HashMap<String, HashMap<String, HashSet<String>>>,
    /// (expiry, id) for every record that has one, oldest first.
    expiries: BTreeSet<(DateTime<Utc>, String)>,
}

impl Table {
    pub fn new(indexed: &[String]) -> Self {
        Table {
            records: HashMap::new(),
            indices: indexed
                .iter()
                .map(|f| (f.clone(), HashMap::new()))
                .collect(),
            expiries: BTreeSet::new(),
        }
    }

    pub fn live(&self, id: &str, now: DateTime<Utc>) -> Option<&Entry> {
        self.records
            .get(id)
            .filter(|entry| !is_expired(entry.expires_at, now))
    }

    pub fn put(&mut self, id: &str, entry: Entry) {
        self.remove(id);
        for (field, index) in &mut self.indices {
            if let Some(key) = lookup(&entry.value, field) {
                index
                    .entry(canonical(key))
                    .or_default()
                    .insert(id.to_owned());
            }
        }
        if let Some(at) = entry.expires_at {
            self.expiries.insert((at, id.to_owned()));
        }
        self.records.insert(id.to_owned(), entry);
    }

    pub fn remove(&mut self, id: &str) -> Option<Entry> {
        let entry = self.records.remove(id)?;
        for (field, index) in &mut self.indices {
            if let Some(key) = lookup(&entry.value, field) {
                let key = canonical(key);
                if let Some(ids) = index.get_mut(&key) {
                    ids.remove(id);
                    if ids.is_empty() {
                        index.remove(&key);
                    }
                }
            }
        }
        if let Some(at) = entry.expires_at {
            self.expiries.remove(&(at, id.to_owned()));
        }
        Some(entry)
    }

    pub fn live_rows(&self, now: DateTime<Utc>) -> impl Iterator<Item = (String, Value)> + '_ {
        self.records
            .iter()
            .filter(move |(_, e)| !is_expired(e.expires_at, now))
            .map(|(id, e)| (id.clone(), e.value.clone()))
    }

    pub fn search(&self, criteria: &Criteria, now: DateTime<Utc>) -> Vec<(String, Value)> {
        let indexed = criteria
            .fields()
            .filter_map(|(field, value)| Some(self.indices.get(field)?.get(&canonical(value))))
            .min_by_key(|ids| ids.map_or(0, HashSet::len));
        let hit = |(id, entry): (&String, &Entry)| {
            (!is_expired(entry.expires_at, now) && criteria.matches(&entry.value))
                .then(|| (id.clone(), entry.value.clone()))
        };
        match indexed {
            Some(None) => Vec::new(),
            Some(Some(ids)) => ids
                .iter()
                .filter_map(|id| self.records.get_key_value(id))
                .filter_map(hit)
                .collect(),
            None => self.records.iter().filter_map(hit).collect(),
        }
    }

    /// Removes every record whose expiry has passed; costs O(expired).
    pub fn purge(&mut self, now: DateTime<Utc>) -> u64 {
        let mut purged = 0;
        while let Some((at, id)) = self.expiries.first().cloned() {
            if at > now {
                break;
            }
            self.remove(&id);
            purged += 1;
        }
        purged
    }
}
