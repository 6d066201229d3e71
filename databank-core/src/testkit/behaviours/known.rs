//! Reads and patches against a revision the caller knows: what lets a caller keep a copy of a
//! record fresh without reading the whole value each time.

use serde_json::json;

use super::assert_err;
use crate::testkit::{in_ms, Kit};
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
/// driver declares `native_read_if_changed`, says so for an uncontested patch): then the
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
    if kit.bank.capabilities().native_read_if_changed {
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
