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

/// Our error for an SDK error: the outage kinds become the retryable
/// [`Error::NotConnected`]; the rest [`Error::Backend`] (retryable when the SDK says so).
pub fn map_err(e: SdkError) -> Error {
    let outage = matches!(
        e.kind(),
        ErrorKind::ServerTimeout
            | ErrorKind::ServiceNotAvailable(_)
            | ErrorKind::ClusterDropped
            | ErrorKind::RequestCanceled
    );
    let retryable = matches!(
        e.kind(),
        ErrorKind::TemporaryFailure
            | ErrorKind::DocumentLocked
            | ErrorKind::RateLimitedFailure
            | ErrorKind::DurabilityWriteInProgress
            | ErrorKind::DurableWriteRecommitInProgress
            | ErrorKind::DurabilityAmbiguous
    );
    if outage {
        Error::NotConnected {
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
    fn outages_are_retryable_not_connected() {
        for kind in [
            ErrorKind::ServerTimeout,
            ErrorKind::ServiceNotAvailable(ServiceType::QUERY),
            ErrorKind::ClusterDropped,
            ErrorKind::RequestCanceled,
        ] {
            let e = map_err(sdk(kind));
            assert!(matches!(e, Error::NotConnected { .. }), "{e:?}");
            assert!(e.is_retryable());
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
