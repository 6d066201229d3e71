//! What every handle on one root in this process shares: the process lock, the record stripes and
//! the revision clock.

use std::fs::{self, File, TryLockError};
use std::hash::BuildHasher;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use databank_core::{Error, Revision};

use crate::error::io_error;
use crate::path::is_temp_name;

const STRIPES: usize = 256;

#[derive(Debug)]
pub(crate) struct Shared {
    pub root: PathBuf,
    _lock: File,
    stripes: Vec<tokio::sync::Mutex<()>>,
    hasher: std::collections::hash_map::RandomState,
    clock: AtomicU64,
}

static OPEN: Mutex<Vec<(PathBuf, Weak<Shared>)>> = Mutex::new(Vec::new());

impl Shared {
    /// The shared state of `root`, creating the directory and taking the process lock if no
    /// handle in this process has it open.
    pub fn get(root: &Path) -> Result<Arc<Shared>, Error> {
        fs::create_dir_all(root).map_err(|e| io_error(root, e))?;
        let root = root.canonicalize().map_err(|e| io_error(root, e))?;
        let mut open = OPEN.lock().unwrap_or_else(|poison| poison.into_inner());
        open.retain(|(_, weak)| weak.strong_count() > 0);
        if let Some(shared) = open
            .iter()
            .find(|(r, _)| *r == root)
            .and_then(|(_, w)| w.upgrade())
        {
            return Ok(shared);
        }
        let lock_path = root.join(".lock");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_error(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Error::Backend {
                    driver: "disk",
                    retryable: false,
                    source: Box::new(io::Error::new(
                        io::ErrorKind::WouldBlock,
                        format!(
                            "{} is open in another process; a disk bank may be opened by one process at a time",
                            root.display()
                        ),
                    )),
                })
            }
            Err(TryLockError::Error(e)) => return Err(io_error(&lock_path, e)),
        }
        let removed = remove_temp_files(&root)?;
        if removed > 0 {
            tracing::info!(root = %root.display(), removed, "removed temporary files left by a crash");
        }
        let shared = Arc::new(Shared {
            root: root.clone(),
            _lock: lock,
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            hasher: Default::default(),
            clock: AtomicU64::new(0),
        });
        open.push((root, Arc::downgrade(&shared)));
        Ok(shared)
    }

    /// The lock serialising writes to one record.
    pub fn stripe(&self, kind: &str, id: &str) -> &tokio::sync::Mutex<()> {
        let hash = self.hasher.hash_one((kind, id));
        &self.stripes[(hash as usize) % STRIPES]
    }

    /// A revision newer than `previous` and than any this process handed out: nanoseconds since
    /// the epoch, bumped when the clock has not moved, so a record deleted and created again
    /// never reuses a revision.
    pub fn next_revision(&self, previous: Option<Revision>) -> Revision {
        let now = u64::try_from(
            databank_core::driver::Utc::now()
                .timestamp_nanos_opt()
                .unwrap_or(0),
        )
        .unwrap_or(0);
        let floor = previous.map_or(0, |r| r.get());
        let mut current = self.clock.load(Ordering::Relaxed);
        loop {
            let next = now.max(current + 1).max(floor + 1);
            match self.clock.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Revision::new(next),
                Err(seen) => current = seen,
            }
        }
    }
}

/// Removes the temporary files a crash left behind in the type directories under `root`: only
/// files named as this driver names them ([`crate::path::is_temp_name`]); anything else stays.
fn remove_temp_files(root: &Path) -> Result<usize, Error> {
    let mut removed = 0;
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).map_err(|e| io_error(&dir, e))? {
            let entry = entry.map_err(|e| io_error(&dir, e))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| io_error(&path, e))?;
            if kind.is_dir() {
                dirs.push(path);
            } else if dir != root && entry.file_name().to_str().is_some_and(is_temp_name) {
                fs::remove_file(&path).map_err(|e| io_error(&path, e))?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}
