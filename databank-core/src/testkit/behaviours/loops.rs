//! The read-modify-write loops `Driver` provides (counters, lists and patches of a driver that
//! does not do them natively) end, whatever the driver's `write` answers.

use std::future::IntoFuture;

use serde_json::json;

use super::assert_err;
use crate::driver::{async_trait, record, stream_of, Driver, RecordStream, Write, MAX_CONFLICTS};
use crate::testkit::Kit;
use crate::{Bank, Capabilities, Error, Expiry, Record, Result, Revision};

/// A driver whose every record exists and whose every write meets a concurrent change: what a
/// third-party driver with a broken compare-and-set would do to the provided loops.
#[derive(Debug)]
struct EndlessConflicts;

#[async_trait]
impl Driver for EndlessConflicts {
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    async fn read(&self, kind: &str, _id: &str) -> Result<Record> {
        let value = match kind {
            "counter" => json!(1),
            "list" => json!([1]),
            _ => json!({"a": 1}),
        };
        Ok(record(value, Revision::new(1), None))
    }
    async fn write(&self, write: Write<'_>) -> Result<Revision> {
        Err(Error::conflict(write.kind, write.id, Revision::new(1)))
    }
    async fn delete(&self, _kind: &str, _id: &str) -> Result<()> {
        Ok(())
    }
    async fn touch(&self, _kind: &str, _id: &str, _expires_at: Expiry) -> Result<()> {
        Ok(())
    }
    fn scan<'a>(&'a self, _kind: &'a str) -> RecordStream<'a> {
        stream_of(async { Ok(Vec::new()) })
    }
    async fn purge_expired(&self, _kind: &str) -> Result<u64> {
        Ok(0)
    }
}

/// Every provided read-modify-write loop stops after `MAX_CONFLICTS` conflicting writes with
/// `Contended` (nothing applied, retryable), instead of looping for ever: `incr_by`, `append`,
/// `prepend`, `remove` and `patch`. The driver under test does not take part: the loops are
/// the kit's own, run over a driver whose writes always conflict.
pub async fn provided_loops_give_up_on_endless_conflicts(_kit: Kit) -> Result<()> {
    let bank = Bank::new(EndlessConflicts);
    let one = json!(1);
    let (incr, append, prepend, remove, patch) = tokio::join!(
        bank.incr("counter", "c"),
        bank.append("list", "l", json!(2)),
        bank.prepend("list", "l", json!(0)),
        bank.remove("list", "l", &one),
        bank.patch("thing", "t").set("b", 2).into_future(),
    );
    for (what, outcome) in [
        ("incr", incr.map(|_| ())),
        ("append", append.map(|_| ())),
        ("prepend", prepend.map(|_| ())),
        ("remove", remove.map(|_| ())),
        ("patch", patch.map(|_| ())),
    ] {
        match outcome {
            Err(e @ Error::Contended { attempts, .. }) => {
                assert_eq!(attempts, MAX_CONFLICTS, "{what}: {e}");
                assert!(
                    e.is_retryable(),
                    "{what}: nothing was applied, so retryable"
                );
            }
            other => panic!("{what}: expected Contended, got {other:?}"),
        }
    }
    assert_err!(bank.incr("counter", "c").await, Error::Contended { .. });
    Ok(())
}
