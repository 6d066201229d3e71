//! `databank-bench-anchors`: our session store against the stores axum users pick today, in one
//! process, on the same servers: sections 3 (load+save per request), 4 (end to end under
//! `wrk`) and 6 (contention on one session). Run by `cargo xtask bench [--quick]`.

mod e2e;
mod heap;
mod shapes;
mod stores;

#[global_allocator]
static HEAP: heap::Counting = heap::Counting;

use std::process::ExitCode;

use databank_bench::{measure, out_dir, side_by_side, unique, Error, Mode, Report, Section};
use databank_session_store::DatabankStore;
use serde_json::json;
use shapes::Shape;
use stores::Subject;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("databank-bench-anchors: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Env {
    redis: String,
    /// A `redis-cluster://` URL (fred's form too).
    redis_cluster: String,
    mongo: String,
    postgres: String,
    secantus: bool,
}

fn env() -> Result<Env, Error> {
    let var = |name: &str| {
        std::env::var(name).map_err(|_| {
            format!("{name} is not set: run `cargo xtask bench`, which starts the servers")
        })
    };
    Ok(Env {
        redis: var("DATABANK_TEST_REDIS_URL")?,
        redis_cluster: var("DATABANK_TEST_REDIS_CLUSTER_URL")?,
        mongo: var("DATABANK_TEST_MONGO_URL")?,
        postgres: var("DATABANK_TEST_POSTGRES_URL")?,
        secantus: std::env::var("DATABANK_TEST_MONGO_KIND").is_ok_and(|k| k == "secantus"),
    })
}

async fn run() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--serve-e2e") {
        let (which, url) = match (args.get(at + 1), args.get(at + 2)) {
            (Some(which), Some(url)) => (which, url),
            _ => return Err("usage: --serve-e2e ours|anchor URL".into()),
        };
        return e2e::serve_process(which, url).await;
    }
    let mode = Mode::from_args();
    let env = env()?;
    let mut report = Report {
        mode: mode.name().into(),
        ..Report::default()
    };
    // `--only per-request,e2e,contention`, `--backend memory,redis,mongo` and (section 3)
    // `--shape one-instance,two-instances,mostly-reads,many-sessions` narrow a run (for
    // profiling one case); the report is then partial.
    let list = |flag: &str| -> Vec<String> {
        std::env::args()
            .skip_while(|a| a != flag)
            .nth(1)
            .map(|l| l.split(',').map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let (only, backends, shapes) = (list("--only"), list("--backend"), list("--shape"));
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    if wanted("per-request") {
        let (requests, costs) = per_request(mode, &env, &backends, &shapes).await?;
        report.sections.extend([requests, costs]);
    }
    if wanted("e2e") {
        report.sections.push(e2e::run(mode, &env.redis).await?);
    }
    if wanted("contention") {
        report.sections.push(contention(mode, &env).await?);
    }
    report.write(&out_dir(), "anchors")?;
    Ok(())
}

fn redis_url(env: &Env) -> String {
    let sep = if env.redis.contains('?') { '&' } else { '?' };
    format!("{}{sep}prefix={}", env.redis, unique("anchor"))
}

fn mongo_server(env: &Env) -> String {
    let base = env.mongo.trim_end_matches('/');
    match base.split_once("://") {
        Some((scheme, rest)) => format!(
            "{scheme}://{}",
            rest.split(['/', '?']).next().unwrap_or(rest)
        ),
        None => base.to_owned(),
    }
}

/// Two instances of our store on the same data, as two app processes would open it: each
/// opened from the URL (its own connections and in-process state); on `memory://`, which
/// is one process's memory, the second is a store of its own over the first one's bank.
async fn ours_pair(url: &str) -> Result<(DatabankStore, DatabankStore), Error> {
    let first = DatabankStore::open(url).await?;
    let second = if url.starts_with("memory:") {
        DatabankStore::new(first.bank().clone())
    } else {
        DatabankStore::open(url).await?
    };
    Ok((first, second))
}

async fn ours(url: &str, sessions: usize) -> Result<Subject, Error> {
    let (first, second) = ours_pair(url).await?;
    Ok(subject!(
        "databank-session-store",
        tower_sessions_core,
        create,
        first,
        second,
        sessions
    ))
}

async fn fred_store(
    url: &str,
) -> Result<
    tower_sessions_redis_store::RedisStore<tower_sessions_redis_store::fred::prelude::Pool>,
    Error,
> {
    use tower_sessions_redis_store::fred::prelude::*;
    // fred reads `redis-cluster://host:port?node=host:port` as a cluster, as we do.
    let pool = Pool::new(Config::from_url(url)?, None, None, None, 6)?;
    // The connection task runs on; its handle is not needed.
    drop(pool.connect());
    pool.wait_for_connect().await?;
    Ok(tower_sessions_redis_store::RedisStore::new(pool))
}

async fn fred(url: &str, sessions: usize) -> Result<Subject, Error> {
    Ok(subject!(
        "tower-sessions-redis-store 0.16 (fred)",
        tower_sessions_core_14,
        create,
        fred_store(url).await?,
        fred_store(url).await?,
        sessions
    ))
}

async fn mongo_store(
    env: &Env,
    database: &str,
) -> Result<tower_sessions_mongodb_store::MongoDBStore, Error> {
    let client =
        tower_sessions_mongodb_store::mongodb::Client::with_uri_str(&mongo_server(env)).await?;
    Ok(tower_sessions_mongodb_store::MongoDBStore::new(
        client,
        database.to_owned(),
    ))
}

async fn mongo_anchor(env: &Env, sessions: usize) -> Result<Subject, Error> {
    let database = unique("anchor");
    Ok(subject!(
        "tower-sessions-mongodb-store 0.11",
        tower_sessions_core_11,
        save,
        mongo_store(env, &database).await?,
        mongo_store(env, &database).await?,
        sessions
    ))
}

/// Our store on PostgreSQL, in a table of its own.
fn postgres_url(env: &Env) -> String {
    let sep = if env.postgres.contains('?') { '&' } else { '?' };
    format!("{}{sep}table={}", env.postgres, unique("ours"))
}

/// A fresh directory under `target/bench/tmp/` for a SQLite database.
fn sqlite_dir() -> Result<std::path::PathBuf, Error> {
    let dir = std::env::current_dir()?
        .join("target")
        .join("bench")
        .join("tmp")
        .join(unique("lite"));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Our store on a SQLite file of its own.
fn sqlite_url() -> Result<String, Error> {
    Ok(format!("sqlite://{}/ours.db", sqlite_dir()?.display()))
}

/// tower-sessions-sqlx-store's PostgresStore on a pool of the size ours opens, in `schema`.
async fn postgres_store(
    env: &Env,
    schema: &str,
) -> Result<tower_sessions_sqlx_store::PostgresStore, Error> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(databank_sql::DEFAULT_MAX_CONNECTIONS)
        .connect(&env.postgres)
        .await?;
    let store = tower_sessions_sqlx_store::PostgresStore::new(pool)
        .with_schema_name(schema)?
        .with_table_name("session")?;
    store.migrate().await?;
    Ok(store)
}

/// The PostgresStore, both instances on one table of its own.
async fn postgres_anchor(env: &Env, sessions: usize) -> Result<Subject, Error> {
    let schema = unique("anchor");
    Ok(subject!(
        "tower-sessions-sqlx-store 0.15 (PostgresStore)",
        tower_sessions_core_14,
        create,
        postgres_store(env, &schema).await?,
        postgres_store(env, &schema).await?,
        sessions
    ))
}

/// tower-sessions-sqlx-store's SqliteStore on `file` with the settings ours opens with (WAL,
/// synchronous=NORMAL, the same pool size).
async fn sqlite_store(
    file: &std::path::Path,
) -> Result<tower_sessions_sqlx_store::SqliteStore, Error> {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    let options = SqliteConnectOptions::new()
        .filename(file)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal);
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(databank_sql::DEFAULT_MAX_CONNECTIONS)
        .connect_with(options)
        .await?;
    let store = tower_sessions_sqlx_store::SqliteStore::new(pool);
    store.migrate().await?;
    Ok(store)
}

/// The SqliteStore, both instances on one file of its own.
async fn sqlite_anchor(sessions: usize) -> Result<Subject, Error> {
    let file = sqlite_dir()?.join("anchor.db");
    Ok(subject!(
        "tower-sessions-sqlx-store 0.15 (SqliteStore)",
        tower_sessions_core_14,
        create,
        sqlite_store(&file).await?,
        sqlite_store(&file).await?,
        sessions
    ))
}

/// tower-sessions' MemoryStore; its clones share one map (two instances of one process).
async fn memory_store(sessions: usize) -> Result<Subject, Error> {
    let store = tower_sessions_memory_store::MemoryStore::default();
    Ok(subject!(
        "tower-sessions MemoryStore 0.15",
        tower_sessions_core,
        create,
        store.clone(),
        store,
        sessions
    ))
}

/// The moka store; its clones share one cache.
async fn moka_store(sessions: usize) -> Result<Subject, Error> {
    let store = tower_sessions_moka_store::MokaStore::new(Some(1_000_000));
    Ok(subject!(
        "tower-sessions-moka-store 0.15",
        tower_sessions_core_14,
        create,
        store.clone(),
        store,
        sessions
    ))
}

/// Section 3's cases: backend, our store's URL, requests per measured run, and how many
/// sessions the many-sessions shape seeds.
fn cases(mode: Mode, env: &Env) -> Result<Vec<(&'static str, String, usize, usize)>, Error> {
    let many = mode.pick(200_000, 2_000);
    let mongo_url = format!("{}/{}?timeout_ms=120000", mongo_server(env), unique("ours"));
    let cluster_url = format!("{}&prefix={}", env.redis_cluster, unique("ours"));
    // SecantusDB serves about 1k writes/s and slows as it fills: at 1,000 requests a run and
    // 20,000 sessions its share of a full run passed half an hour (ours ran at 4 requests/s
    // among 20,000 sessions there), so a run there is smaller.
    let (mongo_ops, mongo_many) = if env.secantus {
        (mode.pick(300, 100), mode.pick(5_000, 500))
    } else {
        (mode.pick(10_000, 200), many)
    };
    Ok(vec![
        (
            "memory",
            "memory://".to_string(),
            mode.pick(50_000, 500),
            many,
        ),
        ("redis", redis_url(env), mode.pick(10_000, 300), many),
        ("redis-cluster", cluster_url, mode.pick(10_000, 300), many),
        ("mongo", mongo_url, mongo_ops, mongo_many),
        ("postgres", postgres_url(env), mode.pick(10_000, 200), many),
        ("sqlite", sqlite_url()?, mode.pick(10_000, 200), many),
    ])
}

/// The anchors for a backend, each with the target ours is held to against it: memory at least
/// the moka store and half of tower-sessions' MemoryStore (a plain map: no encoding, no
/// concurrency control); every other backend at least the store users pick instead.
async fn anchors(backend: &str, env: &Env, sessions: usize) -> Result<Vec<(Subject, f64)>, Error> {
    Ok(match backend {
        "memory" => vec![
            (memory_store(sessions).await?, 0.5),
            (moka_store(sessions).await?, 1.0),
        ],
        "redis" => vec![(fred(&env.redis, sessions).await?, 1.0)],
        "redis-cluster" => vec![(fred(&env.redis_cluster, sessions).await?, 1.0)],
        "postgres" => vec![(postgres_anchor(env, sessions).await?, 1.0)],
        "sqlite" => vec![(sqlite_anchor(sessions).await?, 1.0)],
        _ => vec![(mongo_anchor(env, sessions).await?, 1.0)],
    })
}

/// `ops` requests of `shape` on `subject`, `concurrency` at a time.
async fn run_shape(
    subject: &Subject,
    shape: Shape,
    concurrency: usize,
    ops: usize,
) -> Result<databank_bench::Stats, Error> {
    let (request, sessions) = (subject.request.clone(), subject.sessions);
    measure(concurrency, ops, move |i| request(shape.visit(i, sessions))).await
}

async fn per_request(
    mode: Mode,
    env: &Env,
    backends: &[String],
    shapes: &[String],
) -> Result<(Section, Section), Error> {
    let mut section = Section::comparison(
        "3. Session store against the existing stores, by deployment shape",
        &["backend", "shape", "concurrency"],
    );
    let mut costs = Section::new(
        "3b. What a request costs, by store and shape",
        &[
            "backend",
            "shape",
            "store",
            "client CPU µs/request",
            "Redis commands/request",
            "Redis server µs/request",
            "bytes sent/request",
            "bytes received/request",
            "in-process memory at the end",
        ],
    );
    let sessions = mode.pick(1_000, 100);
    section.note(format!(
        "A request loads a session (10 keys, about 1 KiB of JSON) and, when it changes it, sets \
         `visits` and saves, through each store's own tower-sessions `SessionStore` (`load`, \
         `save`): the calls `SessionManagerLayer` makes. Shapes: **one instance**: one store \
         value, every request saves, {sessions} sessions in turn; **two instances**: two store \
         values opened separately on the same data (each with its own connections and \
         in-process state), each session's requests alternating between them as a round-robin \
         balancer without sticky sessions does, every request saves; **mostly reads**: as two \
         instances, but 90% of requests only load (tower-sessions makes no save call for an \
         unchanged session) and 10% load and save; **many sessions**: one instance, each \
         request picking one of the many-sessions count at random (far more than any cache \
         holds), load and save. Ours is `DatabankStore` with its default options \
         (`ConflictPolicy::Merge`: concurrent saves of different keys all land) through its \
         tower-sessions 0.15 adapter; each anchor in its README's default configuration, and \
         the anchors get the same alternation (their second instance is a second pool or \
         client; MemoryStore and moka clones share one map, as two instances of one process \
         would). Measured alternately, each side first in every other repetition ({} \
         repetitions, medians); ratio = ours ÷ anchor. redis-cluster: a local Redis Cluster of \
         3 masters and 3 replicas on this machine, fred in cluster mode as the anchor. \
         postgres: the PostgreSQL `cargo xtask bench` starts (fsync off), each store in a table \
         of its own, pools of 16; sqlite: each store on a file of its own in WAL mode with \
         synchronous=NORMAL, pools of 16.",
        mode.reps()
    ));
    section.note(
        "What the anchors guarantee differs from ours: the fred store saves with `SET … XX`, \
         which does nothing once the key is deleted, so a logout sticks there too; what it \
         lacks is per-key merging (two requests that change different keys of one session: \
         the later save drops the earlier one's change; section 6 counts those). The sqlx \
         stores upsert and MemoryStore inserts, so a save that ends after a logout brings the \
         session back there. Ours merges per key and never stores a destroyed session again.",
    );
    costs.note(
        "Per request, in each shape, for each store (one run of the section's request count at \
         concurrency 32, after the timed runs): this process's CPU time (user + system, from \
         /proc; the client's work, and for SQLite the database's too); on Redis (one server) \
         the server's commands (inner commands of scripts and transactions counted one each) \
         and its time in them (`INFO commandstats`), and the bytes the store sent and received \
         (the server's `total_net_input_bytes` and `total_net_output_bytes`, which count \
         exactly what its clients sent and received). In-process memory: after the \
         many-sessions runs, the heap bytes this process held with the store's two instances \
         alive minus those it held once they were dropped (counted by the benchmark's \
         allocator; for memory stores that is the sessions themselves).",
    );
    if env.secantus {
        section.note(
            "MongoDB is SecantusDB here (about 1k writes/s, slower as it fills): 300 requests a \
             run there, and 5,000 sessions for the many-sessions shape.",
        );
    }
    for (backend, url, ops, many) in cases(mode, env)? {
        if !backends.is_empty() && !backends.iter().any(|b| b == backend) {
            continue;
        }
        for shape in Shape::ALL {
            if !shapes.is_empty() && !shapes.iter().any(|s| *s == shape.flag()) {
                continue;
            }
            let count = if shape == Shape::ManySessions {
                many
            } else {
                sessions
            };
            let url = if shape == Shape::ManySessions {
                fresh(&url)
            } else {
                url.clone()
            };
            let ours = ours(&url, count).await?;
            let anchors = anchors(backend, env, count).await?;
            for (anchor, target) in &anchors {
                for concurrency in [1, 32] {
                    let (a, b) = side_by_side(
                        mode.reps(),
                        || run_shape(&ours, shape, concurrency, ops),
                        || run_shape(anchor, shape, concurrency, ops),
                    )
                    .await?;
                    let leading = vec![
                        ("backend", json!(backend)),
                        ("shape", json!(shape.name())),
                        ("concurrency", json!(concurrency)),
                    ];
                    section.compare(leading, a, &anchor.name, b, *target);
                }
            }
            let mut subjects = vec![ours];
            subjects.extend(anchors.into_iter().map(|(anchor, _)| anchor));
            let mut server_us = Vec::new();
            for subject in subjects {
                let (mut row, server) = cost(backend, shape, &subject, env, ops).await?;
                server_us.push(server.map(|s| s.usec));
                // Ours (the first) against the anchor measured after it, on Redis.
                if let (Some(Some(ours)), Some(anchor)) = (server_us.first(), server) {
                    if server_us.len() == 2 {
                        let ratio = ours / anchor.usec.max(f64::MIN_POSITIVE);
                        costs.row(vec![
                            ("backend", json!(backend)),
                            ("shape", json!(shape.name())),
                            ("store", json!("databank-session-store ÷ the anchor")),
                            ("server time ÷ anchor's", json!(ratio)),
                            ("target", json!("≤ 3.0")),
                            ("met", json!(ratio <= 3.0)),
                        ]);
                    }
                }
                let held = if shape == Shape::ManySessions {
                    let before = heap::live();
                    drop(subject);
                    // Connections and tasks the store spawned end in their own time.
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    json!(format!(
                        "{:.1} MiB",
                        (before - heap::live()) as f64 / (1u64 << 20) as f64
                    ))
                } else {
                    json!(null)
                };
                row.push(("in-process memory at the end", held));
                costs.row(row);
            }
        }
    }
    Ok((section, costs))
}

/// A URL for a store of its own on the same server (a fresh prefix, table or file).
fn fresh(url: &str) -> String {
    if url.starts_with("sqlite:") {
        return match sqlite_url() {
            Ok(fresh) => fresh,
            Err(_) => url.replace("ours.db", "ours-many.db"),
        };
    }
    if url.starts_with("mongodb:") {
        return url.replacen("/ours", "/many", 1);
    }
    let marker = ["prefix=", "table="].into_iter().find(|m| url.contains(m));
    match marker {
        Some(m) => url.replacen(m, &format!("{m}many"), 1),
        None => url.to_owned(),
    }
}

/// One row of section 3b for `subject` in `shape`.
async fn cost(
    backend: &str,
    shape: Shape,
    subject: &Subject,
    env: &Env,
    ops: usize,
) -> Result<
    (
        Vec<(&'static str, serde_json::Value)>,
        Option<shapes::RedisCounters>,
    ),
    Error,
> {
    let on_redis = backend == "redis";
    let before = if on_redis {
        Some(shapes::RedisCounters::read(&env.redis)?)
    } else {
        None
    };
    let cpu = shapes::cpu_us();
    run_shape(subject, shape, 32, ops).await?;
    let cpu = (shapes::cpu_us() - cpu) / ops as f64;
    let server = match before {
        Some(before) => Some(before.per_request(shapes::RedisCounters::read(&env.redis)?, ops)),
        None => None,
    };
    let or_blank =
        |f: fn(&shapes::RedisCounters) -> f64| server.as_ref().map_or(json!(null), |s| json!(f(s)));
    let row = vec![
        ("backend", json!(backend)),
        ("shape", json!(shape.name())),
        ("store", json!(subject.name)),
        ("client CPU µs/request", json!(cpu)),
        ("Redis commands/request", or_blank(|s| s.calls)),
        ("Redis server µs/request", or_blank(|s| s.usec)),
        ("bytes sent/request", or_blank(|s| s.net_in)),
        ("bytes received/request", or_blank(|s| s.net_out)),
    ];
    Ok((row, server))
}

/// One measured contention run: a fresh contended session pre-filled with `prefill` keys,
/// `requests` contenders 32 at a time; the run's stats and the contenders' keys kept.
async fn contend(
    subject: &Subject,
    prefill: usize,
    requests: usize,
) -> Result<(databank_bench::Stats, usize), Error> {
    (subject.reset_contended)(prefill).await?;
    let op = subject.contend.clone();
    let stats = measure(32, requests, move |i| op(i)).await?;
    Ok((stats, (subject.contended_keys)().await?))
}

async fn contention(mode: Mode, env: &Env) -> Result<Section, Error> {
    let mut section = Section::new(
        "6. Contention: 32 concurrent requests on one session",
        &[
            "backend",
            "store",
            "session at start",
            "requests",
            "ops/s",
            "p50 µs",
            "p99 µs",
            "keys kept",
            "lost updates",
            "ratio (ours ÷ this)",
            "target",
            "met",
        ],
    );
    let requests = mode.pick(2_000, 200);
    let reps = mode.reps();
    section.note(format!(
        "{requests} requests, 32 at a time, all on one session: each loads it, adds its own key \
         `r<i>`, and saves. Afterwards the session should hold all {requests} keys; every \
         missing key is a lost update (the most lost in any repetition is shown). Ours starts \
         from an empty session and keeps every key, so its session grows to {requests} keys; an \
         anchor that loses updates keeps its session small, so besides that run (empty at \
         start) each anchor also runs on a session pre-filled with {requests} keys, the size \
         ours ends with: the ratio against that equal-size run carries the target (0 lost, \
         ≥ 0.5). Each case a fresh session; the three runs take turns, each order reversed in \
         every other repetition ({reps} repetitions, medians)."
    ));
    let subjects = vec![
        (
            "memory",
            ours("memory://", 1).await?,
            memory_store(1).await?,
        ),
        (
            "redis",
            ours(&redis_url(env), 1).await?,
            fred(&env.redis, 1).await?,
        ),
        (
            "postgres",
            ours(&postgres_url(env), 1).await?,
            postgres_anchor(env, 1).await?,
        ),
        (
            "sqlite",
            ours(&sqlite_url()?, 1).await?,
            sqlite_anchor(1).await?,
        ),
    ];
    for (backend, ours, anchor) in subjects {
        // (subject, prefill) in the order of even repetitions.
        let cases = [(&ours, 0), (&anchor, 0), (&anchor, requests)];
        let mut runs: Vec<Vec<(databank_bench::Stats, usize)>> = vec![Vec::new(); cases.len()];
        for rep in 0..reps {
            let order: Vec<usize> = if rep % 2 == 0 {
                (0..cases.len()).collect()
            } else {
                (0..cases.len()).rev().collect()
            };
            for n in order {
                let (subject, prefill) = cases[n];
                runs[n].push(contend(subject, prefill, requests).await?);
            }
        }
        let summary: Vec<(databank_bench::Stats, usize)> = runs
            .iter()
            .map(|r| {
                let stats = databank_bench::median(r.iter().map(|(s, _)| *s).collect());
                let least_kept = r.iter().map(|(_, kept)| *kept).min().unwrap_or(0);
                (stats, least_kept)
            })
            .collect();
        let ours_rate = summary[0].0.per_sec;
        let ours_lost = requests.saturating_sub(summary[0].1);
        for (n, ((subject, prefill), (stats, kept))) in cases.iter().zip(&summary).enumerate() {
            let ratio = ours_rate / stats.per_sec.max(f64::MIN_POSITIVE);
            let (ratio, target, met) = match n {
                0 => (json!(null), json!(null), json!(null)),
                1 => (json!(ratio), json!(null), json!(null)),
                _ => (
                    json!(ratio),
                    json!("0 lost, ≥ 0.5"),
                    json!(ours_lost == 0 && ratio >= 0.5),
                ),
            };
            section.row(vec![
                ("backend", json!(backend)),
                ("store", json!(subject.name)),
                (
                    "session at start",
                    json!(if *prefill == 0 {
                        "empty".to_string()
                    } else {
                        format!("{prefill} keys")
                    }),
                ),
                ("requests", json!(requests)),
                ("ops/s", json!(stats.per_sec)),
                ("p50 µs", json!(stats.p50_us)),
                ("p99 µs", json!(stats.p99_us)),
                ("keys kept", json!(kept)),
                ("lost updates", json!(requests.saturating_sub(*kept))),
                ("ratio (ours ÷ this)", ratio),
                ("target", target),
                ("met", met),
            ]);
        }
    }
    Ok(section)
}
