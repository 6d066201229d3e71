//! The `Databank` trait: the one API every driver implements.

use std::collections::HashMap;
use std::pin::Pin;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_core::Stream;
use futures_util::StreamExt;
use serde_json::Value;

use crate::{Capabilities, Criteria, Error, Record, Result, Revision};

/// The stream [`Databank::scan`] returns: `(id, value)` pairs of live records, in no set order.
pub type RecordStream<'a> = Pin<Box<dyn Stream<Item = Result<(String, Value)>> + Send + 'a>>;

/// An expiry instant: `None` means the record never expires.
pub type Expiry = Option<DateTime<Utc>>;

/// One async CRUD + search API over a database.
///
/// Records are JSON values addressed by a type name (`kind`) and an id. Users normally hold a
/// [`Bank`](crate::Bank), which checks every input against [the rules](crate::validate) before a
/// driver sees it, so drivers may assume well-formed type names, ids and values.
///
/// **Expiry.** Every write takes an `expires_at`; `None` means never. A record whose expiry is at
/// or before now is invisible to every read, search, scan, count and list operation, and a `create`
/// over it succeeds, even before [`purge_expired`](Databank::purge_expired) (or the backend's TTL)
/// removes it. Counter and list operations keep the record's expiry.
///
/// **Revisions.** Every write gives the record a new [`Revision`]; [`read`](Databank::read)
/// returns it and [`update_if`](Databank::update_if) checks it.
///
/// The provided methods build counters and list operations from `read` + `update_if`/`create`
/// loops (atomic as long as `update_if` and `create` are); drivers override them with native
/// operations and say so in [`capabilities`](Databank::capabilities).
#[async_trait]
pub trait Databank: Send + Sync + std::fmt::Debug {
    /// What this driver does natively.
    fn capabilities(&self) -> Capabilities;

    /// Stores a new record. Fails with `AlreadyExists` if a live record has this id; an expired
    /// one is replaced.
    async fn create(
        &self,
        kind: &str,
        id: &str,
        value: Value,
        expires_at: Expiry,
    ) -> Result<Revision>;

    /// Reads a live record. Fails with `NotFound` if there is none.
    async fn read(&self, kind: &str, id: &str) -> Result<Record>;

    /// Replaces the whole value (and expiry) of a live record. Fails with `NotFound` if there is
    /// none: `update` never creates.
    async fn update(
        &self,
        kind: &str,
        id: &str,
        value: Value,
        expires_at: Expiry,
    ) -> Result<Revision>;

    /// Like [`update`](Databank::update), but only if the record is still at `expected`; fails
    /// with `Conflict` if it was written since, `NotFound` if it is gone.
    async fn update_if(
        &self,
        kind: &str,
        id: &str,
        value: Value,
        expected: Revision,
        expires_at: Expiry,
    ) -> Result<Revision>;

    /// Creates or replaces a record in one atomic step; never fails with `AlreadyExists`.
    async fn save(
        &self,
        kind: &str,
        id: &str,
        value: Value,
        expires_at: Expiry,
    ) -> Result<Revision>;

    /// Deletes a live record. Fails with `NotFound` if there is none.
    async fn delete(&self, kind: &str, id: &str) -> Result<()>;

    /// Sets a live record's expiry without changing its value or its revision. Fails with
    /// `NotFound` if there is none.
    async fn touch(&self, kind: &str, id: &str, expires_at: Expiry) -> Result<()>;

    /// Every live record of a type, as a stream; an unknown type yields nothing. Records written
    /// during the scan may or may not appear; records untouched during it appear exactly once.
    fn scan<'a>(&'a self, kind: &'a str) -> RecordStream<'a>;

    /// Deletes the expired records of a type and returns how many it deleted (records the
    /// backend's own TTL already removed are not counted).
    async fn purge_expired(&self, kind: &str) -> Result<u64>;

    /// Closes the bank: later calls fail with `Closed`. Idempotent.
    async fn close(&self) -> Result<()>;

    /// Reads many records at once; ids with no live record map to `None`.
    async fn read_all(&self, kind: &str, ids: &[&str]) -> Result<HashMap<String, Option<Value>>> {
        let mut found = HashMap::with_capacity(ids.len());
        for id in ids {
            let value = match self.read(kind, id).await {
                Ok(record) => Some(record.value),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e),
            };
            found.insert((*id).to_owned(), value);
        }
        Ok(found)
    }

    /// The live records of a type that meet every criterion (see [`Criteria`]), as
    /// `(id, value)` pairs in no set order; no match is an empty vector. Drivers with indices use
    /// them for declared fields; other fields are filtered.
    async fn search(&self, kind: &str, criteria: &Criteria) -> Result<Vec<(String, Value)>> {
        let mut hits = Vec::new();
        let mut stream = self.scan(kind);
        while let Some(item) = stream.next().await {
            let (id, value) = item?;
            if criteria.matches(&value) {
                hits.push((id, value));
            }
        }
        Ok(hits)
    }

    /// The number of live records of a type.
    async fn count(&self, kind: &str) -> Result<u64> {
        let mut n = 0;
        let mut stream = self.scan(kind);
        while let Some(item) = stream.next().await {
            item?;
            n += 1;
        }
        Ok(n)
    }

    /// Adds `delta` to an integer record atomically and returns the new value. A missing record
    /// starts at 0 (and is created with no expiry); a non-integer value fails with `WrongType`, as
    /// does a result outside `i64`.
    async fn incr_by(&self, kind: &str, id: &str, delta: i64) -> Result<i64> {
        modify(self, kind, id, Value::from(0), |value| {
            let new = value
                .as_i64()
                .and_then(|n| n.checked_add(delta))
                .ok_or_else(|| Error::wrong_type(kind, id, "an integer"))?;
            Ok((Value::from(new), new))
        })
        .await
    }

    /// Adds an item at the end of an array record and returns the new length. A missing record
    /// starts as `[]`; a non-array fails with `WrongType`.
    async fn append(&self, kind: &str, id: &str, item: Value) -> Result<usize> {
        modify(self, kind, id, Value::Array(Vec::new()), |value| {
            let mut items = as_array(kind, id, value)?.clone();
            items.push(item.clone());
            let len = items.len();
            Ok((Value::Array(items), len))
        })
        .await
    }

    /// Adds an item at the start of an array record and returns the new length. A missing record
    /// starts as `[]`; a non-array fails with `WrongType`.
    async fn prepend(&self, kind: &str, id: &str, item: Value) -> Result<usize> {
        modify(self, kind, id, Value::Array(Vec::new()), |value| {
            let mut items = as_array(kind, id, value)?.clone();
            items.insert(0, item.clone());
            let len = items.len();
            Ok((Value::Array(items), len))
        })
        .await
    }

    /// Removes the first item deep-equal to `item` from an array record; returns whether one was
    /// there. A missing record or an absent item is `Ok(false)`; a non-array is `WrongType`.
    async fn remove(&self, kind: &str, id: &str, item: &Value) -> Result<bool> {
        loop {
            let record = match self.read(kind, id).await {
                Ok(record) => record,
                Err(e) if e.is_not_found() => return Ok(false),
                Err(e) => return Err(e),
            };
            let mut items = as_array(kind, id, &record.value)?.clone();
            let Some(at) = items.iter().position(|x| x == item) else {
                return Ok(false);
            };
            items.remove(at);
            match self
                .update_if(
                    kind,
                    id,
                    Value::Array(items),
                    record.revision,
                    record.expires_at,
                )
                .await
            {
                Ok(_) => return Ok(true),
                Err(Error::Conflict { .. } | Error::NotFound { .. }) => yield_now().await,
                Err(e) => return Err(e),
            }
        }
    }
}

/// The array inside a list record, or `WrongType`.
pub(crate) fn as_array<'v>(kind: &str, id: &str, value: &'v Value) -> Result<&'v Vec<Value>> {
    value
        .as_array()
        .ok_or_else(|| Error::wrong_type(kind, id, "an array"))
}

/// Read-modify-write with `update_if`, retried on conflict; a missing record starts at `initial`
/// and is created. Atomic whenever the driver's `create` and `update_if` are.
async fn modify<B, R, F>(bank: &B, kind: &str, id: &str, initial: Value, mut change: F) -> Result<R>
where
    B: Databank + ?Sized,
    F: FnMut(&Value) -> Result<(Value, R)> + Send,
    R: Send,
{
    loop {
        let outcome = match bank.read(kind, id).await {
            Ok(record) => {
                let (new, result) = change(&record.value)?;
                bank.update_if(kind, id, new, record.revision, record.expires_at)
                    .await
                    .map(|_| result)
            }
            Err(e) if e.is_not_found() => {
                let (new, result) = change(&initial)?;
                bank.create(kind, id, new, None).await.map(|_| result)
            }
            Err(e) => return Err(e),
        };
        match outcome {
            Err(Error::Conflict { .. } | Error::NotFound { .. } | Error::AlreadyExists { .. }) => {
                yield_now().await
            }
            other => return other,
        }
    }
}

/// Lets other tasks run between retries without tying the core to one runtime.
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}
