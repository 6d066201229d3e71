//! Conveniences built on the trait, for every driver at once.

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::databank::Expiry;
use crate::{Databank, Error, Record, Result, Revision};

/// Typed helpers and read-only list operations, implemented for every [`Databank`].
///
/// ```
/// # use databank_core::{Bank, DatabankExt, Error};
/// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
/// struct Person { name: String }
///
/// # async fn demo(bank: Bank) -> Result<(), Error> {
/// bank.save_as("person", "ada", &Person { name: "Ada".into() }, None).await?;
/// let ada: Person = bank.read_as("person", "ada").await?;
/// assert_eq!(ada.name, "Ada");
/// assert_eq!(bank.incr("hits", "home").await?, 1);
/// # Ok(()) }
/// ```
#[async_trait]
pub trait DatabankExt: Databank {
    /// Reads a record and deserializes it; a value of the wrong shape is `InvalidInput`.
    async fn read_as<T: DeserializeOwned>(&self, kind: &str, id: &str) -> Result<T> {
        let record = self.read(kind, id).await?;
        serde_json::from_value(record.value).map_err(|e| {
            Error::InvalidInput(format!(
                "{kind} {id:?} does not have the expected shape: {e}"
            ))
        })
    }

    /// Serializes a value and [`save`](Databank::save)s it.
    async fn save_as<T: Serialize + Sync>(
        &self,
        kind: &str,
        id: &str,
        value: &T,
        expires_at: Expiry,
    ) -> Result<Revision> {
        let value = serde_json::to_value(value)
            .map_err(|e| Error::InvalidInput(format!("value does not serialize to JSON: {e}")))?;
        self.save(kind, id, value, expires_at).await
    }

    /// Adds one to a counter and returns the new value (see [`Databank::incr_by`]).
    async fn incr(&self, kind: &str, id: &str) -> Result<i64> {
        self.incr_by(kind, id, 1).await
    }

    /// Subtracts one from a counter and returns the new value (see [`Databank::incr_by`]).
    async fn decr(&self, kind: &str, id: &str) -> Result<i64> {
        self.incr_by(kind, id, -1).await
    }

    /// The item at `index` of an array record; past the end (or a missing record) is `NoSuchItem`.
    async fn item(&self, kind: &str, id: &str, index: usize) -> Result<Value> {
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

    /// The items in `start..end` of an array record, clamped to its length (like `Vec::get`
    /// with the range cut to fit); a missing record is an empty list.
    async fn slice(&self, kind: &str, id: &str, start: usize, end: usize) -> Result<Vec<Value>> {
        let items = self.list(kind, id).await?;
        let end = end.min(items.len());
        let start = start.min(end);
        Ok(items[start..end].to_vec())
    }

    /// The position of the first item deep-equal to `item`, if any.
    async fn index_of(&self, kind: &str, id: &str, item: &Value) -> Result<Option<usize>> {
        Ok(self.list(kind, id).await?.iter().position(|x| x == item))
    }

    /// The number of items in an array record (0 for a missing record).
    async fn length(&self, kind: &str, id: &str) -> Result<usize> {
        Ok(self.list(kind, id).await?.len())
    }

    /// The whole array of a list record (empty for a missing record); a non-array is `WrongType`.
    async fn list(&self, kind: &str, id: &str) -> Result<Vec<Value>> {
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
}

impl<B: Databank + ?Sized> DatabankExt for B {}
