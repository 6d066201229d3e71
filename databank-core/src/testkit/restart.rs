//! The restart check every server-backed driver runs: records written, the server stopped,
//! every call a prompt retryable error, the server started, the same bank working again with
//! every record still there.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::{Bank, Databank, Error, Result};

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
            None,
        )
        .await?;
    }
    stop();
    for _ in 0..limits.probes {
        let started = Instant::now();
        let err = bank.read("person", "p1").await.err();
        assert!(
            err.as_ref().is_some_and(Error::is_retryable),
            "expected a retryable error while down, got {err:?}"
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
            Err(e) if e.is_retryable() && Instant::now() < deadline => {
                tokio::time::sleep(limits.retry_every).await;
            }
            Err(e) => panic!("still failing after the restart: {e}"),
        }
    }
    assert_eq!(bank.count("person").await?, limits.records as u64);
    bank.save("person", "after", json!({"email": "after@x"}), None)
        .await?;
    Ok(())
}
