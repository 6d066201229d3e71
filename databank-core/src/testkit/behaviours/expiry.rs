use serde_json::json;

use super::{assert_err, ids, scan_ids};
use crate::testkit::{in_ms, sleep_past, Kit, SHORT_LIFE_MS};
use crate::{Criteria, Error, Result};

/// A record written with an expiry in the past is never readable.
pub async fn expired_record_is_invisible_to_read(kit: Kit) -> Result<()> {
    kit.bank
        .create("thing", "old", json!({"v": 1}))
        .expires_at(in_ms(-1_000))
        .await?;
    assert_err!(kit.bank.read("thing", "old").await, Error::NotFound { .. });
    let all = kit.bank.read_all("thing", &["old"]).await?;
    assert_eq!(all.get("old"), Some(&None));
    Ok(())
}

/// An expiry takes effect at its instant, not some time after: a record that expired 5 ms
/// ago is gone for every read at once.
pub async fn expiry_takes_effect_at_its_instant(kit: Kit) -> Result<()> {
    for (i, ms) in [5, 20, 40].into_iter().enumerate() {
        let id = format!("just-gone-{i}");
        kit.bank
            .save("person", &id, json!({"email": "gone@x"}))
            .expires_at(in_ms(-ms))
            .await?;
        assert_err!(kit.bank.read("person", &id).await, Error::NotFound { .. });
        assert_err!(
            kit.bank.update("person", &id, json!({})).await,
            Error::NotFound { .. }
        );
    }
    assert_eq!(kit.bank.count("person").await?, 0);
    let hits = kit
        .bank
        .search("person", &Criteria::new().eq("email", "gone@x"))
        .await?;
    assert!(hits.is_empty(), "expired records found: {hits:?}");
    // And one that expires while the behaviour waits: gone right after its instant.
    let soon = in_ms(300);
    kit.bank
        .save("person", "soon", json!({}))
        .expires_at(soon)
        .await?;
    sleep_past(soon).await;
    assert_err!(
        kit.bank.read("person", "soon").await,
        Error::NotFound { .. }
    );
    Ok(())
}

/// Expired records are left out of search, scan and count, before any purge.
pub async fn expired_records_are_invisible_to_search_scan_and_count(kit: Kit) -> Result<()> {
    kit.bank
        .create("person", "live", json!({"email": "same@x"}))
        .expires_at(in_ms(3_600_000))
        .await?;
    kit.bank
        .create("person", "gone", json!({"email": "same@x"}))
        .expires_at(in_ms(-1_000))
        .await?;
    let soon = in_ms(1_500);
    kit.bank
        .save("person", "soon", json!({"email": "same@x"}))
        .expires_at(soon)
        .await?;
    sleep_past(soon).await;
    let hits = kit
        .bank
        .search("person", &Criteria::new().eq("email", "same@x"))
        .await?;
    assert_eq!(ids(hits), ["live"]);
    assert_eq!(scan_ids(&kit.bank, "person").await?, ["live"]);
    assert_eq!(kit.bank.count("person").await?, 1);
    Ok(())
}

/// `create` over an expired record succeeds, as if it were gone.
pub async fn create_over_an_expired_record_succeeds(kit: Kit) -> Result<()> {
    kit.bank
        .create("thing", "x", json!({"v": 1}))
        .expires_at(in_ms(-1_000))
        .await?;
    kit.bank.create("thing", "x", json!({"v": 2})).await?;
    assert_eq!(kit.bank.read("thing", "x").await?.value, json!({"v": 2}));
    Ok(())
}

/// `update`, `update_if`, `delete` and `touch` treat an expired record as missing.
pub async fn update_of_an_expired_record_is_not_found(kit: Kit) -> Result<()> {
    let soon = in_ms(200);
    let revision = kit
        .bank
        .create("thing", "x", json!({"v": 1}))
        .expires_at(soon)
        .await?;
    sleep_past(soon).await;
    assert_err!(
        kit.bank.update("thing", "x", json!({"v": 2})).await,
        Error::NotFound { .. }
    );
    assert_err!(
        kit.bank
            .update_if("thing", "x", json!({"v": 2}), revision)
            .await,
        Error::NotFound { .. }
    );
    assert_err!(
        kit.bank.touch("thing", "x", None).await,
        Error::NotFound { .. }
    );
    assert_err!(kit.bank.delete("thing", "x").await, Error::NotFound { .. });
    Ok(())
}

/// `read` reports the expiry written, to the millisecond.
pub async fn read_reports_the_expiry(kit: Kit) -> Result<()> {
    let expiry = in_ms(3_600_000);
    kit.bank
        .create("thing", "x", json!({}))
        .expires_at(expiry)
        .await?;
    let read = kit.bank.read("thing", "x").await?.expires_at;
    assert_eq!(
        read.map(|t| t.timestamp_millis()),
        expiry.map(|t| t.timestamp_millis())
    );
    Ok(())
}

/// `touch` moves the expiry later and keeps the value.
pub async fn touch_extends_the_expiry(kit: Kit) -> Result<()> {
    let soon = in_ms(SHORT_LIFE_MS);
    kit.bank
        .create("thing", "x", json!({"v": 1}))
        .expires_at(soon)
        .await?;
    let later = in_ms(3_600_000);
    kit.bank.touch("thing", "x", later).await?;
    sleep_past(soon).await;
    let record = kit.bank.read("thing", "x").await?;
    assert_eq!(record.value, json!({"v": 1}));
    assert_eq!(
        record.expires_at.map(|t| t.timestamp_millis()),
        later.map(|t| t.timestamp_millis())
    );
    Ok(())
}

/// `touch` changes the expiry, not the value: the revision stays, so `update_if` still works.
pub async fn touch_keeps_the_revision(kit: Kit) -> Result<()> {
    let revision = kit
        .bank
        .create("thing", "x", json!({"v": 1}))
        .expires_at(in_ms(60_000))
        .await?;
    kit.bank.touch("thing", "x", in_ms(3_600_000)).await?;
    assert_eq!(kit.bank.read("thing", "x").await?.revision, revision);
    kit.bank
        .update_if("thing", "x", json!({"v": 2}), revision)
        .await?;
    Ok(())
}

/// `touch` with `None` makes a record permanent.
pub async fn touch_can_clear_the_expiry(kit: Kit) -> Result<()> {
    let soon = in_ms(SHORT_LIFE_MS);
    kit.bank
        .create("thing", "x", json!({"v": 1}))
        .expires_at(soon)
        .await?;
    kit.bank.touch("thing", "x", None).await?;
    sleep_past(soon).await;
    let record = kit.bank.read("thing", "x").await?;
    assert_eq!(record.expires_at, None);
    assert_eq!(kit.bank.purge_expired("thing").await?, 0);
    assert!(kit.bank.read("thing", "x").await.is_ok());
    Ok(())
}

/// `touch` of a missing record is `NotFound` and creates nothing.
pub async fn touch_missing_is_not_found(kit: Kit) -> Result<()> {
    assert_err!(
        kit.bank.touch("thing", "nope", in_ms(1_000)).await,
        Error::NotFound { .. }
    );
    assert_err!(kit.bank.read("thing", "nope").await, Error::NotFound { .. });
    Ok(())
}

/// `purge_expired` deletes the expired records of one type, counts them (those the backend's TTL
/// has not already removed), and leaves live, permanent and other types' records alone.
pub async fn purge_expired_counts_what_it_deletes(kit: Kit) -> Result<()> {
    for i in 0..5 {
        kit.bank
            .create("session", &format!("old{i}"), json!({"user": "u"}))
            .expires_at(in_ms(-1_000))
            .await?;
    }
    for i in 0..3 {
        kit.bank
            .create("session", &format!("live{i}"), json!({"user": "u"}))
            .expires_at(in_ms(3_600_000))
            .await?;
    }
    kit.bank
        .create("session", "forever", json!({"user": "u"}))
        .await?;
    kit.bank
        .create("thing", "old", json!({}))
        .expires_at(in_ms(-1_000))
        .await?;
    let purged = kit.bank.purge_expired("session").await?;
    if kit.bank.capabilities().native_expiry {
        assert!(purged <= 5, "purged {purged} of 5 expired");
    } else {
        assert_eq!(purged, 5);
    }
    assert_eq!(kit.bank.purge_expired("session").await?, 0);
    assert_eq!(kit.bank.count("session").await?, 4);
    let hits = kit
        .bank
        .search("session", &Criteria::new().eq("user", "u"))
        .await?;
    assert_eq!(ids(hits), ["forever", "live0", "live1", "live2"]);
    Ok(())
}

/// `count_expired` counts the expired records a purge would remove, of that type only, and
/// none once purged; a driver that cannot tell says `Unsupported` and its capability says so.
pub async fn count_expired_counts_what_a_purge_removes(kit: Kit) -> Result<()> {
    kit.bank
        .create("session", "live", json!({}))
        .expires_at(in_ms(3_600_000))
        .await?;
    kit.bank.create("session", "forever", json!({})).await?;
    let native = kit.bank.capabilities().native_expiry;
    let mut waiting = 0;
    for round in 0..2 {
        // Written before they expire, so that no write meets them expired (a driver that
        // sweeps expired bookkeeping on writes sweeps none of these), then waited out.
        let expiry = in_ms(SHORT_LIFE_MS);
        for i in 0..4 {
            kit.bank
                .create("session", &format!("old{round}-{i}"), json!({}))
                .expires_at(expiry)
                .await?;
        }
        kit.bank
            .create("thing", &format!("old{round}"), json!({}))
            .expires_at(expiry)
            .await?;
        sleep_past(expiry).await;
        waiting = match kit.bank.count_expired("session").await {
            Err(Error::Unsupported(_)) if !kit.bank.capabilities().supports_count_expired => {
                kit.skip("the driver cannot count expired records (supports_count_expired is off)");
                return Ok(());
            }
            other => other?,
        };
        // A backend's own expiry (a TTL monitor) may remove some between their expiry and this
        // count, but not in two rounds running, each counted milliseconds after the expiry: a
        // driver that counts fewer twice fails. The second round starts from a purge.
        if waiting == 4 || !native {
            break;
        }
        kit.bank.purge_expired("session").await?;
    }
    assert_eq!(waiting, 4, "counted {waiting} of 4 expired records");
    assert_eq!(kit.bank.count_expired("nothing").await?, 0);
    assert_eq!(kit.bank.count("session").await?, 2);
    let purged = kit.bank.purge_expired("session").await?;
    if native {
        // The backend may have deleted the records itself; the purge counts only its own.
        assert!(purged <= waiting, "purged {purged}, counted {waiting}");
    } else {
        assert_eq!(purged, waiting, "purge removed what count_expired counted");
    }
    assert_eq!(kit.bank.count_expired("session").await?, 0);
    assert_eq!(kit.bank.count("session").await?, 2);
    Ok(())
}

/// Counter and list operations keep the record's expiry.
pub async fn counters_and_lists_keep_the_expiry(kit: Kit) -> Result<()> {
    let expiry = in_ms(3_600_000);
    let millis = expiry.map(|t| t.timestamp_millis());
    kit.bank
        .create("counter", "c", json!(1))
        .expires_at(expiry)
        .await?;
    kit.bank.incr("counter", "c").await?;
    let after = kit.bank.read("counter", "c").await?.expires_at;
    assert_eq!(after.map(|t| t.timestamp_millis()), millis);
    kit.bank
        .create("list", "l", json!([1]))
        .expires_at(expiry)
        .await?;
    kit.bank.append("list", "l", json!(2)).await?;
    kit.bank.remove("list", "l", &json!(1)).await?;
    let after = kit.bank.read("list", "l").await?.expires_at;
    assert_eq!(after.map(|t| t.timestamp_millis()), millis);
    Ok(())
}
