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
pub fn map_err(e: SdkError) -> Error {
    let not_sent = matches!(
        e.kind(),
        ErrorKind::ServiceNotAvailable(_) | ErrorKind::ClusterDropped
    );
    let unknown = matches!(
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
