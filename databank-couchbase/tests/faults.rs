//! The driver when its server fails: the Couchbase protocol test server (not a Couchbase
//! Server; `couchbase-testserver/`) run as a child process, stopped and started again on the
//! same ports with its data kept, paused (SIGSTOP) mid-request, and killed with requests in
//! flight. `cargo xtask test` builds it and names it in `DATABANK_TEST_COUCHBASE_TESTSERVER`.

use std::path::PathBuf;
use std::time::Duration;

use databank_core::testkit::{self, RestartLimits};
use databank_core::{Bank, Error, Result, Schema};
use databank_couchbase::{CouchbaseBank, CouchbaseConfig};
use databank_testservers::Server;
use serde_json::json;

/// Where the protocol test server's binary is named.
const PROGRAM_VAR: &str = "DATABANK_TEST_COUCHBASE_TESTSERVER";

/// The protocol test server, started: the binary `DATABANK_TEST_COUCHBASE_TESTSERVER` names, or
/// else the one built beside this test (`cargo test --workspace` builds it). Neither there:
/// `None`, after one line saying so (under CI, a failure: `testkit::server_url`).
fn server(persistent: bool) -> Option<Server> {
    let built = std::env::current_exe()
        .ok()
        .and_then(|exe| {
            Some(
                exe.parent()?
                    .parent()?
                    .join("databank-couchbase-testserver"),
            )
        })
        .filter(|path| path.exists() && std::env::var_os(PROGRAM_VAR).is_none());
    let program = match built {
        Some(path) => path,
        None => PathBuf::from(testkit::server_url(
            PROGRAM_VAR,
            "cargo build -p databank-couchbase-testserver (cargo xtask test sets it)",
        )?),
    };
    let started = Server::couchbase_protocol(&program, persistent);
    Some(started.unwrap_or_else(|e| {
        panic!(
            "could not start the Couchbase protocol test server {} ({e})",
            program.display()
        )
    }))
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
    let Some(mut server) = server(true) else {
        return Ok(());
    };
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

/// A counter increment the server received but never answered fails as `OutcomeUnknown`
/// (never retried blindly), and applies at most once.
#[tokio::test]
async fn a_timed_out_counter_is_not_retryable() -> Result<()> {
    let Some(server) = server(false) else {
        return Ok(());
    };
    let timeout = Duration::from_millis(2000);
    let bank = open(&server, timeout).await?;
    // Time is the subject: the call ends at its timeout; 2 s of headroom for a loaded machine.
    let hang = timeout * 2 + Duration::from_secs(2);
    testkit::a_timed_out_counter_is_not_retryable(
        &bank,
        || server.pause().unwrap_or_else(|e| panic!("{e}")),
        || server.resume().unwrap_or_else(|e| panic!("{e}")),
        hang,
    )
    .await
}

/// A write whose connection drops before its answer (the server killed with the request in
/// its socket) is `OutcomeUnknown`, a read cut off the same way is an outage error, and once
/// the server is back on its ports the driver answers again within 2 s (4 s of headroom) with
/// what the server really kept.
#[tokio::test]
async fn a_connection_dropped_mid_request_is_reported_and_recovered_from() -> Result<()> {
    let Some(mut server) = server(true) else {
        return Ok(());
    };
    let timeout = Duration::from_millis(3000);
    let bank = open(&server, timeout).await?;
    bank.save("person", "kept", json!({"email": "old@x"}))
        .await?;

    server.pause().unwrap_or_else(|e| panic!("{e}"));
    let write = tokio::spawn({
        let bank = bank.clone();
        async move { bank.save("person", "kept", json!({"email": "new@x"})).await }
    });
    let read = tokio::spawn({
        let bank = bank.clone();
        async move { bank.read("person", "kept").await }
    });
    // Both requests are on the wire (the kernel holds them for the stopped server) well before
    // their timeout; then the connection drops.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill();
    let write = write.await.expect("the write task ends");
    let read = read.await.expect("the read task ends");
    match &write {
        Err(e) if e.is_outcome_unknown() && !e.is_retryable() => {}
        other => panic!("a write cut off mid-request must be OutcomeUnknown, got {other:?}"),
    }
    match &read {
        Err(e) if e.is_outage() => {}
        other => panic!("a read cut off mid-request must be an outage error, got {other:?}"),
    }

    server.start().unwrap_or_else(|e| panic!("{e}"));
    let restarted = std::time::Instant::now();
    let deadline = std::time::Instant::now() + Duration::from_secs(2 + 4);
    let kept = loop {
        match bank.read("person", "kept").await {
            Ok(record) => break record,
            Err(e) if e.is_outage() && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("still failing after the restart: {e}"),
        }
    };
    eprintln!("back {:?} after the restart", restarted.elapsed());
    // The stopped server never read the write, so the old value is what it kept.
    assert_eq!(kept.value, json!({"email": "old@x"}));
    bank.save("person", "kept", json!({"email": "after@x"}))
        .await?;
    assert_eq!(
        bank.read("person", "kept").await?.value,
        json!({"email": "after@x"})
    );
    assert!(matches!(
        bank.read("person", "never").await,
        Err(Error::NotFound { .. })
    ));
    Ok(())
}
