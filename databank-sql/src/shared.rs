//! The code both drivers run alike, written once: [`sql_driver!`] expands it for one driver.
//!
//! sqlx's query, row and pool types differ per database, so the shared code is a macro rather
//! than generic functions. The module that invokes it provides:
//! - `DRIVER` (the driver's name), `Statements` (the same fields in both: `read`, `save`,
//!   `create`, `update`, `update_if`, `exists`, `delete`, `touch`, `page`, `purge`, `count`,
//!   `count_expired`, `kinds`, `incr`, `append`, `prepend`, `remove`), and `Statements::ddl`;
//! - `encode(&Value) -> Result<String>` (the stored text of a value or item) and
//!   `decode(location, &str) -> Result<Value>`;
//! - `setup_lock(table) -> String`, SQL run first in each set-up script (empty for none);
//! - `index_expression(field) -> String`, what a declared field's index is on;
//! - `Driver` methods of its own: `capabilities`, `patch`, `read_all`, `search`.
//!
//! Every statement's parameters start with the type (`1`), the id (`2`) as bytes, and go on as
//! each statement's comment says.

/// Expands the shared helpers and `Driver` methods for `$bank`, a struct with the fields
/// `connections` (a [`Connections`](crate::connections::Connections)), `schema`, `config` and `sql`; `$db` is the sqlx database and `$row` its row type.
/// `$own` are the driver's own `Driver` methods.
macro_rules! sql_driver {
    ($bank:ty, $db:ty, $row:ty, { $($own:tt)* }) => {
        type Query<'q> = sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>;

        impl $bank {
            /// The bank over `connections`, its table prepared.
            async fn opened(
                connections: Connections<$db>,
                config: SqlConfig,
                schema: Schema,
            ) -> Result<Self> {
                config.validate()?;
                let bank = Self {
                    sql: Statements::new(&config.table),
                    connections,
                    schema,
                    config,
                };
                bank.timed(bank.prepare())
                    .await
                    .map_err(Error::nothing_applied)?;
                tracing::debug!(driver = DRIVER, config = ?bank.config, "opened bank");
                Ok(bank)
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
                            index_expression(field),
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
                let lock = setup_lock(table);
                let tables = format!("{lock}{}", Statements::ddl(table));
                sqlx::raw_sql(&tables)
                    .execute(self.connections.pool())
                    .await
                    .map_err(|e| connect_err(DRIVER, e))?;
                let meta = ident(&format!("{table}_meta"));
                let version: String = sqlx::query_scalar(&format!(
                    "SELECT value FROM {meta} WHERE name = 'schema_version'"
                ))
                .fetch_one(self.connections.pool())
                .await
                .map_err(|e| map_err(DRIVER, e))?;
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
                        .map_err(|e| map_err(DRIVER, e))?;
                }
                Ok(())
            }

            /// Bounds a call by the configured timeout.
            async fn timed<T>(&self, call: impl Future<Output = Result<T>>) -> Result<T> {
                timed(DRIVER, self.config.timeout, call).await
            }

            /// Runs a statement; the rows it changed.
            async fn execute(&self, query: Query<'_>) -> Result<u64> {
                self.timed(async {
                    let mut held = self.connections.take().await.map_err(|e| map_err(DRIVER, e))?;
                    let outcome = query.execute(held.connection()).await;
                    held.done(&outcome);
                    outcome
                        .map(|done| done.rows_affected())
                        .map_err(|e| map_err(DRIVER, e))
                })
                .await
            }

            async fn fetch_optional(&self, query: Query<'_>) -> Result<Option<$row>> {
                self.timed(async {
                    let mut held = self.connections.take().await.map_err(|e| map_err(DRIVER, e))?;
                    let outcome = query.fetch_optional(held.connection()).await;
                    held.done(&outcome);
                    outcome.map_err(|e| map_err(DRIVER, e))
                })
                .await
            }

            async fn fetch_all(&self, query: Query<'_>) -> Result<Vec<$row>> {
                self.timed(async {
                    let mut held = self.connections.take().await.map_err(|e| map_err(DRIVER, e))?;
                    let outcome = query.fetch_all(held.connection()).await;
                    held.done(&outcome);
                    outcome.map_err(|e| map_err(DRIVER, e))
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
                        let id = id_of(kind, row)?;
                        let record = record_of(kind, &id, row, 1)?;
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
            async fn patched(&self, row: Option<$row>, even: i64, patch: Patch<'_>) -> Result<Applied> {
                if let Some(row) = row {
                    let stored: i64 = row.try_get(0).map_err(|e| map_err(DRIVER, e))?;
                    return Ok(Applied::new(Revision::new(stored as u64), stored == even));
                }
                if let Some(created) = self.create_patched(&patch).await? {
                    return Ok(Applied::new(created, false));
                }
                Ok(Applied::new(patch_by_read_and_write(self, patch).await?, false))
            }

            /// Appends or prepends (per `statement`) an item; the new length.
            async fn push(&self, statement: &str, kind: &str, id: &str, item: &Value) -> Result<usize> {
                let query = sqlx::query(statement)
                    .bind(kind)
                    .bind(id.as_bytes())
                    .bind(encode(item)?)
                    .bind(random_revision().get() as i64)
                    .bind(now_ms());
                match self.fetch_optional(query).await? {
                    Some(row) => {
                        let len: i64 = row.try_get(0).map_err(|e| map_err(DRIVER, e))?;
                        Ok(len.max(0) as usize)
                    }
                    None => Err(Error::wrong_type(kind, id, "an array")),
                }
            }
        }

        /// The id in column 0 of a row.
        fn id_of(kind: &str, row: &$row) -> Result<String> {
            let bytes: Vec<u8> = row.try_get(0).map_err(|e| map_err(DRIVER, e))?;
            String::from_utf8(bytes).map_err(|_| Error::Corrupt {
                location: format!("{kind} row"),
                reason: "the id is not UTF-8".into(),
            })
        }

        /// The value in column `at` of a row.
        fn value_of(kind: &str, id: &str, row: &$row, at: usize) -> Result<Value> {
            let text: String = row.try_get(at).map_err(|e| map_err(DRIVER, e))?;
            decode(|| format!("{kind} {id:?}"), &text)
        }

        /// The value, revision and expiry in columns `at`.. of a row.
        fn record_of(kind: &str, id: &str, row: &$row, at: usize) -> Result<Record> {
            let value = value_of(kind, id, row, at)?;
            let revision: i64 = row.try_get(at + 1).map_err(|e| map_err(DRIVER, e))?;
            let expires: Option<i64> = row.try_get(at + 2).map_err(|e| map_err(DRIVER, e))?;
            Ok(record(value, Revision::new(revision as u64), from_ms(expires)))
        }

        /// The count in column 0 of a row.
        fn count_of(row: Option<$row>) -> Result<u64> {
            match row {
                Some(row) => {
                    let n: i64 = row.try_get(0).map_err(|e| map_err(DRIVER, e))?;
                    Ok(n.max(0) as u64)
                }
                None => Ok(0),
            }
        }

        #[async_trait]
        impl Driver for $bank {
            $($own)*

            async fn read(&self, kind: &str, id: &str) -> Result<Record> {
                let query = sqlx::query(&self.sql.read)
                    .bind(kind)
                    .bind(id.as_bytes())
                    .bind(now_ms());
                match self.fetch_optional(query).await? {
                    Some(row) => record_of(kind, id, &row, 0),
                    None => Err(Error::not_found(kind, id)),
                }
            }

            async fn read_if_changed(
                &self,
                kind: &str,
                id: &str,
                known: Revision,
            ) -> Result<IfChanged> {
                // 3 now, 4 the known revision: the value column is NULL at it.
                let query = sqlx::query(&self.sql.read_known)
                    .bind(kind)
                    .bind(id.as_bytes())
                    .bind(now_ms())
                    .bind(known.get() as i64);
                let Some(row) = self.fetch_optional(query).await? else {
                    return Err(Error::not_found(kind, id));
                };
                let text: Option<String> = row.try_get(0).map_err(|e| map_err(DRIVER, e))?;
                let revision: i64 = row.try_get(1).map_err(|e| map_err(DRIVER, e))?;
                let expires_at = from_ms(row.try_get(2).map_err(|e| map_err(DRIVER, e))?);
                match text {
                    None if revision as u64 == known.get() => Ok(IfChanged::Unchanged { expires_at }),
                    None => Err(Error::backend(DRIVER, "a live record without a value")),
                    Some(text) => {
                        let value = decode(|| format!("{kind} {id:?}"), &text)?;
                        Ok(IfChanged::Changed(record(value, Revision::new(revision as u64), expires_at)))
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
                    .bind(encode(&write.value)?)
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
                            let items: Vec<Result<(String, Record)>> =
                                rows.into_iter().map(Ok).collect();
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
                count_of(self.fetch_optional(query).await?)
            }

            async fn count(&self, kind: &str) -> Result<u64> {
                let query = sqlx::query(&self.sql.count).bind(kind).bind(now_ms());
                count_of(self.fetch_optional(query).await?)
            }

            async fn kinds(&self) -> Result<Vec<String>> {
                let rows = self.fetch_all(sqlx::query(&self.sql.kinds)).await?;
                rows.iter()
                    .map(|row| row.try_get::<String, _>(0).map_err(|e| map_err(DRIVER, e)))
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
                    Some(row) => row.try_get::<i64, _>(0).map_err(|e| map_err(DRIVER, e)),
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
                    .bind(encode(item)?)
                    .bind(random_revision().get() as i64)
                    .bind(now_ms());
                if self.execute(query).await? == 1 {
                    return Ok(true);
                }
                // Nothing removed: a missing record or item is `false`, a non-array
                // `WrongType`.
                match self.read(kind, id).await {
                    Ok(found) if !found.value.is_array() => {
                        Err(Error::wrong_type(kind, id, "an array"))
                    }
                    Ok(_) => Ok(false),
                    Err(e) if e.is_not_found() => Ok(false),
                    Err(e) => Err(e),
                }
            }
        }
    };
}

pub(crate) use sql_driver;
