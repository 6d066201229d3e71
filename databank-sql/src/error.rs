//! sqlx errors to ours.

use databank_core::Error;

/// Maps an sqlx error. No connection to be had (pool timeout, refused connect, a server
/// shutting down or starting) ran nothing: `Unavailable`. A connection that broke with the
/// request sent may have applied it: `OutcomeUnknown`. Anything else is a permanent `Backend`.
pub fn map_err(driver: &'static str, e: sqlx::Error) -> Error {
    match e {
        sqlx::Error::PoolTimedOut => Error::Unavailable {
            driver,
            message: "no database connection could be had in time".into(),
        },
        sqlx::Error::PoolClosed => Error::Closed,
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => {
            Error::OutcomeUnknown {
                driver,
                message: e.to_string(),
            }
        }
        sqlx::Error::Database(ref db) if not_applied(db.code().as_deref()) => Error::Unavailable {
            driver,
            message: e.to_string(),
        },
        other => Error::Backend {
            driver,
            retryable: false,
            source: Box::new(other),
        },
    }
}

/// Error codes of statements that were not applied and may be tried again: PostgreSQL's
/// connection exceptions, shutdown and start-up, too many connections, serialization
/// failures and deadlocks; SQLite's BUSY and LOCKED (another writer held the database past
/// the busy timeout).
fn not_applied(code: Option<&str>) -> bool {
    let Some(code) = code else { return false };
    code.starts_with("08")
        || matches!(
            code,
            "57P01"
                | "57P02"
                | "57P03"
                | "53300"
                | "40001"
                | "40P01"
                | "5"
                | "6"
                | "261"
                | "262"
                | "517"
        )
}

/// Maps an error met while connecting: whatever went wrong, nothing was applied.
pub fn connect_err(driver: &'static str, e: sqlx::Error) -> Error {
    match map_err(driver, e) {
        Error::OutcomeUnknown { driver, message } => Error::Unavailable { driver, message },
        other => other,
    }
}
