//! `cargo xtask bench [--quick]`: the benchmarks, on the servers `cargo xtask test` would use,
//! written to `target/bench/report.md` and `target/bench/report.json`; a full run also writes
//! the committed report, `bench/REPORT.md` and `bench/charts/`.
//!
//! Two binaries, both release builds into the one `target/`: `databank-bench` (core
//! operations, raw-client overhead, cleanup at scale, and the `databank` tool's migrations,
//! which run that tool's binary, built first) and `bench-anchors/` (its own workspace:
//! our session store beside tower-sessions' stores, end to end under `wrk`, contention).
//!
//! `--quick` (what CI runs) proves the benchmarks build and run at small sizes and judges no
//! timing, so it builds them in the dev profile the tests already built most of, instead of
//! two release builds of every dependency.

use std::process::Command;

use crate::services::{self, SPECS};
use crate::Error;

pub fn command(args: &[String]) -> Result<(), Error> {
    let quick = args.iter().any(|a| a == "--quick");
    if let Some(other) = args.iter().find(|a| *a != "--quick") {
        return Err(
            format!("unknown argument {other:?}; usage: cargo xtask bench [--quick]").into(),
        );
    }
    let root = crate::root();
    let out = root.join("target").join("bench");
    std::fs::create_dir_all(&out)?;
    let provided: Vec<services::Provided> = SPECS
        .into_iter()
        .filter(|s| s.required_in_ci)
        .map(services::provide)
        .collect();
    let mut env: Vec<(String, String)> = Vec::new();
    let mut disposable = true;
    for p in &provided {
        match &p.url {
            Ok(url) => {
                println!("xtask: {} at {url} ({})", p.spec.name, p.source);
                env.push((p.spec.env.to_string(), url.clone()));
                disposable &= !p.source.starts_with('$');
                if p.spec.name == "mongo" {
                    let kind = if p.source.contains("SecantusDB") {
                        "secantus"
                    } else {
                        "mongo"
                    };
                    env.push((services::MONGO_KIND_ENV.into(), kind.into()));
                }
            }
            Err(why) => return Err(format!("the benchmarks need {}: {why}", p.spec.name).into()),
        }
    }
    // Servers this run started may be flushed between large runs; a user's may not.
    env.push((
        "DATABANK_BENCH_DISPOSABLE".into(),
        if disposable { "1" } else { "0" }.into(),
    ));
    let mode: &[&str] = if quick { &["--quick"] } else { &[] };
    let profile: &[&str] = if quick { &[] } else { &["--release"] };
    let out_arg = out.display().to_string();
    // Section 7 runs the `databank` tool as users run it: its own binary, same profile.
    run(
        "databank-cli",
        Command::new(crate::cargo())
            .arg("build")
            .args(profile)
            .args(["--package", "databank-cli"]),
    )?;
    let target = crate::target_dir();
    let cli = target
        .join(if quick { "debug" } else { "release" })
        .join("databank");
    env.push(("DATABANK_CLI".into(), cli.display().to_string()));
    run(
        "databank-bench",
        Command::new(crate::cargo())
            .arg("run")
            .args(profile)
            .args(["--package", "databank-bench", "--"])
            .args(mode)
            .args(["--out", &out_arg])
            .envs(env.iter().cloned()),
    )?;
    run(
        "bench-anchors",
        Command::new(crate::cargo())
            .arg("run")
            .args(profile)
            .arg("--manifest-path")
            .arg(root.join("bench-anchors").join("Cargo.toml"))
            .arg("--target-dir")
            .arg(root.join("target"))
            .arg("--")
            .args(mode)
            .args(["--out", &out_arg])
            .envs(env.iter().cloned()),
    )?;
    drop(provided);
    run(
        "merge",
        Command::new(crate::cargo())
            .arg("run")
            .args(profile)
            .args(["--quiet", "--package", "databank-bench", "--"])
            .args(["--merge", "--out", &out_arg]),
    )?;
    println!(
        "xtask: wrote {0}/report.md and {0}/report.json",
        out.display()
    );
    if !quick {
        publish(&out, &root.join("bench"))?;
    }
    Ok(())
}

/// A full run's report becomes the committed one: `bench/REPORT.md` and its charts in
/// `bench/charts/` (the README shows one of them), replacing the last run's.
fn publish(out: &std::path::Path, bench: &std::path::Path) -> Result<(), Error> {
    std::fs::copy(out.join("report.md"), bench.join("REPORT.md"))?;
    let charts = bench.join("charts");
    std::fs::create_dir_all(&charts)?;
    for entry in std::fs::read_dir(&charts)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "svg") {
            std::fs::remove_file(path)?;
        }
    }
    for entry in std::fs::read_dir(out.join("charts"))? {
        let path = entry?.path();
        if let Some(name) = path.file_name() {
            std::fs::copy(&path, charts.join(name))?;
        }
    }
    println!(
        "xtask: wrote {0}/REPORT.md and {0}/charts/ (commit them)",
        bench.display()
    );
    Ok(())
}

fn run(what: &str, cmd: &mut Command) -> Result<(), Error> {
    let status = cmd.current_dir(crate::root()).status()?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})").into())
    }
}
