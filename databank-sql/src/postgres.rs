//! `PostgresBank`: records in one `jsonb` table, every operation one statement.

use std::collections::HashMap;
use std::str::FromStr;

use databank_core::driver::MAX_VALUE_BYTES;
use databank_core::driver::{async_trait, Patch, PatchExpiry};
use databank_core::{Applied, Criteria, Error, Result, Revision, Schema, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::backend::sealed::Backend;
use crate::backend::{Dialect, Edits, SqlBank, Statements};
use crate::config::SqlConfig;
use crate::connections::Connections;
use crate::jsonb;
use crate::sql::{even_revision, ident, index_name, literal, live, now_ms, to_ms, SCHEMA_VERSION};

const DRIVER: &str = "postgres";

/// A patch is one statement while the patched record's `jsonb` takes at most this many bytes.
/// Compact JSON can be up to six times that (a control character is 1 byte there and `\u0001`
/// in JSON), never more, so under the bound the size limit holds; past it the patch is a
/// revision-checked read and write that measures exactly. For a value stored uncompressed (every
/// small one) the statement checks its size (`pg_column_size`, read from the datum's header)
/// plus what the set keys can add ([`patch_growth`]), so the patched value is built once; a
/// compressed one (whose stored size says nothing of its own) is measured patched.
const PATCH_IN_PLACE_MAX: i64 = (MAX_VALUE_BYTES / 6) as i64;

/// The most a patch setting `set` (its compact JSON text) can add to a `jsonb` value: each
/// entry's key and value take at most eight times their JSON text there (a one-digit number
/// is an aligned `numeric` of up to 16 bytes with its 4-byte entry, against the 2 characters
/// of `1,`; a string or key takes no more than its text plus an entry and padding).
fn patch_growth(set: &str) -> i64 {
    8 * set.len() as i64 + 64
}

/// The minute an expiry falls in, rounded up, as `Postgres::minute_of` computes it in SQL.
fn minute_of_ms(ms: i64) -> i64 {
    if ms >= 0 {
        ms / 60_000 + i64::from(ms % 60_000 != 0)
    } else {
        ms / 60_000
    }
}

/// The patch statement for a patch that sets (`$3`) and, with `removes`, removes keys; with
/// `keeps_expiry` it leaves the expiry alone. `$1` kind, `$2` id, `$3` the keys to set (an
/// object), `$4` the new revision (even: one more when the record was not at the base), `$5`
/// the base revision (or NULL), `$6` now, `$7` the largest stored size to patch in place; then
/// `$8` the expiry and `$9` its minute unless kept; then the keys to remove. Four plain
/// statements rather than one with `CASE`s: PostgreSQL sets up every expression of a statement
/// on each execution, and this is the statement every session save runs.
fn patch_statement(t: &str, keeps_expiry: bool, removes: bool) -> String {
    let (expiry, removed) = if keeps_expiry {
        ("", "$8")
    } else {
        (", expires_at = $8, expiry_minute = $9", "$10")
    };
    let value = if removes {
        format!("(r.value - {removed}::text[]) || $3::jsonb")
    } else {
        "r.value || $3::jsonb".to_owned()
    };
    format!(
        "UPDATE {t} SET value = {value}, revision = $4 + (r.revision IS DISTINCT FROM $5)::int{expiry} \
         WHERE r.kind = $1 AND r.id = $2 AND {} AND jsonb_typeof(r.value) = 'object' \
         AND (pg_column_compression(r.value) IS NULL AND pg_column_size(r.value) <= $7 \
         OR pg_column_size({value}) <= {PATCH_IN_PLACE_MAX}) RETURNING revision",
        live("$6")
    )
}

/// PostgreSQL's statements beyond the shared ones.
#[derive(Debug)]
pub struct Own {
    read_all: String,
    /// By keeps the expiry, then removes keys: see [`patch_statement`].
    patch: [[String; 2]; 2],
}

/// The statements of one table, written once at open.
fn statements(table: &str) -> (Statements, Own) {
    let t = format!("{} AS r", ident(table));
    let key = "r.kind = $1 AND r.id = $2";
    let expired = "r.expires_at <= $5";
    let list = |joined: &str| {
        format!(
            "INSERT INTO {t} (kind, id, value, revision, expires_at) \
                 VALUES ($1, $2, jsonb_build_array($3::jsonb), $4, NULL) \
                 ON CONFLICT (kind, id) DO UPDATE SET \
                 value = CASE WHEN {expired} THEN EXCLUDED.value ELSE {joined} END, \
                 revision = EXCLUDED.revision, \
                 expires_at = CASE WHEN {expired} THEN NULL ELSE r.expires_at END, \
                 expiry_minute = CASE WHEN {expired} THEN NULL ELSE r.expiry_minute END \
                 WHERE {expired} OR jsonb_typeof(r.value) = 'array' \
                 RETURNING jsonb_array_length(r.value)::bigint"
        )
    };
    let edits = Edits {
            incr: format!(
                "INSERT INTO {t} (kind, id, value, revision, expires_at) \
                 VALUES ($1, $2, to_jsonb($3::bigint), $4, NULL) \
                 ON CONFLICT (kind, id) DO UPDATE SET \
                 value = CASE WHEN {expired} THEN EXCLUDED.value \
                 ELSE to_jsonb((r.value #>> '{{}}')::numeric + $3) END, \
                 revision = EXCLUDED.revision, \
                 expires_at = CASE WHEN {expired} THEN NULL ELSE r.expires_at END, \
                 expiry_minute = CASE WHEN {expired} THEN NULL ELSE r.expiry_minute END \
                 WHERE CASE WHEN {expired} THEN true \
                 WHEN jsonb_typeof(r.value) = 'number' AND (r.value #>> '{{}}') ~ '^-?[0-9]+$' \
                 THEN (r.value #>> '{{}}')::numeric + $3 BETWEEN -9223372036854775808 AND 9223372036854775807 \
                 ELSE false END \
                 RETURNING (r.value #>> '{{}}')::bigint"
            ),
            append: list("r.value || EXCLUDED.value"),
            prepend: list("EXCLUDED.value || r.value"),
            remove: format!(
                "UPDATE {t} SET value = r.value - ( \
                 SELECT (e.o - 1)::int FROM jsonb_array_elements(r.value) WITH ORDINALITY AS e(x, o) \
                 WHERE e.x::text = $3::jsonb::text ORDER BY e.o LIMIT 1), revision = $4 \
                 WHERE {key} AND {} AND jsonb_typeof(r.value) = 'array' \
                 AND EXISTS (SELECT 1 FROM jsonb_array_elements(r.value) AS e(x) WHERE e.x::text = $3::jsonb::text)",
                live("$5")
            ),
        };
    let own = Own {
        read_all: format!(
            "SELECT r.id, r.value::text FROM {t} WHERE r.kind = $1 AND r.id = ANY($2) AND {}",
            live("$3")
        ),
        patch: [false, true]
            .map(|keeps| [false, true].map(|removes| patch_statement(&t, keeps, removes))),
    };
    (Statements::new::<Postgres>(table, edits), own)
}

/// The tables, the expiry index and the schema version, as one script.
fn ddl(table: &str) -> String {
    let t = ident(table);
    let meta = ident(&format!("{table}_meta"));
    let expiry = ident(&format!("{table}_expiry"));
    format!(
            "CREATE TABLE IF NOT EXISTS {t} ( \
               kind text NOT NULL, \
               id bytea NOT NULL, \
               value jsonb NOT NULL, \
               revision bigint NOT NULL, \
               expires_at bigint, \
               expiry_minute bigint, \
               PRIMARY KEY (kind, id)) WITH (fillfactor = 80); \
             CREATE INDEX IF NOT EXISTS {expiry} ON {t} (kind, expiry_minute) WHERE expiry_minute IS NOT NULL; \
             CREATE TABLE IF NOT EXISTS {meta} (name text PRIMARY KEY, value text NOT NULL); \
             INSERT INTO {meta} (name, value) VALUES ('schema_version', '{SCHEMA_VERSION}') ON CONFLICT DO NOTHING;"
        )
}

/// The path of a dotted field as a `text[]` literal, keys in their stored form.
fn path_literal(field: &str) -> String {
    let parts: Vec<String> = field
        .split('.')
        .map(|p| pg_literal(&jsonb::key(p)))
        .collect();
    format!("ARRAY[{}]::text[]", parts.join(","))
}

/// The advisory lock key of a table's set-up.
fn lock_key(table: &str) -> i64 {
    let hash = index_name("lock", "", table);
    i64::from_str_radix(&hash[hash.len() - 15..], 16).unwrap_or(0)
}

/// `text` as a PostgreSQL string literal whatever `standard_conforming_strings` says: with
/// a backslash in it, an escape string (`E'…'`) with backslashes doubled.
fn pg_literal(text: &str) -> String {
    if text.contains('\\') {
        format!("E{}", literal(&text.replace('\\', "\\\\")))
    } else {
        literal(text)
    }
}

/// PostgreSQL, as a [`Dialect`]: `jsonb` values, declared fields indexed by expression.
#[derive(Debug, Clone, Copy)]
pub struct Postgres;

impl Dialect for Postgres {}

/// The driver on PostgreSQL: one table (`databank` unless the URL says `table=`), `jsonb`
/// values, declared fields indexed by expression.
pub type PostgresBank = SqlBank<Postgres>;

impl SqlBank<Postgres> {
    /// Opens a pool of `config.max_connections` to the URL's database, then prepares the
    /// table as [`with_pool`](Self::with_pool) does.
    pub async fn connect(config: SqlConfig, schema: Schema) -> Result<Self> {
        config.validate()?;
        let options = PgConnectOptions::from_str(&config.database_url).map_err(|e| {
            Error::InvalidInput(format!(
                "bad PostgreSQL URL {}: {e}",
                databank_core::redact(&config.database_url)
            ))
        })?;
        let options = options.application_name("databank");
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.timeout)
            // A broken connection shows as an error on use (mapped to Unavailable or
            // OutcomeUnknown) rather than a ping before every call.
            .test_before_acquire(false)
            .connect_lazy_with(options);
        let size = config.max_connections;
        Self::opened(Connections::owned(pool, size), config, schema).await
    }
}

#[async_trait]
impl Backend for Postgres {
    type Db = sqlx::Postgres;
    type Own = Own;
    const DRIVER: &'static str = DRIVER;
    const BANK: &'static str = "PostgresBank";

    fn rows_affected(done: &sqlx::postgres::PgQueryResult) -> u64 {
        done.rows_affected()
    }

    fn param(n: usize) -> String {
        format!("${n}")
    }

    fn value_param(n: usize) -> String {
        format!("${n}::jsonb")
    }

    const VALUE_TEXT: &'static str = "r.value::text";

    /// Rounded up; a row whose expiry stays in its minute is updated in place (a HOT update).
    fn minute_of(ms: &str) -> String {
        format!("ceil({ms}::numeric / 60000)::bigint")
    }

    fn statements(table: &str) -> (Statements, Own) {
        statements(table)
    }

    fn ddl(table: &str) -> String {
        ddl(table)
    }

    /// One script is one transaction: processes opening at once take turns rather than race
    /// on `CREATE … IF NOT EXISTS`.
    fn setup_lock(table: &str) -> String {
        format!("SELECT pg_advisory_xact_lock({});", lock_key(table))
    }

    fn index_expression(field: &str) -> String {
        format!("(value #> {})", path_literal(field))
    }

    fn encode(value: &Value) -> Result<String> {
        jsonb::to_text(value)
    }

    fn decode(location: impl FnOnce() -> String, text: &str) -> Result<Value> {
        jsonb::from_text(location, text)
    }

    fn persistent(_bank: &PostgresBank) -> bool {
        true
    }

    async fn read_all(
        bank: &PostgresBank,
        kind: &str,
        ids: &[&str],
    ) -> Result<HashMap<String, Option<Value>>> {
        let mut found: HashMap<String, Option<Value>> =
            ids.iter().map(|id| ((*id).to_owned(), None)).collect();
        if ids.is_empty() {
            return Ok(found);
        }
        let keys: Vec<Vec<u8>> = ids.iter().map(|id| id.as_bytes().to_vec()).collect();
        let query = sqlx::query(&bank.own.read_all)
            .bind(kind)
            .bind(keys)
            .bind(now_ms());
        for row in bank.fetch_all(query).await? {
            let (id, value) = PostgresBank::id_and_value(kind, &row)?;
            found.insert(id, Some(value));
        }
        Ok(found)
    }

    async fn search(
        bank: &PostgresBank,
        kind: &str,
        criteria: &Criteria,
    ) -> Result<Vec<(String, Value)>> {
        // `jsonb` equality finds a superset of JSON equality (1 = 1.0), so the rows are
        // checked again here. Declared fields name their index's expression (a literal path)
        // and the type as a literal, so the planner can use the partial index.
        let mut sql = format!(
            "SELECT r.id, r.value::text FROM {} AS r WHERE r.kind = {} AND {}",
            bank.sql.table,
            literal(kind),
            live("$1")
        );
        let mut texts = Vec::new();
        let mut paths = Vec::new();
        for (field, value) in criteria.fields() {
            texts.push(jsonb::to_text(value)?);
            let n = texts.len() + 1;
            if bank.schema.is_indexed(kind, field) {
                sql.push_str(&format!(
                    " AND (r.value #> {}) = ${n}::jsonb",
                    path_literal(field)
                ));
            } else {
                paths.push((n, field.split('.').map(jsonb::key).collect::<Vec<_>>()));
            }
        }
        // Paths of fields with no index are parameters, after the values.
        let first_path = texts.len() + 2;
        for (i, (n, _)) in paths.iter().enumerate() {
            let p = first_path + i;
            sql.push_str(&format!(" AND (r.value #> ${p}::text[]) = ${n}::jsonb"));
        }
        let mut query = sqlx::query(&sql).bind(now_ms());
        for text in texts {
            query = query.bind(text);
        }
        for (_, path) in paths {
            query = query.bind(path);
        }
        PostgresBank::matching(kind, bank.fetch_all(query).await?, criteria)
    }

    async fn patch_from(
        bank: &PostgresBank,
        patch: Patch<'_>,
        base: Option<Revision>,
    ) -> Result<Applied> {
        let even = even_revision();
        let set = jsonb::to_text(&Value::Object(patch.set.clone()))?;
        let remove: Vec<String> = patch.remove.iter().map(|k| jsonb::key(k)).collect();
        let bound = PATCH_IN_PLACE_MAX - patch_growth(&set);
        let keeps = matches!(patch.expiry, PatchExpiry::Keep);
        let statement = &bank.own.patch[usize::from(keeps)][usize::from(!remove.is_empty())];
        let mut query = sqlx::query(statement)
            .bind(patch.kind)
            .bind(patch.id.as_bytes())
            .bind(set)
            .bind(even)
            .bind(base.map(|base| base.get() as i64))
            .bind(now_ms())
            .bind(bound);
        if let PatchExpiry::Set(at) = patch.expiry {
            let at = to_ms(at);
            query = query.bind(at).bind(at.map(minute_of_ms));
        }
        if !remove.is_empty() {
            query = query.bind(remove);
        }
        let row = bank.fetch_optional(query).await?;
        bank.patched(row, even, patch).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn minutes_round_up_as_sql_does() {
        for (ms, minute) in [
            (0, 0),
            (1, 1),
            (59_999, 1),
            (60_000, 1),
            (60_001, 2),
            (-1, 0),
            (-60_000, -1),
            (-60_001, -1),
            (-119_999, -1),
        ] {
            assert_eq!(minute_of_ms(ms), minute, "{ms}");
        }
    }

    /// What a set can add to a stored `jsonb`, measured by the server, stays within
    /// `patch_growth` for the sets that grow most per character of JSON.
    #[tokio::test]
    async fn patch_growth_bounds_what_postgres_stores() -> std::result::Result<(), sqlx::Error> {
        let url = databank_core::server_or_skip!(
            "DATABANK_TEST_POSTGRES_URL",
            "cargo xtask services up postgres"
        );
        let pool = sqlx::PgPool::connect(&url).await?;
        let digits: Vec<i64> = (0..500).map(|n| n % 10).collect();
        let sets = [
            json!({"a": 1}),
            json!({"": 0}),
            json!({"d": digits}),
            json!({"n": [[[[[[[[[[]]]]]]]]]]}),
            json!({"o": [{}, {}, {}, {"": {}}]}),
            json!({"s": ["", "", "", ""], "t": [true, false, null]}),
            json!({"big": 1e300, "neg": -0.000001, "u": u64::MAX}),
        ];
        for base in [json!({}), json!({"k": "v".repeat(100)})] {
            for set in &sets {
                let text = jsonb::to_text(set).map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
                let (before, after): (i32, i32) = sqlx::query_as(
                    "SELECT pg_column_size($1::jsonb), pg_column_size($1::jsonb || $2::jsonb)",
                )
                .bind(base.to_string())
                .bind(&text)
                .fetch_one(&pool)
                .await?;
                let growth = i64::from(after - before);
                assert!(
                    growth <= patch_growth(&text),
                    "{set} grew {growth} bytes, bound {}",
                    patch_growth(&text)
                );
            }
        }
        Ok(())
    }
}
