//! The `Driver` both SQL databases run, written once: [`SqlBank`] over sqlx's types for a
//! database, and [`Dialect`], what each database brings (its statements, how it stores a
//! value, and its own patch, batched read and search).
//!
//! Every statement's parameters start with the type (`1`), the id (`2`) as bytes, and go on as
//! each statement's comment says.

use std::collections::HashMap;
use std::future::Future;

use databank_core::driver::{
    async_trait, patch_by_read_and_write, random_revision, record, timed, Driver, Patch,
    Precondition, RecordStream, RecordsStream, Write,
};
use databank_core::{
    Applied, Capabilities, Criteria, Error, Expiry, IfChanged, Record, Result, Revision, Schema,
    Value,
};
use futures_util::StreamExt;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row as _, Type};

use crate::config::SqlConfig;
use crate::connections::Connections;
use crate::error::{connect_err, map_err};
use crate::sql::{
    expired_by, from_ms, ident, index_name, literal, live, now_ms, to_ms, SCAN_PAGE, SCHEMA_VERSION,
};

/// A row of a dialect's database.
pub(crate) type Row<D> = <<D as sealed::Backend>::Db as Database>::Row;

/// A statement with its parameters, for a dialect's database.
pub(crate) type Query<'q, D> = sqlx::query::Query<
    'q,
    <D as sealed::Backend>::Db,
    <<D as sealed::Backend>::Db as Database>::Arguments<'q>,
>;

/// The statements both databases have, written once per table at open (each dialect writes
/// its own SQL for them).
#[derive(Debug)]
pub struct Statements {
    pub table: String,
    pub read: String,
    pub read_known: String,
    pub save: String,
    pub create: String,
    pub update: String,
    pub update_if: String,
    pub exists: String,
    pub delete: String,
    pub touch: String,
    pub page: String,
    pub purge: String,
    pub count: String,
    pub count_expired: String,
    pub kinds: String,
    pub incr: String,
    pub append: String,
    pub prepend: String,
    pub remove: String,
}

/// The counter and list statements, which differ between the databases beyond spelling
/// (their JSON functions).
pub struct Edits {
    /// `incr_by`: 3 delta, 4 revision, 5 now; returns the new value.
    pub incr: String,
    /// `append`: 3 item, 4 revision, 5 now; returns the new length.
    pub append: String,
    /// `prepend`, as `append`.
    pub prepend: String,
    /// `remove`: 3 item, 4 revision, 5 now.
    pub remove: String,
}

impl Statements {
    /// The statements of `table`, written once in the dialect's spelling: its parameters, how a
    /// parameter becomes a stored value, how the stored value is read as text, and the minute
    /// of a time that the expiry index holds.
    pub(crate) fn new<D: sealed::Backend>(table: &str, edits: Edits) -> Self {
        let p = D::param;
        let t = format!("{} AS r", ident(table));
        let (value_in, value_out) = (D::value_param(3), D::VALUE_TEXT);
        let minute_5 = D::minute_of(&p(5));
        let key = format!("r.kind = {} AND r.id = {}", p(1), p(2));
        let insert = format!(
            "INSERT INTO {t} (kind, id, value, revision, expires_at, expiry_minute) \
             VALUES ({}, {}, {value_in}, {}, {}, {minute_5})",
            p(1),
            p(2),
            p(4),
            p(5)
        );
        let replace = "SET value = excluded.value, revision = excluded.revision, \
                       expires_at = excluded.expires_at, expiry_minute = excluded.expiry_minute";
        let update = format!(
            "UPDATE {t} SET value = {value_in}, revision = {}, expires_at = {}, \
             expiry_minute = {minute_5} WHERE {key} AND {}",
            p(4),
            p(5),
            live(&p(6))
        );
        let table_only = ident(table);
        Statements {
            read: format!(
                "SELECT {value_out}, r.revision, r.expires_at FROM {t} WHERE {key} AND {}",
                live(&p(3))
            ),
            // 4 the revision the caller knows: then the value is left out.
            read_known: format!(
                "SELECT CASE WHEN r.revision = {} THEN NULL ELSE {value_out} END, r.revision, \
                 r.expires_at FROM {t} WHERE {key} AND {}",
                p(4),
                live(&p(3))
            ),
            save: format!("{insert} ON CONFLICT (kind, id) DO UPDATE {replace}"),
            create: format!(
                "{insert} ON CONFLICT (kind, id) DO UPDATE {replace} WHERE r.expires_at <= {}",
                p(6)
            ),
            update_if: format!("{update} AND r.revision = {}", p(7)),
            update,
            exists: format!("SELECT 1 FROM {t} WHERE {key} AND {}", live(&p(3))),
            delete: format!("DELETE FROM {t} WHERE {key} AND {}", live(&p(3))),
            touch: format!(
                "UPDATE {t} SET expires_at = {}, expiry_minute = {} WHERE {key} AND {}",
                p(3),
                D::minute_of(&p(3)),
                live(&p(4))
            ),
            page: format!(
                "SELECT r.id, {value_out}, r.revision, r.expires_at FROM {t} \
                 WHERE r.kind = {} AND r.id > {} AND {} ORDER BY r.id LIMIT {}",
                p(1),
                p(2),
                live(&p(3)),
                p(4)
            ),
            purge: format!(
                "DELETE FROM {t} WHERE r.kind = {} AND {}",
                p(1),
                expired_by(&p(2), D::minute_of)
            ),
            count: format!(
                "SELECT count(*) FROM {t} WHERE r.kind = {} AND {}",
                p(1),
                live(&p(2))
            ),
            count_expired: format!(
                "SELECT count(*) FROM {t} WHERE r.kind = {} AND {}",
                p(1),
                expired_by(&p(2), D::minute_of)
            ),
            // A skip scan of the primary key: one index probe per type, not a read of every row.
            kinds: format!(
                "WITH RECURSIVE k(kind) AS ( \
                 SELECT min(kind) FROM {table_only} \
                 UNION ALL SELECT (SELECT min(kind) FROM {table_only} WHERE kind > k.kind) \
                 FROM k WHERE k.kind IS NOT NULL) \
                 SELECT kind FROM k WHERE kind IS NOT NULL"
            ),
            incr: edits.incr,
            append: edits.append,
            prepend: edits.prepend,
            remove: edits.remove,
            table: table_only,
        }
    }
}

/// A SQL database a [`SqlBank`] runs on: [`Postgres`](crate::Postgres) (feature `postgres`)
/// or [`Sqlite`](crate::Sqlite) (feature `sqlite`). Sealed: this crate's two are all there is.
pub trait Dialect: sealed::Backend {}

pub(crate) mod sealed {
    use super::*;

    /// What a database brings to the shared driver.
    #[async_trait]
    pub trait Backend: Sized + Send + Sync + 'static {
        /// sqlx's database.
        type Db: Database;
        /// Statements of its own (beyond [`Statements`]).
        type Own: Send + Sync + std::fmt::Debug;
        /// How many rows a statement changed (sqlx gives each database its own result type).
        fn rows_affected(done: &<Self::Db as Database>::QueryResult) -> u64;
        /// Parameter `n` (from 1) of a statement.
        fn param(n: usize) -> String;
        /// Parameter `n` holding a value's stored text, as the value column takes it.
        fn value_param(n: usize) -> String;
        /// The value column as text, for the table alias `r`.
        const VALUE_TEXT: &'static str;
        /// The minute of a time (`NULL` for never), as SQL: what the expiry index holds, so
        /// that a save moving an expiry within its minute leaves the index alone. Any mapping
        /// that never decreases as the time grows will do.
        fn minute_of(ms: &str) -> String;
        /// The driver's name, in errors and logs.
        const DRIVER: &'static str;
        /// The bank's type name, in `Debug`.
        const BANK: &'static str;
        /// The statements of `table`.
        fn statements(table: &str) -> (Statements, Self::Own);
        /// The tables, the expiry index and the schema version, as one script.
        fn ddl(table: &str) -> String;
        /// SQL run first in each set-up script (empty for none).
        fn setup_lock(table: &str) -> String;
        /// What a declared field's index is on.
        fn index_expression(field: &str) -> String;
        /// The stored text of a value or list item.
        fn encode(value: &Value) -> Result<String>;
        /// A value from its stored text.
        fn decode(location: impl FnOnce() -> String, text: &str) -> Result<Value>;
        /// Whether a bank's records outlive it (and other processes share them).
        fn persistent(bank: &SqlBank<Self>) -> bool;
        /// A patch, in one statement where it can be; whether the record stood at `base`.
        async fn patch_from(
            bank: &SqlBank<Self>,
            patch: Patch<'_>,
            base: Option<Revision>,
        ) -> Result<Applied>;
        /// Many records at once.
        async fn read_all(
            bank: &SqlBank<Self>,
            kind: &str,
            ids: &[&str],
        ) -> Result<HashMap<String, Option<Value>>>;
        /// The records matching `criteria`.
        async fn search(
            bank: &SqlBank<Self>,
            kind: &str,
            criteria: &Criteria,
        ) -> Result<Vec<(String, Value)>>;
    }
}

/// A bank on a SQL database: one table (`databank` unless the URL says `table=`), every
/// operation one statement. Named for its database as [`PostgresBank`](crate::PostgresBank)
/// and [`SqliteBank`](crate::SqliteBank), which say how each opens.
pub struct SqlBank<D: sealed::Backend> {
    pub(crate) connections: Connections<D::Db>,
    pub(crate) schema: Schema,
    pub(crate) config: SqlConfig,
    pub(crate) sql: Statements,
    /// The dialect's own statements (SQLite has none, so a build without PostgreSQL reads
    /// none).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) own: D::Own,
}

impl<D: sealed::Backend> std::fmt::Debug for SqlBank<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(D::BANK)
            .field("config", &self.config)
            .finish()
    }
}

impl<D: Dialect> SqlBank<D>
where
    for<'c> &'c mut <D::Db as Database>::Connection: Executor<'c, Database = D::Db>,
    for<'q> <D::Db as Database>::Arguments<'q>: IntoArguments<'q, D::Db>,
    for<'q> &'q str: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> &'q [u8]: Encode<'q, D::Db> + Type<D::Db>,
    for<'q, 'r> Vec<u8>: Encode<'q, D::Db> + Decode<'r, D::Db> + Type<D::Db>,
    for<'q, 'r> String: Encode<'q, D::Db> + Decode<'r, D::Db> + Type<D::Db>,
    for<'q, 'r> i64: Encode<'q, D::Db> + Decode<'r, D::Db> + Type<D::Db>,
    for<'q> Option<i64>: Encode<'q, D::Db> + Type<D::Db>,
    usize: ColumnIndex<Row<D>>,
{
    /// The bank over `connections`, its table prepared.
    pub(crate) async fn opened(
        connections: Connections<D::Db>,
        config: SqlConfig,
        schema: Schema,
    ) -> Result<Self> {
        config.validate()?;
        let (sql, own) = D::statements(&config.table);
        let bank = Self {
            sql,
            own,
            connections,
            schema,
            config,
        };
        bank.timed(bank.prepare())
            .await
            .map_err(Error::nothing_applied)?;
        tracing::debug!(driver = D::DRIVER, config = ?bank.config, "opened bank");
        Ok(bank)
    }

    /// Uses a pool the application already has (its size and timeouts are the
    /// application's; `config` gives the table and the call timeout). Creates the table, the
    /// expiry index and the schema's indices when missing (on PostgreSQL in one transaction
    /// under an advisory lock, so that processes opening at once do not race), and refuses a
    /// table written by a newer schema version.
    pub async fn with_pool(
        pool: sqlx::Pool<D::Db>,
        config: SqlConfig,
        schema: Schema,
    ) -> Result<Self> {
        Self::opened(Connections::shared(pool), config, schema).await
    }

    /// The pool this bank uses, to share with the rest of the application. A bank that opened
    /// its pool keeps connections between statements (sparing the test sqlx runs on each
    /// one given back); once its pool is shared it gives each back after its statement.
    pub fn pool(&self) -> &sqlx::Pool<D::Db> {
        self.connections.share()
    }

    /// The statements creating the schema's indices (collected first: an iterator
    /// over the schema held across an await makes the future not provably `Send`).
    fn index_ddl(&self) -> Vec<String> {
        let table = &self.config.table;
        let mut statements = Vec::new();
        for (kind, fields) in self.schema.types() {
            for field in fields {
                statements.push(format!(
                    "CREATE INDEX IF NOT EXISTS {} ON {} ({}) WHERE kind = {}",
                    ident(&index_name(table, kind, field)),
                    self.sql.table,
                    D::index_expression(field),
                    literal(kind)
                ));
            }
        }
        statements
    }

    /// Creates the tables and the expiry index when missing, refuses a newer schema
    /// version, and creates the declared fields' indices.
    async fn prepare(&self) -> Result<()> {
        let table = &self.config.table;
        let lock = D::setup_lock(table);
        let tables = format!("{lock}{}", D::ddl(table));
        sqlx::raw_sql(&tables)
            .execute(self.connections.pool())
            .await
            .map_err(|e| connect_err(D::DRIVER, e))?;
        let meta = ident(&format!("{table}_meta"));
        let version: String = sqlx::query_scalar(&format!(
            "SELECT value FROM {meta} WHERE name = 'schema_version'"
        ))
        .fetch_one(self.connections.pool())
        .await
        .map_err(|e| map_err(D::DRIVER, e))?;
        match version.parse::<i64>() {
            Ok(v) if v <= SCHEMA_VERSION => {}
            _ => {
                return Err(Error::InvalidInput(format!(
                    "table {table} has schema version {version:?}; this databank reads up to {SCHEMA_VERSION}"
                )))
            }
        }
        let indices = self.index_ddl();
        if !indices.is_empty() {
            let script = format!("{lock}{};", indices.join("; "));
            sqlx::raw_sql(&script)
                .execute(self.connections.pool())
                .await
                .map_err(|e| map_err(D::DRIVER, e))?;
        }
        Ok(())
    }

    /// Bounds a call by the configured timeout.
    async fn timed<T>(&self, call: impl Future<Output = Result<T>>) -> Result<T> {
        timed(D::DRIVER, self.config.timeout, call).await
    }

    /// Runs a statement; the rows it changed.
    async fn execute(&self, query: Query<'_, D>) -> Result<u64> {
        self.timed(async {
            let mut held = self
                .connections
                .take()
                .await
                .map_err(|e| map_err(D::DRIVER, e))?;
            let outcome = query.execute(held.connection()).await;
            held.done(&outcome);
            outcome
                .map(|done| D::rows_affected(&done))
                .map_err(|e| map_err(D::DRIVER, e))
        })
        .await
    }

    pub(crate) async fn fetch_optional(&self, query: Query<'_, D>) -> Result<Option<Row<D>>> {
        self.timed(async {
            let mut held = self
                .connections
                .take()
                .await
                .map_err(|e| map_err(D::DRIVER, e))?;
            let outcome = query.fetch_optional(held.connection()).await;
            held.done(&outcome);
            outcome.map_err(|e| map_err(D::DRIVER, e))
        })
        .await
    }

    pub(crate) async fn fetch_all(&self, query: Query<'_, D>) -> Result<Vec<Row<D>>> {
        self.timed(async {
            let mut held = self
                .connections
                .take()
                .await
                .map_err(|e| map_err(D::DRIVER, e))?;
            let outcome = query.fetch_all(held.connection()).await;
            held.done(&outcome);
            outcome.map_err(|e| map_err(D::DRIVER, e))
        })
        .await
    }

    /// True when a live record holds the id.
    async fn exists(&self, kind: &str, id: &str) -> Result<bool> {
        let query = sqlx::query(&self.sql.exists)
            .bind(kind)
            .bind(id.as_bytes())
            .bind(now_ms());
        Ok(self.fetch_optional(query).await?.is_some())
    }

    /// The live records of a type after the id `after`, in id order.
    async fn page(&self, kind: &str, after: Vec<u8>) -> Result<Vec<(String, Record)>> {
        let query = sqlx::query(&self.sql.page)
            .bind(kind)
            .bind(after)
            .bind(now_ms())
            .bind(SCAN_PAGE);
        self.fetch_all(query)
            .await?
            .iter()
            .map(|row| {
                let id = Self::id_of(kind, row)?;
                let record = Self::record_of(kind, &id, row, 1)?;
                Ok((id, record))
            })
            .collect()
    }

    /// After a patch's `UPDATE` changed nothing: a patch that may create its record
    /// creates it from the set keys, unless a live record holds the id. The new
    /// revision when it was created; `None` when the patch must go on to a read.
    async fn create_patched(&self, patch: &Patch<'_>) -> Result<Option<Revision>> {
        if !patch.create {
            return Ok(None);
        }
        let created = Write::new(
            patch.kind,
            patch.id,
            Value::Object(patch.set.clone()),
            Precondition::Absent,
        )
        .expires_at(patch.expiry.resolve(None));
        match self.write(created).await {
            Ok(revision) => Ok(Some(revision)),
            Err(Error::AlreadyExists { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The outcome of a patch statement that returned `row` (the stored revision) or
    /// nothing: a patch that changed nothing and may create its record creates it,
    /// anything else (missing and not to be created, not an object, large) goes on to
    /// a revision-checked read and write, which fails as it should or measures
    /// exactly. Only the statement can tell a patch on its base (`even` stored).
    pub(crate) async fn patched(
        &self,
        row: Option<Row<D>>,
        even: i64,
        patch: Patch<'_>,
    ) -> Result<Applied> {
        if let Some(row) = row {
            let stored: i64 = row.try_get(0).map_err(|e| map_err(D::DRIVER, e))?;
            return Ok(Applied::new(Revision::new(stored as u64), stored == even));
        }
        if let Some(created) = self.create_patched(&patch).await? {
            return Ok(Applied::new(created, false));
        }
        Ok(Applied::new(
            patch_by_read_and_write(self, patch).await?,
            false,
        ))
    }

    /// Appends or prepends (per `statement`) an item; the new length.
    async fn push(&self, statement: &str, kind: &str, id: &str, item: &Value) -> Result<usize> {
        let query = sqlx::query(statement)
            .bind(kind)
            .bind(id.as_bytes())
            .bind(D::encode(item)?)
            .bind(random_revision().get() as i64)
            .bind(now_ms());
        match self.fetch_optional(query).await? {
            Some(row) => {
                let len: i64 = row.try_get(0).map_err(|e| map_err(D::DRIVER, e))?;
                Ok(len.max(0) as usize)
            }
            None => Err(Error::wrong_type(kind, id, "an array")),
        }
    }

    /// The id in column 0 of a row.
    fn id_of(kind: &str, row: &Row<D>) -> Result<String> {
        let bytes: Vec<u8> = row.try_get(0).map_err(|e| map_err(D::DRIVER, e))?;
        String::from_utf8(bytes).map_err(|_| Error::Corrupt {
            location: format!("{kind} row"),
            reason: "the id is not UTF-8".into(),
        })
    }

    /// The value in column `at` of a row.
    fn value_of(kind: &str, id: &str, row: &Row<D>, at: usize) -> Result<Value> {
        let text: String = row.try_get(at).map_err(|e| map_err(D::DRIVER, e))?;
        D::decode(|| format!("{kind} {id:?}"), &text)
    }

    /// The id and the value in columns 0 and 1 of a row (a batched read's, a search's).
    pub(crate) fn id_and_value(kind: &str, row: &Row<D>) -> Result<(String, Value)> {
        let id = Self::id_of(kind, row)?;
        let value = Self::value_of(kind, &id, row, 1)?;
        Ok((id, value))
    }

    /// The rows' records (id and value in columns 0 and 1) that match `criteria`: a search's
    /// statement finds a superset of JSON equality (1 = 1.0), so its rows are checked again.
    pub(crate) fn matching(
        kind: &str,
        rows: Vec<Row<D>>,
        criteria: &Criteria,
    ) -> Result<Vec<(String, Value)>> {
        let mut hits = Vec::new();
        for row in rows {
            let (id, value) = Self::id_and_value(kind, &row)?;
            if criteria.matches(&value) {
                hits.push((id, value));
            }
        }
        Ok(hits)
    }

    /// The value, revision and expiry in columns `at`.. of a row.
    fn record_of(kind: &str, id: &str, row: &Row<D>, at: usize) -> Result<Record> {
        let value = Self::value_of(kind, id, row, at)?;
        let revision: i64 = row.try_get(at + 1).map_err(|e| map_err(D::DRIVER, e))?;
        let expires: Option<i64> = row.try_get(at + 2).map_err(|e| map_err(D::DRIVER, e))?;
        Ok(record(
            value,
            Revision::new(revision as u64),
            from_ms(expires),
        ))
    }

    /// The count in column 0 of a row.
    fn count_of(row: Option<Row<D>>) -> Result<u64> {
        match row {
            Some(row) => {
                let n: i64 = row.try_get(0).map_err(|e| map_err(D::DRIVER, e))?;
                Ok(n.max(0) as u64)
            }
            None => Ok(0),
        }
    }
}

#[async_trait]
impl<D: Dialect> Driver for SqlBank<D>
where
    for<'c> &'c mut <D::Db as Database>::Connection: Executor<'c, Database = D::Db>,
    for<'q> <D::Db as Database>::Arguments<'q>: IntoArguments<'q, D::Db>,
    for<'q> &'q str: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> &'q [u8]: Encode<'q, D::Db> + Type<D::Db>,
    for<'q, 'r> Vec<u8>: Encode<'q, D::Db> + Decode<'r, D::Db> + Type<D::Db>,
    for<'q, 'r> String: Encode<'q, D::Db> + Decode<'r, D::Db> + Type<D::Db>,
    for<'q, 'r> i64: Encode<'q, D::Db> + Decode<'r, D::Db> + Type<D::Db>,
    for<'q> Option<i64>: Encode<'q, D::Db> + Type<D::Db>,
    usize: ColumnIndex<Row<D>>,
{
    /// Every operation is one statement, on both databases.
    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.native_counters = true;
        caps.native_search = true;
        caps.native_conditional_update = true;
        caps.native_lists = true;
        caps.native_patch = true;
        caps.persistent = D::persistent(self);
        caps.multi_process = caps.persistent;
        caps.supports_kinds = true;
        caps.supports_count_expired = true;
        caps.native_read_if_changed = true;
        caps.native_patch_on = true;
        caps
    }

    async fn patch(&self, patch: Patch<'_>) -> Result<Revision> {
        Ok(D::patch_from(self, patch, None).await?.revision)
    }

    async fn patch_on(&self, patch: Patch<'_>, base: Revision) -> Result<Applied> {
        D::patch_from(self, patch, Some(base)).await
    }

    async fn read_all(&self, kind: &str, ids: &[&str]) -> Result<HashMap<String, Option<Value>>> {
        D::read_all(self, kind, ids).await
    }

    async fn search(&self, kind: &str, criteria: &Criteria) -> Result<Vec<(String, Value)>> {
        D::search(self, kind, criteria).await
    }

    async fn read(&self, kind: &str, id: &str) -> Result<Record> {
        let query = sqlx::query(&self.sql.read)
            .bind(kind)
            .bind(id.as_bytes())
            .bind(now_ms());
        match self.fetch_optional(query).await? {
            Some(row) => Self::record_of(kind, id, &row, 0),
            None => Err(Error::not_found(kind, id)),
        }
    }

    async fn read_if_changed(&self, kind: &str, id: &str, known: Revision) -> Result<IfChanged> {
        // 3 now, 4 the known revision: the value column is NULL at it.
        let query = sqlx::query(&self.sql.read_known)
            .bind(kind)
            .bind(id.as_bytes())
            .bind(now_ms())
            .bind(known.get() as i64);
        let Some(row) = self.fetch_optional(query).await? else {
            return Err(Error::not_found(kind, id));
        };
        let text: Option<String> = row.try_get(0).map_err(|e| map_err(D::DRIVER, e))?;
        let revision: i64 = row.try_get(1).map_err(|e| map_err(D::DRIVER, e))?;
        let expires_at = from_ms(row.try_get(2).map_err(|e| map_err(D::DRIVER, e))?);
        match text {
            None if revision as u64 == known.get() => Ok(IfChanged::Unchanged { expires_at }),
            None => Err(Error::backend(D::DRIVER, "a live record without a value")),
            Some(text) => {
                let value = D::decode(|| format!("{kind} {id:?}"), &text)?;
                Ok(IfChanged::Changed(record(
                    value,
                    Revision::new(revision as u64),
                    expires_at,
                )))
            }
        }
    }

    async fn write(&self, write: Write<'_>) -> Result<Revision> {
        let (kind, id) = (write.kind, write.id);
        let revision = random_revision();
        let statement = match write.precondition {
            Precondition::Any => &self.sql.save,
            Precondition::Absent => &self.sql.create,
            Precondition::Exists => &self.sql.update,
            Precondition::Revision(_) => &self.sql.update_if,
        };
        // 3 value, 4 revision, 5 expiry, then 6 now and 7 the expected revision.
        let mut query = sqlx::query(statement)
            .bind(kind)
            .bind(id.as_bytes())
            .bind(D::encode(&write.value)?)
            .bind(revision.get() as i64)
            .bind(to_ms(write.expires_at));
        if write.precondition != Precondition::Any {
            query = query.bind(now_ms());
        }
        if let Precondition::Revision(expected) = write.precondition {
            query = query.bind(expected.get() as i64);
        }
        if self.execute(query).await? == 1 {
            return Ok(revision);
        }
        Err(match write.precondition {
            Precondition::Any | Precondition::Absent => Error::already_exists(kind, id),
            Precondition::Exists => Error::not_found(kind, id),
            Precondition::Revision(expected) => {
                if self.exists(kind, id).await? {
                    Error::conflict(kind, id, expected)
                } else {
                    Error::not_found(kind, id)
                }
            }
        })
    }

    async fn delete(&self, kind: &str, id: &str) -> Result<()> {
        let query = sqlx::query(&self.sql.delete)
            .bind(kind)
            .bind(id.as_bytes())
            .bind(now_ms());
        match self.execute(query).await? {
            0 => Err(Error::not_found(kind, id)),
            _ => Ok(()),
        }
    }

    async fn touch(&self, kind: &str, id: &str, expires_at: Expiry) -> Result<()> {
        let query = sqlx::query(&self.sql.touch)
            .bind(kind)
            .bind(id.as_bytes())
            .bind(to_ms(expires_at))
            .bind(now_ms());
        match self.execute(query).await? {
            0 => Err(Error::not_found(kind, id)),
            _ => Ok(()),
        }
    }

    fn scan<'a>(&'a self, kind: &'a str) -> RecordStream<'a> {
        Box::pin(
            self.scan_records(kind)
                .map(|item| item.map(|(id, record)| (id, record.value))),
        )
    }

    fn scan_records<'a>(&'a self, kind: &'a str) -> RecordsStream<'a> {
        // Pages in id order, each after the last id of the one before: a record
        // present for the whole scan is seen exactly once.
        let pages = futures_util::stream::unfold(Some(Vec::new()), move |after| async move {
            let after = after?;
            match self.page(kind, after).await {
                Ok(rows) => {
                    let next = match rows.last() {
                        Some((id, _)) if rows.len() as i64 == SCAN_PAGE => {
                            Some(id.as_bytes().to_vec())
                        }
                        _ => None,
                    };
                    let items: Vec<Result<(String, Record)>> = rows.into_iter().map(Ok).collect();
                    Some((futures_util::stream::iter(items), next))
                }
                Err(e) => Some((futures_util::stream::iter(vec![Err(e)]), None)),
            }
        });
        Box::pin(pages.flatten())
    }

    async fn purge_expired(&self, kind: &str) -> Result<u64> {
        let query = sqlx::query(&self.sql.purge).bind(kind).bind(now_ms());
        self.execute(query).await
    }

    async fn count_expired(&self, kind: &str) -> Result<u64> {
        let query = sqlx::query(&self.sql.count_expired)
            .bind(kind)
            .bind(now_ms());
        Self::count_of(self.fetch_optional(query).await?)
    }

    async fn count(&self, kind: &str) -> Result<u64> {
        let query = sqlx::query(&self.sql.count).bind(kind).bind(now_ms());
        Self::count_of(self.fetch_optional(query).await?)
    }

    async fn kinds(&self) -> Result<Vec<String>> {
        let rows = self.fetch_all(sqlx::query(&self.sql.kinds)).await?;
        rows.iter()
            .map(|row| {
                row.try_get::<String, _>(0)
                    .map_err(|e| map_err(D::DRIVER, e))
            })
            .collect()
    }

    async fn close(&self) -> Result<()> {
        self.connections.close().await;
        Ok(())
    }

    async fn incr_by(&self, kind: &str, id: &str, delta: i64) -> Result<i64> {
        // 3 delta, 4 revision, 5 now.
        let query = sqlx::query(&self.sql.incr)
            .bind(kind)
            .bind(id.as_bytes())
            .bind(delta)
            .bind(random_revision().get() as i64)
            .bind(now_ms());
        match self.fetch_optional(query).await? {
            Some(row) => row.try_get::<i64, _>(0).map_err(|e| map_err(D::DRIVER, e)),
            None => Err(Error::wrong_type(kind, id, "an integer")),
        }
    }

    async fn append(&self, kind: &str, id: &str, item: Value) -> Result<usize> {
        self.push(&self.sql.append, kind, id, &item).await
    }

    async fn prepend(&self, kind: &str, id: &str, item: Value) -> Result<usize> {
        self.push(&self.sql.prepend, kind, id, &item).await
    }

    async fn remove(&self, kind: &str, id: &str, item: &Value) -> Result<bool> {
        // 3 item, 4 revision, 5 now.
        let query = sqlx::query(&self.sql.remove)
            .bind(kind)
            .bind(id.as_bytes())
            .bind(D::encode(item)?)
            .bind(random_revision().get() as i64)
            .bind(now_ms());
        if self.execute(query).await? == 1 {
            return Ok(true);
        }
        // Nothing removed: a missing record or item is `false`, a non-array
        // `WrongType`.
        match self.read(kind, id).await {
            Ok(found) if !found.value.is_array() => Err(Error::wrong_type(kind, id, "an array")),
            Ok(_) => Ok(false),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }
}
