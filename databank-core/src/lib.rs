//! One async CRUD + search API over many databases.
//!
//! Users hold a [`Bank`]: every operation is a method on it, and every driver (memory, disk,
//! Redis, MongoDB, Couchbase, or a third party's) behaves the same behind it. A bank is opened
//! from a URL once its driver is registered, or wrapped around a driver value with
//! [`Bank::new`].
//!
//! ```
//! use databank_core::{json, Bank, Criteria, Error, Schema};
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), Error> {
//!     // Any driver: here the memory one (`databank-memory`).
//!     let bank = Bank::new(databank_memory::MemoryBank::new(Schema::new()));
//!     bank.create("person", "ada", json!({"name": {"last": "Lovelace"}, "born": 1815})).await?;
//!     let hits = bank.search("person", &Criteria::new().eq("name.last", "Lovelace")).await?;
//!     assert_eq!(hits.len(), 1);
//!     assert_eq!(bank.incr("visits", "ada").await?, 1);
//!     Ok(())
//! }
//! ```
//!
//! **Errors** are one [`Error`] enum: match on `NotFound`, `AlreadyExists`, `Conflict`...;
//! [`Error::is_retryable`] is true only when the call was certainly not applied, and
//! [`Error::OutcomeUnknown`] says when it may have been (a timeout after the request left).
//!
//! **Writing a driver**: see the [`driver`] module, which holds everything a driver author
//! needs, and [`testkit`] (feature `testkit`) for the conformance kit every driver runs.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod bank;
mod capability;
pub mod criteria;
pub mod driver;
mod error;
mod patch;
mod record;
mod registry;
mod schema;
pub mod validate;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use bank::{Bank, WriteCall};
pub use capability::Capabilities;
pub use criteria::Criteria;
pub use error::{Error, Result};
pub use patch::{Applied, PatchCall};
pub use record::{Expiry, IfChanged, Record, Revision};
pub use registry::{open, redact, schemes};
pub use schema::Schema;

pub use serde_json::{json, Value};
