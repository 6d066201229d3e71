//! Section 4: an axum app, a session read and write per request, under `wrk`: on our store
//! (tower-sessions 0.15) and on tower-sessions-redis-store (tower-sessions 0.14), same Redis;
//! one app process, and two app processes on the same sessions.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::Path;

use databank_bench::{median, unique, Error, Mode, Section, Stats};
use databank_session_store::DatabankStore;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The app: `GET /` reads `visits` from the session, adds one, and writes it back.
macro_rules! app {
    ($ts:ident, $store:expr) => {{
        use $ts::{Expiry, Session, SessionManagerLayer};
        async fn visit(session: Session) -> (axum::http::StatusCode, String) {
            let visits: u64 = match session.get::<u64>("visits").await {
                Ok(v) => v.unwrap_or(0) + 1,
                Err(e) => return (axum::http::StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            };
            match session.insert("visits", visits).await {
                Ok(()) => (axum::http::StatusCode::OK, visits.to_string()),
                Err(e) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            }
        }
        let layer = SessionManagerLayer::new($store)
            .with_secure(false)
            .with_expiry(Expiry::OnInactivity(time::Duration::hours(1)));
        axum::Router::new()
            .route("/", axum::routing::get(visit))
            .layer(layer)
    }};
}

/// What one `wrk` run printed.
#[derive(Debug, Clone, Copy, Default)]
struct WrkRun {
    stats: Stats,
    errors: u64,
}

/// Which store an app process serves its sessions from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Store {
    Ours,
    Anchor,
}

impl Store {
    fn flag(self) -> &'static str {
        match self {
            Store::Ours => "ours",
            Store::Anchor => "anchor",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Store::Ours => "databank-session-store (tower-sessions 0.15)",
            Store::Anchor => "tower-sessions-redis-store 0.16 (fred)",
        }
    }
}

/// `--serve-e2e ours|anchor URL`: this binary as one app process (what section 4 starts
/// once or twice per store): serves the app on a free port, prints `listening <addr>`, and
/// serves until its standard input closes (the benchmark ends or dies).
pub async fn serve_process(which: &str, url: &str) -> Result<(), Error> {
    let app = match which {
        "ours" => app!(tower_sessions, DatabankStore::open(url).await?),
        "anchor" => app!(tower_sessions_14, crate::fred_store(url).await?),
        other => return Err(format!("--serve-e2e takes ours or anchor, not {other}").into()),
    };
    let addr = serve(app).await?;
    println!("listening {addr}");
    let mut stdin = tokio::io::stdin();
    let mut sink = Vec::new();
    // Returns at end of input: the parent closed it or is gone.
    let _ = stdin.read_to_end(&mut sink).await;
    Ok(())
}

/// One app process started by [`serve_process`]; killed when dropped.
struct AppProcess {
    addr: SocketAddr,
    _child: tokio::process::Child,
}

async fn start_process(store: Store, url: &str) -> Result<AppProcess, Error> {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["--serve-e2e", store.flag(), url])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or("no stdout from the app process")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
        .await
        .map_err(|_| "the app process did not start within 60 s")??
        .ok_or("the app process ended before it listened")?;
    let addr = line
        .strip_prefix("listening ")
        .ok_or_else(|| format!("unexpected line from the app process: {line}"))?
        .parse()?;
    Ok(AppProcess {
        addr,
        _child: child,
    })
}

pub async fn run(mode: Mode, redis: &str) -> Result<Section, Error> {
    let secs = mode.pick(10, 2);
    let sessions = mode.pick(500, 50);
    let reps = mode.pick(3, 1);
    let mut section = Section::new(
        "4. End to end: axum app under wrk, sessions on Redis",
        &[
            "shape",
            "store",
            "requests/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "ratio (ours ÷ anchor)",
            "target",
            "met",
        ],
    );
    section.note(format!(
        "`GET /` reads a counter from the session and writes it back (tower-sessions' \
         `SessionManagerLayer`, cookie sessions), over {sessions} sessions made beforehand, each \
         request on one of them at random. **one process**: one app process under \
         `wrk -t2 -c32 -d{secs}s`. **two processes**: the same app started twice on two ports \
         over the same Redis, and two `wrk -t1 -c16 -d{secs}s` side by side, one per process, on \
         the same cookies, so every session is served by both (a balancer without sticky \
         sessions); requests/s is the two runs' sum, latencies the slower run's. Ours on \
         tower-sessions 0.15, the anchor on tower-sessions 0.14 (what \
         tower-sessions-redis-store 0.16 supports). The stores take turns, each first in every \
         other repetition ({reps} repetitions, medians). wrk, the apps and Redis share the \
         machine's 2 cores."
    ));
    let sep = if redis.contains('?') { '&' } else { '?' };
    let ours_url = format!("{redis}{sep}prefix={}", unique("e2e"));
    let dir = std::env::current_dir()?.join("target").join("bench");
    std::fs::create_dir_all(&dir)?;
    for processes in [1usize, 2] {
        let shape = if processes == 1 {
            "one process"
        } else {
            "two processes"
        };
        let mut started = Vec::new();
        for store in [Store::Ours, Store::Anchor] {
            let url = if store == Store::Ours {
                &ours_url
            } else {
                redis
            };
            let mut apps = Vec::new();
            for _ in 0..processes {
                apps.push(start_process(store, url).await?);
            }
            let script = script(&dir, store.flag(), apps[0].addr, sessions).await?;
            started.push((store, apps, script));
        }
        let mut runs: Vec<Vec<WrkRun>> = vec![Vec::new(), Vec::new()];
        for rep in 0..reps {
            let order = if rep % 2 == 0 { [0, 1] } else { [1, 0] };
            for n in order {
                let (_, apps, script) = &started[n];
                runs[n].push(wrk_side_by_side(apps, script, secs).await?);
            }
        }
        let pick = |runs: &[WrkRun]| {
            let m = median(runs.iter().map(|r| r.stats).collect());
            let errors: u64 = runs.iter().map(|r| r.errors).sum();
            (m, errors)
        };
        let (ours, _) = pick(&runs[0]);
        let (anchor, _) = pick(&runs[1]);
        let ratio = ours.per_sec / anchor.per_sec.max(f64::MIN_POSITIVE);
        for ((store, _, _), runs) in started.iter().zip(&runs) {
            let (s, errors) = pick(runs);
            let is_ours = *store == Store::Ours;
            section.row(vec![
                ("shape", json!(shape)),
                ("store", json!(store.name())),
                ("requests/s", json!(s.per_sec)),
                ("p50 ms", json!(s.p50_us / 1000.0)),
                ("p99 ms", json!(s.p99_us / 1000.0)),
                ("errors", json!(errors)),
                (
                    "ratio (ours ÷ anchor)",
                    if is_ours { json!(ratio) } else { json!(null) },
                ),
                (
                    "target",
                    if is_ours {
                        json!("≥ 1.0")
                    } else {
                        json!(null)
                    },
                ),
                (
                    "met",
                    if is_ours {
                        json!(ratio >= 1.0)
                    } else {
                        json!(null)
                    },
                ),
            ]);
        }
    }
    Ok(section)
}

/// One `wrk` run per app process, all at once (32 connections in all); their requests/s
/// summed, latencies and run length from the slowest.
async fn wrk_side_by_side(apps: &[AppProcess], script: &Path, secs: u64) -> Result<WrkRun, Error> {
    let (threads, connections) = if apps.len() == 1 { (2, 32) } else { (1, 16) };
    let runs = futures_util::future::try_join_all(
        apps.iter()
            .map(|app| wrk(app.addr, script, secs, threads, connections)),
    )
    .await?;
    let mut total = WrkRun::default();
    for run in runs {
        total.stats.per_sec += run.stats.per_sec;
        total.stats.ops += run.stats.ops;
        total.stats.p50_us = total.stats.p50_us.max(run.stats.p50_us);
        total.stats.p99_us = total.stats.p99_us.max(run.stats.p99_us);
        total.stats.secs = total.stats.secs.max(run.stats.secs);
        total.errors += run.errors;
    }
    Ok(total)
}

async fn serve(app: axum::Router) -> Result<SocketAddr, Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(axum::serve(listener, app).into_future());
    Ok(addr)
}

/// Makes `sessions` sessions with plain requests and writes a wrk script that spreads requests
/// over their cookies at random.
async fn script(
    dir: &Path,
    name: &str,
    addr: SocketAddr,
    sessions: usize,
) -> Result<std::path::PathBuf, Error> {
    let mut cookies = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        cookies.push(new_session_cookie(addr).await?);
    }
    let table: Vec<String> = cookies.iter().map(|c| format!("{c:?}")).collect();
    let lua = format!(
        "local cookies = {{{}}}\n\
         init = function(args) math.randomseed(os.time() + math.floor(os.clock() * 1000000)) end\n\
         request = function()\n  \
           return wrk.format(\"GET\", \"/\", {{[\"Cookie\"] = cookies[math.random(#cookies)]}})\n\
         end\n",
        table.join(",")
    );
    let path = dir.join(format!("e2e-{name}.lua"));
    std::fs::write(&path, lua)?;
    Ok(path)
}

/// One request without a cookie; returns the `name=value` of the cookie it set.
async fn new_session_cookie(addr: SocketAddr) -> Result<String, Error> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    response
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("set-cookie")
                .then(|| value.trim().split(';').next().unwrap_or("").to_string())
        })
        .ok_or_else(|| format!("no session cookie in: {response}").into())
}

async fn wrk(
    addr: SocketAddr,
    script: &Path,
    secs: u64,
    threads: usize,
    connections: usize,
) -> Result<WrkRun, Error> {
    let out = tokio::process::Command::new("wrk")
        .args([
            &format!("-t{threads}"),
            &format!("-c{connections}"),
            &format!("-d{secs}s"),
            "--latency",
            "-s",
        ])
        .arg(script)
        .arg(format!("http://{addr}/"))
        .output()
        .await
        .map_err(|e| format!("wrk could not run ({e}); Debian: apt-get install wrk"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr)).into());
    }
    parse_wrk(&text, secs).ok_or_else(|| format!("could not read wrk's output: {text}").into())
}

fn parse_wrk(text: &str, secs: u64) -> Option<WrkRun> {
    let mut run = WrkRun::default();
    let lat = |line: &str| line.split_whitespace().nth(1).and_then(duration_us);
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Requests/sec:") {
            run.stats.per_sec = rest.trim().parse().ok()?;
        } else if line.starts_with("50%") {
            run.stats.p50_us = lat(line)?;
        } else if line.starts_with("99%") {
            run.stats.p99_us = lat(line)?;
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            run.errors += rest.trim().parse::<u64>().ok()?;
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            run.errors += rest
                .split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum::<u64>();
        } else if line.contains("requests in") {
            run.stats.ops = line.split_whitespace().next()?.parse().ok()?;
        }
    }
    run.stats.secs = secs as f64;
    (run.stats.per_sec > 0.0).then_some(run)
}

/// `512.00us`, `1.23ms`, `2.00s` in microseconds.
fn duration_us(text: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1_000.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1_000_000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_output() {
        let text = "Running 2s test @ http://127.0.0.1:1/\n  Latency Distribution\n     50%  812.00us\n     75%    1.02ms\n     99%    4.10ms\n  9999 requests in 2.00s, 1.2MB read\n  Socket errors: connect 0, read 1, write 0, timeout 2\n  Non-2xx or 3xx responses: 3\nRequests/sec:   4999.50\n";
        let run = parse_wrk(text, 2).expect("parsed");
        assert_eq!(run.stats.per_sec, 4999.5);
        assert_eq!(run.stats.p50_us, 812.0);
        assert_eq!(run.stats.p99_us, 4100.0);
        assert_eq!(run.stats.ops, 9999);
        assert_eq!(run.errors, 6);
    }
}
