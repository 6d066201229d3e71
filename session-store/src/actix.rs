//! [`actix_session::storage::SessionStore`] (actix-session 0.11, actix-web 4) for
//! [`DatabankStore`].
//!
//! ```ignore
//! let store = DatabankStore::open("disk:data/sessions").await?;
//! let key = actix_web::cookie::Key::generate();
//! App::new().wrap(actix_session::SessionMiddleware::new(store.clone(), key))
//! ```
//!
//! actix-session hands stores its values as JSON text; they are stored as the JSON values they
//! encode (no double encoding). The store makes session keys (256 random bits, atomic insert);
//! `update` merges concurrent changes like the tower adapter (the revision travels under
//! [`ORIGIN_KEY`](crate::ORIGIN_KEY)); `update_ttl` moves the expiry without rewriting data.

use std::collections::HashMap;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::id::tag;
use crate::{DatabankStore, Session, SessionError};

fn expiry(ttl: &Duration) -> Option<DateTime<Utc>> {
    let ms = i64::try_from(ttl.whole_milliseconds()).unwrap_or(i64::MAX);
    Utc::now().checked_add_signed(chrono::Duration::milliseconds(ms))
}

fn session_of(state: HashMap<String, String>, ttl: &Duration) -> Result<Session, anyhow::Error> {
    let mut data = Map::new();
    for (key, text) in state {
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("session value {key:?} is not JSON: {e}"))?;
        data.insert(key, value);
    }
    Ok(Session::from_framework(data, expiry(ttl)))
}

fn key(sid: String) -> Result<SessionKey, anyhow::Error> {
    SessionKey::try_from(sid).map_err(|e| anyhow::anyhow!("{e}"))
}

fn other(e: SessionError) -> anyhow::Error {
    anyhow::Error::new(e)
}

impl SessionStore for DatabankStore {
    async fn load(
        &self,
        session_key: &SessionKey,
    ) -> Result<Option<HashMap<String, String>>, LoadError> {
        let sid = session_key.as_ref();
        let session = match self.get(sid).await {
            Ok(Some(session)) => session,
            Ok(None) => return Ok(None),
            Err(SessionError::Corrupt(why)) => {
                tracing::warn!(sid = %tag(sid), %why, "unreadable session; starting a new one");
                return Ok(None);
            }
            Err(e) => return Err(LoadError::Other(other(e))),
        };
        session
            .into_data_with_origin()
            .into_iter()
            .map(|(k, v)| Ok((k, serde_json::to_string(&v)?)))
            .collect::<Result<_, serde_json::Error>>()
            .map(Some)
            .map_err(|e| LoadError::Deserialization(e.into()))
    }

    async fn save(
        &self,
        session_state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, SaveError> {
        let mut session = session_of(session_state, ttl).map_err(SaveError::Serialization)?;
        session.origin = None;
        let sid = self
            .create_session(&mut session)
            .await
            .map_err(|e| SaveError::Other(other(e)))?;
        key(sid).map_err(SaveError::Other)
    }

    async fn update(
        &self,
        session_key: SessionKey,
        session_state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let mut session = session_of(session_state, ttl).map_err(UpdateError::Serialization)?;
        self.set(session_key.as_ref(), &mut session)
            .await
            .map_err(|e| UpdateError::Other(other(e)))?;
        Ok(session_key)
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
