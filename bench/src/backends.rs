//! The backends a benchmark opens: URLs from the environment, fresh namespaces, teardown.

use std::path::PathBuf;

use databank_bench::{unique, Error};

/// What `cargo xtask bench` passed in.
#[derive(Debug, Clone)]
pub struct Env {
    pub redis: String,
    /// A `redis-cluster://` URL, when a cluster was started (`cargo xtask bench` starts one).
    pub redis_cluster: Option<String>,
    pub mongo: String,
    /// A `postgres://` URL of a server `cargo xtask bench` started (or the user's).
    pub postgres: String,
    /// True when MongoDB is SecantusDB (about 1k writes/s): sizes are scaled down and say so.
    pub secantus: bool,
    /// True when xtask started the servers for this run, so they may be flushed.
    pub disposable: bool,
}

impl Env {
    pub fn from_env() -> Result<Self, Error> {
        let var = |name: &str| {
            std::env::var(name).map_err(|_| {
                format!("{name} is not set: run `cargo xtask bench`, which starts the servers")
            })
        };
        Ok(Env {
            redis: var("DATABANK_TEST_REDIS_URL")?,
            redis_cluster: std::env::var("DATABANK_TEST_REDIS_CLUSTER_URL").ok(),
            mongo: var("DATABANK_TEST_MONGO_URL")?,
            postgres: var("DATABANK_TEST_POSTGRES_URL")?,
            secantus: std::env::var("DATABANK_TEST_MONGO_KIND").is_ok_and(|k| k == "secantus"),
            disposable: std::env::var("DATABANK_BENCH_DISPOSABLE").is_ok_and(|v| v == "1"),
        })
    }
}

/// The backends every section covers.
pub const ALL: [&str; 6] = ["memory", "disk", "redis", "mongo", "postgres", "sqlite"];

/// A fresh namespace on one backend: its URL, and what to remove afterwards.
#[derive(Debug)]
pub struct Namespace {
    pub url: String,
    dir: Option<PathBuf>,
    mongo_db: Option<(String, String)>,
    /// (server URL, table) of a PostgreSQL namespace.
    pg_table: Option<(String, String)>,
}

impl Namespace {
    pub fn new(backend: &str, env: &Env) -> Result<Self, Error> {
        let name = unique("bench");
        let mut ns = Namespace {
            url: String::new(),
            dir: None,
            mongo_db: None,
            pg_table: None,
        };
        ns.url = match backend {
            "memory" => "memory://".into(),
            "disk" | "sqlite" => {
                let dir = std::env::current_dir()?
                    .join("target")
                    .join("bench")
                    .join("tmp")
                    .join(&name);
                std::fs::create_dir_all(&dir)?;
                let url = if backend == "disk" {
                    format!("disk://{}", dir.display())
                } else {
                    format!("sqlite://{}/bank.db", dir.display())
                };
                ns.dir = Some(dir);
                url
            }
            "postgres" => {
                ns.pg_table = Some((env.postgres.clone(), name.clone()));
                let sep = if env.postgres.contains('?') { '&' } else { '?' };
                format!("{}{sep}table={name}&timeout_ms=120000", env.postgres)
            }
            "redis" => {
                let sep = if env.redis.contains('?') { '&' } else { '?' };
                format!("{}{sep}prefix={name}", env.redis)
            }
            "mongo" => {
                let base = env.mongo.trim_end_matches('/');
                let (server, query) = base.split_once('?').unwrap_or((base, ""));
                let server = match server
                    .split_once("://")
                    .map(|(s, rest)| (s, rest.split_once('/')))
                {
                    Some((scheme, Some((hosts, _)))) => format!("{scheme}://{hosts}"),
                    _ => server.to_owned(),
                };
                ns.mongo_db = Some((server.clone(), name.clone()));
                // A long bound per call: a benchmark saturates the server on purpose, and
                // SecantusDB then answers some calls after more than the default 5 s.
                if query.is_empty() {
                    format!("{server}/{name}?timeout_ms=120000")
                } else {
                    format!("{server}/{name}?{query}&timeout_ms=120000")
                }
            }
            other => return Err(format!("unknown backend {other}").into()),
        };
        Ok(ns)
    }

    /// Removes what the namespace holds (the directory, the MongoDB database, the PostgreSQL
    /// tables). Redis keys are
    /// flushed by [`flush_redis`] when the server is disposable.
    pub async fn remove(self) {
        if let Some(dir) = self.dir {
            let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
        }
        if let Some((server, table)) = self.pg_table {
            if let Ok(pool) = sqlx::PgPool::connect(&server).await {
                let drop = format!(
                    "DROP TABLE IF EXISTS \"{table}\"; DROP TABLE IF EXISTS \"{table}_meta\""
                );
                let _ = sqlx::raw_sql(&drop).execute(&pool).await;
                pool.close().await;
            }
        }
        if let Some((server, db)) = self.mongo_db {
            if let Ok(client) = mongodb::Client::with_uri_str(&server).await {
                let _ = client.database(&db).drop().await;
            }
        }
    }
}

/// Empties the Redis server between large runs, when xtask started it for this run.
pub async fn flush_redis(env: &Env) -> Result<(), Error> {
    if !env.disposable {
        return Ok(());
    }
    let client = redis::Client::open(env.redis.as_str())?;
    // Flushing a million keys takes longer than the client's default response timeout.
    let config = redis::AsyncConnectionConfig::new()
        .set_response_timeout(Some(std::time::Duration::from_secs(300)));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    redis::cmd("FLUSHDB").query_async::<()>(&mut conn).await?;
    Ok(())
}
