//! `CouchbaseBank`: the driver itself.

use std::collections::HashMap;
use std::future::Future;

use couchbase::authenticator::{Authenticator, PasswordAuthenticator};
use couchbase::cluster::Cluster;
use couchbase::collection::Collection;
use couchbase::options::cluster_options::{ClusterOptions, KvOptions};
use couchbase::options::kv_options::{
    InsertOptions, MutateInOptions, RemoveOptions, ReplaceOptions, UpsertOptions,
};
use couchbase::options::query_index_mgmt_options::CreateQueryIndexOptions;
use couchbase::options::query_options::{QueryOptions, ScanConsistency};
use couchbase::subdoc::mutate_in_specs::MutateInSpec;
use databank_core::driver::{
    async_trait, patch_by_read_and_write, random_revision, timed, Driver, Patch, Precondition,
    RecordStream, RecordsStream, Utc, Write,
};
use databank_core::{
    Capabilities, Criteria, Error, Expiry, Record, Result, Revision, Schema, Value,
};
use futures_util::{StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;

use crate::codec::{from_document, key, server_expiry, to_document, Stored};
use crate::config::CouchbaseConfig;
use crate::error::{classify, map_err, Outcome};
use crate::patch;
use crate::statements::{self, Statement};

/// How many documents a scan or search fetches at once.
const FETCH_AHEAD: usize = 16;
/// How long the SDK waits before reconnecting after a lost connection.
const RECONNECT_THROTTLE: std::time::Duration = std::time::Duration::from_millis(500);

/// The Couchbase driver: every type in one collection, keys `<type>::<id>`.
pub struct CouchbaseBank {
    cluster: Cluster,
    collection: Collection,
    schema: Schema,
    config: CouchbaseConfig,
    keyspace: String,
}

impl std::fmt::Debug for CouchbaseBank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CouchbaseBank")
            .field("config", &self.config)
            .finish()
    }
}

/// A document as read: what it holds, its CAS, and whether it is still live.
struct Found {
    stored: Stored,
    cas: u64,
    live: bool,
}

impl Outcome {
    fn into_error(self, kind: &str, id: &str, expected: &'static str) -> Error {
        match self {
            Outcome::Missing => Error::not_found(kind, id),
            Outcome::Exists => Error::already_exists(kind, id),
            Outcome::WrongType => Error::wrong_type(kind, id, expected),
            Outcome::Changed => Error::OutcomeUnknown {
                driver: "couchbase",
                message: format!("{kind} {id:?} kept changing (CAS)"),
            },
            Outcome::TooDeep => Error::InvalidInput(format!(
                "{kind} {id:?}: the value is too deep for a sub-document operation"
            )),
            Outcome::Failed(e) => e,
        }
    }
}

impl CouchbaseBank {
    /// Connects, waits until the bucket is ready (within the timeout), and creates the indices
    /// the driver and the schema need (idempotently).
    pub async fn connect(config: CouchbaseConfig, schema: Schema) -> Result<Self> {
        config.validate()?;
        let auth = Authenticator::PasswordAuthenticator(PasswordAuthenticator::new(
            config.username.clone(),
            config.password.clone(),
        ));
        // Connecting applies nothing: a timeout here is `Unavailable`, safe to retry.
        // After a lost connection the SDK waits `connect_throttle_timeout` before trying again
        // (5 s by default); half a second brings a restarted server back into use within
        // about a second, at two attempts a second per node while it is down.
        let options = ClusterOptions::new(auth)
            .kv_options(KvOptions::new().connect_throttle_timeout(RECONNECT_THROTTLE));
        let connect = Cluster::connect(config.connection_string.clone(), options);
        let cluster = timed("couchbase", config.connect_timeout, async {
            connect.await.map_err(map_err)
        })
        .await
        .map_err(Error::nothing_applied)?;
        let bucket = cluster.bucket(config.bucket.clone());
        timed("couchbase", config.connect_timeout, async {
            bucket.wait_until_ready(None).await.map_err(map_err)
        })
        .await
        .map_err(Error::nothing_applied)?;
        let collection = bucket
            .scope(config.scope.clone())
            .collection(config.collection.clone());
        let bank = CouchbaseBank {
            keyspace: config.keyspace(),
            cluster,
            collection,
            schema,
            config,
        };
        for spec in statements::indices(&bank.schema) {
            let manager = bank.collection.query_indexes();
            let opts = CreateQueryIndexOptions::new().ignore_if_exists(true);
            bank.call(manager.create_index(spec.name.clone(), spec.fields.clone(), opts))
                .await
                .map_err(|o| o.into_error("index", &spec.name, "an index"))?;
        }
        tracing::debug!(config = ?bank.config, "connected to couchbase");
        Ok(bank)
    }

    /// Deletes every record of this bank's `?prefix=` (all types), returning how many; refused
    /// without a prefix, since it would then be everything in the collection.
    pub async fn delete_prefixed(&self) -> Result<u64> {
        if self.config.prefix.is_empty() {
            return Err(Error::InvalidInput(
                "delete_prefixed needs a bank opened with ?prefix=".into(),
            ));
        }
        let statement = statements::delete_prefixed(&self.keyspace, &self.config.prefix);
        Ok(self.query::<String>(statement).await?.len() as u64)
    }

    /// Bounds an SDK call by the configured timeout and sorts its error.
    async fn call<T>(
        &self,
        call: impl Future<Output = couchbase::error::Result<T>>,
    ) -> std::result::Result<T, Outcome> {
        match timed("couchbase", self.config.timeout, async { Ok(call.await) }).await {
            Ok(result) => result.map_err(classify),
            Err(timed_out) => Err(Outcome::Failed(timed_out)),
        }
    }

    fn document(
        &self,
        kind: &str,
        id: &str,
        value: &Value,
        revision: Revision,
        expires_at: Expiry,
    ) -> Value {
        to_document(
            &self.config.tag(kind),
            id,
            value,
            revision,
            expires_at,
            self.schema.indices(kind),
        )
    }

    /// The document key of a record.
    fn key(&self, kind: &str, id: &str) -> String {
        key(&self.config.tag(kind), id)
    }

    /// Reads the document under `key`; `None` when there is none.
    async fn fetch_key(&self, kind: &str, key: &str) -> Result<Option<Found>> {
        let got = match self.call(self.collection.get(key, None)).await {
            Ok(got) => got,
            Err(Outcome::Missing) => return Ok(None),
            Err(o) => return Err(o.into_error(kind, key, "a document")),
        };
        let document: Value = got.content_as().map_err(|e| Error::Corrupt {
            location: format!("couchbase document {key:?}"),
            reason: e.to_string(),
        })?;
        let stored = from_document(&self.config.tag(kind), key, document)?;
        let live = !stored.record.is_expired_at(Utc::now());
        Ok(Some(Found {
            stored,
            cas: got.cas(),
            live,
        }))
    }

    /// Reads a record's document, checking it belongs to this id.
    async fn fetch(&self, kind: &str, id: &str) -> Result<Option<Found>> {
        let key = self.key(kind, id);
        let found = self.fetch_key(kind, &key).await?;
        if let Some(found) = &found {
            if found.stored.id != id {
                return Err(Error::Corrupt {
                    location: format!("couchbase document {key:?}"),
                    reason: format!("it holds id {:?}", found.stored.id),
                });
            }
        }
        Ok(found)
    }

    /// The live record of an id, or `NotFound`.
    async fn fetch_live(&self, kind: &str, id: &str) -> Result<Found> {
        match self.fetch(kind, id).await? {
            Some(found) if found.live => Ok(found),
            _ => Err(Error::not_found(kind, id)),
        }
    }

    /// Replaces the document under `key` if its CAS is still `cas`.
    async fn replace(
        &self,
        key: &str,
        document: &Value,
        cas: u64,
        expires_at: Expiry,
    ) -> std::result::Result<(), Outcome> {
        let mut opts = ReplaceOptions::new().cas(cas);
        if let Some(expiry) = server_expiry(expires_at, Utc::now()) {
            opts = opts.expiry(expiry);
        }
        self.call(self.collection.replace(key, document, opts))
            .await
            .map(drop)
    }

    /// Writes a record that must not exist yet (or has expired); false when a live one holds
    /// the id.
    async fn insert(
        &self,
        kind: &str,
        id: &str,
        document: &Value,
        expires_at: Expiry,
    ) -> Result<bool> {
        let key = self.key(kind, id);
        loop {
            let mut opts = InsertOptions::new();
            if let Some(expiry) = server_expiry(expires_at, Utc::now()) {
                opts = opts.expiry(expiry);
            }
            match self
                .call(self.collection.insert(&key, document, opts))
                .await
            {
                Ok(_) => return Ok(true),
                Err(Outcome::Exists) => {}
                Err(o) => return Err(o.into_error(kind, id, "a document")),
            }
            let Some(found) = self.fetch(kind, id).await? else {
                continue; // removed meanwhile: insert again
            };
            if found.live {
                return Ok(false);
            }
            match self.replace(&key, document, found.cas, expires_at).await {
                Ok(()) => return Ok(true),
                Err(Outcome::Changed | Outcome::Missing) => continue,
                Err(o) => return Err(o.into_error(kind, id, "a document")),
            }
        }
    }

    /// Replaces a live record (at revision `expected`, when given) with CAS; `update` and
    /// `update_if`. A CAS mismatch may be a `touch` (which keeps the revision): look again.
    async fn replace_live(
        &self,
        kind: &str,
        id: &str,
        value: Value,
        expected: Option<Revision>,
        expires_at: Expiry,
    ) -> Result<Revision> {
        let revision = random_revision();
        let document = self.document(kind, id, &value, revision, expires_at);
        let key = self.key(kind, id);
        loop {
            let found = self.fetch_live(kind, id).await?;
            if let Some(expected) = expected {
                if found.stored.record.revision != expected {
                    return Err(Error::conflict(kind, id, expected));
                }
            }
            match self.replace(&key, &document, found.cas, expires_at).await {
                Ok(()) => return Ok(revision),
                Err(Outcome::Changed) => continue,
                Err(o) => return Err(o.into_error(kind, id, "a document")),
            }
        }
    }

    /// Runs a sub-document mutation on a live record read as `found`, keeping its expiry.
    async fn mutate(
        &self,
        key: &str,
        found: &Found,
        specs: &[MutateInSpec],
        with_cas: bool,
    ) -> std::result::Result<couchbase::results::kv_results::MutateInResult, Outcome> {
        let mut opts = MutateInOptions::new();
        if with_cas {
            opts = opts.cas(found.cas);
        }
        if let Some(expiry) = server_expiry(found.stored.record.expires_at, Utc::now()) {
            opts = opts.expiry(expiry);
        }
        self.call(self.collection.mutate_in(key, specs, opts)).await
    }

    /// Replaces a live record's value, keeping its expiry; the fallback for what sub-document
    /// operations cannot do (a counter step of `i64::MIN`, values nested too deep).
    async fn replace_value(
        &self,
        kind: &str,
        id: &str,
        found: &Found,
        value: Value,
    ) -> std::result::Result<(), Outcome> {
        let expires_at = found.stored.record.expires_at;
        let document = self.document(kind, id, &value, random_revision(), expires_at);
        self.replace(&self.key(kind, id), &document, found.cas, expires_at)
            .await
    }

    /// Creates or replaces a record in one KV upsert.
    async fn upsert(
        &self,
        kind: &str,
        id: &str,
        value: &Value,
        expires_at: Expiry,
    ) -> Result<Revision> {
        let revision = random_revision();
        let document = self.document(kind, id, value, revision, expires_at);
        let mut opts = UpsertOptions::new();
        if let Some(expiry) = server_expiry(expires_at, Utc::now()) {
            opts = opts.expiry(expiry);
        }
        self.call(self.collection.upsert(self.key(kind, id), &document, opts))
            .await
            .map_err(|o| o.into_error(kind, id, "a document"))?;
        Ok(revision)
    }

    async fn query<T: DeserializeOwned + Send + 'static>(
        &self,
        statement: Statement,
    ) -> Result<Vec<T>> {
        let mut opts = QueryOptions::new().scan_consistency(ScanConsistency::RequestPlus);
        for (name, value) in statement.params {
            opts = opts.add_named_parameter(name, value).map_err(map_err)?;
        }
        let run = async {
            let mut result = self.cluster.query(statement.text, opts).await?;
            result.rows::<T>().try_collect::<Vec<T>>().await
        };
        self.call(run)
            .await
            .map_err(|o| o.into_error("query", "", "rows"))
    }

    /// Fetches the live records under `keys`, in order, skipping those gone meanwhile.
    fn fetch_all<'a>(&'a self, kind: &'a str, keys: Vec<String>) -> RecordsStream<'a> {
        futures_util::stream::iter(keys)
            .map(move |key| async move { self.fetch_key(kind, &key).await })
            .buffered(FETCH_AHEAD)
            .filter_map(|found| async move {
                match found {
                    Ok(Some(found)) if found.live => {
                        Some(Ok((found.stored.id, found.stored.record)))
                    }
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                }
            })
            .boxed()
    }

    /// Appends or prepends one item to a list.
    async fn push(&self, kind: &str, id: &str, item: Value, front: bool) -> Result<usize> {
        let key = self.key(kind, id);
        loop {
            let found = match self.fetch(kind, id).await? {
                Some(found) if found.live => found,
                _ => {
                    let document = self.document(
                        kind,
                        id,
                        &Value::Array(vec![item.clone()]),
                        random_revision(),
                        None,
                    );
                    if self.insert(kind, id, &document, None).await? {
                        return Ok(1);
                    }
                    continue;
                }
            };
            let Some(items) = found.stored.record.value.as_array() else {
                return Err(Error::wrong_type(kind, id, "an array"));
            };
            let len = items.len() + 1;
            let items = [item.clone()];
            let spec = if front {
                MutateInSpec::array_prepend("v", &items, None)
            } else {
                MutateInSpec::array_append("v", &items, None)
            };
            let specs = [
                spec.map_err(map_err)?,
                MutateInSpec::upsert("r", random_revision().get(), None).map_err(map_err)?,
            ];
            let outcome = match self.mutate(&key, &found, &specs, true).await {
                Err(Outcome::TooDeep) => {
                    let mut all = found
                        .stored
                        .record
                        .value
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    if front {
                        all.insert(0, item.clone());
                    } else {
                        all.push(item.clone());
                    }
                    self.replace_value(kind, id, &found, Value::Array(all))
                        .await
                }
                other => other.map(drop),
            };
            match outcome {
                Ok(()) => return Ok(len),
                Err(Outcome::Changed | Outcome::Missing) => continue,
                Err(o) => return Err(o.into_error(kind, id, "an array")),
            }
        }
    }
}

#[async_trait]
impl Driver for CouchbaseBank {
    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.native_expiry = true;
        caps.native_counters = true;
        caps.native_search = true;
        caps.native_conditional_update = true;
        caps.native_patch = true;
        caps.supports_kinds = true;
        caps.native_lists = true;
        caps.persistent = true;
        caps.multi_process = true;
        caps
    }

    async fn write(&self, write: Write<'_>) -> Result<Revision> {
        let (kind, id, expires_at) = (write.kind, write.id, write.expires_at);
        match write.precondition {
            Precondition::Any => self.upsert(kind, id, &write.value, expires_at).await,
            Precondition::Absent => {
                let revision = random_revision();
                let document = self.document(kind, id, &write.value, revision, expires_at);
                if self.insert(kind, id, &document, expires_at).await? {
                    Ok(revision)
                } else {
                    Err(Error::already_exists(kind, id))
                }
            }
            Precondition::Exists => {
                self.replace_live(kind, id, write.value, None, expires_at)
                    .await
            }
            Precondition::Revision(expected) => {
                self.replace_live(kind, id, write.value, Some(expected), expires_at)
                    .await
            }
        }
    }

    async fn read(&self, kind: &str, id: &str) -> Result<Record> {
        Ok(self.fetch_live(kind, id).await?.stored.record)
    }

    async fn delete(&self, kind: &str, id: &str) -> Result<()> {
        loop {
            let found = self.fetch_live(kind, id).await?;
            let opts = RemoveOptions::new().cas(found.cas);
            match self
                .call(self.collection.remove(self.key(kind, id), opts))
                .await
            {
                Ok(_) => return Ok(()),
                Err(Outcome::Changed) => continue,
                Err(o) => return Err(o.into_error(kind, id, "a document")),
            }
        }
    }

    /// One sub-document multi-mutation with no read before it (see `patch.rs`); the
    /// read-and-write way when the server refuses it (nothing of it applied) or it cannot be one.
    async fn patch(&self, patch: Patch<'_>) -> Result<Revision> {
        let indexed = self.schema.indices(patch.kind);
        let Some(plan) = patch::plan(&patch, indexed, Utc::now())? else {
            return patch_by_read_and_write(self, patch).await;
        };
        let key = self.key(patch.kind, patch.id);
        let mutation = self.collection.mutate_in(&key, &plan.specs, plan.options);
        let refused = match timed("couchbase", self.config.timeout, async {
            Ok(mutation.await)
        })
        .await?
        {
            Ok(_) => return Ok(plan.revision),
            Err(e) => e,
        };
        if !patch::falls_back(&refused) {
            return Err(map_err(refused));
        }
        tracing::trace!(key = %key, why = %refused, "patch goes the read-and-write way");
        patch_by_read_and_write(self, patch).await
    }

    async fn touch(&self, kind: &str, id: &str, expires_at: Expiry) -> Result<()> {
        loop {
            let found = self.fetch_live(kind, id).await?;
            let record = &found.stored.record;
            // The whole document again, same revision, new expiry (in `e` and on the server).
            let document = self.document(kind, id, &record.value, record.revision, expires_at);
            match self
                .replace(&self.key(kind, id), &document, found.cas, expires_at)
                .await
            {
                Ok(()) => return Ok(()),
                Err(Outcome::Changed) => continue,
                Err(o) => return Err(o.into_error(kind, id, "a document")),
            }
        }
    }

    fn scan<'a>(&'a self, kind: &'a str) -> RecordStream<'a> {
        Box::pin(
            self.scan_records(kind)
                .map(|item| item.map(|(id, record)| (id, record.value))),
        )
    }

    fn scan_records<'a>(&'a self, kind: &'a str) -> RecordsStream<'a> {
        let statement = statements::scan_keys(
            &self.keyspace,
            &self.config.tag(kind),
            Utc::now().timestamp_millis(),
        );
        let keys = async move { self.query::<String>(statement).await };
        Box::pin(
            futures_util::stream::once(keys)
                .map(move |keys| match keys {
                    Ok(keys) => self.fetch_all(kind, keys),
                    Err(e) => futures_util::stream::once(async move { Err(e) }).boxed(),
                })
                .flatten(),
        )
    }

    async fn purge_expired(&self, kind: &str) -> Result<u64> {
        let statement = statements::purge(
            &self.keyspace,
            &self.config.tag(kind),
            Utc::now().timestamp_millis(),
        );
        Ok(self.query::<String>(statement).await?.len() as u64)
    }

    async fn close(&self) -> Result<()> {
        // The SDK's connections close when the last clone of the cluster is dropped.
        Ok(())
    }

    async fn read_all(&self, kind: &str, ids: &[&str]) -> Result<HashMap<String, Option<Value>>> {
        let owned: Vec<String> = ids.iter().map(|id| (*id).to_owned()).collect();
        let found: Vec<Result<(String, Option<Value>)>> = futures_util::stream::iter(owned)
            .map(|id| async move {
                let value = match self.fetch(kind, &id).await? {
                    Some(found) if found.live => Some(found.stored.record.value),
                    _ => None,
                };
                Ok((id, value))
            })
            .buffer_unordered(FETCH_AHEAD)
            .collect()
            .await;
        found.into_iter().collect()
    }

    async fn search(&self, kind: &str, criteria: &Criteria) -> Result<Vec<(String, Value)>> {
        let statement = statements::search_keys(
            &self.keyspace,
            &self.schema,
            kind,
            &self.config.tag(kind),
            criteria,
            Utc::now().timestamp_millis(),
        );
        let keys = self.query::<String>(statement).await?;
        let hits: Vec<(String, Record)> = self.fetch_all(kind, keys).try_collect().await?;
        Ok(hits
            .into_iter()
            .filter(|(_, record)| criteria.matches(&record.value))
            .map(|(id, record)| (id, record.value))
            .collect())
    }

    async fn kinds(&self) -> Result<Vec<String>> {
        // Tags are `<prefix>:<type>`, or the bare type (which starts with a letter) without a
        // prefix; a bank without one leaves the tags of prefixed banks (with `:`) alone.
        let prefix = &self.config.prefix;
        let (lo, hi) = if prefix.is_empty() {
            ("A".to_owned(), "{".to_owned())
        } else {
            (format!("{prefix}:"), format!("{prefix};"))
        };
        let tags = self
            .query::<String>(statements::tags(&self.keyspace, &lo, &hi))
            .await?;
        Ok(tags
            .into_iter()
            .filter_map(|tag| {
                if prefix.is_empty() {
                    (!tag.contains(':')).then_some(tag)
                } else {
                    tag.strip_prefix(lo.as_str()).map(str::to_owned)
                }
            })
            .collect())
    }

    async fn count(&self, kind: &str) -> Result<u64> {
        let statement = statements::count(
            &self.keyspace,
            &self.config.tag(kind),
            Utc::now().timestamp_millis(),
        );
        Ok(self
            .query::<u64>(statement)
            .await?
            .first()
            .copied()
            .unwrap_or(0))
    }

    async fn incr_by(&self, kind: &str, id: &str, delta: i64) -> Result<i64> {
        let key = self.key(kind, id);
        loop {
            let found = match self.fetch(kind, id).await? {
                Some(found) if found.live => found,
                _ => {
                    let document =
                        self.document(kind, id, &Value::from(delta), random_revision(), None);
                    if self.insert(kind, id, &document, None).await? {
                        return Ok(delta);
                    }
                    continue;
                }
            };
            let current = found.stored.record.value.as_i64();
            let Some(new) = current.and_then(|n| n.checked_add(delta)) else {
                return Err(Error::wrong_type(kind, id, "an integer"));
            };
            if delta == 0 {
                return Ok(new);
            }
            let step = if delta > 0 {
                MutateInSpec::increment("v", delta, None)
            } else {
                delta
                    .checked_neg()
                    .map(|d| MutateInSpec::decrement("v", d, None))
                    .unwrap_or_else(|| MutateInSpec::increment("v", 0, None))
            };
            let outcome = if delta == i64::MIN {
                self.replace_value(kind, id, &found, Value::from(new))
                    .await
                    .map(|()| new)
            } else {
                let specs = [
                    step.map_err(map_err)?,
                    MutateInSpec::upsert("r", random_revision().get(), None).map_err(map_err)?,
                ];
                // The server's counter is atomic; CAS is only needed when the record could expire
                // between our read and the increment.
                let expiring = found.stored.record.expires_at.is_some_and(|at| {
                    at - Utc::now()
                        < databank_core::driver::chrono::Duration::from_std(self.config.timeout)
                            .unwrap_or_default()
                });
                match self.mutate(&key, &found, &specs, expiring).await {
                    Ok(result) => result
                        .content_as::<i64>(0)
                        .map_err(|e| Outcome::Failed(map_err(e))),
                    Err(o) => Err(o),
                }
            };
            match outcome {
                Ok(n) => return Ok(n),
                Err(Outcome::Changed | Outcome::Missing) => continue,
                Err(o) => return Err(o.into_error(kind, id, "an integer")),
            }
        }
    }

    async fn append(&self, kind: &str, id: &str, item: Value) -> Result<usize> {
        self.push(kind, id, item, false).await
    }

    async fn prepend(&self, kind: &str, id: &str, item: Value) -> Result<usize> {
        self.push(kind, id, item, true).await
    }

    async fn remove(&self, kind: &str, id: &str, item: &Value) -> Result<bool> {
        let key = self.key(kind, id);
        loop {
            let found = match self.fetch(kind, id).await? {
                Some(found) if found.live => found,
                _ => return Ok(false),
            };
            let Some(items) = found.stored.record.value.as_array() else {
                return Err(Error::wrong_type(kind, id, "an array"));
            };
            let Some(at) = items.iter().position(|x| x == item) else {
                return Ok(false);
            };
            let specs = [
                MutateInSpec::remove(format!("v[{at}]"), None),
                MutateInSpec::upsert("r", random_revision().get(), None).map_err(map_err)?,
            ];
            match self.mutate(&key, &found, &specs, true).await {
                Ok(_) => return Ok(true),
                Err(Outcome::Changed) => continue,
                Err(Outcome::Missing) => return Ok(false),
                Err(o) => return Err(o.into_error(kind, id, "an array")),
            }
        }
    }
}
