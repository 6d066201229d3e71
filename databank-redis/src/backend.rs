//! `RedisBank`: the driver itself.

use std::collections::{HashMap, HashSet};
use std::future::Future;

use databank_core::criteria::lookup;
use databank_core::driver::{
    async_trait, random_revision, timed, Driver, Patch, PatchExpiry, Precondition, RecordStream,
    RecordsStream, Utc, Write,
};
use databank_core::validate::MAX_VALUE_BYTES;
use databank_core::{
    Capabilities, Criteria, Error, Expiry, Record, Result, Revision, Schema, Value,
};
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;

use crate::config::RedisConfig;
use crate::error::map_err;
use crate::fields::{self, Fields};
use crate::keys::Keys;
use crate::scripts::{self, CONFLICT, DONE, EXISTS, MISSING, NOT_AN_OBJECT, OLD_LAYOUT, TOO_LARGE};

/// How many records one round trip fetches during scans and searches.
const BATCH: usize = 256;
/// How many expired records one purge script removes.
const PURGE_BATCH: usize = 1000;

/// The Redis driver. Cheap to share: one multiplexed, self-reconnecting connection.
#[derive(Clone)]
pub struct RedisBank {
    connection: ConnectionManager,
    keys: Keys,
    schema: Schema,
    config: RedisConfig,
}

impl std::fmt::Debug for RedisBank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBank")
            .field("config", &self.config)
            .finish()
    }
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn unexpected(code: i64) -> Error {
    Error::backend("redis", format!("unexpected script reply {code}"))
}

fn expiry_arg(expires_at: Expiry) -> String {
    expires_at.map_or_else(String::new, |t| t.timestamp_millis().to_string())
}

impl RedisBank {
    /// Connects to the server a config names. Fails with `Unavailable` if it cannot be
    /// reached within the config's timeout.
    pub async fn connect(config: RedisConfig, schema: Schema) -> Result<Self> {
        config.validate()?;
        let client = redis::Client::open(config.server_url.as_str()).map_err(|e| {
            Error::InvalidInput(format!(
                "bad Redis URL {}: {e}",
                databank_core::redact(&config.server_url)
            ))
        })?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(1)
            .set_max_delay(config.timeout);
        // Connecting applies nothing: a timeout here is `Unavailable`, safe to retry.
        let connect = client.get_connection_manager_with_config(manager_config);
        let connection = timed("redis", config.timeout * 2, async {
            connect.await.map_err(map_err)
        })
        .await
        .map_err(Error::nothing_applied)?;
        tracing::debug!(?config, "connected to redis");
        Ok(RedisBank {
            connection,
            keys: Keys::new(&config.prefix),
            schema,
            config,
        })
    }

    /// Runs one server call with the configured timeout.
    async fn call<T, F>(&self, f: impl FnOnce(ConnectionManager) -> F) -> Result<T>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        let call = async { f(self.connection.clone()).await.map_err(map_err) };
        timed("redis", self.config.timeout, call).await
    }

    async fn invoke<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        keys: &[Vec<u8>],
        args: &[Vec<u8>],
    ) -> Result<T> {
        self.call(|mut con| async move {
            let mut invocation = script.prepare_invoke();
            for key in keys {
                invocation.key(key.as_slice());
            }
            for arg in args {
                invocation.arg(arg.as_slice());
            }
            invocation.invoke_async(&mut con).await
        })
        .await
    }

    /// One write through the put script, which checks the precondition on the server.
    async fn put(&self, write: Write<'_>) -> Result<Revision> {
        let (kind, id, value) = (write.kind, write.id, &write.value);
        let mut keys = vec![
            self.keys.record(kind, id),
            self.keys.members(kind).into_bytes(),
            self.keys.index_lists(kind).into_bytes(),
        ];
        keys.extend(
            self.keys
                .indices_of(kind, self.schema.indices(kind), value)
                .into_iter()
                .map(String::into_bytes),
        );
        let (mode, expected) = scripts::put_mode(write.precondition);
        let revision = random_revision();
        let mut args = vec![
            mode.as_bytes().to_vec(),
            id.as_bytes().to_vec(),
            expiry_arg(write.expires_at).into_bytes(),
            expected
                .map_or_else(String::new, |r| r.get().to_string())
                .into_bytes(),
            now_ms().to_string().into_bytes(),
            revision.get().to_string().into_bytes(),
        ];
        args.extend(fields::of(value)?);
        let code: i64 = self.invoke(&scripts::PUT_SCRIPT, &keys, &args).await?;
        match (code, write.precondition) {
            (EXISTS, _) => Err(Error::already_exists(kind, id)),
            (MISSING, _) => Err(Error::not_found(kind, id)),
            (CONFLICT, Precondition::Revision(expected)) => {
                Err(Error::conflict(kind, id, expected))
            }
            (DONE, _) => Ok(revision),
            (code, _) => Err(unexpected(code)),
        }
    }

    /// The ids of a type whose expiry is after now.
    async fn live_ids(&self, kind: &str) -> Result<Vec<String>> {
        let key = self.keys.members(kind);
        let min = format!("({}", now_ms());
        self.call(|mut con| async move {
            redis::cmd("ZRANGE")
                .arg(key)
                .arg(min)
                .arg("+inf")
                .arg("BYSCORE")
                .query_async(&mut con)
                .await
        })
        .await
    }

    /// The ids of the page after `cursor` (a score and an id; `None`: the first page) and the
    /// cursor of the page after it, `None` at the end.
    async fn page(
        &self,
        kind: &str,
        cursor: Option<&(String, String)>,
    ) -> Result<(Vec<String>, Option<(String, String)>)> {
        let (score, id) = cursor.map_or(("", ""), |(s, i)| (s.as_str(), i.as_str()));
        let keys = [self.keys.members(kind).into_bytes()];
        let args = [
            now_ms().to_string().into_bytes(),
            score.as_bytes().to_vec(),
            id.as_bytes().to_vec(),
            BATCH.to_string().into_bytes(),
        ];
        let flat: Vec<String> = self.invoke(&scripts::PAGE_SCRIPT, &keys, &args).await?;
        let full = flat.len() == 2 * BATCH;
        let mut ids = Vec::with_capacity(flat.len() / 2);
        let mut last = None;
        let mut entries = flat.into_iter();
        while let (Some(id), Some(score)) = (entries.next(), entries.next()) {
            ids.push(id.clone());
            last = Some((score, id));
        }
        Ok((ids, if full { last } else { None }))
    }

    /// Values of the given ids, live ones only, in one round trip.
    async fn fetch(&self, kind: &str, ids: Vec<String>) -> Result<Vec<(String, Value)>> {
        let records = self.fetch_records(kind, ids).await?;
        Ok(records
            .into_iter()
            .map(|(id, record)| (id, record.value))
            .collect())
    }

    /// Records of the given ids, live ones only, in one round trip.
    async fn fetch_records(&self, kind: &str, ids: Vec<String>) -> Result<Vec<(String, Record)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.cmd("HGETALL").arg(self.keys.record(kind, id));
        }
        let rows: Vec<Fields> = self
            .call(|mut con| async move { pipe.query_async(&mut con).await })
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for (id, row) in ids.into_iter().zip(rows) {
            if let Some(record) = fields::gather(kind, &id, row)? {
                out.push((id, record));
            }
        }
        Ok(out)
    }

    /// One patch through the patch script, which applies it on the server.
    /// Runs the patch script writing `revision`; its reply code.
    async fn patch_on_server(&self, patch: &Patch<'_>, revision: Revision) -> Result<i64> {
        let (kind, id) = (patch.kind, patch.id);
        let mut keys = vec![
            self.keys.record(kind, id),
            self.keys.members(kind).into_bytes(),
            self.keys.index_lists(kind).into_bytes(),
        ];
        // Index fields under a key this patch sets or removes: their old entries go, and the
        // entries the new values give come in.
        let touched: Vec<&String> = self
            .schema
            .indices(kind)
            .iter()
            .filter(|field| {
                let top = field.split('.').next().unwrap_or(field.as_str());
                patch.set.contains_key(top) || patch.remove.iter().any(|k| k == top)
            })
            .collect();
        let set_only = Value::Object(patch.set.clone());
        for field in &touched {
            if let Some(value) = lookup(&set_only, field) {
                keys.push(self.keys.index(kind, field, value).into_bytes());
            }
        }
        let expiry = match patch.expiry {
            PatchExpiry::Keep => "keep".to_owned(),
            PatchExpiry::Set(at) => expiry_arg(at),
        };
        // A key named twice is removed (and its length taken off the size) once.
        let mut named = std::collections::HashSet::new();
        let remove: Vec<&String> = patch
            .remove
            .iter()
            .filter(|key| named.insert(key.as_str()))
            .collect();
        let mut args = vec![
            id.as_bytes().to_vec(),
            now_ms().to_string().into_bytes(),
            expiry.into_bytes(),
            if patch.create {
                b"1".to_vec()
            } else {
                Vec::new()
            },
            MAX_VALUE_BYTES.to_string().into_bytes(),
            patch.set.len().to_string().into_bytes(),
            remove.len().to_string().into_bytes(),
            touched.len().to_string().into_bytes(),
            revision.get().to_string().into_bytes(),
        ];
        for (key, value) in &patch.set {
            args.push(fields::key_field(key));
            args.push(fields::json(value)?);
            args.push(fields::key_cost(key).to_string().into_bytes());
        }
        for key in remove {
            args.push(fields::key_field(key));
            args.push(fields::key_cost(key).to_string().into_bytes());
        }
        for field in &touched {
            args.push(self.keys.index_prefix(kind, field).into_bytes());
        }
        self.invoke(&scripts::PATCH_SCRIPT, &keys, &args).await
    }
}

#[async_trait]
impl Driver for RedisBank {
    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.native_expiry = true;
        caps.native_counters = true;
        caps.indexed_search = true;
        caps.native_conditional_update = true;
        caps.native_patch = true;
        caps.lists_kinds = true;
        caps.counts_expired = true;
        caps.persistent = true;
        caps.multi_process = true;
        caps
    }

    async fn read(&self, kind: &str, id: &str) -> Result<Record> {
        let key = self.keys.record(kind, id);
        let row: Fields = self
            .call(
                |mut con| async move { redis::cmd("HGETALL").arg(key).query_async(&mut con).await },
            )
            .await?;
        fields::gather(kind, id, row)?.ok_or_else(|| Error::not_found(kind, id))
    }

    async fn write(&self, write: Write<'_>) -> Result<Revision> {
        self.put(write).await
    }

    async fn patch(&self, patch: Patch<'_>) -> Result<Revision> {
        let (kind, id) = (patch.kind, patch.id);
        let revision = random_revision();
        match self.patch_on_server(&patch, revision).await? {
            MISSING => Err(Error::not_found(kind, id)),
            NOT_AN_OBJECT => Err(Error::wrong_type(kind, id, "an object")),
            TOO_LARGE => Err(Error::InvalidInput(format!(
                "patched {kind} {id:?} would be larger than {MAX_VALUE_BYTES} bytes of JSON"
            ))),
            OLD_LAYOUT => {
                tracing::debug!(
                    kind,
                    "patching a record of the 0.2.0 layout by read and write"
                );
                databank_core::driver::patch_by_read_and_write(self, patch).await
            }
            DONE => Ok(revision),
            code => Err(unexpected(code)),
        }
    }

    async fn delete(&self, kind: &str, id: &str) -> Result<()> {
        let keys = [
            self.keys.record(kind, id),
            self.keys.members(kind).into_bytes(),
            self.keys.index_lists(kind).into_bytes(),
        ];
        let args = [id.as_bytes().to_vec(), now_ms().to_string().into_bytes()];
        let deleted: i64 = self.invoke(&scripts::DELETE_SCRIPT, &keys, &args).await?;
        if deleted == 1 {
            Ok(())
        } else {
            Err(Error::not_found(kind, id))
        }
    }

    async fn touch(&self, kind: &str, id: &str, expires_at: Expiry) -> Result<()> {
        let keys = [
            self.keys.record(kind, id),
            self.keys.members(kind).into_bytes(),
        ];
        let args = [
            id.as_bytes().to_vec(),
            expiry_arg(expires_at).into_bytes(),
            now_ms().to_string().into_bytes(),
        ];
        let touched: i64 = self.invoke(&scripts::TOUCH_SCRIPT, &keys, &args).await?;
        if touched == 1 {
            Ok(())
        } else {
            Err(Error::not_found(kind, id))
        }
    }

    fn scan<'a>(&'a self, kind: &'a str) -> RecordStream<'a> {
        Box::pin(
            self.scan_records(kind)
                .map(|item| item.map(|(id, record)| (id, record.value))),
        )
    }

    fn scan_records<'a>(&'a self, kind: &'a str) -> RecordsStream<'a> {
        // Pages of ids in the sorted set's order, each fetched while the next page is listed:
        // a scan holds two pages, whatever the type's size.
        let pages = futures_util::stream::unfold(Some(None), move |cursor| async move {
            let cursor: Option<(String, String)> = cursor?;
            match self.page(kind, cursor.as_ref()).await {
                Ok((ids, _)) if ids.is_empty() => None,
                Ok((ids, next)) => Some((Ok(ids), next.map(Some))),
                Err(e) => Some((Err(e), None)),
            }
        });
        Box::pin(
            pages
                .map(move |page| async move {
                    match page {
                        Ok(ids) => match self.fetch_records(kind, ids).await {
                            Ok(rows) => rows.into_iter().map(Ok).collect(),
                            Err(e) => vec![Err(e)],
                        },
                        Err(e) => vec![Err(e)],
                    }
                })
                .buffered(2)
                .flat_map(futures_util::stream::iter),
        )
    }

    async fn purge_expired(&self, kind: &str) -> Result<u64> {
        let keys = [
            self.keys.members(kind).into_bytes(),
            self.keys.index_lists(kind).into_bytes(),
        ];
        let mut total = 0u64;
        loop {
            let args = [
                now_ms().to_string().into_bytes(),
                self.keys.record_prefix(kind).into_bytes(),
                PURGE_BATCH.to_string().into_bytes(),
            ];
            let purged: u64 = self.invoke(&scripts::PURGE_SCRIPT, &keys, &args).await?;
            total += purged;
            if purged < PURGE_BATCH as u64 {
                return Ok(total);
            }
        }
    }

    async fn read_all(&self, kind: &str, ids: &[&str]) -> Result<HashMap<String, Option<Value>>> {
        let mut found: HashMap<String, Option<Value>> =
            ids.iter().map(|id| ((*id).to_owned(), None)).collect();
        // One pipelined round trip per batch instead of one per id.
        for batch in ids.chunks(BATCH) {
            let batch = batch.iter().map(|id| (*id).to_owned()).collect();
            for (id, value) in self.fetch(kind, batch).await? {
                found.insert(id, Some(value));
            }
        }
        Ok(found)
    }

    async fn search(&self, kind: &str, criteria: &Criteria) -> Result<Vec<(String, Value)>> {
        let index_keys: Vec<String> = criteria
            .fields()
            .filter(|(field, _)| self.schema.is_indexed(kind, field))
            .map(|(field, value)| self.keys.index(kind, field, value))
            .collect();
        let ids: Vec<String> = if index_keys.is_empty() {
            self.live_ids(kind).await?
        } else {
            self.call(|mut con| async move {
                redis::cmd("SINTER")
                    .arg(index_keys)
                    .query_async(&mut con)
                    .await
            })
            .await?
        };
        let mut seen = HashSet::new();
        let mut hits = Vec::new();
        for batch in ids.chunks(BATCH) {
            let batch: Vec<String> = batch
                .iter()
                .filter(|id| seen.insert((*id).clone()))
                .cloned()
                .collect();
            for (id, value) in self.fetch(kind, batch).await? {
                if criteria.matches(&value) {
                    hits.push((id, value));
                }
            }
        }
        Ok(hits)
    }

    async fn kinds(&self) -> Result<Vec<String>> {
        // Every type with records has its sorted set `<p>:z:<type>`: SCAN for them.
        let members = self.keys.members("");
        let pattern = format!("{}*", glob_escape(&members));
        let mut kinds = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let pattern = pattern.as_str();
            let (next, keys): (u64, Vec<Vec<u8>>) = self
                .call(|mut con| async move {
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut con)
                        .await
                })
                .await?;
            kinds.extend(keys.iter().filter_map(|key| {
                let kind = key.strip_prefix(members.as_bytes())?;
                std::str::from_utf8(kind).ok().map(str::to_owned)
            }));
            if next == 0 {
                return Ok(kinds);
            }
            cursor = next;
        }
    }

    async fn count(&self, kind: &str) -> Result<u64> {
        let key = self.keys.members(kind);
        let min = format!("({}", now_ms());
        self.call(|mut con| async move {
            redis::cmd("ZCOUNT")
                .arg(key)
                .arg(min)
                .arg("+inf")
                .query_async(&mut con)
                .await
        })
        .await
    }

    async fn count_expired(&self, kind: &str) -> Result<u64> {
        // Entries at or before now: their hashes may be gone already (Redis expired them), but
        // their bookkeeping waits for the purge, which counts them.
        let key = self.keys.members(kind);
        let max = now_ms().to_string();
        self.call(|mut con| async move {
            redis::cmd("ZCOUNT")
                .arg(key)
                .arg("-inf")
                .arg(max)
                .query_async(&mut con)
                .await
        })
        .await
    }

    async fn incr_by(&self, kind: &str, id: &str, delta: i64) -> Result<i64> {
        let keys = [
            self.keys.record(kind, id),
            self.keys.members(kind).into_bytes(),
            self.keys.index_lists(kind).into_bytes(),
        ];
        let args = [
            id.as_bytes().to_vec(),
            delta.to_string().into_bytes(),
            now_ms().to_string().into_bytes(),
            random_revision().get().to_string().into_bytes(),
        ];
        let (ok, value): (i64, String) = self.invoke(&scripts::INCR_SCRIPT, &keys, &args).await?;
        if ok != 1 {
            return Err(Error::wrong_type(kind, id, "an integer"));
        }
        value
            .parse()
            .map_err(|_| Error::wrong_type(kind, id, "an integer"))
    }
}

/// `text` with the characters Redis glob patterns treat specially (`*`, `?`, `[`, `]` and the
/// backslash) escaped, so a prefix matches only itself.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
