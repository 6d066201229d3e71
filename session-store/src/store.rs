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
use crate::origins::Origins;
use crate::session::{
    changes, decode, decode_versioned, encode, encode_data, Fingerprints, Origin,
};
use crate::{Result, Session, SessionError, ORIGIN_KEY};

/// How many load tokens the framework adapters remember (see `origins.rs`).
const REMEMBERED_ORIGINS: usize = 65_536;

/// How `set` saves a session that was loaded, when other requests may change it meanwhile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConflictPolicy {
    /// Save exactly the keys this request set, changed or removed, as one atomic patch on the
    /// server (no read, no retry): concurrent requests that touch different keys all keep
    /// their changes; for a key both changed, the later save wins.
    #[default]
    Merge,
    /// Whole-session compare-and-set: save the whole session only if nobody changed it since it
    /// was loaded, else fail with [`SessionError::Conflict`] and save nothing.
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
    origins: Origins,
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
                origins: Origins::new(REMEMBERED_ORIGINS),
            }),
        }
    }

    /// Opens a bank by URL with the drivers this crate was built with (features `memory`,
    /// `disk`, `redis`, `mongo`, `couchbase`, `postgres`, `sqlite`, passed on to the `databank`
    /// crate, which registers them) and makes a store over it. The store owns that bank:
    /// [`close`](DatabankStore::close) closes it.
    pub async fn open(url: &str) -> Result<Self> {
        Self::open_with(url, StoreOptions::default()).await
    }

    /// [`open`](DatabankStore::open) with options.
    pub async fn open_with(url: &str, options: StoreOptions) -> Result<Self> {
        let bank = databank::open(url, databank_core::Schema::new()).await?;
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
        Ok(self
            .load(sid)
            .await?
            .map(|(data, origin, expires_at)| Session {
                origin: Some(origin),
                data,
                expires_at,
            }))
    }

    /// [`get`](DatabankStore::get) into any map type (a framework's own, without a copy).
    async fn load<C>(&self, sid: &str) -> Result<Option<Loaded<C>>>
    where
        C: FromIterator<(String, Value)>,
        for<'c> &'c C: IntoIterator<Item = (&'c String, &'c Value)>,
    {
        let record = match self.inner.bank.read(self.kind(), sid).await {
            Ok(record) => record,
            Err(Error::NotFound { .. } | Error::InvalidInput(_)) => {
                tracing::debug!(sid = %tag(sid), "no session");
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let (data, version) = decode_versioned::<C>(record.value)?;
        tracing::debug!(sid = %tag(sid), "loaded session");
        let mut origin = Origin::of(record.revision, &data)?;
        origin.rewrite = version < crate::session::VERSION;
        Ok(Some((data, Arc::new(origin), record.expires_at)))
    }

    /// Saves a session under `sid`, with its expiry as the record's.
    ///
    /// A session loaded with [`get`](DatabankStore::get) is saved per the
    /// [`ConflictPolicy`]: by default as one atomic patch of the keys this request set, changed
    /// or removed (concurrent requests changing other keys keep their changes); with `Reject`
    /// only if nobody changed it since. Either way a session destroyed or expired since it was
    /// loaded is never stored again under its id: that is [`SessionError::Gone`]. A session
    /// that was never loaded (`Session::new`) is stored whole, created if needed. On success
    /// `session` can be saved again (its origin is what this save stored). A session over the
    /// size limit fails with `TooLarge` and the stored one is kept.
    pub async fn set(&self, sid: &str, session: &mut Session) -> Result<()> {
        let base = match &session.origin {
            Some(origin) => Base::Loaded(origin),
            None => Base::New,
        };
        let saved = self
            .save_data(sid, &session.data, session.expires_at, base)
            .await?;
        session.origin = Some(saved);
        Ok(())
    }

    /// The one save behind [`set`](DatabankStore::set) and the framework adapters: `data` (a
    /// map's entries, without the reserved key) saved per `base` and the conflict policy.
    /// Returns what was stored, as the next origin.
    async fn save_data<'d, D>(
        &self,
        sid: &str,
        data: D,
        expires_at: Option<DateTime<Utc>>,
        base: Base<'_>,
    ) -> Result<Arc<Origin>>
    where
        D: IntoIterator<Item = (&'d String, &'d Value)> + Clone,
        D::IntoIter: Clone,
    {
        let now = Fingerprints::of(data.clone())?;
        self.check_size(&now)?;
        let started = Instant::now();
        let (bank, kind) = (&self.inner.bank, self.kind());
        let policy = self.inner.options.conflicts;
        let outcome = match base {
            Base::New => {
                bank.save(kind, sid, encode_data(data.clone()))
                    .expires_at(expires_at)
                    .await
            }
            // No known origin, or one in an older format: the whole session replaces it.
            Base::Unknown | Base::Loaded(&Origin { rewrite: true, .. }) => {
                tracing::debug!(sid = %tag(sid), "replacing the whole session");
                bank.update(kind, sid, encode_data(data.clone()))
                    .expires_at(expires_at)
                    .await
            }
            Base::Loaded(origin) if policy == ConflictPolicy::Reject => {
                bank.update_if(kind, sid, encode_data(data.clone()), origin.revision)
                    .expires_at(expires_at)
                    .await
            }
            Base::Loaded(origin) => {
                let (set, remove) = changes(&origin.fingerprints, &now, data.clone());
                let mut patch = bank.patch(kind, sid).expires_at(expires_at).must_exist();
                for (key, value) in set {
                    patch = patch.set(key, value.clone());
                }
                for key in remove {
                    patch = patch.remove(key);
                }
                patch.await
            }
        };
        match outcome {
            Ok(revision) => {
                tracing::debug!(sid = %tag(sid), elapsed_us = started.elapsed().as_micros() as u64, "saved session");
                Ok(Arc::new(Origin::with(revision, now)))
            }
            Err(Error::Conflict { .. }) => {
                tracing::info!(sid = %tag(sid), "session changed concurrently; rejected");
                Err(SessionError::Conflict)
            }
            Err(Error::NotFound { .. }) => {
                tracing::info!(sid = %tag(sid), "session destroyed or expired while in use; not saved under its id");
                Err(SessionError::Gone)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn check_size(&self, data: &Fingerprints) -> Result<()> {
        // Counted while fingerprinting, not serialized.
        let size = data.encoded_size();
        let limit = self.inner.options.max_session_bytes;
        if size > limit {
            return Err(SessionError::TooLarge { size, limit });
        }
        Ok(())
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
        let prints = Fingerprints::of(&session.data)?;
        self.check_size(&prints)?;
        let value = encode(session);
        match self
            .inner
            .bank
            .create(self.kind(), sid, value)
            .expires_at(session.expires_at)
            .await
        {
            Ok(revision) => {
                session.origin = Some(Arc::new(Origin::with(revision, prints)));
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

/// What the framework adapters use: the session data they carry holds a token naming what was
/// loaded (see `origins.rs`) under [`ORIGIN_KEY`].
#[cfg_attr(
    not(any(feature = "tower-sessions", feature = "actix")),
    allow(dead_code)
)]
impl DatabankStore {
    /// Loads a session's data, with a token naming its origin under [`ORIGIN_KEY`].
    pub(crate) async fn load_tracked<C>(
        &self,
        sid: &str,
    ) -> Result<Option<(C, Option<DateTime<Utc>>)>>
    where
        C: FromIterator<(String, Value)> + Extend<(String, Value)>,
        for<'c> &'c C: IntoIterator<Item = (&'c String, &'c Value)>,
    {
        let Some((mut data, origin, expires_at)) = self.load::<C>(sid).await? else {
            return Ok(None);
        };
        let token = self.inner.origins.remember(sid, origin);
        data.extend(std::iter::once((
            ORIGIN_KEY.to_owned(),
            Value::String(token),
        )));
        Ok(Some((data, expires_at)))
    }

    /// Stores a new session from a framework's data; the token naming it, or `None` when a
    /// live session has the id.
    pub(crate) async fn insert_tracked(
        &self,
        sid: &str,
        mut data: Map<String, Value>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<Option<String>> {
        data.remove(ORIGIN_KEY);
        let mut session = Session::with_data(data, expires_at);
        if !self.insert(sid, &mut session).await? {
            return Ok(None);
        }
        Ok(session
            .origin
            .take()
            .map(|origin| self.inner.origins.remember(sid, origin)))
    }

    /// Saves a framework's data (its entries, the reserved key among them): a patch of what
    /// changed since the origin its token names (or per the conflict policy), or, when the
    /// token names nothing this process knows, a replacement of the whole session. `Gone` when
    /// the session no longer lives. The data is only read: what a patch sends is cloned, the
    /// rest is not.
    pub(crate) async fn save_tracked<'d, D>(
        &self,
        sid: &str,
        data: D,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<()>
    where
        D: IntoIterator<Item = (&'d String, &'d Value)>,
        D::IntoIter: Clone,
    {
        let data = data.into_iter();
        let carried = data
            .clone()
            .find(|(key, _)| key.as_str() == ORIGIN_KEY)
            .map(|(_, value)| value);
        let data = data.filter(|(key, _)| key.as_str() != ORIGIN_KEY);
        let (token, origin) = self.inner.origins.recall(sid, carried);
        let base = match &origin {
            Some(origin) => Base::Loaded(origin),
            None => Base::Unknown,
        };
        let saved = self.save_data(sid, data, expires_at, base).await?;
        if let Some(token) = token {
            self.inner.origins.saved(token, sid, saved);
        }
        Ok(())
    }
}

/// A loaded session: its data, origin and expiry.
type Loaded<C> = (C, Arc<Origin>, Option<DateTime<Utc>>);

/// What a save starts from.
#[derive(Debug, Clone, Copy)]
enum Base<'o> {
    /// A session never loaded: stored whole, created if needed.
    New,
    /// A session loaded elsewhere or long ago: its whole data replaces the live session's.
    Unknown,
    /// A session loaded at this origin (or stored at it by the save before).
    Loaded(&'o Origin),
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
