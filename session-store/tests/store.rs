//! The connect-databank behaviours and the store's own promises, on every backend: memory,
//! disk, and the real Redis (one server and a cluster), MongoDB and (where one can be had) Couchbase servers
//! `cargo xtask test` provides.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use databank_core::testkit::{in_ms, sleep_past, unique_name, SHORT_LIFE_MS};
use databank_core::{json, Value};
use databank_session_store::{ConflictPolicy, DatabankStore, Session, SessionError, StoreOptions};

type TestResult = Result<(), SessionError>;

/// A store and whatever must live as long as it (a temporary directory).
struct Fixture {
    store: DatabankStore,
    url: String,
    _dir: Option<tempfile::TempDir>,
}

/// Drops what a MongoDB case left behind, so later cases do not slow down.
async fn cleanup(url: &str) {
    if url.starts_with("postgres") {
        let Ok(config) = databank_sql::SqlConfig::from_url(url) else {
            return;
        };
        if let Ok(pool) = sqlx::PgPool::connect(&config.database_url).await {
            let drop = format!(
                "DROP TABLE IF EXISTS \"{0}\"; DROP TABLE IF EXISTS \"{0}_meta\"",
                config.table
            );
            let _ = sqlx::raw_sql(&drop).execute(&pool).await;
            pool.close().await;
        }
        return;
    }
    if !url.starts_with("mongodb") {
        return;
    }
    let Ok(config) = databank_mongo::MongoConfig::from_url(url) else {
        return;
    };
    if let Ok(client) = mongodb::Client::with_uri_str(&config.server_url).await {
        let _ = client.database(&config.database).drop().await;
    }
}

/// What a test server variable holds, or `None` where the server is missing (outside CI; one
/// line says so: `testkit::server_url`).
fn env(name: &str) -> Option<String> {
    let service = match name {
        "DATABANK_TEST_REDIS_URL" => "redis",
        "DATABANK_TEST_REDIS_CLUSTER_URL" => "redis-cluster",
        "DATABANK_TEST_MONGO_URL" => "mongo",
        "DATABANK_TEST_COUCHBASE_URL" => "couchbase",
        _ => "postgres",
    };
    databank_core::testkit::server_url(name, &format!("cargo xtask services up {service}"))
}

/// A store on `backend`, or `None` where its server is missing (see [`env`]).
async fn fixture(backend: &str, options: StoreOptions) -> Option<Fixture> {
    let (url, dir) = match backend {
        "memory" => ("memory://".to_string(), None),
        "disk" => {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            (format!("disk://{}", dir.path().display()), Some(dir))
        }
        "redis" => {
            let base = env("DATABANK_TEST_REDIS_URL")?;
            let sep = if base.contains('?') { '&' } else { '?' };
            (format!("{base}{sep}prefix={}", unique_name("sess")), None)
        }
        // Left out (`--skip redis_cluster::`) where `cargo xtask test` has no cluster.
        "redis_cluster" => {
            let base = env("DATABANK_TEST_REDIS_CLUSTER_URL")?;
            let sep = if base.contains('?') { '&' } else { '?' };
            (format!("{base}{sep}prefix={}", unique_name("sess")), None)
        }
        "mongo" => {
            let mut url =
                url::Url::parse(&env("DATABANK_TEST_MONGO_URL")?).unwrap_or_else(|e| panic!("{e}"));
            url.set_path(&format!("/{}", unique_name("sess")));
            (url.to_string(), None)
        }
        // Left out (`--skip couchbase_server::`) where `cargo xtask test` has no Couchbase.
        "couchbase_server" => {
            let base = env("DATABANK_TEST_COUCHBASE_URL")?;
            let sep = if base.contains('?') { '&' } else { '?' };
            (format!("{base}{sep}prefix={}", unique_name("sess")), None)
        }
        // Left out (`--skip postgres::`) where `cargo xtask test` has no PostgreSQL.
        "postgres" => {
            let base = env("DATABANK_TEST_POSTGRES_URL")?;
            let sep = if base.contains('?') { '&' } else { '?' };
            (format!("{base}{sep}table={}", unique_name("sess")), None)
        }
        "sqlite" => {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            (
                format!("sqlite://{}/sessions.db", dir.path().display()),
                Some(dir),
            )
        }
        other => panic!("unknown backend {other}"),
    };
    let store = DatabankStore::open_with(&url, options)
        .await
        .unwrap_or_else(|e| panic!("cannot open {backend} store: {e}"));
    Some(Fixture {
        store,
        url,
        _dir: dir,
    })
}

fn in_secs(secs: i64) -> Option<chrono::DateTime<Utc>> {
    Some(Utc::now() + chrono::Duration::seconds(secs))
}

fn session(pairs: &[(&str, Value)], expires_at: Option<chrono::DateTime<Utc>>) -> Session {
    let mut s = Session::new();
    for (k, v) in pairs {
        s.insert(*k, v.clone());
    }
    s.expires_at = expires_at;
    s
}

async fn empty_store_has_nothing(f: Fixture) -> TestResult {
    assert!(f.store.get("nothing-here").await?.is_none());
    assert!(f.store.all().await?.is_empty());
    assert_eq!(f.store.length().await?, 0);
    Ok(())
}

async fn set_then_get_round_trips(f: Fixture) -> TestResult {
    let mut s = session(
        &[("user", json!("ada")), ("cart", json!([1, {"sku": "x"}]))],
        in_secs(3600),
    );
    f.store.set("sid-1", &mut s).await?;
    let got = f.store.get("sid-1").await?.unwrap_or_default();
    assert_eq!(got.data, s.data);
    let millis = |t: Option<chrono::DateTime<Utc>>| t.map(|t| t.timestamp_millis());
    assert_eq!(millis(got.expires_at), millis(s.expires_at));
    assert_eq!(f.store.all().await?.get("sid-1"), Some(&s.data));
    Ok(())
}

async fn a_thousand_sessions_set_then_read_back(f: Fixture) -> TestResult {
    let mut tasks = Vec::new();
    for t in 0..10 {
        let store = f.store.clone();
        tasks.push(tokio::spawn(async move {
            for i in (t * 100)..((t + 1) * 100) {
                let mut s = session(&[("n", json!(i))], in_secs(3600));
                store.set(&format!("s{i}"), &mut s).await?;
            }
            Ok::<_, SessionError>(())
        }));
    }
    for task in tasks {
        task.await.unwrap_or_else(|e| panic!("{e}"))?;
    }
    for i in (0..1000).step_by(7) {
        let got = f.store.get(&format!("s{i}")).await?.unwrap_or_default();
        assert_eq!(got.get("n"), Some(&json!(i)));
    }
    assert_eq!(f.store.length().await?, 1000);
    assert_eq!(f.store.all().await?.len(), 1000);
    Ok(())
}

async fn cleanup_removes_exactly_the_expired_half_of_5000(f: Fixture) -> TestResult {
    let mut tasks = Vec::new();
    for t in 0..16 {
        let store = f.store.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = t;
            while i < 5000 {
                let expires = if i % 2 == 0 {
                    in_secs(-60)
                } else {
                    in_secs(3600)
                };
                let mut s = session(&[("i", json!(i))], expires);
                store.set(&format!("s{i}"), &mut s).await?;
                i += 16;
            }
            Ok::<_, SessionError>(())
        }));
    }
    for task in tasks {
        task.await.unwrap_or_else(|e| panic!("{e}"))?;
    }
    assert_eq!(
        f.store.length().await?,
        2500,
        "length counts expired sessions"
    );
    let removed = f.store.cleanup().await?;
    if f.store.bank().capabilities().native_expiry {
        assert!(removed <= 2500, "removed {removed}");
    } else {
        assert_eq!(removed, 2500);
    }
    assert_eq!(f.store.cleanup().await?, 0);
    let live: HashSet<String> = f.store.all().await?.into_keys().collect();
    let expected: HashSet<String> = (0..5000)
        .filter(|i| i % 2 == 1)
        .map(|i| format!("s{i}"))
        .collect();
    assert_eq!(live, expected);
    Ok(())
}

async fn sessions_without_expiry_are_never_cleaned(f: Fixture) -> TestResult {
    f.store
        .set("forever", &mut session(&[("a", json!(1))], None))
        .await?;
    f.store
        .set("gone", &mut session(&[("a", json!(1))], in_secs(-1)))
        .await?;
    f.store.cleanup().await?;
    assert!(f.store.get("forever").await?.is_some());
    assert!(f.store.get("gone").await?.is_none());
    assert_eq!(f.store.length().await?, 1);
    Ok(())
}

async fn expired_sessions_are_neither_returned_nor_counted(f: Fixture) -> TestResult {
    // "soon" must still count after two more calls, so it lives SHORT_LIFE_MS (room for a
    // loaded machine); the check after its expiry waits from the expiry itself.
    let soon = in_ms(SHORT_LIFE_MS);
    f.store
        .set("soon", &mut session(&[("a", json!(1))], soon))
        .await?;
    f.store
        .set("later", &mut session(&[("a", json!(1))], in_secs(3600)))
        .await?;
    assert_eq!(f.store.length().await?, 2);
    sleep_past(soon).await;
    assert!(f.store.get("soon").await?.is_none());
    assert_eq!(f.store.length().await?, 1);
    assert_eq!(f.store.all().await?.len(), 1);
    Ok(())
}

async fn destroy_succeeds_whether_or_not_it_exists(f: Fixture) -> TestResult {
    f.store
        .set("x", &mut session(&[("a", json!(1))], in_secs(60)))
        .await?;
    f.store.destroy("x").await?;
    f.store.destroy("x").await?;
    f.store.destroy("never").await?;
    assert!(f.store.get("x").await?.is_none());
    Ok(())
}

async fn touch_moves_the_expiry_and_keeps_the_data(f: Fixture) -> TestResult {
    let soon = in_ms(SHORT_LIFE_MS);
    let mut s = session(&[("a", json!(1))], soon);
    f.store.set("t", &mut s).await?;
    assert!(f.store.touch("t", in_secs(3600)).await?);
    sleep_past(soon).await;
    let got = f.store.get("t").await?.unwrap_or_default();
    assert_eq!(got.get("a"), Some(&json!(1)));
    assert_eq!(got.revision(), s.revision(), "touch rewrote the session");
    assert!(!f.store.touch("missing", in_secs(60)).await?);
    Ok(())
}

async fn clear_deletes_sessions_and_nothing_else(f: Fixture) -> TestResult {
    for i in 0..5 {
        f.store
            .set(
                &format!("c{i}"),
                &mut session(&[("i", json!(i))], in_secs(60)),
            )
            .await?;
    }
    f.store
        .bank()
        .save("other", "keep", json!({"mine": true}))
        .await?;
    assert_eq!(f.store.clear().await?, 5);
    assert_eq!(f.store.length().await?, 0);
    assert_eq!(
        f.store.bank().read("other", "keep").await?.value,
        json!({"mine": true})
    );
    Ok(())
}

async fn concurrent_requests_lose_no_key(f: Fixture) -> TestResult {
    let mut base = session(&[("start", json!(true))], in_secs(3600));
    f.store.set("shared", &mut base).await?;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = f.store.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = store.get("shared").await?.unwrap_or_default();
            s.insert(format!("k{i}"), i);
            store.set("shared", &mut s).await
        }));
    }
    for task in tasks {
        task.await.unwrap_or_else(|e| panic!("{e}"))?;
    }
    let got = f.store.get("shared").await?.unwrap_or_default();
    assert_eq!(got.data.len(), 21, "lost keys: {:?}", got.data);
    Ok(())
}

async fn removals_survive_a_concurrent_merge(f: Fixture) -> TestResult {
    f.store
        .set(
            "m",
            &mut session(&[("user", json!("ada")), ("cart", json!(1))], in_secs(3600)),
        )
        .await?;
    let mut logout = f.store.get("m").await?.unwrap_or_default();
    let mut other = f.store.get("m").await?.unwrap_or_default();
    other.insert("seen", true);
    f.store.set("m", &mut other).await?;
    logout.remove("user");
    f.store.set("m", &mut logout).await?;
    let got = f.store.get("m").await?.unwrap_or_default();
    assert_eq!(
        databank_core::Value::Object(got.data),
        json!({"cart": 1, "seen": true})
    );
    Ok(())
}

async fn reject_policy_reports_the_conflict(f: Fixture) -> TestResult {
    let mut s = session(&[("a", json!(1))], in_secs(3600));
    f.store.set("r", &mut s).await?;
    let mut first = f.store.get("r").await?.unwrap_or_default();
    let mut second = f.store.get("r").await?.unwrap_or_default();
    first.insert("a", 2);
    f.store.set("r", &mut first).await?;
    second.insert("a", 3);
    assert!(matches!(
        f.store.set("r", &mut second).await,
        Err(SessionError::Conflict)
    ));
    assert_eq!(
        f.store.get("r").await?.unwrap_or_default().get("a"),
        Some(&json!(2))
    );
    Ok(())
}

async fn a_session_destroyed_meanwhile_stays_gone(f: Fixture) -> TestResult {
    f.store
        .set("d", &mut session(&[("user", json!("ada"))], in_secs(3600)))
        .await?;
    let mut s = f.store.get("d").await?.unwrap_or_default();
    f.store.destroy("d").await?;
    s.insert("cart", 2);
    assert!(matches!(
        f.store.set("d", &mut s).await,
        Err(SessionError::Gone)
    ));
    assert_eq!(f.store.get("d").await?, None);
    Ok(())
}

/// The value of a framework adapter's call, or a failed test naming the call.
#[cfg(all(feature = "tower-sessions", feature = "actix"))]
fn called<T, E: std::fmt::Display>(result: Result<T, E>, call: &str) -> T {
    result.unwrap_or_else(|e| panic!("{call}: {e}"))
}

/// A logout while a slow request runs sticks through both framework adapters, on one app
/// instance and across two: the slow request loads, the user logs out (through the same store,
/// or through a second store over the same bank, as another app instance would), then the slow
/// request saves what it changed. Its data is stored under no id, old or new, and no session
/// in the bank holds the signed-in user.
#[cfg(all(feature = "tower-sessions", feature = "actix"))]
async fn a_logout_sticks_through_both_adapters(f: Fixture) -> TestResult {
    use actix_session::storage::{SessionKey, SessionStore as ActixStore};
    use tower_sessions_core::session::{Id, Record};
    use tower_sessions_core::SessionStore as TowerStore;

    let other = DatabankStore::new(f.store.bank().clone());
    for (instances, logout) in [("one instance", &f.store), ("two instances", &other)] {
        // tower-sessions (axum)
        let mut record = Record {
            id: Id::default(),
            data: [("user".to_owned(), json!("ada"))].into_iter().collect(),
            expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        };
        called(
            TowerStore::create(&f.store, &mut record).await,
            "tower create",
        );
        let mut slow = called(TowerStore::load(&f.store, &record.id).await, "tower load")
            .unwrap_or_else(|| panic!("{instances}: the created session is not there"));
        called(TowerStore::delete(logout, &record.id).await, "tower delete");
        slow.data.insert("cart".to_owned(), json!(3));
        called(TowerStore::save(&f.store, &slow).await, "tower save");
        assert!(
            called(TowerStore::load(&f.store, &record.id).await, "tower load").is_none(),
            "{instances}: tower: the logged-out session came back"
        );

        // actix-session
        let ttl = actix_web::cookie::time::Duration::hours(1);
        let state = [("user".to_owned(), "\"grace\"".to_owned())]
            .into_iter()
            .collect();
        let key = called(ActixStore::save(&f.store, state, &ttl).await, "actix save");
        let sid = key.as_ref().to_owned();
        let mut slow = called(ActixStore::load(&f.store, &key).await, "actix load")
            .unwrap_or_else(|| panic!("{instances}: the saved session is not there"));
        called(ActixStore::delete(logout, &key).await, "actix delete");
        slow.insert("cart".to_owned(), "3".to_owned());
        let old_key = called(SessionKey::try_from(sid.clone()), "session key");
        let returned = called(
            ActixStore::update(&f.store, old_key, slow, &ttl).await,
            "actix update",
        );
        for key in [returned, called(SessionKey::try_from(sid), "session key")] {
            assert!(
                called(ActixStore::load(&f.store, &key).await, "actix load").is_none(),
                "{instances}: actix: the logged-out session's data is stored under {key:?}"
            );
        }

        let sessions = f.store.all().await?;
        assert!(
            sessions.is_empty(),
            "{instances}: the logged-out sessions came back: {sessions:?}"
        );
    }
    Ok(())
}

/// A save merged with another request's (so this request's data is not the whole session)
/// and then saved again on top of its own revision: the next load still has the other
/// request's key.
async fn a_merged_save_saved_again_keeps_the_other_key(f: Fixture) -> TestResult {
    f.store
        .set("m", &mut session(&[("a", json!(1))], in_secs(3600)))
        .await?;
    let mut first = f.store.get("m").await?.unwrap_or_default();
    let mut second = f.store.get("m").await?.unwrap_or_default();
    first.insert("b", 2);
    f.store.set("m", &mut first).await?;
    second.insert("c", 3);
    f.store.set("m", &mut second).await?;
    second.insert("d", 4);
    f.store.set("m", &mut second).await?;
    let got = f.store.get("m").await?.unwrap_or_default();
    assert_eq!(
        databank_core::Value::Object(got.data),
        json!({"a": 1, "b": 2, "c": 3, "d": 4})
    );
    Ok(())
}

/// A store loads the sessions it saved lately by revision; whatever another process (here a
/// second store over the same bank, with its own memory) or a direct write does meanwhile is
/// what the next load sees: changes, expiry moves and destruction.
async fn changes_made_elsewhere_are_seen(f: Fixture) -> TestResult {
    let elsewhere = DatabankStore::new(f.store.bank().clone());
    let mut mine = session(&[("user", json!("ada"))], in_secs(3600));
    f.store.set("x", &mut mine).await?;
    f.store
        .set("y", &mut session(&[("n", json!(1))], in_secs(3600)))
        .await?;
    let loaded = f.store.get("x").await?.unwrap_or_default();
    assert_eq!(loaded.get("user"), Some(&json!("ada")));
    assert_eq!(f.store.get("x").await?, Some(loaded.clone()));
    // Another process changes x, moves its expiry, and destroys y.
    let mut theirs = elsewhere.get("x").await?.unwrap_or_default();
    theirs.insert("cart", 3);
    elsewhere.set("x", &mut theirs).await?;
    let later = in_secs(7200);
    assert!(elsewhere.touch("x", later).await?);
    elsewhere.destroy("y").await?;
    let seen = f.store.get("x").await?.unwrap_or_default();
    assert_eq!(seen.get("cart"), Some(&json!(3)));
    assert_eq!(seen.get("user"), Some(&json!("ada")));
    let stored = f.store.bank().read("session", "x").await?;
    assert_eq!(seen.expires_at, stored.expires_at);
    assert_eq!(f.store.get("y").await?, None);
    // A direct write of the record is seen too, and so is its deletion.
    let mut value = stored.value;
    value["d:user"] = json!("grace");
    f.store.bank().update("session", "x", value).await?;
    let seen = f.store.get("x").await?.unwrap_or_default();
    assert_eq!(seen.get("user"), Some(&json!("grace")));
    f.store.bank().delete("session", "x").await?;
    assert_eq!(f.store.get("x").await?, None);
    Ok(())
}

async fn a_version_1_session_is_read_and_rewritten(f: Fixture) -> TestResult {
    let v1 = json!({"format": "databank-session", "version": 1, "data": {"user": "ada"}});
    f.store
        .bank()
        .create(&f.store.options().kind, "old", v1)
        .expires_at(in_secs(3600))
        .await?;
    let mut s = f.store.get("old").await?.unwrap_or_default();
    assert_eq!(s.get("user"), Some(&json!("ada")));
    s.insert("cart", 1);
    f.store.set("old", &mut s).await?;
    let stored = f
        .store
        .bank()
        .read(&f.store.options().kind, "old")
        .await?
        .value;
    assert_eq!(stored["version"], json!(2));
    let mut again = f.store.get("old").await?.unwrap_or_default();
    assert_eq!(
        databank_core::Value::Object(again.data.clone()),
        json!({"user": "ada", "cart": 1})
    );
    again.remove("user");
    f.store.set("old", &mut again).await?;
    let got = f.store.get("old").await?.unwrap_or_default();
    assert_eq!(databank_core::Value::Object(got.data), json!({"cart": 1}));
    Ok(())
}

async fn a_session_destroyed_meanwhile_stays_gone_under_reject(f: Fixture) -> TestResult {
    a_session_destroyed_meanwhile_stays_gone(f).await
}

async fn oversized_sessions_are_refused_and_the_old_kept(f: Fixture) -> TestResult {
    f.store
        .set("big", &mut session(&[("a", json!("small"))], in_secs(60)))
        .await?;
    let mut huge = f.store.get("big").await?.unwrap_or_default();
    huge.insert("blob", "x".repeat(100 * 1024));
    assert!(matches!(
        f.store.set("big", &mut huge).await,
        Err(SessionError::TooLarge { .. })
    ));
    assert_eq!(
        f.store.get("big").await?.unwrap_or_default().get("a"),
        Some(&json!("small"))
    );
    assert!(f
        .store
        .get("big")
        .await?
        .unwrap_or_default()
        .get("blob")
        .is_none());
    Ok(())
}

async fn bad_session_ids_are_just_no_session(f: Fixture) -> TestResult {
    let huge = "x".repeat(10 * 1024);
    for sid in [
        "",
        huge.as_str(),
        "../../etc/passwd",
        "nul\0",
        "*",
        "{\"$gt\":\"\"}",
    ] {
        assert!(f.store.get(sid).await?.is_none(), "{sid:?}");
        f.store.destroy(sid).await?;
        assert!(!f.store.touch(sid, in_secs(60)).await?);
    }
    Ok(())
}

async fn unreadable_records_are_corrupt_and_skipped(f: Fixture) -> TestResult {
    f.store
        .bank()
        .save("session", "foreign", json!({"not": "a session"}))
        .await?;
    f.store
        .set("fine", &mut session(&[("a", json!(1))], in_secs(60)))
        .await?;
    assert!(matches!(
        f.store.get("foreign").await,
        Err(SessionError::Corrupt(_))
    ));
    assert_eq!(f.store.all().await?.len(), 1);
    Ok(())
}

async fn create_draws_fresh_ids_and_never_overwrites(f: Fixture) -> TestResult {
    let mut ids = HashSet::new();
    for _ in 0..20 {
        let sid = f
            .store
            .create_session(&mut session(&[("a", json!(1))], in_secs(60)))
            .await?;
        assert!(sid.len() >= 22, "{sid}");
        ids.insert(sid);
    }
    assert_eq!(ids.len(), 20);
    let taken = ids.iter().next().cloned().unwrap_or_default();
    assert!(
        !f.store
            .insert(&taken, &mut session(&[("b", json!(2))], in_secs(60)))
            .await?
    );
    assert_eq!(
        f.store.get(&taken).await?.unwrap_or_default().get("b"),
        None
    );
    Ok(())
}

async fn cleanup_task_survives_errors_and_stops_when_dropped(f: Fixture) -> TestResult {
    let store = f.store.clone();
    f.store
        .set("gone", &mut session(&[("a", json!(1))], in_secs(-1)))
        .await?;
    let task = store.start_cleanup(Duration::from_millis(50));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(task.is_running());
    // Break the bank under it: every tick now fails, and the task must keep going.
    f.store.bank().close().await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        task.is_running(),
        "the cleanup task died at its first error"
    );
    drop(task);
    let second = store.start_cleanup(Duration::from_millis(50));
    store.close().await?;
    // The task stops at its next tick (50 ms); a loaded machine may delay that, so wait up to
    // 100 ticks before calling it a failure.
    for _ in 0..100 {
        if !second.is_running() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!second.is_running(), "close did not stop the cleanup task");
    Ok(())
}

macro_rules! on_backend {
    ($backend:ident) => {
        mod $backend {
            use super::*;

            macro_rules! case {
                ($name:ident) => {
                    case!($name, StoreOptions::default());
                };
                ($name:ident, $options:expr) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                    async fn $name() -> TestResult {
                        let Some(fixture) = fixture(stringify!($backend), $options).await else {
                            return Ok(());
                        };
                        let url = fixture.url.clone();
                        let outcome = super::$name(fixture).await;
                        cleanup(&url).await;
                        outcome
                    }
                };
            }

            case!(empty_store_has_nothing);
            case!(set_then_get_round_trips);
            case!(a_thousand_sessions_set_then_read_back);
            case!(cleanup_removes_exactly_the_expired_half_of_5000);
            case!(sessions_without_expiry_are_never_cleaned);
            case!(expired_sessions_are_neither_returned_nor_counted);
            case!(destroy_succeeds_whether_or_not_it_exists);
            case!(touch_moves_the_expiry_and_keeps_the_data);
            case!(clear_deletes_sessions_and_nothing_else);
            case!(concurrent_requests_lose_no_key);
            case!(removals_survive_a_concurrent_merge);
            case!(reject_policy_reports_the_conflict, {
                let mut o = StoreOptions::default();
                o.conflicts = ConflictPolicy::Reject;
                o
            });
            case!(a_session_destroyed_meanwhile_stays_gone);
            #[cfg(all(feature = "tower-sessions", feature = "actix"))]
            case!(a_logout_sticks_through_both_adapters);
            case!(a_session_destroyed_meanwhile_stays_gone_under_reject, {
                let mut o = StoreOptions::default();
                o.conflicts = ConflictPolicy::Reject;
                o
            });
            case!(a_version_1_session_is_read_and_rewritten);
            case!(changes_made_elsewhere_are_seen);
            case!(a_merged_save_saved_again_keeps_the_other_key);
            case!(oversized_sessions_are_refused_and_the_old_kept);
            case!(bad_session_ids_are_just_no_session);
            case!(unreadable_records_are_corrupt_and_skipped);
            case!(create_draws_fresh_ids_and_never_overwrites);
            case!(cleanup_task_survives_errors_and_stops_when_dropped);
        }
    };
}

on_backend!(memory);
on_backend!(disk);
on_backend!(redis);
on_backend!(redis_cluster);
on_backend!(mongo);
on_backend!(couchbase_server);
on_backend!(postgres);
on_backend!(sqlite);
