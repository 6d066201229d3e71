//! A small axum site with server-side sessions: a visit counter, a login form and logout.

use std::net::SocketAddr;

use axum::extract::{Form, Path};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use databank_session_store::{DatabankStore, ORIGIN_KEY};
use serde::Deserialize;
use serde_json::{json, Value};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, Session, SessionManagerLayer};

use crate::escape;

/// The app's routes over a session store; sessions expire after `idle` of inactivity.
pub fn router(store: DatabankStore, idle: time::Duration) -> Router {
    router_with(store.clone(), store, idle)
}

/// The app's routes with `sessions` as the session layer's store, for a store composed around
/// `store` (tower-sessions' `CachingSessionStore` in front of it, say); `store` itself serves
/// the routes that read the store directly.
pub fn router_with<S>(sessions: S, store: DatabankStore, idle: time::Duration) -> Router
where
    S: tower_sessions::SessionStore + Clone,
{
    // The cookie the crate docs describe: HttpOnly, SameSite=Lax, Path=/, Max-Age = idle.
    let sessions = SessionManagerLayer::new(sessions)
        .with_name("sid")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_path("/")
        .with_secure(false)
        .with_expiry(Expiry::OnInactivity(idle));
    Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/api/state", get(state))
        .route("/api/keys/{key}", post(add_key))
        .route("/api/held/{gate}/keys/{key}", post(add_key_when_released))
        .route("/api/forget-user", post(forget_user))
        .route("/api/reserved", get(reserved).post(write_reserved))
        .layer(sessions)
        .route("/api/sessions", get(live_sessions))
        .route("/api/gates/{gate}", get(gate_state))
        .route("/api/gates/{gate}/open", post(open_gate))
        .layer(axum::Extension(store))
}

/// Serves the app on a bound listener until the future is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: DatabankStore,
    idle: time::Duration,
) -> std::io::Result<()> {
    axum::serve(listener, router(store, idle)).await
}

fn failure(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "session store failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "sessions are unavailable right now",
    )
        .into_response()
}

async fn visit(session: &Session) -> Result<(u64, Option<String>), Response> {
    let visits: u64 = session.get("visits").await.map_err(failure)?.unwrap_or(0) + 1;
    session.insert("visits", visits).await.map_err(failure)?;
    let user: Option<String> = session.get("user").await.map_err(failure)?;
    Ok((visits, user))
}

async fn home(session: Session) -> Response {
    let (visits, user) = match visit(&session).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let who = match &user {
        Some(name) => format!(
            "<p>Signed in as <b>{}</b>.</p><form method=post action=/logout><button>Log out</button></form>",
            escape(name)
        ),
        None => "<form method=post action=/login><input name=user placeholder=name required> <button>Log in</button></form>".into(),
    };
    // Session data: never from a cache (the back button after logout asks again).
    (
        [(header::CACHE_CONTROL, "no-store")],
        Html(format!(
            "<!doctype html><title>databank sessions</title><h1>databank sessions</h1><p>Visits in this session: {visits}</p>{who}"
        )),
    )
        .into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    user: String,
}

async fn login(session: Session, Form(form): Form<LoginForm>) -> Response {
    let name = form.user.trim().chars().take(64).collect::<String>();
    if name.is_empty() {
        return (StatusCode::BAD_REQUEST, "a name is required").into_response();
    }
    // A new id at login stops session fixation.
    if let Err(e) = session.cycle_id().await {
        return failure(e);
    }
    if let Err(e) = session.insert("user", name).await {
        return failure(e);
    }
    Redirect::to("/").into_response()
}

async fn logout(session: Session) -> Response {
    match session.flush().await {
        Ok(()) => Redirect::to("/").into_response(),
        Err(e) => failure(e),
    }
}

/// The session's data as JSON, minus the store's bookkeeping.
async fn state(session: Session) -> Response {
    let (visits, user) = match visit(&session).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    Json(json!({"visits": visits, "user": user})).into_response()
}

/// Sets `key` to true in the session (used to check that concurrent requests lose nothing).
async fn add_key(session: Session, Path(key): Path<String>) -> Response {
    if key.len() > 64 || key.starts_with("__") {
        return (StatusCode::BAD_REQUEST, "bad key").into_response();
    }
    match session.insert(&format!("k:{key}"), true).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => failure(e),
    }
}

/// Loads the session, waits at a test gate (see [`crate::gate`]), then sets `key` like
/// `add_key`: a slow request, for the end-to-end tests.
async fn add_key_when_released(
    session: Session,
    Path((gate, key)): Path<(String, String)>,
) -> Response {
    if let Err(e) = session.get::<u64>("visits").await {
        return failure(e);
    }
    if !crate::gate::hold(&gate).await {
        return (StatusCode::BAD_REQUEST, "bad gate").into_response();
    }
    add_key(session, Path(key)).await
}

/// Signs the user out of the session without ending it (the other keys stay).
async fn forget_user(session: Session) -> Response {
    match session.remove::<String>("user").await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => failure(e),
    }
}

/// What the session holds under the store's reserved key (the adapter's token), for the tests.
async fn reserved(session: Session) -> Response {
    match session.get::<Value>(ORIGIN_KEY).await {
        Ok(value) => Json(json!({ "value": value })).into_response(),
        Err(e) => failure(e),
    }
}

/// Writes the request body under the store's reserved key, as a careless handler might: the
/// store must ignore it (the tests check that nothing is lost or stored).
async fn write_reserved(session: Session, body: String) -> Response {
    match session.insert(ORIGIN_KEY, body).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => failure(e),
    }
}

/// Whether a request waits at a test gate.
async fn gate_state(Path(gate): Path<String>) -> Response {
    Json(json!({"held": crate::gate::is_held(&gate)})).into_response()
}

/// Opens a test gate.
async fn open_gate(Path(gate): Path<String>) -> Response {
    crate::gate::open(&gate);
    StatusCode::NO_CONTENT.into_response()
}

/// How many live sessions the store holds (outside the session layer: it creates none).
async fn live_sessions(axum::Extension(store): axum::Extension<DatabankStore>) -> Response {
    match store.length().await {
        Ok(live) => Json(json!({"live": live})).into_response(),
        Err(e) => failure(e),
    }
}

/// Seconds from an environment variable, or a default.
pub fn seconds_from_env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Where the example listens unless `ADDR` says otherwise.
pub fn address() -> SocketAddr {
    std::env::var("ADDR")
        .ok()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 3000)))
}
