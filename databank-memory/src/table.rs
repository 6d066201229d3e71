//! One type's records, with its indices and its expiry order.

use std::collections::{BTreeSet, HashMap, HashSet};

use databank_core::driver::{canonical, lookup};
use databank_core::driver::{is_expired, record};
use databank_core::driver::{DateTime, Utc};
use databank_core::Value;
use databank_core::{Criteria, Expiry, Record, Revision};

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub value: Value,
    pub revision: Revision,
    pub expires_at: Expiry,
    /// The value's size in bytes of compact JSON, once a patch has measured it; patches keep
    /// it up to date, so they measure only the keys they touch.
    pub size: Option<usize>,
}

/// An entry out of its table, with the strings it is filed under.
#[derive(Debug)]
pub(crate) struct Taken {
    id: String,
    expiry_id: Option<String>,
    pub entry: Entry,
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

    /// Stores `entry` under `id`, replacing any entry there (reusing its key strings).
    pub fn put(&mut self, id: &str, entry: Entry) {
        let taken = match self.take(id) {
            Some(old) => Taken { entry, ..old },
            None => Taken {
                id: id.to_owned(),
                expiry_id: None,
                entry,
            },
        };
        self.put_back(taken);
    }

    /// Removes `id`'s entry.
    pub fn remove(&mut self, id: &str) -> Option<Entry> {
        self.take(id).map(|taken| taken.entry)
    }

    /// Takes `id`'s entry out, with the key strings it was filed under, to be changed and put
    /// back with [`put_back`](Table::put_back): a change in place that allocates nothing when
    /// the table has no indices.
    pub fn take(&mut self, id: &str) -> Option<Taken> {
        let (id, entry) = self.records.remove_entry(id)?;
        for (field, index) in &mut self.indices {
            if let Some(key) = lookup(&entry.value, field) {
                let key = canonical(key);
                if let Some(ids) = index.get_mut(&key) {
                    ids.remove(&id);
                    if ids.is_empty() {
                        index.remove(&key);
                    }
                }
            }
        }
        let (id, expiry_id) = match entry.expires_at {
            Some(at) => {
                let probe = (at, id);
                let filed = self.expiries.take(&probe);
                (probe.1, filed.map(|(_, filed_id)| filed_id))
            }
            None => (id, None),
        };
        Some(Taken {
            id,
            expiry_id,
            entry,
        })
    }

    /// Files an entry taken out with [`take`](Table::take) (changed or not) again.
    pub fn put_back(&mut self, taken: Taken) {
        let Taken {
            id,
            expiry_id,
            entry,
        } = taken;
        for (field, index) in &mut self.indices {
            if let Some(key) = lookup(&entry.value, field) {
                index.entry(canonical(key)).or_default().insert(id.clone());
            }
        }
        if let Some(at) = entry.expires_at {
            self.expiries
                .insert((at, expiry_id.unwrap_or_else(|| id.clone())));
        }
        self.records.insert(id, entry);
    }

    pub fn live_rows(&self, now: DateTime<Utc>) -> impl Iterator<Item = (String, Value)> + '_ {
        self.records
            .iter()
            .filter(move |(_, e)| !is_expired(e.expires_at, now))
            .map(|(id, e)| (id.clone(), e.value.clone()))
    }

    pub fn live_records(&self, now: DateTime<Utc>) -> impl Iterator<Item = (String, Record)> + '_ {
        self.records
            .iter()
            .filter(move |(_, e)| !is_expired(e.expires_at, now))
            .map(|(id, e)| {
                (
                    id.clone(),
                    record(e.value.clone(), e.revision, e.expires_at),
                )
            })
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
    /// How many records expired at `now` and are still held (what `purge` would remove).
    pub fn expired_count(&self, now: DateTime<Utc>) -> usize {
        self.expiries
            .iter()
            .take_while(|(at, _)| *at <= now)
            .count()
    }

    /// How many records are live at `now`.
    pub fn live_count(&self, now: DateTime<Utc>) -> usize {
        self.records.len() - self.expired_count(now)
    }

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
