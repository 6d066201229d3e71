//! `DiskBank`: the driver over the files.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use databank_core::driver::{
    as_array_mut, async_trait, is_expired, Driver, Patch, RecordStream, RecordsStream, Utc, Write,
};
use databank_core::{Capabilities, Criteria, Error, Expiry, Record, Result, Revision, Value};
use futures_util::StreamExt;

use crate::codec::{self, Loaded};
use crate::error::io_error;
use crate::path::{self, MAX_PATH_BYTES, SUFFIX};
use crate::shared::Shared;
use crate::walk::Walk;

/// How many record files a scan reads per blocking task.
const SCAN_BATCH: usize = 128;

/// The disk driver: one directory per type, one file per record.
#[derive(Debug)]
pub struct DiskBank {
    shared: RwLock<Option<Arc<Shared>>>,
}

/// What a read-modify-write decides.
enum Change<R> {
    /// Write this value and expiry, answer with `R`.
    Write(Value, Expiry, R),
    /// Leave the record as it is, answer with `R`.
    Keep(R),
    /// Rewrite the record with another expiry only, keeping its revision (`touch`).
    Retime(Record, R),
}

impl DiskBank {
    /// Opens (creating if needed) the bank under `root`. Blocking: it takes the process lock and
    /// removes temporary files a crash left behind.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let shared = Shared::get(root.as_ref())?;
        tracing::debug!(root = %shared.root.display(), "opened disk bank");
        Ok(DiskBank {
            shared: RwLock::new(Some(shared)),
        })
    }

    /// The directory the bank lives in.
    pub fn root(&self) -> Option<PathBuf> {
        self.shared().ok().map(|s| s.root.clone())
    }

    fn shared(&self) -> Result<Arc<Shared>> {
        self.shared
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
            .ok_or(Error::Closed)
    }

    fn type_dir(shared: &Shared, kind: &str) -> PathBuf {
        shared.root.join(path::encode(kind))
    }

    /// The file of a record; `InvalidInput` when its path would pass [`MAX_PATH_BYTES`].
    fn record_file(shared: &Shared, kind: &str, id: &str) -> Result<PathBuf> {
        let file = path::record_path(&Self::type_dir(shared, kind), id);
        let len = file.as_os_str().len();
        if len > MAX_PATH_BYTES {
            return Err(Error::InvalidInput(format!(
                "id of {} bytes: its file under {} would have a {len}-byte path, over the {MAX_PATH_BYTES}-byte limit of this driver (use a shorter id or root)",
                id.len(),
                shared.root.display()
            )));
        }
        Ok(file)
    }

    /// Runs a read-modify-write of one record under its stripe lock, off the runtime.
    async fn change<R, F>(&self, kind: &str, id: &str, decide: F) -> Result<(R, Option<Revision>)>
    where
        R: Send + 'static,
        F: FnOnce(Option<Record>) -> Result<Change<R>> + Send + 'static,
    {
        let shared = self.shared()?;
        let file = Self::record_file(&shared, kind, id)?;
        let _guard = shared.stripe(kind, id).lock().await;
        let id = id.to_owned();
        let shared_for_task = Arc::clone(&shared);
        blocking(move || {
            let shared = shared_for_task;
            let live = load_checked(&file, &id)?.filter(|r| !is_expired(r.expires_at, Utc::now()));
            let previous = live.as_ref().map(|r| r.revision);
            match decide(live)? {
                Change::Keep(result) => Ok((result, previous)),
                Change::Retime(record, result) => {
                    codec::store(
                        &file,
                        &id,
                        &record.value,
                        record.revision,
                        record.expires_at,
                    )?;
                    Ok((result, Some(record.revision)))
                }
                Change::Write(value, expires_at, result) => {
                    let revision = shared.next_revision(previous);
                    codec::store(&file, &id, &value, revision, expires_at)?;
                    Ok((result, Some(revision)))
                }
            }
        })
        .await
    }

    /// Every record file of a type (temporary files left out; foreign files kept, so that a scan
    /// reports them).
    fn list(dir: &Path) -> Result<Vec<PathBuf>> {
        let mut walk = Walk::new(dir.to_path_buf());
        let mut files = Vec::new();
        loop {
            let batch = walk.next_batch(SCAN_BATCH)?;
            if batch.is_empty() {
                return Ok(files);
            }
            files.extend(batch);
        }
    }

    /// Live records and errors for a batch of files.
    fn read_batch(dir: &Path, files: &[PathBuf]) -> Vec<Result<(String, Record)>> {
        let now = Utc::now();
        files
            .iter()
            .filter_map(|file| {
                let id = match path::id_of(dir, file) {
                    Some(id) => id,
                    None => return Some(Err(foreign(file))),
                };
                match load_checked(file, &id) {
                    Ok(Some(record)) if !is_expired(record.expires_at, now) => {
                        Some(Ok((id, record)))
                    }
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                }
            })
            .collect()
    }

    /// How many records under `dir` are live and how many expired, reading each file's head
    /// only, a batch of files at a time; corrupt files are skipped with a warning.
    fn tally(dir: &Path) -> Result<(u64, u64)> {
        let now = Utc::now();
        let mut walk = Walk::new(dir.to_path_buf());
        let (mut live, mut expired) = (0, 0);
        loop {
            let files = walk.next_batch(SCAN_BATCH)?;
            if files.is_empty() {
                return Ok((live, expired));
            }
            for file in &files {
                let head = match path::id_of(dir, file) {
                    Some(id) => codec::load_head(file).and_then(|head| match head {
                        Some((stored, _)) if stored != id => Err(Error::Corrupt {
                            location: file.display().to_string(),
                            reason: format!("file holds id {stored:?}, its name says {id:?}"),
                        }),
                        other => Ok(other),
                    }),
                    None => Err(foreign(file)),
                };
                match head {
                    Ok(Some((_, at))) if is_expired(at, now) => expired += 1,
                    Ok(Some(_)) => live += 1,
                    Ok(None) => {}
                    Err(Error::Corrupt { location, reason }) => {
                        tracing::warn!(%location, %reason, "skipping corrupt record file");
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }

    /// Every live record of a type, corrupt files skipped with a warning.
    async fn live_records(&self, kind: &str) -> Result<Vec<(String, Record)>> {
        let mut stream = self.sound_records(kind);
        let mut out = Vec::new();
        while let Some(item) = stream.next().await {
            out.push(item?);
        }
        Ok(out)
    }

    /// [`stream_records`](Self::stream_records) with corrupt files skipped with a warning.
    fn sound_records<'a>(
        &'a self,
        kind: &'a str,
    ) -> impl futures_util::Stream<Item = Result<(String, Record)>> + 'a {
        self.stream_records(kind).filter_map(|item| {
            std::future::ready(match item {
                Err(Error::Corrupt { location, reason }) => {
                    tracing::warn!(%location, %reason, "skipping corrupt record file");
                    None
                }
                other => Some(other),
            })
        })
    }

    /// The id and file of every record of `kind` that has expired (corrupt files left out).
    async fn expired_files(&self, shared: &Shared, kind: &str) -> Result<Vec<(String, PathBuf)>> {
        let dir = Self::type_dir(shared, kind);
        blocking(move || {
            let now = Utc::now();
            let files = Self::list(&dir)?;
            Ok(files
                .into_iter()
                .filter_map(|f| {
                    let id = path::id_of(&dir, &f)?;
                    let record = load_checked(&f, &id).ok()??;
                    is_expired(record.expires_at, now).then_some((id, f))
                })
                .collect())
        })
        .await
    }

    fn stream_records<'a>(
        &'a self,
        kind: &'a str,
    ) -> futures_util::stream::BoxStream<'a, Result<(String, Record)>> {
        let shared = match self.shared() {
            Ok(shared) => shared,
            Err(e) => return Box::pin(futures_util::stream::once(async move { Err(e) })),
        };
        let dir = Self::type_dir(&shared, kind);
        // One blocking task a batch: the next files of the walk, read. Memory stays at a
        // batch however many records the type holds.
        let walk = Some(Walk::new(dir.clone()));
        Box::pin(
            futures_util::stream::unfold(walk, move |walk| {
                let dir = dir.clone();
                async move {
                    let mut walk = walk?;
                    let step = blocking(move || {
                        let files = walk.next_batch(SCAN_BATCH)?;
                        let rows = Self::read_batch(&dir, &files);
                        Ok((walk, files.is_empty(), rows))
                    })
                    .await;
                    match step {
                        Ok((_, true, _)) => None,
                        Ok((walk, false, rows)) => Some((rows, Some(walk))),
                        Err(e) => Some((vec![Err(e)], None)),
                    }
                }
            })
            .flat_map(futures_util::stream::iter),
        )
    }
}

/// Loads a record file and checks it belongs to `id`.
fn load_checked(file: &Path, id: &str) -> Result<Option<Record>> {
    match codec::load(file)? {
        Some(Loaded { id: stored, record }) if stored == id => Ok(Some(record)),
        Some(Loaded { id: stored, .. }) => Err(Error::Corrupt {
            location: file.display().to_string(),
            reason: format!("file holds id {stored:?}, its name says {id:?}"),
        }),
        None => Ok(None),
    }
}

fn foreign(file: &Path) -> Error {
    Error::Corrupt {
        location: file.display().to_string(),
        reason: format!("not a record file (names are encoded ids ending in {SUFFIX})"),
    }
}

async fn blocking<R, F>(f: F) -> Result<R>
where
    R: Send + 'static,
    F: FnOnce() -> Result<R> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::backend("disk", e))?
}

#[async_trait]
impl Driver for DiskBank {
    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.native_patch = true;
        caps.supports_kinds = true;
        caps.supports_count_expired = true;
        caps.persistent = true;
        caps
    }

    async fn read(&self, kind: &str, id: &str) -> Result<Record> {
        let shared = self.shared()?;
        let file = Self::record_file(&shared, kind, id)?;
        let owned = id.to_owned();
        blocking(move || load_checked(&file, &owned))
            .await?
            .filter(|r| !is_expired(r.expires_at, Utc::now()))
            .ok_or_else(|| Error::not_found(kind, id))
    }

    async fn write(&self, write: Write<'_>) -> Result<Revision> {
        let (k, i) = (write.kind.to_owned(), write.id.to_owned());
        let (precondition, value, expires_at) = (write.precondition, write.value, write.expires_at);
        let (_, revision) = self
            .change(write.kind, write.id, move |live| {
                precondition.check(&k, &i, live.as_ref().map(|r| r.revision))?;
                Ok(Change::Write(value, expires_at, ()))
            })
            .await?;
        revision.ok_or_else(|| Error::backend("disk", "write produced no revision"))
    }

    async fn patch(&self, patch: Patch<'_>) -> Result<Revision> {
        let (k, i) = (patch.kind.to_owned(), patch.id.to_owned());
        let (set, remove, expiry, create) = (patch.set, patch.remove, patch.expiry, patch.create);
        let (_, revision) = self
            .change(patch.kind, patch.id, move |live| {
                let (mut value, current) = match live {
                    Some(record) => (record.value, record.expires_at),
                    None if create => (Value::Object(Default::default()), None),
                    None => return Err(Error::not_found(&k, &i)),
                };
                let mut owned = Patch::new(&k, &i).expiry(expiry);
                owned.set = set;
                owned.remove = remove;
                owned.apply(&mut value)?;
                Ok(Change::Write(value, expiry.resolve(current), ()))
            })
            .await?;
        revision.ok_or_else(|| Error::backend("disk", "patch produced no revision"))
    }

    async fn delete(&self, kind: &str, id: &str) -> Result<()> {
        let shared = self.shared()?;
        let file = Self::record_file(&shared, kind, id)?;
        let _guard = shared.stripe(kind, id).lock().await;
        let owned = id.to_owned();
        let live = blocking(move || {
            let live =
                load_checked(&file, &owned)?.is_some_and(|r| !is_expired(r.expires_at, Utc::now()));
            if live {
                codec::remove(&file)?;
            }
            Ok(live)
        })
        .await?;
        if live {
            Ok(())
        } else {
            Err(Error::not_found(kind, id))
        }
    }

    async fn touch(&self, kind: &str, id: &str, expires_at: Expiry) -> Result<()> {
        let (k, i) = (kind.to_owned(), id.to_owned());
        self.change(kind, id, move |live| match live {
            Some(mut record) => {
                record.expires_at = expires_at;
                Ok(Change::Retime(record, ()))
            }
            None => Err(Error::not_found(&k, &i)),
        })
        .await
        .map(|_| ())
    }

    fn scan<'a>(&'a self, kind: &'a str) -> RecordStream<'a> {
        Box::pin(
            self.stream_records(kind)
                .map(|item| item.map(|(id, record)| (id, record.value))),
        )
    }

    fn scan_records<'a>(&'a self, kind: &'a str) -> RecordsStream<'a> {
        self.stream_records(kind)
    }

    async fn purge_expired(&self, kind: &str) -> Result<u64> {
        let shared = self.shared()?;
        let candidates = self.expired_files(&shared, kind).await?;
        let mut purged = 0;
        for (id, file) in candidates {
            let _guard = shared.stripe(kind, &id).lock().await;
            let removed = blocking(move || {
                let expired =
                    load_checked(&file, &id)?.is_some_and(|r| is_expired(r.expires_at, Utc::now()));
                Ok(expired && codec::remove(&file)?)
            })
            .await?;
            purged += u64::from(removed);
        }
        Ok(purged)
    }

    async fn count_expired(&self, kind: &str) -> Result<u64> {
        let dir = Self::type_dir(&*self.shared()?, kind);
        Ok(blocking(move || Self::tally(&dir)).await?.1)
    }

    async fn close(&self) -> Result<()> {
        self.shared
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
            .take();
        Ok(())
    }

    async fn search(&self, kind: &str, criteria: &Criteria) -> Result<Vec<(String, Value)>> {
        Ok(self
            .live_records(kind)
            .await?
            .into_iter()
            .filter(|(_, record)| criteria.matches(&record.value))
            .map(|(id, record)| (id, record.value))
            .collect())
    }

    async fn kinds(&self) -> Result<Vec<String>> {
        let root = self.shared()?.root.clone();
        blocking(move || {
            let entries = fs::read_dir(&root).map_err(|e| io_error(&root, e))?;
            let mut kinds = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| io_error(&root, e))?;
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                // Type directories are encoded names; anything else (the lock) is not a type.
                if let (true, Some(name)) = (is_dir, entry.file_name().to_str()) {
                    kinds.extend(path::decode(name));
                }
            }
            Ok(kinds)
        })
        .await
    }

    async fn count(&self, kind: &str) -> Result<u64> {
        let dir = Self::type_dir(&*self.shared()?, kind);
        Ok(blocking(move || Self::tally(&dir)).await?.0)
    }

    async fn incr_by(&self, kind: &str, id: &str, delta: i64) -> Result<i64> {
        let (k, i) = (kind.to_owned(), id.to_owned());
        self.change(kind, id, move |live| {
            let (current, expires_at) = match live {
                Some(record) => (record.value, record.expires_at),
                None => (Value::from(0), None),
            };
            let new = current
                .as_i64()
                .and_then(|n| n.checked_add(delta))
                .ok_or_else(|| Error::wrong_type(&k, &i, "an integer"))?;
            Ok(Change::Write(Value::from(new), expires_at, new))
        })
        .await
        .map(|(n, _)| n)
    }

    async fn append(&self, kind: &str, id: &str, item: Value) -> Result<usize> {
        self.list_change(kind, id, move |items| {
            items.push(item);
            true
        })
        .await
    }

    async fn prepend(&self, kind: &str, id: &str, item: Value) -> Result<usize> {
        self.list_change(kind, id, move |items| {
            items.insert(0, item);
            true
        })
        .await
    }

    async fn remove(&self, kind: &str, id: &str, item: &Value) -> Result<bool> {
        let item = item.clone();
        let (k, i) = (kind.to_owned(), id.to_owned());
        self.change(kind, id, move |live| {
            let Some(mut record) = live else {
                return Ok(Change::Keep(false));
            };
            let items = as_array_mut(&k, &i, &mut record.value)?;
            match items.iter().position(|x| *x == item) {
                Some(at) => {
                    items.remove(at);
                    Ok(Change::Write(record.value, record.expires_at, true))
                }
                None => Ok(Change::Keep(false)),
            }
        })
        .await
        .map(|(removed, _)| removed)
    }
}

impl DiskBank {
    /// Applies `edit` to an array record (missing: `[]`) and returns the new length.
    async fn list_change<F>(&self, kind: &str, id: &str, edit: F) -> Result<usize>
    where
        F: FnOnce(&mut Vec<Value>) -> bool + Send + 'static,
    {
        let (k, i) = (kind.to_owned(), id.to_owned());
        self.change(kind, id, move |live| {
            let (mut value, expires_at) = match live {
                Some(record) => (record.value, record.expires_at),
                None => (Value::Array(Vec::new()), None),
            };
            let items = as_array_mut(&k, &i, &mut value)?;
            edit(items);
            let len = items.len();
            Ok(Change::Write(value, expires_at, len))
        })
        .await
        .map(|(len, _)| len)
    }
}
