//! What a read returns: the value, its revision and its expiry.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An expiry instant: `None` means the record never expires.
pub type Expiry = Option<DateTime<Utc>>;

/// An opaque version stamp of a record, changed by every write.
///
/// Read a record, change its value, and write it back with
/// [`update_if`](crate::Bank::update_if) passing the revision you read: the write fails with
/// [`Error::Conflict`](crate::Error::Conflict) if someone else wrote the record in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Revision(u64);

impl Revision {
    /// Wraps a native version number (a counter, a CAS value); drivers use this, or
    /// [`random_revision`](crate::driver::random_revision).
    pub const fn new(value: u64) -> Self {
        Revision(value)
    }

    /// The driver's native version number.
    pub const fn get(self) -> u64 {
        self.0
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
    /// The revision to pass to [`update_if`](crate::Bank::update_if).
    pub revision: Revision,
    /// When the record stops being visible, if ever.
    pub expires_at: Option<DateTime<Utc>>,
}

impl Record {
    /// True when the record has an expiry at or before `now`.
    pub fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        crate::driver::is_expired(self.expires_at, now)
    }
}
