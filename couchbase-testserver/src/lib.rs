//! A Couchbase **protocol test server** — not a Couchbase Server. It speaks what the official
//! `couchbase` crate needs to run `databank-couchbase` end to end where no real server can be
//! had: the memcached binary protocol with pipelining, HELLO, SASL SCRAM-SHA512,
//! SELECT_BUCKET, GET_CLUSTER_CONFIG, GET/SET/ADD/REPLACE/DELETE with CAS, flags and expiry,
//! the sub-document multi-mutation specs the driver uses, and the query service for the
//! statement shapes the driver sends. Built from Couchbase's published protocol documents
//! (couchbase/kv_engine `docs/BinaryProtocol.md`, `docs/SubDocument.md`, `docs/sasl.md`;
//! RFC 5802 for SCRAM); each module names the sections it follows. Anything else answers an
//! error status ("unknown command", a syntax error), never a fake success. One node, one
//! bucket, in memory.

mod frame;
mod kv;
mod query;
mod scram;
mod store;
mod subdoc;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What the server accepts.
#[derive(Debug, Clone)]
pub struct Config {
    /// The one bucket.
    pub bucket: String,
    /// The one user.
    pub user: String,
    /// Its password.
    pub password: String,
    /// The loopback address to bind.
    pub host: String,
    /// The key-value port (0: one the OS picks).
    pub kv_port: u16,
    /// The query service's port (0: one the OS picks).
    pub query_port: u16,
    /// Where the bucket is also kept, so that a restart finds it again; `None`: memory only.
    pub data_file: Option<std::path::PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bucket: "databank".into(),
            user: "Administrator".into(),
            password: "password".into(),
            host: "127.0.0.1".into(),
            kv_port: 0,
            query_port: 0,
            data_file: None,
        }
    }
}

/// A running server; dropping it (or [`Running::stop`]) stops it.
#[derive(Debug)]
pub struct Running {
    /// The key-value port.
    pub kv_port: u16,
    /// The query (and management) port.
    pub query_port: u16,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// The connection string for the SDK: `couchbase://host:kv_port`.
    pub fn url(&self, config: &Config) -> String {
        format!("couchbase://{}:{}", config.host, self.kv_port)
    }

    /// Stops both services and drops every connection (as a server that goes away would).
    pub fn stop(self) {}
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Binds both services and serves them on the current tokio runtime.
pub async fn start(config: &Config) -> std::io::Result<Running> {
    let kv = TcpListener::bind((config.host.as_str(), config.kv_port)).await?;
    let query = TcpListener::bind((config.host.as_str(), config.query_port)).await?;
    let (kv_port, query_port) = (port(&kv)?, port(&query)?);
    let store = Arc::new(match &config.data_file {
        Some(file) => store::Store::persistent(file.clone())?,
        None => store::Store::default(),
    });
    let shared = Arc::new(kv::Shared {
        store: store.clone(),
        config: Config {
            kv_port,
            query_port,
            ..config.clone()
        },
    });
    let kv_task = tokio::spawn(async move {
        // Connections live in the set: stopping the server drops every one of them.
        let mut connections = tokio::task::JoinSet::new();
        loop {
            match kv.accept().await {
                Ok((stream, _)) => {
                    connections.spawn(kv::serve(stream, shared.clone()));
                    while connections.try_join_next().is_some() {}
                }
                Err(e) => tracing::warn!(error = %e, "accept failed"),
            }
        }
    });
    let router = query::router(store);
    let query_task = tokio::spawn(async move {
        if let Err(e) = axum::serve(query, router).await {
            tracing::warn!(error = %e, "query service stopped");
        }
    });
    Ok(Running {
        kv_port,
        query_port,
        tasks: vec![kv_task, query_task],
    })
}

fn port(listener: &TcpListener) -> std::io::Result<u16> {
    listener.local_addr().map(|a: SocketAddr| a.port())
}
