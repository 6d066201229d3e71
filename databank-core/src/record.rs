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

/// What [`Bank::read_if_changed`](crate::Bank::read_if_changed) found: a live record is either
/// still at the revision the caller knows, or was written since.
#[derive(Debug, Clone, PartialEq)]
pub enum IfChanged {
    /// Still at the known revision, so its value is the one the caller has; this is the expiry
    /// it has now (a [`touch`](crate::Bank::touch) moves it without a new revision).
    Unchanged {
        /// When the record stops being visible, if ever.
        expires_at: Expiry,
    },
    /// Written since: the whole record as it is now.
    Changed(Record),
}

impl IfChanged {
    /// What a full read found, against the revision the caller knows.
    ///
    /// ```
    /// use databank_core::{driver::record, IfChanged, Revision};
    /// let read = record(serde_json::json!({"a": 1}), Revision::new(7), None);
    /// assert_eq!(IfChanged::of(read.clone(), Revision::new(7)), IfChanged::Unchanged { expires_at: None });
    /// assert_eq!(IfChanged::of(read.clone(), Revision::new(8)), IfChanged::Changed(read));
    /// ```
    pub fn of(record: Record, known: Revision) -> Self {
        if record.revision == known {
            IfChanged::Unchanged {
                expires_at: record.expires_at,
            }
        } else {
            IfChanged::Changed(record)
        }
    }
}
