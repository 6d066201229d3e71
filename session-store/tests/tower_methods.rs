//! With `SessionStore` in scope, `store.create(&mut record)` is tower-sessions' own method: the
//! store's inherent methods do not shadow the trait's (`create_session` is ours).
#![cfg(feature = "tower-sessions")]

use databank_session_store::DatabankStore;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::SessionStore;

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[tokio::test]
async fn create_is_the_tower_sessions_method() -> TestResult {
    let store = DatabankStore::open("memory://").await?;
    let mut record = Record {
        id: Id::default(),
        data: Default::default(),
        expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
    };
    record.data.insert("user".into(), serde_json::json!("ada"));
    store.create(&mut record).await?;
    let loaded = store
        .load(&record.id)
        .await?
        .ok_or("created session not found")?;
    assert_eq!(loaded.data.get("user"), Some(&serde_json::json!("ada")));
    store.delete(&record.id).await?;
    assert!(store.load(&record.id).await?.is_none());
    Ok(())
}
