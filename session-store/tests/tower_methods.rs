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

/// A plain map as the cache of tower-sessions' `CachingSessionStore`, like its `MemoryStore`:
/// it keeps the record as last saved, token included.
#[derive(Debug, Clone, Default)]
struct MapCache(std::sync::Arc<std::sync::Mutex<std::collections::HashMap<Id, Record>>>);

impl MapCache {
    fn map(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<Id, Record>> {
        self.0.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

#[async_trait::async_trait]
impl SessionStore for MapCache {
    async fn create(&self, record: &mut Record) -> tower_sessions_core::session_store::Result<()> {
        self.map().insert(record.id, record.clone());
        Ok(())
    }

    async fn save(&self, record: &Record) -> tower_sessions_core::session_store::Result<()> {
        self.map().insert(record.id, record.clone());
        Ok(())
    }

    async fn load(&self, id: &Id) -> tower_sessions_core::session_store::Result<Option<Record>> {
        Ok(self.map().get(id).cloned())
    }

    async fn delete(&self, id: &Id) -> tower_sessions_core::session_store::Result<()> {
        self.map().remove(id);
        Ok(())
    }
}

/// A memory store under `policy` behind `CachingSessionStore` over a [`MapCache`], and a
/// session created through both holding `key`: `value`.
async fn behind_a_cache(
    policy: databank_session_store::ConflictPolicy,
    key: &str,
    value: serde_json::Value,
) -> Result<
    (
        DatabankStore,
        tower_sessions_core::CachingSessionStore<MapCache, DatabankStore>,
        Record,
    ),
    Box<dyn std::error::Error>,
> {
    use databank_session_store::StoreOptions;
    let store =
        DatabankStore::open_with("memory://", StoreOptions::new().conflicts(policy)).await?;
    let cached = tower_sessions_core::CachingSessionStore::new(MapCache::default(), store.clone());
    let mut record = Record {
        id: Id::default(),
        data: Default::default(),
        expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
    };
    record.data.insert(key.into(), value);
    cached.create(&mut record).await?;
    Ok((store, cached, record))
}

/// Behind `CachingSessionStore`, whose cache hands every later request the record as last
/// saved (with the token of the first load), requests still save exactly what they changed:
/// five counted requests give 5 under both policies, and a change made meanwhile by another
/// process (straight to the store) survives the next cached request's save (Merge) or makes it
/// a conflict (Reject).
#[tokio::test]
async fn a_cache_in_front_keeps_counts_and_concurrent_changes() -> TestResult {
    use databank_session_store::{ConflictPolicy, ORIGIN_KEY};
    use serde_json::json;
    for policy in [ConflictPolicy::Merge, ConflictPolicy::Reject] {
        let (store, cached, record) = behind_a_cache(policy, "count", json!(0)).await?;
        let sid = record.id.to_string();
        for _ in 0..5 {
            let mut loaded = cached.load(&record.id).await?.ok_or("session gone")?;
            let count = loaded
                .data
                .get("count")
                .and_then(|c| c.as_u64())
                .unwrap_or(0);
            loaded.data.insert("count".into(), json!(count + 1));
            cached.save(&loaded).await?;
        }
        let stored = store.get(&sid).await?.ok_or("session gone")?;
        assert_eq!(stored.get("count"), Some(&json!(5)), "{policy:?}");
        assert!(stored.get(ORIGIN_KEY).is_none(), "the token was stored");
        // Another process changes the session; this process's cache does not see it.
        let mut elsewhere = store.get(&sid).await?.ok_or("session gone")?;
        elsewhere.insert("theme", "dark");
        store.set(&sid, &mut elsewhere).await?;
        let mut loaded = cached.load(&record.id).await?.ok_or("session gone")?;
        loaded.data.insert("count".into(), json!(6));
        let saved = cached.save(&loaded).await;
        let stored = store.get(&sid).await?.ok_or("session gone")?;
        assert_eq!(stored.get("theme"), Some(&json!("dark")), "{policy:?}");
        match policy {
            ConflictPolicy::Merge => {
                saved?;
                assert_eq!(stored.get("count"), Some(&json!(6)));
            }
            _ => {
                assert!(saved.is_err(), "a stale whole-session save was accepted");
                assert_eq!(stored.get("count"), Some(&json!(5)));
            }
        }
    }
    Ok(())
}

/// Behind `CachingSessionStore`, a request that removes a key ends with data like a version
/// from before the key was added (log in, then log out while counting visits). Under Merge
/// the removal reaches the store, and the next load from the store (another process, or after
/// the cache forgot the session) finds no user. Under Reject the save may instead be refused
/// as a conflict (it cannot tell which version it started from); it never reports success
/// while the user stays.
#[tokio::test]
async fn a_cache_in_front_does_not_lose_a_logout() -> TestResult {
    use databank_session_store::ConflictPolicy;
    use serde_json::json;
    for policy in [ConflictPolicy::Merge, ConflictPolicy::Reject] {
        let (store, cached, record) = behind_a_cache(policy, "visits", json!(1)).await?;
        let sid = record.id.to_string();
        let mut login = cached.load(&record.id).await?.ok_or("session gone")?;
        login.data.insert("visits".into(), json!(2));
        login.data.insert("user".into(), json!("ada"));
        cached.save(&login).await?;
        let stored = store.get(&sid).await?.ok_or("session gone")?;
        assert_eq!(stored.get("user"), Some(&json!("ada")), "{policy:?}");
        let mut logout = cached.load(&record.id).await?.ok_or("session gone")?;
        logout.data.insert("visits".into(), json!(3));
        logout.data.remove("user");
        let saved = cached.save(&logout).await;
        let stored = store.get(&sid).await?.ok_or("session gone")?;
        if policy == ConflictPolicy::Reject && saved.is_err() {
            assert_eq!(stored.get("user"), Some(&json!("ada")), "{policy:?}");
            continue;
        }
        saved?;
        assert_eq!(stored.get("user"), None, "{policy:?}: the logout was lost");
        assert_eq!(stored.get("visits"), Some(&json!(3)), "{policy:?}");
        // A removal alone, back to exactly the data of the first version.
        let mut again = cached.load(&record.id).await?.ok_or("session gone")?;
        again.data.insert("flash".into(), json!("saved"));
        cached.save(&again).await?;
        let mut read = cached.load(&record.id).await?.ok_or("session gone")?;
        read.data.remove("flash");
        cached.save(&read).await?;
        let stored = store.get(&sid).await?.ok_or("session gone")?;
        assert_eq!(stored.get("flash"), None, "{policy:?}: the flash came back");
    }
    Ok(())
}
