//! Section 1: core operations per driver, at concurrency 1 and 32.

use std::sync::Arc;
use std::time::Instant;

use databank_bench::{measure, Error, Mode, Section, Stats};
use databank_core::{json, Bank, Criteria, Schema, Value};
use futures_util::StreamExt;
use serde_json::Value as Json;

use crate::backends::{flush_redis, Env, Namespace, ALL};

const KIND: &str = "item";

/// Sizes for one backend: records loaded, operations per measured case, searches per case.
struct Sizes {
    records: usize,
    ops: usize,
    searches: usize,
}

fn sizes(mode: Mode, backend: &str, env: &Env) -> Sizes {
    let slow_mongo = backend == "mongo" && env.secantus;
    let records = match (mode, slow_mongo) {
        (Mode::Quick, _) => 1_000,
        (Mode::Full, true) => 10_000,
        (Mode::Full, false) => 100_000,
    };
    let ops = match backend {
        "memory" => mode.pick(100_000, 500),
        "disk" => mode.pick(5_000, 100),
        "postgres" | "sqlite" => mode.pick(10_000, 200),
        "redis" => mode.pick(20_000, 500),
        _ if slow_mongo => mode.pick(1_000, 100),
        _ => mode.pick(10_000, 200),
    };
    // Disk has no index: a search reads every file.
    let searches = match backend {
        "disk" => mode.pick(4, 2),
        _ => ops / 4,
    };
    Sizes {
        records,
        ops,
        searches,
    }
}

pub fn value(i: usize) -> Value {
    json!({"tag": format!("t{i}"), "n": i, "name": format!("item {i}"), "payload": "x".repeat(64)})
}

/// Loads `n` records into `bank` (concurrency 32) and returns the load's stats.
pub async fn load(bank: &Arc<Bank>, n: usize) -> Result<Stats, Error> {
    let b = bank.clone();
    measure(32, n, move |i| {
        let b = b.clone();
        async move {
            b.save(KIND, &format!("r{i}"), value(i)).await?;
            Ok(())
        }
    })
    .await
}

/// A pseudo-random existing record index, spread over the whole set.
fn spread(i: usize, n: usize) -> usize {
    (i.wrapping_mul(7919) + 13) % n.max(1)
}

pub async fn run(mode: Mode, env: &Env, backends: &[String]) -> Result<Section, Error> {
    let mut section = Section::new(
        "1. Core operations per driver",
        &[
            "backend",
            "records",
            "operation",
            "concurrency",
            "ops",
            "ops/s",
            "p50 µs",
            "p99 µs",
        ],
    );
    section.note(
        "Each case runs `ops` operations through `Bank` (the handle users hold), `concurrency` \
         at a time, on a bank loaded with `records` records of about 130 bytes \
         (`{tag, n, name, payload}`, `tag` indexed). read/save hit random existing ids; create \
         makes new ids; incr spreads over 64 counters; search asks for one `tag` (1 hit); scan \
         reads every record once.",
    );
    if env.secantus {
        section.note(
            "MongoDB here is SecantusDB, which serves about 1k writes/s: its bank holds 10k \
             records in a full run, not 100k (a real MongoDB, via DATABANK_TEST_MONGO_URL or \
             Docker, gets the full 100k).",
        );
    }
    section.note(
        "Disk has no index: a search there reads every file, so it runs only a few searches.",
    );
    for backend in ALL {
        if !backends.is_empty() && !backends.iter().any(|b| b == backend) {
            continue;
        }
        let size = sizes(mode, backend, env);
        let ns = Namespace::new(backend, env)?;
        let schema = Schema::new().index(KIND, ["tag"]);
        let bank = Arc::new(databank_core::open(&ns.url, schema).await?);
        let loaded = load(&bank, size.records).await?;
        row(
            &mut section,
            backend,
            size.records,
            "save (loading)",
            32,
            loaded,
        );
        for concurrency in [1, 32] {
            for op in ["read", "save", "create", "incr", "search"] {
                let ops = if op == "search" {
                    size.searches
                } else {
                    size.ops
                };
                let stats = case(&bank, op, concurrency, ops, size.records).await?;
                row(&mut section, backend, size.records, op, concurrency, stats);
            }
        }
        let started = Instant::now();
        let mut scanned = 0usize;
        let mut stream = bank.scan(KIND);
        while let Some(item) = stream.next().await {
            item?;
            scanned += 1;
        }
        drop(stream);
        let secs = started.elapsed().as_secs_f64();
        section.row(vec![
            ("backend", json!(backend)),
            ("records", json!(size.records)),
            ("operation", json!("scan (records/s)")),
            ("concurrency", json!(1)),
            ("ops", json!(scanned)),
            ("ops/s", json!(scanned as f64 / secs)),
        ]);
        bank.close().await?;
        ns.remove().await;
        if backend == "redis" {
            flush_redis(env).await?;
        }
    }
    Ok(section)
}

fn row(
    section: &mut Section,
    backend: &str,
    records: usize,
    op: &str,
    concurrency: usize,
    s: Stats,
) {
    section.row(vec![
        ("backend", json!(backend)),
        ("records", json!(records)),
        ("operation", json!(op)),
        ("concurrency", json!(concurrency)),
        ("ops", json!(s.ops)),
        ("ops/s", json!(s.per_sec)),
        ("p50 µs", json!(s.p50_us)),
        ("p99 µs", json!(s.p99_us)),
    ]);
}

async fn case(
    bank: &Arc<Bank>,
    op: &str,
    concurrency: usize,
    ops: usize,
    records: usize,
) -> Result<Stats, Error> {
    let b = bank.clone();
    let op = op.to_owned();
    let run = format!("c{concurrency}");
    measure(concurrency, ops, move |i| {
        let (b, op, run) = (b.clone(), op.clone(), run.clone());
        async move {
            match op.as_str() {
                "read" => {
                    b.read(KIND, &format!("r{}", spread(i, records))).await?;
                }
                "save" => {
                    let at = spread(i, records);
                    b.save(KIND, &format!("r{at}"), value(at)).await?;
                }
                "create" => {
                    b.create(KIND, &format!("new-{run}-{i}"), value(records + i))
                        .await?;
                }
                "incr" => {
                    b.incr("counter", &format!("c{}", i % 64)).await?;
                }
                _ => {
                    let at = spread(i, records);
                    let hits = b
                        .search(
                            KIND,
                            &Criteria::new().eq("tag", Json::from(format!("t{at}"))),
                        )
                        .await?;
                    if hits.len() != 1 {
                        return Err(format!(
                            "search for t{at} found {} records, not 1",
                            hits.len()
                        )
                        .into());
                    }
                }
            }
            Ok(())
        }
    })
    .await
}
