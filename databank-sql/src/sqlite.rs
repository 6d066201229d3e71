//! `SqliteBank`: records in one table of exact JSON text, every operation one statement.

use std::collections::HashMap;
use std::str::FromStr;

use databank_core::driver::MAX_VALUE_BYTES;
use databank_core::driver::{async_trait, patch_by_read_and_write, Patch, PatchExpiry};
use databank_core::{Applied, Criteria, Error, Result, Revision, Schema, Value};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::backend::sealed::Backend;
use crate::backend::{Dialect, Edits, SqlBank, Statements};
use crate::config::SqlConfig;
use crate::connections::Connections;
use crate::sql::{even_revision, ident, literal, live, now_ms, to_ms, SCHEMA_VERSION};

const DRIVER: &str = "sqlite";

/// Ids per statement of a `read_all`.
const READ_ALL_BATCH: usize = 500;

/// A JSON path to the object key `key`, for SQLite's JSON functions: `$."…"` with the key
/// JSON-escaped and `"` written `\u0022` (a quoted path label ends at the first `"`).
fn key_path(key: &str) -> String {
    format!("$.{}", label(key))
}

fn label(key: &str) -> String {
    let escaped = Value::String(key.to_owned()).to_string();
    let inner = &escaped[1..escaped.len() - 1];
    format!("\"{}\"", inner.replace("\\\"", "\\u0022"))
}

/// The path of a dotted field.
fn field_path(field: &str) -> String {
    let labels: Vec<String> = field.split('.').map(label).collect();
    format!("$.{}", labels.join("."))
}

/// The statements of one table, written once at open (SQLite has none of its own).
fn statements(table: &str) -> (Statements, ()) {
    let t = format!("{} AS r", ident(table));
    let key = "r.kind = ?1 AND r.id = ?2";
    let expired = "r.expires_at <= ?5";
    let list = |joined: &str| {
        format!(
            "INSERT INTO {t} (kind, id, value, revision, expires_at) \
                 VALUES (?1, ?2, json_array(json(?3)), ?4, NULL) \
                 ON CONFLICT (kind, id) DO UPDATE SET \
                 value = CASE WHEN {expired} THEN excluded.value ELSE {joined} END, \
                 revision = excluded.revision, \
                 expires_at = CASE WHEN {expired} THEN NULL ELSE r.expires_at END, \
                 expiry_minute = CASE WHEN {expired} THEN NULL ELSE r.expiry_minute END \
                 WHERE {expired} OR json_type(r.value) = 'array' \
                 RETURNING json_array_length(value)"
        )
    };
    let edits = Edits {
            incr: format!(
                "INSERT INTO {t} (kind, id, value, revision, expires_at) \
                 VALUES (?1, ?2, CAST(?3 AS TEXT), ?4, NULL) \
                 ON CONFLICT (kind, id) DO UPDATE SET \
                 value = CASE WHEN {expired} THEN excluded.value \
                 ELSE CAST(CAST(r.value AS INTEGER) + ?3 AS TEXT) END, \
                 revision = excluded.revision, \
                 expires_at = CASE WHEN {expired} THEN NULL ELSE r.expires_at END, \
                 expiry_minute = CASE WHEN {expired} THEN NULL ELSE r.expiry_minute END \
                 WHERE {expired} OR (r.value = CAST(CAST(r.value AS INTEGER) AS TEXT) \
                 AND CASE WHEN ?3 >= 0 THEN CAST(r.value AS INTEGER) <= 9223372036854775807 - ?3 \
                 ELSE CAST(r.value AS INTEGER) >= (-9223372036854775807 - 1) - ?3 END) \
                 RETURNING CAST(value AS INTEGER)"
            ),
            append: list("json_insert(r.value, '$[#]', json(?3))"),
            prepend: list(
                "json('[' || json(?3) || CASE WHEN json_array_length(r.value) = 0 THEN ']' \
                 ELSE ',' || substr(json(r.value), 2) END)",
            ),
            remove: format!(
                "UPDATE {t} SET value = json_remove(r.value, ( \
                 SELECT e.fullkey FROM json_each(r.value) AS e \
                 WHERE (r.value -> e.fullkey) = json(?3) ORDER BY e.key LIMIT 1)), revision = ?4 \
                 WHERE {key} AND {} AND json_type(r.value) = 'array' \
                 AND EXISTS (SELECT 1 FROM json_each(r.value) AS e WHERE (r.value -> e.fullkey) = json(?3))",
                live("?5")
            ),
        };
    (Statements::new::<Sqlite>(table, edits), ())
}

/// The tables, the expiry index and the schema version, as one script.
fn ddl(table: &str) -> String {
    let t = ident(table);
    let meta = ident(&format!("{table}_meta"));
    let expiry = ident(&format!("{table}_expiry"));
    format!(
            "CREATE TABLE IF NOT EXISTS {t} ( \
               kind TEXT NOT NULL, \
               id BLOB NOT NULL, \
               value TEXT NOT NULL, \
               revision INTEGER NOT NULL, \
               expires_at INTEGER, \
               expiry_minute INTEGER, \
               PRIMARY KEY (kind, id)); \
             CREATE INDEX IF NOT EXISTS {expiry} ON {t} (kind, expiry_minute) WHERE expiry_minute IS NOT NULL; \
             CREATE TABLE IF NOT EXISTS {meta} (name TEXT PRIMARY KEY, value TEXT NOT NULL); \
             INSERT INTO {meta} (name, value) VALUES ('schema_version', '{SCHEMA_VERSION}') ON CONFLICT DO NOTHING;"
        )
}

/// SQLite, as a [`Dialect`]: exact JSON text, declared fields indexed by expression.
#[derive(Debug, Clone, Copy)]
pub struct Sqlite;

impl Dialect for Sqlite {}

/// The driver on SQLite: one table (`databank` unless the URL says `table=`) of exact JSON
/// text, declared fields indexed by expression, the database in WAL mode.
pub type SqliteBank = SqlBank<Sqlite>;

impl SqlBank<Sqlite> {
    /// Opens the URL's database file (created when missing, with its directory) in WAL mode with
    /// `synchronous=NORMAL` (a crash of the process loses nothing committed; a crash of the
    /// machine may lose the last commits), then prepares the table as
    /// [`with_pool`](Self::with_pool) does.
    pub async fn connect(config: SqlConfig, schema: Schema) -> Result<Self> {
        config.validate()?;
        let options = SqliteConnectOptions::from_str(&config.database_url)
            .map_err(|e| {
                Error::InvalidInput(format!(
                    "bad SQLite URL {}: {e}",
                    databank_core::redact(&config.database_url)
                ))
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(config.timeout);
        let file = options.get_filename();
        if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !config.database_url.contains(":memory:") {
                std::fs::create_dir_all(parent).map_err(|e| {
                    Error::InvalidInput(format!(
                        "cannot create the directory {} of the SQLite database: {e}",
                        parent.display()
                    ))
                })?;
            }
        }
        let mut pool = SqlitePoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.timeout)
            .test_before_acquire(false);
        if config.database_url.contains(":memory:") {
            // A database in memory lives as long as a connection to it: the pool must never
            // close its one connection for idling or for age (sqlx's defaults: 10 and 30 min).
            pool = pool.idle_timeout(None).max_lifetime(None);
        }
        let pool = pool.connect_lazy_with(options);
        let size = config.max_connections;
        Self::opened(Connections::owned(pool, size), config, schema).await
    }
}

/// What a criterion is compared with in SQL (`value ->> path` yields SQL values): `None` for
/// objects and arrays, checked in Rust only.
enum Scalar {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

fn scalar(value: &Value) -> Option<Scalar> {
    Some(match value {
        Value::Null => Scalar::Null,
        Value::Bool(b) => Scalar::Int(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Scalar::Int(i),
            None => Scalar::Real(n.as_f64()?),
        },
        Value::String(s) => Scalar::Text(s.clone()),
        Value::Array(_) | Value::Object(_) => return None,
    })
}

#[async_trait]
impl Backend for Sqlite {
    type Db = sqlx::Sqlite;
    type Own = ();
    const DRIVER: &'static str = DRIVER;
    const BANK: &'static str = "SqliteBank";

    fn rows_affected(done: &sqlx::sqlite::SqliteQueryResult) -> u64 {
        done.rows_affected()
    }

    fn param(n: usize) -> String {
        format!("?{n}")
    }

    fn value_param(n: usize) -> String {
        format!("?{n}")
    }

    const VALUE_TEXT: &'static str = "r.value";

    /// Rounded up (toward zero below 1970).
    fn minute_of(ms: &str) -> String {
        format!("(({ms} + 59999) / 60000)")
    }

    fn statements(table: &str) -> (Statements, ()) {
        statements(table)
    }

    fn ddl(table: &str) -> String {
        ddl(table)
    }

    /// Nothing: SQLite runs one writer at a time, and every set-up statement is idempotent.
    fn setup_lock(_table: &str) -> String {
        String::new()
    }

    fn index_expression(field: &str) -> String {
        format!("value ->> {}", literal(&field_path(field)))
    }

    /// Its compact JSON, exactly.
    fn encode(value: &Value) -> Result<String> {
        Ok(value.to_string())
    }

    fn decode(location: impl FnOnce() -> String, text: &str) -> Result<Value> {
        serde_json::from_str(text).map_err(|e| Error::Corrupt {
            location: location(),
            reason: e.to_string(),
        })
    }

    /// A database in memory ends with its last connection.
    fn persistent(bank: &SqliteBank) -> bool {
        !bank.config.database_url.contains(":memory:")
    }

    async fn read_all(
        bank: &SqliteBank,
        kind: &str,
        ids: &[&str],
    ) -> Result<HashMap<String, Option<Value>>> {
        let mut found: HashMap<String, Option<Value>> =
            ids.iter().map(|id| ((*id).to_owned(), None)).collect();
        for batch in ids.chunks(READ_ALL_BATCH) {
            let marks: Vec<String> = (0..batch.len()).map(|i| format!("?{}", i + 3)).collect();
            let sql = format!(
                "SELECT r.id, r.value FROM {} AS r WHERE r.kind = ?1 AND {} AND r.id IN ({})",
                bank.sql.table,
                live("?2"),
                marks.join(",")
            );
            let mut query = sqlx::query(&sql).bind(kind).bind(now_ms());
            for id in batch {
                query = query.bind(id.as_bytes());
            }
            for row in bank.fetch_all(query).await? {
                let (id, value) = SqliteBank::id_and_value(kind, &row)?;
                found.insert(id, Some(value));
            }
        }
        Ok(found)
    }

    async fn search(
        bank: &SqliteBank,
        kind: &str,
        criteria: &Criteria,
    ) -> Result<Vec<(String, Value)>> {
        // `value ->> path` compares as SQL values (1 = 1.0, true = 1): a superset of JSON
        // equality, so the rows are checked again here. Declared fields name their index's
        // expression and the type as literals, so the partial index applies.
        let mut sql = format!(
            "SELECT r.id, r.value FROM {} AS r WHERE r.kind = {} AND {}",
            bank.sql.table,
            literal(kind),
            live("?1")
        );
        let mut binds: Vec<Scalar> = Vec::new();
        for (field, value) in criteria.fields() {
            let Some(value) = scalar(value) else { continue };
            let path = if bank.schema.is_indexed(kind, field) {
                literal(&field_path(field))
            } else {
                binds.push(Scalar::Text(field_path(field)));
                format!("?{}", binds.len() + 1)
            };
            if let Scalar::Null = value {
                sql.push_str(&format!(" AND (r.value ->> {path}) IS NULL"));
            } else {
                binds.push(value);
                sql.push_str(&format!(" AND (r.value ->> {path}) = ?{}", binds.len() + 1));
            }
        }
        let mut query = sqlx::query(&sql).bind(now_ms());
        for bind in binds {
            query = match bind {
                Scalar::Null => query,
                Scalar::Int(i) => query.bind(i),
                Scalar::Real(f) => query.bind(f),
                Scalar::Text(s) => query.bind(s),
            };
        }
        SqliteBank::matching(kind, bank.fetch_all(query).await?, criteria)
    }

    async fn patch_from(
        bank: &SqliteBank,
        patch: Patch<'_>,
        base: Option<Revision>,
    ) -> Result<Applied> {
        if patch
            .set
            .keys()
            .chain(&patch.remove)
            .any(|key| key.contains('\0'))
        {
            // SQLite's JSON paths lose a key that is NUL alone (`$."\u0000"` sets the key
            // ""): such a patch is a revision-checked read and write.
            return Ok(Applied::new(
                patch_by_read_and_write(bank, patch).await?,
                false,
            ));
        }
        let even = even_revision();
        // ?1 kind, ?2 id, ?3 revision (even: one more when the record was not at the base),
        // ?4 keep the expiry, ?5 the expiry to set, ?6 now, ?7 the largest stored size the
        // patch may start from, ?8 the base revision (or NULL), then the paths to remove and
        // the (path, value) pairs to set.
        let mut patched = "r.value".to_owned();
        let mut n = 8;
        let mut paths = Vec::new();
        if !patch.remove.is_empty() {
            let mut call = format!("json_remove({patched}");
            for key in &patch.remove {
                n += 1;
                call.push_str(&format!(", ?{n}"));
                paths.push((key_path(key), None));
            }
            patched = call + ")";
        }
        // What the set keys can add at most: each entry's label and value, a colon and a comma.
        let mut growth = 0usize;
        if !patch.set.is_empty() {
            let mut call = format!("json_set({patched}");
            for (key, value) in &patch.set {
                call.push_str(&format!(", ?{}, json(?{})", n + 1, n + 2));
                n += 2;
                let (path, text) = (key_path(key), value.to_string());
                growth += path.len() + text.len() + 2;
                paths.push((path, Some(text)));
            }
            patched = call + ")";
        }
        // A live object (stored JSON is compact: an object starts with `{`) small enough that
        // the patched one stays under the size limit, checked without parsing it. A new expiry
        // in the minute the record's is in leaves the expiry index alone; only when the minute
        // changes does a second statement set it too.
        let keep = matches!(patch.expiry, PatchExpiry::Keep);
        let at = match patch.expiry {
            PatchExpiry::Keep => None,
            PatchExpiry::Set(at) => to_ms(at),
        };
        let variants: &[(&str, &str)] = if keep {
            &[("", "")]
        } else {
            &[
                (
                    ", expires_at = ?5",
                    " AND r.expiry_minute IS ((?5 + 59999) / 60000)",
                ),
                (
                    ", expires_at = ?5, expiry_minute = ((?5 + 59999) / 60000)",
                    "",
                ),
            ]
        };
        for (set_expiry, same_minute) in variants {
            let sql = format!(
                "UPDATE {} AS r SET value = {patched}, \
                 revision = ?3 + (r.revision IS NOT ?8){set_expiry} \
                 WHERE r.kind = ?1 AND r.id = ?2 AND {} \
                 AND substr(r.value, 1, 1) = '{{' AND octet_length(r.value) <= ?7{same_minute} \
                 RETURNING revision",
                bank.sql.table,
                live("?6")
            );
            let mut query = sqlx::query(&sql)
                .bind(patch.kind)
                .bind(patch.id.as_bytes())
                .bind(even)
                .bind(keep)
                .bind(at)
                .bind(now_ms())
                .bind(MAX_VALUE_BYTES as i64 - growth as i64)
                .bind(base.map(|base| base.get() as i64));
            for (path, value) in &paths {
                query = query.bind(path.as_str());
                if let Some(value) = value {
                    query = query.bind(value.as_str());
                }
            }
            let row = bank.fetch_optional(query).await?;
            if row.is_some() {
                return bank.patched(row, even, patch).await;
            }
        }
        bank.patched(None, even, patch).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_database_in_memory_keeps_its_connection_however_long_it_idles() {
        let config = SqlConfig::from_url("sqlite::memory:").expect("a valid URL");
        let bank = SqliteBank::connect(config, Schema::default())
            .await
            .expect("the bank opens");
        let options = bank.connections.pool().options();
        assert_eq!(options.get_max_connections(), 1);
        assert_eq!(options.get_idle_timeout(), None);
        assert_eq!(options.get_max_lifetime(), None);
    }

    #[test]
    fn paths_quote_every_key() {
        assert_eq!(key_path("a.b"), "$.\"a.b\"");
        assert_eq!(key_path("say \"hi\""), "$.\"say \\u0022hi\\u0022\"");
        assert_eq!(key_path("\0"), "$.\"\\u0000\"");
        assert_eq!(field_path("name.last"), "$.\"name\".\"last\"");
    }
}
