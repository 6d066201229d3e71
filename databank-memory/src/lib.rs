//! An in-memory [`Databank`]: fast, concurrent, and gone when the
//! process ends.
//!
//! Every capability is native: declared indices are kept as hash maps for `search`, expiries are
//! kept ordered so [`purge_expired`](Databank::purge_expired) costs O(expired),
//! counters, lists and `update_if` run under one short lock.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), databank_core::Error> {
//! use databank_core::{Bank, Databank, DatabankExt, Schema};
//! let bank = Bank::new(databank_memory::MemoryBank::new(Schema::new()));
//! bank.save("greeting", "en", serde_json::json!({"text": "hello"}), None).await?;
//! assert_eq!(bank.read("greeting", "en").await?.value["text"], "hello");
//! # Ok(()) }
//! ```
//!
//! Opened by URL after [`register`]: `memory://` (each open is a new, empty bank).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod table;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::Utc;
use databank_core::registry::{Driver, OpenFuture};
use databank_core::{
    Capabilities, Criteria, Databank, Error, Expiry, Record, RecordStream, Result, Revision, Schema,
};
use serde_json::Value;

use table::{Entry, Table};

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
        self.tables
            .entry(kind.to_owned())
            .or_insert_with(|| Table::new(schema.indices(kind)))
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

    /// Writes `value` after `check` approves the live entry (or its absence).
    fn write(
        &self,
        kind: &str,
        id: &str,
        value: Value,
        expires_at: Expiry,
        check: impl FnOnce(Option<&Entry>) -> Result<()>,
    ) -> Result<Revision> {
        let mut state = self.lock();
        let revision = state.next_revision();
        let table = state.table(&self.schema, kind);
        check(table.live(id, Utc::now()))?;
        table.put(
            id,
            Entry {
                value,
                revision,
                expires_at,
            },
        );
        Ok(revision)
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
            },
        );
        Ok(Some(result))
    }
}

/// Registers the `memory` scheme with [`databank_core::open`].
pub fn register() {
    databank_core::register(Driver {
        name: "memory",
        schemes: &["memory"],
        open: open_url,
    });
}

fn open_url(_url: url::Url, schema: Schema) -> OpenFuture {
    Box::pin(async move { Ok(Box::new(MemoryBank::new(schema)) as Box<dyn Databank>) })
}

fn items<'v>(kind: &str, id: &str, value: &'v mut Value) -> Result<&'v mut Vec<Value>> {
    value
        .as_array_mut()
        .ok_or_else(|| Error::wrong_type(kind, id, "an array"))
}

#[async_trait]
impl Databank for MemoryBank {
    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.native_counters = true;
        caps.indexed_search = true;
        caps.native_conditional_update = true;
        caps.native_lists = true;
        caps
    }

    async fn create(
        &self,
        kind: &str,
        id: &str,
        value: Value,
        expires_at: Expiry,
    ) -> Result<Revision> {
        self.write(kind, id, value, expires_at, |live| match live {
            Some(_) => Err(Error::already_exists(kind, id)),
            None => Ok(()),
        })
    }

    async fn read(&self, kind: &str, id: &str) -> Result<Record> {
        let mut state = self.lock();
        let entry = state
            .table(&self.schema, kind)
            .live(id, Utc::now())
            .ok_or_else(|| Error::not_found(kind, id))?;
        Ok(Record::new(
            entry.value.clone(),
            entry.revision,
            entry.expires_at,
        ))
    }

    async fn update(
        &self,
        kind: &str,
        id: &str,
        value: Value,
        expires_at: Expiry,
    ) -> Result<Revision> {
        self.write(kind, id, value, expires_at, |live| match live {
            Some(_) => Ok(()),
            None => Err(Error::not_found(kind, id)),
        })
    }

    async fn update_if(
        &self,
        kind: &str,
        id: &str,
        value: Value,
        expected: Revision,
        expires_at: Expiry,
    ) -> Result<Revision> {
        self.write(kind, id, value, expires_at, |live| match live {
            Some(entry) if entry.revision == expected => Ok(()),
            Some(_) => Err(Error::conflict(kind, id, expected)),
            None => Err(Error::not_found(kind, id)),
        })
    }

    async fn save(
        &self,
        kind: &str,
        id: &str,
        value: Value,
        expires_at: Expiry,
    ) -> Result<Revision> {
        self.write(kind, id, value, expires_at, |_| Ok(()))
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
        let mut entry = table
            .live(id, Utc::now())
            .cloned()
            .ok_or_else(|| Error::not_found(kind, id))?;
        entry.expires_at = expires_at;
        table.put(id, entry);
        Ok(())
    }

    fn scan<'a>(&'a self, kind: &'a str) -> RecordStream<'a> {
        let rows: Vec<Result<(String, Value)>> = match self.lock().tables.get(kind) {
            Some(table) => table.live_rows(Utc::now()).map(Ok).collect(),
            None => Vec::new(),
        };
        Box::pin(futures_util::stream::iter(rows))
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

    async fn count(&self, kind: &str) -> Result<u64> {
        let state = self.lock();
        Ok(state
            .tables
            .get(kind)
            .map_or(0, |table| table.live_rows(Utc::now()).count() as u64))
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
            let items = items(kind, id, value)?;
            items.push(item);
            Ok(items.len())
        })?;
        result.ok_or_else(|| Error::not_found(kind, id))
    }

    async fn prepend(&self, kind: &str, id: &str, item: Value) -> Result<usize> {
        let result = self.modify(kind, id, Some(Value::Array(Vec::new())), |value| {
            let items = items(kind, id, value)?;
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
        let list = items(kind, id, &mut entry.value)?;
        let Some(at) = list.iter().position(|x| x == item) else {
            return Ok(false);
        };
        list.remove(at);
        entry.revision = revision;
        table.put(id, entry);
        Ok(true)
    }
}
