//! The example web apps behind `cargo run --example axum_app` and `cargo run --example actix_app`,
//! as functions, so the end-to-end tests run exactly what a user runs.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod actix_app;
pub mod axum_app;

/// The store URL the examples use unless `DATABANK_URL` says otherwise: an embedded disk bank.
pub const DEFAULT_URL: &str = "disk:data/sessions";

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
}

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
