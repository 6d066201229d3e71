//! Real database servers for tests, started as child processes on free loopback ports in a
//! private directory (under [`SERVERS_DIR_ENV`] when set, as `cargo xtask` sets it to
//! `target/servers`; else the system's temporary directory), stopped (and the directory
//! removed) on drop.
//!
//! Used by `cargo xtask` to provide the servers a test run needs, and by driver tests that must
//! stop and restart a server mid-run. Servers never touch the standard ports or a user's data.
//!
//! ```no_run
//! let mut redis = databank_testservers::Server::redis(true)?;
//! println!("{}", redis.url());
//! redis.stop();
//! redis.start()?; // same port, same data directory
//! # Ok::<(), String>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod cluster;
mod postgres;

pub use postgres::{postgres_bin_dir, POSTGRES_USER};

pub use cluster::{
    cluster_info, cluster_nodes, cluster_nodes_of, parse_cluster_nodes, ClusterNode, RedisCluster,
    NODE_TIMEOUT_MS,
};

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The variable naming the directory servers keep their files under (one private directory
/// each). `cargo xtask` sets it to `target/servers`; unset, the system's temporary directory.
pub const SERVERS_DIR_ENV: &str = "DATABANK_TEST_SERVERS_DIR";

/// How long a server may take to accept connections.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long [`Server::pause`] waits for every thread of the server to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits until every thread of `pid` is stopped, for at most [`STOP_TIMEOUT`].
fn wait_stopped(pid: u32) -> Result<(), String> {
    let deadline = Instant::now() + STOP_TIMEOUT;
    while !all_threads_stopped(pid)? {
        if Instant::now() >= deadline {
            return Err(format!(
                "pid {pid} did not stop within {STOP_TIMEOUT:?} of SIGSTOP"
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// Whether every thread of `pid` is in the stopped state (`T` in `/proc/PID/task/TID/stat`).
fn all_threads_stopped(pid: u32) -> Result<bool, String> {
    let tasks = format!("/proc/{pid}/task");
    let entries = fs::read_dir(&tasks).map_err(|e| format!("{tasks}: {e}"))?;
    let mut threads = 0;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{tasks}: {e}"))?;
        let stat = match fs::read_to_string(entry.path().join("stat")) {
            Ok(stat) => stat,
            // A thread that exited meanwhile is not running either.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("{}: {e}", entry.path().display())),
        };
        threads += 1;
        // The state follows the command name, which is in parentheses and may hold spaces.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        if state != Some("T") {
            return Ok(false);
        }
    }
    Ok(threads > 0)
}

/// A server process this crate started.
#[derive(Debug)]
pub struct Server {
    name: &'static str,
    port: u16,
    dir: PathBuf,
    program: PathBuf,
    args: Vec<String>,
    scheme_url: String,
    child: Option<Child>,
    keep: bool,
    /// The signal [`stop`](Server::stop) sends.
    stop_signal: &'static str,
    /// A program whose success tells the server is ready (`pg_isready`), instead of a
    /// connection to the port.
    ready_check: Option<PathBuf>,
}

impl Server {
    /// Starts `redis-server` from `PATH`. With `persistent`, an append-only file fsynced on every
    /// write keeps the data across [`stop`](Server::stop) and [`start`](Server::start).
    pub fn redis(persistent: bool) -> Result<Server, String> {
        Server::redis_with(persistent, &[], free_port()?)
    }

    /// Starts `redis-server` on `port` with `extra` arguments after the usual ones.
    fn redis_with(persistent: bool, extra: &[&str], port: u16) -> Result<Server, String> {
        let program = which("redis-server").ok_or(
            "redis-server is not on PATH (Debian: apt-get install redis-server), \
             or set DATABANK_TEST_REDIS_URL",
        )?;
        let dir = private_dir("redis")?;
        let mut args: Vec<String> = vec![
            "--port".into(),
            port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--dir".into(),
            dir.display().to_string(),
            "--save".into(),
            String::new(),
            "--daemonize".into(),
            "no".into(),
            "--protected-mode".into(),
            "yes".into(),
        ];
        args.extend(
            [
                "--appendonly",
                if persistent { "yes" } else { "no" },
                "--appendfsync",
                "always",
            ]
            .map(String::from),
        );
        args.extend(extra.iter().map(|a| a.to_string()));
        Server::launch(
            "redis",
            program,
            args,
            dir,
            port,
            format!("redis://127.0.0.1:{port}"),
        )
    }

    /// Starts the MongoDB-compatible SecantusDB with `python` (a venv's interpreter that has
    /// the `secantusdb` package). With `persistent`, data lives in the private directory and
    /// survives a restart; otherwise in memory.
    pub fn secantus(python: &Path, persistent: bool) -> Result<Server, String> {
        let port = free_port()?;
        let dir = private_dir("mongo")?;
        let storage = if persistent {
            dir.join("data").display().to_string()
        } else {
            ":memory:".into()
        };
        let args = vec![
            "-m".into(),
            "secantus".into(),
            "--port".into(),
            port.to_string(),
            "--storage-path".into(),
            storage,
        ];
        Server::launch(
            "mongo",
            python.to_path_buf(),
            args,
            dir,
            port,
            format!("mongodb://127.0.0.1:{port}"),
        )
    }

    /// Starts the Couchbase protocol test server (`program`, the `databank-couchbase-testserver`
    /// binary; it is not a Couchbase Server) on free ports: key-value and query. With
    /// `persistent`, its data is also kept in the private directory and survives a restart (on
    /// the same ports); otherwise it lives in memory.
    pub fn couchbase_protocol(program: &Path, persistent: bool) -> Result<Server, String> {
        let port = free_port()?;
        let query_port = free_port()?;
        let dir = private_dir("couchbase")?;
        let mut args = vec![
            "--kv-port".into(),
            port.to_string(),
            "--query-port".into(),
            query_port.to_string(),
            "--bucket".into(),
            "databank".into(),
            "--user".into(),
            "Administrator".into(),
            "--password".into(),
            "password".into(),
        ];
        if persistent {
            args.push("--data-file".into());
            args.push(dir.join("bucket.json").display().to_string());
        }
        Server::launch(
            "couchbase",
            program.to_path_buf(),
            args,
            dir,
            port,
            format!("couchbase://Administrator:password@127.0.0.1:{port}/databank"),
        )
    }

    fn launch(
        name: &'static str,
        program: PathBuf,
        args: Vec<String>,
        dir: PathBuf,
        port: u16,
        scheme_url: String,
    ) -> Result<Server, String> {
        let mut server = Server::new(name, program, args, dir, port, scheme_url);
        server.start()?;
        Ok(server)
    }

    fn new(
        name: &'static str,
        program: PathBuf,
        args: Vec<String>,
        dir: PathBuf,
        port: u16,
        scheme_url: String,
    ) -> Server {
        Server {
            name,
            port,
            dir,
            program,
            args,
            scheme_url,
            child: None,
            keep: false,
            stop_signal: "-TERM",
            ready_check: None,
        }
    }

    /// The URL clients connect to.
    pub fn url(&self) -> &str {
        &self.scheme_url
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the server (again) on its port and waits until it answers.
    pub fn start(&mut self) -> Result<(), String> {
        if self.child.is_some() {
            return Ok(());
        }
        let log_path = self.dir.join("server.log");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        let err_log = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.program.display()))?;
        self.child = Some(child);
        if let Err(e) = self.wait_ready() {
            let tail = fs::read_to_string(&log_path).unwrap_or_default();
            let tail: String = tail
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            self.stop();
            return Err(format!(
                "{} did not become ready: {e}\n--- its log ---\n{tail}",
                self.name
            ));
        }
        Ok(())
    }

    /// Freezes the server (SIGSTOP): connections stay open and requests are accepted by the
    /// kernel but never answered, as with a hung server. [`resume`](Server::resume) undoes it.
    ///
    /// Returns once every thread of the server is stopped: `kill` only queues the signal, and
    /// until the group stop reaches a thread that thread can still answer a request that
    /// wakes it (seen on a busy machine as a reply from a "paused" server).
    pub fn pause(&self) -> Result<(), String> {
        self.signal("-STOP")?;
        let pid = self.pid().ok_or("the server is not running")?;
        wait_stopped(pid).map_err(|e| format!("{}: {e}", self.name))
    }

    /// Lets a [`pause`](Server::pause)d server run again (SIGCONT).
    pub fn resume(&self) -> Result<(), String> {
        self.signal("-CONT")
    }

    fn signal(&self, signal: &str) -> Result<(), String> {
        let pid = self.pid().ok_or("the server is not running")?;
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .map_err(|e| format!("kill {signal} {pid}: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("kill {signal} {pid}: {status}"))
        }
    }

    /// Stops the server as an operator would (SIGTERM, so it can flush its data; SIGINT, a
    /// fast shutdown, for PostgreSQL), killing it if it has not exited within 10 s, and waits
    /// for it. Its data directory stays.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let asked = Command::new("kill")
            .args([self.stop_signal, &child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        while asked && Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Kills the server at once (SIGKILL), as a crash would, and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Leaves the server running and its directory in place when this value is dropped
    /// (for `cargo xtask services up`).
    pub fn detach(mut self) -> u32 {
        self.keep = true;
        self.pid().unwrap_or(0)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("it exited with {status}"));
                }
            }
            if self.answers() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no answer on port {} within {READY_TIMEOUT:?}",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn answers(&self) -> bool {
        if let Some(check) = &self.ready_check {
            return Command::new(check)
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
        }
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        if self.name != "redis" {
            return true;
        }
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut reply = [0u8; 16];
        stream.write_all(b"PING\r\n").is_ok()
            && stream
                .read(&mut reply)
                .is_ok_and(|n| reply[..n].starts_with(b"+PONG"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        self.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The path of a program on `PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}

/// A loopback port nothing listens on right now, and that this process has not handed out
/// before (the OS may offer a port again as soon as it is released: two servers started at once
/// in one test process must not get the same one).
pub fn free_port() -> Result<u16, String> {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    for _ in 0..64 {
        let port = TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| format!("no free port: {e}"))?;
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return Ok(port);
        }
    }
    Err("no free port this process had not handed out already".into())
}

/// The directory private directories are made in.
fn servers_dir() -> PathBuf {
    std::env::var_os(SERVERS_DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

fn private_dir(name: &str) -> Result<PathBuf, String> {
    private_dir_in(&servers_dir(), name)
}

fn private_dir_in(parent: &Path, name: &str) -> Result<PathBuf, String> {
    let base = parent.join(format!(
        "databank-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    fs::create_dir_all(&base).map_err(|e| format!("{}: {e}", base.display()))?;
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(pid: u32, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {pid}: {status}");
    }

    #[test]
    fn a_stopped_process_is_seen_stopped_and_a_resumed_one_is_not() {
        let mut child = Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("sleep starts");
        let pid = child.id();
        assert_eq!(
            all_threads_stopped(pid),
            Ok(false),
            "sleep is not stopped yet"
        );
        signal(pid, "-STOP");
        assert_eq!(wait_stopped(pid), Ok(()));
        assert_eq!(all_threads_stopped(pid), Ok(true));
        signal(pid, "-CONT");
        let deadline = Instant::now() + Duration::from_secs(30);
        while all_threads_stopped(pid) == Ok(true) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(all_threads_stopped(pid), Ok(false), "SIGCONT resumes it");
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            all_threads_stopped(pid).is_err(),
            "a reaped process has no threads"
        );
    }
}
