//! `Bank`: the handle users hold, which checks input once for every driver.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::databank::{Expiry, RecordStream};
use crate::{validate, Capabilities, Criteria, Databank, Error, Record, Result, Revision};

/// A cheap-to-clone handle on a driver that enforces the [input rules](crate::validate) and
/// [`close`](Databank::close) for every driver in one place.
///
/// ```
/// # use databank_core::{Bank, Databank, Error};
/// # async fn demo(bank: Bank) -> Result<(), Error> {
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
    driver: Box<dyn Databank>,
    closed: AtomicBool,
}

impl Bank {
    /// Wraps a driver.
    pub fn new(driver: impl Databank + 'static) -> Self {
        Bank::from_box(Box::new(driver))
    }

    /// Wraps a boxed driver (what registry open functions return).
    pub fn from_box(driver: Box<dyn Databank>) -> Self {
        Bank {
            shared: Arc::new(Shared {
                driver,
                closed: AtomicBool::new(false),
            }),
        }
    }

    /// The wrapped driver.
    pub fn driver(&self) -> &dyn Databank {
        self.shared.driver.as_ref()
    }

    fn live(&self) -> Result<&dyn Databank> {
        if self.shared.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(self.driver())
        }
    }

    fn key(&self, kind: &str, id: &str) -> Result<&dyn Databank> {
        validate::kind(kind)?;
        validate::id(id)?;
        self.live()
    }

    fn write(&self, kind: &str, id: &str, value: &Value) -> Result<&dyn Databank> {
        validate::value(value)?;
        self.key(kind, id)
    }
}

#[async_trait]
impl Databank for Bank {
    fn capabilities(&self) -> Capabilities {
        self.driver().capabilities()
    }

    async fn create(
        &self,
        kind: &str,
        id: &str,
        value: Value,
        expires_at: Expiry,
    ) -> Result<Revision> {
        self.write(kind, id, &value)?
            .create(kind, id, value, expires_at)
            .await
    }

    async fn read(&self, kind: &str, id: &str) -> Result<Record> {
        self.key(kind, id)?.read(kind, id).await
    }

    async fn update(
        &self,
        kind: &str,
        id: &str,
        value: Value,
        expires_at: Expiry,
    ) -> Result<Revision> {
        self.write(kind, id, &value)?
            .update(kind, id, value, expires_at)
            .await
    }

    async fn update_if(
        &self,
        kind: &str,
        id: &str,
        value: Value,
        expected: Revision,
        expires_at: Expiry,
    ) -> Result<Revision> {
        self.write(kind, id, &value)?
            .update_if(kind, id, value, expected, expires_at)
            .await
    }

    async fn save(
        &self,
        kind: &str,
        id: &str,
        value: Value,
        expires_at: Expiry,
    ) -> Result<Revision> {
        self.write(kind, id, &value)?
            .save(kind, id, value, expires_at)
            .await
    }

    async fn delete(&self, kind: &str, id: &str) -> Result<()> {
        self.key(kind, id)?.delete(kind, id).await
    }

    async fn touch(&self, kind: &str, id: &str, expires_at: Expiry) -> Result<()> {
        self.key(kind, id)?.touch(kind, id, expires_at).await
    }

    fn scan<'a>(&'a self, kind: &'a str) -> RecordStream<'a> {
        match validate::kind(kind).and_then(|()| self.live()) {
            Ok(driver) => driver.scan(kind),
            Err(e) => Box::pin(futures_util::stream::once(async move { Err(e) })),
        }
    }

    async fn purge_expired(&self, kind: &str) -> Result<u64> {
        validate::kind(kind)?;
        self.live()?.purge_expired(kind).await
    }

    async fn close(&self) -> Result<()> {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.driver().close().await
    }

    async fn read_all(&self, kind: &str, ids: &[&str]) -> Result<HashMap<String, Option<Value>>> {
        validate::kind(kind)?;
        for id in ids {
            validate::id(id)?;
        }
        self.live()?.read_all(kind, ids).await
    }

    async fn search(&self, kind: &str, criteria: &Criteria) -> Result<Vec<(String, Value)>> {
        validate::kind(kind)?;
        criteria.validate()?;
        for (_, value) in criteria.fields() {
            validate::value(value)?;
        }
        self.live()?.search(kind, criteria).await
    }

    async fn count(&self, kind: &str) -> Result<u64> {
        validate::kind(kind)?;
        self.live()?.count(kind).await
    }

    async fn incr_by(&self, kind: &str, id: &str, delta: i64) -> Result<i64> {
        self.key(kind, id)?.incr_by(kind, id, delta).await
    }

    async fn append(&self, kind: &str, id: &str, item: Value) -> Result<usize> {
        self.write(kind, id, &item)?.append(kind, id, item).await
    }

    async fn prepend(&self, kind: &str, id: &str, item: Value) -> Result<usize> {
        self.write(kind, id, &item)?.prepend(kind, id, item).await
    }

    async fn remove(&self, kind: &str, id: &str, item: &Value) -> Result<bool> {
        self.write(kind, id, item)?.remove(kind, id, item).await
    }
}
