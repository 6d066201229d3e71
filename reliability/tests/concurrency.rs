//! Concurrency on every driver: 64 tasks × 1,000 `incr` on one key give exactly 64,000, and 64
//! tasks running `update_if` loops on one record lose no update.

use std::time::Instant;

use databank_core::{json, Error, Schema};

mod common;
use common::{open, TestResult};

const TASKS: u64 = 64;
const INCRS: u64 = 1_000;
const UPDATES: u64 = 5;

/// True on SecantusDB, the MongoDB-compatible test server used where no MongoDB can run. It
/// serves 30 to 80 contended writes a second on one document, so 64 x 1,000 increments would
/// take over 15 minutes: there the storms are smaller, and say so.
fn secantus(backend: &str) -> bool {
    backend == "mongo" && std::env::var("DATABANK_TEST_MONGO_KIND").as_deref() == Ok("secantus")
}

/// Increments per task.
fn incrs(backend: &str) -> u64 {
    if secantus(backend) {
        println!(
            "mongo on SecantusDB: 64 tasks x 20 increments (64 x 1,000 against a real MongoDB)"
        );
        20
    } else {
        INCRS
    }
}

/// Successful `update_if`s per task.
fn updates(backend: &str) -> u64 {
    if secantus(backend) {
        println!("mongo on SecantusDB: 64 tasks x 1 update_if (64 x 5 against a real MongoDB)");
        1
    } else {
        UPDATES
    }
}

async fn incr_storm(backend: &str) -> TestResult {
    let Some(f) = open(backend, Schema::new()).await else {
        return Ok(());
    };
    let per_task = incrs(backend);
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let bank = f.bank.clone();
            tokio::spawn(async move {
                for _ in 0..per_task {
                    bank.incr("counter", "hot").await?;
                }
                Ok::<_, Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let total = f.bank.read("counter", "hot").await?.value;
    println!(
        "{backend}: {} increments in {:?}",
        TASKS * per_task,
        started.elapsed()
    );
    assert_eq!(total, json!(TASKS * per_task));
    Ok(())
}

async fn update_if_storm(backend: &str) -> TestResult {
    let Some(f) = open(backend, Schema::new()).await else {
        return Ok(());
    };
    f.bank
        .create("doc", "shared", json!({"n": 0, "by": {}}))
        .await?;
    let per_task = updates(backend);
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let bank = f.bank.clone();
            tokio::spawn(async move {
                let mut conflicts = 0u64;
                for _ in 0..per_task {
                    loop {
                        let record = bank.read("doc", "shared").await?;
                        let mut value = record.value;
                        let n = value["n"].as_u64().unwrap_or(0);
                        value["n"] = json!(n + 1);
                        let mine = value["by"][t.to_string()].as_u64().unwrap_or(0);
                        value["by"][t.to_string()] = json!(mine + 1);
                        match bank
                            .update_if("doc", "shared", value, record.revision)
                            .await
                        {
                            Ok(_) => break,
                            Err(Error::Conflict { .. }) => conflicts += 1,
                            Err(e) => return Err(e),
                        }
                    }
                }
                Ok::<_, Error>(conflicts)
            })
        })
        .collect();
    let mut conflicts = 0;
    for task in tasks {
        conflicts += task.await??;
    }
    let value = f.bank.read("doc", "shared").await?.value;
    println!(
        "{backend}: {} updates, {conflicts} conflicts retried, in {:?}",
        TASKS * per_task,
        started.elapsed()
    );
    assert_eq!(value["n"], json!(TASKS * per_task), "lost updates");
    for t in 0..TASKS {
        assert_eq!(
            value["by"][t.to_string()],
            json!(per_task),
            "task {t} lost updates"
        );
    }
    Ok(())
}

macro_rules! backends {
    ($($backend:ident),*) => {
        $(
            mod $backend {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn incr_from_64_tasks_loses_no_increment() -> super::TestResult {
                    super::incr_storm(stringify!($backend)).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn update_if_loops_of_64_tasks_lose_no_update() -> super::TestResult {
                    super::update_if_storm(stringify!($backend)).await
                }
            }
        )*
    };
}

backends!(memory, disk, redis, mongo);
