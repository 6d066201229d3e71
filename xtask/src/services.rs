//! The databases a test run needs: from the environment, Docker, or a local child process.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use databank_testservers::Server;

use crate::docker;
use crate::Error;

/// A database the test suites may need.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub name: &'static str,
    /// The variable that carries its URL to the tests (and that a user may set to bring one).
    pub env: &'static str,
    /// The packages whose tests need it.
    pub packages: &'static [&'static str],
    image: &'static str,
    container_port: u16,
    scheme: &'static str,
    /// Whether `CI=true` fails the run when this server cannot be had.
    pub required_in_ci: bool,
    /// When set, a missing server leaves out only the tests whose names contain this (with
    /// `--skip`), rather than the packages' whole test suites.
    pub skip_filter: Option<&'static str>,
}

pub const SPECS: [Spec; 5] = [
    Spec {
        name: "redis",
        env: "DATABANK_TEST_REDIS_URL",
        packages: &["databank-redis", "databank-session-store", "databank-demo"],
        image: "redis:7",
        container_port: 6379,
        scheme: "redis",
        required_in_ci: true,
        skip_filter: None,
    },
    // A local Redis Cluster (3 masters, 3 replicas of Debian's redis-server): the Redis kit,
    // the session-store suite and the axum demo's HTTP suite again, in the tests named
    // `redis_cluster::`.
    Spec {
        name: "redis-cluster",
        env: "DATABANK_TEST_REDIS_CLUSTER_URL",
        packages: &["databank-redis", "databank-session-store", "databank-demo"],
        image: "",
        container_port: 0,
        scheme: "redis-cluster",
        required_in_ci: true,
        skip_filter: Some("redis_cluster::"),
    },
    Spec {
        name: "mongo",
        env: "DATABANK_TEST_MONGO_URL",
        packages: &["databank-mongo", "databank-session-store", "databank-demo"],
        image: "mongo:7",
        container_port: 27017,
        scheme: "mongodb",
        required_in_ci: true,
        skip_filter: None,
    },
    // Debian's PostgreSQL (`initdb` and `postgres` from the `postgresql` package), a cluster of
    // our own on a free port; the databank-sql tests that need no server (SQLite) run without
    // it, so a missing one leaves out only the tests named `postgres::`.
    Spec {
        name: "postgres",
        env: "DATABANK_TEST_POSTGRES_URL",
        packages: &["databank-sql", "databank-session-store", "databank-demo"],
        image: "",
        container_port: 0,
        scheme: "postgres",
        required_in_ci: true,
        skip_filter: Some("postgres::"),
    },
    // No Couchbase Server runs on the machines CI uses (no Docker engine, no package): there the
    // suites run against the Couchbase protocol test server (`couchbase-testserver`), and the
    // summary says so.
    Spec {
        name: "couchbase",
        env: "DATABANK_TEST_COUCHBASE_URL",
        packages: &["databank-couchbase", "databank-session-store"],
        image: crate::couchbase::IMAGE,
        container_port: 8091,
        scheme: "couchbase",
        required_in_ci: true,
        skip_filter: Some("couchbase_server::"),
    },
];

/// The variable that tells tests what serves MongoDB: `secantus` (the slow test server) or `mongo`.
pub const MONGO_KIND_ENV: &str = "DATABANK_TEST_MONGO_KIND";

/// The variable that tells tests which Python runs SecantusDB (for tests that start their own).
pub const MONGO_PYTHON_ENV: &str = "DATABANK_TEST_MONGO_PYTHON";

/// What a test run got for one database.
#[derive(Debug)]
pub struct Provided {
    pub spec: Spec,
    /// The URL tests use, or why there is none.
    pub url: Result<String, String>,
    /// Where it came from, for the summary.
    pub source: String,
    guard: Option<Guard>,
}

#[derive(Debug)]
enum Guard {
    Local(Server),
    Cluster(databank_testservers::RedisCluster),
    Docker(docker::Container),
}

impl Provided {
    /// Keeps the server running after xtask exits; returns a line for the services file.
    fn detach(mut self) -> Option<String> {
        match self.guard.take()? {
            Guard::Local(server) => Some(format!("pid {}", server.detach())),
            Guard::Cluster(cluster) => {
                let pids: Vec<String> = cluster.detach().iter().map(u32::to_string).collect();
                Some(format!("pid {}", pids.join(",")))
            }
            Guard::Docker(container) => {
                let line = format!("docker {}", container.0);
                std::mem::forget(container);
                Some(line)
            }
        }
    }
}

/// Finds or starts one database: its URL variable, then Docker, then a local server.
pub fn provide(spec: Spec) -> Provided {
    if let Ok(url) = std::env::var(spec.env) {
        if !url.is_empty() {
            return Provided {
                spec,
                url: Ok(url),
                source: format!("${}", spec.env),
                guard: None,
            };
        }
    }
    if spec.name == "postgres" {
        // Started locally even where Docker runs: the package's server is a real PostgreSQL,
        // and starts faster than an image is pulled.
        return match Server::postgres(false) {
            Ok(server) => Provided {
                spec,
                url: Ok(server.url().to_owned()),
                source: "local PostgreSQL (initdb in a private directory)".into(),
                guard: Some(Guard::Local(server)),
            },
            Err(why) => Provided {
                spec,
                url: Err(why),
                source: "none".into(),
                guard: None,
            },
        };
    }
    if spec.name == "redis-cluster" {
        // Started locally even where Docker runs: a cluster's nodes announce addresses its
        // clients must reach, which port mapping hides.
        return match databank_testservers::RedisCluster::start(3, 1) {
            Ok(cluster) => Provided {
                spec,
                url: Ok(cluster.url()),
                source: "local Redis Cluster (3 masters, 3 replicas)".into(),
                guard: Some(Guard::Cluster(cluster)),
            },
            Err(why) => Provided {
                spec,
                url: Err(why),
                source: "none".into(),
                guard: None,
            },
        };
    }
    if docker::available() {
        let started = if spec.name == "couchbase" {
            crate::couchbase::docker_run()
        } else {
            docker_run(spec)
        };
        match started {
            Ok((url, id)) => {
                return Provided {
                    spec,
                    url: Ok(url),
                    source: format!("docker {}", spec.image),
                    guard: Some(Guard::Docker(docker::Container(id))),
                }
            }
            Err(e) => eprintln!(
                "xtask: docker could not start {}: {e}; trying a local server",
                spec.image
            ),
        }
    }
    let local = match spec.name {
        "redis" => Server::redis(false).map(|s| (s, "local redis-server".to_string())),
        "couchbase" => couchbase_test_server().map(|s| (s, TEST_SERVER.to_string())),
        _ => secantus_python()
            .and_then(|python| Server::secantus(&python, false))
            .map(|s| (s, "local SecantusDB".to_string())),
    };
    match local {
        Ok((server, source)) => Provided {
            spec,
            url: Ok(server.url().to_owned()),
            source,
            guard: Some(Guard::Local(server)),
        },
        Err(why) => Provided {
            spec,
            url: Err(why),
            source: "none".into(),
            guard: None,
        },
    }
}

/// How the summary names the Couchbase protocol test server: never a Couchbase Server.
pub const TEST_SERVER: &str = "Couchbase protocol test server, not a Couchbase Server";

/// Builds the Couchbase protocol test server; the path of its binary.
pub fn couchbase_test_server_bin() -> Result<PathBuf, String> {
    let built = Command::new(crate::cargo())
        .args([
            "build",
            "--quiet",
            "--package",
            "databank-couchbase-testserver",
        ])
        .current_dir(crate::root())
        .status()
        .map_err(|e| format!("cargo build of the Couchbase test server: {e}"))?;
    if !built.success() {
        return Err(format!(
            "{}; and the Couchbase protocol test server did not build",
            crate::couchbase::UNAVAILABLE
        ));
    }
    Ok(crate::target_dir()
        .join("debug")
        .join("databank-couchbase-testserver"))
}

/// The variable naming that binary for the tests that start it themselves (fault tests).
pub const TEST_SERVER_BIN_ENV: &str = "DATABANK_TEST_COUCHBASE_TESTSERVER";

/// Builds and starts the Couchbase protocol test server.
fn couchbase_test_server() -> Result<Server, String> {
    Server::couchbase_protocol(&couchbase_test_server_bin()?, false)
}

/// The venv Python that has SecantusDB, installing it under `target/xtask/venv` if needed.
pub fn secantus_python() -> Result<PathBuf, String> {
    let venv = crate::root().join("target").join("xtask").join("venv");
    let python = venv.join("bin").join("python");
    let has_it = |python: &PathBuf| {
        Command::new(python)
            .args(["-c", "import secantus"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if has_it(&python) {
        return Ok(python);
    }
    let python3 = databank_testservers::which("python3").ok_or(
        "python3 is not on PATH; SecantusDB (the MongoDB-compatible test server) needs it",
    )?;
    eprintln!("xtask: installing SecantusDB into {}", venv.display());
    let made = Command::new(python3)
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .map_err(|e| e.to_string())?;
    if !made.success() {
        return Err("python3 -m venv failed (Debian: apt-get install python3-venv)".into());
    }
    let pip = Command::new(venv.join("bin").join("pip"))
        .args(["install", "--quiet", "secantusdb"])
        .status()
        .map_err(|e| e.to_string())?;
    if !pip.success() || !has_it(&python) {
        return Err("pip install secantusdb failed; see the output above".into());
    }
    Ok(python)
}

fn docker_run(spec: Spec) -> Result<(String, String), Error> {
    let out = Command::new("docker")
        .args(["run", "-d", "--rm", "-p"])
        .arg(format!("127.0.0.1::{}", spec.container_port))
        .arg(spec.image)
        .output()?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr)
            .trim()
            .to_string()
            .into());
    }
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let port_out = Command::new("docker")
        .args(["port", id.as_str(), &format!("{}/tcp", spec.container_port)])
        .output()?;
    let mapping = String::from_utf8_lossy(&port_out.stdout);
    let port: u16 = mapping
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
        .ok_or_else(|| format!("docker port gave {mapping:?}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            let _ = Command::new("docker")
                .args(["rm", "-f", id.as_str()])
                .status();
            return Err(format!("{} did not listen within 60 s", spec.image).into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok((format!("{}://127.0.0.1:{port}", spec.scheme), id))
}

fn state_file() -> PathBuf {
    crate::root()
        .join("target")
        .join("xtask")
        .join("services.txt")
}

/// `cargo xtask services up|down|status [names]`.
pub fn command(args: &[String]) -> Result<(), Error> {
    let wanted: Vec<Spec> = SPECS
        .into_iter()
        .filter(|s| args.len() < 2 || args[1..].iter().any(|a| a == s.name))
        .collect();
    match args.first().map(String::as_str) {
        Some("up") => {
            let mut lines = Vec::new();
            for spec in wanted {
                let provided = provide(spec);
                match &provided.url {
                    Ok(url) => {
                        println!("{}={url}    # {}", spec.env, provided.source);
                        let url = url.clone();
                        if let Some(handle) = provided.detach() {
                            lines.push(format!("{} {} {url} {handle}", spec.name, spec.env));
                        }
                    }
                    Err(why) => println!("# {}: not available: {why}", spec.name),
                }
            }
            if let Some(dir) = state_file().parent() {
                fs::create_dir_all(dir)?;
            }
            let mut old = fs::read_to_string(state_file()).unwrap_or_default();
            for line in lines {
                old.push_str(&line);
                old.push('\n');
            }
            fs::write(state_file(), old)?;
            println!(
                "# export these lines, then `cargo test`; `cargo xtask services down` stops them"
            );
            Ok(())
        }
        Some("down") => {
            let state = fs::read_to_string(state_file()).unwrap_or_default();
            for line in state.lines() {
                let parts: Vec<&str> = line.split(' ').collect();
                match parts.as_slice() {
                    [name, _, _, "pid", pids] => {
                        for pid in pids.split(',') {
                            let _ = Command::new("kill").arg(pid).status();
                        }
                        println!("stopped {name} (pid {pids})");
                    }
                    [name, _, _, "docker", id] => {
                        let _ = Command::new("docker").args(["rm", "-f", id]).status();
                        println!("stopped {name} (container {id})");
                    }
                    _ => {}
                }
            }
            let _ = fs::remove_file(state_file());
            Ok(())
        }
        Some("status") => {
            let state = fs::read_to_string(state_file()).unwrap_or_default();
            if state.trim().is_empty() {
                println!("no services started by `cargo xtask services up`");
            }
            for line in state.lines() {
                let parts: Vec<&str> = line.split(' ').collect();
                if let [name, env, url, how, handle] = parts.as_slice() {
                    let alive = match *how {
                        "pid" => handle
                            .split(',')
                            .all(|pid| PathBuf::from(format!("/proc/{pid}")).exists()),
                        _ => true,
                    };
                    let state = if alive { "running" } else { "gone" };
                    println!("{name:<6} {state:<8} {env}={url} ({how} {handle})");
                }
            }
            Ok(())
        }
        _ => Err("usage: cargo xtask services up|down|status [redis] [redis-cluster] [mongo] [postgres] [couchbase]".into()),
    }
}
