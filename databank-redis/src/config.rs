//! `redis://` URLs: the server, plus our own `prefix` and `timeout_ms` parameters.

use std::fmt;
use std::time::Duration;

use databank_core::Error;

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "databank";
/// The default time a call may take before it fails with a retryable error.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Where and how to connect, parsed from a URL such as
/// `redis://:password@host:6379/2?prefix=app&timeout_ms=500` (`rediss://` with the `tls` feature).
///
/// ```
/// let c = databank_redis::RedisConfig::from_url("redis://:pw@h:6380/2?prefix=app&timeout_ms=500")?;
/// assert_eq!(c.prefix, "app");
/// assert_eq!(c.timeout.as_millis(), 500);
/// assert!(!format!("{c:?}").contains("pw"));
/// # Ok::<(), databank_core::Error>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct RedisConfig {
    /// The server URL as the `redis` crate takes it (our parameters removed).
    pub server_url: String,
    /// Every key starts with `<prefix>:`; ASCII letters, digits, `_` and `-`.
    pub prefix: String,
    /// How long one call may take (connecting included) before it fails with a retryable
    /// `NotConnected` error.
    pub timeout: Duration,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field(
                "server_url",
                &databank_core::registry::redact(&self.server_url),
            )
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl RedisConfig {
    /// Parses a `redis://` or `rediss://` URL.
    pub fn from_url(url: &str) -> Result<Self, Error> {
        let bad = |why: String| {
            Error::InvalidInput(format!(
                "bad Redis URL {}: {why}",
                databank_core::registry::redact(url)
            ))
        };
        let mut parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        if !matches!(parsed.scheme(), "redis" | "rediss") {
            return Err(bad("the scheme must be redis or rediss".into()));
        }
        let mut prefix = DEFAULT_PREFIX.to_owned();
        let mut timeout = DEFAULT_TIMEOUT;
        let mut rest = Vec::new();
        for (key, value) in parsed.query_pairs() {
            match key.as_ref() {
                "prefix" => prefix = value.into_owned(),
                "timeout_ms" => {
                    let ms: u64 = value
                        .parse()
                        .map_err(|_| bad(format!("timeout_ms={value} is not a number")))?;
                    timeout = Duration::from_millis(ms.max(1));
                }
                _ => rest.push((key.into_owned(), value.into_owned())),
            }
        }
        if prefix.is_empty()
            || prefix.len() > 64
            || !prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(bad(format!(
                "prefix {prefix:?} must be 1 to 64 ASCII letters, digits, '_' or '-'"
            )));
        }
        if rest.is_empty() {
            parsed.set_query(None);
        } else {
            parsed.query_pairs_mut().clear().extend_pairs(rest);
        }
        Ok(RedisConfig {
            server_url: parsed.to_string(),
            prefix,
            timeout,
        })
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
