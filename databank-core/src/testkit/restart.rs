//! The outage checks every server-backed driver runs: a server down when the bank opens; a
//! restart (records written, the server stopped, every call a prompt retryable error, the
//! server started, the same bank working again with every record still there); a server that
//! hangs under a counter step.

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::{Bank, Error, Result};

/// The limits of a restart check.
#[derive(Debug, Clone, Copy)]
pub struct RestartLimits {
    /// Records written before the stop.
    pub records: usize,
    /// Calls tried while the server is down.
    pub probes: usize,
    /// The longest a call may take while the server is down.
    pub hang: Duration,
    /// How long after the start calls may keep failing.
    pub recovery: Duration,
    /// The pause between retries after the start.
    pub retry_every: Duration,
}

/// The open check: `open` opens a bank of the driver on the port it is given, where nothing
/// listens; that fails within `allowed` with an error that is safe to retry
/// ([`Error::Unavailable`]), never a hang, a panic or a bank. Panics naming what broke.
pub async fn a_server_down_at_open_is_unavailable<F, Fut>(open: F, allowed: Duration) -> Result<()>
where
    F: FnOnce(u16) -> Fut,
    Fut: Future<Output = Result<Bank>>,
{
    // A port the OS just handed out and took back: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|e| Error::backend("testkit", e.to_string()))?;
    let started = Instant::now();
    match open(port).await {
        Err(e) => assert!(
            e.is_retryable(),
            "opening with the server down: expected a retryable error, got {e:?}"
        ),
        Ok(_) => panic!("a bank opened on port {port}, where nothing listens"),
    }
    let took = started.elapsed();
    assert!(took < allowed, "opening with the server down took {took:?}");
    Ok(())
}

/// Runs the restart check on `bank`: `stop` and `start` stop and start its server (the
/// server must keep its data). Panics, naming what broke, when the driver misbehaves.
pub async fn survives_a_server_restart<S, T>(
    bank: &Bank,
    stop: S,
    start: T,
    limits: RestartLimits,
) -> Result<()>
where
    S: FnOnce(),
    T: FnOnce() -> std::result::Result<(), String>,
{
    for i in 0..limits.records {
        bank.save(
            "person",
            &format!("p{i}"),
            json!({"email": format!("{i}@x")}),
        )
        .await?;
    }
    stop();
    for _ in 0..limits.probes {
        let started = Instant::now();
        let err = bank.read("person", "p1").await.err();
        assert!(
            err.as_ref().is_some_and(Error::is_outage),
            "expected Unavailable or OutcomeUnknown while down, got {err:?}"
        );
        assert!(
            started.elapsed() < limits.hang,
            "a call hung for {:?}",
            started.elapsed()
        );
    }
    start().map_err(|e| Error::backend("testkit", e))?;
    let deadline = Instant::now() + limits.recovery;
    loop {
        match bank.read("person", "p7").await {
            Ok(record) => {
                assert_eq!(record.value, json!({"email": "7@x"}));
                break;
            }
            Err(e) if e.is_outage() && Instant::now() < deadline => {
                tokio::time::sleep(limits.retry_every).await;
            }
            Err(e) => panic!("still failing after the restart: {e}"),
        }
    }
    assert_eq!(bank.count("person").await?, limits.records as u64);
    bank.save("person", "after", json!({"email": "after@x"}))
        .await?;
    Ok(())
}

/// The retry-safety check every server-backed driver runs: while its server hangs (`pause`,
/// accepting requests but never answering), a counter increment fails within `hang` with an
/// error that is **not** safe to retry ([`Error::OutcomeUnknown`]: the server may yet apply
/// it), and after `resume` the counter holds one or two increments, never more. Panics naming
/// what broke.
pub async fn a_timed_out_counter_is_not_retryable<P, R>(
    bank: &Bank,
    pause: P,
    resume: R,
    hang: Duration,
) -> Result<()>
where
    P: FnOnce(),
    R: FnOnce(),
{
    assert_eq!(bank.incr("counter", "hits").await?, 1);
    pause();
    let started = Instant::now();
    let outcome = bank.incr("counter", "hits").await;
    let took = started.elapsed();
    resume();
    match &outcome {
        Err(e) => {
            assert!(
                e.is_outcome_unknown() && !e.is_retryable(),
                "a timed-out increment must be OutcomeUnknown (not retryable), got {e:?}"
            );
        }
        Ok(n) => panic!("an increment answered {n} from a server that was paused"),
    }
    assert!(took < hang, "the increment hung for {took:?}");
    // The paused server may apply the increment when it resumes: 2 if it did, 1 if not.
    let mut value = None;
    for _ in 0..100 {
        match bank.read("counter", "hits").await {
            Ok(record) => {
                value = record.value.as_i64();
                break;
            }
            Err(e) if e.is_outage() => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => return Err(e),
        }
    }
    assert!(
        matches!(value, Some(1 | 2)),
        "after the timeout the counter holds {value:?}"
    );
    Ok(())
}
