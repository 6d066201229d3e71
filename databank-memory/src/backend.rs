//! `MemoryBank`: the driver itself.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use databank_core::driver::{
    as_array_mut, async_trait, record, records_of, stream_of, Driver, Patch, RecordStream,
    RecordsStream, Utc, Write,
};
use databank_core::{
    Capabilities, Criteria, Error, Expiry, Record, Result, Revision, Schema, Value,
};

use crate::table::{Entry, Table};

/// The in-memory driver.
#[derive(Debug)]
pub struct MemoryBank {
    schema: Schema,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    tables: HashMap<String, Table>,
    last_revision: u64,
}

impl State {
    fn table(&mut self, schema: &Schema, kind: &str) -> &mut Table {
        // Looked up by `&str` first: no new string for a table that exists.
        if !self.tables.contains_key(kind) {
            self.tables
                .insert(kind.to_owned(), Table::new(schema.indices(kind)));
        }
        self.tables
            .get_mut(kind)
            .expect("the table was inserted just above")
    }

    fn next_revision(&mut self) -> Revision {
        self.last_revision += 1;
        Revision::new(self.last_revision)
    }
}

impl MemoryBank {
    /// An empty bank with the given indices.
    pub fn new(schema: Schema) -> Self {
        MemoryBank {
            schema,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a table half-changed (each change is one
        // call on `Table`), so a poisoned lock is safe to keep using.
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Changes the live value of `id` in place (or starts from `initial` when missing).
    fn modify<R>(
        &self,
        kind: &str,
        id: &str,
        initial: Option<Value>,
        change: impl FnOnce(&mut Value) -> Result<R>,
    ) -> Result<Option<R>> {
        let mut state = self.lock();
        let revision = state.next_revision();
        let table = state.table(&self.schema, kind);
        let (mut value, expires_at) = match table.live(id, Utc::now()) {
            Some(entry) => (entry.value.clone(), entry.expires_at),
            None => match initial {
                Some(initial) => (initial, None),
                None => return Ok(None),
            },
        };
        let result = change(&mut value)?;
        table.put(
            id,
            Entry {
                value,
                revision,
                expires_at,
                size: None,
            },
        );
        Ok(Some(result))
    }
}

#[async_trait]
impl Driver for MemoryBank {
    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.native_counters = true;
        caps.native_search = true;
        caps.native_conditional_update = true;
        caps.native_lists = true;
        caps.native_patch = true;
        caps.supports_kinds = true;
        caps.supports_count_expired = true;
        caps
    }

    async fn read(&self, kind: &str, id: &str) -> Result<Record> {
        let mut state = self.lock();
        let entry = state
            .table(&self.schema, kind)
            .live(id, Utc::now())
            .ok_or_else(|| Error::not_found(kind, id))?;
        Ok(record(
            entry.value.clone(),
            entry.revision,
            entry.expires_at,
        ))
    }

    async fn write(&self, write: Write<'_>) -> Result<Revision> {
        let (kind, id) = (write.kind, write.id);
        let mut state = self.lock();
        let revision = state.next_revision();
        let table = state.table(&self.schema, kind);
        let live = table.live(id, Utc::now()).map(|entry| entry.revision);
        write.precondition.check(kind, id, live)?;
        table.put(
            id,
            Entry {
                value: write.value,
                revision,
                expires_at: write.expires_at,
                size: None,
            },
        );
        Ok(revision)
    }

    async fn patch(&self, patch: Patch<'_>) -> Result<Revision> {
        let (kind, id) = (patch.kind, patch.id);
        let mut state = self.lock();
        let revision = state.next_revision();
        let table = state.table(&self.schema, kind);
        // The live entry is taken out and patched in place (no copy of the value, no new key
        // string); a patch that fails leaves the value untouched and the entry goes back as it
        // was.
        let live = table.live(id, Utc::now()).is_some();
        let expiry = patch.expiry;
        match live.then(|| table.take(id)).flatten() {
            Some(mut taken) => {
                let entry = &mut taken.entry;
                let patched = patch.apply_sized(&mut entry.value, entry.size);
                if let Ok(size) = patched {
                    entry.revision = revision;
                    entry.expires_at = expiry.resolve(entry.expires_at);
                    entry.size = Some(size);
                }
                table.put_back(taken);
                patched.map(|_| revision)
            }
            None if patch.create => {
                let mut value = Value::Object(Default::default());
                let size = patch.apply_sized(&mut value, Some(2))?;
                table.put(
                    id,
                    Entry {
                        value,
                        revision,
                        expires_at: expiry.resolve(None),
                        size: Some(size),
                    },
                );
                Ok(revision)
            }
            None => Err(Error::not_found(kind, id)),
        }
    }

    async fn delete(&self, kind: &str, id: &str) -> Result<()> {
        let mut state = self.lock();
        let table = state.table(&self.schema, kind);
        if table.live(id, Utc::now()).is_none() {
            return Err(Error::not_found(kind, id));
        }
        table.remove(id);
        Ok(())
    }

    async fn touch(&self, kind: &str, id: &str, expires_at: Expiry) -> Result<()> {
        let mut state = self.lock();
        let table = state.table(&self.schema, kind);
        if table.live(id, Utc::now()).is_none() {
            return Err(Error::not_found(kind, id));
        }
        if let Some(mut taken) = table.take(id) {
            taken.entry.expires_at = expires_at;
            table.put_back(taken);
        }
        Ok(())
    }

    fn scan<'a>(&'a self, kind: &'a str) -> RecordStream<'a> {
        let rows: Vec<(String, Value)> = match self.lock().tables.get(kind) {
            Some(table) => table.live_rows(Utc::now()).collect(),
            None => Vec::new(),
        };
        stream_of(std::future::ready(Ok(rows)))
    }

    fn scan_records<'a>(&'a self, kind: &'a str) -> RecordsStream<'a> {
        let rows: Vec<(String, Record)> = match self.lock().tables.get(kind) {
            Some(table) => table.live_records(Utc::now()).collect(),
            None => Vec::new(),
        };
        records_of(rows)
    }

    async fn purge_expired(&self, kind: &str) -> Result<u64> {
        let mut state = self.lock();
        Ok(match state.tables.get_mut(kind) {
            Some(table) => table.purge(Utc::now()),
            None => 0,
        })
    }

    async fn close(&self) -> Result<()> {
        self.lock().tables.clear();
        Ok(())
    }

    async fn search(&self, kind: &str, criteria: &Criteria) -> Result<Vec<(String, Value)>> {
        let state = self.lock();
        Ok(match state.tables.get(kind) {
            Some(table) => table.search(criteria, Utc::now()),
            None => Vec::new(),
        })
    }

    async fn kinds(&self) -> Result<Vec<String>> {
        Ok(self.lock().tables.keys().cloned().collect())
    }

    async fn count(&self, kind: &str) -> Result<u64> {
        let state = self.lock();
        Ok(state
            .tables
            .get(kind)
            .map_or(0, |table| table.live_count(Utc::now()) as u64))
    }

    async fn count_expired(&self, kind: &str) -> Result<u64> {
        let state = self.lock();
        Ok(state
            .tables
            .get(kind)
            .map_or(0, |table| table.expired_count(Utc::now()) as u64))
    }

    async fn incr_by(&self, kind: &str, id: &str, delta: i64) -> Result<i64> {
        let result = self.modify(kind, id, Some(Value::from(0)), |value| {
            let new = value
                .as_i64()
                .and_then(|n| n.checked_add(delta))
                .ok_or_else(|| Error::wrong_type(kind, id, "an integer"))?;
            *value = Value::from(new);
            Ok(new)
        })?;
        result.ok_or_else(|| Error::not_found(kind, id))
    }

    async fn append(&self, kind: &str, id: &str, item: Value) -> Result<usize> {
        let result = self.modify(kind, id, Some(Value::Array(Vec::new())), |value| {
            let items = as_array_mut(kind, id, value)?;
            items.push(item);
            Ok(items.len())
        })?;
        result.ok_or_else(|| Error::not_found(kind, id))
    }

    async fn prepend(&self, kind: &str, id: &str, item: Value) -> Result<usize> {
        let result = self.modify(kind, id, Some(Value::Array(Vec::new())), |value| {
            let items = as_array_mut(kind, id, value)?;
            items.insert(0, item);
            Ok(items.len())
        })?;
        result.ok_or_else(|| Error::not_found(kind, id))
    }

    async fn remove(&self, kind: &str, id: &str, item: &Value) -> Result<bool> {
        // Check first so that an absent item writes nothing (and keeps the revision).
        let mut state = self.lock();
        let revision = state.next_revision();
        let table = state.table(&self.schema, kind);
        let Some(entry) = table.live(id, Utc::now()) else {
            return Ok(false);
        };
        let mut entry = entry.clone();
        let list = as_array_mut(kind, id, &mut entry.value)?;
        let Some(at) = list.iter().position(|x| x == item) else {
            return Ok(false);
        };
        list.remove(at);
        entry.revision = revision;
        entry.size = None;
        table.put(id, entry);
        Ok(true)
    }
}
