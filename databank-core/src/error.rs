//! The one error type every driver returns.

use crate::Revision;

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a databank call.
///
/// Match on the variant to react to a condition (`NotFound`, `AlreadyExists`, `Conflict`, ...);
/// use [`Error::is_retryable`] to tell a call that certainly did not apply (server down) from
/// one whose outcome is unknown (a timeout) or a permanent failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No live record of this type has this id (an expired record counts as missing).
    #[error("{kind} {id:?} not found")]
    NotFound {
        /// The type name.
        kind: String,
        /// The record id.
        id: String,
    },
    /// `create` found a live record with this id already.
    #[error("{kind} {id:?} already exists")]
    AlreadyExists {
        /// The type name.
        kind: String,
        /// The record id.
        id: String,
    },
    /// `update_if` found the record at another revision than the one expected.
    #[error("{kind} {id:?} changed since revision {expected}")]
    Conflict {
        /// The type name.
        kind: String,
        /// The record id.
        id: String,
        /// The revision the caller expected.
        expected: Revision,
    },
    /// The stored value is not of the JSON type the operation needs
    /// (an integer for counters, an array for list operations).
    #[error("{kind} {id:?} is not {expected}")]
    WrongType {
        /// The type name.
        kind: String,
        /// The record id.
        id: String,
        /// What the operation needed, such as `"an integer"`.
        expected: &'static str,
    },
    /// A list operation asked for an index past the end of the array.
    #[error("{kind} {id:?} has no item at index {index}")]
    NoSuchItem {
        /// The type name.
        kind: String,
        /// The record id.
        id: String,
        /// The index asked for.
        index: usize,
    },
    /// The caller passed something the bank does not accept; the message says what.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The URL names a scheme no driver registered.
    #[error("no databank driver handles scheme {scheme:?}; registered: {registered:?}")]
    UnknownScheme {
        /// The scheme of the URL.
        scheme: String,
        /// The schemes drivers have registered.
        registered: Vec<String>,
    },
    /// The call did not reach the backend (connection refused or dropped before the request
    /// was sent, server restarting): nothing was applied, and the same call is safe to retry.
    #[error("{driver} is not reachable: {message}")]
    Unavailable {
        /// The driver name, such as `"redis"`.
        driver: &'static str,
        /// What happened.
        message: String,
    },
    /// The request may or may not have been applied: it timed out after it was sent, the
    /// backend's durability answer was ambiguous, or a driver's own retry loop gave up after a
    /// try whose outcome it could not tell. Retrying a counter or list operation after this
    /// may apply it twice; read before retrying.
    #[error("{driver}: the outcome is unknown: {message}")]
    OutcomeUnknown {
        /// The driver name, such as `"redis"`.
        driver: &'static str,
        /// What happened.
        message: String,
    },
    /// A read-modify-write loop gave up after `attempts` writes that each found the record
    /// changed since its read: nothing was applied, and trying again later may succeed. The
    /// provided [`Driver`](crate::driver::Driver) loops (counters, lists and patches of a
    /// driver that does not do them natively) stop after
    /// [`MAX_CONFLICTS`](crate::driver::MAX_CONFLICTS).
    #[error("{kind} {id:?}: gave up after {attempts} writes that each met a concurrent change; nothing was applied")]
    Contended {
        /// The record's type.
        kind: String,
        /// The record's id.
        id: String,
        /// How many writes conflicted.
        attempts: u32,
    },
    /// The bank was closed with [`Bank::close`](crate::Bank::close); it accepts no more calls.
    #[error("the bank is closed")]
    Closed,
    /// A stored record could not be decoded; `location` names the file or key.
    #[error("corrupt record at {location}: {reason}")]
    Corrupt {
        /// Where the bad record lives (a path, a key).
        location: String,
        /// Why it could not be read.
        reason: String,
    },
    /// The driver cannot do this at all (such as listing its types, for a third-party driver
    /// that does not implement it); the message says what.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// Any other failure of the backend, with its source.
    #[error("{driver} error: {source}")]
    Backend {
        /// The driver name, such as `"disk"`.
        driver: &'static str,
        /// Whether trying the same call again later may succeed.
        retryable: bool,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    /// True when the call was not applied and may succeed if tried again later
    /// ([`Error::Unavailable`], [`Error::Contended`], or a backend error its driver marks so). False for
    /// [`Error::OutcomeUnknown`]: a timed-out `incr_by` may already have counted. A conflict is
    /// not retryable as such either: read the record again and redo the change.
    ///
    /// ```
    /// use databank_core::Error;
    /// let down = Error::Unavailable { driver: "redis", message: "connection refused".into() };
    /// let timed_out = Error::OutcomeUnknown { driver: "redis", message: "no answer".into() };
    /// assert!(down.is_retryable());
    /// assert!(!timed_out.is_retryable());
    /// assert!(timed_out.is_outcome_unknown());
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Unavailable { .. } | Error::Contended { .. } => true,
            Error::Backend { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// True for [`Error::OutcomeUnknown`]: the backend may have applied the call.
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Error::OutcomeUnknown { .. })
    }

    /// True when the backend could not answer ([`Error::Unavailable`] or
    /// [`Error::OutcomeUnknown`]): what a server outage produces.
    pub fn is_outage(&self) -> bool {
        matches!(
            self,
            Error::Unavailable { .. } | Error::OutcomeUnknown { .. }
        )
    }

    /// Builds [`Error::NotFound`].
    pub fn not_found(kind: &str, id: &str) -> Self {
        Error::NotFound {
            kind: kind.to_owned(),
            id: id.to_owned(),
        }
    }

    /// Builds [`Error::AlreadyExists`].
    pub fn already_exists(kind: &str, id: &str) -> Self {
        Error::AlreadyExists {
            kind: kind.to_owned(),
            id: id.to_owned(),
        }
    }

    /// Builds [`Error::Conflict`].
    pub fn conflict(kind: &str, id: &str, expected: Revision) -> Self {
        Error::Conflict {
            kind: kind.to_owned(),
            id: id.to_owned(),
            expected,
        }
    }

    /// Builds [`Error::WrongType`].
    pub fn wrong_type(kind: &str, id: &str, expected: &'static str) -> Self {
        Error::WrongType {
            kind: kind.to_owned(),
            id: id.to_owned(),
            expected,
        }
    }

    /// Builds a permanent [`Error::Backend`].
    pub fn backend(
        driver: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Backend {
            driver,
            retryable: false,
            source: source.into(),
        }
    }

    /// The same error, with an unknown outcome read as "not applied": for calls that change
    /// nothing (connecting, a ping), where a timeout cannot have done anything.
    pub fn nothing_applied(self) -> Self {
        match self {
            Error::OutcomeUnknown { driver, message } => Error::Unavailable { driver, message },
            other => other,
        }
    }

    /// True for [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }
}
