//! Section 2: our `read`/`save` against the raw client doing the same work on the same server.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use databank_bench::{measure, side_by_side, Error, Mode, Section, Stats};
use databank_core::{json, Bank, Schema};
use mongodb::bson::{doc, Document};

use crate::backends::{Env, Namespace};
use crate::core_ops::value;

const KIND: &str = "raw";
/// Distinct ids the operations cycle over (all loaded first, so reads hit).
const IDS: usize = 1_000;
const TARGET: f64 = 0.9;

pub async fn run(mode: Mode, env: &Env, backends: &[String]) -> Result<Vec<Section>, Error> {
    let want = |b: &str| backends.is_empty() || backends.iter().any(|x| x == b);
    let mut section = Section::comparison(
        "2. Overhead against the raw client",
        &["backend", "operation", "concurrency"],
    );
    section.note(format!(
        "Same server, same connection setup, same ~130-byte JSON value, {IDS} ids; each pair \
         measured alternately ({} repetitions, medians). ratio = ours ops/s ÷ anchor ops/s. \
         Ours goes through `Bank` (input checks included). Redis: our read is one HGETALL, our \
         save one script (its checks before its writes) that also keeps the bucket's sorted set \
         of ids; raw is \
         GET/SET on a `ConnectionManager`; redis-cluster: the same on a local cluster of 3 masters \
         and 3 replicas, raw GET/SET through the `redis` crate's cluster client; the raw side \
         decodes the JSON it reads into a value and encodes the value it writes, as ours does. \
         MongoDB: raw `find_one`/`replace_one(upsert)` on \
         `{{_id, v}}`. Disk: our durable save against a hand-written write-temp + fsync + \
         rename + fsync-dir loop in `std::fs` (each in `spawn_blocking`, as ours). PostgreSQL and \
         SQLite: raw sqlx on a table `(id PRIMARY KEY, v)` (`jsonb` / `TEXT`), `SELECT v` by id \
         and `INSERT … ON CONFLICT (id) DO UPDATE`, on a pool of the size ours opens (16).",
        mode.reps()
    ));
    if want("redis") {
        redis_pairs(mode, env, &mut section).await?;
    }
    if want("mongo") {
        mongo_pairs(mode, env, &mut section).await?;
    }
    if want("disk") {
        disk_pair(mode, env, &mut section).await?;
    }
    if want("postgres") {
        postgres_pairs(mode, env, &mut section).await?;
    }
    if want("sqlite") {
        sqlite_pairs(mode, env, &mut section).await?;
    }
    let mut ceiling = Section::new(
        "2b. redis-benchmark on the same server (the server's ceiling here)",
        &["command", "concurrency", "requests", "ops/s"],
    );
    if want("redis") {
        redis_benchmark(mode, env, &mut ceiling)?;
    }
    Ok(vec![section, ceiling])
}

fn pair_row(
    section: &mut Section,
    backend: &str,
    op: &str,
    c: usize,
    pair: (Stats, Stats),
    anchor: &str,
) {
    let leading = vec![
        ("backend", json!(backend)),
        ("operation", json!(op)),
        ("concurrency", json!(c)),
    ];
    section.compare(leading, pair.0, anchor, pair.1, TARGET);
}

async fn open(backend: &str, env: &Env) -> Result<(Arc<Bank>, Namespace), Error> {
    let ns = Namespace::new(backend, env)?;
    let bank = Arc::new(databank_core::open(&ns.url, Schema::new()).await?);
    for i in 0..IDS {
        bank.save(KIND, &format!("k{i}"), value(i)).await?;
    }
    Ok((bank, ns))
}

/// Our read or save of id `k<i % IDS>`, `ops` times.
async fn ours(bank: &Arc<Bank>, op: &'static str, c: usize, ops: usize) -> Result<Stats, Error> {
    let b = bank.clone();
    measure(c, ops, move |i| {
        let b = b.clone();
        async move {
            let id = format!("k{}", i % IDS);
            if op == "read" {
                b.read(KIND, &id).await?;
            } else {
                b.save(KIND, &id, value(i % IDS)).await?;
            }
            Ok(())
        }
    })
    .await
}

async fn redis_pairs(mode: Mode, env: &Env, section: &mut Section) -> Result<(), Error> {
    let (bank, ns) = open("redis", env).await?;
    let raw = redis::Client::open(env.redis.as_str())?
        .get_connection_manager()
        .await?;
    raw_redis_pairs(mode, section, "redis", &bank, raw).await?;
    bank.close().await?;
    ns.remove().await;
    // The same pairs on a Redis Cluster, against the `redis` crate's own cluster client.
    if let Some(cluster) = &env.redis_cluster {
        let url = format!("{cluster}&prefix={}", databank_bench::unique("bench"));
        let bank = Arc::new(databank_core::open(&url, Schema::new()).await?);
        for i in 0..IDS {
            bank.save(KIND, &format!("k{i}"), value(i)).await?;
        }
        let nodes = databank_redis::RedisConfig::from_url(cluster)?.cluster_nodes;
        let raw = redis::cluster::ClusterClient::new(nodes)?
            .get_async_connection()
            .await?;
        raw_redis_pairs(mode, section, "redis-cluster", &bank, raw).await?;
        for i in 0..IDS {
            bank.delete(KIND, &format!("k{i}")).await?;
        }
        bank.close().await?;
    }
    Ok(())
}

/// Our read and save against GET and SET on the raw connection `raw`, at c=1 and c=32.
async fn raw_redis_pairs<C>(
    mode: Mode,
    section: &mut Section,
    backend: &str,
    bank: &Arc<Bank>,
    raw: C,
) -> Result<(), Error>
where
    C: redis::aio::ConnectionLike + Clone + Send + Sync + 'static,
{
    let text = serde_json::to_string(&value(0))?;
    let prefix = databank_bench::unique("rawbench");
    {
        let mut conn = raw.clone();
        for i in 0..IDS {
            redis::cmd("SET")
                .arg(format!("{prefix}:{i}"))
                .arg(&text)
                .query_async::<()>(&mut conn)
                .await?;
        }
    }
    let ops = mode.pick(20_000, 500);
    for op in ["read", "save"] {
        for c in [1, 32] {
            let (ours_stats, raw_stats) = side_by_side(
                mode.reps(),
                || ours(bank, op, c, ops),
                || {
                    let (raw, prefix) = (raw.clone(), prefix.clone());
                    // What ours does on each side: the JSON it reads is decoded into a value,
                    // the value it writes is encoded.
                    measure(c, ops, move |i| {
                        let (mut conn, prefix) = (raw.clone(), prefix.clone());
                        async move {
                            let key = format!("{prefix}:{}", i % IDS);
                            if op == "read" {
                                let got: Option<Vec<u8>> =
                                    redis::cmd("GET").arg(key).query_async(&mut conn).await?;
                                let bytes = got.ok_or("raw GET found nothing")?;
                                serde_json::from_slice::<serde_json::Value>(&bytes)?;
                            } else {
                                let text = serde_json::to_vec(&value(i % IDS))?;
                                redis::cmd("SET")
                                    .arg(key)
                                    .arg(text)
                                    .query_async::<()>(&mut conn)
                                    .await?;
                            }
                            Ok(())
                        }
                    })
                },
            )
            .await?;
            let anchor = if op == "read" {
                "redis GET"
            } else {
                "redis SET"
            };
            pair_row(section, backend, op, c, (ours_stats, raw_stats), anchor);
        }
    }
    let mut conn = raw.clone();
    for i in 0..IDS {
        redis::cmd("DEL")
            .arg(format!("{prefix}:{i}"))
            .query_async::<()>(&mut conn)
            .await?;
    }
    Ok(())
}

async fn mongo_pairs(mode: Mode, env: &Env, section: &mut Section) -> Result<(), Error> {
    let (bank, ns) = open("mongo", env).await?;
    let client = mongodb::Client::with_uri_str(&env.mongo).await?;
    let db_name = databank_bench::unique("rawbench");
    let coll = client.database(&db_name).collection::<Document>("raw");
    let doc_of = |i: usize| -> Result<Document, Error> {
        let v = mongodb::bson::to_bson(&value(i))?;
        Ok(doc! { "_id": format!("k{i}"), "v": v })
    };
    for i in 0..IDS {
        coll.replace_one(doc! {"_id": format!("k{i}")}, doc_of(i)?)
            .upsert(true)
            .await?;
    }
    let ops = if env.secantus {
        mode.pick(1_000, 100)
    } else {
        mode.pick(10_000, 200)
    };
    let docs: Arc<Vec<Document>> = Arc::new((0..IDS).map(doc_of).collect::<Result<_, _>>()?);
    for op in ["read", "save"] {
        for c in [1, 32] {
            let (ours_stats, raw_stats) = side_by_side(
                mode.reps(),
                || ours(&bank, op, c, ops),
                || {
                    let (coll, docs) = (coll.clone(), docs.clone());
                    measure(c, ops, move |i| {
                        let (coll, docs) = (coll.clone(), docs.clone());
                        async move {
                            let id = format!("k{}", i % IDS);
                            if op == "read" {
                                coll.find_one(doc! {"_id": id})
                                    .await?
                                    .ok_or("raw find_one found nothing")?;
                            } else {
                                coll.replace_one(doc! {"_id": id}, &docs[i % IDS])
                                    .upsert(true)
                                    .await?;
                            }
                            Ok(())
                        }
                    })
                },
            )
            .await?;
            let anchor = if op == "read" {
                "find_one"
            } else {
                "replace_one(upsert)"
            };
            pair_row(section, "mongo", op, c, (ours_stats, raw_stats), anchor);
        }
    }
    let _ = client.database(&db_name).drop().await;
    bank.close().await?;
    ns.remove().await;
    Ok(())
}

/// The hand-written durable write: temp file, fsync, rename over the target, fsync the directory.
fn durable_write(dir: &std::path::Path, name: &str, bytes: &[u8], n: u64) -> std::io::Result<()> {
    let tmp = dir.join(format!(".tmp-{name}-{n}"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

async fn disk_pair(mode: Mode, env: &Env, section: &mut Section) -> Result<(), Error> {
    let (bank, ns) = open("disk", env).await?;
    let dir: PathBuf = std::env::current_dir()?
        .join("target")
        .join("bench")
        .join("tmp")
        .join(databank_bench::unique("rawdisk"));
    std::fs::create_dir_all(&dir)?;
    let text = Arc::new(serde_json::to_vec(&value(0))?);
    let seq = Arc::new(AtomicU64::new(0));
    let ops = mode.pick(3_000, 100);
    for c in [1, 32] {
        let (ours_stats, raw_stats) = side_by_side(
            mode.reps(),
            || ours(&bank, "save", c, ops),
            || {
                let (dir, text, seq) = (dir.clone(), text.clone(), seq.clone());
                measure(c, ops, move |i| {
                    let (dir, text, seq) = (dir.clone(), text.clone(), seq.clone());
                    async move {
                        let n = seq.fetch_add(1, Ordering::Relaxed);
                        let name = format!("k{}.json", i % IDS);
                        tokio::task::spawn_blocking(move || durable_write(&dir, &name, &text, n))
                            .await??;
                        Ok(())
                    }
                })
            },
        )
        .await?;
        let anchor = "std::fs write+fsync+rename+fsync dir";
        pair_row(section, "disk", "save", c, (ours_stats, raw_stats), anchor);
    }
    let _ = std::fs::remove_dir_all(&dir);
    bank.close().await?;
    ns.remove().await;
    Ok(())
}

fn redis_benchmark(mode: Mode, env: &Env, section: &mut Section) -> Result<(), Error> {
    let url = url_host_port(&env.redis);
    let requests = mode.pick(100_000, 2_000);
    for c in [1, 32] {
        let out = std::process::Command::new("redis-benchmark")
            .args([
                "-h",
                &url.0,
                "-p",
                &url.1.to_string(),
                "-t",
                "get,set",
                "-d",
                "130",
                "--csv",
            ])
            .args(["-c", &c.to_string(), "-n", &requests.to_string()])
            .output();
        let out = match out {
            Ok(out) if out.status.success() => out,
            Ok(out) => return Err(String::from_utf8_lossy(&out.stderr).into_owned().into()),
            Err(e) => {
                section.note(format!("redis-benchmark could not run: {e}"));
                return Ok(());
            }
        };
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let cells: Vec<&str> = line.split(',').map(|c| c.trim_matches('"')).collect();
            if let [name, rps, ..] = cells.as_slice() {
                if let Ok(rps) = rps.parse::<f64>() {
                    section.row(vec![
                        ("command", json!(name)),
                        ("concurrency", json!(c)),
                        ("requests", json!(requests)),
                        ("ops/s", json!(rps)),
                    ]);
                }
            }
        }
    }
    Ok(())
}

/// Host and port of a `redis://host:port/...` URL.
fn url_host_port(url: &str) -> (String, u16) {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let rest = rest.rsplit_once('@').map(|(_, r)| r).unwrap_or(rest);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    match authority.rsplit_once(':') {
        Some((host, port)) => (host.to_owned(), port.parse().unwrap_or(6379)),
        None => (authority.to_owned(), 6379),
    }
}

/// Measures our read and save against `raw(op, i)` on the same server, and adds the rows.
async fn sql_pairs<F, Fut>(
    mode: Mode,
    backend: &str,
    bank: &Arc<Bank>,
    section: &mut Section,
    raw: F,
) -> Result<(), Error>
where
    F: Fn(&'static str, usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Result<(), Error>> + Send + 'static,
{
    let ops = mode.pick(10_000, 200);
    for op in ["read", "save"] {
        for c in [1, 32] {
            let pair = side_by_side(
                mode.reps(),
                || ours(bank, op, c, ops),
                || {
                    let raw = raw.clone();
                    measure(c, ops, move |i| raw(op, i))
                },
            )
            .await?;
            let anchor = if op == "read" {
                "raw SELECT"
            } else {
                "raw upsert"
            };
            pair_row(section, backend, op, c, pair, anchor);
        }
    }
    Ok(())
}

async fn postgres_pairs(mode: Mode, env: &Env, section: &mut Section) -> Result<(), Error> {
    let (bank, ns) = open("postgres", env).await?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(databank_sql::DEFAULT_MAX_CONNECTIONS)
        .connect(&env.postgres)
        .await?;
    let table = databank_bench::unique("raw");
    sqlx::raw_sql(&format!(
        "CREATE TABLE \"{table}\" (id text PRIMARY KEY, v jsonb NOT NULL)"
    ))
    .execute(&pool)
    .await?;
    let read = Arc::new(format!("SELECT v::text FROM \"{table}\" WHERE id = $1"));
    let save = Arc::new(format!(
        "INSERT INTO \"{table}\" (id, v) VALUES ($1, $2::jsonb) \
         ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v"
    ));
    for i in 0..IDS {
        sqlx::query(&save)
            .bind(format!("k{i}"))
            .bind(value(i).to_string())
            .execute(&pool)
            .await?;
    }
    let raw = {
        let pool = pool.clone();
        move |op: &'static str, i: usize| {
            let (pool, read, save) = (pool.clone(), read.clone(), save.clone());
            async move {
                let id = format!("k{}", i % IDS);
                if op == "read" {
                    let text: String = sqlx::query_scalar(&read).bind(id).fetch_one(&pool).await?;
                    serde_json::from_str::<serde_json::Value>(&text)?;
                } else {
                    sqlx::query(&save)
                        .bind(id)
                        .bind(value(i % IDS).to_string())
                        .execute(&pool)
                        .await?;
                }
                Ok(())
            }
        }
    };
    sql_pairs(mode, "postgres", &bank, section, raw).await?;
    let _ = sqlx::raw_sql(&format!("DROP TABLE \"{table}\""))
        .execute(&pool)
        .await;
    pool.close().await;
    bank.close().await?;
    ns.remove().await;
    Ok(())
}

async fn sqlite_pairs(mode: Mode, env: &Env, section: &mut Section) -> Result<(), Error> {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    let (bank, ns) = open("sqlite", env).await?;
    let dir = std::env::current_dir()?
        .join("target")
        .join("bench")
        .join("tmp")
        .join(databank_bench::unique("rawlite"));
    std::fs::create_dir_all(&dir)?;
    // The settings ours opens with: WAL, synchronous=NORMAL, the same pool size.
    let options = SqliteConnectOptions::new()
        .filename(dir.join("raw.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal);
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(databank_sql::DEFAULT_MAX_CONNECTIONS)
        .connect_with(options)
        .await?;
    sqlx::raw_sql("CREATE TABLE raw (id TEXT PRIMARY KEY, v TEXT NOT NULL)")
        .execute(&pool)
        .await?;
    for i in 0..IDS {
        sqlx::query("INSERT INTO raw (id, v) VALUES (?1, ?2)")
            .bind(format!("k{i}"))
            .bind(value(i).to_string())
            .execute(&pool)
            .await?;
    }
    let raw = {
        let pool = pool.clone();
        move |op: &'static str, i: usize| {
            let pool = pool.clone();
            async move {
                let id = format!("k{}", i % IDS);
                if op == "read" {
                    let text: String = sqlx::query_scalar("SELECT v FROM raw WHERE id = ?1")
                        .bind(id)
                        .fetch_one(&pool)
                        .await?;
                    serde_json::from_str::<serde_json::Value>(&text)?;
                } else {
                    sqlx::query(
                        "INSERT INTO raw (id, v) VALUES (?1, ?2) \
                         ON CONFLICT (id) DO UPDATE SET v = excluded.v",
                    )
                    .bind(id)
                    .bind(value(i % IDS).to_string())
                    .execute(&pool)
                    .await?;
                }
                Ok(())
            }
        }
    };
    sql_pairs(mode, "sqlite", &bank, section, raw).await?;
    pool.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    bank.close().await?;
    ns.remove().await;
    Ok(())
}
