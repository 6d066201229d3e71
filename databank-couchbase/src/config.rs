//! `couchbase://` URLs: hosts, bucket, scope, collection, credentials and our `timeout_ms`.

use std::fmt;
use std::time::Duration;

use databank_core::driver::{check_name, percent_decode, timeout_ms, url};
use databank_core::Error;

/// The scope and collection used when the URL names none.
pub const DEFAULT_SCOPE: &str = "_default";
/// See [`DEFAULT_SCOPE`].
pub const DEFAULT_COLLECTION: &str = "_default";
/// The default time a call may take before it fails with a retryable error.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long connecting may take unless the URL says otherwise (`connect_timeout_ms`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Where the password comes from when the URL carries none.
pub const PASSWORD_ENV: &str = "DATABANK_COUCHBASE_PASSWORD";

/// Where and how to connect, parsed from a URL such as
/// `couchbase://app:secret@cb1,cb2/sessions?scope=web&collection=data&timeout_ms=2000`.
///
/// - hosts: one or more, comma-separated, as the Couchbase connection string takes them;
///   `couchbases://` for TLS.
/// - the path is the bucket (required).
/// - `scope`, `collection`: default `_default`.
/// - the user from the URL's user part or `?username=`; the password from the URL's user part,
///   else from the environment variable `DATABANK_COUCHBASE_PASSWORD`. It is never logged:
///   `Debug` shows `***`.
/// - `timeout_ms`: how long one call may take (default 5000).
/// - `connect_timeout_ms`: how long connecting and waiting for the bucket may take (default
///   10000, as the SDK's own; a SCRAM handshake on a loaded machine can outlast one call's).
/// - `prefix`: keeps several banks apart in one collection (up to 32 ASCII letters, digits,
///   `_` or `-`).
/// - any other parameter is passed on to the SDK's connection string.
///
/// ```
/// let c = databank_couchbase::CouchbaseConfig::from_url(
///     "couchbase://app:s%40cret@cb1,cb2/sessions?scope=web&timeout_ms=700",
/// )?;
/// assert_eq!(c.connection_string, "couchbase://cb1,cb2");
/// assert_eq!((c.bucket.as_str(), c.scope.as_str(), c.collection.as_str()), ("sessions", "web", "_default"));
/// assert_eq!((c.username.as_str(), c.password.as_str()), ("app", "s@cret"));
/// assert_eq!(c.timeout.as_millis(), 700);
/// assert_eq!(c.connect_timeout.as_secs(), 10);
/// assert!(!format!("{c:?}").contains("cret"));
/// # Ok::<(), databank_core::Error>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct CouchbaseConfig {
    /// The connection string as the `couchbase` crate takes it (no credentials, no bucket).
    pub connection_string: String,
    /// The bucket holding the collection.
    pub bucket: String,
    /// The scope holding the collection.
    pub scope: String,
    /// The collection holding every type's documents.
    pub collection: String,
    /// The user to authenticate as.
    pub username: String,
    /// The user's password (never printed).
    pub password: String,
    /// How long one call may take (past it: `OutcomeUnknown`).
    pub timeout: Duration,
    /// How long connecting and waiting for the bucket may take (past it: `Unavailable`).
    pub connect_timeout: Duration,
    /// Keeps several banks apart in one collection (`?prefix=`, default none): keys become
    /// `<prefix>:<type>::<id>` and the type tag `<prefix>:<type>`.
    pub prefix: String,
}

impl fmt::Debug for CouchbaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CouchbaseConfig")
            .field("connection_string", &self.connection_string)
            .field("bucket", &self.bucket)
            .field("scope", &self.scope)
            .field("collection", &self.collection)
            .field("username", &self.username)
            .field("password", &"***")
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl CouchbaseConfig {
    /// A config built in code: the SDK connection string (`couchbase://host1,host2`, no
    /// credentials), the bucket and the credentials; the default scope, collection, timeout
    /// and no prefix. Every URL parameter has a setter.
    ///
    /// ```
    /// use std::time::Duration;
    /// use databank_couchbase::CouchbaseConfig;
    /// let c = CouchbaseConfig::new("couchbase://cb1,cb2", "sessions", "app", "secret")
    ///     .scope("web")
    ///     .timeout(Duration::from_millis(700));
    /// c.validate()?;
    /// assert_eq!(c.keyspace(), "`sessions`.`web`.`_default`");
    /// # Ok::<(), databank_core::Error>(())
    /// ```
    pub fn new(
        connection_string: impl Into<String>,
        bucket: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        CouchbaseConfig {
            connection_string: connection_string.into(),
            bucket: bucket.into(),
            scope: DEFAULT_SCOPE.to_owned(),
            collection: DEFAULT_COLLECTION.to_owned(),
            username: username.into(),
            password: password.into(),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            prefix: String::new(),
        }
    }

    /// Sets how long connecting may take (URL `connect_timeout_ms`).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the scope (URL `scope`).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = scope.into();
        self
    }

    /// Sets the collection (URL `collection`).
    pub fn collection(mut self, collection: impl Into<String>) -> Self {
        self.collection = collection.into();
        self
    }

    /// Sets the prefix that keeps several banks apart in one collection (URL `prefix`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets how long one call may take (URL `timeout_ms`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Checks the names (Couchbase's rules; above all no backtick, since they are spliced into
    /// SQL++), the user and the timeout.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |why: String| Error::InvalidInput(format!("Couchbase config: {why}"));
        // Couchbase's naming rules; above all no backtick, so names can be spliced into SQL++.
        check_name("bucket", &self.bucket, b"._%-", 100)?;
        check_name("scope", &self.scope, b"_%-", 251)?;
        check_name("collection", &self.collection, b"_%-", 251)?;
        if !self.prefix.is_empty() {
            check_name("prefix", &self.prefix, b"_-", 32)?;
        }
        if self.username.is_empty() {
            return Err(bad("no user".into()));
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(bad("the timeout must not be zero".into()));
        }
        Ok(())
    }

    /// Parses a `couchbase://` or `couchbases://` URL; the password falls back to
    /// `$DATABANK_COUCHBASE_PASSWORD`.
    pub fn from_url(url: &str) -> Result<Self, Error> {
        Self::parse(url, std::env::var(PASSWORD_ENV).ok())
    }

    /// Parses a URL with an explicit fallback password (what [`from_url`](Self::from_url) reads
    /// from the environment).
    pub fn parse(url: &str, fallback_password: Option<String>) -> Result<Self, Error> {
        let bad = |why: &str| {
            Error::InvalidInput(format!(
                "bad Couchbase URL {}: {why}",
                databank_core::redact(url)
            ))
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected couchbase://[user:password@]host[,host]/bucket"))?;
        if scheme != "couchbase" && scheme != "couchbases" {
            return Err(bad("the scheme must be couchbase or couchbases"));
        }
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((user, hosts)) => (Some(user), hosts),
            None => (None, authority),
        };
        if hosts.is_empty()
            || hosts.split(',').any(|h| {
                h.is_empty()
                    || !h
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
            })
        {
            return Err(bad("expected one or more comma-separated hosts"));
        }
        let (mut username, mut password) = (String::new(), None);
        if let Some(info) = userinfo {
            let (user, pass) = match info.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (info, None),
            };
            username = percent_decode(user)
                .ok_or_else(|| bad("the user is not valid percent-encoded UTF-8"))?;
            password = match pass {
                Some(p) => Some(
                    percent_decode(p)
                        .ok_or_else(|| bad("the password is not valid percent-encoded UTF-8"))?,
                ),
                None => None,
            };
        }
        let bucket = percent_decode(path)
            .ok_or_else(|| bad("the bucket is not valid percent-encoded UTF-8"))?;
        check_name("bucket", &bucket, b"._%-", 100).map_err(|e| bad(&e.to_string()))?;
        let (mut scope, mut collection) = (DEFAULT_SCOPE.to_owned(), DEFAULT_COLLECTION.to_owned());
        let mut timeout = DEFAULT_TIMEOUT;
        let mut connect_timeout = DEFAULT_CONNECT_TIMEOUT;
        let mut prefix = String::new();
        let mut passed_on = Vec::new();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "scope" => scope = value.into_owned(),
                "collection" => collection = value.into_owned(),
                "username" => username = value.into_owned(),
                "prefix" => {
                    prefix = value.into_owned();
                    check_name("prefix", &prefix, b"_-", 32).map_err(|e| bad(&e.to_string()))?;
                }
                "timeout_ms" => timeout = timeout_ms(&value).map_err(|e| bad(&e.to_string()))?,
                "connect_timeout_ms" => {
                    connect_timeout = timeout_ms(&value).map_err(|e| bad(&e.to_string()))?;
                }
                "password" => {
                    return Err(bad(
                        "put the password in the user part or in $DATABANK_COUCHBASE_PASSWORD, not in ?password=",
                    ))
                }
                _ => passed_on.push(format!(
                    "{}={}",
                    url::form_urlencoded::byte_serialize(key.as_bytes()).collect::<String>(),
                    url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>()
                )),
            }
        }
        check_name("scope", &scope, b"_%-", 251).map_err(|e| bad(&e.to_string()))?;
        check_name("collection", &collection, b"_%-", 251).map_err(|e| bad(&e.to_string()))?;
        if username.is_empty() {
            return Err(bad(
                "no user: give one as couchbase://user@host/bucket or ?username=",
            ));
        }
        let password = password.or(fallback_password).ok_or_else(|| {
            bad(&format!(
                "no password: put it in the URL's user part or in ${PASSWORD_ENV}"
            ))
        })?;
        let mut connection_string = format!("{scheme}://{hosts}");
        if !passed_on.is_empty() {
            connection_string.push('?');
            connection_string.push_str(&passed_on.join("&"));
        }
        Ok(CouchbaseConfig {
            connection_string,
            bucket,
            scope,
            collection,
            username,
            password,
            timeout,
            connect_timeout,
            prefix,
        })
    }

    /// The type tag stored in `t` and starting every key: the type, behind the prefix if any.
    pub fn tag(&self, kind: &str) -> String {
        if self.prefix.is_empty() {
            kind.to_owned()
        } else {
            format!("{}:{kind}", self.prefix)
        }
    }

    /// The keyspace as SQL++ names it: `` `bucket`.`scope`.`collection` ``. Safe to splice:
    /// the names were checked to hold no backtick.
    pub fn keyspace(&self) -> String {
        format!("`{}`.`{}`.`{}`", self.bucket, self.scope, self.collection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<CouchbaseConfig, Error> {
        CouchbaseConfig::parse(url, None)
    }

    #[test]
    fn defaults_and_pass_through() -> Result<(), Error> {
        let c = parse("couchbases://u:p@h1:11207,h2/b?kv_connect_timeout=3s")?;
        assert_eq!(
            c.connection_string,
            "couchbases://h1:11207,h2?kv_connect_timeout=3s"
        );
        assert_eq!(c.scope, DEFAULT_SCOPE);
        assert_eq!(c.collection, DEFAULT_COLLECTION);
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        assert_eq!(c.keyspace(), "`b`.`_default`.`_default`");
        assert_eq!(c.tag("session"), "session");
        let c = parse("couchbase://u:p@h/b?prefix=kit_1")?;
        assert_eq!(c.tag("session"), "kit_1:session");
        Ok(())
    }

    #[test]
    fn user_from_the_query_and_password_from_the_fallback() -> Result<(), Error> {
        let c = CouchbaseConfig::parse("couchbase://h/b?username=app", Some("pw".into()))?;
        assert_eq!((c.username.as_str(), c.password.as_str()), ("app", "pw"));
        // The URL's password wins over the fallback.
        let c = CouchbaseConfig::parse("couchbase://a:url@h/b", Some("env".into()))?;
        assert_eq!(c.password, "url");
        Ok(())
    }

    #[test]
    fn bad_urls_are_invalid_input_and_never_show_the_password() {
        for url in [
            "redis://u:p@h/b",
            "couchbase://u:p@h",
            "couchbase://u:p@/b",
            "couchbase://u:p@h,/b",
            "couchbase://u:p@h/b?scope=a`b",
            "couchbase://u:p@h/b?collection=x%60y",
            "couchbase://u:p@h/b`c",
            "couchbase://u:p@h/b?timeout_ms=soon",
            "couchbase://h/b",
            "couchbase://u@h/b",
            "couchbase://u:topsecret@h/b?password=x",
            "couchbase://u:p@h%20x/b",
            "couchbase://u:%ff@h/b",
            "couchbase://u:p@h/b?prefix=a:b",
            "couchbase://u:p@h/b?prefix=",
        ] {
            match parse(url) {
                Err(Error::InvalidInput(message)) => {
                    assert!(!message.contains("topsecret"), "{message}")
                }
                other => panic!("{url}: {other:?}"),
            }
        }
    }
}
