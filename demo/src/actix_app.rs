//! The same site on actix-web with actix-session: a visit counter, login and logout.

use actix_session::config::PersistentSession;
use actix_session::{Session, SessionMiddleware};
use actix_web::cookie::{Key, SameSite};
use actix_web::{web, App, HttpResponse, HttpServer};
use databank_session_store::{DatabankStore, ORIGIN_KEY};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::escape;

/// Serves the site on `listener` until the server stops; sessions last `idle`.
pub async fn serve(
    listener: std::net::TcpListener,
    store: DatabankStore,
    key: Key,
    idle: time::Duration,
) -> std::io::Result<()> {
    server(listener, store, key, idle)?.await
}

/// The server (a future to run inside an actix system; its `handle()` stops it).
pub fn server(
    listener: std::net::TcpListener,
    store: DatabankStore,
    key: Key,
    idle: time::Duration,
) -> std::io::Result<actix_web::dev::Server> {
    Ok(HttpServer::new(move || {
        // The cookie the crate docs describe: HttpOnly, SameSite=Lax, Path=/, Max-Age = idle.
        let sessions = SessionMiddleware::builder(store.clone(), key.clone())
            .cookie_name("sid".into())
            .cookie_http_only(true)
            .cookie_same_site(SameSite::Lax)
            .cookie_path("/".into())
            .cookie_secure(false)
            .session_lifecycle(PersistentSession::default().session_ttl(idle))
            .build();
        App::new()
            .wrap(sessions)
            .route("/", web::get().to(home))
            .route("/login", web::post().to(login))
            .route("/logout", web::post().to(logout))
            .route("/api/state", web::get().to(state))
            .route("/api/keys/{key}", web::post().to(add_key))
            .route(
                "/api/held/{gate}/keys/{key}",
                web::post().to(add_key_when_released),
            )
            .route("/api/forget-user", web::post().to(forget_user))
            .route("/api/reserved", web::get().to(reserved))
            .route("/api/reserved", web::post().to(write_reserved))
            .route("/api/gates/{gate}", web::get().to(gate_state))
            .route("/api/gates/{gate}/open", web::post().to(open_gate))
    })
    .workers(2)
    .disable_signals()
    .listen(listener)?
    .run())
}

fn failure(e: impl std::fmt::Display) -> HttpResponse {
    tracing::error!(error = %e, "session failed");
    HttpResponse::ServiceUnavailable().body("sessions are unavailable right now")
}

fn visit(session: &Session) -> Result<(u64, Option<String>), String> {
    let visits = session
        .get::<u64>("visits")
        .map_err(|e| e.to_string())?
        .unwrap_or(0)
        + 1;
    session
        .insert("visits", visits)
        .map_err(|e| e.to_string())?;
    let user = session.get::<String>("user").map_err(|e| e.to_string())?;
    Ok((visits, user))
}

async fn home(session: Session) -> HttpResponse {
    let (visits, user) = match visit(&session) {
        Ok(v) => v,
        Err(e) => return failure(e),
    };
    let who = match user {
        Some(name) => format!(
            "<p>Signed in as <b>{}</b>.</p><form method=post action=/logout><button>Log out</button></form>",
            escape(&name)
        ),
        None => "<form method=post action=/login><input name=user placeholder=name required> <button>Log in</button></form>".into(),
    };
    // Session data: never from a cache (the back button after logout asks again).
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("cache-control", "no-store"))
        .body(format!(
        "<!doctype html><title>databank sessions</title><h1>databank sessions (actix)</h1><p>Visits in this session: {visits}</p>{who}"
    ))
}

#[derive(Deserialize)]
struct LoginForm {
    user: String,
}

async fn login(session: Session, form: web::Form<LoginForm>) -> HttpResponse {
    let name: String = form.user.trim().chars().take(64).collect();
    if name.is_empty() {
        return HttpResponse::BadRequest().body("a name is required");
    }
    session.renew();
    if let Err(e) = session.insert("user", name) {
        return failure(e);
    }
    HttpResponse::SeeOther()
        .insert_header(("location", "/"))
        .finish()
}

async fn logout(session: Session) -> HttpResponse {
    session.purge();
    HttpResponse::SeeOther()
        .insert_header(("location", "/"))
        .finish()
}

async fn state(session: Session) -> HttpResponse {
    match visit(&session) {
        Ok((visits, user)) => HttpResponse::Ok().json(json!({"visits": visits, "user": user})),
        Err(e) => failure(e),
    }
}

async fn add_key(session: Session, key: web::Path<String>) -> HttpResponse {
    if key.len() > 64 || key.starts_with("__") {
        return HttpResponse::BadRequest().body("bad key");
    }
    match session.insert(format!("k:{key}"), true) {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => failure(e),
    }
}

/// Waits at a test gate (see [`crate::gate`]; actix-session has loaded the session before the
/// handler runs), then sets `key` like `add_key`: a slow request, for the end-to-end tests.
async fn add_key_when_released(
    session: Session,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (gate, key) = path.into_inner();
    if !crate::gate::hold(&gate).await {
        return HttpResponse::BadRequest().body("bad gate");
    }
    add_key(session, web::Path::from(key)).await
}

/// Signs the user out of the session without ending it (the other keys stay).
async fn forget_user(session: Session) -> HttpResponse {
    session.remove("user");
    HttpResponse::NoContent().finish()
}

/// Whether a request waits at a test gate.
async fn gate_state(gate: web::Path<String>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"held": crate::gate::is_held(&gate)}))
}

/// Opens a test gate.
async fn open_gate(gate: web::Path<String>) -> HttpResponse {
    crate::gate::open(&gate);
    HttpResponse::NoContent().finish()
}

/// What the session holds under the store's reserved key (the adapter's token), for the tests.
async fn reserved(session: Session) -> HttpResponse {
    match session.get::<Value>(ORIGIN_KEY) {
        Ok(value) => HttpResponse::Ok().json(json!({ "value": value })),
        Err(e) => failure(e),
    }
}

/// Writes the request body under the store's reserved key, as a careless handler might: the
/// store must ignore it (the tests check that nothing is lost or stored).
async fn write_reserved(session: Session, body: String) -> HttpResponse {
    match session.insert(ORIGIN_KEY, body) {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => failure(e),
    }
}
