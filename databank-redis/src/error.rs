//! Redis client errors as ours: whether the command certainly did not run decides between
//! `Unavailable` (safe to retry) and `OutcomeUnknown`.

use databank_core::Error;
use redis::{ErrorKind, RedisError, ServerErrorKind};

/// Maps a client error. A refused connection, or a server that refused the command (loading,
/// failing over, `TRYAGAIN`, or a cluster node redirecting it with `MOVED`/`ASK` when the
/// cluster client ran out of retries), ran nothing: `Unavailable`. A timeout or a connection dropped or
/// broken mid-call may have run it: `OutcomeUnknown`. Anything else is a permanent `Backend`.
pub fn map_err(e: RedisError) -> Error {
    let refused_by_server = matches!(
        e.kind(),
        ErrorKind::Server(
            ServerErrorKind::BusyLoading
                | ServerErrorKind::TryAgain
                | ServerErrorKind::MasterDown
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::Moved
                | ServerErrorKind::Ask
        )
    );
    if e.is_connection_refusal() || refused_by_server {
        Error::Unavailable {
            driver: "redis",
            message: e.to_string(),
        }
    } else if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() {
        Error::OutcomeUnknown {
            driver: "redis",
            message: e.to_string(),
        }
    } else {
        Error::Backend {
            driver: "redis",
            retryable: false,
            source: Box::new(e),
        }
    }
}
