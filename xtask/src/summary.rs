//! Reading `cargo test` output into per-suite counts, and printing the table.

use std::collections::HashMap;

/// One test binary's (or doc-test run's) outcome.
#[derive(Debug, Clone, Default)]
pub struct Suite {
    pub package: String,
    pub suite: String,
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
    /// Tests left out by a `--skip` filter.
    pub filtered: u64,
    /// Why some tests were left out (a `--skip` for a server that could not be had).
    pub left_out: Option<String>,
    /// Why the suite did not run, when it did not.
    pub skipped: Option<String>,
    /// True when the suite started but printed no result line (it crashed).
    pub crashed: bool,
    /// Conformance behaviours that ran but did not apply to the driver (libtest counts them
    /// as passed; we count them as skipped).
    pub kit_skipped: u64,
}

/// What the conformance kit writes for a behaviour that skipped itself
/// (`databank_core::testkit::SKIP_PREFIX`).
const KIT_SKIP: &str = "databank-testkit: skipped ";

/// Follows `cargo test` output line by line.
#[derive(Debug, Default)]
pub struct Parser {
    /// Executable path (as cargo prints it, relative or absolute) -> (package, target name).
    executables: HashMap<String, (String, String)>,
    pub suites: Vec<Suite>,
    open: bool,
}

impl Parser {
    pub fn new(executables: HashMap<String, (String, String)>) -> Self {
        Parser {
            executables,
            ..Parser::default()
        }
    }

    pub fn line(&mut self, line: &str) {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("Running ") {
            self.close();
            let exe = rest
                .rsplit_once('(')
                .map(|(_, e)| e.trim_end_matches(')'))
                .unwrap_or(rest);
            let (package, suite) = self.lookup(exe, rest);
            self.start(package, suite);
        } else if let Some(krate) = trimmed.strip_prefix("Doc-tests ") {
            self.close();
            self.start(krate.replace('_', "-"), "doc".into());
        } else if trimmed.starts_with(KIT_SKIP) {
            if let Some(suite) = self.suites.last_mut().filter(|_| self.open) {
                suite.kit_skipped += 1;
            }
        } else if let Some(result) = trimmed.strip_prefix("test result: ") {
            if let Some(suite) = self.suites.last_mut().filter(|_| self.open) {
                suite.passed = count(result, "passed").saturating_sub(suite.kit_skipped);
                suite.failed = count(result, "failed");
                suite.ignored = count(result, "ignored");
                suite.filtered = count(result, "filtered out");
                suite.crashed = false;
            }
            self.open = false;
        }
    }

    pub fn finish(&mut self) {
        self.close();
    }

    fn start(&mut self, package: String, suite: String) {
        self.suites.push(Suite {
            package,
            suite,
            crashed: true,
            ..Suite::default()
        });
        self.open = true;
    }

    fn close(&mut self) {
        self.open = false;
    }

    fn lookup(&self, exe: &str, fallback: &str) -> (String, String) {
        self.executables
            .iter()
            .find(|(path, _)| path.ends_with(exe) || exe.ends_with(path.as_str()))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| ("?".into(), fallback.into()))
    }
}

fn count(result: &str, word: &str) -> u64 {
    result
        .split(';')
        .find_map(|part| {
            let part = part
                .trim()
                .trim_start_matches("ok. ")
                .trim_start_matches("FAILED. ");
            let (n, w) = part.split_once(' ')?;
            (w == word).then(|| n.parse().ok())?
        })
        .unwrap_or(0)
}

/// Prints the table and the closing count line; returns (passed, failed, skipped suites).
pub fn print(suites: &[Suite]) -> (u64, u64, usize) {
    println!();
    println!(
        "{:<22} {:<14} {:>7} {:>7} {:>8}  status",
        "crate", "suite", "passed", "failed", "ignored"
    );
    println!("{}", "-".repeat(72));
    let (mut passed, mut failed, mut ignored, mut skipped) = (0, 0, 0, 0);
    for s in suites {
        let status = match (&s.skipped, s.crashed, s.failed) {
            (Some(why), _, _) => format!("SKIPPED: {why}"),
            (None, true, _) => "CRASHED (no result line)".into(),
            (None, false, 0) => match &s.left_out {
                Some(why) if s.filtered > 0 => format!("ok; {} left out: {why}", s.filtered),
                _ if s.kit_skipped > 0 => {
                    format!("ok; {} behaviours do not apply (skipped)", s.kit_skipped)
                }
                _ => "ok".into(),
            },
            (None, false, _) => "FAILED".into(),
        };
        println!(
            "{:<22} {:<14} {:>7} {:>7} {:>8}  {status}",
            s.package,
            s.suite,
            s.passed,
            s.failed,
            s.ignored + s.kit_skipped
        );
        passed += s.passed;
        failed += s.failed + u64::from(s.crashed && s.skipped.is_none());
        ignored += s.ignored + s.kit_skipped + if s.left_out.is_some() { s.filtered } else { 0 };
        skipped += usize::from(s.skipped.is_some());
    }
    println!("{}", "-".repeat(72));
    println!("total: {passed} passed, {failed} failed, {ignored} skipped");
    (passed, failed, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cargo_test_output() {
        let mut exes = HashMap::new();
        exes.insert(
            "/w/target/debug/deps/conformance-abc".to_string(),
            ("databank-memory".to_string(), "conformance".to_string()),
        );
        let mut p = Parser::new(exes);
        for line in [
            "     Running tests/conformance.rs (target/debug/deps/conformance-abc)",
            "test a ... ok",
            "databank-testkit: skipped reopen_keeps_records: the driver is not persistent",
            "test result: FAILED. 81 passed; 1 failed; 2 ignored; 0 measured; 0 filtered out; finished in 5.68s",
            "   Doc-tests databank_core",
            "test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 7 filtered out; finished in 1s",
            "     Running unittests src/lib.rs (target/debug/deps/unknown-1)",
        ] {
            p.line(line);
        }
        p.finish();
        let s = &p.suites;
        assert_eq!(s.len(), 3);
        assert_eq!(
            (
                s[0].package.as_str(),
                s[0].passed,
                s[0].failed,
                s[0].ignored
            ),
            ("databank-memory", 80, 1, 2)
        );
        assert_eq!(s[0].kit_skipped, 1);
        assert_eq!(
            (s[1].package.as_str(), s[1].suite.as_str(), s[1].passed),
            ("databank-core", "doc", 3)
        );
        assert_eq!(s[1].filtered, 7);
        assert!(s[2].crashed);
        assert!(!s[0].crashed);
    }
}
