//! The whole conformance kit on both drivers: PostgreSQL (`DATABANK_TEST_POSTGRES_URL`, which
//! `cargo xtask test` provides), each behaviour in a table of its own, and SQLite, each
//! behaviour in a database file of its own.

use databank_core::testkit::{server_url, unique_name, Harness};
use databank_core::{Bank, Result, Schema};
use databank_sql::SqlConfig;

mod postgres {
    use super::*;
    use databank_sql::PostgresBank;

    pub struct Postgres {
        url: String,
        table: String,
    }

    #[databank_core::driver::async_trait]
    impl Harness for Postgres {
        async fn open(&self, schema: Schema) -> Result<Bank> {
            let config = SqlConfig::from_url(&self.url)?.table(self.table.clone());
            Ok(Bank::new(PostgresBank::connect(config, schema).await?))
        }

        async fn cleanup(&self) {
            let Ok(config) = SqlConfig::from_url(&self.url) else {
                return;
            };
            if let Ok(pool) = sqlx::PgPool::connect(&config.database_url).await {
                let drop = format!(
                    "DROP TABLE IF EXISTS \"{0}\"; DROP TABLE IF EXISTS \"{0}_meta\"",
                    self.table
                );
                let _ = sqlx::raw_sql(&drop).execute(&pool).await;
                pool.close().await;
            }
        }
    }

    pub fn harness() -> Option<Postgres> {
        let base = server_url(
            "DATABANK_TEST_POSTGRES_URL",
            "cargo xtask services up postgres",
        )?;
        Some(Postgres {
            url: format!("{base}?max_connections=4"),
            table: unique_name("kit"),
        })
    }

    databank_core::conformance_tests!(harness);
}

mod sqlite {
    use super::*;
    use databank_sql::SqliteBank;

    pub struct Sqlite {
        dir: tempfile::TempDir,
    }

    #[databank_core::driver::async_trait]
    impl Harness for Sqlite {
        async fn open(&self, schema: Schema) -> Result<Bank> {
            let url = format!("sqlite://{}/bank.db", self.dir.path().display());
            Ok(Bank::new(
                SqliteBank::connect(SqlConfig::from_url(&url)?, schema).await?,
            ))
        }
    }

    pub fn harness() -> Sqlite {
        match tempfile::tempdir() {
            Ok(dir) => Sqlite { dir },
            Err(e) => panic!("no temporary directory: {e}"),
        }
    }

    databank_core::conformance_tests!(harness);
}
