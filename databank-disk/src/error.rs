//! File-system errors as ours.

use std::io;
use std::path::Path;

use databank_core::Error;

/// An I/O error as a typed error naming the path: a permanent `Backend` error, retryable only
/// for an interrupted or timed-out call (which wrote nothing).
pub fn io_error(path: &Path, e: io::Error) -> Error {
    Error::Backend {
        driver: "disk",
        retryable: matches!(
            e.kind(),
            io::ErrorKind::Interrupted | io::ErrorKind::TimedOut
        ),
        source: Box::new(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    }
}
