//! Hostile input on every driver: each input either round-trips exactly or is refused with
//! `InvalidInput`; nothing panics, nothing lands outside the bank's directory or key prefix,
//! and no other record is touched.

use std::path::Path;

use databank_core::{json, Criteria, Error, Schema, Value};

mod common;
use common::{open, TestResult};

const MARK: &str = "hostile-mark";

fn hostile_ids() -> Vec<String> {
    let mut ids: Vec<String> = [
        "../",
        "../../etc/passwd",
        "/",
        "/abs",
        "\\",
        "..\\..\\x",
        "\0",
        "a\0b",
        ":",
        "a:b:c",
        "*",
        "?",
        "[a-z]",
        "{",
        "{}",
        "$",
        "$where",
        ".",
        "..",
        "'",
        "\"",
        "`",
        "' OR '1'='1",
        "%2e%2e%2f",
        "\n",
        "\r\n",
        "🦀",
        "\u{202e}",
        "CON",
        "nul",
    ]
    .iter()
    .map(|s| format!("{MARK}{s}"))
    .collect();
    ids.push(format!("{MARK}{}", "é/".repeat(300)));
    ids
}

fn deep(levels: usize) -> Value {
    let mut v = json!(1);
    for _ in 0..levels {
        v = Value::Array(vec![v]);
    }
    v
}

async fn battery(backend: &str) -> TestResult {
    let Some(f) = open(backend, Schema::new().index("thing", ["email"])).await else {
        return Ok(());
    };
    let bank = &f.bank;
    bank.save("thing", "sentinel", json!({"email": "keep@x", "v": 1}))
        .await?;

    // Ids: every hostile id round-trips, and stays distinct.
    let ids = hostile_ids();
    for (i, id) in ids.iter().enumerate() {
        bank.save("thing", id, json!({"i": i})).await?;
    }
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            bank.read("thing", id).await?.value,
            json!({"i": i}),
            "{backend}: id {id:?}"
        );
    }
    assert_eq!(bank.count("thing").await?, ids.len() as u64 + 1);

    // Oversized ids and every hostile type name: InvalidInput, for reads and writes.
    let big = "x".repeat(64 * 1024);
    let refused = |r: Result<(), Error>, what: &str| match r {
        Err(Error::InvalidInput(_)) => {}
        other => panic!("{backend}: {what} gave {other:?}, not InvalidInput"),
    };
    refused(
        bank.save("thing", &big, json!(1)).await.map(|_| ()),
        "a 64 KiB id",
    );
    refused(
        bank.read("thing", &big).await.map(|_| ()),
        "reading a 64 KiB id",
    );
    for kind in [
        "../x",
        "a/b",
        "a\\b",
        "\0",
        "a:b",
        "*",
        "?",
        "[",
        "{",
        "$",
        "a.b",
        "'",
        "\"",
        " ",
        big.as_str(),
    ] {
        refused(
            bank.save(kind, "1", json!(1)).await.map(|_| ()),
            &format!("type {kind:.20?}"),
        );
        refused(
            bank.purge_expired(kind).await.map(|_| ()),
            &format!("purging type {kind:.20?}"),
        );
    }

    // Values: too deep or too large is refused and stores nothing; the largest legal round-trips.
    refused(
        bank.save("thing", "deep", deep(10_000)).await.map(|_| ()),
        "10,000-deep JSON",
    );
    refused(
        bank.save(
            "thing",
            "huge",
            json!({"blob": "x".repeat(16 * 1024 * 1024)}),
        )
        .await
        .map(|_| ()),
        "a 16 MiB value",
    );
    let large = json!({"blob": "y".repeat(7 * 1024 * 1024)});
    bank.save("thing", "large", large.clone()).await?;
    assert_eq!(bank.read("thing", "large").await?.value, large);
    assert!(bank
        .read("thing", "deep")
        .await
        .is_err_and(|e| e.is_not_found()));
    assert!(bank
        .read("thing", "huge")
        .await
        .is_err_and(|e| e.is_not_found()));

    // Criteria that look like operators match literally, on indexed and other fields.
    for op in [
        json!({"$gt": ""}),
        json!({"$ne": null}),
        json!({"$where": "1"}),
        json!("' OR 1=1 --"),
        json!({"$regex": ".*"}),
    ] {
        for field in ["email", "v", "i"] {
            let hits = bank
                .search("thing", &Criteria::new().eq(field, op.clone()))
                .await?;
            assert!(
                hits.is_empty(),
                "{backend}: {field} = {op} matched {hits:?}"
            );
        }
    }

    // Nothing else touched.
    assert_eq!(
        bank.read("thing", "sentinel").await?.value,
        json!({"email": "keep@x", "v": 1})
    );
    let hits = bank
        .search("thing", &Criteria::new().eq("email", "keep@x"))
        .await?;
    assert_eq!(hits.len(), 1);
    for id in &ids {
        bank.delete("thing", id).await?;
    }
    assert_eq!(
        bank.count("thing").await?,
        2,
        "{backend}: deleting hostile ids touched other records"
    );

    if let Some(dir) = &f.dir {
        assert_inside(dir.path())?;
    }
    Ok(())
}

/// The test's own directory holds the bank's directory and nothing else: no hostile id
/// escaped the bank (`dir` is a fresh temporary directory no other process writes to).
fn assert_inside(dir: &Path) -> TestResult {
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        assert_eq!(name, common::BANK_DIR, "file outside the bank: {name}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory() -> TestResult {
    battery("memory").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn disk() -> TestResult {
    battery("disk").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite() -> TestResult {
    battery("sqlite").await
}

/// On a PostgreSQL server of the test's own: the battery, then a declared index whose field
/// name holds quotes and a backslash (spliced into the index's DDL as a literal), and no table
/// but the bank's two in the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres() -> TestResult {
    let server = databank_testservers::Server::postgres(false)?;
    battery(server.url()).await?;
    let field = "o'k\\\"x\\'); DROP TABLE t; --";
    let Some(f) = open(
        server.url(),
        Schema::new().index("thing", [format!("{field}.y")]),
    )
    .await
    else {
        return Ok(());
    };
    f.bank.save("thing", "a", json!({field: {"y": 5}})).await?;
    f.bank.save("thing", "b", json!({field: {"y": 6}})).await?;
    let hits = f
        .bank
        .search("thing", &Criteria::new().eq(format!("{field}.y"), 5))
        .await?;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].0, "a");
    let pool = sqlx::PgPool::connect(server.url()).await?;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await?;
    assert_eq!(tables.len(), 4, "tables: {tables:?}");
    assert!(
        tables.iter().all(|t| t.starts_with("rel")),
        "tables: {tables:?}"
    );
    pool.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mongo() -> TestResult {
    battery("mongo").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis() -> TestResult {
    battery("redis").await?;
    // No key outside a bank prefix: every key in the server that carries the mark sits under a
    // test prefix, in the documented layout.
    let Some(url) = common::env("DATABANK_TEST_REDIS_URL") else {
        return Ok(());
    };
    let client = redis::Client::open(url)?;
    let mut con = client.get_multiplexed_async_connection().await?;
    let mut keys: redis::AsyncIter<Vec<u8>> =
        redis::AsyncCommands::scan_match(&mut con, format!("*{MARK}*")).await?;
    let mut seen = 0;
    while let Some(key) = futures_util::StreamExt::next(&mut keys).await {
        let key = key?;
        let text = String::from_utf8_lossy(&key);
        let mut parts = text.splitn(3, ':');
        let (prefix, layout) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        assert!(
            prefix.starts_with("rel"),
            "key outside a test prefix: {text:?}"
        );
        assert!(
            matches!(layout, "r" | "z" | "x" | "i"),
            "key outside the layout: {text:?}"
        );
        seen += 1;
    }
    let _ = seen;
    Ok(())
}
