//! `databank-bench-anchors`: our session store against the stores axum users pick today, in one
//! process, on the same servers: sections 3 (load+save per request), 4 (end to end under
//! `wrk`) and 6 (contention on one session). Run by `cargo xtask bench [--quick]`.

mod e2e;
mod stores;

use std::process::ExitCode;

use databank_bench::{measure, out_dir, side_by_side, unique, Error, Mode, Report, Section};
use databank_session_store::DatabankStore;
use serde_json::json;
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
    let mode = Mode::from_args();
    let env = env()?;
    databank_session_store::register_drivers()?;
    let mut report = Report {
        mode: mode.name().into(),
        ..Report::default()
    };
    // `--only per-request,e2e,contention` and `--backend memory,redis,mongo` narrow a run (for
    // profiling one case); the report is then partial.
    let list = |flag: &str| -> Vec<String> {
        std::env::args()
            .skip_while(|a| a != flag)
            .nth(1)
            .map(|l| l.split(',').map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let (only, backends) = (list("--only"), list("--backend"));
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    if wanted("per-request") {
        report
            .sections
            .push(per_request(mode, &env, &backends).await?);
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

/// The Redis server's total command calls so far (`INFO commandstats`, read with `redis-cli`).
fn redis_calls(url: &str) -> Result<u64, Error> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = host_port.rsplit_once(':').unwrap_or((host_port, "6379"));
    let out = std::process::Command::new("redis-cli")
        .args(["-h", host, "-p", port, "INFO", "commandstats"])
        .output()?;
    if !out.status.success() {
        return Err(format!("redis-cli INFO commandstats failed: {}", out.status).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            line.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum())
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

async fn ours(url: &str, sessions: usize) -> Result<Subject, Error> {
    let store = DatabankStore::open(url).await?;
    Ok(subject!(
        "databank-session-store",
        tower_sessions_core,
        create,
        store,
        sessions
    ))
}

async fn fred(url: &str, sessions: usize) -> Result<Subject, Error> {
    use tower_sessions_redis_store::fred::prelude::*;
    // fred reads `redis-cluster://host:port?node=host:port` as a cluster, as we do.
    let pool = Pool::new(Config::from_url(url)?, None, None, None, 6)?;
    // The connection task runs on; its handle is not needed.
    drop(pool.connect());
    pool.wait_for_connect().await?;
    let store = tower_sessions_redis_store::RedisStore::new(pool);
    Ok(subject!(
        "tower-sessions-redis-store 0.16 (fred)",
        tower_sessions_core_14,
        create,
        store,
        sessions
    ))
}

async fn mongo_anchor(env: &Env, sessions: usize) -> Result<Subject, Error> {
    let client =
        tower_sessions_mongodb_store::mongodb::Client::with_uri_str(&mongo_server(env)).await?;
    let store = tower_sessions_mongodb_store::MongoDBStore::new(client, unique("anchor"));
    Ok(subject!(
        "tower-sessions-mongodb-store 0.11",
        tower_sessions_core_11,
        save,
        store,
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

/// tower-sessions-sqlx-store's PostgresStore on a pool of the size ours opens, in a table of
/// its own.
async fn postgres_anchor(env: &Env, sessions: usize) -> Result<Subject, Error> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(databank_sql::DEFAULT_MAX_CONNECTIONS)
        .connect(&env.postgres)
        .await?;
    let store = tower_sessions_sqlx_store::PostgresStore::new(pool)
        .with_schema_name(unique("anchor"))?
        .with_table_name("session")?;
    store.migrate().await?;
    Ok(subject!(
        "tower-sessions-sqlx-store 0.15 (PostgresStore)",
        tower_sessions_core_14,
        create,
        store,
        sessions
    ))
}

/// tower-sessions-sqlx-store's SqliteStore with the settings ours opens with (WAL,
/// synchronous=NORMAL, the same pool size).
async fn sqlite_anchor(sessions: usize) -> Result<Subject, Error> {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    let options = SqliteConnectOptions::new()
        .filename(sqlite_dir()?.join("anchor.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal);
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(databank_sql::DEFAULT_MAX_CONNECTIONS)
        .connect_with(options)
        .await?;
    let store = tower_sessions_sqlx_store::SqliteStore::new(pool);
    store.migrate().await?;
    Ok(subject!(
        "tower-sessions-sqlx-store 0.15 (SqliteStore)",
        tower_sessions_core_14,
        create,
        store,
        sessions
    ))
}

async fn memory_store(sessions: usize) -> Result<Subject, Error> {
    let store = tower_sessions_memory_store::MemoryStore::default();
    Ok(subject!(
        "tower-sessions MemoryStore 0.15",
        tower_sessions_core,
        create,
        store,
        sessions
    ))
}

async fn moka_store(sessions: usize) -> Result<Subject, Error> {
    let store = tower_sessions_moka_store::MokaStore::new(Some(1_000_000));
    Ok(subject!(
        "tower-sessions-moka-store 0.15",
        tower_sessions_core_14,
        create,
        store,
        sessions
    ))
}

async fn per_request(mode: Mode, env: &Env, backends: &[String]) -> Result<Section, Error> {
    let mut section = Section::comparison(
        "3. Session store against the existing stores (load + save per request)",
        &["backend", "concurrency"],
    );
    let sessions = mode.pick(1_000, 100);
    section.note(format!(
        "A request loads one of {sessions} sessions (10 keys, about 1 KiB of JSON), sets a key \
         and saves it, through each store's own tower-sessions `SessionStore` (`load`, `save`): \
         the calls `SessionManagerLayer` makes per request. Ours is `DatabankStore` through its \
         tower-sessions 0.15 adapter, with optimistic concurrency on (the anchors have none). \
         Same server, alternately measured ({} repetitions, medians); ratio = ours ÷ anchor. \
         redis-cluster: a local Redis Cluster of 3 masters and 3 replicas on this machine, fred \
         in cluster mode as the anchor. postgres: the PostgreSQL `cargo xtask bench` starts \
         (fsync off), each store in a table of its own, pools of 16; sqlite: each store on a \
         file of its own in WAL mode with synchronous=NORMAL, pools of 16.",
        mode.reps()
    ));
    let slow_mongo = env.secantus;
    if slow_mongo {
        section.note("MongoDB is SecantusDB here (about 1k writes/s): fewer requests there.");
    }
    let memory_url = "memory://".to_string();
    let mongo_url = format!("{}/{}?timeout_ms=120000", mongo_server(env), unique("ours"));
    let cluster_url = format!("{}&prefix={}", env.redis_cluster, unique("ours"));
    let cases: [(&str, String, usize); 6] = [
        ("memory", memory_url, mode.pick(50_000, 500)),
        ("redis", redis_url(env), mode.pick(10_000, 300)),
        ("redis-cluster", cluster_url, mode.pick(10_000, 300)),
        (
            "mongo",
            mongo_url,
            if slow_mongo {
                mode.pick(1_000, 100)
            } else {
                mode.pick(10_000, 200)
            },
        ),
        ("postgres", postgres_url(env), mode.pick(10_000, 200)),
        ("sqlite", sqlite_url()?, mode.pick(10_000, 200)),
    ];
    for (backend, url, ops) in cases {
        if !backends.is_empty() && !backends.iter().any(|b| b == backend) {
            continue;
        }
        let ours = ours(&url, sessions).await?;
        // The targets of the session-patch issue: memory at least the moka store and half of
        // tower-sessions' MemoryStore (a plain map: no encoding, no concurrency control),
        // Redis and MongoDB at least the store users pick instead.
        let anchors = match backend {
            "memory" => vec![
                (memory_store(sessions).await?, 0.5),
                (moka_store(sessions).await?, 1.0),
            ],
            "redis" => vec![(fred(&env.redis, sessions).await?, 1.0)],
            "redis-cluster" => vec![(fred(&env.redis_cluster, sessions).await?, 1.0)],
            "postgres" => vec![(postgres_anchor(env, sessions).await?, 1.0)],
            "sqlite" => vec![(sqlite_anchor(sessions).await?, 1.0)],
            _ => vec![(mongo_anchor(env, sessions).await?, 1.0)],
        };
        if backend == "redis" {
            let requests = mode.pick(2_000, 100);
            let mut counts = Vec::new();
            for subject in std::iter::once(&ours).chain(anchors.iter().map(|(a, _)| a)) {
                let before = redis_calls(&env.redis)?;
                let op = subject.request.clone();
                measure(1, requests, move |i| op(i)).await?;
                let after = redis_calls(&env.redis)?;
                // The first INFO is counted in `after`.
                let per = after.saturating_sub(before + 1) as f64 / requests as f64;
                counts.push(format!("{}: {per:.1}", subject.name));
            }
            section.note(format!(
                "Redis commands per request (load + save), from `INFO commandstats` around {requests} \
                 requests (commands a Lua script runs count one each): {}.",
                counts.join("; ")
            ));
        }
        for (anchor, target) in &anchors {
            for concurrency in [1, 32] {
                let (a, b) = side_by_side(
                    mode.reps(),
                    || {
                        let op = ours.request.clone();
                        measure(concurrency, ops, move |i| op(i))
                    },
                    || {
                        let op = anchor.request.clone();
                        measure(concurrency, ops, move |i| op(i))
                    },
                )
                .await?;
                let leading = vec![
                    ("backend", json!(backend)),
                    ("concurrency", json!(concurrency)),
                ];
                section.compare(leading, a, &anchor.name, b, *target);
            }
        }
    }
    Ok(section)
}

async fn contention(mode: Mode, env: &Env) -> Result<Section, Error> {
    let mut section = Section::new(
        "6. Contention: 32 concurrent requests on one session",
        &[
            "backend",
            "store",
            "requests",
            "ops/s",
            "p50 µs",
            "p99 µs",
            "keys kept",
            "lost updates",
            "ratio",
            "target",
            "met",
        ],
    );
    let requests = mode.pick(2_000, 200);
    section.note(format!(
        "{requests} requests, 32 at a time, all on one session: each loads it, adds its own key \
         `r<i>`, and saves. Afterwards the session should hold all {requests} keys; every \
         missing key is a lost update. Target for ours: 0 lost, at ≥ 0.5× the anchor's \
         throughput (ratio = ours ÷ the anchor on the same backend)."
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
        let mut measured = Vec::new();
        for subject in [&ours, &anchor] {
            let op = subject.contend.clone();
            let stats = measure(32, requests, move |i| op(i)).await?;
            let kept = (subject.contended_keys)().await?;
            measured.push((subject, stats, kept));
        }
        let anchor_rate = measured[1].1.per_sec.max(f64::MIN_POSITIVE);
        for (n, (subject, stats, kept)) in measured.into_iter().enumerate() {
            let ratio = stats.per_sec / anchor_rate;
            let (ratio, target, met) = if n == 0 {
                let lost = requests.saturating_sub(kept);
                (
                    json!(ratio),
                    json!("0 lost, ≥ 0.5"),
                    json!(lost == 0 && ratio >= 0.5),
                )
            } else {
                (json!(""), json!(""), json!(""))
            };
            section.row(vec![
                ("backend", json!(backend)),
                ("store", json!(subject.name)),
                ("requests", json!(requests)),
                ("ops/s", json!(stats.per_sec)),
                ("p50 µs", json!(stats.p50_us)),
                ("p99 µs", json!(stats.p99_us)),
                ("keys kept", json!(kept)),
                ("lost updates", json!(requests.saturating_sub(kept))),
                ("ratio", ratio),
                ("target", target),
                ("met", met),
            ]);
        }
    }
    Ok(section)
}
