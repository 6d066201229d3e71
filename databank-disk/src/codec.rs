//! The record file format and crash-safe file operations (blocking; run them off the runtime).
//!
//! A record file is one JSON object:
//! `{"databank":1,"id":"<id>","revision":<u64>,"expires_at":<unix ms or null>,"value":<value>}`.
//! It is written to a temporary file in the same directory, fsynced, renamed over the record
//! file, and the directory fsynced: a reader sees the old file or the new one, never a mix.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use databank_core::driver::{record, DateTime, Utc};
use databank_core::{Error, Expiry, Record, Revision};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::io_error;
use crate::path::TEMP_PREFIX;

/// The format version written in every record file.
pub const FORMAT: u32 = 1;

#[derive(Serialize)]
struct StoredRef<'a> {
    databank: u32,
    id: &'a str,
    revision: u64,
    expires_at: Option<i64>,
    value: &'a Value,
}

#[derive(Deserialize)]
struct Stored {
    databank: u32,
    id: String,
    revision: u64,
    expires_at: Option<i64>,
    value: Value,
}

/// The head of a record file: what counting needs, the value skipped unread.
#[derive(Deserialize)]
struct StoredHead {
    databank: u32,
    id: String,
    expires_at: Option<i64>,
}

/// A record as read from its file.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The id written in the file.
    pub id: String,
    /// The record, expired or not.
    pub record: Record,
}

/// Reads a record file; `Ok(None)` when there is none.
pub fn load(path: &Path) -> Result<Option<Loaded>, Error> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path, e)),
    };
    parse(path, &bytes).map(Some)
}

/// The id and expiry in a record file, its value skipped unbuilt (what a count needs);
/// `Ok(None)` when there is none. Corrupt as [`parse`] would say, bar the value's shape.
pub fn load_head(path: &Path) -> Result<Option<(String, Expiry)>, Error> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path, e)),
    };
    let corrupt = |reason: String| Error::Corrupt {
        location: path.display().to_string(),
        reason,
    };
    let head: StoredHead = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    if head.databank != FORMAT {
        return Err(corrupt(format!("unknown format version {}", head.databank)));
    }
    let expires_at = match head.expires_at {
        Some(ms) => Some(
            DateTime::<Utc>::from_timestamp_millis(ms)
                .ok_or_else(|| corrupt(format!("expiry {ms} is out of range")))?,
        ),
        None => None,
    };
    Ok(Some((head.id, expires_at)))
}

/// Parses the bytes of a record file (`path` only names it in errors). Never panics: anything
/// that is not a record of a known format version is [`Error::Corrupt`].
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Loaded, Error> {
    let corrupt = |reason: String| Error::Corrupt {
        location: path.display().to_string(),
        reason,
    };
    let stored: Stored = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    if stored.databank != FORMAT {
        return Err(corrupt(format!(
            "unknown format version {}",
            stored.databank
        )));
    }
    let expires_at = match stored.expires_at {
        Some(ms) => Some(
            DateTime::<Utc>::from_timestamp_millis(ms)
                .ok_or_else(|| corrupt(format!("expiry {ms} is out of range")))?,
        ),
        None => None,
    };
    Ok(Loaded {
        id: stored.id,
        record: record(stored.value, Revision::new(stored.revision), expires_at),
    })
}

/// Writes a record file crash-safely (temp file, fsync, rename, fsync directory).
pub fn store(
    path: &Path,
    id: &str,
    value: &Value,
    revision: Revision,
    expires_at: Expiry,
) -> Result<(), Error> {
    let stored = StoredRef {
        databank: FORMAT,
        id,
        revision: revision.get(),
        expires_at: expires_at.map(|t| t.timestamp_millis()),
        value,
    };
    let bytes = serde_json::to_vec(&stored).map_err(|e| Error::backend("disk", e))?;
    let dir = parent(path)?;
    fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    let temp = temp_path(path)?;
    let written = write_synced(&temp, &bytes).and_then(|()| fs::rename(&temp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(io_error(path, e));
    }
    sync_dir(dir)
}

/// Deletes a record file; `Ok(false)` when there was none.
pub fn remove(path: &Path) -> Result<bool, Error> {
    match fs::remove_file(path) {
        Ok(()) => {
            sync_dir(parent(path)?)?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_error(path, e)),
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Fsyncs a directory so a rename or removal in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<(), Error> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, e))
}

fn parent(path: &Path) -> Result<&Path, Error> {
    path.parent()
        .ok_or_else(|| Error::InvalidInput(format!("{} has no directory", path.display())))
}

fn temp_path(path: &Path) -> Result<PathBuf, Error> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::InvalidInput(format!("{} has no file name", path.display())))?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Ok(path.with_file_name(format!("{TEMP_PREFIX}{}-{n}-{name}", std::process::id())))
}
