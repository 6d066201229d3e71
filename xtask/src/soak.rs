//! `cargo xtask soak`: the example app under a bounded load from `wrk`, reporting memory at the
//! start and the end, error responses, and the live session count (kept bounded by expiry and
//! the cleanup task).

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use databank_testservers::{free_port, which, Server};

use crate::Error;

/// Keeps one session per wrk thread, starting a new one every 200 requests, so each request
/// reads and writes a session and old sessions are left to expire.
const SCRIPT: &str = r#"
local cookie = nil
local count = 0
request = function()
  count = count + 1
  if count % 200 == 0 then cookie = nil end
  local headers = {}
  if cookie then headers["Cookie"] = cookie end
  return wrk.format("GET", "/api/state", headers)
end
response = function(status, headers, body)
  local set = headers["Set-Cookie"] or headers["set-cookie"]
  if set then cookie = string.match(set, "^[^;]+") end
end
"#;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| {
                    l.strip_prefix("VmRSS:")
                        .map(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                })
                .flatten()
        })
        .unwrap_or(0)
}

fn get(port: u16, path: &str) -> Result<String, Error> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

struct App(Child);
impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn soak(backend: &str, minutes: u64, binary: &std::path::Path) -> Result<String, Error> {
    let dir = std::env::temp_dir().join(format!("databank-soak-{}", std::process::id()));
    let _redis;
    let url = match backend {
        "disk" => format!("disk://{}", dir.join("sessions").display()),
        "redis" => {
            let server = Server::redis(false)?;
            let url = format!("{}?prefix=soak", server.url());
            _redis = server;
            url
        }
        other => return Err(format!("unknown soak backend {other}").into()),
    };
    let port = free_port()?;
    let app = App(Command::new(binary)
        .env("DATABANK_URL", &url)
        .env("ADDR", format!("127.0.0.1:{port}"))
        .env("SESSION_IDLE_SECS", "30")
        .env("CLEANUP_SECS", "10")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()?);
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(port, "/api/sessions").is_err() {
        if Instant::now() > deadline {
            return Err("the app did not start".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let script = crate::root().join("target").join("xtask").join("soak.lua");
    std::fs::write(&script, SCRIPT)?;
    let wrk = |duration: &str| -> Result<String, Error> {
        let out = Command::new("wrk")
            .args(["-t2", "-c16", "-d", duration, "--latency", "-s"])
            .arg(&script)
            .arg(format!("http://127.0.0.1:{port}/"))
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    wrk("20s")?; // warm up: caches, pools, first sessions
    let rss_start = rss_kib(app.0.id());
    let report = wrk(&format!("{minutes}m"))?;
    let rss_end = rss_kib(app.0.id());
    let sessions = get(port, "/api/sessions")?;
    let live = sessions
        .rsplit("\r\n\r\n")
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let _ = std::fs::remove_dir_all(&dir);
    let requests = report
        .lines()
        .find(|l| l.contains("requests in"))
        .unwrap_or("")
        .trim()
        .to_string();
    let non_2xx = report
        .lines()
        .find(|l| l.contains("Non-2xx"))
        .map(str::trim)
        .unwrap_or("Non-2xx or 3xx responses: 0")
        .to_string();
    let errors = report
        .lines()
        .find(|l| l.contains("Socket errors"))
        .map(str::trim)
        .unwrap_or("Socket errors: none")
        .to_string();
    let rate = report
        .lines()
        .find(|l| l.starts_with("Requests/sec"))
        .unwrap_or("")
        .trim()
        .to_string();
    let p99 = report
        .lines()
        .find(|l| l.trim_start().starts_with("99%"))
        .unwrap_or("")
        .trim()
        .to_string();
    let summary = format!(
        "| {backend} | {minutes} min | {requests} | {rate} | p99 {p99} | {non_2xx}; {errors} | RSS {} MiB -> {} MiB | sessions {live} |",
        rss_start / 1024,
        rss_end / 1024
    );
    println!("{report}");
    println!("{summary}");
    let grew = rss_end > rss_start + rss_start / 2 + 10 * 1024;
    if non_2xx.contains(':') && !non_2xx.ends_with(": 0") || errors.contains("timeout") || grew {
        return Err(format!("soak on {backend} failed: {summary}").into());
    }
    Ok(summary)
}

/// `cargo xtask soak [--minutes N] [--backend disk|redis]` (default: 20 minutes on each).
pub fn command(args: &[String]) -> Result<(), Error> {
    let mut minutes = 20;
    let mut backends = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--minutes" => {
                minutes = it
                    .next()
                    .and_then(|m| m.parse().ok())
                    .ok_or("--minutes needs a number")?
            }
            "--backend" => backends.push(it.next().ok_or("--backend needs disk or redis")?.clone()),
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    if backends.is_empty() {
        backends = vec!["disk".into(), "redis".into()];
    }
    if which("wrk").is_none() {
        return Err("wrk is not installed (Debian: apt-get install wrk)".into());
    }
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "-p",
            "databank-demo",
            "--example",
            "axum_app",
        ])
        .status()?;
    if !status.success() {
        return Err("building the example failed".into());
    }
    let binary = crate::root()
        .join("target")
        .join("release")
        .join("examples")
        .join("axum_app");
    let mut rows = Vec::new();
    for backend in &backends {
        rows.push(soak(backend, minutes, &binary)?);
    }
    println!("\n| backend | length | requests | rate | latency | errors | memory | live sessions |\n|---|---|---|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    Ok(())
}
