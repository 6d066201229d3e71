//! `mongodb://` URLs: the server and database, plus our `timeout_ms` parameter.

use std::fmt;
use std::time::Duration;

use databank_core::Error;

/// The database used when the URL names none.
pub const DEFAULT_DATABASE: &str = "databank";
/// The default time a call may take before it fails with a retryable error.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how to connect, parsed from a URL such as
/// `mongodb://user:pw@host:27017/app?timeout_ms=2000` (`mongodb+srv://` with the `srv` feature).
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
    /// How long one call may take before it fails with a retryable `NotConnected` error; also
    /// the server selection and connect timeouts.
    pub timeout: Duration,
}

impl fmt::Debug for MongoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoConfig")
            .field(
                "server_url",
                &databank_core::registry::redact(&self.server_url),
            )
            .field("database", &self.database)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl MongoConfig {
    /// Parses a `mongodb://` or `mongodb+srv://` URL.
    pub fn from_url(url: &str) -> Result<Self, Error> {
        let bad = |why: String| {
            Error::InvalidInput(format!(
                "bad MongoDB URL {}: {why}",
                databank_core::registry::redact(url)
            ))
        };
        let mut parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        if !matches!(parsed.scheme(), "mongodb" | "mongodb+srv") {
            return Err(bad("the scheme must be mongodb or mongodb+srv".into()));
        }
        let mut timeout = DEFAULT_TIMEOUT;
        let mut rest = Vec::new();
        for (key, value) in parsed.query_pairs() {
            if key == "timeout_ms" {
                let ms: u64 = value
                    .parse()
                    .map_err(|_| bad(format!("timeout_ms={value} is not a number")))?;
                timeout = Duration::from_millis(ms.max(1));
            } else {
                rest.push((key.into_owned(), value.into_owned()));
            }
        }
        let database = parsed.path().trim_start_matches('/').to_owned();
        let database = if database.is_empty() {
            DEFAULT_DATABASE.to_owned()
        } else {
            database
        };
        if database.len() > 63
            || !database
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(bad(format!(
                "database name {database:?} must be at most 63 ASCII letters, digits, '_' or '-'"
            )));
        }
        if rest.is_empty() {
            parsed.set_query(None);
        } else {
            parsed.query_pairs_mut().clear().extend_pairs(rest);
        }
        Ok(MongoConfig {
            server_url: parsed.to_string(),
            database,
            timeout,
        })
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
