//! `cargo xtask soak`: the example app under a bounded load from `wrk`, reporting memory at the
//! start and the end, error responses, and the live session count (kept bounded by expiry and
//! the cleanup task).
//!
//! On Redis (one server, `redis`, or a local cluster, `redis-cluster`) sessions live 2 s and
//! the cleanup task never runs within the soak (an owner who never purges): the Redis keys and
//! the expiry entries the bank keeps are sampled every 5 s on every master, and must stay flat
//! (the writes' sweep keeps them bounded).

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use databank_testservers::{cluster_nodes_of, free_port, which, RedisCluster, Server};

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

/// Per master: the bank's expiry entries (the sorted sets `soak:{session:<b>}:z`) and the keys.
const COUNT_LUA: &str = "local c, n = '0', 0 \
repeat local r = redis.call('SCAN', c, 'MATCH', ARGV[1], 'COUNT', 1000) c = r[1] \
for _, k in ipairs(r[2]) do n = n + redis.call('ZCARD', k) end until c == '0' \
return {n, redis.call('DBSIZE')}";

/// (expiry entries, keys) over the masters on these ports.
fn redis_counts(ports: &[u16]) -> (u64, u64) {
    // A cluster's masters as the first node that answers sees them; one server: itself.
    let masters: Vec<u16> = ports
        .iter()
        .map(|port| cluster_nodes_of(*port))
        .find(|nodes| !nodes.is_empty())
        .map(|nodes| {
            nodes
                .iter()
                .filter(|n| n.is_master())
                .map(|n| n.port)
                .collect()
        })
        .unwrap_or_else(|| ports.to_vec());
    let (mut entries, mut keys) = (0, 0);
    for port in masters {
        let Ok(out) = Command::new("redis-cli")
            .args([
                "-p",
                &port.to_string(),
                "EVAL",
                COUNT_LUA,
                "0",
                "soak:\\{*\\}:z",
            ])
            .output()
        else {
            continue;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let mut numbers = text.lines().filter_map(|l| l.trim().parse::<u64>().ok());
        entries += numbers.next().unwrap_or(0);
        keys += numbers.next().unwrap_or(0);
    }
    (entries, keys)
}

/// Samples [`redis_counts`] every 5 s until told to stop.
struct Sampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<(u64, u64)>>,
}

impl Sampler {
    fn start(ports: Vec<u16>) -> Sampler {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                samples.push(redis_counts(&ports));
                for _ in 0..50 {
                    if flag.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            samples
        });
        Sampler { stop, thread }
    }

    fn finish(self) -> Vec<(u64, u64)> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
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
    let (_redis, _cluster);
    let mut redis_ports = Vec::new();
    let url = match backend {
        "disk" => format!("disk://{}", dir.join("sessions").display()),
        "redis" => {
            let server = Server::redis(false)?;
            let url = format!("{}?prefix=soak", server.url());
            redis_ports.push(server.port());
            _redis = server;
            url
        }
        "redis-cluster" => {
            let cluster = RedisCluster::start(3, 1)?;
            let url = format!("{}&prefix=soak", cluster.url());
            redis_ports.extend(cluster.nodes().iter().map(Server::port));
            _cluster = cluster;
            url
        }
        other => return Err(format!("unknown soak backend {other}").into()),
    };
    // On Redis: 2 s sessions, no cleanup within the soak (see the module docs).
    let (idle, cleanup) = if redis_ports.is_empty() {
        ("30", "10")
    } else {
        ("2", "86400")
    };
    let port = free_port()?;
    let app = App(Command::new(binary)
        .env("DATABANK_URL", &url)
        .env("ADDR", format!("127.0.0.1:{port}"))
        .env("SESSION_IDLE_SECS", idle)
        .env("CLEANUP_SECS", cleanup)
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
    let sampler = (!redis_ports.is_empty()).then(|| Sampler::start(redis_ports.clone()));
    let report = wrk(&format!("{minutes}m"))?;
    let rss_end = rss_kib(app.0.id());
    let samples = sampler.map(Sampler::finish).unwrap_or_default();
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
    // Flat: the last samples no higher than the early ones allow (half again, plus room for
    // the sessions of a few seconds' traffic).
    let (mut flat, mut growth) = (true, String::from("-"));
    if let (Some(first), Some(last)) = (samples.get(1).or(samples.first()), samples.last()) {
        let max = samples.iter().map(|s| s.0).max().unwrap_or(0);
        flat = last.0 <= first.0 + first.0 / 2 + 1000 && last.1 <= first.1 + first.1 / 2 + 1000;
        growth = format!(
            "expiry entries {} -> {} (max {max}), keys {} -> {} ({} samples)",
            first.0,
            last.0,
            first.1,
            last.1,
            samples.len()
        );
    }
    let summary = format!(
        "| {backend} | {minutes} min | {requests} | {rate} | p99 {p99} | {non_2xx}; {errors} | RSS {} MiB -> {} MiB | sessions {live} | {growth} |",
        rss_start / 1024,
        rss_end / 1024
    );
    println!("{report}");
    println!("{summary}");
    let grew = rss_end > rss_start + rss_start / 2 + 10 * 1024 || !flat;
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
            "--backend" => backends.push(
                it.next()
                    .ok_or("--backend needs disk, redis or redis-cluster")?
                    .clone(),
            ),
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    if backends.is_empty() {
        backends = vec!["disk".into(), "redis".into(), "redis-cluster".into()];
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
    println!("\n| backend | length | requests | rate | latency | errors | memory | live sessions | Redis bookkeeping |\n|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    Ok(())
}
