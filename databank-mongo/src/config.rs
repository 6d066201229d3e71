//! `mongodb://` URLs: the server and database, plus our `timeout_ms` parameter.

use std::fmt;
use std::time::Duration;

use databank_core::driver::{check_name, take_url_params, timeout_ms, Url};
use databank_core::Error;

/// The database used when the URL names none.
pub const DEFAULT_DATABASE: &str = "databank";
/// The default time a call may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how to connect: parsed from a URL such as
/// `mongodb://user:pw@host:27017/app?timeout_ms=2000` (`mongodb+srv://` with the `srv`
/// feature), or built in code, each URL part having a setter.
///
/// ```
/// use std::time::Duration;
/// let c = databank_mongo::MongoConfig::new("mongodb://h:27017")
///     .database("app")
///     .timeout(Duration::from_millis(700));
/// assert_eq!(c.database, "app");
/// # Ok::<(), databank_core::Error>(())
/// ```
///
/// ```
/// let c = databank_mongo::MongoConfig::from_url("mongodb://u:pw@h/app?timeout_ms=700&replicaSet=rs0")?;
/// assert_eq!(c.database, "app");
/// assert_eq!(c.timeout.as_millis(), 700);
/// assert!(c.server_url.ends_with("?replicaSet=rs0"));
/// assert!(!format!("{c:?}").contains("pw"));
/// # Ok::<(), databank_core::Error>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct MongoConfig {
    /// The connection string as the `mongodb` crate takes it (our parameters removed).
    pub server_url: String,
    /// The database holding the collections (one per type).
    pub database: String,
    /// How long one call may take (past it: `OutcomeUnknown`); also the server selection and
    /// connect timeouts.
    pub timeout: Duration,
}

impl fmt::Debug for MongoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoConfig")
            .field("server_url", &databank_core::redact(&self.server_url))
            .field("database", &self.database)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl MongoConfig {
    /// A config for the server at `server_url` (a connection string as the `mongodb` crate
    /// takes it), with the default database and timeout.
    pub fn new(server_url: impl Into<String>) -> Self {
        MongoConfig {
            server_url: server_url.into(),
            database: DEFAULT_DATABASE.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Sets the database (the URL's path): at most 63 ASCII letters, digits, `_` or `-`,
    /// checked when connecting.
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.database = database.into();
        self
    }

    /// Sets how long one call may take (URL `timeout_ms`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Checks the database name and the timeout.
    pub fn validate(&self) -> Result<(), Error> {
        check_name("MongoDB database name", &self.database, b"_-", 63)?;
        if self.timeout.is_zero() {
            return Err(Error::InvalidInput(
                "MongoDB timeout must not be zero".into(),
            ));
        }
        Ok(())
    }

    /// Parses a `mongodb://` or `mongodb+srv://` URL.
    pub fn from_url(url: &str) -> Result<Self, Error> {
        let bad = |why: String| {
            Error::InvalidInput(format!(
                "bad MongoDB URL {}: {why}",
                databank_core::redact(url)
            ))
        };
        let mut parsed = Url::parse(url).map_err(|e| bad(e.to_string()))?;
        if !matches!(parsed.scheme(), "mongodb" | "mongodb+srv") {
            return Err(bad("the scheme must be mongodb or mongodb+srv".into()));
        }
        let mut config = MongoConfig::new("");
        take_url_params(&mut parsed, |key, value| {
            if key != "timeout_ms" {
                return Ok(false);
            }
            config.timeout = timeout_ms(value).map_err(|e| bad(e.to_string()))?;
            Ok(true)
        })?;
        let database = parsed.path().trim_start_matches('/');
        if !database.is_empty() {
            config.database = database.to_owned();
        }
        config.validate().map_err(|e| bad(e.to_string()))?;
        config.server_url = parsed.to_string();
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() -> Result<(), Error> {
        let c = MongoConfig::from_url("mongodb://h:27017")?;
        assert_eq!(c.database, DEFAULT_DATABASE);
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        for url in [
            "redis://h",
            "mongodb://h/a.b",
            "mongodb://h/x?timeout_ms=soon",
            "mongodb://h/a%24b",
        ] {
            assert!(MongoConfig::from_url(url).is_err(), "{url}");
        }
        Ok(())
    }
}
