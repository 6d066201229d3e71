//! Suites that need a server, run where there is none: one line that says so, not a panic in
//! every test; and a failure under CI, where the server must be there.

use std::collections::HashSet;
use std::sync::Mutex;

use super::Harness;

/// The line prefix of a suite skipped for want of its server, written to the process's
/// standard error (beside the test harness's capture) once per variable and test binary
/// (distinct from [`SKIP_PREFIX`](super::SKIP_PREFIX), a behaviour's own skip).
pub const SUITE_SKIP_PREFIX: &str = "databank-testkit: SKIPPED suite, no server: ";

/// The URL of the test server a suite needs, from the environment variable `var` (which
/// `cargo xtask test` sets), or `None` when there is none here.
///
/// `provide` says how to get one, e.g. `"cargo xtask services up redis"`. When `var` is unset
/// or empty, a plain `cargo test` must not fail for want of a server: this writes one line per
/// variable and test binary to standard error, past the test harness's capture
/// (`databank-testkit: SKIPPED suite, no server: DATABANK_TEST_REDIS_URL is not set; cargo
/// xtask services up redis provides it`), and returns `None`; the caller's test then returns without
/// checking anything. Under `CI=true` (or `CI=1`) a missing server fails the test instead: a
/// suite CI must run never passes by being skipped.
///
/// ```
/// use databank_core::testkit::server_url;
/// // Outside CI, with the variable unset: no URL, and one line on standard error.
/// # if std::env::var("CI").is_err() {
/// assert_eq!(server_url("DATABANK_DOC_NO_SUCH_SERVER", "nothing"), None);
/// # }
/// ```
pub fn server_url(var: &str, provide: &str) -> Option<String> {
    if let Ok(url) = std::env::var(var) {
        if !url.is_empty() {
            return Some(url);
        }
    }
    if std::env::var("CI").is_ok_and(|ci| ci == "true" || ci == "1") {
        panic!("{var} is not set, and CI requires this suite: {provide}, and export what it prints (`cargo xtask test` does both)");
    }
    static REPORTED: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let first = REPORTED
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
        .get_or_insert_with(HashSet::new)
        .insert(var.to_owned());
    if first {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "{SUITE_SKIP_PREFIX}{var} is not set; {provide} provides it"
        );
    }
    None
}

/// What a harness function given to [`conformance_tests!`](crate::conformance_tests) returns:
/// a [`Harness`], or an `Option` of one that is `None` where the driver's server is missing
/// (see [`server_url`]); then no behaviour runs.
pub trait MaybeHarness {
    /// The harness.
    type Harness: Harness;
    /// The harness, if the suite can run here.
    fn into_harness(self) -> Option<Self::Harness>;
}

impl<H: Harness> MaybeHarness for H {
    type Harness = H;
    fn into_harness(self) -> Option<H> {
        Some(self)
    }
}

impl<H: Harness> MaybeHarness for Option<H> {
    type Harness = H;
    fn into_harness(self) -> Option<H> {
        self
    }
}

/// In a test returning `Result<(), _>`: the URL of the server a suite needs
/// ([`server_url`](crate::testkit::server_url)`($var, $provide)`), or, where there is none
/// (outside CI), an early `Ok(())` after one line saying so.
///
/// ```
/// fn a_test() -> Result<(), String> {
///     let url = databank_core::server_or_skip!("DATABANK_DOC_NO_SUCH_SERVER", "nothing");
///     Err(format!("{url} was not expected"))
/// }
/// # if std::env::var("CI").is_err() {
/// assert_eq!(a_test(), Ok(()));
/// # }
/// ```
#[macro_export]
macro_rules! server_or_skip {
    ($var:expr, $provide:expr $(,)?) => {
        match $crate::testkit::server_url($var, $provide) {
            Some(url) => url,
            None => return Ok(()),
        }
    };
}
