//! The driver when its server fails: the Couchbase protocol test server (not a Couchbase
//! Server; `couchbase-testserver/`) run as a child process, stopped and started again on the
//! same ports with its data kept. `cargo xtask test` builds it and names it in
//! `DATABANK_TEST_COUCHBASE_TESTSERVER`.

use std::path::PathBuf;
use std::time::Duration;

use databank_core::testkit::{self, RestartLimits};
use databank_core::{Bank, Result, Schema};
use databank_couchbase::{CouchbaseBank, CouchbaseConfig};
use databank_testservers::Server;

fn server(persistent: bool) -> Server {
    let program = std::env::var_os("DATABANK_TEST_COUCHBASE_TESTSERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/debug/databank-couchbase-testserver")
        });
    Server::couchbase_protocol(&program, persistent).unwrap_or_else(|e| {
        panic!(
            "could not start the Couchbase protocol test server {} ({e}): run `cargo xtask test`, \
             or `cargo build -p databank-couchbase-testserver` first",
            program.display()
        )
    })
}

async fn open(server: &Server, timeout: Duration) -> Result<Bank> {
    let url = format!(
        "{}?prefix=faults&timeout_ms={}",
        server.url(),
        timeout.as_millis()
    );
    let schema = Schema::new().index("person", ["email"]);
    Ok(Bank::new(
        CouchbaseBank::connect(CouchbaseConfig::from_url(&url)?, schema).await?,
    ))
}

/// Down, every call fails within its timeout with an outage error; started again, the driver is
/// back within 2 s (plus 4 s of headroom for a loaded machine running every suite at once; it
/// takes about half a second idle: the driver reconnects every 500 ms) with every record.
#[tokio::test]
async fn survives_a_test_server_restart() -> Result<()> {
    let mut server = server(true);
    let timeout = Duration::from_millis(2000);
    let bank = open(&server, timeout).await?;
    let limits = RestartLimits {
        records: 50,
        probes: 3,
        hang: timeout * 2 + Duration::from_secs(2),
        recovery: Duration::from_secs(2 + 4),
        retry_every: Duration::from_millis(100),
    };
    let server = std::cell::RefCell::new(&mut server);
    let restarted = std::cell::Cell::new(None);
    testkit::survives_a_server_restart(
        &bank,
        || server.borrow_mut().stop(),
        || {
            let started = server.borrow_mut().start();
            restarted.set(Some(std::time::Instant::now()));
            started
        },
        limits,
    )
    .await?;
    // From the server answering again to the kit's first good read (plus a count and a save).
    if let Some(at) = restarted.get() {
        eprintln!("back {:?} after the restart", at.elapsed());
    }
    Ok(())
}
