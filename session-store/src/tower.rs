//! [`tower_sessions::SessionStore`](tower_sessions_core::SessionStore) (tower-sessions 0.15,
//! axum 0.8) and [`ExpiredDeletion`] for [`DatabankStore`].
//!
//! ```
//! use axum::{routing::get, Router};
//! use databank_session_store::DatabankStore;
//! use tower_sessions::{Session, SessionManagerLayer};
//!
//! async fn visits(session: Session) -> String {
//!     let seen: u64 = session.get("visits").await.ok().flatten().unwrap_or(0);
//!     let _ = session.insert("visits", seen + 1).await;
//!     format!("visit {}", seen + 1)
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), databank_session_store::SessionError> {
//!     // Any bank URL: "redis://127.0.0.1/0?prefix=app", "disk:data/sessions", ...
//!     let store = DatabankStore::open("memory://").await?;
//!     let _cleanup = store.start_cleanup(std::time::Duration::from_secs(60));
//!     let app: Router = Router::new()
//!         .route("/", get(visits))
//!         .layer(SessionManagerLayer::new(store.clone()));
//!     // Then serve `app` as any axum app: `axum::serve(listener, app).await`.
//!     Ok(())
//! }
//! ```
//!
//! - `create` is one atomic insert; on an id collision a new id is drawn.
//! - `save` sends one atomic patch of exactly the keys this request set, changed or removed
//!   (or, with [`ConflictPolicy::Reject`](crate::ConflictPolicy), a whole-session
//!   compare-and-set). What was loaded is named by a token under
//!   [`ORIGIN_KEY`]. A `CachingSessionStore` in front saves the load's round trip on one
//!   instance, but weakens saves: it hands later requests the record as the last save left
//!   it, so a save compares its data with what that save stored, not with what its own request
//!   started from. A removal (a logout) is never lost; a key a concurrent request added may
//!   be, as with any store behind a cache. Under [`ConflictPolicy::Reject`](crate::ConflictPolicy)
//!   a save may then be refused as a conflict where only another request of this process
//!   changed the session.
//! - A save of a session destroyed (logged out) or expired since it was loaded is dropped and
//!   logged: tower-sessions' `save` cannot change the id, and the session must not come back.
//! - `load` of an unreadable record answers "no session" (logged), so a bad cookie or a foreign
//!   record gives a fresh session, not a 500.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use time::OffsetDateTime;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store::{self, ExpiredDeletion, SessionStore};

use serde_json::{Map, Value};

use crate::id::tag;
use crate::{DatabankStore, SessionError, ORIGIN_KEY};

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

fn data_of(record: &Record) -> Map<String, Value> {
    record
        .data
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
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
        let expires_at = to_chrono(record.expiry_date);
        for _ in 0..8 {
            let sid = record.id.to_string();
            let inserted = self
                .insert_tracked(&sid, data_of(record), expires_at)
                .await
                .map_err(backend)?;
            if let Some(token) = inserted {
                record
                    .data
                    .insert(ORIGIN_KEY.to_owned(), Value::String(token));
                return Ok(());
            }
            record.id = random_id()?;
        }
        Err(session_store::Error::Backend(
            "eight session ids in a row already existed".into(),
        ))
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let sid = record.id.to_string();
        match self
            .save_tracked(&sid, &record.data, to_chrono(record.expiry_date))
            .await
        {
            Ok(()) => Ok(()),
            Err(SessionError::Gone) => {
                tracing::info!(sid = %tag(&sid), "save of a destroyed or expired session dropped");
                Ok(())
            }
            Err(e) => Err(backend(e)),
        }
    }

    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        let sid = session_id.to_string();
        match self.load_tracked(&sid).await {
            Ok(Some((data, expires_at))) => Ok(Some(Record {
                id: *session_id,
                data,
                expiry_date: to_time(expires_at),
            })),
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
