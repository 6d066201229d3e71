//! An in-memory databank driver: fast, concurrent, and gone when the process ends.
//!
//! Every operation is native but expiry: declared indices are kept as hash maps for `search`,
//! counters, lists, patches and `update_if` run under one short lock, and expiries are kept
//! ordered so `purge_expired` costs O(expired) (no background task removes expired records:
//! reads ignore them, a purge deletes them). It lists its types and counts expired records; it
//! is neither persistent nor shared between processes.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), databank_core::Error> {
//! use databank_core::{json, Bank, Schema};
//! let bank = Bank::new(databank_memory::MemoryBank::new(Schema::new()));
//! bank.save("greeting", "en", json!({"text": "hello"})).await?;
//! assert_eq!(bank.read("greeting", "en").await?.value["text"], "hello");
//! # Ok(()) }
//! ```
//!
//! # Layout
#![doc = include_str!("layout.md")]
//!
//! Opened by URL after [`register`]: `memory://` (each open is a new, empty bank).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod backend;
mod table;

use databank_core::driver::{Driver, OpenFuture, Registration, Url};
use databank_core::{Result, Schema};

pub use backend::MemoryBank;

/// Registers the `memory` scheme with [`databank_core::open`]; calling it again is harmless.
pub fn register() -> Result<()> {
    databank_core::driver::register(Registration {
        name: "memory",
        schemes: &["memory"],
        open: open_url,
    })
}

fn open_url(_url: Url, schema: Schema) -> OpenFuture {
    Box::pin(async move { Ok(Box::new(MemoryBank::new(schema)) as Box<dyn Driver>) })
}
