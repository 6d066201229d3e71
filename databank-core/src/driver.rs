//! What a driver author needs, and nothing a user does, all in this one module: the
//! [`Driver`] trait, the write [`Precondition`], record and revision constructors, expiry and
//! timeout helpers, the scan stream types, registration by URL scheme, the types the methods
//! take and return ([`Record`], [`Revision`], [`Error`], [`Capabilities`], ...), the input rules
//! ([`validate`]), the criteria helpers ([`lookup`], [`canonical`], [`index_field`]), and the
//! crates that appear in the signatures (`async_trait`, `chrono`, `url`, `futures_core`,
//! [`stream`]), so a driver imports from here and depends on `databank-core` and its own
//! client only.
//!
//! # Writing a driver
//!
//! 1. Implement [`Driver`] for your client type. Seven methods are required: `capabilities`,
//!    `read`, `write` (one write with a [`Precondition`], instead of create/update/save),
//!    `delete`, `touch`, `scan` and `purge_expired`. Counters, lists, patches, `read_all`,
//!    `search`, `count` and `close` have provided implementations built on those; override the
//!    ones your backend does natively and say so in [`Capabilities`]. Input arrives checked by
//!    [`Bank`] against [the rules](crate::validate).
//! 2. Offer a `register()` that calls [`register`] with a [`Registration`] naming your URL
//!    schemes, so that [`open`](crate::open) finds you.
//! 3. Run the conformance kit (feature `testkit`) from your own tests: a
//!    [`Harness`](crate::testkit::Harness) whose `open` opens a bank on the same namespace every
//!    time (a file, a key prefix), and [`conformance_tests!`](crate::conformance_tests), which
//!    makes one test per behaviour and takes the names of those that do not apply to your
//!    driver after `does_not_apply:`.
//!    A whole driver that passes the kit, with its harness, follows under "A whole driver":
//!    start from it.
//!
//! What the kit expects, stated once:
//! - **Expiry** is kept to the millisecond: a record is expired from the millisecond of its
//!   expiry on ([`is_expired`]), on every read, whether or not the backend has removed it yet.
//! - **Revisions** change on every write of the value and stay on a `touch`; draw them with
//!   [`random_revision`] when the record itself carries its revision.
//! - **Errors**: a call that certainly did not apply (the server unreachable, a connection
//!   refused, a store busy or locked) is [`Error::Unavailable`], safe to retry; one whose
//!   outcome is unknown (a timeout after the request left) is [`Error::OutcomeUnknown`]; data
//!   that cannot be read back is [`Error::Corrupt`]; anything else from the backend (an I/O
//!   error of an embedded store included) is [`Error::Backend`]. `kinds` and `count_expired`
//!   are called only where [`Capabilities`] says the driver supports them
//!   (`supports_kinds`, `supports_count_expired`; the [`Bank`] answers
//!   [`Error::Unsupported`] otherwise): override them and set the flag, or leave both and name
//!   their behaviours in `does_not_apply`.
//! - **`close`** releases what the driver holds: an embedded store must release its files there,
//!   since the kit (and a restarting application) opens the same path again in the same process
//!   while the old driver value may still be alive.
//! - **Scans** may fetch everything at once ([`stream_of`]); a large store pages lazily with
//!   [`paged`], from a function that fetches the page after a cursor.
//! - A [`Patch`] borrows its type and id: [`Patch::into_owned`] makes a value to move into
//!   `spawn_blocking`.
//!
//! ```
//! use databank_core::driver::{
//!     async_trait, record, Driver, Precondition, RecordStream, Write, stream_of,
//! };
//! use databank_core::{Capabilities, Error, Record, Result, Revision, Value};
//!
//! /// A driver that stores nothing, to show the shape.
//! #[derive(Debug)]
//! struct Nothing;
//!
//! #[async_trait]
//! impl Driver for Nothing {
//!     fn capabilities(&self) -> Capabilities {
//!         Capabilities::default()
//!     }
//!     async fn read(&self, kind: &str, id: &str) -> Result<Record> {
//!         Err(Error::not_found(kind, id))
//!     }
//!     async fn write(&self, write: Write<'_>) -> Result<Revision> {
//!         match write.precondition {
//!             Precondition::Exists | Precondition::Revision(_) => {
//!                 Err(Error::not_found(write.kind, write.id))
//!             }
//!             Precondition::Any | Precondition::Absent => Err(Error::InvalidInput("read-only".into())),
//!         }
//!     }
//!     async fn delete(&self, kind: &str, id: &str) -> Result<()> {
//!         Err(Error::not_found(kind, id))
//!     }
//!     async fn touch(&self, kind: &str, id: &str, _at: databank_core::Expiry) -> Result<()> {
//!         Err(Error::not_found(kind, id))
//!     }
//!     fn scan<'a>(&'a self, _kind: &'a str) -> RecordStream<'a> {
//!         stream_of(async { Ok(Vec::new()) })
//!     }
//!     async fn purge_expired(&self, _kind: &str) -> Result<u64> {
//!         Ok(0)
//!     }
//! }
//! # let _ = record(Value::Null, Revision::new(1), None);
//! ```
//!
//! # A whole driver
//!
//! A driver that keeps its records in a map behind a lock, with only the seven required
//! methods, and the harness that runs the whole kit against it (it passes). The same file runs
//! as a test: `databank-core/tests/minimal_driver.rs` (`cargo test -p databank-core --features
//! testkit`); this copy is compiled with the docs when the `testkit` feature is on.
#![cfg_attr(feature = "testkit", doc = "```")]
#![cfg_attr(feature = "testkit", doc = include_str!("../tests/minimal_driver.rs"))]
#![cfg_attr(feature = "testkit", doc = "```")]

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};

// Everything a driver needs is here, wherever it lives: the types its methods take and return,
// the rules input was checked against, the criteria helpers for native search and indices.
pub use crate::criteria::{canonical, index_field, lookup};
pub use crate::validate::{self, entries_size, escaped_len, json_size, MAX_VALUE_BYTES};
pub use crate::{
    Applied, Bank, Capabilities, Criteria, Error, Expiry, IfChanged, Record, Result, Revision,
    Schema,
};
pub use futures_util::stream;
pub use serde_json::{json, Value};

pub use crate::patch::{OwnedPatch, Patch, PatchExpiry};
pub use crate::registry::{register, OpenFuture, Registration};
pub use async_trait::async_trait;
pub use chrono::{self, DateTime, Utc};
pub use futures_core::Stream;
pub use url::{self, Url};

/// The stream [`Driver::scan`] returns: `(id, value)` pairs of live records, in no set order.
pub type RecordStream<'a> = Pin<Box<dyn Stream<Item = Result<(String, Value)>> + Send + 'a>>;

/// The stream [`Driver::scan_records`] returns: `(id, record)` pairs of live records (value,
/// revision and expiry), in no set order.
pub type RecordsStream<'a> = Pin<Box<dyn Stream<Item = Result<(String, Record)>> + Send + 'a>>;

/// What must hold of the stored record for a [`Driver::write`] to happen. Checked atomically
/// with the write, on the server where the backend allows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Write whatever is there (an upsert): `save`. Never fails with `AlreadyExists`.
    Any,
    /// No live record holds the id (an expired one counts as absent): `create`. Otherwise
    /// `AlreadyExists`.
    Absent,
    /// A live record holds the id: `update`. Otherwise `NotFound`; never creates.
    Exists,
    /// A live record holds the id at this revision: `update_if`. `Conflict` when it is at
    /// another one, `NotFound` when there is none.
    Revision(Revision),
}

impl Precondition {
    /// Checks the precondition against the revision of the live record (`None`: no live
    /// record), for drivers that check in their own code under a lock or a CAS: `Ok` to write,
    /// or the error the write must fail with.
    ///
    /// ```
    /// use databank_core::driver::Precondition;
    /// use databank_core::{Error, Revision};
    /// let r = Revision::new(7);
    /// assert!(Precondition::Absent.check("t", "a", None).is_ok());
    /// assert!(matches!(Precondition::Absent.check("t", "a", Some(r)), Err(Error::AlreadyExists { .. })));
    /// assert!(matches!(Precondition::Exists.check("t", "a", None), Err(Error::NotFound { .. })));
    /// assert!(matches!(
    ///     Precondition::Revision(Revision::new(6)).check("t", "a", Some(r)),
    ///     Err(Error::Conflict { .. })
    /// ));
    /// ```
    pub fn check(self, kind: &str, id: &str, live: Option<Revision>) -> Result<()> {
        match (self, live) {
            (Precondition::Any, _)
            | (Precondition::Absent, None)
            | (Precondition::Exists, Some(_)) => Ok(()),
            (Precondition::Absent, Some(_)) => Err(Error::already_exists(kind, id)),
            (Precondition::Exists | Precondition::Revision(_), None) => {
                Err(Error::not_found(kind, id))
            }
            (Precondition::Revision(expected), Some(current)) if current == expected => Ok(()),
            (Precondition::Revision(expected), Some(_)) => Err(Error::conflict(kind, id, expected)),
        }
    }
}

/// One write, as [`Driver::write`] receives it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Write<'a> {
    /// The type name.
    pub kind: &'a str,
    /// The record id.
    pub id: &'a str,
    /// The whole new value.
    pub value: Value,
    /// What must hold before the write.
    pub precondition: Precondition,
    /// When the written record expires (`None`: never).
    pub expires_at: Expiry,
}

impl<'a> Write<'a> {
    /// A write of `value` to `kind`/`id` under `precondition`, with no expiry.
    pub fn new(kind: &'a str, id: &'a str, value: Value, precondition: Precondition) -> Self {
        Write {
            kind,
            id,
            value,
            precondition,
            expires_at: None,
        }
    }

    /// The same write with an expiry.
    pub fn expires_at(mut self, expires_at: Expiry) -> Self {
        self.expires_at = expires_at;
        self
    }
}

/// Builds the [`Record`] a driver's `read` answers.
pub fn record(value: Value, revision: Revision, expires_at: Expiry) -> Record {
    Record {
        value,
        revision,
        expires_at,
    }
}

/// A fresh revision: 63 random bits (never 0), for drivers that keep the revision in the record
/// itself, so writers in many processes never need to coordinate.
///
/// ```
/// let (a, b) = (databank_core::driver::random_revision(), databank_core::driver::random_revision());
/// assert_ne!(a, b);
/// assert!(a.get() > 0 && a.get() <= i64::MAX as u64);
/// ```
pub fn random_revision() -> Revision {
    use std::hash::BuildHasher;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = std::collections::hash_map::RandomState::new().hash_one((n, std::process::id()));
    Revision::new((random & (i64::MAX as u64)).max(1))
}

/// True when `expires_at` is set and not after `now`: the one expiry rule every driver follows.
pub fn is_expired(expires_at: Expiry, now: DateTime<Utc>) -> bool {
    expires_at.is_some_and(|at| at <= now)
}

/// Bounds one server call by `timeout`. When it runs out the request may already have reached
/// the server, so the error is [`Error::OutcomeUnknown`], never a safe-to-retry one.
///
/// A plain combinator, not an `async fn`: an `async fn` would keep `call` twice in its state
/// (the argument, and the timeout holding it), and server calls are large futures.
pub fn timed<T>(
    driver: &'static str,
    timeout: Duration,
    call: impl Future<Output = Result<T>>,
) -> impl Future<Output = Result<T>> {
    tokio::time::timeout(timeout, call).map(move |answered| match answered {
        Ok(result) => result,
        Err(_) => Err(Error::OutcomeUnknown {
            driver,
            message: format!("no answer within {timeout:?}"),
        }),
    })
}

/// Turns one async fetch of all records into the stream [`Driver::scan`] returns.
pub fn stream_of<'a>(
    fetch: impl Future<Output = Result<Vec<(String, Value)>>> + Send + 'a,
) -> RecordStream<'a> {
    Box::pin(
        futures_util::stream::once(fetch)
            .map(|fetched| match fetched {
                Ok(items) => futures_util::stream::iter(items.into_iter().map(Ok)).boxed(),
                Err(e) => futures_util::stream::once(async move { Err(e) }).boxed(),
            })
            .flatten(),
    )
}

/// A lazily paged [`RecordStream`]: `fetch` gets the cursor the previous page ended at (`None`
/// for the first page) and returns a page of records and the cursor after it (`None` after the
/// last page). One page is held at a time; the next is fetched when the caller reaches it, and
/// an error ends the stream after it is yielded.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> databank_core::Result<()> {
/// use databank_core::driver::{paged, json, Value};
/// use futures_util::TryStreamExt;
/// let rows: Vec<(String, Value)> = (0..5).map(|i| (format!("r{i}"), json!(i))).collect();
/// // Pages of two rows after the index the cursor names, as a store's "after this key" query.
/// let stream = paged(move |after: Option<usize>| {
///     let start = after.unwrap_or(0);
///     let page: Vec<(String, Value)> = rows.iter().skip(start).take(2).cloned().collect();
///     let next = (start + 2 < rows.len()).then_some(start + 2);
///     async move { Ok((page, next)) }
/// });
/// let all: Vec<(String, Value)> = stream.try_collect().await?;
/// assert_eq!(all.len(), 5);
/// assert_eq!(all[4], ("r4".to_owned(), json!(4)));
/// # Ok(()) }
/// ```
pub fn paged<'a, C, F, Fut>(fetch: F) -> RecordStream<'a>
where
    C: Send + 'a,
    F: FnMut(Option<C>) -> Fut + Send + 'a,
    Fut: Future<Output = Result<(Vec<(String, Value)>, Option<C>)>> + Send + 'a,
{
    /// Where the paging stands: before the first page, after a cursor, or past the last page.
    enum Next<C> {
        First,
        After(C),
        Done,
    }
    let pages =
        futures_util::stream::try_unfold((fetch, Next::First), |(mut fetch, next)| async move {
            let cursor = match next {
                Next::First => None,
                Next::After(cursor) => Some(cursor),
                Next::Done => return Ok(None),
            };
            let (rows, after) = fetch(cursor).await?;
            let next = after.map_or(Next::Done, Next::After);
            Ok(Some((
                futures_util::stream::iter(rows.into_iter().map(Ok)),
                (fetch, next),
            )))
        });
    Box::pin(futures_util::TryStreamExt::try_flatten(pages))
}

/// The [`RecordsStream`] of records already in hand (for [`Driver::scan_records`]).
pub fn records_of<'a>(rows: Vec<(String, Record)>) -> RecordsStream<'a> {
    Box::pin(futures_util::stream::iter(rows.into_iter().map(Ok)))
}

/// Parses the value of a URL's `timeout_ms` parameter (how long one call may take), the one
/// way every driver reads it.
///
/// ```
/// # use std::time::Duration;
/// use databank_core::driver::timeout_ms;
/// assert_eq!(timeout_ms("700").unwrap(), Duration::from_millis(700));
/// assert!(timeout_ms("soon").is_err());
/// assert!(timeout_ms("0").is_err());
/// ```
pub fn timeout_ms(value: &str) -> Result<Duration> {
    match value.parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
        _ => Err(Error::InvalidInput(format!(
            "timeout_ms={value} is not a positive number of milliseconds"
        ))),
    }
}

/// Takes a driver's own parameters out of a URL's query and leaves the rest to its client, the
/// one way every driver reads its URL: `take` sees each `key=value` pair in order (decoded)
/// and answers `Ok(true)` for one it took, `Ok(false)` for one that is the client's, which
/// stays in the URL, in its order; its first error stops the walk and is returned. A URL left
/// with no pair loses its `?`.
///
/// ```
/// use databank_core::driver::{take_url_params, timeout_ms, Url};
/// let mut url = Url::parse("redis://h/0?prefix=app&protocol=resp3&timeout_ms=700")?;
/// let (mut prefix, mut timeout) = (String::new(), None);
/// take_url_params(&mut url, |key, value| {
///     match key {
///         "prefix" => prefix = value.to_owned(),
///         "timeout_ms" => timeout = Some(timeout_ms(value)?),
///         _ => return Ok(false),
///     }
///     Ok(true)
/// })?;
/// assert_eq!(prefix, "app");
/// assert_eq!(timeout, Some(std::time::Duration::from_millis(700)));
/// assert_eq!(url.as_str(), "redis://h/0?protocol=resp3");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn take_url_params(
    url: &mut Url,
    mut take: impl FnMut(&str, &str) -> Result<bool>,
) -> Result<()> {
    let mut rest = Vec::new();
    for (key, value) in url.query_pairs() {
        if !take(&key, &value)? {
            rest.push((key.into_owned(), value.into_owned()));
        }
    }
    if rest.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(rest);
    }
    Ok(())
}

/// Checks a name a driver splices into keys or statements (a prefix, a database, a bucket):
/// 1 to `max` bytes of ASCII letters, digits and the given `marks`. `InvalidInput` naming
/// `what` otherwise.
///
/// ```
/// use databank_core::driver::check_name;
/// assert!(check_name("prefix", "app-1", b"_-", 64).is_ok());
/// assert!(check_name("prefix", "a:b", b"_-", 64).is_err());
/// assert!(check_name("prefix", "", b"_-", 64).is_err());
/// ```
pub fn check_name(what: &str, name: &str, marks: &[u8], max: usize) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || marks.contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "{what} {name:?} must be 1 to {max} ASCII letters, digits or {:?}",
            String::from_utf8_lossy(marks)
        )))
    }
}

/// Decodes `%XX` escapes (a URL path or user name); `None` when an escape is malformed or
/// the result is not UTF-8.
///
/// ```
/// assert_eq!(databank_core::driver::percent_decode("a%20b%2Fc").as_deref(), Some("a b/c"));
/// assert_eq!(databank_core::driver::percent_decode("bad%zz"), None);
/// ```
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The array inside a list record, or `WrongType`.
pub fn as_array<'v>(kind: &str, id: &str, value: &'v Value) -> Result<&'v Vec<Value>> {
    value
        .as_array()
        .ok_or_else(|| Error::wrong_type(kind, id, "an array"))
}

/// The array inside a list record, mutably, or `WrongType`.
pub fn as_array_mut<'v>(kind: &str, id: &str, value: &'v mut Value) -> Result<&'v mut Vec<Value>> {
    value
        .as_array_mut()
        .ok_or_else(|| Error::wrong_type(kind, id, "an array"))
}

/// The interface every driver implements. Users never call it directly: they hold a
/// [`Bank`], which checks input and closes once for every driver.
///
/// Records are JSON values addressed by a type name (`kind`) and an id.
///
/// **Expiry.** Every write carries an `expires_at` (`None`: never). A record whose expiry is at
/// or before now is invisible to every read, search, scan, count and list operation, and a write
/// with [`Precondition::Absent`] over it succeeds, even before
/// [`purge_expired`](Driver::purge_expired) (or the backend's TTL) removes it. Counter and list
/// operations keep the record's expiry.
///
/// **Revisions.** Every write gives the record a new [`Revision`]; `read` returns it and
/// [`Precondition::Revision`] checks it.
///
/// **Errors.** A call that did not reach the backend is [`Error::Unavailable`] (safe to retry);
/// one whose outcome is unknown (a timeout after the request left, an ambiguous durability
/// answer) is [`Error::OutcomeUnknown`]. A read-modify-write loop that gives up after
/// conflicts, each of which applied nothing, is [`Error::Contended`].
#[async_trait]
pub trait Driver: Send + Sync + std::fmt::Debug {
    /// What this driver does natively.
    fn capabilities(&self) -> Capabilities;

    /// Reads a live record. `NotFound` if there is none.
    async fn read(&self, kind: &str, id: &str) -> Result<Record>;

    /// Writes a whole value if `write.precondition` holds, atomically with its check; returns
    /// the new revision.
    async fn write(&self, write: Write<'_>) -> Result<Revision>;

    /// Deletes a live record. `NotFound` if there is none.
    async fn delete(&self, kind: &str, id: &str) -> Result<()>;

    /// Sets a live record's expiry without changing its value or its revision. `NotFound` if
    /// there is none.
    async fn touch(&self, kind: &str, id: &str, expires_at: Expiry) -> Result<()>;

    /// Every live record of a type, as a stream; an unknown type yields nothing. Records written
    /// during the scan may or may not appear; records untouched during it appear exactly once.
    fn scan<'a>(&'a self, kind: &'a str) -> RecordStream<'a>;

    /// [`scan`](Driver::scan) with each record's revision and expiry: what an export or a
    /// copy between banks needs. The default reads every scanned id again (a record gone
    /// meanwhile is left out); drivers that have the whole record in hand while scanning
    /// override it.
    fn scan_records<'a>(&'a self, kind: &'a str) -> RecordsStream<'a> {
        Box::pin(self.scan(kind).filter_map(move |item| async move {
            match item {
                Ok((id, _)) => match self.read(kind, &id).await {
                    Ok(record) => Some(Ok((id, record))),
                    Err(e) if e.is_not_found() => None,
                    Err(e) => Some(Err(e)),
                },
                Err(e) => Some(Err(e)),
            }
        }))
    }

    /// Deletes the expired records of a type and returns how many it deleted (records the
    /// backend's own TTL already removed are not counted).
    async fn purge_expired(&self, kind: &str) -> Result<u64>;

    /// Releases the backend's connections. [`Bank`] calls it once; later calls
    /// fail with `Closed` there. The default does nothing.
    async fn close(&self) -> Result<()> {
        Ok(())
    }

    /// Reads many records at once; ids with no live record map to `None`.
    async fn read_all(&self, kind: &str, ids: &[&str]) -> Result<HashMap<String, Option<Value>>> {
        let mut found = HashMap::with_capacity(ids.len());
        for id in ids {
            let value = match self.read(kind, id).await {
                Ok(record) => Some(record.value),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e),
            };
            found.insert((*id).to_owned(), value);
        }
        Ok(found)
    }

    /// The live records of a type that meet every criterion (see [`Criteria`]), as
    /// `(id, value)` pairs in no set order. Drivers with indices use them for declared fields.
    async fn search(&self, kind: &str, criteria: &Criteria) -> Result<Vec<(String, Value)>> {
        let mut hits = Vec::new();
        let mut stream = self.scan(kind);
        while let Some(item) = stream.next().await {
            let (id, value) = item?;
            if criteria.matches(&value) {
                hits.push((id, value));
            }
        }
        Ok(hits)
    }

    /// The names of the types that may hold records, in any order: every type that holds a
    /// live record must be there; types whose records all expired or were deleted, and names
    /// that are not valid type names, may be there too ([`Bank::kinds`](crate::Bank::kinds)
    /// keeps only types with live records). The default is [`Error::Unsupported`].
    async fn kinds(&self) -> Result<Vec<String>> {
        Err(Error::Unsupported(
            "this driver cannot list its types".into(),
        ))
    }

    /// The number of live records of a type.
    async fn count(&self, kind: &str) -> Result<u64> {
        let mut n = 0;
        let mut stream = self.scan(kind);
        while let Some(item) = stream.next().await {
            item?;
            n += 1;
        }
        Ok(n)
    }

    /// The number of records of a type that expired and are still stored, waiting for
    /// `purge_expired` or the backend's own TTL. A backend whose TTL removes a record's value
    /// first but keeps its bookkeeping until a purge counts what the purge would remove. The
    /// default is [`Error::Unsupported`].
    async fn count_expired(&self, kind: &str) -> Result<u64> {
        let _ = kind;
        Err(Error::Unsupported(
            "this driver cannot count expired records".into(),
        ))
    }

    /// Applies a [`Patch`] atomically and returns the new revision: its keys set and removed,
    /// its expiry [resolved](PatchExpiry::resolve), a missing record created as `{}` when
    /// `patch.create` (else `NotFound`), `WrongType` for a record that is not an object, and
    /// `InvalidInput` with nothing changed when the result would pass the size limit.
    ///
    /// The default reads the record, applies the patch in this process and writes it back under
    /// a [`Precondition::Revision`] (or [`Precondition::Absent`]), again on a conflict: correct
    /// for every driver whose `write` checks atomically, but two round trips and retries under
    /// contention. Override it with the backend's own partial update where there is one, and
    /// set [`Capabilities::native_patch`].
    async fn patch(&self, patch: Patch<'_>) -> Result<Revision> {
        patch_by_read_and_write(self, patch).await
    }

    /// [`patch`](Driver::patch), also saying whether the record stood at revision `base` just
    /// before the patch (`Applied::on_base`): then a caller that knows the value at `base`
    /// knows the patched value without reading it. `true` must be certain; `false` means "not
    /// known", and is what the default (a plain `patch`) answers. A record the patch creates
    /// was not at `base`.
    async fn patch_on(&self, patch: Patch<'_>, base: Revision) -> Result<Applied> {
        let _ = base;
        Ok(Applied::new(self.patch(patch).await?, false))
    }

    /// Reads a live record unless it is still at revision `known` (see
    /// [`Bank::read_if_changed`](crate::Bank::read_if_changed)); `NotFound` as for `read`.
    /// The default reads the whole record and compares; override it where the backend can
    /// leave the value out when the revision matches.
    async fn read_if_changed(&self, kind: &str, id: &str, known: Revision) -> Result<IfChanged> {
        Ok(IfChanged::of(self.read(kind, id).await?, known))
    }

    /// Adds `delta` to an integer record atomically and returns the new value. A missing record
    /// starts at 0 (created with no expiry); a non-integer value, or a result outside `i64`,
    /// fails with `WrongType`.
    async fn incr_by(&self, kind: &str, id: &str, delta: i64) -> Result<i64> {
        modify(self, kind, id, Value::from(0), |value| {
            let new = value
                .as_i64()
                .and_then(|n| n.checked_add(delta))
                .ok_or_else(|| Error::wrong_type(kind, id, "an integer"))?;
            Ok((Value::from(new), new))
        })
        .await
    }

    /// Adds an item at the end of an array record and returns the new length. A missing record
    /// starts as `[]`; a non-array fails with `WrongType`.
    async fn append(&self, kind: &str, id: &str, item: Value) -> Result<usize> {
        modify(self, kind, id, Value::Array(Vec::new()), |value| {
            let mut items = as_array(kind, id, value)?.clone();
            items.push(item.clone());
            let len = items.len();
            Ok((Value::Array(items), len))
        })
        .await
    }

    /// Adds an item at the start of an array record and returns the new length. A missing record
    /// starts as `[]`; a non-array fails with `WrongType`.
    async fn prepend(&self, kind: &str, id: &str, item: Value) -> Result<usize> {
        modify(self, kind, id, Value::Array(Vec::new()), |value| {
            let mut items = as_array(kind, id, value)?.clone();
            items.insert(0, item.clone());
            let len = items.len();
            Ok((Value::Array(items), len))
        })
        .await
    }

    /// Removes the first item deep-equal to `item` from an array record; returns whether one was
    /// there. A missing record or an absent item is `Ok(false)`; a non-array is `WrongType`.
    async fn remove(&self, kind: &str, id: &str, item: &Value) -> Result<bool> {
        let mut contention = Contention::new(kind, id);
        loop {
            let record = match self.read(kind, id).await {
                Ok(record) => record,
                Err(e) if e.is_not_found() => return Ok(false),
                Err(e) => return Err(e),
            };
            let mut items = as_array(kind, id, &record.value)?.clone();
            let Some(at) = items.iter().position(|x| x == item) else {
                return Ok(false);
            };
            items.remove(at);
            let write = Write::new(
                kind,
                id,
                Value::Array(items),
                Precondition::Revision(record.revision),
            )
            .expires_at(record.expires_at);
            match self.write(write).await {
                Ok(_) => return Ok(true),
                Err(Error::Conflict { .. } | Error::NotFound { .. }) => {
                    contention.wait_or_give_up().await?
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The provided [`Driver::patch`]: reads the record, applies the patch in this process and
/// writes it back under a revision precondition, again on a conflict. For a driver that
/// patches natively but must fall back for some records.
pub async fn patch_by_read_and_write<D: Driver + ?Sized>(
    driver: &D,
    patch: Patch<'_>,
) -> Result<Revision> {
    let mut contention = Contention::new(patch.kind, patch.id);
    loop {
        let (mut value, precondition, current) = match driver.read(patch.kind, patch.id).await {
            Ok(record) => (
                record.value,
                Precondition::Revision(record.revision),
                record.expires_at,
            ),
            Err(e) if e.is_not_found() && patch.create => (
                Value::Object(serde_json::Map::new()),
                Precondition::Absent,
                None,
            ),
            Err(e) => return Err(e),
        };
        let expires_at = patch.expiry.resolve(current);
        patch.clone().apply(&mut value)?;
        let write = Write::new(patch.kind, patch.id, value, precondition).expires_at(expires_at);
        match driver.write(write).await {
            Err(Error::Conflict { .. } | Error::AlreadyExists { .. }) => {
                contention.wait_or_give_up().await?
            }
            Err(Error::NotFound { .. }) if patch.create => contention.wait_or_give_up().await?,
            other => return other,
        }
    }
}

/// Read-modify-write under a revision precondition, retried on conflict; a missing record starts
/// at `initial` and is created. Atomic whenever the driver's `write` checks its precondition
/// atomically.
async fn modify<D, R, F>(
    driver: &D,
    kind: &str,
    id: &str,
    initial: Value,
    mut change: F,
) -> Result<R>
where
    D: Driver + ?Sized,
    F: FnMut(&Value) -> Result<(Value, R)> + Send,
    R: Send,
{
    let mut contention = Contention::new(kind, id);
    loop {
        let outcome = match driver.read(kind, id).await {
            Ok(record) => {
                let (new, result) = change(&record.value)?;
                let write = Write::new(kind, id, new, Precondition::Revision(record.revision))
                    .expires_at(record.expires_at);
                driver.write(write).await.map(|_| result)
            }
            Err(e) if e.is_not_found() => {
                let (new, result) = change(&initial)?;
                let write = Write::new(kind, id, new, Precondition::Absent);
                driver.write(write).await.map(|_| result)
            }
            Err(e) => return Err(e),
        };
        match outcome {
            Err(Error::Conflict { .. } | Error::NotFound { .. } | Error::AlreadyExists { .. }) => {
                contention.wait_or_give_up().await?
            }
            other => return other,
        }
    }
}

/// How many conflicting writes a provided read-modify-write loop ([`Driver::incr_by`],
/// [`Driver::append`], [`Driver::prepend`], [`Driver::remove`], [`patch_by_read_and_write`])
/// makes before it gives up with [`Error::Contended`], which applied nothing.
pub const MAX_CONFLICTS: u32 = 64;

/// The longest wait between two tries of a provided read-modify-write loop.
const MAX_BACKOFF: Duration = Duration::from_millis(50);

/// The tries of one read-modify-write loop: the first retries only yield, later ones sleep for
/// an exponentially growing, jittered time (so contenders spread out), and the loop stops
/// after [`MAX_CONFLICTS`] conflicts.
struct Contention<'a> {
    kind: &'a str,
    id: &'a str,
    conflicts: u32,
}

impl<'a> Contention<'a> {
    fn new(kind: &'a str, id: &'a str) -> Self {
        Contention {
            kind,
            id,
            conflicts: 0,
        }
    }

    /// After a write that conflicted (and so applied nothing): waits before the next try, or
    /// gives up with [`Error::Contended`].
    async fn wait_or_give_up(&mut self) -> Result<()> {
        self.conflicts += 1;
        if self.conflicts >= MAX_CONFLICTS {
            return Err(Error::Contended {
                kind: self.kind.to_owned(),
                id: self.id.to_owned(),
                attempts: self.conflicts,
            });
        }
        if self.conflicts <= 2 {
            yield_now().await;
            return Ok(());
        }
        let ceiling = Duration::from_micros(250u64 << self.conflicts.min(16)).min(MAX_BACKOFF);
        // Between half the ceiling and all of it.
        let jitter = std::hash::BuildHasher::hash_one(
            &std::collections::hash_map::RandomState::new(),
            self.conflicts,
        );
        let wait = ceiling / 2 + ceiling.mul_f64((jitter % 1024) as f64 / 2048.0);
        tokio::time::sleep(wait).await;
        Ok(())
    }
}

/// Lets other tasks run between retries without tying the core to one runtime.
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}
