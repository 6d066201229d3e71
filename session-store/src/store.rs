//! `DatabankStore`: sessions over any bank.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use databank_core::{Bank, Error, Revision};
use futures_util::StreamExt;
use serde_json::{Map, Value};
use tokio::sync::watch;

use crate::id::{new_id, tag};
use crate::session::{decode, encode, Origin};
use crate::{Result, Session, SessionError};

/// What `set` does when another request changed the session since this one loaded it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConflictPolicy {
    /// Apply this request's changes (keys it set, changed or removed) onto the fresh copy and
    /// save that: concurrent requests that touch different keys all keep their changes; for a
    /// key both changed, the later save wins.
    #[default]
    Merge,
    /// Fail with [`SessionError::Conflict`] and save nothing.
    Reject,
}

/// How a store behaves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoreOptions {
    /// The record type sessions are stored as; other types in the bank are never touched.
    pub kind: String,
    /// The largest encoded session `set` accepts, in bytes.
    pub max_session_bytes: usize,
    /// What to do on a concurrent change.
    pub conflicts: ConflictPolicy,
}

impl StoreOptions {
    /// The defaults: type `session`, 64 KiB sessions, [`ConflictPolicy::Merge`].
    ///
    /// ```
    /// use databank_session_store::{ConflictPolicy, StoreOptions};
    /// let options = StoreOptions::new()
    ///     .kind("web_session")
    ///     .max_session_bytes(16 * 1024)
    ///     .conflicts(ConflictPolicy::Reject);
    /// assert_eq!(options.kind, "web_session");
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the record type sessions are stored as.
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = kind.into();
        self
    }

    /// Sets the largest encoded session `set` accepts, in bytes.
    pub fn max_session_bytes(mut self, bytes: usize) -> Self {
        self.max_session_bytes = bytes;
        self
    }

    /// Sets what to do on a concurrent change.
    pub fn conflicts(mut self, policy: ConflictPolicy) -> Self {
        self.conflicts = policy;
        self
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            kind: "session".into(),
            max_session_bytes: 64 * 1024,
            conflicts: ConflictPolicy::Merge,
        }
    }
}

/// Server-side sessions over any [`Bank`]: the Rust port of connect-databank.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), databank_session_store::SessionError> {
/// use databank_session_store::{DatabankStore, Session};
/// let store = DatabankStore::open("memory://").await?;
/// let mut session = Session::new();
/// session.insert("user", "ada");
/// session.expires_at = Some(chrono::Utc::now() + chrono::Duration::hours(1));
/// let sid = store.create_session(&mut session).await?;
/// let loaded = store.get(&sid).await?.expect("just created");
/// assert_eq!(loaded.get("user"), Some(&serde_json::json!("ada")));
/// assert_eq!(store.length().await?, 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DatabankStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    bank: Bank,
    options: StoreOptions,
    owns_bank: bool,
    closed: watch::Sender<bool>,
}

impl DatabankStore {
    /// A store over a bank, with default options.
    pub fn new(bank: Bank) -> Self {
        Self::with_options(bank, StoreOptions::default())
    }

    /// A store over a bank.
    pub fn with_options(bank: Bank, options: StoreOptions) -> Self {
        Self::build(bank, options, false)
    }

    fn build(bank: Bank, options: StoreOptions, owns_bank: bool) -> Self {
        DatabankStore {
            inner: Arc::new(Inner {
                bank,
                options,
                owns_bank,
                closed: watch::channel(false).0,
            }),
        }
    }

    /// Opens a bank by URL with the drivers this crate was built with (features `memory`,
    /// `disk`, `redis`, `mongo`, `couchbase`) and makes a store over it. The store owns that bank:
    /// [`close`](DatabankStore::close) closes it.
    pub async fn open(url: &str) -> Result<Self> {
        Self::open_with(url, StoreOptions::default()).await
    }

    /// [`open`](DatabankStore::open) with options.
    pub async fn open_with(url: &str, options: StoreOptions) -> Result<Self> {
        crate::register_drivers()?;
        let bank = databank_core::open(url, databank_core::Schema::new()).await?;
        Ok(Self::build(bank, options, true))
    }

    /// The bank sessions live in.
    pub fn bank(&self) -> &Bank {
        &self.inner.bank
    }

    /// The options in force.
    pub fn options(&self) -> &StoreOptions {
        &self.inner.options
    }

    fn kind(&self) -> &str {
        &self.inner.options.kind
    }

    /// Loads a session: `Ok(None)` when it is missing, expired, or the id could not be one (empty,
    /// too long): a bad cookie is simply no session. A record that is not a readable session
    /// is `Corrupt` (and left in place).
    pub async fn get(&self, sid: &str) -> Result<Option<Session>> {
        let record = match self.inner.bank.read(self.kind(), sid).await {
            Ok(record) => record,
            Err(Error::NotFound { .. } | Error::InvalidInput(_)) => {
                tracing::debug!(sid = %tag(sid), "no session");
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let data = decode(record.value)?;
        tracing::debug!(sid = %tag(sid), "loaded session");
        Ok(Some(Session {
            origin: Some(Origin::of(record.revision, &data)),
            data,
            expires_at: record.expires_at,
        }))
    }

    /// Saves a session under `sid` (creating it if needed), with its expiry as the record's.
    ///
    /// A session loaded with [`get`](DatabankStore::get) is saved only if nobody changed it
    /// since (`update_if` on its revision); if somebody did, the [`ConflictPolicy`] decides. A
    /// session that was deleted or expired meanwhile is created again. On success `session`
    /// holds what was stored (merged data included) and its new revision. A session over the
    /// size limit fails with `TooLarge` and the stored one is kept.
    pub async fn set(&self, sid: &str, session: &mut Session) -> Result<()> {
        let started = Instant::now();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let value = self.checked(session)?;
            let outcome = match session.origin.as_ref().map(|o| o.revision) {
                None => {
                    self.inner
                        .bank
                        .save(self.kind(), sid, value)
                        .expires_at(session.expires_at)
                        .await
                }
                Some(revision) => {
                    self.inner
                        .bank
                        .update_if(self.kind(), sid, value, revision)
                        .expires_at(session.expires_at)
                        .await
                }
            };
            match outcome {
                Ok(revision) => {
                    session.origin = Some(Origin::of(revision, &session.data));
                    tracing::debug!(sid = %tag(sid), attempts, elapsed_us = started.elapsed().as_micros() as u64, "saved session");
                    return Ok(());
                }
                Err(Error::Conflict { .. })
                    if self.inner.options.conflicts == ConflictPolicy::Reject =>
                {
                    tracing::info!(sid = %tag(sid), "session changed concurrently; rejected");
                    return Err(SessionError::Conflict);
                }
                Err(Error::Conflict { .. }) => self.refresh(sid, session).await?,
                Err(Error::NotFound { .. }) => {
                    tracing::info!(sid = %tag(sid), "session vanished while in use; creating it again");
                    let value = self.checked(session)?;
                    match self
                        .inner
                        .bank
                        .create(self.kind(), sid, value)
                        .expires_at(session.expires_at)
                        .await
                    {
                        Ok(revision) => {
                            session.origin = Some(Origin::of(revision, &session.data));
                            return Ok(());
                        }
                        Err(Error::AlreadyExists { .. }) => self.refresh(sid, session).await?,
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Merges this session's changes onto the stored copy, for another try.
    async fn refresh(&self, sid: &str, session: &mut Session) -> Result<()> {
        match self.get(sid).await? {
            Some(fresh) => {
                session.data = session.merge_onto(fresh.data);
                session.origin = fresh.origin;
                tracing::debug!(sid = %tag(sid), "merged a concurrent change");
            }
            None => session.origin = None,
        }
        Ok(())
    }

    fn checked(&self, session: &Session) -> Result<Value> {
        let value = encode(session);
        // Counted, not serialized (one allocation less per save); past the bank's own limits
        // this is the bank's InvalidInput.
        let size = databank_core::validate::json_size(&value)?;
        let limit = self.inner.options.max_session_bytes;
        if size > limit {
            return Err(SessionError::TooLarge { size, limit });
        }
        Ok(value)
    }

    /// Stores a new session under a fresh id (256 random bits) and returns the id. The insert
    /// fails on an existing id and a new id is drawn: never check-then-insert.
    pub async fn create_session(&self, session: &mut Session) -> Result<String> {
        for _ in 0..8 {
            let sid = new_id()?;
            if self.insert(&sid, session).await? {
                return Ok(sid);
            }
        }
        Err(SessionError::Databank(Error::backend(
            "session-store",
            "eight fresh session ids in a row already existed",
        )))
    }

    /// Stores a new session under `sid` if no live session has it (one atomic insert);
    /// `Ok(false)` when one does, and nothing is written.
    pub async fn insert(&self, sid: &str, session: &mut Session) -> Result<bool> {
        let value = self.checked(session)?;
        match self
            .inner
            .bank
            .create(self.kind(), sid, value)
            .expires_at(session.expires_at)
            .await
        {
            Ok(revision) => {
                session.origin = Some(Origin::of(revision, &session.data));
                tracing::debug!(sid = %tag(sid), "created session");
                Ok(true)
            }
            Err(Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Moves a session's expiry without rewriting its data; `Ok(false)` when there is no such
    /// live session.
    pub async fn touch(&self, sid: &str, expires_at: Option<DateTime<Utc>>) -> Result<bool> {
        match self.inner.bank.touch(self.kind(), sid, expires_at).await {
            Ok(()) => Ok(true),
            Err(Error::NotFound { .. } | Error::InvalidInput(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a session; succeeds whether or not it existed.
    pub async fn destroy(&self, sid: &str) -> Result<()> {
        match self.inner.bank.delete(self.kind(), sid).await {
            Ok(()) | Err(Error::NotFound { .. } | Error::InvalidInput(_)) => {
                tracing::debug!(sid = %tag(sid), "destroyed session");
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The data of every live session, by id. Unreadable records are skipped with a warning.
    pub async fn all(&self) -> Result<HashMap<String, Map<String, Value>>> {
        let mut sessions = HashMap::new();
        let mut stream = self.inner.bank.scan(self.kind());
        while let Some(item) = stream.next().await {
            let (sid, value) = item?;
            match decode(value) {
                Ok(data) => {
                    sessions.insert(sid, data);
                }
                Err(e) => {
                    tracing::warn!(sid = %tag(&sid), error = %e, "skipping unreadable session")
                }
            }
        }
        Ok(sessions)
    }

    /// The number of live sessions (expired ones are never counted).
    pub async fn length(&self) -> Result<u64> {
        Ok(self.inner.bank.count(self.kind()).await?)
    }

    /// Deletes every session of this store (and nothing else in the bank); returns how many.
    pub async fn clear(&self) -> Result<u64> {
        let mut ids = Vec::new();
        let mut stream = self.inner.bank.scan(self.kind());
        while let Some(item) = stream.next().await {
            ids.push(item?.0);
        }
        drop(stream);
        let mut deleted = 0;
        for sid in ids {
            match self.inner.bank.delete(self.kind(), &sid).await {
                Ok(()) => deleted += 1,
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        tracing::info!(deleted, "cleared sessions");
        Ok(deleted)
    }

    /// Deletes expired sessions and returns how many (sessions without expiry are never
    /// touched). Where the backend expires records itself, those it already removed are not
    /// counted again.
    pub async fn cleanup(&self) -> Result<u64> {
        let started = Instant::now();
        let removed = self.inner.bank.purge_expired(self.kind()).await?;
        tracing::info!(
            removed,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "session cleanup"
        );
        Ok(removed)
    }

    /// Runs [`cleanup`](DatabankStore::cleanup) every `interval` on the current tokio runtime.
    /// An error is logged and the next tick tries again; the task stops when the returned
    /// handle is dropped or the store is closed.
    pub fn start_cleanup(&self, interval: Duration) -> CleanupTask {
        let store = self.clone();
        let mut closed = self.inner.closed.subscribe();
        let handle = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(1)));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {
                        if let Err(e) = store.cleanup().await {
                            tracing::warn!(error = %e, retryable = e.is_retryable(), "session cleanup failed; retrying next tick");
                        }
                    }
                    _ = async { closed.wait_for(|closed| *closed).await.map(|_| ()) } => break,
                }
            }
            tracing::debug!("session cleanup task stopped");
        });
        CleanupTask { handle }
    }

    /// Stops the cleanup tasks, and closes the bank if the store opened it.
    pub async fn close(&self) -> Result<()> {
        self.inner.closed.send_replace(true);
        if self.inner.owns_bank {
            self.inner.bank.close().await?;
        }
        Ok(())
    }

    /// The revision a session id is stored at, if live (for tests and diagnostics).
    pub async fn revision(&self, sid: &str) -> Result<Option<Revision>> {
        Ok(self.get(sid).await?.and_then(|s| s.revision()))
    }
}

/// The periodic cleanup started by [`DatabankStore::start_cleanup`]; dropping it stops it.
#[derive(Debug)]
pub struct CleanupTask {
    handle: tokio::task::JoinHandle<()>,
}

impl CleanupTask {
    /// True while the task runs.
    pub fn is_running(&self) -> bool {
        !self.handle.is_finished()
    }
}

impl Drop for CleanupTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}
