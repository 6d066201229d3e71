//! A databank driver on Redis and Redis Cluster, through the official `redis` crate: its
//! multiplexed, self-reconnecting `ConnectionManager` for one server, its cluster client (which
//! follows `MOVED`/`ASK`, retries `TRYAGAIN` and finds promoted replicas) for a cluster.
//!
//! ```no_run
//! // Compiled, not run, by the doc tests: it needs a Redis server and a cluster at these addresses.
//! use databank_core::{Bank, Schema};
//! use databank_redis::{RedisBank, RedisConfig};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), databank_core::Error> {
//!     let config = RedisConfig::from_url("redis://127.0.0.1:6379/0?prefix=app")?;
//!     let bank = Bank::new(RedisBank::connect(config, Schema::new()).await?);
//!     // A cluster: any of its nodes, the others are discovered.
//!     let config =
//!         RedisConfig::from_url("redis-cluster://127.0.0.1:7000?node=127.0.0.1:7001&prefix=app")?;
//!     let clustered = Bank::new(RedisBank::connect(config, Schema::new()).await?);
//!     Ok(())
//! }
//! ```
//!
//! With the `databank` crate (feature `redis`), `databank::open(url, schema)` opens the same
//! banks by URL.
//!
//! Redis Sentinel is not supported: the `redis` crate's sentinel client has no
//! self-reconnecting manager to build on; point the URL at the current primary (or a proxy).
//!
//! Native strengths used: counters with `HINCRBY`, expiry with `PEXPIREAT` (plus a sorted set of
//! expiries, so `count` is `ZCOUNT` and `purge_expired` costs O(expired)), search on declared
//! indices with `SINTER` over index sets, and every write as one Lua script so a record and its
//! index entries never disagree (a session's patch, which touches no index, and a save with no
//! precondition of a type with no index run as a `MULTI`/`EXEC` of plain commands instead: see
//! the key layout). List operations are compare-and-set loops over the atomic
//! conditional put script (JSON arrays are stored as JSON text).
//!
//! # Key layout
#![doc = include_str!("layout.md")]
//!
//! # Outages
//! Every call is bounded by the URL's `timeout_ms` (default 2000): while the server is down,
//! calls fail instead of hanging, with
//! [`Error::Unavailable`](databank_core::Error::Unavailable) when the command never reached the
//! server (safe to retry) and [`Error::OutcomeUnknown`](databank_core::Error::OutcomeUnknown)
//! when it may have run (a timeout or a dropped connection mid-call); once the server is back
//! calls succeed again on the same bank (the connection manager reconnects by itself). On a
//! cluster, a failover looks the same from the caller: calls to the dead master's slots fail
//! with those two errors until its replica is promoted, then succeed; with `wait_replicas=N`
//! a write is acknowledged only once N replicas hold it.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod backend;
mod codec;
mod config;
mod connection;
mod error;
mod keys;
mod scripts;
mod upgrade;

pub use backend::RedisBank;
pub use config::{RedisConfig, DEFAULT_PREFIX, DEFAULT_TIMEOUT};
pub use keys::{bucket, BUCKETS};
pub use upgrade::{upgrade, OldLayout, Upgrade};

use databank_core::driver::{Driver, OpenFuture, Registration, Url};
use databank_core::{Result, Schema};

/// Registers the `redis`, `rediss`, `redis-cluster` and `rediss-cluster` schemes with
/// [`databank_core::open`]; calling it again is harmless.
pub fn register() -> Result<()> {
    databank_core::driver::register(Registration {
        name: "redis",
        schemes: &["redis", "rediss", "redis-cluster", "rediss-cluster"],
        open: open_url,
    })
}

fn open_url(url: Url, schema: Schema) -> OpenFuture {
    Box::pin(async move {
        let config = RedisConfig::from_url(url.as_str())?;
        Ok(Box::new(RedisBank::connect(config, schema).await?) as Box<dyn Driver>)
    })
}
