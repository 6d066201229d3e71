//! Server outages: under a steady load from 16 tasks, the server is stopped for 5 s and started
//! again. During the outage every call fails within the timeout (no hang, no panic) with an
//! outage error: `Unavailable` (not applied: safe to retry) or `OutcomeUnknown`; soon after the
//! server is back, calls succeed on the same bank; nothing acknowledged is lost, and no write
//! reported `Unavailable` was applied after all.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use databank_core::{Bank, Schema};
use databank_testservers::Server;

mod common;
use common::load::{self, lock, Log};
use common::TestResult;

/// Keys each loading task cycles over.
const KEYS_PER_TASK: u64 = 8;
const OUTAGE: Duration = Duration::from_secs(5);
/// Headroom for a loaded machine in every bound below: with both cores busy elsewhere, a task
/// may wake hundreds of milliseconds late and a restarted server may answer its first calls
/// slowly.
const LOADED_MACHINE: Duration = Duration::from_secs(2);
/// How often the drivers look for a restarted server: the MongoDB driver's heartbeat as we set
/// it (1 s); Redis and PostgreSQL reconnect on the next call.
const HEARTBEAT: Duration = Duration::from_secs(1);

async fn load_through_an_outage(
    bank: Bank,
    server: Server,
    timeout: Duration,
    name: &str,
) -> TestResult {
    load_through(bank, server, timeout, name, Server::stop).await
}

/// The outage test with the server stopped by `stop_server`.
async fn load_through(
    bank: Bank,
    mut server: Server,
    timeout: Duration,
    name: &str,
    stop_server: fn(&mut Server),
) -> TestResult {
    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Log::default()));
    let tasks = load::start(&bank, KEYS_PER_TASK, &stop, &log);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        lock(&log).successes > 0,
        "no call succeeded before the outage"
    );

    let server = tokio::task::spawn_blocking(move || {
        stop_server(&mut server);
        std::thread::sleep(OUTAGE);
        server.start().map(|()| server)
    })
    .await??;
    let back = Instant::now();
    let errors_during = lock(&log).errors;

    // The same bank must work again soon.
    let recovered = loop {
        if bank.read("load", "t0-k1").await.is_ok() || bank.count("load").await.is_ok() {
            break back.elapsed();
        }
        if back.elapsed() > Duration::from_secs(30) {
            panic!("{name}: calls still failing 30 s after the server came back");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let log = load::finish(&stop, tasks, &log).await?;

    println!(
        "{name}: {} calls succeeded, {} failed during a {OUTAGE:?} outage (slowest failure {:?}, timeout {timeout:?}); recovered {recovered:?} after the server was back",
        log.successes, log.errors, log.slowest_error
    );
    assert!(
        errors_during > 0,
        "{name}: no call failed while the server was down"
    );
    assert!(
        log.not_outage.is_empty(),
        "{name}: errors that are neither Unavailable nor OutcomeUnknown: {:?}",
        &log.not_outage[..log.not_outage.len().min(5)]
    );
    // Time is the subject here: a failing call ends at the configured timeout (one retry of a
    // dropped connection may add a second one), plus headroom.
    let slowest_allowed = timeout * 2 + LOADED_MACHINE;
    assert!(
        log.slowest_error <= slowest_allowed,
        "{name}: a failing call took {:?} (timeout {timeout:?}, allowed {slowest_allowed:?})",
        log.slowest_error
    );
    // Back within one heartbeat and one call, plus headroom.
    let recovery_allowed = HEARTBEAT + timeout + LOADED_MACHINE;
    assert!(
        recovered <= recovery_allowed,
        "{name}: took {recovered:?} to recover (allowed {recovery_allowed:?})"
    );

    // Nothing acknowledged is lost: each key holds its last acknowledged value, or a later
    // write whose outcome was unknown; never one reported Unavailable (not applied).
    let (lost, foreign) = load::lost_writes(&bank, &log).await;
    assert!(
        lost.is_empty(),
        "{name}: acknowledged writes lost: {lost:?}"
    );
    assert!(
        foreign.is_empty(),
        "{name}: values no acknowledged or unknown write set: {foreign:?}"
    );
    drop(server);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_outage() -> TestResult {
    let server = Server::redis(true)?;
    let timeout = Duration::from_millis(500);
    let url = format!(
        "{}?prefix=outage&timeout_ms={}",
        server.url(),
        timeout.as_millis()
    );
    databank_redis::register()?;
    let bank = databank_core::open(&url, Schema::new()).await?;
    load_through_an_outage(bank, server, timeout, "redis").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mongo_outage() -> TestResult {
    let Some(python) = common::env("DATABANK_TEST_MONGO_PYTHON") else {
        return Ok(());
    };
    let server = Server::secantus(std::path::Path::new(&python), true)?;
    let timeout = Duration::from_millis(1000);
    let url = format!("{}/outage?timeout_ms={}", server.url(), timeout.as_millis());
    databank_mongo::register()?;
    let bank = databank_core::open(&url, Schema::new()).await?;
    load_through_an_outage(bank, server, timeout, "mongo").await
}

/// PostgreSQL's `fsync` and synchronous commit are on ([`Server::postgres`] with
/// `persistent`): an acknowledged commit is on disk. The pool's connections die with the server
/// and each fails once (`OutcomeUnknown` or, told by the server, `Unavailable`); new ones are
/// opened on demand.
async fn postgres_outage(name: &str, stop_server: fn(&mut Server)) -> TestResult {
    let server = Server::postgres(true)?;
    let timeout = Duration::from_millis(1000);
    let url = format!(
        "{}?table=outage&timeout_ms={}",
        server.url(),
        timeout.as_millis()
    );
    databank_sql::register()?;
    let bank = databank_core::open(&url, Schema::new()).await?;
    load_through(bank, server, timeout, name, stop_server).await
}

/// A fast shutdown (`pg_ctl stop -m fast`, SIGINT): sessions are ended, work in flight rolled
/// back, a checkpoint written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_fast_shutdown_outage() -> TestResult {
    postgres_outage("postgres (fast shutdown)", Server::stop).await
}

/// An immediate shutdown (`pg_ctl stop -m immediate`, SIGQUIT): no checkpoint; the restart
/// recovers from the write-ahead log.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_immediate_shutdown_outage() -> TestResult {
    postgres_outage("postgres (immediate shutdown)", Server::stop_immediately).await
}
