//! A databank driver that keeps one JSON file per record under a directory: embedded,
//! durable, no server.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), databank_core::Error> {
//! use databank_core::{json, Bank};
//! # let dir = tempfile::tempdir().map_err(|e| databank_core::Error::backend("doc", e))?;
//! let bank = Bank::new(databank_disk::DiskBank::open(dir.path())?);
//! bank.save("note", "first", json!({"text": "hi"})).await?;
//! assert_eq!(bank.read("note", "first").await?.value["text"], "hi");
//! # Ok(()) }
//! ```
//!
//! # Layout
#![doc = include_str!("layout.md")]
//!
//! # Guarantees and limits
//! - **Crash safety**: every write goes to a temporary file that is fsynced, renamed over the
//!   record and followed by an fsync of the directory. A reader sees the old record or the new
//!   one, never a torn one. Temporary files a crash left behind are removed at the next open
//!   (only files whose names this driver makes, in its type directories).
//! - **Concurrency**: any number of tasks in one process; writes to one record are serialised by
//!   a striped lock, so `create`, `update_if`, counters and list operations are atomic.
//! - **One process at a time**: opening takes an exclusive advisory lock on `<root>/.lock`; a
//!   second process gets a clear error instead of racing. Opening the same root twice in one
//!   process shares one lock and one set of stripes.
//! - **Search and purge scan** the type's directory (no index files): fine for thousands of
//!   records, linear in the type's size. Expiry is stored in each record.
//! - **Corrupt or foreign files** (bad JSON, a name the encoding cannot produce) are reported as
//!   [`Error::Corrupt`] naming the path by `read` and `scan`;
//!   `search` and `count` skip them with a warning. They never block other records.
//!
//! - **Paths** are limited to [`MAX_PATH_BYTES`]: an id whose file path would be longer under
//!   this root is refused with `InvalidInput` naming the limit.
//!
//! Opened by URL after [`register`]: `disk:///var/lib/app/bank` (absolute) or
//! `disk:data/bank` (relative to the working directory). `disk://data/bank` is refused: there
//! `data` would be a host name, and whether it was meant as a directory cannot be told.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod backend;
mod error;
// Public only for the fuzz targets (feature `fuzzing`), never part of the API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod codec;
#[cfg(not(feature = "fuzzing"))]
mod codec;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod path;
#[cfg(not(feature = "fuzzing"))]
mod path;
mod shared;
mod walk;

pub use backend::DiskBank;
pub use path::MAX_PATH_BYTES;

use databank_core::driver::{percent_decode, Driver, OpenFuture, Registration, Url};
use databank_core::{Error, Result, Schema};

/// Registers the `disk` scheme with [`databank_core::open`]; calling it again is harmless.
pub fn register() -> Result<()> {
    databank_core::driver::register(Registration {
        name: "disk",
        schemes: &["disk"],
        open: open_url,
    })
}

fn open_url(url: Url, _schema: Schema) -> OpenFuture {
    Box::pin(async move {
        let root = root_of(&url)?;
        let bank = tokio::task::spawn_blocking(move || DiskBank::open(root))
            .await
            .map_err(|e| Error::backend("disk", e))??;
        Ok(Box::new(bank) as Box<dyn Driver>)
    })
}

/// The directory a `disk:` URL names: `disk:///absolute/path` or `disk:relative/path`.
///
/// ```
/// use databank_core::driver::Url;
/// let url = Url::parse("disk:///var/lib/bank").map_err(|e| databank_core::Error::InvalidInput(e.to_string()))?;
/// assert_eq!(databank_disk::root_of(&url)?, std::path::PathBuf::from("/var/lib/bank"));
/// let ambiguous = Url::parse("disk://data/bank").map_err(|e| databank_core::Error::InvalidInput(e.to_string()))?;
/// assert!(databank_disk::root_of(&ambiguous).is_err());
/// # Ok::<(), databank_core::Error>(())
/// ```
pub fn root_of(url: &Url) -> Result<std::path::PathBuf> {
    if let Some(host) = url.host_str().filter(|h| !h.is_empty()) {
        return Err(Error::InvalidInput(format!(
            "disk URL {url} names a host ({host:?}): write disk:///absolute/path or disk:relative/path"
        )));
    }
    let decoded = percent_decode(url.path())
        .ok_or_else(|| Error::InvalidInput(format!("disk URL {url} has a malformed escape")))?;
    if decoded.is_empty() {
        return Err(Error::InvalidInput(format!(
            "disk URL {url} names no directory"
        )));
    }
    Ok(decoded.into())
}

#[cfg(test)]
mod tests {
    use super::root_of;
    use std::path::PathBuf;

    fn root(url: &str) -> Option<PathBuf> {
        root_of(&databank_core::driver::Url::parse(url).ok()?).ok()
    }

    #[test]
    fn urls() {
        assert_eq!(root("disk:///var/lib/bank"), Some("/var/lib/bank".into()));
        assert_eq!(root("disk:data/bank"), Some("data/bank".into()));
        assert_eq!(root("disk://data/bank"), None, "ambiguous: data is a host");
        assert_eq!(root("disk:///with%20space"), Some("/with space".into()));
        assert_eq!(root("disk:"), None);
    }
}
