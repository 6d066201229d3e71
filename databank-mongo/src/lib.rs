//! A [`Databank`] on MongoDB, through the official `mongodb` crate (3.x).
//!
//! ```no_run
//! # async fn demo() -> Result<(), databank_core::Error> {
//! databank_mongo::register();
//! let bank = databank_core::open("mongodb://127.0.0.1:27017/app", databank_core::Schema::new()).await?;
//! # Ok(()) }
//! ```
//!
//! One collection per type in the URL's database (default `databank`), `_id` = the record id.
//! Native strengths used: `insert` with the duplicate-key error (11000) for `create`, upserting
//! `replace` for `save`, a revision filter for `update_if`, `$inc` for counters, a TTL index on
//! the expiry plus a read-time filter (the TTL monitor only runs every 60 s), and indices on the
//! declared fields, created at open (idempotently). List operations are compare-and-set loops
//! over `update_if`, since values are stored as exact JSON text (see below).
//!
//! # Document layout
#![doc = include_str!("document.md")]
//!
//! # Outages
//! Every call is bounded by the URL's `timeout_ms` (default 5000): while the server is down,
//! calls fail with the retryable [`Error::NotConnected`](databank_core::Error::NotConnected),
//! and once it is back the same bank works again.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod bank;
mod config;
mod document;

pub use bank::MongoBank;
pub use config::{MongoConfig, DEFAULT_DATABASE, DEFAULT_TIMEOUT};

use databank_core::registry::{Driver, OpenFuture};
use databank_core::{Databank, Schema};

/// Registers the `mongodb` and `mongodb+srv` schemes with [`databank_core::open`].
pub fn register() {
    databank_core::register(Driver {
        name: "mongo",
        schemes: &["mongodb", "mongodb+srv"],
        open: open_url,
    });
}

fn open_url(url: url::Url, schema: Schema) -> OpenFuture {
    Box::pin(async move {
        let config = MongoConfig::from_url(url.as_str())?;
        Ok(Box::new(MongoBank::connect(config, schema).await?) as Box<dyn Databank>)
    })
}
