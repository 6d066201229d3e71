//! `Bank`: the one type users hold. It checks input once for every driver and offers every
//! operation as an inherent method.

use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures_util::TryStreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::driver::{Driver, Precondition, RecordStream, Write};
use crate::{
    validate, Capabilities, Criteria, Error, Expiry, IfChanged, PatchCall, Record, Result, Revision,
};

/// A cheap-to-clone handle on a bank, whatever its driver. Every operation is a method here, so
/// `use databank_core::Bank;` is all a caller imports.
///
/// Writes return a [`WriteCall`]: await it as it is, or set an expiry first.
///
/// ```
/// # use databank_core::{Bank, Criteria, Error, json};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Error> {
/// # let bank = Bank::new(databank_memory::MemoryBank::new(databank_core::Schema::new()));
/// use std::time::Duration;
/// bank.create("person", "ada", json!({"email": "ada@example.org"})).await?;
/// let ada = bank.read("person", "ada").await?;
/// bank.update_if("person", "ada", json!({"email": "countess@example.org"}), ada.revision)
///     .expires_in(Duration::from_secs(3600))
///     .await?;
/// let hits = bank.search("person", &Criteria::new().eq("email", "countess@example.org")).await?;
/// assert_eq!(hits.len(), 1);
/// assert_eq!(bank.incr("visits", "ada").await?, 1);
/// let err = bank.read("../etc", "passwd").await.unwrap_err();
/// assert!(matches!(err, Error::InvalidInput(_)));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Bank {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    driver: Box<dyn Driver>,
    closed: AtomicBool,
}

impl Bank {
    /// Wraps a driver.
    ///
    /// ```
    /// # use databank_core::Bank;
    /// let bank = Bank::new(databank_memory::MemoryBank::new(databank_core::Schema::new()));
    /// # let _ = bank;
    /// ```
    pub fn new(driver: impl Driver + 'static) -> Self {
        Bank::from_box(Box::new(driver))
    }

    /// Wraps a boxed driver (what registry open functions return).
    pub fn from_box(driver: Box<dyn Driver>) -> Self {
        Bank {
            shared: Arc::new(Shared {
                driver,
                closed: AtomicBool::new(false),
            }),
        }
    }

    /// What the driver does natively.
    pub fn capabilities(&self) -> Capabilities {
        self.shared.driver.capabilities()
    }

    pub(crate) fn live(&self) -> Result<&dyn Driver> {
        if self.shared.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(self.shared.driver.as_ref())
        }
    }

    /// The live driver, if its capabilities have the flag `supports` reads (named `flag`);
    /// `Unsupported` otherwise, before the driver is called.
    fn supporting(&self, supports: fn(&Capabilities) -> bool, flag: &str) -> Result<&dyn Driver> {
        let driver = self.live()?;
        if supports(&driver.capabilities()) {
            Ok(driver)
        } else {
            Err(Error::Unsupported(format!(
                "this driver does not do it (Capabilities::{flag} is off)"
            )))
        }
    }

    fn key(&self, kind: &str, id: &str) -> Result<&dyn Driver> {
        validate::kind(kind)?;
        validate::id(id)?;
        self.live()
    }

    fn checked(&self, kind: &str, id: &str, value: &Value) -> Result<&dyn Driver> {
        validate::value(value)?;
        self.key(kind, id)
    }

    fn write_call<'a>(
        &'a self,
        kind: &'a str,
        id: &'a str,
        value: Result<Value>,
        precondition: Precondition,
    ) -> WriteCall<'a> {
        WriteCall {
            bank: self,
            kind,
            id,
            value,
            precondition,
            expires_at: Ok(None),
        }
    }

    /// Stores a new record; `AlreadyExists` if a live one holds the id (an expired one is
    /// replaced).
    pub fn create<'a>(&'a self, kind: &'a str, id: &'a str, value: Value) -> WriteCall<'a> {
        self.write_call(kind, id, Ok(value), Precondition::Absent)
    }

    /// Creates or replaces a record in one atomic step; never `AlreadyExists`.
    pub fn save<'a>(&'a self, kind: &'a str, id: &'a str, value: Value) -> WriteCall<'a> {
        self.write_call(kind, id, Ok(value), Precondition::Any)
    }

    /// Replaces the whole value (and expiry) of a live record; `NotFound` if there is none:
    /// `update` never creates.
    pub fn update<'a>(&'a self, kind: &'a str, id: &'a str, value: Value) -> WriteCall<'a> {
        self.write_call(kind, id, Ok(value), Precondition::Exists)
    }

    /// Like [`update`](Bank::update), only if the record is still at `revision`: `Conflict` if
    /// it was written since, `NotFound` if it is gone.
    pub fn update_if<'a>(
        &'a self,
        kind: &'a str,
        id: &'a str,
        value: Value,
        revision: Revision,
    ) -> WriteCall<'a> {
        self.write_call(kind, id, Ok(value), Precondition::Revision(revision))
    }

    /// [`create`](Bank::create) of any `Serialize` value.
    pub fn create_as<'a, T: Serialize + ?Sized>(
        &'a self,
        kind: &'a str,
        id: &'a str,
        value: &T,
    ) -> WriteCall<'a> {
        self.write_call(kind, id, to_value(value), Precondition::Absent)
    }

    /// [`save`](Bank::save) of any `Serialize` value.
    ///
    /// ```
    /// # use databank_core::{Bank, Error};
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Person { name: String }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Error> {
    /// # let bank = Bank::new(databank_memory::MemoryBank::new(databank_core::Schema::new()));
    /// bank.save_as("person", "ada", &Person { name: "Ada".into() }).await?;
    /// let ada: Person = bank.read_as("person", "ada").await?;
    /// assert_eq!(ada.name, "Ada");
    /// # Ok(()) }
    /// ```
    pub fn save_as<'a, T: Serialize + ?Sized>(
        &'a self,
        kind: &'a str,
        id: &'a str,
        value: &T,
    ) -> WriteCall<'a> {
        self.write_call(kind, id, to_value(value), Precondition::Any)
    }

    /// [`update_if`](Bank::update_if) of any `Serialize` value.
    pub fn update_if_as<'a, T: Serialize + ?Sized>(
        &'a self,
        kind: &'a str,
        id: &'a str,
        value: &T,
        revision: Revision,
    ) -> WriteCall<'a> {
        self.write_call(kind, id, to_value(value), Precondition::Revision(revision))
    }

    /// Sets and removes top-level keys of an object record, and sets or keeps its expiry, in
    /// one atomic step with no read before it: concurrent patches of different keys all keep
    /// their changes. Creates a missing record (as `{}` patched) unless
    /// [`must_exist`](PatchCall::must_exist) is called; a record that is not an object is
    /// `WrongType`; a result past the size limit is `InvalidInput` and changes nothing. See
    /// [`PatchCall`].
    pub fn patch<'a>(&'a self, kind: &'a str, id: &'a str) -> PatchCall<'a> {
        PatchCall::new(self, kind, id)
    }

    /// Reads a live record: value, revision, expiry. `NotFound` if there is none.
    pub async fn read(&self, kind: &str, id: &str) -> Result<Record> {
        self.key(kind, id)?.read(kind, id).await
    }

    /// Reads a live record unless it is still at revision `known`: then only its expiry comes
    /// back, and the value (which the caller already has) is neither sent nor decoded. Use it
    /// to keep a copy fresh without paying for the whole value each time. `NotFound` if there
    /// is no live record.
    ///
    /// ```
    /// # use databank_core::{Bank, Error};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Error> {
    /// # let bank = Bank::new(databank_memory::MemoryBank::new(databank_core::Schema::new()));
    /// use databank_core::IfChanged;
    /// let revision = bank.create("doc", "d", serde_json::json!({"a": 1})).await?;
    /// assert!(matches!(bank.read_if_changed("doc", "d", revision).await?, IfChanged::Unchanged { .. }));
    /// bank.patch("doc", "d").set("b", 2).await?;
    /// assert!(matches!(bank.read_if_changed("doc", "d", revision).await?, IfChanged::Changed(_)));
    /// # Ok(()) }
    /// ```
    pub async fn read_if_changed(
        &self,
        kind: &str,
        id: &str,
        known: Revision,
    ) -> Result<IfChanged> {
        self.key(kind, id)?.read_if_changed(kind, id, known).await
    }

    /// Reads a record and deserializes its value; a value of another shape is `InvalidInput`.
    pub async fn read_as<T: DeserializeOwned>(&self, kind: &str, id: &str) -> Result<T> {
        let record = self.read(kind, id).await?;
        serde_json::from_value(record.value).map_err(|e| {
            Error::InvalidInput(format!(
                "{kind} {id:?} does not have the expected shape: {e}"
            ))
        })
    }

    /// Reads many records at once; ids with no live record map to `None`.
    pub async fn read_all(
        &self,
        kind: &str,
        ids: &[&str],
    ) -> Result<HashMap<String, Option<Value>>> {
        validate::kind(kind)?;
        for id in ids {
            validate::id(id)?;
        }
        self.live()?.read_all(kind, ids).await
    }

    /// Deletes a live record; `NotFound` if there is none.
    pub async fn delete(&self, kind: &str, id: &str) -> Result<()> {
        self.key(kind, id)?.delete(kind, id).await
    }

    /// Sets a live record's expiry (`None`: never) without changing its value or revision;
    /// `NotFound` if there is none.
    pub async fn touch(&self, kind: &str, id: &str, expires_at: Expiry) -> Result<()> {
        self.key(kind, id)?.touch(kind, id, expires_at).await
    }

    /// Every live record of a type as a stream of `(id, value)`, in no set order.
    ///
    /// ```
    /// # use databank_core::{Bank, Error};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Error> {
    /// # let bank = Bank::new(databank_memory::MemoryBank::new(databank_core::Schema::new()));
    /// use futures_util::TryStreamExt;
    /// let all: Vec<_> = bank.scan("person").try_collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn scan<'a>(&'a self, kind: &'a str) -> RecordStream<'a> {
        match validate::kind(kind).and_then(|()| self.live()) {
            Ok(driver) => driver.scan(kind),
            Err(e) => Box::pin(futures_util::stream::once(async move { Err(e) })),
        }
    }

    /// Every live record of a type with its revision and expiry, as a stream (see
    /// [`scan`](Bank::scan)): what an export or a copy to another bank reads.
    pub fn scan_records<'a>(&'a self, kind: &'a str) -> crate::driver::RecordsStream<'a> {
        match validate::kind(kind).and_then(|()| self.live()) {
            Ok(driver) => driver.scan_records(kind),
            Err(e) => Box::pin(futures_util::stream::once(async move { Err(e) })),
        }
    }

    /// The live records of a type that meet every criterion: an AND of exact, typed JSON
    /// equalities on dotted paths (see [`Criteria`]).
    pub async fn search(&self, kind: &str, criteria: &Criteria) -> Result<Vec<(String, Value)>> {
        validate::kind(kind)?;
        criteria.validate()?;
        for (_, value) in criteria.fields() {
            validate::value(value)?;
        }
        self.live()?.search(kind, criteria).await
    }

    /// The types that hold at least one live record, sorted: what an operator's tool lists
    /// (`databank info`). One [`count`](Bank::count) per type the driver names; `Unsupported`
    /// where the driver cannot name them ([`Capabilities::supports_kinds`] says which).
    ///
    /// ```
    /// # use databank_core::{Bank, Error, json};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Error> {
    /// # let bank = Bank::new(databank_memory::MemoryBank::new(databank_core::Schema::new()));
    /// bank.save("person", "ada", json!({"name": "Ada"})).await?;
    /// assert!(bank.kinds().await?.contains(&"person".to_string()));
    /// # Ok(()) }
    /// ```
    pub async fn kinds(&self) -> Result<Vec<String>> {
        let driver = self.supporting(|caps| caps.supports_kinds, "supports_kinds")?;
        let mut named = driver.kinds().await?;
        named.sort();
        named.dedup();
        let mut kinds = Vec::with_capacity(named.len());
        for kind in named {
            // Its first live record is enough: a scan's first page, not a count of them all
            // (a pass over every record on some backends).
            if validate::kind(&kind).is_ok() && self.scan(&kind).try_next().await?.is_some() {
                kinds.push(kind);
            }
        }
        Ok(kinds)
    }

    /// The number of live records of a type.
    pub async fn count(&self, kind: &str) -> Result<u64> {
        validate::kind(kind)?;
        self.live()?.count(kind).await
    }

    /// How many records of a type expired and still wait for [`purge_expired`](Self::purge_expired)
    /// (or the backend's own TTL): what a purge would remove now. `Unsupported` where the
    /// backend cannot tell ([`Capabilities::supports_count_expired`] says which), before the
    /// driver is called.
    ///
    /// ```
    /// # use databank_core::{Bank, Error, json};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Error> {
    /// # let bank = Bank::new(databank_memory::MemoryBank::new(databank_core::Schema::new()));
    /// let gone = chrono::Utc::now() - chrono::Duration::seconds(1);
    /// bank.save("session", "old", json!({})).expires_at(Some(gone)).await?;
    /// if bank.capabilities().supports_count_expired {
    ///     assert!(bank.count_expired("session").await? <= 1);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn count_expired(&self, kind: &str) -> Result<u64> {
        validate::kind(kind)?;
        let driver =
            self.supporting(|caps| caps.supports_count_expired, "supports_count_expired")?;
        driver.count_expired(kind).await
    }

    /// Deletes the expired records of a type; returns how many it deleted (records the
    /// backend's own TTL removed first are not counted).
    pub async fn purge_expired(&self, kind: &str) -> Result<u64> {
        validate::kind(kind)?;
        self.live()?.purge_expired(kind).await
    }

    /// Closes the bank for every clone of this handle: later calls fail with `Closed`.
    /// Idempotent.
    pub async fn close(&self) -> Result<()> {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.shared.driver.close().await
    }

    /// Adds `delta` to an integer record atomically and returns the new value. A missing record
    /// starts at 0; a non-integer, or a result outside `i64`, is `WrongType`.
    pub async fn incr_by(&self, kind: &str, id: &str, delta: i64) -> Result<i64> {
        self.key(kind, id)?.incr_by(kind, id, delta).await
    }

    /// Adds one to a counter and returns the new value.
    pub async fn incr(&self, kind: &str, id: &str) -> Result<i64> {
        self.incr_by(kind, id, 1).await
    }

    /// Subtracts one from a counter and returns the new value.
    pub async fn decr(&self, kind: &str, id: &str) -> Result<i64> {
        self.incr_by(kind, id, -1).await
    }

    /// Adds an item at the end of an array record (a missing one starts as `[]`); returns the
    /// new length.
    pub async fn append(&self, kind: &str, id: &str, item: Value) -> Result<usize> {
        self.checked(kind, id, &item)?.append(kind, id, item).await
    }

    /// Adds an item at the start of an array record (a missing one starts as `[]`); returns the
    /// new length.
    pub async fn prepend(&self, kind: &str, id: &str, item: Value) -> Result<usize> {
        self.checked(kind, id, &item)?.prepend(kind, id, item).await
    }

    /// Removes the first item deep-equal to `item` from an array record; whether one was there.
    pub async fn remove(&self, kind: &str, id: &str, item: &Value) -> Result<bool> {
        self.checked(kind, id, item)?.remove(kind, id, item).await
    }

    /// The whole array of a list record (empty for a missing record); a non-array is
    /// `WrongType`.
    pub async fn list(&self, kind: &str, id: &str) -> Result<Vec<Value>> {
        match self.read(kind, id).await {
            Ok(Record {
                value: Value::Array(items),
                ..
            }) => Ok(items),
            Ok(_) => Err(Error::wrong_type(kind, id, "an array")),
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// The item at `index` of an array record; past the end (or a missing record) is
    /// `NoSuchItem`.
    pub async fn item(&self, kind: &str, id: &str, index: usize) -> Result<Value> {
        let items = self.list(kind, id).await?;
        items
            .into_iter()
            .nth(index)
            .ok_or_else(|| Error::NoSuchItem {
                kind: kind.to_owned(),
                id: id.to_owned(),
                index,
            })
    }

    /// The items in `start..end` of an array record, clamped to its length; a missing record
    /// is an empty list.
    pub async fn slice(
        &self,
        kind: &str,
        id: &str,
        start: usize,
        end: usize,
    ) -> Result<Vec<Value>> {
        let items = self.list(kind, id).await?;
        let end = end.min(items.len());
        let start = start.min(end);
        Ok(items[start..end].to_vec())
    }

    /// The position of the first item deep-equal to `item`, if any.
    pub async fn index_of(&self, kind: &str, id: &str, item: &Value) -> Result<Option<usize>> {
        Ok(self.list(kind, id).await?.iter().position(|x| x == item))
    }

    /// The number of items in an array record (0 for a missing record).
    pub async fn length(&self, kind: &str, id: &str) -> Result<usize> {
        Ok(self.list(kind, id).await?.len())
    }
}

fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value> {
    serde_json::to_value(value)
        .map_err(|e| Error::InvalidInput(format!("value does not serialize to JSON: {e}")))
}

/// A write not yet sent: await it, or first give it an expiry with
/// [`expires_at`](WriteCall::expires_at) or [`expires_in`](WriteCall::expires_in). Resolves to
/// the record's new [`Revision`].
#[must_use = "a write does nothing until it is awaited"]
#[derive(Debug)]
pub struct WriteCall<'a> {
    bank: &'a Bank,
    kind: &'a str,
    id: &'a str,
    value: Result<Value>,
    precondition: Precondition,
    expires_at: Result<Expiry>,
}

impl WriteCall<'_> {
    /// The record expires at this instant (`None`, the default: never).
    pub fn expires_at(mut self, expires_at: Expiry) -> Self {
        self.expires_at = Ok(expires_at);
        self
    }

    /// The record expires this long from now.
    pub fn expires_in(mut self, ttl: Duration) -> Self {
        self.expires_at = chrono::Duration::from_std(ttl)
            .ok()
            .and_then(|ttl| Utc::now().checked_add_signed(ttl))
            .map(Some)
            .ok_or_else(|| Error::InvalidInput(format!("expiry {ttl:?} from now is out of range")));
        self
    }

    async fn send(self) -> Result<Revision> {
        let value = self.value?;
        let expires_at = self.expires_at?;
        let driver = self.bank.checked(self.kind, self.id, &value)?;
        let write = Write::new(self.kind, self.id, value, self.precondition).expires_at(expires_at);
        driver.write(write).await
    }
}

impl<'a> IntoFuture for WriteCall<'a> {
    type Output = Result<Revision>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<Revision>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}
