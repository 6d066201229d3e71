//! Databank drivers on SQL databases through `sqlx`: PostgreSQL (feature `postgres`) and
//! SQLite (feature `sqlite`), both on by default.
//!
//! ```no_run
//! // Compiled, not run, by the doc tests: it needs a PostgreSQL server at this address.
//! use databank_core::{Bank, Schema};
//! use databank_sql::{PostgresBank, SqlConfig, SqliteBank};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), databank_core::Error> {
//!     let schema = Schema::new().index("person", ["email"]);
//!     let config = SqlConfig::from_url("postgres://app:pw@127.0.0.1/app?table=records")?;
//!     let pg = Bank::new(PostgresBank::connect(config, schema.clone()).await?);
//!     let config = SqlConfig::from_url("sqlite://data/app.db")?;
//!     let lite = Bank::new(SqliteBank::connect(config, schema).await?);
//!     Ok(())
//! }
//! ```
//!
//! With the `databank` crate (features `postgres`, `sqlite`), `databank::open(url, schema)`
//! opens them by URL. An application that already has a pool shares it:
//!
//! ```no_run
//! // Compiled, not run, by the doc tests: it needs a PostgreSQL server at this address.
//! use databank_sql::{PostgresBank, SqlConfig};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let pool = sqlx::PgPool::connect("postgres://app:pw@127.0.0.1/app").await?;
//!     let config = SqlConfig::new("").table("sessions");
//!     let bank = databank_core::Bank::new(
//!         PostgresBank::with_pool(pool, config, Default::default()).await?,
//!     );
//!     Ok(())
//! }
//! ```
//!
//! Both are one driver, [`SqlBank`], written once over sqlx's types for a database (its
//! [`Dialect`]: [`Postgres`] or [`Sqlite`]); [`PostgresBank`] and [`SqliteBank`] name it for
//! each and say how each opens. What differs between the two is each dialect's SQL: its
//! parameters and JSON functions, and its own patch, batched read and search statements.
//!
//! # Connections
//! sqlx tests each connection given back to its pool with a round trip to the database. A
//! bank that opened its own pool (from a URL) keeps the connections it used between
//! statements instead, up to `max_connections`, so a call is one round trip; it gives one back
//! to be tested only after a failure that may have broken it (and then all it kept) or a
//! cancelled call. A bank on a shared pool (`with_pool`, or once `pool()` was called) gives
//! every connection back after its statement, so it never holds what the application needs.
//!
//! # Layout
#![doc = include_str!("layout.md")]
//!
//! # Outages
//! Every call is bounded by the URL's `timeout_ms` (default 5000). A call that got no
//! connection, or that the server refused while shutting down or starting, fails with
//! [`Error::Unavailable`](databank_core::Error::Unavailable) (nothing applied, safe to retry);
//! one whose connection broke after the statement was sent, or that ran out of time, fails
//! with [`Error::OutcomeUnknown`](databank_core::Error::OutcomeUnknown). The pool opens new
//! connections as needed, so the same bank works again once the server is back.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(not(any(feature = "postgres", feature = "sqlite")))]
compile_error!("databank-sql needs its `postgres` feature, its `sqlite` feature, or both");

mod backend;
mod config;
mod connections;
mod error;
#[cfg(feature = "postgres")]
mod jsonb;
#[cfg(feature = "postgres")]
mod postgres;
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use backend::{Dialect, SqlBank};
pub use config::{
    SqlConfig, DEFAULT_MAX_CONNECTIONS, DEFAULT_TABLE, DEFAULT_TIMEOUT, MAX_TABLE_LEN,
};
#[cfg(feature = "postgres")]
pub use postgres::{Postgres, PostgresBank};
pub use sql::SCHEMA_VERSION;
#[cfg(feature = "sqlite")]
pub use sqlite::{Sqlite, SqliteBank};

use databank_core::driver::{Driver, OpenFuture, Registration, Url};
use databank_core::{Result, Schema};

/// Registers the schemes of the enabled features with [`databank_core::open`]: `postgres`
/// and `postgresql`, `sqlite`. Calling it again is harmless.
pub fn register() -> Result<()> {
    #[cfg(feature = "postgres")]
    databank_core::driver::register(Registration {
        name: "postgres",
        schemes: &["postgres", "postgresql"],
        open: open_url,
    })?;
    #[cfg(feature = "sqlite")]
    databank_core::driver::register(Registration {
        name: "sqlite",
        schemes: &["sqlite"],
        open: open_url,
    })?;
    Ok(())
}

#[allow(dead_code)]
fn open_url(url: Url, schema: Schema) -> OpenFuture {
    Box::pin(async move {
        let config = SqlConfig::from_url(url.as_str())?;
        let driver: Box<dyn Driver> = match url.scheme() {
            #[cfg(feature = "sqlite")]
            "sqlite" => Box::new(SqliteBank::connect(config, schema).await?),
            #[cfg(feature = "postgres")]
            _ => Box::new(PostgresBank::connect(config, schema).await?),
            #[cfg(not(feature = "postgres"))]
            other => {
                return Err(databank_core::Error::InvalidInput(format!(
                    "scheme {other} needs databank-sql's postgres feature"
                )))
            }
        };
        Ok(driver)
    })
}
