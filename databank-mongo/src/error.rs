//! MongoDB client errors as ours: whether the request certainly did not apply decides between
//! `Unavailable` (safe to retry) and `OutcomeUnknown`.

use databank_core::Error;
use mongodb::error::{ErrorKind, WriteFailure};

/// The server's duplicate-key error code.
const DUPLICATE_KEY: i32 = 11000;

/// Maps a client error. No server selected, a cleared pool, or an error the server labels
/// retryable (it did not apply the write) ran nothing: `Unavailable`. An I/O error after the
/// request was sent may have applied it: `OutcomeUnknown`. Anything else is a permanent
/// `Backend`.
pub fn map_err(e: mongodb::error::Error) -> Error {
    let not_applied = matches!(
        *e.kind,
        ErrorKind::ServerSelection { .. } | ErrorKind::ConnectionPoolCleared { .. }
    ) || e.contains_label("RetryableWriteError")
        || e.contains_label("TransientTransactionError");
    if not_applied {
        Error::Unavailable {
            driver: "mongo",
            message: e.to_string(),
        }
    } else if matches!(*e.kind, ErrorKind::Io(_)) {
        Error::OutcomeUnknown {
            driver: "mongo",
            message: e.to_string(),
        }
    } else {
        Error::Backend {
            driver: "mongo",
            retryable: false,
            source: Box::new(e),
        }
    }
}

/// True for the duplicate-key error (an insert of an `_id` that is taken).
pub fn is_duplicate(e: &mongodb::error::Error) -> bool {
    match &*e.kind {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == DUPLICATE_KEY,
        ErrorKind::Command(c) => c.code == DUPLICATE_KEY,
        _ => e.to_string().contains("E11000"),
    }
}
