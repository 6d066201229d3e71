//! A whole driver in one file, and the conformance kit run against it: the shape a third-party
//! driver takes. It keeps records in a map behind a lock and implements only the seven
//! required methods; counters, lists, patches, `read_all`, `search` and `count` come from the
//! provided implementations, built on those seven (see "Writing a driver" in
//! `databank_core::driver`).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

// Everything a driver needs comes from `databank_core::driver`.
use databank_core::driver::{
    async_trait, is_expired, json, random_revision, record, stream_of, Bank, Capabilities, Driver,
    Error, Expiry, Record, RecordStream, Result, Revision, Schema, Utc, Value, Write,
};
use databank_core::testkit::Harness;

/// The records of every type, by type then id. An expired record stays until a purge, and is
/// treated as absent everywhere.
#[derive(Debug, Default)]
struct MapBank {
    records: Mutex<HashMap<String, HashMap<String, Record>>>,
}

impl MapBank {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, HashMap<String, Record>>> {
        // Every change below is one map call: a poisoned lock holds nothing half-done.
        self.records
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// The live record `id` of `kind` holds, if any.
fn live<'m>(
    records: &'m mut HashMap<String, HashMap<String, Record>>,
    kind: &str,
    id: &str,
) -> Option<&'m mut Record> {
    records
        .get_mut(kind)?
        .get_mut(id)
        .filter(|record| !is_expired(record.expires_at, Utc::now()))
}

#[async_trait]
impl Driver for MapBank {
    fn capabilities(&self) -> Capabilities {
        // Nothing native: every provided method is used as it is.
        Capabilities::default()
    }

    async fn read(&self, kind: &str, id: &str) -> Result<Record> {
        live(&mut self.lock(), kind, id)
            .map(|found| found.clone())
            .ok_or_else(|| Error::not_found(kind, id))
    }

    async fn write(&self, write: Write<'_>) -> Result<Revision> {
        let mut records = self.lock();
        // The precondition is checked under the same lock as the write: atomic.
        let current = live(&mut records, write.kind, write.id).map(|found| found.revision);
        write.precondition.check(write.kind, write.id, current)?;
        let revision = random_revision();
        records.entry(write.kind.to_owned()).or_default().insert(
            write.id.to_owned(),
            record(write.value, revision, write.expires_at),
        );
        Ok(revision)
    }

    async fn delete(&self, kind: &str, id: &str) -> Result<()> {
        let mut records = self.lock();
        if live(&mut records, kind, id).is_none() {
            return Err(Error::not_found(kind, id));
        }
        if let Some(table) = records.get_mut(kind) {
            table.remove(id);
        }
        Ok(())
    }

    async fn touch(&self, kind: &str, id: &str, expires_at: Expiry) -> Result<()> {
        let mut records = self.lock();
        let found = live(&mut records, kind, id).ok_or_else(|| Error::not_found(kind, id))?;
        // The value and the revision stay: touching is not a change of the value.
        found.expires_at = expires_at;
        Ok(())
    }

    fn scan<'a>(&'a self, kind: &'a str) -> RecordStream<'a> {
        // One fetch of everything; a driver over a large store pages lazily instead.
        stream_of(async move {
            let now = Utc::now();
            Ok(self
                .lock()
                .get(kind)
                .map(|table| {
                    table
                        .iter()
                        .filter(|(_, record)| !is_expired(record.expires_at, now))
                        .map(|(id, record)| (id.clone(), record.value.clone()))
                        .collect()
                })
                .unwrap_or_default())
        })
    }

    async fn purge_expired(&self, kind: &str) -> Result<u64> {
        let now = Utc::now();
        let mut records = self.lock();
        let Some(table) = records.get_mut(kind) else {
            return Ok(0);
        };
        let before = table.len();
        table.retain(|_, record| !is_expired(record.expires_at, now));
        Ok((before - table.len()) as u64)
    }
}

/// What the kit opens: a fresh, empty bank each time (this driver keeps nothing across a
/// reopen, so `reopen_keeps_records` does not apply).
struct Fresh;

#[async_trait]
impl Harness for Fresh {
    async fn open(&self, _schema: Schema) -> Result<Bank> {
        Ok(Bank::new(MapBank::default()))
    }
}

/// A value the bank keeps exactly.
#[tokio::test]
async fn the_minimal_driver_keeps_what_it_is_given() -> Result<()> {
    let bank = Bank::new(MapBank::default());
    let value: Value = json!({"user": "ada", "n": [1, 2.5]});
    bank.create("session", "s", value.clone()).await?;
    assert_eq!(bank.read("session", "s").await?.value, value);
    Ok(())
}

databank_core::conformance_tests!(
    || Fresh,
    does_not_apply: [
        reopen_keeps_records,
        kinds_lists_the_types_with_live_records,
        count_expired_counts_what_a_purge_removes,
    ]
);
