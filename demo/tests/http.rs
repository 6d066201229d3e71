//! End-to-end: the example apps over real TCP with a real HTTP client and cookie jar, on every
//! backend (memory, disk, and the Redis and MongoDB servers `cargo xtask test` provides).

use std::collections::HashMap;
use std::time::Duration;

use databank_core::testkit::unique_name;

use databank_demo::{actix_app, axum_app};
use databank_session_store::DatabankStore;
use reqwest::header::{HeaderValue, COOKIE};
use serde_json::Value;

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[derive(Clone, Copy, Debug)]
enum Framework {
    Axum,
    Actix,
}

/// A store URL for a backend, plus what must outlive it.
struct Backend {
    url: String,
    _dir: Option<tempfile::TempDir>,
}

/// What a test server variable holds, or `None` where the server is missing (outside CI; one
/// line says so: `testkit::server_url`).
fn env(name: &str) -> Option<String> {
    let service = match name {
        "DATABANK_TEST_REDIS_URL" => "redis",
        "DATABANK_TEST_REDIS_CLUSTER_URL" => "redis-cluster",
        "DATABANK_TEST_MONGO_URL" => "mongo",
        _ => "postgres",
    };
    databank_core::testkit::server_url(name, &format!("cargo xtask services up {service}"))
}

/// A backend, or `None` where its server is missing (see [`env`]).
fn backend(name: &str) -> Option<Backend> {
    Some(match name {
        "memory" => Backend {
            url: "memory://".into(),
            _dir: None,
        },
        "disk" => {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            Backend {
                url: format!("disk://{}", dir.path().display()),
                _dir: Some(dir),
            }
        }
        "redis" => {
            let base = env("DATABANK_TEST_REDIS_URL")?;
            let sep = if base.contains('?') { '&' } else { '?' };
            Backend {
                url: format!("{base}{sep}prefix={}", unique_name("web")),
                _dir: None,
            }
        }
        // Left out (`--skip redis_cluster::`) where `cargo xtask test` has no cluster.
        "redis_cluster" => Backend {
            url: format!(
                "{}&prefix={}",
                env("DATABANK_TEST_REDIS_CLUSTER_URL")?,
                unique_name("web")
            ),
            _dir: None,
        },
        "mongo" => {
            let mut url =
                url::Url::parse(&env("DATABANK_TEST_MONGO_URL")?).unwrap_or_else(|e| panic!("{e}"));
            url.set_path(&format!("/{}", unique_name("web")));
            Backend {
                url: url.to_string(),
                _dir: None,
            }
        }
        // Left out (`--skip postgres::`) where `cargo xtask test` has no PostgreSQL. The
        // tables stay on the test server, which xtask removes after the run.
        "postgres" => {
            let base = env("DATABANK_TEST_POSTGRES_URL")?;
            let sep = if base.contains('?') { '&' } else { '?' };
            Backend {
                url: format!("{base}{sep}table={}", unique_name("web")),
                _dir: None,
            }
        }
        "sqlite" => {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            Backend {
                url: format!("sqlite://{}/sessions.db", dir.path().display()),
                _dir: Some(dir),
            }
        }
        other => panic!("unknown backend {other}"),
    })
}

/// A running app: its base URL and how to stop it.
struct Running {
    base: String,
    stop: Option<Box<dyn FnOnce() + Send>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

fn actix_key() -> actix_web::cookie::Key {
    actix_web::cookie::Key::derive_from(&[7u8; 64])
}

async fn start(
    framework: Framework,
    store: DatabankStore,
    idle: time::Duration,
) -> Result<Running, Box<dyn std::error::Error>> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let base = format!("http://{}", listener.local_addr()?);
    match framework {
        Framework::Axum => {
            listener.set_nonblocking(true)?;
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let task = tokio::spawn(axum_app::serve(listener, store, idle));
            Ok(Running {
                base,
                stop: Some(Box::new(move || task.abort())),
            })
        }
        Framework::Actix => {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    match actix_app::server(listener, store, actix_key(), idle) {
                        Ok(server) => {
                            let _ = tx.send(Ok(server.handle()));
                            let _ = server.await;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e.to_string()));
                        }
                    }
                })
            });
            let handle = rx.recv()??;
            Ok(Running {
                base,
                stop: Some(Box::new(move || {
                    let stopping = handle.stop(false);
                    std::thread::spawn(move || actix_web::rt::System::new().block_on(stopping));
                })),
            })
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn state(
    client: &reqwest::Client,
    app: &Running,
) -> Result<Value, Box<dyn std::error::Error>> {
    let response = client.get(format!("{}/api/state", app.base)).send().await?;
    assert_eq!(response.status(), 200, "GET /api/state");
    Ok(response.json().await?)
}

async fn counter_increments_across_requests(fw: Framework, name: &str) -> TestResult {
    let Some(b) = backend(name) else {
        return Ok(());
    };
    let app = start(
        fw,
        DatabankStore::open(&b.url).await?,
        time::Duration::hours(1),
    )
    .await?;
    let c = client();
    for expected in 1..=3 {
        assert_eq!(state(&c, &app).await?["visits"], expected);
    }
    let page = c.get(format!("{}/", app.base)).send().await?.text().await?;
    assert!(page.contains("Visits in this session: 4"), "{page}");
    Ok(())
}

async fn login_and_logout(fw: Framework, name: &str) -> TestResult {
    let Some(b) = backend(name) else {
        return Ok(());
    };
    let store = DatabankStore::open(&b.url).await?;
    let app = start(fw, store.clone(), time::Duration::hours(1)).await?;
    let c = client();
    state(&c, &app).await?;
    let response = c
        .post(format!("{}/login", app.base))
        .form(&[("user", "ada <script>")])
        .send()
        .await?;
    assert!(
        response.status().is_redirection(),
        "login gave {}",
        response.status()
    );
    let s = state(&c, &app).await?;
    assert_eq!(s["user"], "ada <script>");
    assert_eq!(s["visits"], 2, "login lost the session data");
    let page = c.get(format!("{}/", app.base)).send().await?.text().await?;
    assert!(
        page.contains("ada &lt;script&gt;") && !page.contains("<script>"),
        "{page}"
    );
    c.post(format!("{}/logout", app.base)).send().await?;
    let s = state(&c, &app).await?;
    assert_eq!(s["user"], Value::Null);
    assert_eq!(s["visits"], 1);
    Ok(())
}

async fn two_clients_stay_isolated(fw: Framework, name: &str) -> TestResult {
    let Some(b) = backend(name) else {
        return Ok(());
    };
    let app = start(
        fw,
        DatabankStore::open(&b.url).await?,
        time::Duration::hours(1),
    )
    .await?;
    let (a, z) = (client(), client());
    state(&a, &app).await?;
    state(&a, &app).await?;
    c_login(&a, &app, "alice").await?;
    assert_eq!(state(&z, &app).await?["visits"], 1);
    assert_eq!(state(&z, &app).await?["user"], Value::Null);
    assert_eq!(state(&a, &app).await?["user"], "alice");
    Ok(())
}

async fn c_login(c: &reqwest::Client, app: &Running, user: &str) -> TestResult {
    c.post(format!("{}/login", app.base))
        .form(&[("user", user)])
        .send()
        .await?;
    Ok(())
}

async fn session_survives_an_app_restart(fw: Framework, name: &str) -> TestResult {
    let Some(b) = backend(name) else {
        return Ok(());
    };
    let c = client();
    {
        let store = DatabankStore::open(&b.url).await?;
        let app = start(fw, store.clone(), time::Duration::hours(1)).await?;
        state(&c, &app).await?;
        assert_eq!(state(&c, &app).await?["visits"], 2);
        drop(app);
        tokio::time::sleep(Duration::from_millis(200)).await;
        store.close().await?;
    }
    let store = DatabankStore::open(&b.url).await?;
    let app = start(fw, store, time::Duration::hours(1)).await?;
    assert_eq!(
        state(&c, &app).await?["visits"],
        3,
        "the session did not survive the restart"
    );
    Ok(())
}

async fn expired_session_is_gone_and_cleanup_counts_it(fw: Framework, name: &str) -> TestResult {
    let Some(b) = backend(name) else {
        return Ok(());
    };
    let store = DatabankStore::open(&b.url).await?;
    let app = start(fw, store.clone(), time::Duration::seconds(2)).await?;
    let c = client();
    state(&c, &app).await?;
    assert_eq!(state(&c, &app).await?["visits"], 2);
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(store.length().await?, 0, "an expired session was counted");
    assert_eq!(
        state(&c, &app).await?["visits"],
        1,
        "an expired session was served"
    );
    let removed = store.cleanup().await?;
    if store.bank().capabilities().native_expiry {
        assert!(removed <= 1, "{removed}");
    } else {
        assert_eq!(removed, 1);
    }
    assert_eq!(store.length().await?, 1);
    Ok(())
}

async fn tampered_cookies_give_a_fresh_session(fw: Framework, name: &str) -> TestResult {
    let Some(b) = backend(name) else {
        return Ok(());
    };
    let app = start(
        fw,
        DatabankStore::open(&b.url).await?,
        time::Duration::hours(1),
    )
    .await?;
    let plain = reqwest::Client::new();
    let long = format!("sid={}", "A".repeat(10_000));
    let values: Vec<HeaderValue> = vec![
        HeaderValue::from_static("sid=garbage"),
        HeaderValue::from_static("sid=AAAAAAAAAAAAAAAAAAAAAA"),
        HeaderValue::from_static("sid=../../etc/passwd"),
        HeaderValue::from_static("sid=%00%ff; other=1"),
        HeaderValue::from_bytes(b"sid=\xff\xfe\xfd")?,
        HeaderValue::from_str(&long)?,
    ];
    for value in values {
        let response = plain
            .get(format!("{}/api/state", app.base))
            .header(COOKIE, value.clone())
            .send()
            .await?;
        let status = response.status();
        assert!(
            status == 200 || status == 431 || status == 400,
            "cookie {value:?} gave {status}"
        );
        if status == 200 {
            let body: Value = response.json().await?;
            assert_eq!(
                body["visits"], 1,
                "cookie {value:?} reached someone's session"
            );
        }
    }
    Ok(())
}

async fn concurrent_requests_on_one_session_lose_no_key(fw: Framework, name: &str) -> TestResult {
    let Some(b) = backend(name) else {
        return Ok(());
    };
    let store = DatabankStore::open(&b.url).await?;
    let app = start(fw, store.clone(), time::Duration::hours(1)).await?;
    let c = client();
    state(&c, &app).await?;
    add_keys_concurrently(&c, &app, 20).await?;
    let all: HashMap<String, serde_json::Map<String, Value>> = store.all().await?;
    assert_eq!(all.len(), 1, "one client, one session");
    let data = all.into_values().next().unwrap_or_default();
    let keys = data.keys().filter(|k| k.starts_with("k:")).count();
    assert_eq!(keys, 20, "lost keys: {data:?}");
    Ok(())
}

/// A client whose cookies the test can read.
/// Sends `POST /api/keys/k<i>` for `i` in `0..n` at once, on one client's session; each must
/// succeed.
async fn add_keys_concurrently(c: &reqwest::Client, app: &Running, n: usize) -> TestResult {
    let mut tasks = Vec::new();
    for i in 0..n {
        let (c, url) = (c.clone(), format!("{}/api/keys/k{i}", app.base));
        tasks.push(tokio::spawn(async move {
            c.post(url).send().await.map(|r| r.status())
        }));
    }
    for task in tasks {
        let status = task.await??;
        assert!(status.is_success(), "{status}");
    }
    Ok(())
}

fn client_with_jar() -> (reqwest::Client, std::sync::Arc<reqwest::cookie::Jar>) {
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(std::sync::Arc::clone(&jar))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    (client, jar)
}

async fn log_in(c: &reqwest::Client, app: &Running, user: &str) -> TestResult {
    let response = c
        .post(format!("{}/login", app.base))
        .form(&[("user", user)])
        .send()
        .await?;
    assert!(
        response.status().is_redirection(),
        "login gave {}",
        response.status()
    );
    assert_eq!(state(c, app).await?["user"], user);
    Ok(())
}

/// Starts a request that loads the session, then waits at `gate` until the test opens it and
/// sets `key`; returns once it is waiting.
async fn slow_request(
    c: &reqwest::Client,
    app: &Running,
    gate: &str,
    key: &str,
) -> Result<tokio::task::JoinHandle<reqwest::Result<reqwest::StatusCode>>, Box<dyn std::error::Error>>
{
    let url = format!("{}/api/held/{gate}/keys/{key}", app.base);
    let request = c.post(url).send();
    let task = tokio::spawn(async move { request.await.map(|r| r.status()) });
    let started = std::time::Instant::now();
    loop {
        let held: Value = c
            .get(format!("{}/api/gates/{gate}", app.base))
            .send()
            .await?
            .json()
            .await?;
        if held["held"] == true {
            return Ok(task);
        }
        assert!(
            started.elapsed() < databank_demo::gate::MAX_HOLD,
            "the slow request never reached its gate"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn open_gate(c: &reqwest::Client, app: &Running, gate: &str) -> TestResult {
    let response = c
        .post(format!("{}/api/gates/{gate}/open", app.base))
        .send()
        .await?;
    assert!(response.status().is_success(), "{}", response.status());
    Ok(())
}

/// Log in, start a slow request that changes the session, log out meanwhile, let the slow
/// request save: the logged-out session id never holds a session again.
async fn logout_sticks_while_a_slow_request_saves(fw: Framework, name: &str) -> TestResult {
    let Some(b) = backend(name) else {
        return Ok(());
    };
    let store = DatabankStore::open(&b.url).await?;
    let app = start(fw, store.clone(), time::Duration::hours(1)).await?;
    let (c, jar) = client_with_jar();
    log_in(&c, &app, "ada").await?;
    let logged_in = {
        use reqwest::cookie::CookieStore;
        jar.cookies(&url::Url::parse(&app.base)?)
            .ok_or("no session cookie after login")?
    };
    let gate = unique_name("g");
    let slow = slow_request(&c, &app, &gate, "late").await?;
    let logout = c.post(format!("{}/logout", app.base)).send().await?;
    assert!(
        logout.status().is_redirection(),
        "logout gave {}",
        logout.status()
    );
    open_gate(&c, &app, &gate).await?;
    let status = slow.await??;
    assert!(status.as_u16() < 500, "the slow request gave {status}");
    // The cookie from before the logout: no session answers to it any more.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let old: Value = plain
        .get(format!("{}/api/state", app.base))
        .header(COOKIE, logged_in)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(old["user"], Value::Null, "the logged-out session came back");
    assert_eq!(old["visits"], 1, "the logged-out session came back");
    // The slow response came last, so the browser keeps the cookie it set: both adapters
    // drop the save, and that cookie names no session.
    assert_eq!(
        state(&c, &app).await?["user"],
        Value::Null,
        "the slow request signed the user back in"
    );
    let signed_in = store
        .all()
        .await?
        .into_values()
        .filter(|data| data.get("user") == Some(&Value::from("ada")))
        .count();
    assert_eq!(signed_in, 0, "{signed_in} sessions are signed in as ada");
    Ok(())
}

/// One request removes `user` while a concurrent one adds `cart`: both changes stay.
async fn removing_user_while_adding_cart_keeps_both(fw: Framework, name: &str) -> TestResult {
    let Some(b) = backend(name) else {
        return Ok(());
    };
    let store = DatabankStore::open(&b.url).await?;
    let app = start(fw, store.clone(), time::Duration::hours(1)).await?;
    let (c, _jar) = client_with_jar();
    log_in(&c, &app, "ada").await?;
    let gate = unique_name("g");
    let slow = slow_request(&c, &app, &gate, "cart").await?;
    let forget = c
        .post(format!("{}/api/forget-user", app.base))
        .send()
        .await?;
    assert!(
        forget.status().is_success(),
        "forget-user gave {}",
        forget.status()
    );
    open_gate(&c, &app, &gate).await?;
    let status = slow.await??;
    assert!(status.is_success(), "the slow request gave {status}");
    assert_eq!(
        state(&c, &app).await?["user"],
        Value::Null,
        "user came back"
    );
    let all = store.all().await?;
    let with_cart: Vec<_> = all.values().filter(|d| d.contains_key("k:cart")).collect();
    assert_eq!(with_cart.len(), 1, "sessions: {all:?}");
    assert!(
        !with_cart[0].contains_key("user"),
        "user came back: {all:?}"
    );
    Ok(())
}

async fn hostile_requests_get_answers_not_crashes(fw: Framework, name: &str) -> TestResult {
    let Some(b) = backend(name) else {
        return Ok(());
    };
    let store = DatabankStore::open(&b.url).await?;
    let app = start(fw, store.clone(), time::Duration::hours(1)).await?;
    let c = client();
    state(&c, &app).await?;
    let long = "k".repeat(8 * 1024);
    for path in [
        "/api/keys/..%2F..%2Fetc%2Fpasswd",
        "/api/keys/%00",
        "/api/keys/__databank_origin",
        "/api/keys/%7B%22%24gt%22%3A%22%22%7D",
        "/api/keys/%FF%FE",
        &format!("/api/keys/{long}"),
    ] {
        let response = c.post(format!("{}{path}", app.base)).send().await?;
        assert!(
            response.status().as_u16() < 500,
            "{path:.60} gave {}",
            response.status()
        );
    }
    for user in [
        "",
        "   ",
        &"x".repeat(1 << 20),
        "\0",
        "<img src=x onerror=alert(1)>",
    ] {
        let response = c
            .post(format!("{}/login", app.base))
            .form(&[("user", user)])
            .send()
            .await?;
        assert!(
            response.status().as_u16() < 500,
            "login as {user:.20?} gave {}",
            response.status()
        );
    }
    let raw = c
        .post(format!("{}/login", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![0xff, 0xfe, b'=', 0x00])
        .send()
        .await?;
    assert!(
        raw.status().as_u16() < 500,
        "invalid UTF-8 form gave {}",
        raw.status()
    );
    // The app still serves, and the session still works.
    assert!(state(&c, &app).await?["visits"].as_u64().is_some());
    assert_eq!(
        store.all().await?.len(),
        1,
        "hostile requests created or broke sessions"
    );
    Ok(())
}

/// The token the adapter carries under the reserved key is compact and opaque, and a handler
/// that overwrites it (with garbage, or with a stale token from an earlier request) loses
/// nothing and stores nothing of it: the save is then a whole replacement (garbage) or a patch
/// against an older origin (stale), both of only what the request holds.
async fn a_handler_writing_the_reserved_key_changes_nothing(
    fw: Framework,
    name: &str,
) -> TestResult {
    use databank_session_store::ORIGIN_KEY;
    let Some(b) = backend(name) else {
        return Ok(());
    };
    let store = DatabankStore::open(&b.url).await?;
    let app = start(fw, store.clone(), time::Duration::hours(1)).await?;
    let c = client();
    assert_eq!(state(&c, &app).await?["visits"], 1);
    let reserved = format!("{}/api/reserved", app.base);
    let body: Value = c.get(&reserved).send().await?.json().await?;
    let first = body["value"]
        .as_str()
        .ok_or(format!("no token: {body}"))?
        .to_owned();
    assert!(first.len() <= 32, "token is not compact: {first:?}");
    for (i, written) in ["garbage", "", "dbo1:0000000000000000", first.as_str()]
        .into_iter()
        .enumerate()
    {
        let key = c.post(format!("{}/api/keys/k{i}", app.base)).send().await?;
        assert!(key.status().is_success(), "{}", key.status());
        let write = c.post(&reserved).body(written.to_owned()).send().await?;
        assert!(
            write.status().is_success(),
            "writing {written:?}: {}",
            write.status()
        );
        assert_eq!(
            state(&c, &app).await?["visits"],
            i + 2,
            "after writing {written:?}"
        );
    }
    let all = store.all().await?;
    assert_eq!(all.len(), 1, "one client, one session: {all:?}");
    let data = all.into_values().next().unwrap_or_default();
    assert!(
        !data.contains_key(ORIGIN_KEY),
        "the reserved key was stored: {data:?}"
    );
    assert_eq!(data.get("visits"), Some(&Value::from(5)));
    let keys = data.keys().filter(|k| k.starts_with("k:")).count();
    assert_eq!(keys, 4, "lost keys: {data:?}");
    Ok(())
}

/// tower-sessions' own `CachingSessionStore<MemoryStore, DatabankStore>` in front of ours, as a
/// user would stack them: its cache hands every request after the first the record as last
/// saved, the adapter's token included. Under both policies counted requests answer 200 with the
/// right counts and the stored session holds no token; under Merge, signing out (removing
/// `user`) reaches the store, concurrent requests all answer, and a change made elsewhere (straight to the store, unseen by the
/// cache) survives the next cached save; under Reject, that stale save is refused rather than
/// overwriting it.
async fn a_tower_sessions_cache_in_front_counts_right(name: &str) -> TestResult {
    use databank_session_store::{ConflictPolicy, StoreOptions, ORIGIN_KEY};
    use tower_sessions::CachingSessionStore;
    use tower_sessions_memory_store::MemoryStore;
    for policy in [ConflictPolicy::Merge, ConflictPolicy::Reject] {
        let Some(b) = backend(name) else {
            return Ok(());
        };
        let store = DatabankStore::open_with(&b.url, StoreOptions::new().conflicts(policy)).await?;
        let cached = CachingSessionStore::new(MemoryStore::default(), store.clone());
        let router =
            databank_demo::axum_app::router_with(cached, store.clone(), time::Duration::hours(1));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let task = tokio::spawn(async move { axum::serve(listener, router).await });
        let app = Running {
            base,
            stop: Some(Box::new(move || task.abort())),
        };
        let c = client();
        for expected in 1..=5 {
            assert_eq!(state(&c, &app).await?["visits"], expected, "{policy:?}");
        }
        log_in(&c, &app, "ada").await?; // which reads the state: visit 6
        let all = store.all().await?;
        assert_eq!(all.len(), 1, "{policy:?}: {all:?}");
        let (sid, data) = all.into_iter().next().ok_or("no session")?;
        assert_eq!(data.get("visits"), Some(&Value::from(6)), "{policy:?}");
        assert_eq!(data.get("user"), Some(&Value::from("ada")), "{policy:?}");
        assert!(
            !data.contains_key(ORIGIN_KEY),
            "{policy:?}: the token was stored"
        );
        if matches!(policy, ConflictPolicy::Merge) {
            let out = c
                .post(format!("{}/api/forget-user", app.base))
                .send()
                .await?;
            assert!(out.status().is_success(), "{}", out.status());
            let stored = store.get(&sid).await?.ok_or("session gone")?;
            assert_eq!(
                stored.get("user"),
                None,
                "the sign-out was lost: {stored:?}"
            );
            // Concurrent requests behind a cache: each may start from data without the keys
            // the others add, and keys its data lacks are removed (so that removals win).
            add_keys_concurrently(&c, &app, 8).await?;
        }
        // Another process changes the session; this process's cache does not see it.
        let mut elsewhere = store.get(&sid).await?.ok_or("session gone")?;
        elsewhere.insert("theme", "dark");
        store.set(&sid, &mut elsewhere).await?;
        let response = c.get(format!("{}/api/state", app.base)).send().await?;
        let stored = store.get(&sid).await?.ok_or("session gone")?;
        assert_eq!(
            stored.get("theme"),
            Some(&Value::from("dark")),
            "{policy:?}: overwritten"
        );
        match policy {
            ConflictPolicy::Merge => {
                assert_eq!(response.status(), 200);
                assert_eq!(stored.get("visits"), Some(&Value::from(7)));
            }
            _ => {
                assert!(response.status().is_server_error(), "{}", response.status());
                assert_eq!(stored.get("visits"), Some(&Value::from(6)));
            }
        }
    }
    Ok(())
}

macro_rules! on {
    ($framework:ident, $backend:ident: $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() -> TestResult {
                super::$name(Framework::$framework, stringify!($backend)).await
            }
        )*
    };
}

macro_rules! suite {
    ($module:ident, $framework:ident, $backend:ident, restart: $restart:tt) => {
        mod $module {
            use super::*;
            on!($framework, $backend:
                counter_increments_across_requests,
                login_and_logout,
                two_clients_stay_isolated,
                expired_session_is_gone_and_cleanup_counts_it,
                tampered_cookies_give_a_fresh_session,
                concurrent_requests_on_one_session_lose_no_key,
                logout_sticks_while_a_slow_request_saves,
                removing_user_while_adding_cart_keeps_both,
                hostile_requests_get_answers_not_crashes,
                a_handler_writing_the_reserved_key_changes_nothing,
            );
            suite!(@restart $framework, $backend, $restart);
            suite!(@cache $framework, $backend);
        }
    };
    (@cache Axum, $backend:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn a_tower_sessions_cache_in_front_counts_right() -> TestResult {
            super::a_tower_sessions_cache_in_front_counts_right(stringify!($backend)).await
        }
    };
    (@cache Actix, $backend:ident) => {};
    (@restart $framework:ident, $backend:ident, yes) => {
        on!($framework, $backend: session_survives_an_app_restart);
    };
    (@restart $framework:ident, $backend:ident, no) => {};
}

suite!(axum_memory, Axum, memory, restart: no);
suite!(axum_disk, Axum, disk, restart: yes);
suite!(axum_redis, Axum, redis, restart: yes);
suite!(axum_redis_cluster, Axum, redis_cluster, restart: yes);
suite!(axum_mongo, Axum, mongo, restart: yes);
suite!(axum_postgres, Axum, postgres, restart: yes);
suite!(axum_sqlite, Axum, sqlite, restart: yes);
suite!(actix_memory, Actix, memory, restart: no);
suite!(actix_disk, Actix, disk, restart: yes);
suite!(actix_redis, Actix, redis, restart: yes);
suite!(actix_redis_cluster, Actix, redis_cluster, restart: yes);
suite!(actix_mongo, Actix, mongo, restart: yes);
suite!(actix_postgres, Actix, postgres, restart: yes);
suite!(actix_sqlite, Actix, sqlite, restart: yes);
