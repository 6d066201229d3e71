//! `cargo xtask`: the project's automation, one binary with subcommands.
//!
//! - `cargo xtask test [--require redis,mongo,couchbase] [--no-lint]`: fmt check, clippy, docs and the
//!   whole test suite, with the databases the tests need, and a summary table.
//! - `cargo xtask services up|down|status [NAME...]`: start, stop or list servers for manual work.
//! - `cargo xtask fuzz [--seconds N] [TARGET...]`: the fuzz targets, 10 minutes each by default.
//! - `cargo xtask soak [--minutes N] [--backend disk|redis|redis-cluster]`: the example app under load.
//! - `cargo xtask bench [--quick]`: the benchmarks, report in `target/bench/report.md`.

mod bench;
mod couchbase;
mod docker;
mod drivers;
mod fuzz;
mod package;
mod services;
mod soak;
mod summary;
mod test;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The servers this run starts (and those its tests start) keep their files under
    // `target/servers`, never in a user's directories.
    if std::env::var_os(databank_testservers::SERVERS_DIR_ENV).is_none() {
        std::env::set_var(
            databank_testservers::SERVERS_DIR_ENV,
            target_dir().join("servers"),
        );
    }
    let result = match args.first().map(String::as_str) {
        Some("test") => test::run(&args[1..]),
        Some("services") => services::command(&args[1..]),
        Some("fuzz") => fuzz::command(&args[1..]),
        Some("soak") => soak::command(&args[1..]),
        Some("bench") => bench::command(&args[1..]),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage:
  cargo xtask test [--require redis,mongo,couchbase] [--no-lint]
      fmt check, clippy -D warnings, cargo doc, and every test suite, with the databases it needs.
      With CI=true (redis, mongo) or --require, a suite whose server could not be had fails the
      run. Couchbase comes from DATABANK_TEST_COUCHBASE_URL or Docker; without either the
      suites run against the Couchbase protocol test server (couchbase-testserver/, not a
      Couchbase Server), and the run says so.
  cargo xtask services up|down|status [redis] [redis-cluster] [mongo] [postgres] [couchbase]
      start servers for manual work (URLs printed as environment lines), stop them, or show
      them. `up couchbase` with a Docker engine runs couchbase/server:community on its
      standard ports (8091-8096, 11210) and sets up services, administrator and bucket by REST;
      without one it starts the Couchbase protocol test server on free ports.
  cargo xtask fuzz [--seconds N] [TARGET...]
      run the cargo-fuzz targets (default: all, 600 s each); the corpus lives in fuzz/corpus.
  cargo xtask soak [--minutes N] [--backend disk|redis|redis-cluster]
      the example app under a bounded wrk load: RSS at start and end, errors, session count.
  cargo xtask bench [--quick]
      every driver against its raw client, the session store against tower-sessions' stores,
      end to end under wrk, cleanup at scale, contention; writes target/bench/report.md and
      report.json. --quick: small sizes, seconds, to prove the benchmarks build and run.";

/// The cargo that runs xtask (`$CARGO`), else `cargo` from `PATH`.
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// The workspace root (the parent of this crate's directory).
pub fn root() -> std::path::PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Cargo's target directory: `$CARGO_TARGET_DIR`, else `target/` in the workspace.
pub fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// A boxed error with a message, for everything xtask reports.
pub type Error = Box<dyn std::error::Error>;
