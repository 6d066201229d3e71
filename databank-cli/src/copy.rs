//! `copy`: every live record of one bank (or of the named types) into another, with its expiry;
//! streamed, with bounded concurrency, verified at the end, and resumable.
//!
//! Resuming: a copy leaves a marker record (type [`MARKER_KIND`], its id naming the source and
//! the types) in the destination while it runs and deletes it once verified. Run again after
//! Ctrl-C or a crash, the same copy finds its marker and writes every record again over what
//! the first run wrote: the destination ends with each source record once, none lost.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::Utc;
use databank_core::{Bank, Error, Record};
use futures_util::{Stream, StreamExt, TryStreamExt};
use serde_json::json;

use crate::cli::OnConflict;
use crate::transfer::{progress_over, summary};
use crate::Failure;

/// The type of the marker a running copy keeps in its destination.
pub const MARKER_KIND: &str = "databank-copy";
/// How many ids a verification reads from the destination at once.
const VERIFY_CHUNK: usize = 256;
/// How many source records are read ahead of the writes: the memory a copy holds is bounded
/// by this and the writes in flight, whatever the bank's size.
const READ_AHEAD: usize = 1024;

/// What `copy` was asked.
pub struct CopyOptions {
    /// The types to copy; none: every type the source holds.
    pub types: Vec<String>,
    /// What to do with ids the destination holds; none: refuse a non-empty destination.
    pub on_conflict: Option<OnConflict>,
    /// Compare every value at the end, not only that every id arrived.
    pub verify: bool,
    /// Writes in flight at once.
    pub concurrency: usize,
    /// No progress bars.
    pub quiet: bool,
    /// Print the summary as JSON.
    pub json: bool,
}

/// A stable name for one copy: a hash of the source URL (redacted) and the types, in hex.
fn marker_id(source: &str, types: &[String]) -> String {
    format!(
        "{:016x}",
        crate::fnv64(&format!("{source}\n{}", types.join("\n")))
    )
}

/// Copies `from` into `to` (see the module docs).
pub async fn copy(
    from: &Bank,
    to: &Bank,
    from_url: &str,
    opts: CopyOptions,
) -> Result<(), Failure> {
    let mut types = if opts.types.is_empty() {
        from.kinds().await?
    } else {
        opts.types.clone()
    };
    types.retain(|kind| kind != MARKER_KIND);
    let source = databank_core::redact(from_url);
    let marker = marker_id(&source, &types);
    let resuming = match to.read(MARKER_KIND, &marker).await {
        Ok(_) => true,
        Err(Error::NotFound { .. }) => false,
        Err(e) => return Err(e.into()),
    };
    if !resuming && opts.on_conflict.is_none() {
        for kind in &types {
            let held = to.count(kind).await?;
            if held > 0 {
                return Err(Failure(format!(
                    "the destination holds {held} records of type {kind}: copy into an empty \
                     bank, or say what to do with ids it holds (--on-conflict skip|overwrite|fail)"
                )));
            }
        }
    }
    to.save(
        MARKER_KIND,
        &marker,
        json!({"source": source, "types": types, "started_at": Utc::now().to_rfc3339()}),
    )
    .await?;
    // A resumed copy writes over what its first run wrote.
    let policy = match (resuming, opts.on_conflict) {
        (_, Some(policy)) => policy,
        (true, None) => OnConflict::Overwrite,
        (false, None) => OnConflict::Fail,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn({
        let stop = stop.clone();
        async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.store(true, Ordering::SeqCst);
            }
        }
    });
    let mut copied = 0u64;
    let mut skipped = 0u64;
    // How many records of each type this run saw (written or skipped).
    let mut seen = Vec::with_capacity(types.len());
    for kind in &types {
        let before = copied + skipped;
        let bar = progress_over(from, kind, opts.quiet, &format!("copy {kind}")).await?;
        let mut writes = std::pin::pin!(read_ahead(from, kind)
            .map_ok(|(id, record)| copy_one(to, kind, id, record, policy))
            .try_buffer_unordered(opts.concurrency.max(1)));
        while let Some(outcome) = writes.try_next().await? {
            match outcome {
                Copied::Written => copied += 1,
                Copied::Skipped => skipped += 1,
            }
            bar.inc(1);
            if stop.load(Ordering::SeqCst) {
                bar.abandon();
                return Err(Failure(format!(
                    "interrupted after {copied} records: run the same command again to finish"
                )));
            }
        }
        bar.finish();
        seen.push(copied + skipped - before);
    }
    watcher.abort();
    let checked = if opts.verify {
        verify(from, to, &types, opts.quiet).await?
    } else {
        check_counts(from, to, &types, &seen).await?
    };
    to.delete(MARKER_KIND, &marker).await?;
    summary(
        opts.json,
        &format!(
            "copied {copied} records ({skipped} skipped as held already); {checked} verified{}",
            if opts.verify {
                " value by value"
            } else {
                " by count"
            }
        ),
        json!({"copied": copied, "skipped_existing": skipped, "verified": checked, "resumed": resuming}),
    );
    Ok(())
}

/// The live records of `kind`, read by a task of their own up to [`READ_AHEAD`] records ahead
/// of the consumer, so the source's round trips overlap the destination's.
fn read_ahead(from: &Bank, kind: &str) -> impl Stream<Item = Result<(String, Record), Error>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(READ_AHEAD);
    let (from, kind) = (from.clone(), kind.to_owned());
    tokio::spawn(async move {
        let mut records = from.scan_records(&kind);
        while let Some(item) = records.next().await {
            let failed = item.is_err();
            // A closed channel: the copy stopped reading (it failed or was interrupted).
            if sender.send(item).await.is_err() || failed {
                return;
            }
        }
    });
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    })
}

/// What copying one record did.
enum Copied {
    Written,
    Skipped,
}

async fn copy_one(
    to: &Bank,
    kind: &str,
    id: String,
    record: Record,
    policy: OnConflict,
) -> Result<Copied, Error> {
    let write = match policy {
        OnConflict::Overwrite => to.save(kind, &id, record.value),
        OnConflict::Skip | OnConflict::Fail => to.create(kind, &id, record.value),
    };
    match write.expires_at(record.expires_at).await {
        Ok(_) => Ok(Copied::Written),
        Err(Error::AlreadyExists { .. }) if policy == OnConflict::Skip => Ok(Copied::Skipped),
        Err(e) => Err(e),
    }
}

/// Checks that the destination holds at least as many live records of each type as this run
/// saw (`seen`, in the order of `types`) or, failing that (records that expired meanwhile), as
/// the source holds now (more when it held others before); returns how many were checked.
async fn check_counts(
    from: &Bank,
    to: &Bank,
    types: &[String],
    seen: &[u64],
) -> Result<u64, Failure> {
    let mut checked = 0;
    for (kind, seen) in types.iter().zip(seen) {
        let destination = to.count(kind).await?;
        // The source is counted only when needed: a pass over its records on some backends.
        let expected = if destination >= *seen {
            *seen
        } else {
            from.count(kind).await?
        };
        if destination < expected {
            return Err(Failure(format!(
                "verification: the destination holds {destination} records of type {kind}, the \
                 source {expected}: run the same command again (--verify names the missing ones)"
            )));
        }
        checked += expected;
    }
    Ok(checked)
}

/// Checks that every live source record is in the destination with an equal value; returns
/// how many were checked.
async fn verify(from: &Bank, to: &Bank, types: &[String], quiet: bool) -> Result<u64, Failure> {
    let mut checked = 0u64;
    for kind in types {
        let bar = progress_over(from, kind, quiet, &format!("verify {kind}")).await?;
        let mut chunks = from.scan(kind).try_chunks(VERIFY_CHUNK);
        while let Some(chunk) = chunks
            .try_next()
            .await
            .map_err(|e| Failure(e.1.to_string()))?
        {
            let ids: Vec<&str> = chunk.iter().map(|(id, _)| id.as_str()).collect();
            let there = to.read_all(kind, &ids).await?;
            for (id, value) in &chunk {
                match there.get(id) {
                    Some(Some(copy)) if copy == value => {}
                    Some(Some(_)) => {
                        return Err(Failure(format!(
                            "verification: {kind} {id:?} differs in the destination"
                        )))
                    }
                    _ => {
                        // Missing, unless it expired or was deleted meanwhile.
                        if from.read(kind, id).await.is_ok() && to.read(kind, id).await.is_err() {
                            return Err(Failure(format!(
                                "verification: {kind} {id:?} is missing from the destination"
                            )));
                        }
                    }
                }
                checked += 1;
            }
            bar.inc(chunk.len() as u64);
        }
        bar.finish();
    }
    Ok(checked)
}
