//! [`tower_sessions::SessionStore`](tower_sessions_core::SessionStore) (tower-sessions 0.15,
//! axum 0.8) and [`ExpiredDeletion`] for [`DatabankStore`].
//!
//! ```ignore
//! let store = DatabankStore::open("redis://127.0.0.1/0?prefix=app").await?;
//! let layer = tower_sessions::SessionManagerLayer::new(store.clone());
//! let app = axum::Router::new().route("/", get(handler)).layer(layer);
//! let _cleanup = store.start_cleanup(std::time::Duration::from_secs(60));
//! ```
//!
//! - `create` is one atomic insert; on an id collision a new id is drawn.
//! - `save` of a session this process loaded is an `update_if` on the revision it was loaded at:
//!   a concurrent change is merged (or rejected, per [`ConflictPolicy`](crate::ConflictPolicy)),
//!   a session deleted or expired meanwhile is created again, never silently dropped. The
//!   revision travels inside the session data under [`ORIGIN_KEY`](crate::ORIGIN_KEY).
//! - `load` of an unreadable record answers "no session" (logged), so a bad cookie or a foreign
//!   record gives a fresh session, not a 500.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use time::OffsetDateTime;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store::{self, ExpiredDeletion, SessionStore};

use crate::id::tag;
use crate::{DatabankStore, Session, SessionError};

fn to_chrono(at: OffsetDateTime) -> Option<DateTime<Utc>> {
    i64::try_from(at.unix_timestamp_nanos())
        .ok()
        .map(DateTime::from_timestamp_nanos)
}

fn to_time(at: Option<DateTime<Utc>>) -> OffsetDateTime {
    // tower-sessions records always carry an expiry; a session stored without one (not
    // written by tower-sessions) is given a day.
    let at = at.unwrap_or_else(|| Utc::now() + chrono::Duration::days(1));
    at.timestamp_nanos_opt()
        .and_then(|n| OffsetDateTime::from_unix_timestamp_nanos(i128::from(n)).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn session_of(record: &Record) -> Session {
    let data = record
        .data
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Session::from_framework(data, to_chrono(record.expiry_date))
}

fn backend(e: SessionError) -> session_store::Error {
    match e {
        SessionError::Corrupt(why) => session_store::Error::Decode(why),
        SessionError::TooLarge { .. } => session_store::Error::Encode(e.to_string()),
        other => session_store::Error::Backend(other.to_string()),
    }
}

fn random_id() -> session_store::Result<Id> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| session_store::Error::Backend(e.to_string()))?;
    Ok(Id(i128::from_le_bytes(bytes)))
}

#[async_trait]
impl SessionStore for DatabankStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let mut session = session_of(record);
        session.origin = None;
        for _ in 0..8 {
            if self
                .insert(&record.id.to_string(), &mut session)
                .await
                .map_err(backend)?
            {
                return Ok(());
            }
            record.id = random_id()?;
        }
        Err(session_store::Error::Backend(
            "eight session ids in a row already existed".into(),
        ))
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let mut session = session_of(record);
        self.set(&record.id.to_string(), &mut session)
            .await
            .map_err(backend)
    }

    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        let sid = session_id.to_string();
        match self.get(&sid).await {
            Ok(Some(session)) => {
                let expiry_date = to_time(session.expires_at);
                Ok(Some(Record {
                    id: *session_id,
                    data: session.into_data_with_origin().into_iter().collect(),
                    expiry_date,
                }))
            }
            Ok(None) => Ok(None),
            Err(SessionError::Corrupt(why)) => {
                tracing::warn!(sid = %tag(&sid), %why, "unreadable session; starting a new one");
                Ok(None)
            }
            Err(e) => Err(backend(e)),
        }
    }

    async fn delete(&self, session_id: &Id) -> session_store::Result<()> {
        self.destroy(&session_id.to_string()).await.map_err(backend)
    }
}

#[async_trait]
impl ExpiredDeletion for DatabankStore {
    async fn delete_expired(&self) -> session_store::Result<()> {
        self.cleanup().await.map(|_| ()).map_err(backend)
    }
}
