//! Section 5: session cleanup among 10k, 100k and 1M sessions, and memory per session.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use databank_bench::{measure, rss_bytes, Error, Mode, Section};
use databank_core::json;
use databank_session_store::{DatabankStore, Session};

use crate::backends::{flush_redis, Env, Namespace};

/// Expired sessions added for the fixed-count run (same count at every size).
const FIXED_EXPIRED: usize = 1_000;

fn totals(mode: Mode, backend: &str, env: &Env) -> Vec<usize> {
    match (mode, backend) {
        (Mode::Quick, "memory" | "redis") => vec![1_000, 10_000],
        (Mode::Quick, _) => vec![1_000],
        (Mode::Full, "disk") => vec![10_000, 100_000],
        (Mode::Full, "mongo") if env.secantus => vec![10_000],
        (Mode::Full, _) => vec![10_000, 100_000, 1_000_000],
    }
}

fn small_session(i: usize, expires_at: Option<chrono::DateTime<Utc>>) -> Session {
    let mut s = Session::new();
    s.insert("user", json!(format!("u{i}")));
    s.insert("visits", json!(i % 100));
    s.expires_at = expires_at;
    s
}

/// Writes `n` sessions `<prefix><i>` (concurrency 64) expiring at `expiry()`.
async fn write(
    store: &DatabankStore,
    prefix: &'static str,
    n: usize,
    expiry: fn() -> Option<chrono::DateTime<Utc>>,
) -> Result<f64, Error> {
    let store = Arc::new(store.clone());
    let stats = measure(64, n, move |i| {
        let store = store.clone();
        async move {
            let mut s = small_session(i, expiry());
            store.set(&format!("{prefix}{i}"), &mut s).await?;
            Ok(())
        }
    })
    .await?;
    Ok(stats.per_sec)
}

fn live() -> Option<chrono::DateTime<Utc>> {
    Some(Utc::now() + chrono::Duration::hours(2))
}

fn soon() -> Option<chrono::DateTime<Utc>> {
    Some(Utc::now() + chrono::Duration::milliseconds(1_500))
}

/// Writes `n` sessions that expire 1.5 s after their write, waits until all have expired, and
/// times one cleanup. Returns (milliseconds, removed).
async fn expire_and_clean(
    store: &DatabankStore,
    prefix: &'static str,
    n: usize,
) -> Result<(f64, u64), Error> {
    write(store, prefix, n, soon).await?;
    tokio::time::sleep(Duration::from_millis(1_700)).await;
    let started = Instant::now();
    let removed = store.cleanup().await?;
    Ok((started.elapsed().as_secs_f64() * 1e3, removed))
}

/// [`expire_and_clean`] of a fixed count, `reps` times (fresh ids each time); the median time.
async fn fixed_rounds(store: &DatabankStore, reps: usize) -> Result<f64, Error> {
    const PREFIXES: [&str; 3] = ["f0-", "f1-", "f2-"];
    let mut times = Vec::new();
    for prefix in PREFIXES.iter().take(reps.clamp(1, PREFIXES.len())) {
        times.push(expire_and_clean(store, prefix, FIXED_EXPIRED).await?.0);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

pub async fn run(mode: Mode, env: &Env, backends: &[String]) -> Result<Section, Error> {
    let mut section = Section::new(
        "5. Session cleanup at scale",
        &[
            "backend",
            "sessions",
            "load sessions/s",
            "expired (1%)",
            "cleanup ms (1%)",
            "removed",
            "cleanup ms (1,000 expired)",
            "vs 100k (same expired)",
            "bytes/session",
        ],
    );
    section.note(
        "For each size: load that many live sessions (`DatabankStore::set`, concurrency 64), add \
         1% that expire, wait, and time one `cleanup()`; then add 1,000 more that expire and time \
         `cleanup()` again (median of 3 rounds in a full run), so sizes compare at the same expired \
         count. Target: with native \
         expiry, cleanup cost follows the expired count, not the total — at 1,000 expired, 1M \
         sessions cost at most 2× what 100k cost. `removed` can be below the expired count on \
         Redis and MongoDB, whose servers expire records themselves (those are not counted \
         twice). PostgreSQL and SQLite purge with one `DELETE` over the partial index on \
         `(kind, expires_at)`. bytes/session: growth of this process's RSS over loading 1M sessions into the \
         memory driver (an estimate: the allocator may reuse memory freed earlier in the run).",
    );
    if env.secantus && mode == Mode::Full {
        section.note(
            "MongoDB is SecantusDB here (a few hundred to 1k writes/s, slower as it fills): only \
             10k sessions (100k would take 10 minutes or more to load, 1M hours); a real MongoDB \
             (DATABANK_TEST_MONGO_URL or Docker) gets 10k, 100k and 1M.",
        );
    }
    for backend in ["memory", "redis", "mongo", "disk", "postgres", "sqlite"] {
        if !backends.is_empty() && !backends.iter().any(|b| b == backend) {
            continue;
        }
        let mut at_100k: Option<f64> = None;
        for n in totals(mode, backend, env) {
            let ns = Namespace::new(backend, env)?;
            let store = DatabankStore::open(&ns.url).await?;
            let rss_before = rss_bytes();
            let load_rate = write(&store, "s", n, live).await?;
            let rss_after = rss_bytes();
            let one_percent = (n / 100).max(1);
            let (ms_pct, removed) = expire_and_clean(&store, "p", one_percent).await?;
            let ms_fixed = fixed_rounds(&store, mode.reps()).await?;
            if n == 100_000 {
                at_100k = Some(ms_fixed);
            }
            let (growth, target, met) = match (n, at_100k) {
                (1_000_000, Some(base)) => {
                    let growth = ms_fixed / base.max(f64::MIN_POSITIVE);
                    (
                        json!(format!("{growth:.2}×")),
                        json!("≤ 2× the 100k time"),
                        json!(growth <= 2.0),
                    )
                }
                _ => (json!(null), json!(null), json!(null)),
            };
            let per_session = if backend == "memory" && n >= 1_000_000 {
                json!(rss_after.saturating_sub(rss_before) / n as u64)
            } else {
                json!(null)
            };
            section.row(vec![
                ("backend", json!(backend)),
                ("sessions", json!(n)),
                ("load sessions/s", json!(load_rate)),
                ("expired (1%)", json!(one_percent)),
                ("cleanup ms (1%)", json!(ms_pct)),
                ("removed", json!(removed)),
                ("cleanup ms (1,000 expired)", json!(ms_fixed)),
                ("vs 100k (same expired)", growth),
                ("target", target),
                ("met", met),
                ("bytes/session", per_session),
            ]);
            store.close().await?;
            drop(store);
            ns.remove().await;
            if backend == "redis" {
                flush_redis(env).await?;
            }
        }
    }
    Ok(section)
}
