//! `redis://` and `redis-cluster://` URLs: the server or the cluster's nodes, plus our own
//! `prefix`, `timeout_ms` and `wait_replicas` parameters.

use std::fmt;
use std::time::Duration;

use databank_core::driver::{check_name, take_url_params, timeout_ms, Url};
use databank_core::Error;

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "databank";
/// The default time a call may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Where and how to connect: parsed from a URL such as
/// `redis://:password@host:6379/2?prefix=app&timeout_ms=500` (`rediss://` with the `tls`
/// feature), or built in code, each URL parameter having a setter.
///
/// A Redis Cluster is named as fred and other clients do:
/// `redis-cluster://[user:password@]host:port?node=host2:port2&node=host3:port3` (any reachable
/// nodes; the rest are discovered), `rediss-cluster://` for TLS; the user and password apply
/// to every node. A cluster has no database number.
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
///
/// let cluster = RedisConfig::from_url("redis-cluster://:pw@a:7000?node=b:7001&wait_replicas=1")?;
/// assert_eq!(cluster.cluster_nodes, ["redis://:pw@a:7000", "redis://:pw@b:7001"]);
/// assert_eq!(cluster.wait_replicas, 1);
/// # Ok::<(), databank_core::Error>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct RedisConfig {
    /// The server URL as the `redis` crate takes it (our parameters removed); for a cluster,
    /// its first node.
    pub server_url: String,
    /// A cluster's seed nodes as `redis://` URLs (a cluster client is used); empty for one
    /// server.
    pub cluster_nodes: Vec<String>,
    /// Every key starts with `<prefix>:`; ASCII letters, digits, `_` and `-`.
    pub prefix: String,
    /// How long one call may take (connecting included); past it the call fails with
    /// `OutcomeUnknown` (or `Unavailable` when it never reached the server).
    pub timeout: Duration,
    /// After each write, wait until this many replicas have acknowledged it (Redis `WAIT`,
    /// for at most half the timeout; URL `wait_replicas`, default 0: no wait). A write that
    /// fewer replicas acknowledged in time fails with `OutcomeUnknown` (it is on the master,
    /// and may be lost if the master dies before replicating it).
    pub wait_replicas: u32,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("server_url", &databank_core::redact(&self.server_url))
            .field(
                "cluster_nodes",
                &self
                    .cluster_nodes
                    .iter()
                    .map(|node| databank_core::redact(node))
                    .collect::<Vec<_>>(),
            )
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("wait_replicas", &self.wait_replicas)
            .finish()
    }
}

impl RedisConfig {
    /// A config for the server at `server_url` (a `redis://` URL as the `redis` crate takes
    /// it), with the default prefix and timeout.
    pub fn new(server_url: impl Into<String>) -> Self {
        RedisConfig {
            server_url: server_url.into(),
            cluster_nodes: Vec::new(),
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            wait_replicas: 0,
        }
    }

    /// A config for the Redis Cluster reachable at any of `nodes` (`redis://host:port` URLs).
    pub fn cluster<S: Into<String>>(nodes: impl IntoIterator<Item = S>) -> Self {
        let nodes: Vec<String> = nodes.into_iter().map(Into::into).collect();
        let mut config = RedisConfig::new(nodes.first().cloned().unwrap_or_default());
        config.cluster_nodes = nodes;
        config
    }

    /// Sets how many replicas must acknowledge each write (URL `wait_replicas`).
    pub fn wait_replicas(mut self, replicas: u32) -> Self {
        self.wait_replicas = replicas;
        self
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

    /// Parses a `redis://`, `rediss://`, `redis-cluster://` or `rediss-cluster://` URL.
    pub fn from_url(url: &str) -> Result<Self, Error> {
        let bad = |why: String| {
            Error::InvalidInput(format!(
                "bad Redis URL {}: {why}",
                databank_core::redact(url)
            ))
        };
        let mut parsed = Url::parse(url).map_err(|e| bad(e.to_string()))?;
        let scheme = match parsed.scheme() {
            "redis" | "redis-cluster" => "redis",
            "rediss" | "rediss-cluster" => "rediss",
            _ => {
                return Err(bad(
                    "the scheme must be redis, rediss, redis-cluster or rediss-cluster".into(),
                ))
            }
        };
        let cluster = parsed.scheme().ends_with("-cluster");
        let mut config = RedisConfig::new("");
        let mut nodes = Vec::new();
        take_url_params(&mut parsed, |key, value| {
            match key {
                "prefix" => config.prefix = value.to_owned(),
                "timeout_ms" => {
                    config.timeout = timeout_ms(value).map_err(|e| bad(e.to_string()))?
                }
                "wait_replicas" => {
                    config.wait_replicas = value
                        .parse()
                        .map_err(|_| bad(format!("wait_replicas {value:?} is not a count")))?
                }
                "node" if cluster => {
                    let (host, port) = value.rsplit_once(':').unwrap_or((value, "6379"));
                    let host_ok = !host.is_empty()
                        && !host.contains(['/', '@', '?', '#', ' ', ','])
                        && port.parse::<u16>().is_ok();
                    if !host_ok {
                        return Err(bad(format!("node {value:?} is not host:port")));
                    }
                    nodes.push(value.to_owned())
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        config.validate().map_err(|e| bad(e.to_string()))?;
        if !cluster {
            config.server_url = parsed.to_string();
            return Ok(config);
        }
        if !matches!(parsed.path(), "" | "/") {
            return Err(bad("a cluster has no database number".into()));
        }
        let first = parsed
            .host_str()
            .filter(|host| !host.is_empty())
            .map(|host| match parsed.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_owned(),
            })
            .ok_or_else(|| bad("no host".into()))?;
        let auth = match (parsed.username(), parsed.password()) {
            ("", None) => String::new(),
            (user, Some(password)) => format!("{user}:{password}@"),
            (user, None) => format!("{user}@"),
        };
        let query = parsed.query().map(|q| format!("?{q}")).unwrap_or_default();
        config.cluster_nodes = std::iter::once(first)
            .chain(nodes)
            .map(|node| format!("{scheme}://{auth}{node}{query}"))
            .collect();
        config.server_url = config.cluster_nodes[0].clone();
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
            "redis://h?wait_replicas=-1",
            "redis-cluster://h/2",
            "redis-cluster://h?node=",
            "redis-cluster://?node=h:1",
            "redis-cluster://h?node=a:b",
            "redis-cluster://h?node=x/y:1",
            "nonsense",
        ] {
            assert!(
                matches!(RedisConfig::from_url(url), Err(Error::InvalidInput(_))),
                "{url}"
            );
        }
    }
}
