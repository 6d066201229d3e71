//! `cargo xtask fuzz`: runs every cargo-fuzz target for a while.
//!
//! The committed corpus in `fuzz/corpus/<target>/` is read, never written: libFuzzer writes
//! the inputs it finds into the first corpus directory it is given, and that is a scratch
//! directory under `target/fuzz-corpus/`, so no run changes a tracked file.

use std::process::Command;

use crate::Error;

/// The fuzz targets, in `fuzz/fuzz_targets/`.
pub const TARGETS: [&str; 5] = [
    "disk_path_roundtrip",
    "disk_record_parser",
    "url_parsing",
    "criteria_matching",
    "session_decoder",
];

/// True when `cargo fuzz` can run here.
pub fn available() -> bool {
    Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// How the targets are built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// cargo-fuzz's default: optimised, AddressSanitizer, debug assertions. For long runs.
    Full,
    /// The test command's smoke run: the dev profile (debug assertions and overflow checks
    /// on) without a sanitizer, so it builds in a fraction of the time; our code has no
    /// `unsafe`, and what the smoke run looks for is a panic on its corpus.
    Smoke,
}

/// Runs each target for `seconds`, every one even when an earlier one crashed; fails naming the
/// targets that crashed (their inputs land in `fuzz/artifacts/<target>/`).
pub fn run_targets(targets: &[&str], seconds: u64, build: Build) -> Result<(), Error> {
    if !available() {
        return Err("cargo fuzz is not installed: cargo install cargo-fuzz".into());
    }
    let fuzz_dir = crate::root().join("fuzz");
    let mut crashed = Vec::new();
    for target in targets {
        let corpus = fuzz_dir.join("corpus").join(target);
        let finds = crate::root()
            .join("target")
            .join("fuzz-corpus")
            .join(target);
        std::fs::create_dir_all(&finds)?;
        println!("xtask: fuzzing {target} for {seconds} s");
        // cargo-fuzz passes nightly-only flags; the stable toolchain accepts them when told to.
        let mut cmd = Command::new("cargo");
        cmd.current_dir(&fuzz_dir)
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", target]);
        if build == Build::Smoke {
            cmd.args(["--dev", "--sanitizer", "none"]);
        }
        cmd.arg(&finds);
        if corpus.is_dir() {
            cmd.arg(&corpus);
        }
        let status = cmd
            .args([
                "--",
                &format!("-max_total_time={seconds}"),
                "-rss_limit_mb=3072",
                "-print_final_stats=1",
            ])
            .status()?;
        if !status.success() {
            eprintln!(
                "xtask: fuzz target {target} failed ({status}); see fuzz/artifacts/{target}/"
            );
            crashed.push(*target);
        }
    }
    if crashed.is_empty() {
        Ok(())
    } else {
        Err(format!("fuzz targets failed: {crashed:?}; inputs in fuzz/artifacts/").into())
    }
}

/// `cargo xtask fuzz [--seconds N] [TARGET...]` (default: every target, 600 s each).
pub fn command(args: &[String]) -> Result<(), Error> {
    let mut seconds = 600;
    let mut targets: Vec<&str> = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or("--seconds needs a number")?;
            }
            name => match TARGETS.iter().find(|t| **t == name) {
                Some(t) => targets.push(t),
                None => {
                    return Err(
                        format!("unknown fuzz target {name:?}; targets: {TARGETS:?}").into(),
                    )
                }
            },
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    run_targets(&targets, seconds, Build::Full)
}
