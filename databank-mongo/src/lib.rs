//! A databank driver on MongoDB, through the official `mongodb` crate (3.x).
//!
//! ```no_run
//! // Compiled, not run, by the doc tests: it needs a MongoDB server at this address.
//! use databank_core::{Bank, Schema};
//! use databank_mongo::{MongoBank, MongoConfig};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), databank_core::Error> {
//!     let config = MongoConfig::from_url("mongodb://127.0.0.1:27017/app")?;
//!     let bank = Bank::new(MongoBank::connect(config, Schema::new()).await?);
//!     Ok(())
//! }
//! ```
//!
//! With the `databank` crate (feature `mongo`), `databank::open(url, schema)` opens it by URL.
//!
//! One collection per type in the URL's database (default `databank`), `_id` = the record id.
//! Native strengths used: `insert` with the duplicate-key error (11000) for `create`, upserting
//! `replace` for `save`, a revision filter for `update_if`, `$inc` for counters, a TTL index on
//! the expiry plus a read-time filter (the TTL monitor only runs every 60 s), and indices on the
//! declared fields, created at open (idempotently). List operations are compare-and-set loops
//! over a revision-checked write, since values are stored as exact JSON text (see below).
//!
//! # Document layout
#![doc = include_str!("layout.md")]
//!
//! # Outages
//! Every call is bounded by the URL's `timeout_ms` (default 5000): while the server is down,
//! calls fail with [`Error::Unavailable`](databank_core::Error::Unavailable) when the request
//! never left (no server selected: safe to retry) and
//! [`Error::OutcomeUnknown`](databank_core::Error::OutcomeUnknown) when it may have been applied
//! (a timeout or a broken connection after sending); once it is back the same bank works again.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod backend;
mod codec;
mod config;
mod error;

pub use backend::MongoBank;
pub use config::{MongoConfig, DEFAULT_DATABASE, DEFAULT_TIMEOUT};

use databank_core::driver::{Driver, OpenFuture, Registration, Url};
use databank_core::{Result, Schema};

/// Registers the `mongodb` and `mongodb+srv` schemes with [`databank_core::open`]; calling it
/// again is harmless.
pub fn register() -> Result<()> {
    databank_core::driver::register(Registration {
        name: "mongo",
        schemes: &["mongodb", "mongodb+srv"],
        open: open_url,
    })
}

fn open_url(url: Url, schema: Schema) -> OpenFuture {
    Box::pin(async move {
        let config = MongoConfig::from_url(url.as_str())?;
        Ok(Box::new(MongoBank::connect(config, schema).await?) as Box<dyn Driver>)
    })
}
