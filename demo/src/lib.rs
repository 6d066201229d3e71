//! The example web apps behind `cargo run --example axum_app` and `cargo run --example actix_app`,
//! as functions, so the end-to-end tests run exactly what a user runs.
//!
//! Both set the same session cookie: `sid`, `HttpOnly` (scripts cannot read it), `SameSite=Lax`
//! (sent when a user follows a link from another site, not on other sites' requests),
//! `Path=/`, and `Max-Age` the session's idle lifetime (`SESSION_IDLE_SECS` for the axum app,
//! default 2 hours; 2 hours for the actix app), renewed as the session is used. It is not
//! `Secure`, so that it works on plain `http://localhost`: behind TLS, turn that on. Pages that
//! show session data are sent with `Cache-Control: no-store`, so the back button after a logout
//! asks the server again instead of showing the signed-in page from the browser's cache.

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

/// Test hooks for the end-to-end tests: a request can stop after loading its session until the
/// test opens its gate, so a test orders "a slow request has loaded" before "the user logs out"
/// without guessing at timings. A held request only delays itself, and never past
/// [`gate::MAX_HOLD`].
pub mod gate {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};
    use std::time::Duration;

    use tokio::sync::watch;

    /// The longest a request is held.
    pub const MAX_HOLD: Duration = Duration::from_secs(30);
    /// The most gates that exist at once (later ones are refused).
    const MAX_GATES: usize = 1024;

    struct Gate {
        held: bool,
        open: watch::Sender<bool>,
    }

    static GATES: LazyLock<Mutex<HashMap<String, Gate>>> = LazyLock::new(Default::default);

    fn with_gate<R>(name: &str, f: impl FnOnce(&mut Gate) -> R) -> Option<R> {
        let mut gates = GATES.lock().unwrap_or_else(|poison| poison.into_inner());
        if !gates.contains_key(name) {
            if gates.len() >= MAX_GATES || name.is_empty() || name.len() > 64 {
                return None;
            }
            gates.insert(
                name.to_owned(),
                Gate {
                    held: false,
                    open: watch::channel(false).0,
                },
            );
        }
        gates.get_mut(name).map(f)
    }

    /// Marks the gate held and waits until it is opened (or [`MAX_HOLD`] passes); false if
    /// the name is refused.
    pub async fn hold(name: &str) -> bool {
        let Some(mut open) = with_gate(name, |gate| {
            gate.held = true;
            gate.open.subscribe()
        }) else {
            return false;
        };
        let _ = tokio::time::timeout(MAX_HOLD, open.wait_for(|open| *open)).await;
        GATES
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .remove(name);
        true
    }

    /// True while a request waits at the gate.
    pub fn is_held(name: &str) -> bool {
        with_gate(name, |gate| gate.held).unwrap_or(false)
    }

    /// Lets the request at the gate go on.
    pub fn open(name: &str) {
        with_gate(name, |gate| gate.open.send_replace(true));
    }
}
