//! A [`Databank`] that keeps one JSON file per record under a
//! directory: embedded, durable, no server.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), databank_core::Error> {
//! use databank_core::{Bank, Databank};
//! # let dir = tempfile::tempdir().map_err(|e| databank_core::Error::backend("doc", e))?;
//! let bank = Bank::new(databank_disk::DiskBank::open(dir.path())?);
//! bank.save("note", "first", serde_json::json!({"text": "hi"}), None).await?;
//! assert_eq!(bank.read("note", "first").await?.value["text"], "hi");
//! # Ok(()) }
//! ```
//!
//! # Layout
//! `<root>/<type>/<id>.json`, with type names and ids encoded as described in [`path`]: any id
//! round-trips, none can leave the directory or collide with another, even on a case-insensitive
//! filesystem. The file format is described in [`mod@file`].
//!
//! # Guarantees and limits
//! - **Crash safety**: every write goes to a temporary file that is fsynced, renamed over the
//!   record and followed by an fsync of the directory. A reader sees the old record or the new
//!   one, never a torn one. Temporary files a crash left behind are removed at the next open.
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
//! Opened by URL after [`register`]: `disk:///var/lib/app/bank` (absolute) or
//! `disk:data/bank` (relative to the working directory).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod file;
pub mod path;
mod shared;
mod store;

pub use store::DiskBank;

use databank_core::registry::{Driver, OpenFuture};
use databank_core::{Databank, Error, Schema};

/// Registers the `disk` scheme with [`databank_core::open`].
pub fn register() {
    databank_core::register(Driver {
        name: "disk",
        schemes: &["disk"],
        open: open_url,
    });
}

fn open_url(url: url::Url, _schema: Schema) -> OpenFuture {
    Box::pin(async move {
        let root = root_of(&url)?;
        let bank = tokio::task::spawn_blocking(move || DiskBank::open(root))
            .await
            .map_err(|e| Error::backend("disk", e))??;
        Ok(Box::new(bank) as Box<dyn Databank>)
    })
}

/// The directory a `disk:` URL names.
///
/// ```
/// let url = url::Url::parse("disk:///var/lib/bank").map_err(|e| databank_core::Error::InvalidInput(e.to_string()))?;
/// assert_eq!(databank_disk::root_of(&url)?, std::path::PathBuf::from("/var/lib/bank"));
/// # Ok::<(), databank_core::Error>(())
/// ```
pub fn root_of(url: &url::Url) -> Result<std::path::PathBuf, Error> {
    let path = url
        .to_file_path()
        .ok()
        .filter(|_| url.host_str().is_none_or(str::is_empty))
        .or_else(|| {
            let decoded = percent_decode(url.path())?;
            match url.host_str() {
                Some(host) if !host.is_empty() => {
                    Some(std::path::Path::new(host).join(decoded.trim_start_matches('/')))
                }
                _ => Some(decoded.into()),
            }
        })
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or_else(|| Error::InvalidInput(format!("disk URL {url} names no directory")))?;
    Ok(path)
}

fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = char::from(bytes.next()?).to_digit(16)?;
            let lo = char::from(bytes.next()?).to_digit(16)?;
            out.push(u8::try_from(hi * 16 + lo).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::root_of;
    use std::path::PathBuf;

    fn root(url: &str) -> Option<PathBuf> {
        root_of(&url::Url::parse(url).ok()?).ok()
    }

    #[test]
    fn urls() {
        assert_eq!(root("disk:///var/lib/bank"), Some("/var/lib/bank".into()));
        assert_eq!(root("disk:data/bank"), Some("data/bank".into()));
        assert_eq!(root("disk://data/bank"), Some("data/bank".into()));
        assert_eq!(root("disk:///with%20space"), Some("/with space".into()));
        assert_eq!(root("disk:"), None);
    }
}
