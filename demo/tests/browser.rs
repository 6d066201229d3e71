//! What a person sees: both demo apps (the functions their examples run), driven by a real headless
//! Chromium (Debian's `chromium` and `chromium-driver`) through WebDriver, on the disk and Redis
//! backends: the visit counter, login, two tabs of one session, logout seen from the other tab,
//! the back button after logout, a logout in one tab while a slow request runs in another, the session cookie as the browser stored it, and a server
//! restart between two visits. A screenshot of the signed-in page is written under
//! `target/browser/` on each run.
//!
//! Without `chromedriver` the tests say they were skipped (the summary of `cargo xtask test`
//! counts them so); with `CI` set they fail instead.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use databank_core::testkit::{unique_name, SKIP_PREFIX};
use databank_demo::{actix_app, axum_app};
use databank_session_store::DatabankStore;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// How long a server or the driver may take to start on a busy machine.
const STARTUP: Duration = Duration::from_secs(60);
/// The idle lifetime the demo apps' sessions get here.
const IDLE_SECS: i64 = 3600;

#[derive(Clone, Copy, Debug)]
enum Framework {
    Axum,
    Actix,
}

/// `target/<profile>/`, from this test binary's path (`target/<profile>/deps/browser-…`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| panic!("unexpected test binary path {}", exe.display()))
}

/// A program on `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// Waits for `chromedriver --port=0` to say which port it chose ("... started successfully on
/// port N."), or for `STARTUP` to pass. The kernel picks the port, so no other test or process
/// can be handed the same one between choosing and listening. Its output is drained to the end
/// so that it never blocks on a full pipe.
fn chosen_port(child: &mut Child, what: &str) -> Result<u16, String> {
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| format!("{what}'s output is not piped"))?;
    let (said, heard) = std::sync::mpsc::channel::<u16>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let port = line
                .split("started successfully on port ")
                .nth(1)
                .and_then(|rest| rest.trim_end_matches('.').trim().parse().ok());
            if let Some(port) = port {
                let _ = said.send(port);
            }
        }
    });
    let started = Instant::now();
    while started.elapsed() < STARTUP {
        if let Ok(port) = heard.recv_timeout(Duration::from_millis(50)) {
            return Ok(port);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{what} exited before listening ({status})"));
        }
    }
    Err(format!("{what} did not say its port within {STARTUP:?}"))
}

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running server: a thread with a runtime of its own (tokio for axum, an actix system),
/// which a stop ends entirely, open connections and all, as a process exit would.
struct Server {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One demo app on a fixed port, so it can be restarted there on the same store.
struct App {
    framework: Framework,
    store_url: String,
    port: u16,
    server: Option<Server>,
}

impl App {
    fn start(framework: Framework, store_url: &str) -> Result<App, String> {
        let mut app = App {
            framework,
            store_url: store_url.to_owned(),
            // The kernel picks a free port at the first launch; restarts reuse it.
            port: 0,
            server: None,
        };
        app.launch()?;
        Ok(app)
    }

    /// Opens the store and serves the app in a thread of its own; returns once it listens.
    fn launch(&mut self) -> Result<(), String> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", self.port))
            .map_err(|e| format!("cannot listen on {}: {e}", self.port))?;
        self.port = listener
            .local_addr()
            .map_err(|e| format!("no local address: {e}"))?
            .port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, listening) = std::sync::mpsc::channel::<Result<(), String>>();
        let (framework, url) = (self.framework, self.store_url.clone());
        let idle = time::Duration::seconds(IDLE_SECS);
        let serve = async move {
            let store = match DatabankStore::open(&url).await {
                Ok(store) => store,
                Err(e) => {
                    let _ = ready.send(Err(e.to_string()));
                    return;
                }
            };
            match framework {
                Framework::Axum => {
                    let served = listener
                        .set_nonblocking(true)
                        .and_then(|()| tokio::net::TcpListener::from_std(listener));
                    let listener = match served {
                        Ok(listener) => listener,
                        Err(e) => {
                            let _ = ready.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let _ = ready.send(Ok(()));
                    tokio::select! {
                        _ = axum_app::serve(listener, store.clone(), idle) => {}
                        _ = stopped => {}
                    }
                }
                Framework::Actix => {
                    let key = actix_web::cookie::Key::derive_from(&[7u8; 64]);
                    let server = match actix_app::server(listener, store.clone(), key, idle) {
                        Ok(server) => server,
                        Err(e) => {
                            let _ = ready.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let handle = server.handle();
                    let _ = ready.send(Ok(()));
                    tokio::select! {
                        _ = server => {}
                        _ = stopped => handle.stop(false).await,
                    }
                }
            }
            let _ = store.close().await;
        };
        let thread = std::thread::spawn(move || match framework {
            Framework::Axum => {
                if let Ok(runtime) = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    runtime.block_on(serve);
                    // Every task it still runs (open connections) ends here.
                    runtime.shutdown_background();
                }
            }
            Framework::Actix => actix_web::rt::System::new().block_on(serve),
        });
        self.server = Some(Server {
            stop: Some(stop),
            thread: Some(thread),
        });
        listening
            .recv_timeout(STARTUP)
            .map_err(|e| format!("the app did not start: {e}"))?
    }

    /// Stops the server (its connections too) and serves again on the same port and store.
    fn restart(&mut self) -> Result<(), String> {
        self.server = None;
        self.launch()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// A headless Chromium driven through its own `chromedriver`, with a profile of its own.
struct Browser {
    client: Client,
    _driver: Process,
    _profile: tempfile::TempDir,
}

/// The browser, or `None` (after printing a skip line) where there is no `chromedriver`;
/// under `CI` a missing driver fails the test.
async fn browser(test: &str) -> Result<Option<Browser>, Box<dyn std::error::Error>> {
    let Some(chromedriver) = on_path("chromedriver") else {
        if std::env::var_os("CI").is_some() {
            panic!(
                "chromedriver is required (CI is set): apt-get install chromium chromium-driver"
            );
        }
        // Straight to stderr (not captured): `cargo xtask test` counts the line as a skip.
        let _ = writeln!(
            std::io::stderr(),
            "{SKIP_PREFIX}{test}: chromedriver is not installed (apt-get install chromium chromium-driver)"
        );
        return Ok(None);
    };
    let mut child = Command::new(chromedriver)
        .arg("--port=0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let port = chosen_port(&mut child, "chromedriver");
    let driver = Process(child);
    let port = port?;
    let profile = tempfile::tempdir()?;
    let mut options = json!({
        "args": [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--window-size=1024,768",
            format!("--user-data-dir={}", profile.path().display()),
        ],
    });
    if let Some(chromium) = on_path("chromium") {
        options["binary"] = json!(chromium.display().to_string());
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), options);
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await?;
    Ok(Some(Browser {
        client,
        _driver: driver,
        _profile: profile,
    }))
}

/// The page's HTML.
async fn page(client: &Client) -> Result<String, fantoccini::error::CmdError> {
    client.source().await
}

/// The visit counter the home page shows.
async fn visits(client: &Client) -> Result<u64, Box<dyn std::error::Error>> {
    let html = page(client).await?;
    let count = html
        .split("Visits in this session: ")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| format!("no visit counter in {html}"))?;
    Ok(count)
}

async fn signed_in_as(client: &Client) -> Result<Option<String>, fantoccini::error::CmdError> {
    let html = page(client).await?;
    Ok(html
        .split("Signed in as <b>")
        .nth(1)
        .and_then(|rest| rest.split("</b>").next())
        .map(str::to_owned))
}

/// Clicks the button of the form posting to `from` and waits for the page that has a form
/// posting to `to`.
async fn submit(client: &Client, from: &str, to: &str) -> TestResult {
    client
        .find(Locator::Css(&format!("form[action='{from}'] button")))
        .await?
        .click()
        .await?;
    client
        .wait()
        .at_most(STARTUP)
        .for_element(Locator::Css(&format!("form[action='{to}']")))
        .await?;
    Ok(())
}

async fn log_in(client: &Client, name: &str) -> TestResult {
    let field = client.find(Locator::Css("input[name=user]")).await?;
    field.send_keys(name).await?;
    submit(client, "/login", "/logout").await
}

async fn log_out(client: &Client) -> TestResult {
    submit(client, "/logout", "/login").await
}

/// Every scenario in one browser session, in order: each builds on the state the last left.
async fn scenario(framework: Framework, backend: &str) -> TestResult {
    let test = format!("browser::{framework:?}_{backend}").to_lowercase();
    let Some(browser) = browser(&test).await? else {
        return Ok(());
    };
    let _dir;
    let store_url = match backend {
        "disk" => {
            let dir = tempfile::tempdir()?;
            let url = format!("disk://{}", dir.path().display());
            _dir = dir;
            url
        }
        "redis" => {
            let Some(base) = databank_core::testkit::server_url(
                "DATABANK_TEST_REDIS_URL",
                "cargo xtask services up redis",
            ) else {
                let _ = browser.client.clone().close().await;
                return Ok(());
            };
            let sep = if base.contains('?') { '&' } else { '?' };
            format!("{base}{sep}prefix={}", unique_name("browser"))
        }
        other => return Err(format!("no backend {other}").into()),
    };
    let mut app = App::start(framework, &store_url)?;
    let c = &browser.client;
    let outcome = run(c, &mut app, &test).await;
    let _ = browser.client.clone().close().await;
    outcome
}

async fn run(c: &Client, app: &mut App, test: &str) -> TestResult {
    // Two visits: the counter advances.
    c.goto(&app.url("/")).await?;
    let first = visits(c).await?;
    c.refresh().await?;
    assert_eq!(visits(c).await?, first + 1, "the second visit counts");

    // The cookie as the browser stored it: what the demo documents (demo/src/lib.rs).
    let cookie = c.get_named_cookie("sid").await?;
    assert_eq!(cookie.http_only(), Some(true), "HttpOnly: {cookie:?}");
    assert_eq!(
        cookie.same_site().map(|s| s.to_string()).as_deref(),
        Some("Lax"),
        "SameSite: {cookie:?}"
    );
    assert_eq!(cookie.path(), Some("/"), "Path: {cookie:?}");
    assert_ne!(
        cookie.secure(),
        Some(true),
        "not Secure on plain http: {cookie:?}"
    );
    let expires = cookie
        .expires_datetime()
        .ok_or_else(|| format!("a session cookie with no Max-Age: {cookie:?}"))?;
    let left = expires.unix_timestamp() - time::OffsetDateTime::now_utc().unix_timestamp();
    let idle = IDLE_SECS;
    // Max-Age is the configured idle time; the margin covers the time since it was set.
    assert!(
        (idle - 300..=idle).contains(&left),
        "the cookie expires in {left} s, the idle time is {idle} s"
    );

    // A restart between two visits keeps the session (the store is on disk or in Redis).
    let before = visits(c).await?;
    app.restart()?;
    c.goto(&app.url("/")).await?;
    assert_eq!(
        visits(c).await?,
        before + 1,
        "the session survived the restart"
    );

    // Log in and see the name; keep a screenshot of the signed-in page.
    log_in(c, "Ada").await?;
    assert_eq!(signed_in_as(c).await?.as_deref(), Some("Ada"));
    let shots = profile_dir()
        .parent()
        .map_or_else(PathBuf::new, Path::to_path_buf)
        .join("browser");
    std::fs::create_dir_all(&shots)?;
    std::fs::write(
        shots.join(format!("{}.png", test.replace("::", "-"))),
        c.screenshot().await?,
    )?;

    // A second tab shares the session.
    let first_tab = c.window().await?;
    let second_tab = c.new_window(true).await?.handle;
    open_signed_in(c, app, &second_tab, "Ada").await?;

    // Logging out in one tab signs the other out on reload.
    log_out(c).await?;
    c.switch_to_window(first_tab.clone()).await?;
    c.refresh().await?;
    assert_eq!(
        signed_in_as(c).await?,
        None,
        "the first tab is signed out after a reload"
    );

    // Back after logout does not show the signed-in page from before.
    log_in(c, "Grace").await?;
    assert_eq!(signed_in_as(c).await?.as_deref(), Some("Grace"));
    log_out(c).await?;
    c.back().await?;
    assert_eq!(
        signed_in_as(c).await?,
        None,
        "back after logout showed the signed-in page"
    );

    // A logout in one tab while a slow request that changes the session runs in another: the
    // slow response arrives last, and neither tab is signed in afterwards.
    c.goto(&app.url("/")).await?;
    log_in(c, "Lin").await?;
    let gate = unique_name("g");
    c.execute(
        "window.slow = fetch(arguments[0], {method: 'POST'}).then(r => r.status); return true;",
        vec![json!(format!("/api/held/{gate}/keys/late"))],
    )
    .await?;
    wait_until_held(app, &gate).await?;
    open_signed_in(c, app, &second_tab, "Lin").await?;
    log_out(c).await?;
    gate_client()?
        .post(app.url(&format!("/api/gates/{gate}/open")))
        .send()
        .await?
        .error_for_status()?;
    c.switch_to_window(first_tab.clone()).await?;
    let status = c
        .execute_async(
            "const done = arguments[arguments.length - 1]; window.slow.then(done, e => done(String(e)));",
            vec![],
        )
        .await?;
    assert!(
        status.as_u64().is_some_and(|s| s < 500),
        "the slow request gave {status}"
    );
    c.refresh().await?;
    assert_eq!(
        signed_in_as(c).await?,
        None,
        "the slow request signed the first tab back in after the logout"
    );
    c.switch_to_window(second_tab).await?;
    c.refresh().await?;
    assert_eq!(
        signed_in_as(c).await?,
        None,
        "the slow request signed the second tab back in after the logout"
    );
    Ok(())
}

/// Switches to `tab`, opens the home page there, and checks it is signed in as `name`.
async fn open_signed_in(
    c: &Client,
    app: &App,
    tab: &fantoccini::wd::WindowHandle,
    name: &str,
) -> TestResult {
    c.switch_to_window(tab.clone()).await?;
    c.goto(&app.url("/")).await?;
    assert_eq!(
        signed_in_as(c).await?.as_deref(),
        Some(name),
        "the second tab is signed in"
    );
    Ok(())
}

/// A plain HTTP client (no cookies) for the test gates.
fn gate_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder().build()
}

/// Returns once a request waits at `gate`.
async fn wait_until_held(app: &App, gate: &str) -> TestResult {
    let client = gate_client()?;
    let started = Instant::now();
    loop {
        let state: serde_json::Value = client
            .get(app.url(&format!("/api/gates/{gate}")))
            .send()
            .await?
            .json()
            .await?;
        if state["held"] == true {
            return Ok(());
        }
        if started.elapsed() > databank_demo::gate::MAX_HOLD {
            return Err(format!("the slow request never reached gate {gate}").into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn axum_disk() -> TestResult {
    scenario(Framework::Axum, "disk").await
}

#[tokio::test]
async fn axum_redis() -> TestResult {
    scenario(Framework::Axum, "redis").await
}

#[tokio::test]
async fn actix_disk() -> TestResult {
    scenario(Framework::Actix, "disk").await
}

#[tokio::test]
async fn actix_redis() -> TestResult {
    scenario(Framework::Actix, "redis").await
}
