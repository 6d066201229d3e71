//! `redis://` URLs: the server, plus our own `prefix` and `timeout_ms` parameters.

use std::fmt;
use std::time::Duration;

use databank_core::driver::{check_name, timeout_ms, Url};
use databank_core::Error;

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "databank";
/// The default time a call may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Where and how to connect: parsed from a URL such as
/// `redis://:password@host:6379/2?prefix=app&timeout_ms=500` (`rediss://` with the `tls`
/// feature), or built in code, each URL parameter having a setter.
///
/// ```
/// use std::time::Duration;
/// use databank_redis::RedisConfig;
/// let c = RedisConfig::from_url("redis://:pw@h:6380/2?prefix=app&timeout_ms=500")?;
/// assert_eq!(c.prefix, "app");
/// assert_eq!(c.timeout.as_millis(), 500);
/// assert!(!format!("{c:?}").contains("pw"));
///
/// let same = RedisConfig::new("redis://:pw@h:6380/2")
///     .prefix("app")
///     .timeout(Duration::from_millis(500));
/// assert_eq!((same.prefix.as_str(), same.timeout), (c.prefix.as_str(), c.timeout));
/// # Ok::<(), databank_core::Error>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct RedisConfig {
    /// The server URL as the `redis` crate takes it (our parameters removed).
    pub server_url: String,
    /// Every key starts with `<prefix>:`; ASCII letters, digits, `_` and `-`.
    pub prefix: String,
    /// How long one call may take (connecting included); past it the call fails with
    /// `OutcomeUnknown` (or `Unavailable` when it never reached the server).
    pub timeout: Duration,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("server_url", &databank_core::redact(&self.server_url))
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl RedisConfig {
    /// A config for the server at `server_url` (a `redis://` URL as the `redis` crate takes
    /// it), with the default prefix and timeout.
    pub fn new(server_url: impl Into<String>) -> Self {
        RedisConfig {
            server_url: server_url.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Sets the key prefix (URL `prefix`): 1 to 64 ASCII letters, digits, `_` or `-`,
    /// checked when connecting.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets how long one call may take (URL `timeout_ms`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Checks the prefix and the timeout.
    pub fn validate(&self) -> Result<(), Error> {
        check_name("Redis prefix", &self.prefix, b"_-", 64)?;
        if self.timeout.is_zero() {
            return Err(Error::InvalidInput("Redis timeout must not be zero".into()));
        }
        Ok(())
    }

    /// Parses a `redis://` or `rediss://` URL.
    pub fn from_url(url: &str) -> Result<Self, Error> {
        let bad = |why: String| {
            Error::InvalidInput(format!(
                "bad Redis URL {}: {why}",
                databank_core::redact(url)
            ))
        };
        let mut parsed = Url::parse(url).map_err(|e| bad(e.to_string()))?;
        if !matches!(parsed.scheme(), "redis" | "rediss") {
            return Err(bad("the scheme must be redis or rediss".into()));
        }
        let mut config = RedisConfig::new("");
        let mut rest = Vec::new();
        for (key, value) in parsed.query_pairs() {
            match key.as_ref() {
                "prefix" => config.prefix = value.into_owned(),
                "timeout_ms" => {
                    config.timeout = timeout_ms(&value).map_err(|e| bad(e.to_string()))?
                }
                _ => rest.push((key.into_owned(), value.into_owned())),
            }
        }
        config.validate().map_err(|e| bad(e.to_string()))?;
        if rest.is_empty() {
            parsed.set_query(None);
        } else {
            parsed.query_pairs_mut().clear().extend_pairs(rest);
        }
        config.server_url = parsed.to_string();
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_strips_our_parameters() -> Result<(), Error> {
        let c = RedisConfig::from_url("redis://h/3?prefix=a-b&protocol=resp3")?;
        assert_eq!(c.server_url, "redis://h/3?protocol=resp3");
        assert_eq!(c.prefix, "a-b");
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        let c = RedisConfig::from_url("redis://h")?;
        assert_eq!(
            (c.server_url.as_str(), c.prefix.as_str()),
            ("redis://h", DEFAULT_PREFIX)
        );
        Ok(())
    }

    #[test]
    fn refuses_bad_urls() {
        for url in [
            "http://h",
            "redis://h?prefix=a:b",
            "redis://h?prefix=",
            "redis://h?timeout_ms=x",
            "nonsense",
        ] {
            assert!(
                matches!(RedisConfig::from_url(url), Err(Error::InvalidInput(_))),
                "{url}"
            );
        }
    }
}
