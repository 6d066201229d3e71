//! Measuring tools shared by the benchmark binaries (`databank-bench` here, and the anchors
//! crate in `bench-anchors/`): a load generator with latency percentiles, side-by-side runs
//! that report medians and ratios, and the report sections they write.
//!
//! Benchmarks, not tests: nothing here asserts a timing. `cargo xtask bench` runs them and
//! writes `target/bench/report.md` and `target/bench/report.json`.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub mod charts;
pub mod report;

pub use report::{merge, Report, Section};

/// A boxed error with a message: benchmarks stop on the first failed operation.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// One measured run.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Stats {
    /// Operations completed.
    pub ops: u64,
    /// Wall time of the whole run.
    pub secs: f64,
    /// Operations per second.
    pub per_sec: f64,
    /// Median latency of one operation, in microseconds.
    pub p50_us: f64,
    /// 99th percentile latency, in microseconds.
    pub p99_us: f64,
}

/// Runs `ops` operations, `concurrency` at a time; `op(i)` is the i-th operation.
pub async fn measure<F, Fut>(concurrency: usize, ops: usize, op: F) -> Result<Stats, Error>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Error>> + Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.max(1) {
        let (op, next) = (op.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= ops {
                    return Ok::<_, Error>(latencies);
                }
                let t = Instant::now();
                op(i).await?;
                latencies.push(t.elapsed());
            }
        }));
    }
    let mut all: Vec<Duration> = Vec::with_capacity(ops);
    for task in tasks {
        all.extend(task.await??);
    }
    Ok(stats(started.elapsed(), all))
}

/// Stats of a run from its wall time and per-operation latencies.
pub fn stats(elapsed: Duration, mut latencies: Vec<Duration>) -> Stats {
    latencies.sort_unstable();
    let pick = |q: f64| {
        if latencies.is_empty() {
            0.0
        } else {
            let at = ((latencies.len() as f64 - 1.0) * q).round() as usize;
            latencies[at].as_secs_f64() * 1e6
        }
    };
    let secs = elapsed.as_secs_f64();
    Stats {
        ops: latencies.len() as u64,
        secs,
        per_sec: if secs > 0.0 {
            latencies.len() as f64 / secs
        } else {
            0.0
        },
        p50_us: pick(0.50),
        p99_us: pick(0.99),
    }
}

/// The run with the median throughput (p50/p99 from that same run).
pub fn median(mut runs: Vec<Stats>) -> Stats {
    runs.sort_by(|a, b| a.per_sec.total_cmp(&b.per_sec));
    runs.get(runs.len() / 2).copied().unwrap_or_default()
}

/// Ours and an anchor measured alternately `reps` times in one run (ours first, then the
/// anchor, and again), so both see the same machine state; returns the medians.
pub async fn side_by_side<A, B, FA, FB>(
    reps: usize,
    mut ours: A,
    mut anchor: B,
) -> Result<(Stats, Stats), Error>
where
    A: FnMut() -> FA,
    B: FnMut() -> FB,
    FA: Future<Output = Result<Stats, Error>>,
    FB: Future<Output = Result<Stats, Error>>,
{
    let (mut a, mut b) = (Vec::new(), Vec::new());
    // Each goes first in every other repetition (ABBA...), so neither always runs on a
    // colder or a more crowded machine than the other.
    for rep in 0..reps.max(1) {
        if rep % 2 == 0 {
            a.push(ours().await?);
            b.push(anchor().await?);
        } else {
            b.push(anchor().await?);
            a.push(ours().await?);
        }
    }
    Ok((median(a), median(b)))
}

/// A name no other run picks: `prefix`, the process id, a counter and the clock's nanoseconds.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}{:x}x{}x{nanos:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Resident memory of this process, in bytes (Linux `/proc/self/statm`; 0 elsewhere).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

/// A run's size: `--quick` proves the benches build and run in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Small sizes, one repetition.
    Quick,
    /// The sizes the issue names, three repetitions.
    Full,
}

impl Mode {
    /// From the command line (`--quick`).
    pub fn from_args() -> Self {
        if std::env::args().any(|a| a == "--quick") {
            Mode::Quick
        } else {
            Mode::Full
        }
    }

    /// `full` in a full run, `quick` in a quick one.
    pub fn pick<T>(self, full: T, quick: T) -> T {
        match self {
            Mode::Full => full,
            Mode::Quick => quick,
        }
    }

    /// `quick` or `full`, as the report names it.
    pub fn name(self) -> &'static str {
        self.pick("full", "quick")
    }

    /// Repetitions of each side-by-side comparison.
    pub fn reps(self) -> usize {
        self.pick(3, 1)
    }
}

/// The value of `--out DIR` (default `target/bench`).
pub fn out_dir() -> std::path::PathBuf {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("target/bench"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_median() {
        let lat: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        let s = stats(Duration::from_secs(2), lat);
        assert_eq!(s.ops, 100);
        assert_eq!(s.per_sec, 50.0);
        assert_eq!(s.p50_us.round(), 51.0);
        assert_eq!(s.p99_us.round(), 99.0);
        let runs = [3.0, 1.0, 2.0].map(|per_sec| Stats {
            per_sec,
            ..Stats::default()
        });
        assert_eq!(median(runs.to_vec()).per_sec, 2.0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn measure_runs_every_operation_once() -> Result<(), Error> {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let s = measure(8, 100, move |i| {
            let log = log.clone();
            async move {
                log.lock().map_err(|e| e.to_string())?.push(i);
                Ok(())
            }
        })
        .await?;
        assert_eq!(s.ops, 100);
        let mut seen = seen.lock().map_err(|e| e.to_string())?.clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
        Ok(())
    }
}
