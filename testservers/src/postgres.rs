//! A PostgreSQL cluster of our own: `initdb` into the private directory (under
//! `target/servers` in a `cargo xtask` run), `postgres` on a free loopback port (never the
//! machine's own server on 5432) with no Unix socket, run as the `postgres` user when we are
//! root (the server refuses to run as root).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{free_port, private_dir, private_dir_in, servers_dir, which, Server};

/// The role the tests connect as (trust authentication on loopback only).
pub const POSTGRES_USER: &str = "databank";

/// The directory holding `initdb`, `postgres` and `pg_isready`: `$DATABANK_PG_BIN`, else the
/// one `pg_config --bindir` names, else the newest `/usr/lib/postgresql/<version>/bin` (where
/// Debian's `postgresql` package puts them, off `PATH`), else the one of `initdb` on `PATH`.
pub fn postgres_bin_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("DATABANK_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(pg_config) = which("pg_config") {
        if let Ok(out) = Command::new(pg_config).arg("--bindir").output() {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if dir.join("initdb").is_file() {
                return Ok(dir);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    which("initdb")
        .and_then(|initdb| initdb.canonicalize().ok())
        .and_then(|initdb| initdb.parent().map(Path::to_path_buf))
        .ok_or_else(|| {
            "no PostgreSQL server binaries (Debian: apt-get install postgresql), \
             or set DATABANK_TEST_POSTGRES_URL"
                .into()
        })
}

/// True when every existing ancestor of `dir` (and `dir` itself, if it exists) lets other
/// users through, so the `postgres` user can reach a directory made inside it.
fn others_can_enter(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    dir.ancestors()
        .filter_map(|a| std::fs::metadata(a).ok())
        .all(|m| m.permissions().mode() & 0o001 != 0)
}

/// True when this process runs as root.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// The program and leading arguments that run `program` as the `postgres` user when we are
/// root (`setpriv` execs it, so the child's pid is the server's), or as ourselves otherwise.
fn as_server_user(program: PathBuf) -> (PathBuf, Vec<String>) {
    if !is_root() {
        return (program, Vec::new());
    }
    (
        PathBuf::from("setpriv"),
        vec![
            "--reuid=postgres".into(),
            "--regid=postgres".into(),
            "--init-groups".into(),
            "--".into(),
            program.display().to_string(),
        ],
    )
}

impl Server {
    /// Creates a cluster with `initdb` in a private directory and starts `postgres` on a free
    /// loopback port. With `persistent`, commits are flushed to disk (`fsync`, synchronous
    /// commit) so they survive a stop or crash; otherwise both are off, for speed.
    /// [`stop`](Server::stop) is a fast shutdown (SIGINT); see also
    /// [`stop_immediately`](Server::stop_immediately).
    pub fn postgres(persistent: bool) -> Result<Server, String> {
        let bin = postgres_bin_dir()?;
        let port = free_port()?;
        let dir = if is_root() && !others_can_enter(&servers_dir()) {
            // The `postgres` user could not reach a directory under this one (a checkout in
            // /root, say): the system's temporary directory it can.
            private_dir_in(&std::env::temp_dir(), "postgres")?
        } else {
            private_dir("postgres")?
        };
        let data = dir.join("data");
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .map_err(|e| format!("chown {}: {e}", dir.display()))?;
            if !status.success() {
                return Err(format!(
                    "chown postgres {}: {status} (is there a postgres user?)",
                    dir.display()
                ));
            }
        }
        let (program, mut args) = as_server_user(bin.join("initdb"));
        args.extend(
            [
                "-D",
                &data.display().to_string(),
                "-U",
                POSTGRES_USER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ]
            .map(String::from),
        );
        let out = Command::new(&program)
            .args(&args)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let (program, mut args) = as_server_user(bin.join("postgres"));
        let durable = if persistent { "on" } else { "off" };
        args.extend([
            "-D".into(),
            data.display().to_string(),
            "-p".into(),
            port.to_string(),
            // No Unix socket: the tests connect over TCP, and a socket path under a deep
            // checkout could pass the 107-byte limit.
            "-k".into(),
            String::new(),
            "-c".into(),
            "listen_addresses=127.0.0.1".into(),
            "-c".into(),
            "max_connections=300".into(),
            "-c".into(),
            format!("fsync={durable}"),
            "-c".into(),
            format!("synchronous_commit={durable}"),
            "-c".into(),
            format!("full_page_writes={durable}"),
        ]);
        let mut server = Server::new(
            "postgres",
            program,
            args,
            dir,
            port,
            format!("postgres://{POSTGRES_USER}@127.0.0.1:{port}/postgres"),
        );
        server.stop_signal = "-INT";
        server.ready_check = Some(bin.join("pg_isready"));
        server.start()?;
        Ok(server)
    }

    /// Stops the server at once, as `pg_ctl stop -m immediate` does (SIGQUIT): no checkpoint,
    /// recovery from the log at the next start. Other servers get SIGKILL.
    pub fn stop_immediately(&mut self) {
        if self.name == "postgres" {
            let signal = std::mem::replace(&mut self.stop_signal, "-QUIT");
            self.stop();
            self.stop_signal = signal;
        } else {
            self.kill();
        }
    }
}
