//! A databank driver on Couchbase Server, through the official `couchbase` crate (1.x, pure Rust).
//!
//! ```no_run
//! // Compiled, not run, by the doc tests: it needs a Couchbase Server at this address.
//! use databank_core::{Bank, Schema};
//! use databank_couchbase::{CouchbaseBank, CouchbaseConfig};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), databank_core::Error> {
//!     // The password may also come from $DATABANK_COUCHBASE_PASSWORD.
//!     let config = CouchbaseConfig::from_url("couchbase://app:secret@127.0.0.1/databank?scope=web")?;
//!     let schema = Schema::new().index("user", ["email"]);
//!     let bank = Bank::new(CouchbaseBank::connect(config, schema).await?);
//!     Ok(())
//! }
//! ```
//!
//! With the `databank` crate (feature `couchbase`), `databank::open(url, schema)` opens it by
//! URL.
//!
//! Couchbase's native strengths, used: KV `insert` (gives `AlreadyExists`), `replace` with CAS
//! (`update`, `update_if`, `touch`), `upsert` (`save`), document expiry, sub-document counters
//! (`incr`) and array operations (`append`, `prepend`, `remove`), and SQL++ on secondary
//! indices created from the schema at open for search, with every value a query parameter.
//! See [`CouchbaseConfig`] for the URL.
//!
//! # Layout
#![doc = include_str!("layout.md")]
//!
//! # Outages
//! Every call is bounded by the URL's `timeout_ms` (default 5000): while the cluster is
//! unreachable, calls fail with [`Error::Unavailable`](databank_core::Error::Unavailable) (not
//! sent: safe to retry) or [`Error::OutcomeUnknown`](databank_core::Error::OutcomeUnknown) (a
//! timeout, a cancelled request or an ambiguous durability answer: it may have been applied).
//!
//! # Testing
//! `tests/conformance.rs` runs the whole conformance kit against the cluster named by
//! `DATABANK_TEST_COUCHBASE_URL`; `cargo xtask services up couchbase` starts one in Docker and
//! prints that line.

#![forbid(unsafe_code)]
// The SDK's futures nest deeply; the async trait methods need more than the default 128.
#![recursion_limit = "256"]
#![deny(missing_docs)]

mod backend;
mod codec;
mod config;
mod error;
mod patch;
mod statements;

pub use backend::CouchbaseBank;
pub use config::{
    CouchbaseConfig, DEFAULT_COLLECTION, DEFAULT_SCOPE, DEFAULT_TIMEOUT, PASSWORD_ENV,
};

use databank_core::driver::{Driver, OpenFuture, Registration, Url};
use databank_core::{Result, Schema};

/// Registers the `couchbase` and `couchbases` schemes with [`databank_core::open`]; calling it
/// again is harmless.
pub fn register() -> Result<()> {
    databank_core::driver::register(Registration {
        name: "couchbase",
        schemes: &["couchbase", "couchbases"],
        open: open_url,
    })
}

fn open_url(url: Url, schema: Schema) -> OpenFuture {
    Box::pin(async move {
        let config = CouchbaseConfig::from_url(url.as_str())?;
        Ok(Box::new(CouchbaseBank::connect(config, schema).await?) as Box<dyn Driver>)
    })
}
