//! One async CRUD + search API over many databases.
//!
//! `databank-core` holds the [`Databank`] trait, the [`Bank`] handle that checks input for every
//! driver, the [`Error`] type, the [`Schema`] of indexed fields, URL-based opening through a
//! driver [`registry`], typed helpers on [`DatabankExt`], and (feature `testkit`) the conformance
//! kit every driver runs.
//!
//! ```
//! use databank_core::{Bank, Criteria, Databank, DatabankExt, Error};
//! use serde_json::json;
//!
//! async fn demo(bank: Bank) -> Result<(), Error> {
//!     bank.create("person", "ada", json!({"name": {"last": "Lovelace"}, "born": 1815}), None).await?;
//!     let hits = bank.search("person", &Criteria::new().eq("name.last", "Lovelace")).await?;
//!     assert_eq!(hits.len(), 1);
//!     assert_eq!(bank.incr("visits", "ada").await?, 1);
//!     Ok(())
//! }
//! ```
//!
//! # Writing a driver
//!
//! A driver outside this repository is a crate that depends on `databank-core` and:
//!
//! 1. implements [`Databank`] for its client type. The required methods are `capabilities`,
//!    `create`, `read`, `update`, `update_if`, `save`, `delete`, `touch`, `scan`,
//!    `purge_expired` and `close`; their doc comments give the exact semantics (errors, expiry,
//!    revisions). Counters, list operations, `read_all`, `search` and `count` have provided
//!    implementations built on the required ones; override those the backend does natively and
//!    say so in [`Capabilities`]. Input arrives checked when callers go through [`Bank`].
//! 2. offers `register()`, which calls [`register`] with a [`registry::Driver`] naming its URL
//!    schemes, so that [`open`] finds it;
//! 3. runs the conformance kit from its own tests (dev-dependency on `databank-core` with the
//!    `testkit` feature). A harness opens a fresh, private namespace of the backend each time
//!    it is made, and the same namespace again on each `open` call:
//!
//! ```ignore
//! // tests/conformance.rs of the driver crate
//! use databank_core::testkit::Harness;
//! use databank_core::{Bank, Result, Schema};
//!
//! struct MyHarness { namespace: String }
//!
//! #[async_trait::async_trait]
//! impl Harness for MyHarness {
//!     async fn open(&self, schema: Schema) -> Result<Bank> {
//!         Ok(Bank::new(my_driver::MyBank::connect(&self.namespace, schema).await?))
//!     }
//! }
//!
//! fn harness() -> MyHarness {
//!     MyHarness { namespace: databank_core::testkit::unique_name("kit") }
//! }
//!
//! databank_core::conformance_tests!(harness);
//! ```
//!
//! `cargo test` then lists every behaviour as its own test (`create_then_read`,
//! `update_missing_is_not_found`, ...), so a failure names the behaviour that broke.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod bank;
mod capability;
pub mod criteria;
mod databank;
mod error;
mod ext;
mod record;
pub mod registry;
mod schema;
pub mod validate;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use bank::Bank;
pub use capability::Capabilities;
pub use criteria::Criteria;
pub use databank::{Databank, Expiry, RecordStream};
pub use error::{Error, Result};
pub use ext::DatabankExt;
pub use record::{is_expired, Record, Revision};
pub use registry::{open, register};
pub use schema::Schema;

pub use async_trait::async_trait;
pub use serde_json::{json, Value};
