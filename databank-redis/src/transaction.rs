//! A patch that names its base (`patch_on`, what the session store sends per request) as one
//! `MULTI`/`EXEC` of plain commands instead of a script: `HMGET` of the bookkeeping and of the
//! fields it touches, `HDEL`, `HSET`, `PEXPIREAT` and `ZADD XX`. Redis runs the transaction as
//! one step, so the `HMGET` shows exactly what the writes replaced; what a script checks before
//! writing is checked after, from that reply (see "Patches without a script" in `layout.md`):
//!
//! - a record that was live and an object: done (the common case, one round trip);
//! - no record (deleted or expired): the writes made a *fragment*, a hash with no `o` or `v`
//!   field that every read treats as no record; [`scripts::FORGET_SCRIPT`] deletes it (and the
//!   bucket's entry for the dead id), and the patch fails with `NotFound`, as the script would;
//! - a record that is not an object, or a result past the size limit:
//!   [`scripts::UNDO_SCRIPT`] puts back what the `HMGET` returned, unless another write came
//!   since, and the patch fails as the script would.
//!
//! A save (a whole value, no precondition) of a type with no index is a transaction too
//! ([`RedisBank::save_in_transaction`]): it replaces whatever is there, so nothing needs
//! checking; only the bucket's bookkeeping follows, by script, in the rare cases it must (an
//! id new to its bucket sweeps expired entries, as every write that adds one does; index
//! entries left by an older schema are removed).
//!
//! The size bookkeeping `n` is moved in the same transaction by what the patch sets (`HINCRBY`,
//! before `PEXPIREAT`, so that a record the patch ends gets no hash back). Without a read
//! first, the transaction cannot subtract what the set keys held before: `n` bounds the size
//! from above, and is exact again after any whole write. A patch whose bound passes the size
//! limit has the record counted ([`scripts::RECOUNT_SCRIPT`]) before it is refused.

use databank_core::driver::{random_revision, timed, Patch, Write};
use databank_core::validate::MAX_VALUE_BYTES;
use databank_core::{Result, Revision};
use redis::{ErrorKind, RedisError, ServerErrorKind};

use crate::backend::RedisBank;
use crate::connection::command;
use crate::error::map_err;
use crate::fields;
use crate::keys::bucket;
use crate::scripts;
use crate::scripts::SWEEP;

/// What a patch in a transaction found, and what stays of it.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Applied to a live object; the revision it replaced (`None`: its own, a resent command).
    Applied(Option<Revision>),
    /// No live record: nothing of the patch stays.
    Missing,
    /// A record that is not an object (`old_layout`: an object in the 0.2.0 layout): undone.
    NotAnObject {
        /// The value was an object stored whole, as databank 0.2.0 did.
        old_layout: bool,
    },
    /// The patched object would pass the size limit: undone.
    TooLarge,
    /// The transaction did not run (a cluster node redirected it, or a slot is migrating): the
    /// caller runs the patch script, which the cluster client routes and retries.
    NotRun,
}

/// Whether a failed transaction certainly ran none of its commands.
fn not_run(e: &RedisError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Server(
            ServerErrorKind::ExecAbort
                | ServerErrorKind::Moved
                | ServerErrorKind::Ask
                | ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::CrossSlot
        )
    )
}

/// What a transaction replaced, as its `HMGET` returned it.
struct Was<'a> {
    revision: Option<&'a [u8]>,
    expiry: Option<&'a [u8]>,
    /// The size bookkeeping to put back (`None`: the record had none).
    size: Option<Vec<u8>>,
    /// The old values of the touched fields, in order.
    fields: &'a [Option<Vec<u8>>],
}

/// One touched field: its hash field, its new JSON (`None`: removed) and what its key costs.
struct Touched {
    field: Vec<u8>,
    json: Option<Vec<u8>>,
    cost: usize,
}

impl RedisBank {
    /// Applies `patch` (no index touched, not creating, expiring at `at` ms) in one transaction
    /// writing `revision`; `remove` is its removed keys without repeats.
    pub(crate) async fn patch_in_transaction(
        &self,
        patch: &Patch<'_>,
        remove: &[&String],
        at: i64,
        revision: Revision,
    ) -> Result<Outcome> {
        let (kind, id) = (patch.kind, patch.id);
        let key = self.keys.record(kind, id);
        let mut touched = Vec::with_capacity(patch.set.len() + remove.len());
        for (name, value) in &patch.set {
            touched.push(Touched {
                field: fields::key_field(name),
                json: Some(fields::json(value)?),
                cost: fields::key_cost(name),
            });
        }
        for name in remove {
            touched.push(Touched {
                field: fields::key_field(name),
                json: None,
                cost: fields::key_cost(name),
            });
        }
        // What the set keys add to `n`; what they held before is not known until the reply.
        let grown: i64 = touched
            .iter()
            .filter_map(|t| t.json.as_ref().map(|json| (json.len() + t.cost) as i64))
            .sum();
        let rev = revision.get().to_string();
        let fields_len: usize = touched.iter().map(|t| t.field.len()).sum();
        let json_len: usize = touched
            .iter()
            .filter_map(|t| t.json.as_ref())
            .map(Vec::len)
            .sum();
        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut read = command("HMGET", 6 + touched.len(), key.len() + 5 + fields_len);
        read.arg(&key).arg(&["r", "e", "o", "v", "n"]);
        for t in &touched {
            read.arg(&t.field);
        }
        pipe.add_command(read);
        if !remove.is_empty() {
            let mut del = command("HDEL", 1 + remove.len(), key.len() + fields_len);
            del.arg(&key);
            for t in touched.iter().filter(|t| t.json.is_none()) {
                del.arg(&t.field);
            }
            pipe.add_command(del).ignore();
        }
        let mut write = command(
            "HSET",
            5 + 2 * patch.set.len(),
            key.len() + rev.len() + 24 + fields_len + json_len,
        );
        write.arg(&key).arg("r").arg(&rev).arg("e").arg(at);
        for t in &touched {
            if let Some(json) = &t.json {
                write.arg(&t.field).arg(json);
            }
        }
        pipe.add_command(write).ignore();
        if grown != 0 {
            let mut grow = command("HINCRBY", 3, key.len() + 21);
            grow.arg(&key).arg("n").arg(grown);
            pipe.add_command(grow).ignore();
        }
        let mut expire = command("PEXPIREAT", 2, key.len() + 20);
        expire.arg(&key).arg(at);
        pipe.add_command(expire).ignore();
        let members = self.keys.members(kind, bucket(id));
        let mut score = command("ZADD", 4, members.len() + id.len() + 24);
        score.arg(members).arg("XX").arg(at).arg(id);
        pipe.add_command(score).ignore();
        let mut con = self.connection.clone();
        let attempt = async { Ok(pipe.query_async(&mut con).await) };
        let old: Vec<Option<Vec<u8>>> = match timed("redis", self.config.timeout, attempt).await? {
            Ok((old,)) => old,
            Err(e) if not_run(&e) => {
                tracing::debug!(kind, error = %e, "patch transaction not run; patching by script");
                return Ok(Outcome::NotRun);
            }
            Err(e) => return Err(map_err(e)),
        };
        let field = |i: usize| old.get(i).and_then(Option::as_deref);
        let (old_rev, old_expiry, object, whole) = (field(0), field(1), field(2), field(3));
        if object.is_none() {
            let Some(whole) = whole else {
                Box::pin(self.forget(kind, id)).await?;
                return Ok(Outcome::Missing);
            };
            let old_layout = whole.first() == Some(&b'{');
            let was = Was {
                revision: old_rev,
                expiry: old_expiry,
                size: field(4).map(<[u8]>::to_vec),
                fields: &old[5..],
            };
            Box::pin(self.undo(kind, id, &rev, &touched, was)).await?;
            return Ok(Outcome::NotAnObject { old_layout });
        }
        if old_rev == Some(rev.as_bytes()) {
            // Its own revision: this transaction ran twice (a resent command).
            return Ok(Outcome::Applied(None));
        }
        let size = |bytes: Option<&[u8]>| {
            bytes
                .and_then(|b| std::str::from_utf8(b).ok())
                .and_then(|s| s.parse::<i64>().ok())
                .unwrap_or(0)
        };
        // `n` now holds `before + grown`: a bound on the size, as `before` was. Past the limit,
        // the record is counted before the patch is refused.
        let before = size(field(4));
        let (mut after, mut restored) = (before + grown, before);
        if after + 1 > MAX_VALUE_BYTES as i64 {
            if let Some(exact) = Box::pin(self.recount(kind, &key, &rev)).await? {
                let held: i64 = (0..touched.len())
                    .filter_map(|i| field(5 + i).map(|was| (was.len() + touched[i].cost) as i64))
                    .sum();
                (after, restored) = (exact, exact - grown + held);
            }
        }
        if after + 1 > MAX_VALUE_BYTES as i64 {
            let was = Was {
                revision: old_rev,
                expiry: old_expiry,
                size: Some(restored.to_string().into_bytes()),
                fields: &old[5..],
            };
            Box::pin(self.undo(kind, id, &rev, &touched, was)).await?;
            return Ok(Outcome::TooLarge);
        }
        Ok(Outcome::Applied(old_rev.and_then(fields::parse_revision)))
    }

    /// Saves `write` (no precondition, its type indexes nothing, no `wait_replicas`) in one
    /// transaction: `HGET` of the id's index list (left by an older schema, if any), `DEL`,
    /// `HSET`, `PEXPIREAT` and `ZADD`. `None` when a cluster node refused it (nothing ran): the
    /// caller runs the put script.
    pub(crate) async fn save_in_transaction(&self, write: &Write<'_>) -> Result<Option<Revision>> {
        let (kind, id) = (write.kind, write.id);
        let b = bucket(id);
        let (key, members, lists) = (
            self.keys.record(kind, id),
            self.keys.members(kind, b),
            self.keys.index_lists(kind, b),
        );
        let revision = random_revision();
        let at = write.expires_at.map(|at| at.timestamp_millis());
        let stored = fields::of(&write.value)?;
        let stored_len: usize = stored.iter().map(Vec::len).sum();
        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut indexed = command("HGET", 2, lists.len() + id.len());
        indexed.arg(&lists).arg(id);
        pipe.add_command(indexed);
        let mut delete = command("DEL", 1, key.len());
        delete.arg(&key);
        pipe.add_command(delete).ignore();
        let mut hset = command("HSET", 5 + stored.len(), key.len() + 44 + stored_len);
        hset.arg(&key).arg("r").arg(revision.get());
        if let Some(at) = at {
            hset.arg("e").arg(at);
        }
        hset.arg(stored);
        pipe.add_command(hset).ignore();
        let mut score = command("ZADD", 3, members.len() + id.len() + 20);
        score.arg(&members);
        match at {
            Some(at) => {
                let mut expire = command("PEXPIREAT", 2, key.len() + 20);
                expire.arg(&key).arg(at);
                pipe.add_command(expire).ignore();
                score.arg(at);
            }
            None => {
                score.arg("+inf");
            }
        }
        score.arg(id);
        pipe.add_command(score);
        let mut con = self.connection.clone();
        let attempt = async { Ok(pipe.query_async(&mut con).await) };
        let (indexed, added): (Option<Vec<u8>>, i64) =
            match timed("redis", self.config.timeout, attempt).await? {
                Ok(replies) => replies,
                Err(e) if not_run(&e) => {
                    tracing::debug!(kind, error = %e, "save transaction not run; saving by script");
                    return Ok(None);
                }
                Err(e) => return Err(map_err(e)),
            };
        if indexed.is_some() || added > 0 {
            // What the put script does in the same step: drop index entries the old value had,
            // and sweep expired entries from a bucket that just grew.
            let keys = [members, lists];
            let args = [
                crate::backend::now_ms().to_string().into_bytes(),
                self.keys.record_prefix(kind, b).into_bytes(),
                if added > 0 { SWEEP } else { 0 }.to_string().into_bytes(),
                id.as_bytes().to_vec(),
            ];
            // The save has landed: a failure here leaves bookkeeping that later sweeps and
            // purges remove (and that searches, which check each value, never return).
            if let Err(e) = self
                .invoke::<(u64, u64)>(&scripts::TIDY_SCRIPT, &keys, &args)
                .await
            {
                tracing::warn!(kind, error = %e, "a save's bucket bookkeeping was not tidied");
            }
        }
        Ok(Some(revision))
    }

    /// Deletes what a transaction left of a record that was not there (a fragment), and the
    /// bucket's entry for the dead id, unless a live record is there now.
    async fn forget(&self, kind: &str, id: &str) -> Result<()> {
        let keys = self.keys.of_record(kind, id);
        let args = [
            id.as_bytes().to_vec(),
            crate::backend::now_ms().to_string().into_bytes(),
        ];
        self.invoke::<i64>(&scripts::FORGET_SCRIPT, &keys, &args)
            .await
            .map(drop)
    }

    /// Sets the size bookkeeping of the record `key`, as the transaction that wrote `rev` left
    /// it, to its exact value; `None` when another write came since.
    async fn recount(&self, kind: &str, key: &[u8], rev: &str) -> Result<Option<i64>> {
        let keys = [key.to_vec()];
        let args = [rev.as_bytes().to_vec()];
        let exact: i64 = self.invoke(&scripts::RECOUNT_SCRIPT, &keys, &args).await?;
        if exact < 0 {
            tracing::debug!(
                kind,
                "a patch's size was not counted: another write came first"
            );
            return Ok(None);
        }
        Ok(Some(exact))
    }

    /// Puts back what a transaction replaced (`was`), unless another write came since.
    async fn undo(
        &self,
        kind: &str,
        id: &str,
        rev: &str,
        touched: &[Touched],
        was: Was<'_>,
    ) -> Result<()> {
        let keys = self.keys.of_record(kind, id);
        let mut args = vec![
            rev.as_bytes().to_vec(),
            was.revision.unwrap_or_default().to_vec(),
            was.expiry.unwrap_or_default().to_vec(),
            id.as_bytes().to_vec(),
            was.size.unwrap_or_default(),
        ];
        for (t, value) in touched.iter().zip(was.fields) {
            args.push(t.field.clone());
            match value {
                Some(value) => {
                    args.push(b"1".to_vec());
                    args.push(value.clone());
                }
                None => {
                    args.push(b"0".to_vec());
                    args.push(Vec::new());
                }
            }
        }
        let undone: i64 = self.invoke(&scripts::UNDO_SCRIPT, &keys, &args).await?;
        if undone == 0 {
            tracing::warn!(
                kind,
                id,
                "a refused patch could not be undone: another write came first"
            );
        }
        Ok(())
    }
}
