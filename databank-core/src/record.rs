//! What a read returns: the value, its revision and its expiry.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An opaque version stamp of a record, changed by every write.
///
/// Read a record, change its value, and write it back with
/// [`update_if`](crate::Databank::update_if) passing the revision you read: the write fails with
/// [`Error::Conflict`](crate::Error::Conflict) if someone else wrote the record in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Revision(u64);

impl Revision {
    /// Wraps a driver's native version number (a counter, a CAS value).
    pub const fn new(value: u64) -> Self {
        Revision(value)
    }

    /// The driver's native version number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// A fresh revision: 63 random bits (never 0), for drivers that keep the revision in the
    /// record itself, so writers in many processes never need to coordinate.
    ///
    /// ```
    /// use databank_core::Revision;
    /// let (a, b) = (Revision::random(), Revision::random());
    /// assert_ne!(a, b);
    /// assert!(a.get() > 0 && a.get() <= i64::MAX as u64);
    /// ```
    pub fn random() -> Self {
        use std::hash::BuildHasher;
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let random =
            std::collections::hash_map::RandomState::new().hash_one((n, std::process::id()));
        Revision((random & (i64::MAX as u64)).max(1))
    }
}

impl std::fmt::Display for Revision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A live record as read from a bank.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Record {
    /// The stored JSON value, exactly as written.
    pub value: Value,
    /// The revision to pass to [`update_if`](crate::Databank::update_if).
    pub revision: Revision,
    /// When the record stops being visible, if ever.
    pub expires_at: Option<DateTime<Utc>>,
}

impl Record {
    /// Builds a record; drivers use this to answer `read`.
    pub fn new(value: Value, revision: Revision, expires_at: Option<DateTime<Utc>>) -> Self {
        Record {
            value,
            revision,
            expires_at,
        }
    }

    /// True when the record has an expiry at or before `now`.
    pub fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        is_expired(self.expires_at, now)
    }
}

/// True when `expires_at` is set and not after `now`: the one expiry rule every driver follows.
pub fn is_expired(expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    expires_at.is_some_and(|at| at <= now)
}
