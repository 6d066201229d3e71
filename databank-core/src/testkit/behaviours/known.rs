//! Reads and patches against a revision the caller knows: what lets a caller keep a copy of a
//! record fresh without reading the whole value each time.

use serde_json::json;

use super::{assert_err, scan_ids};
use crate::testkit::{in_ms, sleep_past, Kit};
use crate::{Error, IfChanged, Result};

/// `read_if_changed` leaves the value out exactly while the record is at the known revision,
/// reports the expiry it has now (a touch moves it, not the revision), and is `NotFound` for a
/// missing, deleted or expired record.
pub async fn read_if_changed_leaves_out_only_what_the_caller_has(kit: Kit) -> Result<()> {
    let first = kit
        .bank
        .create("doc", "d", json!({"a": 1}))
        .expires_at(in_ms(3_600_000))
        .await?;
    let stored = kit.bank.read("doc", "d").await?.expires_at;
    assert_eq!(
        kit.bank.read_if_changed("doc", "d", first).await?,
        IfChanged::Unchanged { expires_at: stored }
    );
    kit.bank.touch("doc", "d", in_ms(7_200_000)).await?;
    let touched = kit.bank.read("doc", "d").await?;
    assert_ne!(touched.expires_at, stored);
    assert_eq!(
        kit.bank.read_if_changed("doc", "d", first).await?,
        IfChanged::Unchanged {
            expires_at: touched.expires_at
        }
    );
    let second = kit.bank.update("doc", "d", json!({"a": 2})).await?;
    let now = kit.bank.read("doc", "d").await?;
    assert_eq!(now.revision, second);
    assert_eq!(
        kit.bank.read_if_changed("doc", "d", first).await?,
        IfChanged::Changed(now.clone())
    );
    assert_eq!(
        kit.bank.read_if_changed("doc", "d", second).await?,
        IfChanged::Unchanged {
            expires_at: now.expires_at
        }
    );
    assert_err!(
        kit.bank.read_if_changed("doc", "missing", second).await,
        Error::NotFound { .. }
    );
    assert_err!(
        kit.bank.read_if_changed("doc", "", second).await,
        Error::InvalidInput(_)
    );
    kit.bank.delete("doc", "d").await?;
    assert_err!(
        kit.bank.read_if_changed("doc", "d", second).await,
        Error::NotFound { .. }
    );
    let gone = kit
        .bank
        .create("doc", "old", json!({"a": 1}))
        .expires_at(in_ms(-1_000))
        .await?;
    assert_err!(
        kit.bank.read_if_changed("doc", "old", gone).await,
        Error::NotFound { .. }
    );
    Ok(())
}

/// A patch applied on a base revision says it was only when it certainly was (and, where the
/// driver declares `native_patch_on`, says so for an uncontested patch): then the
/// record holds the base value patched. After another write, on a record the patch creates, and
/// among patches racing from one base (at most one can be first), it says no.
pub async fn patch_on_base_is_only_claimed_when_certain(kit: Kit) -> Result<()> {
    let base = kit.bank.create("doc", "d", json!({"a": 1})).await?;
    let applied = kit
        .bank
        .patch("doc", "d")
        .set("b", 2)
        .applied_on(base)
        .await?;
    if kit.bank.capabilities().native_patch_on {
        assert!(
            applied.on_base,
            "an uncontested patch did not tell it landed on its base"
        );
    }
    let now = kit.bank.read("doc", "d").await?;
    assert_eq!(now.revision, applied.revision);
    assert_eq!(now.value, json!({"a": 1, "b": 2}));
    // A patch from a revision another write replaced is not on its base.
    kit.bank.patch("doc", "d").set("c", 3).await?;
    let stale = kit
        .bank
        .patch("doc", "d")
        .remove("a")
        .applied_on(applied.revision)
        .await?;
    assert!(
        !stale.on_base,
        "a patch after another write claimed its base"
    );
    assert_eq!(kit.bank.read("doc", "d").await?.revision, stale.revision);
    // Created by the patch: there was no base.
    let created = kit
        .bank
        .patch("doc", "new")
        .set("a", 1)
        .applied_on(base)
        .await?;
    assert!(
        !created.on_base,
        "a patch that created its record claimed a base"
    );
    assert_err!(
        kit.bank
            .patch("doc", "absent")
            .set("a", 1)
            .must_exist()
            .applied_on(base)
            .await,
        Error::NotFound { .. }
    );
    // Racing from one base: at most one lands on it.
    let base = kit.bank.save("doc", "race", json!({"n": 0})).await?;
    let mut tasks = Vec::new();
    for task in 0..8 {
        let bank = kit.bank.clone();
        tasks.push(tokio::spawn(async move {
            bank.patch("doc", "race")
                .set(format!("k{task}"), task)
                .must_exist()
                .applied_on(base)
                .await
        }));
    }
    let mut on_base = 0;
    for task in tasks {
        let applied = task.await.map_err(|e| Error::backend("testkit", e))??;
        on_base += usize::from(applied.on_base);
    }
    assert!(on_base <= 1, "{on_base} racing patches claimed one base");
    Ok(())
}

/// A patch on a base revision that sets an expiry (what a session store sends per request)
/// checks the record as any patch does: it applies to a live object, and on a record deleted,
/// expired or not an object it fails and leaves nothing behind (no record, no count, the other
/// value and its revision and expiry untouched).
pub async fn an_expiring_patch_on_a_base_checks_the_record(kit: Kit) -> Result<()> {
    let millis = |r: &crate::Record| r.expires_at.map(|t| t.timestamp_millis());
    let later = in_ms(3_600_000);
    let base = kit
        .bank
        .create("session", "live", json!({"a": 1, "s": "x"}))
        .expires_at(later)
        .await?;
    let further = in_ms(7_200_000);
    let applied = kit
        .bank
        .patch("session", "live")
        .set("b", 2)
        .remove("s")
        .expires_at(further)
        .must_exist()
        .applied_on(base)
        .await?;
    let now = kit.bank.read("session", "live").await?;
    assert_eq!(now.value, json!({"a": 1, "b": 2}));
    assert_eq!(now.revision, applied.revision);
    assert_eq!(millis(&now), further.map(|t| t.timestamp_millis()));
    if kit.bank.capabilities().native_patch_on {
        assert!(
            applied.on_base,
            "an uncontested patch did not claim its base"
        );
    }
    // Deleted (a logout) before the patch: the patch must not bring it back.
    let gone = kit
        .bank
        .create("session", "gone", json!({"user": "ada"}))
        .expires_at(later)
        .await?;
    kit.bank.delete("session", "gone").await?;
    assert_err!(visit(&kit.bank, "gone", gone).await, Error::NotFound { .. });
    assert_err!(
        kit.bank.read("session", "gone").await,
        Error::NotFound { .. }
    );
    // Expired before the patch: it stays expired.
    let soon = in_ms(300);
    let expiring = kit
        .bank
        .create("session", "expiring", json!({"user": "ada"}))
        .expires_at(soon)
        .await?;
    sleep_past(soon).await;
    assert_err!(
        visit(&kit.bank, "expiring", expiring).await,
        Error::NotFound { .. }
    );
    assert_err!(
        kit.bank.read("session", "expiring").await,
        Error::NotFound { .. }
    );
    assert_eq!(kit.bank.count("session").await?, 1);
    let ids = scan_ids(&kit.bank, "session").await?;
    assert_eq!(ids, ["live"]);
    // Not an object: refused, and the record is as it was.
    let list = kit
        .bank
        .create("session", "list", json!([1, 2]))
        .expires_at(later)
        .await?;
    let before = kit.bank.read("session", "list").await?;
    assert_err!(
        visit(&kit.bank, "list", list).await,
        Error::WrongType { .. }
    );
    let after = kit.bank.read("session", "list").await?;
    assert_eq!(after.value, before.value);
    assert_eq!(after.revision, before.revision);
    assert_eq!(millis(&after), millis(&before));
    Ok(())
}

/// A session store's request: a visit counted on the session `id` loaded at `base`, which
/// moves the expiry two hours ahead and must find the session.
async fn visit(bank: &crate::Bank, id: &str, base: crate::Revision) -> Result<crate::Applied> {
    bank.patch("session", id)
        .set("visits", 2)
        .expires_at(in_ms(7_200_000))
        .must_exist()
        .applied_on(base)
        .await
}
