//! `cargo xtask test`: lint, docs, and every suite against real servers, with a summary.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::services::{self, Provided, SPECS};
use crate::summary::{self, Parser, Suite};
use crate::Error;

struct Options {
    require: Vec<String>,
    require_fuzz: bool,
    lint: bool,
}

/// How long the test command fuzzes each target.
const FUZZ_SMOKE_SECONDS: u64 = 10;

fn options(args: &[String]) -> Result<Options, Error> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let mut opts = Options {
        require: if ci {
            SPECS
                .iter()
                .filter(|s| s.required_in_ci)
                .map(|s| s.name.to_string())
                .collect()
        } else {
            Vec::new()
        },
        require_fuzz: ci,
        lint: true,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--require" => {
                let list = it
                    .next()
                    .ok_or("--require needs a list, such as redis,mongo")?;
                opts.require.extend(list.split(',').map(str::to_owned));
            }
            "--no-lint" => opts.lint = false,
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    Ok(opts)
}

pub fn run(args: &[String]) -> Result<(), Error> {
    let opts = options(args)?;
    let root = crate::root();
    let mut problems = Vec::new();

    if opts.lint {
        step(
            &mut problems,
            "cargo fmt --check",
            cargo(&["fmt", "--all", "--check"]),
        );
        // The benchmark anchors are their own workspace (older tower-sessions): linted here too.
        let anchors = root.join("bench-anchors").join("Cargo.toml");
        let anchors = anchors.to_string_lossy().to_string();
        let target = root.join("target").to_string_lossy().to_string();
        step(
            &mut problems,
            "cargo fmt --check (bench-anchors)",
            cargo(&["fmt", "--manifest-path", &anchors, "--check"]),
        );
        step(
            &mut problems,
            "cargo clippy -D warnings (bench-anchors)",
            cargo(&[
                "clippy",
                "--manifest-path",
                &anchors,
                "--target-dir",
                &target,
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
        );
        step(
            &mut problems,
            "cargo clippy -D warnings",
            cargo(&[
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ]),
        );
    }

    // The databases, for the packages that exist in this workspace.
    let provided: Vec<Provided> = SPECS
        .into_iter()
        .filter(|spec| spec.packages.iter().any(|p| root.join(p).is_dir()))
        .map(services::provide)
        .collect();
    let mut env: Vec<(String, String)> = Vec::new();
    let mut excluded: Vec<Suite> = Vec::new();
    // (test-name filter, why) for servers whose absence leaves out only some tests.
    let mut left_out: Vec<(&'static str, String, &'static [&'static str])> = Vec::new();
    for p in &provided {
        match &p.url {
            Ok(url) => {
                let url = suite_url(p, url);
                println!("xtask: {} at {url} ({})", p.spec.name, p.source);
                env.push((p.spec.env.to_string(), url));
                if p.spec.name == "mongo" {
                    let kind = if p.source.contains("SecantusDB") {
                        "secantus"
                    } else {
                        "mongo"
                    };
                    env.push((services::MONGO_KIND_ENV.into(), kind.into()));
                }
            }
            Err(why) => {
                let why_line = why.lines().next().unwrap_or(why).to_string();
                if let Some(filter) = p.spec.skip_filter {
                    println!("xtask: SKIPPED {} tests ({filter}*): {why}", p.spec.name);
                    left_out.push((filter, why_line, p.spec.packages));
                } else {
                    println!("xtask: SKIPPED {} suites: {why}", p.spec.name);
                }
                for package in p
                    .spec
                    .packages
                    .iter()
                    .filter(|_| p.spec.skip_filter.is_none())
                {
                    if excluded.iter().any(|s: &Suite| s.package == *package) {
                        continue;
                    }
                    excluded.push(Suite {
                        package: (*package).to_string(),
                        suite: "all".into(),
                        skipped: Some(why.lines().next().unwrap_or(why).to_string()),
                        ..Suite::default()
                    });
                }
                if opts.require.iter().any(|r| r == p.spec.name) {
                    problems.push(format!(
                        "{} is required (CI=true or --require) but could not be had: {why}",
                        p.spec.name
                    ));
                }
            }
        }
    }
    match services::couchbase_test_server_bin() {
        Ok(bin) => env.push((
            services::TEST_SERVER_BIN_ENV.into(),
            bin.display().to_string(),
        )),
        Err(why) => problems.push(format!(
            "the Couchbase protocol test server (for the Couchbase fault tests): {why}"
        )),
    }
    if let Ok(python) = services::secantus_python() {
        env.push((
            services::MONGO_PYTHON_ENV.into(),
            python.display().to_string(),
        ));
    }

    let mut test_args: Vec<String> = ["test", "--workspace", "--all-features", "--no-fail-fast"]
        .map(String::from)
        .to_vec();
    for suite in &excluded {
        test_args.push("--exclude".into());
        test_args.push(suite.package.clone());
    }
    let executables = executables(&test_args, &env)?;
    let mut parser = Parser::new(executables);
    let mut run_args = test_args.clone();
    if !left_out.is_empty() {
        run_args.push("--".into());
        for (filter, _, _) in &left_out {
            run_args.push("--skip".into());
            run_args.push((*filter).to_string());
        }
    }
    let status = stream(&run_args, &env, &mut parser)?;
    parser.finish();
    for suite in &mut parser.suites {
        let Some((_, why, _)) = left_out
            .iter()
            .find(|(_, _, packages)| packages.contains(&suite.package.as_str()))
        else {
            continue;
        };
        if suite.filtered > 0 {
            suite.left_out = Some(why.clone());
            if suite.passed + suite.failed + suite.ignored == 0 {
                suite.skipped = Some(why.clone());
            }
        }
    }
    if !status {
        problems.push("cargo test failed".into());
    }

    // A short run of every fuzz target: proves they build and hold on their corpus.
    let mut fuzz_suite = Suite {
        package: "fuzz".into(),
        suite: format!("{} s each", FUZZ_SMOKE_SECONDS),
        ..Suite::default()
    };
    if crate::fuzz::available() {
        for target in crate::fuzz::TARGETS {
            match crate::fuzz::run_targets(&[target], FUZZ_SMOKE_SECONDS, crate::fuzz::Build::Smoke)
            {
                Ok(()) => fuzz_suite.passed += 1,
                Err(e) => {
                    fuzz_suite.failed += 1;
                    problems.push(e.to_string());
                }
            }
        }
    } else {
        fuzz_suite.skipped = Some("cargo-fuzz is not installed (cargo install cargo-fuzz)".into());
        if opts.require_fuzz {
            problems.push(
                "the fuzz smoke run is required (CI=true) but cargo-fuzz is not installed".into(),
            );
        }
    }

    if opts.lint {
        let unalike = crate::drivers::problems(&root);
        if unalike.is_empty() {
            println!("xtask: driver crates alike: ok");
        }
        problems.extend(
            unalike
                .into_iter()
                .map(|p| format!("driver crates alike: {p}")),
        );
        step(
            &mut problems,
            "cargo package (the crates meant for crates.io)",
            crate::package::check(),
        );
        let mut doc = Command::new(crate::cargo());
        doc.args(["doc", "--workspace", "--no-deps", "--all-features"])
            .env("RUSTDOCFLAGS", "-D warnings");
        step(
            &mut problems,
            "cargo doc (warnings denied)",
            doc.status().map_err(Error::from),
        );
    }
    // What each server-backed suite ran against, for the line under the table.
    let servers: Vec<String> = provided
        .iter()
        .filter(|p| p.url.is_ok())
        .map(|p| match p.spec.name {
            "couchbase" if p.source == services::TEST_SERVER => {
                format!("couchbase (protocol test server: {})", p.source)
            }
            "couchbase" => format!("couchbase (server: {})", p.source),
            name => format!("{name} ({})", p.source),
        })
        .collect();
    drop(provided);

    let mut suites = parser.suites;
    suites.extend(excluded);
    suites.push(fuzz_suite);
    let (_, failed, _) = summary::print(&suites);
    println!("xtask: server suites ran against: {}", servers.join("; "));
    if failed > 0 && !problems.iter().any(|p| p == "cargo test failed") {
        problems.push(format!("{failed} tests failed"));
    }
    if problems.is_empty() {
        println!("xtask: all checks passed");
        Ok(())
    } else {
        Err(format!(
            "{} problem(s):\n  - {}",
            problems.len(),
            problems.join("\n  - ")
        )
        .into())
    }
}

/// SecantusDB's call timeout for the suites, in ms. It serves 30 to 80 contended writes a
/// second on one document, so 64 writers queued on one record (the storms, the kit's
/// concurrency behaviours) on a machine whose cores are busy elsewhere can wait well past the
/// driver's 5 s default, which would fail tests whose subject is not time. Tests whose subject
/// is time start their own server with their own timeout.
const SECANTUS_TIMEOUT_MS: u64 = 30_000;

/// The URL the suites get for a server: a SecantusDB this run started gets the longer call
/// timeout.
fn suite_url(p: &Provided, url: &str) -> String {
    if p.spec.name == "mongo" && p.source.contains("SecantusDB") {
        format!("{url}/?timeout_ms={SECANTUS_TIMEOUT_MS}")
    } else {
        url.to_owned()
    }
}

fn cargo(args: &[&str]) -> Result<std::process::ExitStatus, Error> {
    println!("xtask: cargo {}", args.join(" "));
    Ok(Command::new(crate::cargo()).args(args).status()?)
}

fn step(problems: &mut Vec<String>, name: &str, result: Result<std::process::ExitStatus, Error>) {
    match result {
        Ok(status) if status.success() => println!("xtask: {name}: ok"),
        Ok(status) => problems.push(format!("{name} failed ({status})")),
        Err(e) => problems.push(format!("{name} could not run: {e}")),
    }
}

/// Builds the test binaries and maps each executable to (package, target name).
fn executables(
    test_args: &[String],
    env: &[(String, String)],
) -> Result<HashMap<String, (String, String)>, Error> {
    let mut cmd = Command::new(crate::cargo());
    cmd.args(test_args)
        .args(["--no-run", "--message-format=json-render-diagnostics"])
        .envs(env.iter().cloned())
        .stdout(Stdio::piped());
    println!("xtask: building test binaries");
    let out = cmd.output()?;
    let mut map = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let (Some(exe), Some(manifest), Some(target)) = (
            msg["executable"].as_str(),
            msg["manifest_path"].as_str(),
            msg["target"]["name"].as_str(),
        ) else {
            continue;
        };
        let package = std::fs::read_to_string(manifest)
            .ok()
            .and_then(|text| {
                text.lines().find_map(|l| {
                    l.trim()
                        .strip_prefix("name = ")
                        .map(|n| n.trim_matches('"').to_string())
                })
            })
            .unwrap_or_else(|| target.to_string());
        let suite = if msg["target"]["kind"][0] == "lib" {
            "unit"
        } else {
            target
        };
        map.insert(exe.to_string(), (package, suite.to_string()));
    }
    Ok(map)
}

/// Runs `cargo test`, echoing its merged output while parsing it. True when it succeeded.
fn stream(
    test_args: &[String],
    env: &[(String, String)],
    parser: &mut Parser,
) -> Result<bool, Error> {
    let mut line = format!("exec {}", shell_quote(&crate::cargo()));
    for arg in test_args {
        line.push(' ');
        line.push_str(&shell_quote(arg));
    }
    line.push_str(" 2>&1");
    println!("xtask: {}", line.trim_start_matches("exec "));
    let mut child = Command::new("sh")
        .args(["-c", &line])
        .envs(env.iter().cloned())
        .stdout(Stdio::piped())
        .spawn()?;
    if let Some(out) = child.stdout.take() {
        for text in BufReader::new(out).lines() {
            let text = text?;
            println!("{text}");
            parser.line(&text);
        }
    }
    Ok(child.wait()?.success())
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
