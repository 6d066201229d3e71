//! From the SDK's error kinds to ours.

use couchbase::error::{Error as SdkError, ErrorKind};
use databank_core::Error;

/// What an SDK error means for the caller of one record operation.
#[derive(Debug)]
pub enum Outcome {
    /// The key holds no document.
    Missing,
    /// The key already holds a document (`insert`).
    Exists,
    /// The document changed since it was read (CAS).
    Changed,
    /// A sub-document counter or list operation met a value of the wrong type (or overflow).
    WrongType,
    /// A sub-document operation met a value nested deeper than the server's sub-document limit.
    TooDeep,
    /// Anything else, already in our terms.
    Failed(Error),
}

/// Sorts an SDK error into the cases the driver handles itself and everything else.
pub fn classify(e: SdkError) -> Outcome {
    match e.kind() {
        ErrorKind::DocumentNotFound => Outcome::Missing,
        ErrorKind::DocumentExists => Outcome::Exists,
        ErrorKind::CasMismatch => Outcome::Changed,
        ErrorKind::PathMismatch
        | ErrorKind::NumberTooBig
        | ErrorKind::DeltaInvalid
        | ErrorKind::ValueInvalid
        | ErrorKind::DocumentNotJSON => Outcome::WrongType,
        ErrorKind::ValueTooDeep | ErrorKind::PathTooDeep | ErrorKind::PathTooBig => {
            Outcome::TooDeep
        }
        _ => Outcome::Failed(map_err(e)),
    }
}

/// Our error for an SDK error. A service that is not there or a dropped cluster ran nothing:
/// [`Error::Unavailable`]. A server timeout, a cancelled request or an ambiguous durability
/// answer may have applied it: [`Error::OutcomeUnknown`]. Temporary refusals (locked, rate
/// limited, a durable write in progress) are a retryable [`Error::Backend`]; the rest permanent.
///
/// The SDK flattens failures of the connection itself into `OtherFailure` with the key-value
/// client's message, so those are told apart by it (see [`connection_failure`]).
pub fn map_err(e: SdkError) -> Error {
    let connection = match e.kind() {
        ErrorKind::OtherFailure(message) => connection_failure(message),
        _ => None,
    };
    let not_sent = connection == Some(Sent::No)
        || matches!(
            e.kind(),
            ErrorKind::ServiceNotAvailable(_) | ErrorKind::ClusterDropped
        );
    let unknown = connection == Some(Sent::Maybe)
        || matches!(
            e.kind(),
            ErrorKind::ServerTimeout | ErrorKind::RequestCanceled | ErrorKind::DurabilityAmbiguous
        );
    let retryable = matches!(
        e.kind(),
        ErrorKind::TemporaryFailure
            | ErrorKind::DocumentLocked
            | ErrorKind::RateLimitedFailure
            | ErrorKind::DurabilityWriteInProgress
            | ErrorKind::DurableWriteRecommitInProgress
    );
    if not_sent {
        Error::Unavailable {
            driver: "couchbase",
            message: e.to_string(),
        }
    } else if unknown {
        Error::OutcomeUnknown {
            driver: "couchbase",
            message: e.to_string(),
        }
    } else {
        Error::Backend {
            driver: "couchbase",
            retryable,
            source: Box::new(e),
        }
    }
}

/// Whether a request that failed with its connection reached the server.
#[derive(Debug, PartialEq, Eq)]
enum Sent {
    /// It was never written to a connection: safe to send again.
    No,
    /// It was written, and the connection failed before the answer: the server may have run it.
    Maybe,
}

/// Reads an `OtherFailure` message of the SDK's key-value client (`couchbase-core`'s
/// `memdx::error::ErrorKind` display): a request cancelled in flight (its socket closed, or
/// timed out), or a connection error, may have been applied; a failed dispatch or connection
/// attempt sent nothing. Anything else is not a connection failure.
fn connection_failure(message: &str) -> Option<Sent> {
    if message.starts_with("request cancelled") || message.starts_with("connection error") {
        Some(Sent::Maybe)
    } else if message.starts_with("dispatch failed") || message.starts_with("connection failed") {
        Some(Sent::No)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use couchbase::service_type::ServiceType;

    fn sdk(kind: ErrorKind) -> SdkError {
        SdkError::new(kind)
    }

    #[test]
    fn record_outcomes() {
        assert!(matches!(
            classify(sdk(ErrorKind::DocumentNotFound)),
            Outcome::Missing
        ));
        assert!(matches!(
            classify(sdk(ErrorKind::DocumentExists)),
            Outcome::Exists
        ));
        assert!(matches!(
            classify(sdk(ErrorKind::CasMismatch)),
            Outcome::Changed
        ));
        for kind in [
            ErrorKind::PathMismatch,
            ErrorKind::NumberTooBig,
            ErrorKind::DeltaInvalid,
            ErrorKind::DocumentNotJSON,
        ] {
            assert!(matches!(classify(sdk(kind)), Outcome::WrongType));
        }
        assert!(matches!(
            classify(sdk(ErrorKind::ValueTooDeep)),
            Outcome::TooDeep
        ));
        assert!(matches!(
            classify(sdk(ErrorKind::AuthenticationFailure)),
            Outcome::Failed(Error::Backend {
                retryable: false,
                ..
            })
        ));
    }

    #[test]
    fn retry_safety_follows_what_the_server_may_have_done() {
        for kind in [
            ErrorKind::ServiceNotAvailable(ServiceType::QUERY),
            ErrorKind::ClusterDropped,
        ] {
            let e = map_err(sdk(kind));
            assert!(matches!(e, Error::Unavailable { .. }), "{e:?}");
            assert!(e.is_retryable());
        }
        for kind in [
            ErrorKind::ServerTimeout,
            ErrorKind::RequestCanceled,
            ErrorKind::DurabilityAmbiguous,
        ] {
            let e = map_err(sdk(kind));
            assert!(matches!(e, Error::OutcomeUnknown { .. }), "{e:?}");
            assert!(!e.is_retryable(), "{e:?} may have been applied");
        }
        for message in [
            "request cancelled: Closed in flight, dispatched to: 127.0.0.1:1, dispatched from: 127.0.0.1:2",
            "request cancelled: Timeout",
            "connection error",
        ] {
            let e = map_err(sdk(ErrorKind::OtherFailure(message.into())));
            assert!(matches!(e, Error::OutcomeUnknown { .. }), "{message}: {e:?}");
        }
        for message in [
            "dispatch failed: opaque: 7, op_code: SET",
            "connection failed refused",
        ] {
            let e = map_err(sdk(ErrorKind::OtherFailure(message.into())));
            assert!(matches!(e, Error::Unavailable { .. }), "{message}: {e:?}");
        }
        let e = map_err(sdk(ErrorKind::OtherFailure("bucket is sad".into())));
        assert!(
            matches!(
                e,
                Error::Backend {
                    retryable: false,
                    ..
                }
            ),
            "an unknown failure is permanent: {e:?}"
        );
        for kind in [ErrorKind::TemporaryFailure, ErrorKind::DocumentLocked] {
            let e = map_err(sdk(kind));
            assert!(
                matches!(
                    e,
                    Error::Backend {
                        retryable: true,
                        ..
                    }
                ),
                "{e:?}"
            );
        }
        for kind in [
            ErrorKind::AuthenticationFailure,
            ErrorKind::BucketNotFound,
            ErrorKind::ParsingFailure,
            ErrorKind::ValueTooLarge,
        ] {
            let e = map_err(sdk(kind));
            assert!(!e.is_retryable(), "{e:?}");
        }
    }
}
