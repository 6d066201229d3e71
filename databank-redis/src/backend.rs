//! `RedisBank`: the driver itself.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;

use databank_core::driver::lookup;
use databank_core::driver::MAX_VALUE_BYTES;
use databank_core::driver::{
    async_trait, is_expired, random_revision, timed, Driver, Patch, PatchExpiry, Precondition,
    RecordStream, RecordsStream, Utc, Write,
};
use databank_core::{
    Applied, Capabilities, Criteria, Error, Expiry, IfChanged, Record, Result, Revision, Schema,
    Value,
};
use futures_util::{FutureExt, StreamExt, TryStreamExt};
use redis::Script;

use crate::codec::{self, Fields};
use crate::config::RedisConfig;
use crate::connection::{self, Connection};
use crate::error::map_err;
use crate::keys::{bucket, Keys, BUCKETS};
use crate::scripts::{self, Reply};
use crate::upgrade;

/// How many records one round trip fetches during scans and searches.
const BATCH: usize = 256;
/// How many expired records one purge script removes.
const PURGE_BATCH: usize = 1000;
/// How many buckets a count, search or purge works on at once.
const FAN_OUT: usize = 16;

/// The Redis driver. Cheap to share: one multiplexed, self-reconnecting connection (one per
/// node on a cluster).
#[derive(Clone)]
pub struct RedisBank {
    connection: Connection,
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

fn expiry_arg(expires_at: Expiry) -> String {
    expires_at.map_or_else(String::new, |t| t.timestamp_millis().to_string())
}

impl RedisBank {
    /// Connects to the server or cluster a config names. Fails with `Unavailable` if it
    /// cannot be reached within the config's timeout.
    ///
    /// A bank written by databank 0.2 under this prefix (it has the key `<prefix>:rev`) does
    /// not open: the error names `databank upgrade URL`, which moves it (see
    /// [`upgrade`](crate::upgrade())).
    pub async fn connect(config: RedisConfig, schema: Schema) -> Result<Self> {
        config.validate()?;
        // Connecting applies nothing: a timeout here is `Unavailable`, safe to retry.
        let connection = timed("redis", config.timeout * 2, connection::connect(&config))
            .await
            .map_err(Error::nothing_applied)?;
        tracing::debug!(?config, "connected to redis");
        let bank = RedisBank {
            connection,
            keys: Keys::new(&config.prefix),
            schema,
            config,
        };
        if bank.config.cluster_nodes.is_empty()
            && upgrade::is_old_layout(&bank.connection, &bank.config).await?
        {
            return Err(upgrade::old_layout_error(&bank.config));
        }
        Ok(bank)
    }

    /// Runs one server call with the configured timeout. Combinators, not `async fn`s, down to
    /// the call: each `async fn` layer would keep its argument future twice, and the `redis`
    /// crate's request futures are over a kilobyte.
    fn call<T, F>(&self, f: impl FnOnce(Connection) -> F) -> impl Future<Output = Result<T>>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        let call = f(self.connection.clone()).map(|answer| answer.map_err(map_err));
        timed("redis", self.config.timeout, call)
    }

    /// Runs one command with the configured timeout.
    fn query<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> impl Future<Output = Result<T>> {
        self.call(|mut con| async move { con.query(&cmd).await })
    }

    fn invoke<'a, T: redis::FromRedisValue + 'a>(
        &self,
        script: &'a Script,
        keys: &'a [Vec<u8>],
        args: &'a [Vec<u8>],
    ) -> impl Future<Output = Result<T>> + 'a {
        self.call(move |mut con| async move {
            let mut invocation = script.prepare_invoke();
            for key in keys {
                invocation.key(key.as_slice());
            }
            for arg in args {
                invocation.arg(arg.as_slice());
            }
            invocation.invoke_async(&mut con).await
        })
    }

    /// One write, through the put script, which checks the precondition on the server.
    async fn put(&self, write: Write<'_>) -> Result<Revision> {
        let (kind, id, value) = (write.kind, write.id, &write.value);
        let mut keys = self.keys.of_record(kind, id);
        keys.extend(
            self.keys
                .indices_of(kind, id, self.schema.indices(kind), value),
        );
        let (mode, expected) = scripts::put_mode(write.precondition);
        let revision = random_revision();
        let (revision_arg, expiry) = (
            revision.get().to_string().into_bytes(),
            expiry_arg(write.expires_at).into_bytes(),
        );
        let mut args = vec![
            mode.as_bytes().to_vec(),
            id.as_bytes().to_vec(),
            expiry.clone(),
            expected
                .map_or_else(String::new, |r| r.get().to_string())
                .into_bytes(),
            now_ms().to_string().into_bytes(),
            revision_arg.clone(),
            self.keys.record_prefix(kind, bucket(id)).into_bytes(),
            b"r".to_vec(),
            revision_arg,
        ];
        if !expiry.is_empty() {
            args.extend([b"e".to_vec(), expiry]);
        }
        args.extend(codec::of(value)?);
        let (code, acked): (i64, _) = self.write(&scripts::PUT_SCRIPT, &keys, &args).await?;
        match (Reply::from_code(code)?, write.precondition) {
            (Reply::Exists, _) => Err(Error::already_exists(kind, id)),
            (Reply::Missing, _) => Err(Error::not_found(kind, id)),
            (Reply::Conflict, Precondition::Revision(expected)) => {
                Err(Error::conflict(kind, id, expected))
            }
            (Reply::Written, _) => {
                self.replicated(acked)?;
                Ok(revision)
            }
            (reply, _) => Err(reply.unexpected()),
        }
    }

    /// Runs a write script; with `wait_replicas` set, `WAIT` follows it in one pipeline, so
    /// both reach the same node over the same connection (a redirected pipeline moves whole),
    /// and how many replicas acknowledged it comes back too.
    async fn write<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        keys: &[Vec<u8>],
        args: &[Vec<u8>],
    ) -> Result<(T, Option<u32>)> {
        let wanted = self.config.wait_replicas;
        if wanted == 0 {
            return Ok((self.invoke(script, keys, args).await?, None));
        }
        let wait_ms = (self.config.timeout / 2).as_millis() as u64;
        let mut pipe = redis::pipe();
        pipe.cmd("EVALSHA")
            .arg(script.get_hash())
            .arg(keys.len())
            .arg(keys)
            .arg(args);
        pipe.cmd("WAIT").arg(wanted).arg(wait_ms);
        let attempt = |pipe: redis::Pipeline| {
            let mut con = self.connection.clone();
            async move { pipe.query_async::<(T, u32)>(&mut con).await }
        };
        let run = async {
            match attempt(pipe.clone()).await {
                Err(e)
                    if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
                {
                    // Load it where it is missing (every master), then run it once more.
                    let mut con = self.connection.clone();
                    script.prepare_invoke().load_async(&mut con).await?;
                    attempt(pipe).await
                }
                other => other,
            }
        };
        let (reply, acked) = timed("redis", self.config.timeout, async {
            run.await.map_err(map_err)
        })
        .await?;
        Ok((reply, Some(acked)))
    }

    /// What a delete or touch script's reply means.
    fn deleted_or_touched(
        &self,
        kind: &str,
        id: &str,
        code: i64,
        acked: Option<u32>,
    ) -> Result<()> {
        match Reply::from_code(code)? {
            Reply::Written => self.replicated(acked),
            Reply::Missing => Err(Error::not_found(kind, id)),
            reply => Err(reply.unexpected()),
        }
    }

    /// Whether enough replicas acknowledged a write that changed something; fewer in time
    /// is `OutcomeUnknown` (on the master, maybe lost with it).
    fn replicated(&self, acked: Option<u32>) -> Result<()> {
        let wanted = self.config.wait_replicas;
        match acked {
            Some(acked) if acked < wanted => Err(Error::OutcomeUnknown {
                driver: "redis",
                message: format!(
                    "written on the master, but {acked} of {wanted} replicas acknowledged it \
                     within {} ms",
                    (self.config.timeout / 2).as_millis()
                ),
            }),
            _ => Ok(()),
        }
    }

    /// Runs `f` on every bucket, [`FAN_OUT`] at a time, collecting the results in no order.
    async fn per_bucket<T, F, Fut>(&self, f: F) -> Result<Vec<T>>
    where
        F: Fn(u32) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        futures_util::stream::iter(0..BUCKETS)
            .map(f)
            .buffer_unordered(FAN_OUT)
            .try_collect()
            .await
    }

    /// The sum of a `Z*` count command over every bucket's sorted set.
    async fn count_entries(&self, kind: &str, min: &str, max: &str) -> Result<u64> {
        let counts = self
            .per_bucket(|b| {
                let key = self.keys.members(kind, b);
                self.call(move |mut con| async move {
                    redis::cmd("ZCOUNT")
                        .arg(key)
                        .arg(min)
                        .arg(max)
                        .query_async::<u64>(&mut con)
                        .await
                })
            })
            .await?;
        Ok(counts.into_iter().sum())
    }

    /// The ids of a bucket whose expiry is after now.
    async fn live_ids(&self, kind: &str, bucket: u32) -> Result<Vec<String>> {
        let key = self.keys.members(kind, bucket);
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
        bucket: u32,
        cursor: Option<&(String, String)>,
    ) -> Result<(Vec<String>, Option<(String, String)>)> {
        let (score, id) = cursor.map_or(("", ""), |(s, i)| (s.as_str(), i.as_str()));
        let keys = [self.keys.members(kind, bucket)];
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

    /// Records of the given ids, live ones only: one pipeline per bucket (a cluster slot),
    /// the buckets at once.
    async fn fetch_records(&self, kind: &str, ids: Vec<String>) -> Result<Vec<(String, Record)>> {
        let mut by_bucket: HashMap<u32, Vec<String>> = HashMap::new();
        for id in ids {
            by_bucket.entry(bucket(&id)).or_default().push(id);
        }
        let batches: Vec<Vec<(String, Record)>> =
            futures_util::stream::iter(by_bucket.into_values())
                .map(|ids| self.fetch_bucket(kind, ids))
                .buffer_unordered(FAN_OUT)
                .try_collect()
                .await?;
        Ok(batches.into_iter().flatten().collect())
    }

    /// Records of ids of one bucket, live ones only, in one round trip.
    async fn fetch_bucket(&self, kind: &str, ids: Vec<String>) -> Result<Vec<(String, Record)>> {
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
            if let Some(record) = codec::gather(kind, &id, row)? {
                out.push((id, record));
            }
        }
        Ok(out)
    }

    /// Applies a patch with the patch script; its new revision, and the revision it applied to
    /// when it found a live record (`None`: created, retried, or patched by read and write).
    async fn patch_and_base(&self, patch: Patch<'_>) -> Result<(Revision, Option<Revision>)> {
        let (kind, id) = (patch.kind, patch.id);
        let revision = random_revision();
        let ((code, base), acked): ((i64, Vec<u8>), _) =
            self.patch_on_server(&patch, revision).await?;
        let base = codec::parse_revision(&base);
        match Reply::from_code(code)? {
            Reply::Missing => Err(Error::not_found(kind, id)),
            Reply::NotAnObject => Err(Error::wrong_type(kind, id, "an object")),
            Reply::TooLarge => Err(Error::InvalidInput(format!(
                "patched {kind} {id:?} would be larger than {MAX_VALUE_BYTES} bytes of JSON"
            ))),
            Reply::OldLayout => {
                tracing::debug!(
                    kind,
                    "patching a record of the 0.2.0 layout by read and write"
                );
                let revision =
                    Box::pin(databank_core::driver::patch_by_read_and_write(self, patch)).await?;
                Ok((revision, None))
            }
            Reply::Written => {
                self.replicated(acked)?;
                Ok((revision, base))
            }
            reply => Err(reply.unexpected()),
        }
    }

    /// Runs the patch script writing `revision`; its reply code and base (see the script).
    async fn patch_on_server(
        &self,
        patch: &Patch<'_>,
        revision: Revision,
    ) -> Result<((i64, Vec<u8>), Option<u32>)> {
        let (kind, id) = (patch.kind, patch.id);
        let b = bucket(id);
        let mut keys = self.keys.of_record(kind, id);
        // Index fields under a key this patch sets or removes: their old entries go, and the
        // entries the new values give come in.
        let touched = self.touched_indices(patch);
        let set_only = Value::Object(patch.set.clone());
        for field in &touched {
            if let Some(value) = lookup(&set_only, field) {
                keys.push(self.keys.index(kind, b, field, value));
            }
        }
        let expiry = match patch.expiry {
            PatchExpiry::Keep => "keep".to_owned(),
            PatchExpiry::Set(at) => expiry_arg(at),
        };
        let remove = distinct(&patch.remove);
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
            self.keys.record_prefix(kind, b).into_bytes(),
        ];
        for (key, value) in &patch.set {
            args.push(codec::key_field(key));
            args.push(codec::json(value)?);
            args.push(codec::key_cost(key).to_string().into_bytes());
        }
        for key in remove {
            args.push(codec::key_field(key));
            args.push(codec::key_cost(key).to_string().into_bytes());
        }
        for field in &touched {
            args.push(self.keys.index_prefix(kind, b, field).into_bytes());
        }
        self.write(&scripts::PATCH_SCRIPT, &keys, &args).await
    }

    /// The declared index fields under a key a patch sets or removes.
    fn touched_indices<'s>(&'s self, patch: &Patch<'_>) -> Vec<&'s String> {
        self.schema
            .indices(patch.kind)
            .iter()
            .filter(|field| touches(patch, field))
            .collect()
    }
}

/// Whether a patch sets or removes the top-level key an index field is under.
fn touches(patch: &Patch<'_>, field: &str) -> bool {
    let top = field.split('.').next().unwrap_or(field);
    patch.set.contains_key(top) || patch.remove.iter().any(|k| k == top)
}

/// A patch's removed keys, each once (a key named twice is removed, and its length taken off
/// the size, once).
fn distinct(remove: &[String]) -> Vec<&String> {
    let mut named = std::collections::HashSet::new();
    remove
        .iter()
        .filter(|key| named.insert(key.as_str()))
        .collect()
}

#[async_trait]
impl Driver for RedisBank {
    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.native_expiry = true;
        caps.native_counters = true;
        caps.native_search = true;
        caps.native_conditional_update = true;
        caps.native_patch = true;
        caps.native_read_if_changed = true;
        caps.native_patch_on = true;
        caps.supports_kinds = true;
        caps.supports_count_expired = true;
        caps.persistent = true;
        caps.multi_process = true;
        caps
    }

    async fn read(&self, kind: &str, id: &str) -> Result<Record> {
        let key = self.keys.record(kind, id);
        let row: Fields = self
            .call(|mut con| async move {
                let mut cmd = connection::command("HGETALL", 1, key.len());
                cmd.arg(key);
                con.query(&cmd).await
            })
            .await?;
        codec::gather(kind, id, row)?.ok_or_else(|| Error::not_found(kind, id))
    }

    async fn write(&self, write: Write<'_>) -> Result<Revision> {
        self.put(write).await
    }

    async fn patch(&self, patch: Patch<'_>) -> Result<Revision> {
        Ok(self.patch_and_base(patch).await?.0)
    }

    async fn patch_on(&self, patch: Patch<'_>, base: Revision) -> Result<Applied> {
        let (revision, found) = self.patch_and_base(patch).await?;
        Ok(Applied::new(revision, found == Some(base)))
    }

    async fn read_if_changed(&self, kind: &str, id: &str, known: Revision) -> Result<IfChanged> {
        // The revision and expiry first: an unchanged record costs no value sent or decoded;
        // a changed one a second round trip for the whole record.
        let key = self.keys.record(kind, id);
        let (revision, expiry, object): (Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>) = self
            .query({
                let mut cmd = connection::command("HMGET", 4, key.len() + 3);
                cmd.arg(key).arg("r").arg("e").arg("o");
                cmd
            })
            .await?;
        let Some(revision) = revision else {
            return Err(Error::not_found(kind, id));
        };
        if object.is_none() {
            // Not an object (or no value at all): the whole read tells which.
            return Ok(IfChanged::of(self.read(kind, id).await?, known));
        }
        let expires_at = codec::parse_expiry(kind, id, expiry.as_deref())?;
        if is_expired(expires_at, Utc::now()) {
            return Err(Error::not_found(kind, id));
        }
        if codec::parse_revision(&revision) == Some(known) {
            return Ok(IfChanged::Unchanged { expires_at });
        }
        Ok(IfChanged::of(self.read(kind, id).await?, known))
    }

    async fn delete(&self, kind: &str, id: &str) -> Result<()> {
        let keys = self.keys.of_record(kind, id);
        let args = [
            id.as_bytes().to_vec(),
            now_ms().to_string().into_bytes(),
            self.keys.record_prefix(kind, bucket(id)).into_bytes(),
        ];
        let (code, acked) = self.write(&scripts::DELETE_SCRIPT, &keys, &args).await?;
        self.deleted_or_touched(kind, id, code, acked)
    }

    async fn touch(&self, kind: &str, id: &str, expires_at: Expiry) -> Result<()> {
        let keys = self.keys.of_record(kind, id);
        let args = [
            id.as_bytes().to_vec(),
            expiry_arg(expires_at).into_bytes(),
            now_ms().to_string().into_bytes(),
            self.keys.record_prefix(kind, bucket(id)).into_bytes(),
        ];
        let (code, acked) = self.write(&scripts::TOUCH_SCRIPT, &keys, &args).await?;
        self.deleted_or_touched(kind, id, code, acked)
    }

    fn scan<'a>(&'a self, kind: &'a str) -> RecordStream<'a> {
        Box::pin(
            self.scan_records(kind)
                .map(|item| item.map(|(id, record)| (id, record.value))),
        )
    }

    fn scan_records<'a>(&'a self, kind: &'a str) -> RecordsStream<'a> {
        // Bucket after bucket, pages of ids in each sorted set's order, each page fetched while
        // the next is listed: a scan holds two pages, whatever the type's size.
        let pages = futures_util::stream::unfold(Some((0, None)), move |state| async move {
            let (mut b, mut cursor): (u32, Option<(String, String)>) = state?;
            loop {
                match self.page(kind, b, cursor.as_ref()).await {
                    Ok((ids, next)) if next.is_some() => {
                        return Some((Ok(ids), Some((b, next))));
                    }
                    Ok((ids, _)) => {
                        b += 1;
                        cursor = None;
                        let more = (b < BUCKETS).then_some((b, None));
                        if !ids.is_empty() {
                            return Some((Ok(ids), more));
                        }
                        more.as_ref()?;
                    }
                    Err(e) => return Some((Err(e), None)),
                }
            }
        });
        Box::pin(
            pages
                .map(move |page| async move {
                    match page {
                        Ok(ids) => match self.fetch_bucket(kind, ids).await {
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
        let removed = self
            .per_bucket(|b| async move {
                let keys = [self.keys.members(kind, b), self.keys.index_lists(kind, b)];
                let mut removed = 0u64;
                loop {
                    let args = [
                        now_ms().to_string().into_bytes(),
                        self.keys.record_prefix(kind, b).into_bytes(),
                        PURGE_BATCH.to_string().into_bytes(),
                    ];
                    let (records, entries): (u64, u64) =
                        self.invoke(&scripts::PURGE_SCRIPT, &keys, &args).await?;
                    removed += records;
                    if entries < PURGE_BATCH as u64 {
                        return Ok(removed);
                    }
                }
            })
            .await?;
        Ok(removed.into_iter().sum())
    }

    async fn read_all(&self, kind: &str, ids: &[&str]) -> Result<HashMap<String, Option<Value>>> {
        let mut found: HashMap<String, Option<Value>> =
            ids.iter().map(|id| ((*id).to_owned(), None)).collect();
        // One pipelined round trip per bucket and batch instead of one per id.
        for batch in ids.chunks(BATCH * FAN_OUT) {
            let batch = batch.iter().map(|id| (*id).to_owned()).collect();
            for (id, value) in self.fetch(kind, batch).await? {
                found.insert(id, Some(value));
            }
        }
        Ok(found)
    }

    async fn search(&self, kind: &str, criteria: &Criteria) -> Result<Vec<(String, Value)>> {
        let indexed: Vec<(&str, &Value)> = criteria
            .fields()
            .filter(|(field, _)| self.schema.is_indexed(kind, field))
            .collect();
        // Each bucket answers for its ids: an intersection of its index sets (or its live
        // ids when no criterion is indexed), then one pipeline for their records.
        let hits = self
            .per_bucket(|b| {
                let indexed = &indexed;
                async move {
                    let ids: Vec<String> = if indexed.is_empty() {
                        self.live_ids(kind, b).await?
                    } else {
                        let keys: Vec<Vec<u8>> = indexed
                            .iter()
                            .map(|(field, value)| self.keys.index(kind, b, field, value))
                            .collect();
                        self.call(|mut con| async move {
                            redis::cmd("SINTER").arg(keys).query_async(&mut con).await
                        })
                        .await?
                    };
                    let mut hits = Vec::new();
                    for batch in ids.chunks(BATCH) {
                        for (id, record) in self.fetch_bucket(kind, batch.to_vec()).await? {
                            if criteria.matches(&record.value) {
                                hits.push((id, record.value));
                            }
                        }
                    }
                    Ok(hits)
                }
            })
            .await?;
        Ok(hits.into_iter().flatten().collect())
    }

    async fn kinds(&self) -> Result<Vec<String>> {
        // Every type with records has its buckets' sorted sets: SCAN every master for them.
        let pattern = self.keys.members_pattern();
        let mut kinds = BTreeSet::new();
        let masters = self.call(|con| async move { con.masters().await }).await?;
        for node in &masters {
            let mut cursor: u64 = 0;
            loop {
                let mut scan = redis::cmd("SCAN");
                scan.arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000);
                let (next, keys): (u64, Vec<Vec<u8>>) = self
                    .call(|con| async move { con.on_node(node, scan).await })
                    .await?;
                kinds.extend(
                    keys.iter()
                        .filter_map(|key| self.keys.kind_of_members(key))
                        .map(str::to_owned),
                );
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(kinds.into_iter().collect())
    }

    async fn count(&self, kind: &str) -> Result<u64> {
        self.count_entries(kind, &format!("({}", now_ms()), "+inf")
            .await
    }

    async fn count_expired(&self, kind: &str) -> Result<u64> {
        // Entries at or before now: their hashes are usually gone already (Redis expired
        // them), but their bookkeeping waits for a purge or a write's sweep.
        self.count_entries(kind, "-inf", &now_ms().to_string())
            .await
    }

    async fn incr_by(&self, kind: &str, id: &str, delta: i64) -> Result<i64> {
        let keys = self.keys.of_record(kind, id);
        let args = [
            id.as_bytes().to_vec(),
            delta.to_string().into_bytes(),
            now_ms().to_string().into_bytes(),
            random_revision().get().to_string().into_bytes(),
            self.keys.record_prefix(kind, bucket(id)).into_bytes(),
        ];
        let ((code, value), acked): ((i64, String), _) =
            self.write(&scripts::INCR_SCRIPT, &keys, &args).await?;
        match Reply::from_code(code)? {
            Reply::Written => self.replicated(acked)?,
            Reply::NotAnInteger => return Err(Error::wrong_type(kind, id, "an integer")),
            reply => return Err(reply.unexpected()),
        }
        value
            .parse()
            .map_err(|_| Error::wrong_type(kind, id, "an integer"))
    }
}
