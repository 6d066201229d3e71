//! [`actix_session::storage::SessionStore`] (actix-session 0.11, actix-web 4) for
//! [`DatabankStore`].
//!
//! ```
//! use actix_session::{Session, SessionMiddleware};
//! use actix_web::{cookie::Key, web, App, HttpResponse};
//! use databank_session_store::DatabankStore;
//!
//! async fn visits(session: Session) -> HttpResponse {
//!     let seen: u64 = session.get("visits").ok().flatten().unwrap_or(0);
//!     let _ = session.insert("visits", seen + 1);
//!     HttpResponse::Ok().body(format!("visit {}", seen + 1))
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), databank_session_store::SessionError> {
//!     // Any bank URL: "redis://127.0.0.1/0?prefix=app", "disk:data/sessions", ...
//!     let store = DatabankStore::open("memory://").await?;
//!     // The key signs the cookies: load it from your configuration, the same in every
//!     // instance.
//!     let key = Key::generate();
//!     let app = App::new()
//!         .wrap(SessionMiddleware::new(store.clone(), key))
//!         .route("/", web::get().to(visits));
//!     // Then serve `app` from `HttpServer::new` as any actix-web app.
//!     Ok(())
//! }
//! ```
//!
//! actix-session hands stores its values as JSON text. A text that parses to a JSON value which
//! prints back as the same text is stored as that value (so other readers see ordinary
//! session data); any other text (`u128::MAX`, struct fields out of key order, a float that does
//! not round-trip) is stored exactly as given, as `{"$json": "<text>"}`, and handed back
//! unchanged. The store makes session keys (256 random bits, atomic insert). `update` saves one
//! atomic patch of what the request changed, like the tower adapter (a token under
//! [`ORIGIN_KEY`](crate::ORIGIN_KEY) names what was loaded). An `update` of a session destroyed
//! (`purge`, a logout in another request) or expired while the request ran is dropped and
//! logged: its state is stored under no key, old or new, so a slow request that ends after a
//! logout cannot sign the user back in. (actix-session's own Redis store saves such state under
//! a new key; we do not.) The key handed back names no session, so the browser's next request
//! starts a fresh one. `update_ttl` moves the expiry without rewriting data.

use std::collections::HashMap;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::id::tag;
use crate::{DatabankStore, SessionError};

fn expiry(ttl: &Duration) -> Option<DateTime<Utc>> {
    let ms = i64::try_from(ttl.whole_milliseconds()).unwrap_or(i64::MAX);
    Utc::now().checked_add_signed(chrono::Duration::milliseconds(ms))
}

/// The one key of a value that stands for JSON text kept exactly as given.
const TEXT_KEY: &str = "$json";

fn is_text_marker(value: &Value) -> bool {
    matches!(value, Value::Object(map) if map.len() == 1 && map.get(TEXT_KEY).is_some_and(Value::is_string))
}

/// How actix's JSON text of one value is stored: the value itself when that prints back as the
/// same text, else the text, exactly.
fn stored(text: String) -> Value {
    match serde_json::from_str::<Value>(&text) {
        Ok(value)
            if !is_text_marker(&value)
                && serde_json::to_string(&value).ok().as_ref() == Some(&text) =>
        {
            value
        }
        _ => {
            let mut marker = Map::new();
            marker.insert(TEXT_KEY.to_owned(), Value::String(text));
            Value::Object(marker)
        }
    }
}

/// The JSON text actix gets back for a stored value.
fn text_of(value: Value) -> Result<String, serde_json::Error> {
    match value {
        Value::Object(mut map)
            if map.len() == 1 && map.get(TEXT_KEY).is_some_and(Value::is_string) =>
        {
            match map.remove(TEXT_KEY) {
                Some(Value::String(text)) => Ok(text),
                _ => Ok(String::new()),
            }
        }
        other => serde_json::to_string(&other),
    }
}

fn data_of(state: HashMap<String, String>) -> Map<String, Value> {
    state
        .into_iter()
        .map(|(key, text)| (key, stored(text)))
        .collect()
}

fn key(sid: String) -> Result<SessionKey, anyhow::Error> {
    SessionKey::try_from(sid).map_err(|e| anyhow::anyhow!("{e}"))
}

fn other(e: SessionError) -> anyhow::Error {
    anyhow::Error::new(e)
}

impl DatabankStore {
    /// Stores actix's state under a fresh key; the key and the token naming what was stored.
    async fn insert_state(
        &self,
        data: Map<String, Value>,
        ttl: &Duration,
    ) -> Result<SessionKey, anyhow::Error> {
        for _ in 0..8 {
            let sid = crate::id::new_id().map_err(other)?;
            if self
                .insert_tracked(&sid, data.clone(), expiry(ttl))
                .await
                .map_err(other)?
                .is_some()
            {
                return key(sid);
            }
        }
        Err(anyhow::anyhow!(
            "eight fresh session keys in a row already existed"
        ))
    }
}

impl SessionStore for DatabankStore {
    async fn load(
        &self,
        session_key: &SessionKey,
    ) -> Result<Option<HashMap<String, String>>, LoadError> {
        let sid = session_key.as_ref();
        let data = match self.load_tracked::<Map<String, Value>>(sid).await {
            Ok(Some((data, _))) => data,
            Ok(None) => return Ok(None),
            Err(SessionError::Corrupt(why)) => {
                tracing::warn!(sid = %tag(sid), %why, "unreadable session; starting a new one");
                return Ok(None);
            }
            Err(e) => return Err(LoadError::Other(other(e))),
        };
        data.into_iter()
            .map(|(k, v)| Ok((k, text_of(v)?)))
            .collect::<Result<_, serde_json::Error>>()
            .map(Some)
            .map_err(|e| LoadError::Deserialization(e.into()))
    }

    async fn save(
        &self,
        session_state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, SaveError> {
        self.insert_state(data_of(session_state), ttl)
            .await
            .map_err(SaveError::Other)
    }

    async fn update(
        &self,
        session_key: SessionKey,
        session_state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let data = data_of(session_state);
        match self
            .save_tracked(session_key.as_ref(), &data, expiry(ttl))
            .await
        {
            Ok(()) => Ok(session_key),
            Err(SessionError::Gone) => {
                // The session was ended (a logout) or expired while this request ran: its data
                // is stored under no id, old or new. actix-session sets the cookie to the key
                // returned, which names no session any more, so the browser ends signed out.
                tracing::info!(sid = %tag(session_key.as_ref()), "update of a destroyed or expired session dropped");
                Ok(session_key)
            }
            Err(e) => Err(UpdateError::Other(other(e))),
        }
    }

    async fn update_ttl(
        &self,
        session_key: &SessionKey,
        ttl: &Duration,
    ) -> Result<(), anyhow::Error> {
        self.touch(session_key.as_ref(), expiry(ttl))
            .await
            .map(|_| ())
            .map_err(other)
    }

    async fn delete(&self, session_key: &SessionKey) -> Result<(), anyhow::Error> {
        self.destroy(session_key.as_ref()).await.map_err(other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_exactly() -> Result<(), serde_json::Error> {
        for text in [
            u128::MAX.to_string(),
            r#"{"b":1,"a":2}"#.to_owned(),
            r#"{"a":2,"b":1}"#.to_owned(),
            r#"{"$json":"x"}"#.to_owned(),
            "\"text\"".to_owned(),
            "1.0".to_owned(),
            "not json".to_owned(),
            "[1,2]".to_owned(),
        ] {
            assert_eq!(text_of(stored(text.clone()))?, text);
        }
        assert_eq!(stored("[1,2]".into()), serde_json::json!([1, 2]));
        Ok(())
    }
}
