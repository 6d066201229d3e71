//! Behaviour of the SQL drivers beyond the kit: the schema version, pools shared with the
//! application, values `jsonb` cannot hold as they are, and the indices created at open.

use databank_core::testkit::unique_name;
use databank_core::{json, Bank, Criteria, Error, Schema};
use databank_sql::{SqlConfig, SqliteBank};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Values `jsonb` would refuse or change, on an indexed field and elsewhere.
fn tricky() -> serde_json::Value {
    json!({
        "email": "a\0b", "mark": "\u{E000}m", "big": 1e16, "neg": -2e17, "small": 1.5e-7,
        "u": u64::MAX, "nested": {"k\0": ["\0", "\u{E000}0"]}
    })
}

async fn tricky_values_round_trip(bank: &Bank) -> TestResult {
    bank.create("person", "t", tricky()).await?;
    assert_eq!(bank.read("person", "t").await?.value, tricky());
    let hits = bank
        .search("person", &Criteria::new().eq("email", "a\0b"))
        .await?;
    assert_eq!(hits.len(), 1);
    let hits = bank
        .search(
            "person",
            &Criteria::new().eq("nested.k\0", json!(["\0", "\u{E000}0"])),
        )
        .await?;
    assert_eq!(hits.len(), 1);
    bank.patch("person", "t")
        .set("n\0", json!("\0"))
        .remove("mark")
        .await?;
    let mut expected = tricky();
    expected["n\0"] = json!("\0");
    if let Some(map) = expected.as_object_mut() {
        map.remove("mark");
    }
    assert_eq!(bank.read("person", "t").await?.value, expected);
    assert_eq!(bank.append("list", "l", json!("\0")).await?, 1);
    assert!(bank.remove("list", "l", &json!("\0")).await?);
    Ok(())
}

/// Both drivers know when a patch landed on the caller's base revision (one statement tells),
/// and leave the value out of a read at the caller's revision.
async fn patches_report_their_base(bank: &Bank) -> TestResult {
    let base = bank.create("doc", "d", json!({"a": 1})).await?;
    let applied = bank
        .patch("doc", "d")
        .set("b", 2)
        .expires_in(std::time::Duration::from_secs(3600))
        .applied_on(base)
        .await?;
    assert!(
        applied.on_base,
        "a patch on the live revision did not say so"
    );
    let again = bank
        .patch("doc", "d")
        .remove("a")
        .applied_on(applied.revision)
        .await?;
    assert!(again.on_base);
    let stale = bank
        .patch("doc", "d")
        .set("c", 3)
        .applied_on(applied.revision)
        .await?;
    assert!(!stale.on_base);
    let read = bank.read("doc", "d").await?;
    assert_eq!(read.value, json!({"b": 2, "c": 3}));
    assert_eq!(read.revision, stale.revision);
    assert_eq!(
        bank.read_if_changed("doc", "d", stale.revision).await?,
        databank_core::IfChanged::Unchanged {
            expires_at: read.expires_at
        }
    );
    Ok(())
}

#[tokio::test]
async fn sqlite_patches_report_their_base() -> TestResult {
    let dir = tempfile::tempdir()?;
    patches_report_their_base(&sqlite_bank(dir.path(), "t").await?).await
}

fn schema() -> Schema {
    Schema::new().index("person", ["email"])
}

async fn sqlite_bank(dir: &std::path::Path, table: &str) -> Result<Bank, Error> {
    let url = format!("sqlite://{}/bank.db?table={table}", dir.display());
    Ok(Bank::new(
        SqliteBank::connect(SqlConfig::from_url(&url)?, schema()).await?,
    ))
}

#[tokio::test]
async fn sqlite_tricky_values_round_trip() -> TestResult {
    let dir = tempfile::tempdir()?;
    tricky_values_round_trip(&sqlite_bank(dir.path(), "t").await?).await
}

#[tokio::test]
async fn sqlite_refuses_a_table_of_a_newer_schema() -> TestResult {
    let dir = tempfile::tempdir()?;
    sqlite_bank(dir.path(), "records").await?.close().await?;
    let url = format!("sqlite://{}/bank.db", dir.path().display());
    let pool = sqlx::SqlitePool::connect(&url).await?;
    sqlx::query("UPDATE records_meta SET value = '99' WHERE name = 'schema_version'")
        .execute(&pool)
        .await?;
    pool.close().await;
    match sqlite_bank(dir.path(), "records").await {
        Err(Error::InvalidInput(message)) => assert!(message.contains("99"), "{message}"),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    Ok(())
}

/// An application's pool: the bank creates its tables beside the application's and touches
/// nothing else.
#[tokio::test]
async fn sqlite_shares_the_applications_pool() -> TestResult {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}/app.db?mode=rwc", dir.path().display());
    let pool = sqlx::SqlitePool::connect(&url).await?;
    sqlx::query("CREATE TABLE users (name TEXT)")
        .execute(&pool)
        .await?;
    sqlx::query("INSERT INTO users VALUES ('ada')")
        .execute(&pool)
        .await?;
    let config = SqlConfig::new("").table("sessions");
    let bank = Bank::new(SqliteBank::with_pool(pool.clone(), config, schema()).await?);
    bank.save("person", "p", json!({"email": "x"})).await?;
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(&pool)
            .await?;
    assert_eq!(tables, ["sessions", "sessions_meta", "users"]);
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&pool)
        .await?;
    assert_eq!(users, 1);
    Ok(())
}

/// Time is the subject: opening a PostgreSQL bank gives up within its timeout (300 ms); 2 s
/// of headroom for a loaded machine. Needs no server: nothing listens on the port.
#[tokio::test]
async fn a_postgres_server_down_at_open_is_unavailable() -> Result<(), Error> {
    databank_core::testkit::a_server_down_at_open_is_unavailable(
        |port| async move {
            let url = format!("postgres://databank@127.0.0.1:{port}/postgres?timeout_ms=300");
            let config = SqlConfig::from_url(&url)?;
            Ok(Bank::new(
                databank_sql::PostgresBank::connect(config, schema()).await?,
            ))
        },
        std::time::Duration::from_millis(300) + std::time::Duration::from_secs(2),
    )
    .await
}

/// Left out (`--skip postgres::`) where `cargo xtask test` has no PostgreSQL.
mod postgres {
    use super::*;
    use databank_sql::PostgresBank;

    /// The test server's URL; where there is none (outside CI), the test returns at once, after
    /// one line saying so.
    macro_rules! base {
        () => {
            databank_core::server_or_skip!(
                "DATABANK_TEST_POSTGRES_URL",
                "cargo xtask services up postgres"
            )
        };
    }

    async fn open(base: &str, table: &str) -> Result<Bank, Error> {
        let config = SqlConfig::from_url(base)?.table(table);
        Ok(Bank::new(PostgresBank::connect(config, schema()).await?))
    }

    async fn drop_tables(pool: &sqlx::PgPool, table: &str) {
        let drop =
            format!("DROP TABLE IF EXISTS \"{table}\"; DROP TABLE IF EXISTS \"{table}_meta\"");
        let _ = sqlx::raw_sql(&drop).execute(pool).await;
    }

    #[tokio::test]
    async fn tricky_values_round_trip_through_jsonb() -> TestResult {
        let base = base!();
        let table = unique_name("sql");
        let outcome = tricky_values_round_trip(&open(&base, &table).await?).await;
        let pool = sqlx::PgPool::connect(&base).await?;
        drop_tables(&pool, &table).await;
        outcome
    }

    #[tokio::test]
    async fn patches_report_their_base_in_one_statement() -> TestResult {
        let base = base!();
        let table = unique_name("sql");
        let outcome = patches_report_their_base(&open(&base, &table).await?).await;
        let pool = sqlx::PgPool::connect(&base).await?;
        drop_tables(&pool, &table).await;
        outcome
    }

    /// The table, the expiry index and one partial index per declared field, as documented.
    #[tokio::test]
    async fn open_creates_the_documented_indices_and_refuses_newer_schemas() -> TestResult {
        let base = base!();
        let table = unique_name("sql");
        open(&base, &table).await?.close().await?;
        let pool = sqlx::PgPool::connect(&base).await?;
        let indices: Vec<String> = sqlx::query_scalar(
            "SELECT indexdef FROM pg_indexes WHERE tablename = $1 ORDER BY indexname",
        )
        .bind(&table)
        .fetch_all(&pool)
        .await?;
        assert_eq!(indices.len(), 3, "{indices:?}");
        assert!(
            indices.iter().any(|d| d.contains("(kind, expiry_minute)")),
            "{indices:?}"
        );
        assert!(
            indices
                .iter()
                .any(|d| d.contains("value #>") && d.contains("WHERE (kind = 'person'::text)")),
            "{indices:?}"
        );
        sqlx::query(&format!(
            "UPDATE \"{table}_meta\" SET value = '2' WHERE name = 'schema_version'"
        ))
        .execute(&pool)
        .await?;
        let refused = open(&base, &table).await;
        drop_tables(&pool, &table).await;
        assert!(
            matches!(refused, Err(Error::InvalidInput(_))),
            "{refused:?}"
        );
        Ok(())
    }

    /// Banks opened at once on a new table all open (the set-up runs under an advisory lock).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn eight_banks_opening_a_new_table_at_once_all_open() -> TestResult {
        let base = base!();
        let table = unique_name("sql");
        let opening: Vec<_> = (0..8)
            .map(|_| {
                let (base, table) = (base.clone(), table.clone());
                tokio::spawn(async move { open(&base, &table).await })
            })
            .collect();
        let mut failures = Vec::new();
        for task in opening {
            if let Err(e) = task.await? {
                failures.push(e.to_string());
            }
        }
        let pool = sqlx::PgPool::connect(&base).await?;
        drop_tables(&pool, &table).await;
        assert!(failures.is_empty(), "{failures:?}");
        Ok(())
    }
}
