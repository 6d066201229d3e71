//! `postgres://` and `sqlite://` URLs: the database as sqlx takes it, plus our parameters.

use std::fmt;
use std::time::Duration;

use databank_core::driver::{check_name, take_url_params, timeout_ms, Url};
use databank_core::Error;

/// The table used when the URL names none.
pub const DEFAULT_TABLE: &str = "databank";
/// The default time a call may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default size of the connection pool the driver opens.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;
/// The longest table name: PostgreSQL names are at most 63 bytes, and the driver's index names
/// add up to 21 bytes to it.
pub const MAX_TABLE_LEN: usize = 40;

/// Where and how to connect, parsed from a URL such as
/// `postgres://user:pw@host:5432/app?table=sessions&timeout_ms=2000` or
/// `sqlite://data/app.db?table=records`, or built in code.
///
/// Our parameters are taken out of the URL; every other one (`sslmode`, `application_name`,
/// SQLite's `mode`...) goes to sqlx as it is.
///
/// | parameter | meaning | default |
/// |---|---|---|
/// | `table` | the table holding the records (`<table>_meta` beside it) | `databank` |
/// | `timeout_ms` | how long one call may take | 5000 |
/// | `max_connections` | the size of the pool the driver opens | 16 (SQLite in memory: 1) |
///
/// ```
/// let c = databank_sql::SqlConfig::from_url("postgres://u:pw@h/app?table=web_sessions&sslmode=disable")?;
/// assert_eq!(c.table, "web_sessions");
/// assert!(c.database_url.ends_with("/app?sslmode=disable"));
/// assert!(!format!("{c:?}").contains("pw"));
/// assert!(databank_sql::SqlConfig::from_url("postgres://h/app?table=a;drop").is_err());
/// # Ok::<(), databank_core::Error>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct SqlConfig {
    /// The database URL as sqlx takes it (our parameters removed).
    pub database_url: String,
    /// The table holding the records: 1 to [`MAX_TABLE_LEN`] ASCII letters, digits or `_`,
    /// starting with a letter.
    pub table: String,
    /// How long one call may take (past it: `OutcomeUnknown`); also how long to wait for a
    /// connection from the pool (past it: `Unavailable`).
    pub timeout: Duration,
    /// The size of the pool the driver opens (not used with a pool handed in).
    pub max_connections: u32,
}

impl fmt::Debug for SqlConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlConfig")
            .field("database_url", &databank_core::redact(&self.database_url))
            .field("table", &self.table)
            .field("timeout", &self.timeout)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

impl SqlConfig {
    /// A config for the database at `database_url` (as sqlx takes it), with the default table,
    /// timeout and pool size.
    pub fn new(database_url: impl Into<String>) -> Self {
        SqlConfig {
            database_url: database_url.into(),
            table: DEFAULT_TABLE.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }

    /// Sets the table (URL `table`).
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// Sets how long one call may take (URL `timeout_ms`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Checks the table name, the timeout and the pool size.
    pub fn validate(&self) -> Result<(), Error> {
        check_name("table name", &self.table, b"_", MAX_TABLE_LEN)?;
        if !self.table.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(Error::InvalidInput(format!(
                "table name {:?} must start with a letter",
                self.table
            )));
        }
        if self.timeout.is_zero() {
            return Err(Error::InvalidInput("timeout must not be zero".into()));
        }
        if self.max_connections == 0 {
            return Err(Error::InvalidInput(
                "max_connections must not be zero".into(),
            ));
        }
        Ok(())
    }

    /// Parses a `postgres://`, `postgresql://` or `sqlite:` URL.
    pub fn from_url(url: &str) -> Result<Self, Error> {
        let bad = |why: String| {
            Error::InvalidInput(format!(
                "bad database URL {}: {why}",
                databank_core::redact(url)
            ))
        };
        let mut parsed = Url::parse(url).map_err(|e| bad(e.to_string()))?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql" | "sqlite") {
            return Err(bad(
                "the scheme must be postgres, postgresql or sqlite".into()
            ));
        }
        let mut config = SqlConfig::new("");
        if parsed.scheme() == "sqlite" && parsed.path().contains(":memory:") {
            // Every connection to `:memory:` would see a database of its own.
            config.max_connections = 1;
        }
        take_url_params(&mut parsed, |key, value| {
            match key {
                "table" => config.table = value.to_owned(),
                "timeout_ms" => {
                    config.timeout = timeout_ms(value).map_err(|e| bad(e.to_string()))?
                }
                "max_connections" => {
                    config.max_connections = value.parse().map_err(|_| {
                        bad(format!("max_connections={value} is not a positive number"))
                    })?
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        config.validate().map_err(|e| bad(e.to_string()))?;
        config.database_url = parsed.to_string();
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() -> Result<(), Error> {
        let c = SqlConfig::from_url("postgresql://h:5432/app")?;
        assert_eq!(c.table, DEFAULT_TABLE);
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        assert_eq!(c.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(SqlConfig::from_url("sqlite::memory:")?.max_connections, 1);
        let c = SqlConfig::from_url("sqlite://dir/app.db?table=t1&mode=rwc&timeout_ms=70")?;
        assert_eq!((c.table.as_str(), c.timeout.as_millis()), ("t1", 70));
        assert_eq!(c.database_url, "sqlite://dir/app.db?mode=rwc");
        for url in [
            "redis://h",
            "postgres://h/x?table=",
            "postgres://h/x?table=1a",
            "postgres://h/x?table=a-b",
            "postgres://h/x?table=a%22b",
            "postgres://h/x?timeout_ms=soon",
            "postgres://h/x?max_connections=0",
        ] {
            assert!(SqlConfig::from_url(url).is_err(), "{url}");
        }
        let long = format!("postgres://h/x?table={}", "t".repeat(MAX_TABLE_LEN + 1));
        assert!(SqlConfig::from_url(&long).is_err());
        Ok(())
    }
}
