//! Opening every backend the suite runs on.

#![allow(dead_code)] // each test file uses a different part of this module

pub mod load;

use databank_core::testkit::unique_name;
use databank_core::{Bank, Schema};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A bank on one backend, plus whatever must outlive it.
pub struct Fixture {
    pub bank: Bank,
    /// For disk: a directory this test alone owns, holding the bank in [`BANK_DIR`] and
    /// nothing else, so a test can check that nothing was written beside the bank.
    pub dir: Option<tempfile::TempDir>,
}

/// The bank's directory inside [`Fixture::dir`].
pub const BANK_DIR: &str = "bank";

/// What a test server variable holds, or `None` where the server is missing (outside CI; one
/// line says so: `testkit::server_url`).
pub fn env(name: &str) -> Option<String> {
    let provide = match name {
        "DATABANK_TEST_REDIS_URL" => "cargo xtask services up redis",
        _ => "cargo xtask services up mongo",
    };
    databank_core::testkit::server_url(name, provide)
}

/// A fresh key prefix on the suite's Redis.
pub fn redis_url(extra: &str) -> Option<String> {
    let base = env("DATABANK_TEST_REDIS_URL")?;
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}prefix={}{extra}", unique_name("rel")))
}

pub fn mongo_url() -> Option<String> {
    let mut url =
        url::Url::parse(&env("DATABANK_TEST_MONGO_URL")?).unwrap_or_else(|e| panic!("{e}"));
    url.set_path(&format!("/{}", unique_name("rel")));
    Some(url.to_string())
}

/// A bank of `backend`, or `None` where its server is missing (outside CI: see [`env`]).
pub async fn open(backend: &str, schema: Schema) -> Option<Fixture> {
    databank_memory::register().unwrap_or_else(|e| panic!("{e}"));
    databank_disk::register().unwrap_or_else(|e| panic!("{e}"));
    databank_redis::register().unwrap_or_else(|e| panic!("{e}"));
    databank_mongo::register().unwrap_or_else(|e| panic!("{e}"));
    databank_sql::register().unwrap_or_else(|e| panic!("{e}"));
    let (url, dir) = match backend {
        "memory" => ("memory://".to_string(), None),
        "disk" => {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let bank = dir.path().join(BANK_DIR);
            (format!("disk://{}", bank.display()), Some(dir))
        }
        "redis" => (redis_url("")?, None),
        "mongo" => (mongo_url()?, None),
        "sqlite" => {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let bank = dir.path().join(BANK_DIR);
            (format!("sqlite://{}/bank.db", bank.display()), Some(dir))
        }
        // A URL of a PostgreSQL server (the test's own), with a table of this test's.
        url if url.starts_with("postgres://") => {
            (format!("{url}?table={}", unique_name("rel")), None)
        }
        other => panic!("unknown backend {other}"),
    };
    let bank = databank_core::open(&url, schema)
        .await
        .unwrap_or_else(|e| panic!("cannot open {backend}: {e}"));
    Some(Fixture { bank, dir })
}
