//! Server-side web sessions over any [databank](databank_core): memory, disk, Redis, MongoDB or
//! Couchbase, chosen by URL; the Rust port of the JavaScript `connect-databank`.
//!
//! - [`DatabankStore`]: `get`, `set`, `create_session`, `touch`, `destroy`, `all`, `length`, `clear`,
//!   `cleanup`, and a periodic cleanup task.
//! - Expiry is the record's expiry (native TTL where the backend has one); expired sessions are
//!   never returned or counted.
//! - Optimistic concurrency: a session saved after another request changed it is merged or
//!   rejected ([`ConflictPolicy`]), never silently overwritten.
//! - A load is one read and a save one atomic write (a patch of the keys a request changed,
//!   or a compare-and-set): nothing is cached in-process, so any number of app instances share
//!   sessions without sticky routing.
//! - Session ids the store makes are 256 random bits from the OS; logs show a short keyed hash
//!   of an id, never the id.
//! - Adapters: `tower-sessions` feature ([`tower`] module, for axum) and `actix` feature.
//!
//! # Stored format
#![doc = include_str!("format.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod id;
mod origins;
mod session;
mod store;

#[cfg(feature = "actix")]
pub mod actix;
#[cfg(feature = "tower-sessions")]
pub mod tower;

pub use error::{Result, SessionError};
pub use session::{Session, ORIGIN_KEY};
pub use store::{CleanupTask, ConflictPolicy, DatabankStore, StoreOptions};

/// The stored format's decoder, public only for the fuzz targets (feature `fuzzing`).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod format {
    pub use crate::session::{decode, encode};
}
