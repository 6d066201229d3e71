//! A steady load from 16 tasks (two writes to one read, each task on its own keys; the writes
//! whole saves and patches on a base that move the expiry), a log of
//! what each key was last acknowledged to hold, and the check that nothing acknowledged was
//! lost: what the outage and the cluster suites share.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use databank_core::{json, Bank, Revision};

pub const TASKS: usize = 16;

#[derive(Default)]
pub struct Log {
    /// key -> (last acknowledged value, values attempted after it whose outcome is unknown).
    pub writes: HashMap<String, (Option<u64>, Vec<u64>)>,
    pub successes: u64,
    pub errors: u64,
    pub slowest_error: Duration,
    /// Errors that are not outage errors.
    pub not_outage: Vec<String>,
    /// The first few errors, whatever they were.
    pub first_errors: Vec<String>,
}

pub fn lock(log: &Mutex<Log>) -> std::sync::MutexGuard<'_, Log> {
    log.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts the tasks; each writes `{"n": n}` to `t<task>-k<n % keys>` of type `load` (and reads
/// every third time) until `stop` is set, logging into `log`.
pub fn start(
    bank: &Bank,
    keys: u64,
    stop: &Arc<AtomicBool>,
    log: &Arc<Mutex<Log>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..TASKS)
        .map(|t| {
            let (bank, stop, log) = (bank.clone(), Arc::clone(stop), Arc::clone(log));
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let key = format!("t{t}-k{}", n % keys);
                    let write = !n.is_multiple_of(3);
                    let started = Instant::now();
                    let later = Some(chrono::Utc::now() + chrono::Duration::hours(1));
                    let result = if write && n % 4 == 1 {
                        // What a session store sends per request: a patch on a base revision
                        // that moves the expiry (on Redis, a transaction of plain commands).
                        match bank
                            .patch("load", &key)
                            .set("n", n)
                            .expires_at(later)
                            .must_exist()
                            .applied_on(Revision::new(1))
                            .await
                        {
                            // Not written yet: nothing to patch, nothing written.
                            Err(e) if e.is_not_found() => continue,
                            other => other.map(|_| ()),
                        }
                    } else if write {
                        bank.save("load", &key, json!({"n": n}))
                            .expires_at(later)
                            .await
                            .map(|_| ())
                    } else {
                        match bank.read("load", &key).await {
                            Err(e) if e.is_not_found() => Ok(()),
                            other => other.map(|_| ()),
                        }
                    };
                    let elapsed = started.elapsed();
                    let failed = {
                        let mut log = lock(&log);
                        match result {
                            Ok(()) => {
                                log.successes += 1;
                                if write {
                                    log.writes.insert(key, (Some(n), Vec::new()));
                                }
                                false
                            }
                            Err(e) => {
                                log.errors += 1;
                                log.slowest_error = log.slowest_error.max(elapsed);
                                if !e.is_outage() {
                                    log.not_outage.push(e.to_string());
                                }
                                if log.first_errors.len() < 5 {
                                    log.first_errors.push(e.to_string());
                                }
                                // A retryable (Unavailable) write was not applied: it must never
                                // show up. One whose outcome is unknown may.
                                if write && !e.is_retryable() {
                                    log.writes.entry(key).or_default().1.push(n);
                                }
                                true
                            }
                        }
                    };
                    if failed {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            })
        })
        .collect()
}

/// Keys whose stored value is older than the last acknowledged write (or gone), and keys
/// holding a value no write of the log set (newer than acknowledged, not attempted: or one
/// reported `Unavailable`, which must never apply).
pub async fn lost_writes(bank: &Bank, log: &Log) -> (Vec<String>, Vec<String>) {
    let (mut lost, mut foreign) = (Vec::new(), Vec::new());
    for (key, (acked, attempted)) in &log.writes {
        let stored = match bank.read("load", key).await {
            Ok(record) => record.value["n"].as_u64(),
            Err(e) if e.is_not_found() => None,
            Err(e) => panic!("{key} unreadable after the load: {e}"),
        };
        if stored == *acked || stored.is_some_and(|s| attempted.contains(&s)) {
            continue;
        }
        match (stored, acked) {
            (Some(s), Some(a)) if s > *a => foreign.push(format!("{key}: {s} (acked {a})")),
            _ => lost.push(format!("{key}: {stored:?} (acked {acked:?})")),
        }
    }
    (lost, foreign)
}

/// Stops the tasks, waits for them, and takes their log.
pub async fn finish(
    stop: &AtomicBool,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    log: &Mutex<Log>,
) -> Result<Log, tokio::task::JoinError> {
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await?;
    }
    Ok(std::mem::take(&mut *lock(log)))
}
