//! `MongoBank`: the driver itself.

use std::collections::{HashMap, HashSet};
use std::future::{Future, IntoFuture};
use std::sync::Mutex;

use databank_core::driver::MAX_VALUE_BYTES;
use databank_core::driver::{
    async_trait, patch_by_read_and_write, random_revision, timed, Driver, Patch, PatchExpiry,
    Precondition, RecordStream, RecordsStream, Utc, Write,
};
use databank_core::driver::{canonical, index_field, lookup};
use databank_core::{
    Capabilities, Criteria, Error, Expiry, Record, Result, Revision, Schema, Value,
};
use futures_util::{StreamExt, TryStreamExt};
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::{ClientOptions, IndexOptions, ReturnDocument};
use mongodb::{Client, Collection, IndexModel};

use crate::codec::{
    bson_date, from_document, json, key_cost, key_field, live, revision_bson, to_document,
};
use crate::config::MongoConfig;
use crate::error::{is_duplicate, map_err};

/// The MongoDB driver: one collection per type in the URL's database.
pub struct MongoBank {
    client: Client,
    database: mongodb::Database,
    schema: Schema,
    config: MongoConfig,
    /// Collections whose indices this process has already ensured.
    prepared: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for MongoBank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoBank")
            .field("config", &self.config)
            .finish()
    }
}

impl MongoBank {
    /// Connects, checks the server answers within the timeout, and creates the schema's indices
    /// (idempotently).
    pub async fn connect(config: MongoConfig, schema: Schema) -> Result<Self> {
        config.validate()?;
        let mut options = ClientOptions::parse(&config.server_url)
            .await
            .map_err(|e| {
                Error::InvalidInput(format!(
                    "bad MongoDB URL {}: {e}",
                    databank_core::redact(&config.server_url)
                ))
            })?;
        options.server_selection_timeout = Some(config.timeout);
        options.connect_timeout = Some(config.timeout);
        // Notice a restarted server within a second (the driver's default is 10 s), unless the
        // URL sets heartbeatFrequencyMS itself.
        if options.heartbeat_freq.is_none() {
            options.heartbeat_freq = Some(std::time::Duration::from_secs(1));
        }
        options.app_name = Some("databank".into());
        let client = Client::with_options(options).map_err(map_err)?;
        let database = client.database(&config.database);
        let bank = MongoBank {
            client,
            database,
            schema,
            config,
            prepared: Mutex::new(HashSet::new()),
        };
        bank.timed(bank.database.run_command(doc! { "ping": 1 }).into_future())
            .await
            .map_err(Error::nothing_applied)?;
        let kinds: Vec<String> = bank.schema.types().map(|(k, _)| k.to_owned()).collect();
        for kind in kinds {
            bank.prepare(&kind).await?;
        }
        tracing::debug!(config = ?bank.config, "connected to mongodb");
        Ok(bank)
    }

    fn collection(&self, kind: &str) -> Collection<Document> {
        self.database.collection(kind)
    }

    /// Bounds a server call by the configured timeout.
    async fn timed<T>(&self, call: impl Future<Output = mongodb::error::Result<T>>) -> Result<T> {
        timed("mongo", self.config.timeout, async {
            call.await.map_err(map_err)
        })
        .await
    }

    /// Like [`timed`](Self::timed), keeping the client's error for the caller to look at.
    async fn timed_raw<T>(
        &self,
        call: impl Future<Output = mongodb::error::Result<T>>,
    ) -> Result<mongodb::error::Result<T>> {
        timed("mongo", self.config.timeout, async { Ok(call.await) }).await
    }

    /// Creates the TTL index on `e` and the declared indices of a type, once per process.
    async fn prepare(&self, kind: &str) -> Result<()> {
        let done = self
            .prepared
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .contains(kind);
        if done {
            return Ok(());
        }
        let mut models = vec![IndexModel::builder()
            .keys(doc! { "e": 1 })
            .options(
                IndexOptions::builder()
                    .expire_after(std::time::Duration::ZERO)
                    .name("databank_expiry".to_string())
                    .build(),
            )
            .build()];
        for field in self.schema.indices(kind) {
            let key = format!("ix.{}", index_field(field));
            models.push(IndexModel::builder().keys(doc! { key: 1 }).build());
        }
        self.timed(self.collection(kind).create_indexes(models).into_future())
            .await?;
        self.prepared
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .insert(kind.to_owned());
        Ok(())
    }

    fn document(
        &self,
        kind: &str,
        id: &str,
        value: &Value,
        revision: Revision,
        expires_at: Expiry,
    ) -> Result<Document> {
        to_document(id, value, revision, expires_at, self.schema.indices(kind))
    }

    /// Replaces the live record matching `filter` (plus `_id` and liveness); true when one did.
    async fn replace_live(
        &self,
        kind: &str,
        id: &str,
        mut filter: Document,
        replacement: &Document,
    ) -> Result<bool> {
        filter.insert("_id", id);
        filter.extend(live(Utc::now()));
        let result = self
            .timed(
                self.collection(kind)
                    .replace_one(filter, replacement)
                    .into_future(),
            )
            .await?;
        Ok(result.matched_count == 1)
    }

    /// Inserts a record, replacing an expired one the TTL monitor has not removed yet. False
    /// when a live record holds the id.
    ///
    /// The server may purge the expired holder between our insert and our replace (its TTL
    /// monitor runs on its own schedule), so "the replace matched nothing" is not "a live record
    /// exists": we look, and insert again when the id has become free.
    async fn insert(&self, kind: &str, id: &str, document: &Document) -> Result<bool> {
        self.prepare(kind).await?;
        loop {
            let inserted = self
                .timed_raw(self.collection(kind).insert_one(document).into_future())
                .await?;
            match inserted {
                Ok(_) => return Ok(true),
                Err(e) if is_duplicate(&e) => {}
                Err(e) => return Err(map_err(e)),
            }
            let expired = doc! { "_id": id, "e": { "$lte": bson_date(Utc::now()) } };
            let result = self
                .timed(
                    self.collection(kind)
                        .replace_one(expired, document)
                        .into_future(),
                )
                .await?;
            if result.matched_count == 1 {
                return Ok(true);
            }
            match self.read(kind, id).await {
                Ok(_) => return Ok(false),
                // Purged (or expired) meanwhile: the id is free again, so insert again.
                Err(e) if e.is_not_found() => {
                    tracing::debug!(kind, id, "expired holder vanished during create; retrying");
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Creates or replaces a record. Two concurrent upserts of a new id can both try to
    /// insert; the loser retries as an update.
    async fn upsert(&self, kind: &str, id: &str, document: &Document) -> Result<()> {
        self.prepare(kind).await?;
        let collection = self.collection(kind);
        for _ in 0..3 {
            let call = collection
                .replace_one(doc! { "_id": id }, document)
                .upsert(true)
                .into_future();
            match self.timed_raw(call).await? {
                Ok(_) => return Ok(()),
                Err(e) if is_duplicate(&e) => continue,
                Err(e) => return Err(map_err(e)),
            }
        }
        // Every attempt lost a race and applied nothing.
        Err(Error::Backend {
            driver: "mongo",
            retryable: true,
            source: format!("save of {kind} {id:?} lost three insert races in a row").into(),
        })
    }

    /// A patch as one update of a live object record in this driver's layout: a filter that
    /// also checks the patched size (from `s` and the old values' lengths, on the server) and
    /// an update pipeline. False when nothing matched: no such live record, not an object, an
    /// object in the 0.2.0 layout, or too large.
    async fn patch_in_place(&self, patch: &Patch<'_>, revision: Revision) -> Result<bool> {
        let kind = patch.kind;
        let mut size = vec![Bson::String("$s".into())];
        let mut added = 0i64;
        let mut fields = Document::new();
        let mut unset = Vec::new();
        let old_size = |field: &str, key: &str| {
            let path = format!("$o.{field}");
            let cost = key_cost(key) as i64;
            doc! { "$multiply": [-1, { "$cond": [
                { "$eq": [{ "$type": &path }, "string"] },
                { "$add": [{ "$strLenBytes": &path }, cost] },
                0
            ] }] }
        };
        for (key, value) in &patch.set {
            let field = key_field(key);
            let text = json(value)?;
            added += (key_cost(key) + text.len()) as i64;
            size.push(Bson::Document(old_size(&field, key)));
            fields.insert(format!("o.{field}"), doc! { "$literal": text });
        }
        // A key named twice is removed (and its length taken off the size) once.
        let mut named = std::collections::HashSet::new();
        for key in patch.remove.iter().filter(|key| named.insert(key.as_str())) {
            let field = key_field(key);
            size.push(Bson::Document(old_size(&field, key)));
            unset.push(Bson::String(format!("o.{field}")));
        }
        size.push(Bson::Int64(added));
        let size = doc! { "$add": size };
        fields.insert("s", size.clone());
        fields.insert("r", revision_bson(revision));
        match patch.expiry {
            PatchExpiry::Keep => {}
            PatchExpiry::Set(Some(at)) => {
                fields.insert("e", bson_date(at));
            }
            PatchExpiry::Set(None) => unset.push(Bson::String("e".into())),
        }
        let set_only = Value::Object(patch.set.clone());
        for path in self.schema.indices(kind) {
            let top = path.split('.').next().unwrap_or(path.as_str());
            if !patch.set.contains_key(top) && !patch.remove.iter().any(|k| k == top) {
                continue;
            }
            let ix = format!("ix.{}", index_field(path));
            match lookup(&set_only, path) {
                Some(found) => {
                    fields.insert(ix, doc! { "$literal": canonical(found) });
                }
                None => unset.push(Bson::String(ix)),
            }
        }
        let mut pipeline = vec![doc! { "$set": fields }];
        if !unset.is_empty() {
            pipeline.push(doc! { "$unset": unset });
        }
        let mut filter = doc! {
            "_id": patch.id,
            "o": { "$type": "object" },
            "$expr": { "$lte": [size, (MAX_VALUE_BYTES - 1) as i64] },
        };
        filter.extend(live(Utc::now()));
        let result = self
            .timed(
                self.collection(kind)
                    .update_one(filter, pipeline)
                    .into_future(),
            )
            .await?;
        Ok(result.matched_count == 1)
    }

    async fn find(&self, kind: &str, filter: Document) -> Result<Vec<(String, Record)>> {
        let cursor = self
            .timed(self.collection(kind).find(filter).into_future())
            .await?;
        let documents: Vec<Document> = self.timed(cursor.try_collect()).await?;
        documents.iter().map(|d| from_document(kind, d)).collect()
    }
}

#[async_trait]
impl Driver for MongoBank {
    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.native_expiry = true;
        caps.native_counters = true;
        caps.native_search = true;
        caps.native_conditional_update = true;
        caps.native_patch = true;
        caps.supports_kinds = true;
        caps.supports_count_expired = true;
        caps.persistent = true;
        caps.multi_process = true;
        caps
    }

    async fn read(&self, kind: &str, id: &str) -> Result<Record> {
        // By `_id` alone (the cheapest lookup on every server), expiry checked here.
        let found = self
            .timed(
                self.collection(kind)
                    .find_one(doc! { "_id": id })
                    .into_future(),
            )
            .await?
            .ok_or_else(|| Error::not_found(kind, id))?;
        let record = from_document(kind, &found)?.1;
        if record.is_expired_at(Utc::now()) {
            return Err(Error::not_found(kind, id));
        }
        Ok(record)
    }

    async fn write(&self, write: Write<'_>) -> Result<Revision> {
        let (kind, id) = (write.kind, write.id);
        let revision = random_revision();
        let document = self.document(kind, id, &write.value, revision, write.expires_at)?;
        match write.precondition {
            Precondition::Any => self.upsert(kind, id, &document).await?,
            Precondition::Absent => {
                if !self.insert(kind, id, &document).await? {
                    return Err(Error::already_exists(kind, id));
                }
            }
            Precondition::Exists => {
                if !self
                    .replace_live(kind, id, Document::new(), &document)
                    .await?
                {
                    return Err(Error::not_found(kind, id));
                }
            }
            Precondition::Revision(expected) => {
                let filter = doc! { "r": revision_bson(expected) };
                if !self.replace_live(kind, id, filter, &document).await? {
                    // Tell a conflict from a missing record.
                    self.read(kind, id).await?;
                    return Err(Error::conflict(kind, id, expected));
                }
            }
        }
        Ok(revision)
    }

    async fn patch(&self, patch: Patch<'_>) -> Result<Revision> {
        let revision = random_revision();
        if self.patch_in_place(&patch, revision).await? {
            return Ok(revision);
        }
        // Missing, expired, not an object, too large or in the old layout: the read tells
        // which, and the conditional write creates, fails or rewrites accordingly.
        patch_by_read_and_write(self, patch).await
    }

    async fn delete(&self, kind: &str, id: &str) -> Result<()> {
        let mut filter = doc! { "_id": id };
        filter.extend(live(Utc::now()));
        let result = self
            .timed(self.collection(kind).delete_one(filter).into_future())
            .await?;
        if result.deleted_count == 1 {
            Ok(())
        } else {
            Err(Error::not_found(kind, id))
        }
    }

    async fn touch(&self, kind: &str, id: &str, expires_at: Expiry) -> Result<()> {
        let mut filter = doc! { "_id": id };
        filter.extend(live(Utc::now()));
        let change = match expires_at {
            Some(at) => doc! { "$set": { "e": bson_date(at) } },
            None => doc! { "$unset": { "e": "" } },
        };
        let result = self
            .timed(
                self.collection(kind)
                    .update_one(filter, change)
                    .into_future(),
            )
            .await?;
        if result.matched_count == 1 {
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
        let opened = async move {
            self.timed(self.collection(kind).find(live(Utc::now())).into_future())
                .await
        };
        Box::pin(
            futures_util::stream::once(opened)
                .map(move |cursor| match cursor {
                    Ok(cursor) => cursor
                        .map(move |item| from_document(kind, &item.map_err(map_err)?))
                        .boxed(),
                    Err(e) => futures_util::stream::once(async move { Err(e) }).boxed(),
                })
                .flatten(),
        )
    }

    async fn purge_expired(&self, kind: &str) -> Result<u64> {
        let filter = doc! { "e": { "$lte": bson_date(Utc::now()) } };
        let result = self
            .timed(self.collection(kind).delete_many(filter).into_future())
            .await?;
        Ok(result.deleted_count)
    }

    async fn count_expired(&self, kind: &str) -> Result<u64> {
        let filter = doc! { "e": { "$lte": bson_date(Utc::now()) } };
        self.timed(self.collection(kind).count_documents(filter).into_future())
            .await
    }

    async fn close(&self) -> Result<()> {
        // Ends the client's pools and monitors for every clone of it.
        self.client.clone().shutdown().await;
        Ok(())
    }

    async fn read_all(&self, kind: &str, ids: &[&str]) -> Result<HashMap<String, Option<Value>>> {
        let mut filter = doc! { "_id": { "$in": ids.iter().map(|id| Bson::String((*id).to_owned())).collect::<Vec<_>>() } };
        filter.extend(live(Utc::now()));
        let mut found: HashMap<String, Option<Value>> =
            ids.iter().map(|id| ((*id).to_owned(), None)).collect();
        if ids.is_empty() {
            return Ok(found);
        }
        for (id, record) in self.find(kind, filter).await? {
            found.insert(id, Some(record.value));
        }
        Ok(found)
    }

    async fn search(&self, kind: &str, criteria: &Criteria) -> Result<Vec<(String, Value)>> {
        let mut filter = live(Utc::now());
        for (field, value) in criteria.fields() {
            if self.schema.is_indexed(kind, field) {
                filter.insert(
                    format!("ix.{}", index_field(field)),
                    doc! { "$eq": canonical(value) },
                );
            }
        }
        Ok(self
            .find(kind, filter)
            .await?
            .into_iter()
            .filter(|(_, record)| criteria.matches(&record.value))
            .map(|(id, record)| (id, record.value))
            .collect())
    }

    async fn kinds(&self) -> Result<Vec<String>> {
        // One collection a type; `Bank::kinds` drops names that are not type names.
        self.timed(self.database.list_collection_names().into_future())
            .await
    }

    async fn count(&self, kind: &str) -> Result<u64> {
        self.timed(
            self.collection(kind)
                .count_documents(live(Utc::now()))
                .into_future(),
        )
        .await
    }

    async fn incr_by(&self, kind: &str, id: &str, delta: i64) -> Result<i64> {
        // The bound keeps $inc from overflowing: past it the record counts as the wrong type.
        let bound = if delta >= 0 {
            doc! { "$lte": i64::MAX - delta }
        } else {
            doc! { "$gte": i64::MIN - delta }
        };
        loop {
            let mut filter = doc! { "_id": id, "n": bound.clone() };
            filter.extend(live(Utc::now()));
            let change =
                doc! { "$inc": { "n": delta }, "$set": { "r": revision_bson(random_revision()) } };
            let updated = self
                .timed(
                    self.collection(kind)
                        .find_one_and_update(filter, change)
                        .return_document(ReturnDocument::After)
                        .into_future(),
                )
                .await?;
            if let Some(document) = updated {
                return match from_document(kind, &document)?.1.value.as_i64() {
                    Some(n) => Ok(n),
                    None => Err(Error::wrong_type(kind, id, "an integer")),
                };
            }
            match self.read(kind, id).await {
                // Another task created the counter between our update and this read: count on it.
                Ok(record)
                    if record
                        .value
                        .as_i64()
                        .and_then(|n| n.checked_add(delta))
                        .is_some() =>
                {
                    continue
                }
                Ok(_) => return Err(Error::wrong_type(kind, id, "an integer")),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
            let document = self.document(kind, id, &Value::from(delta), random_revision(), None)?;
            if self.insert(kind, id, &document).await? {
                return Ok(delta);
            }
            // Someone created it meanwhile: count on it.
        }
    }
}
