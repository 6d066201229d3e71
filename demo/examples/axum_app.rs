//! The main job: a small axum site with server-side sessions (visit counter, login, logout).
//!
//! ```text
//! cargo run --example axum_app                       # sessions on disk under ./data/sessions
//! DATABANK_URL=redis://127.0.0.1/0 cargo run --example axum_app
//! DATABANK_URL=postgres://app@127.0.0.1/app cargo run --example axum_app
//! DATABANK_URL=sqlite://data/sessions.db cargo run --example axum_app
//! ADDR=127.0.0.1:8080 cargo run --example axum_app
//! SESSION_IDLE_SECS=600 CLEANUP_SECS=30 cargo run --example axum_app   # expiry and cleanup period
//! ```

use databank_demo::{axum_app, init_tracing, DEFAULT_URL};
use databank_session_store::DatabankStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_tracing();
    let url = std::env::var("DATABANK_URL").unwrap_or_else(|_| DEFAULT_URL.into());
    let store = DatabankStore::open(&url).await?;
    let cleanup_every = axum_app::seconds_from_env("CLEANUP_SECS", 60);
    let idle = axum_app::seconds_from_env("SESSION_IDLE_SECS", 2 * 3600);
    let _cleanup = store.start_cleanup(std::time::Duration::from_secs(cleanup_every));
    let addr = axum_app::address();
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, store = %databank_core::redact(&url), "listening: open http://{addr}/");
    tokio::select! {
        served = axum_app::serve(listener, store.clone(), time::Duration::seconds(idle as i64)) => served?,
        _ = tokio::signal::ctrl_c() => tracing::info!("shutting down"),
    }
    store.close().await?;
    Ok(())
}
