//! The one error type every driver returns.

use crate::Revision;

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a databank call.
///
/// Match on the variant to react to a condition (`NotFound`, `AlreadyExists`, `Conflict`, ...);
/// use [`Error::is_retryable`] to tell a passing fault (server down, timeout) from a permanent one.
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
    /// The backend cannot be reached now (connection refused, timed out, server restarting).
    #[error("{driver} is not reachable: {message}")]
    NotConnected {
        /// The driver name, such as `"redis"`.
        driver: &'static str,
        /// What happened.
        message: String,
    },
    /// The bank was closed with [`crate::Databank::close`]; it accepts no more calls.
    #[error("the bank is closed")]
    Closed,
    /// The driver does not offer this operation.
    #[error("{0} is not supported by this driver")]
    Unsupported(&'static str),
    /// A stored record could not be decoded; `location` names the file or key.
    #[error("corrupt record at {location}: {reason}")]
    Corrupt {
        /// Where the bad record lives (a path, a key).
        location: String,
        /// Why it could not be read.
        reason: String,
    },
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
    /// True when the same call may succeed if tried again later (the backend was unreachable or
    /// timed out). A conflict is not retryable as such: read the record again and redo the change.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::NotConnected { .. } => true,
            Error::Backend { retryable, .. } => *retryable,
            _ => false,
        }
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

    /// True for [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }
}
