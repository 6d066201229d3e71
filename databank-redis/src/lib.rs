//! A [`Databank`] on Redis, through the official `redis` crate's multiplexed, self-reconnecting
//! `ConnectionManager`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), databank_core::Error> {
//! databank_redis::register();
//! let bank = databank_core::open("redis://127.0.0.1:6379/0?prefix=app", databank_core::Schema::new()).await?;
//! # Ok(()) }
//! ```
//!
//! Native strengths used: counters with `HINCRBY`, expiry with `PEXPIREAT` (plus a sorted set of
//! expiries, so `count` is `ZCOUNT` and `purge_expired` costs O(expired)), search on declared
//! indices with `SINTER` over index sets, and every write as one Lua script so a record and its
//! index entries never disagree. List operations are compare-and-set loops over the atomic
//! `update_if` script (JSON arrays are stored as JSON text).
//!
//! # Key layout
#![doc = include_str!("keys.md")]
//!
//! # Outages
//! Every call is bounded by the URL's `timeout_ms` (default 2000): while the server is down,
//! calls fail with the retryable [`Error::NotConnected`](databank_core::Error::NotConnected)
//! instead of hanging, and once it is back they succeed again on the same bank (the connection
//! manager reconnects by itself).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod bank;
mod config;
mod keys;
mod scripts;

pub use bank::RedisBank;
pub use config::{RedisConfig, DEFAULT_PREFIX, DEFAULT_TIMEOUT};

use databank_core::registry::{Driver, OpenFuture};
use databank_core::{Databank, Schema};

/// Registers the `redis` and `rediss` schemes with [`databank_core::open`].
pub fn register() {
    databank_core::register(Driver {
        name: "redis",
        schemes: &["redis", "rediss"],
        open: open_url,
    });
}

fn open_url(url: url::Url, schema: Schema) -> OpenFuture {
    Box::pin(async move {
        let config = RedisConfig::from_url(url.as_str())?;
        Ok(Box::new(RedisBank::connect(config, schema).await?) as Box<dyn Databank>)
    })
}
