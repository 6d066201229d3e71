//! The same site on actix-web with actix-session.
//!
//! ```text
//! cargo run --example actix_app    # sessions on disk under ./data/sessions, on 127.0.0.1:3001
//! DATABANK_URL=sqlite://data/sessions.db cargo run --example actix_app
//! ```

use databank_demo::{actix_app, init_tracing, DEFAULT_URL};
use databank_session_store::DatabankStore;

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_tracing();
    let url = std::env::var("DATABANK_URL").unwrap_or_else(|_| DEFAULT_URL.into());
    let store = DatabankStore::open(&url).await?;
    let _cleanup = store.start_cleanup(std::time::Duration::from_secs(60));
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3001".into());
    let listener = std::net::TcpListener::bind(&addr)?;
    // Cookies are signed; a key from the environment keeps them valid across restarts.
    let key = match std::env::var("SESSION_KEY") {
        Ok(k) if k.len() >= 64 => actix_web::cookie::Key::derive_from(k.as_bytes()),
        _ => actix_web::cookie::Key::generate(),
    };
    tracing::info!(%addr, "listening: open http://{addr}/");
    actix_app::serve(listener, store.clone(), key, time::Duration::hours(2)).await?;
    store.close().await?;
    Ok(())
}
