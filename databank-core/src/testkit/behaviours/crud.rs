use serde_json::json;

use super::assert_err;
use crate::testkit::Kit;
use crate::{Error, Result};

/// A created record reads back equal, with no expiry.
pub async fn create_then_read(kit: Kit) -> Result<()> {
    let value = json!({"name": "Ada", "tags": ["a", "b"], "n": 1});
    kit.bank.create("thing", "1", value.clone()).await?;
    let record = kit.bank.read("thing", "1").await?;
    assert_eq!(record.value, value);
    assert_eq!(record.expires_at, None);
    Ok(())
}

/// `create` over a live record fails with `AlreadyExists` and keeps the first value.
pub async fn create_existing_is_already_exists(kit: Kit) -> Result<()> {
    kit.bank.create("thing", "1", json!({"v": 1})).await?;
    assert_err!(
        kit.bank.create("thing", "1", json!({"v": 2})).await,
        Error::AlreadyExists { .. }
    );
    assert_eq!(kit.bank.read("thing", "1").await?.value, json!({"v": 1}));
    Ok(())
}

/// The revision `create` returns is the one `read` reports.
pub async fn create_returns_the_revision_read_sees(kit: Kit) -> Result<()> {
    let revision = kit.bank.create("thing", "1", json!({})).await?;
    assert_eq!(kit.bank.read("thing", "1").await?.revision, revision);
    Ok(())
}

/// Reading an id never written is `NotFound` naming the type and id.
pub async fn read_missing_is_not_found(kit: Kit) -> Result<()> {
    match kit.bank.read("thing", "nope").await {
        Err(Error::NotFound { kind, id }) => {
            assert_eq!((kind.as_str(), id.as_str()), ("thing", "nope"));
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    Ok(())
}

/// `update` replaces the whole value: fields absent from the new value are gone.
pub async fn update_replaces_the_whole_value(kit: Kit) -> Result<()> {
    kit.bank
        .create("thing", "1", json!({"a": 1, "b": 2}))
        .await?;
    kit.bank.update("thing", "1", json!({"c": 3})).await?;
    assert_eq!(kit.bank.read("thing", "1").await?.value, json!({"c": 3}));
    Ok(())
}

/// `update` of a missing record fails and creates nothing.
pub async fn update_missing_is_not_found(kit: Kit) -> Result<()> {
    assert_err!(
        kit.bank.update("thing", "ghost", json!({"a": 1})).await,
        Error::NotFound { .. }
    );
    assert_err!(
        kit.bank.read("thing", "ghost").await,
        Error::NotFound { .. }
    );
    Ok(())
}

/// `update` of a missing record of an indexed type fails and leaves no index entry behind.
pub async fn update_missing_indexed_type_is_not_found(kit: Kit) -> Result<()> {
    assert_err!(
        kit.bank
            .update("person", "ghost", json!({"email": "g@x"}))
            .await,
        Error::NotFound { .. }
    );
    let hits = kit
        .bank
        .search("person", &crate::Criteria::new().eq("email", "g@x"))
        .await?;
    assert!(hits.is_empty(), "stale index entry: {hits:?}");
    Ok(())
}

/// Every write gives a new revision.
pub async fn update_changes_the_revision(kit: Kit) -> Result<()> {
    let first = kit.bank.create("thing", "1", json!({"v": 1})).await?;
    let second = kit.bank.update("thing", "1", json!({"v": 2})).await?;
    let third = kit.bank.save("thing", "1", json!({"v": 3})).await?;
    assert_ne!(first, second);
    assert_ne!(second, third);
    assert_ne!(first, third);
    Ok(())
}

/// `save` of a missing id creates it.
pub async fn save_creates_a_missing_record(kit: Kit) -> Result<()> {
    kit.bank.save("thing", "1", json!({"v": 1})).await?;
    assert_eq!(kit.bank.read("thing", "1").await?.value, json!({"v": 1}));
    Ok(())
}

/// `save` of an existing id replaces it.
pub async fn save_replaces_an_existing_record(kit: Kit) -> Result<()> {
    kit.bank
        .create("thing", "1", json!({"v": 1, "old": true}))
        .await?;
    kit.bank.save("thing", "1", json!({"v": 2})).await?;
    assert_eq!(kit.bank.read("thing", "1").await?.value, json!({"v": 2}));
    Ok(())
}

/// 32 tasks saving the same new id at once all succeed, and one of their values wins whole.
pub async fn concurrent_saves_of_one_id_never_fail(kit: Kit) -> Result<()> {
    let mut tasks = Vec::new();
    for i in 0..32 {
        let bank = kit.bank.clone();
        tasks.push(tokio::spawn(async move {
            bank.save("person", "same", json!({"email": format!("{i}@x"), "i": i}))
                .await
        }));
    }
    for task in tasks {
        task.await.map_err(|e| Error::backend("testkit", e))??;
    }
    let value = kit.bank.read("person", "same").await?.value;
    let i = value["i"].as_i64().unwrap_or(-1);
    assert!((0..32).contains(&i), "torn value {value}");
    assert_eq!(value["email"], json!(format!("{i}@x")));
    let all = kit.bank.search("person", &crate::Criteria::new()).await?;
    assert_eq!(all.len(), 1, "one id, one record: {all:?}");
    Ok(())
}

/// 64 tasks saving distinct ids at once all land.
pub async fn concurrent_saves_of_distinct_ids_all_land(kit: Kit) -> Result<()> {
    let mut tasks = Vec::new();
    for i in 0..64 {
        let bank = kit.bank.clone();
        tasks.push(tokio::spawn(async move {
            bank.save("thing", &format!("id{i}"), json!({"i": i})).await
        }));
    }
    for task in tasks {
        task.await.map_err(|e| Error::backend("testkit", e))??;
    }
    for i in 0..64 {
        assert_eq!(
            kit.bank.read("thing", &format!("id{i}")).await?.value,
            json!({"i": i})
        );
    }
    assert_eq!(kit.bank.count("thing").await?, 64);
    Ok(())
}

/// A deleted record is gone.
pub async fn delete_removes_the_record(kit: Kit) -> Result<()> {
    kit.bank.create("thing", "1", json!({})).await?;
    kit.bank.create("thing", "2", json!({})).await?;
    kit.bank.delete("thing", "1").await?;
    assert_err!(kit.bank.read("thing", "1").await, Error::NotFound { .. });
    assert!(
        kit.bank.read("thing", "2").await.is_ok(),
        "delete touched another record"
    );
    Ok(())
}

/// Deleting a missing record is `NotFound`.
pub async fn delete_missing_is_not_found(kit: Kit) -> Result<()> {
    assert_err!(
        kit.bank.delete("thing", "nope").await,
        Error::NotFound { .. }
    );
    Ok(())
}

/// After a delete, `create` of the same id works.
pub async fn delete_then_create_again(kit: Kit) -> Result<()> {
    kit.bank
        .create("person", "1", json!({"email": "a@x"}))
        .await?;
    kit.bank.delete("person", "1").await?;
    kit.bank
        .create("person", "1", json!({"email": "b@x"}))
        .await?;
    assert_eq!(
        kit.bank.read("person", "1").await?.value,
        json!({"email": "b@x"})
    );
    Ok(())
}

/// The same id in two types is two records.
pub async fn types_are_isolated(kit: Kit) -> Result<()> {
    kit.bank.create("thing", "x", json!({"t": "thing"})).await?;
    kit.bank
        .create("person", "x", json!({"t": "person"}))
        .await?;
    kit.bank.delete("thing", "x").await?;
    assert_eq!(
        kit.bank.read("person", "x").await?.value,
        json!({"t": "person"})
    );
    Ok(())
}

/// `read_all` gives every asked id, `None` for the missing ones.
pub async fn read_all_maps_missing_ids_to_none(kit: Kit) -> Result<()> {
    kit.bank.create("thing", "a", json!({"v": "a"})).await?;
    kit.bank.create("thing", "b", json!({"v": "b"})).await?;
    let all = kit.bank.read_all("thing", &["a", "b", "c"]).await?;
    assert_eq!(all.len(), 3);
    assert_eq!(all.get("a"), Some(&Some(json!({"v": "a"}))));
    assert_eq!(all.get("b"), Some(&Some(json!({"v": "b"}))));
    assert_eq!(all.get("c"), Some(&None));
    Ok(())
}

/// `read_all` of no ids is an empty map.
pub async fn read_all_of_no_ids_is_empty(kit: Kit) -> Result<()> {
    assert!(kit.bank.read_all("thing", &[]).await?.is_empty());
    Ok(())
}

/// `update_if` with the revision just read succeeds and returns a new one.
pub async fn update_if_at_current_revision_succeeds(kit: Kit) -> Result<()> {
    kit.bank.create("thing", "1", json!({"v": 1})).await?;
    let read = kit.bank.read("thing", "1").await?;
    let new = kit
        .bank
        .update_if("thing", "1", json!({"v": 2}), read.revision)
        .await?;
    assert_ne!(new, read.revision);
    let after = kit.bank.read("thing", "1").await?;
    assert_eq!((after.value, after.revision), (json!({"v": 2}), new));
    Ok(())
}

/// `update_if` with a revision another write replaced fails with `Conflict` and changes nothing.
pub async fn update_if_at_stale_revision_conflicts(kit: Kit) -> Result<()> {
    kit.bank.create("thing", "1", json!({"v": 1})).await?;
    let stale = kit.bank.read("thing", "1").await?.revision;
    kit.bank.save("thing", "1", json!({"v": 2})).await?;
    assert_err!(
        kit.bank
            .update_if("thing", "1", json!({"v": 3}), stale)
            .await,
        Error::Conflict { .. }
    );
    assert_eq!(kit.bank.read("thing", "1").await?.value, json!({"v": 2}));
    Ok(())
}

/// `update_if` on a deleted record is `NotFound`, and does not recreate it.
pub async fn update_if_missing_is_not_found(kit: Kit) -> Result<()> {
    let revision = kit.bank.create("thing", "1", json!({"v": 1})).await?;
    kit.bank.delete("thing", "1").await?;
    assert_err!(
        kit.bank
            .update_if("thing", "1", json!({"v": 2}), revision)
            .await,
        Error::NotFound { .. }
    );
    assert_err!(kit.bank.read("thing", "1").await, Error::NotFound { .. });
    Ok(())
}

/// 16 tasks each adding 10 distinct keys through read/`update_if` retry loops lose none.
pub async fn update_if_loops_lose_no_update(kit: Kit) -> Result<()> {
    kit.bank.create("thing", "doc", json!({})).await?;
    let mut tasks = Vec::new();
    for t in 0..16 {
        let bank = kit.bank.clone();
        tasks.push(tokio::spawn(async move {
            for k in 0..10 {
                loop {
                    let record = bank.read("thing", "doc").await?;
                    let mut value = record.value;
                    if let Some(map) = value.as_object_mut() {
                        map.insert(format!("t{t}k{k}"), json!(true));
                    }
                    match bank.update_if("thing", "doc", value, record.revision).await {
                        Ok(_) => break,
                        Err(Error::Conflict { .. }) => tokio::task::yield_now().await,
                        Err(e) => return Err(e),
                    }
                }
            }
            Ok::<_, Error>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| Error::backend("testkit", e))??;
    }
    let value = kit.bank.read("thing", "doc").await?.value;
    assert_eq!(
        value.as_object().map(|m| m.len()),
        Some(160),
        "lost updates: {value}"
    );
    Ok(())
}

/// `close` makes every later call fail with `Closed`, on every clone of the handle.
pub async fn close_then_use_is_closed(kit: Kit) -> Result<()> {
    kit.bank.create("thing", "1", json!({})).await?;
    let other = kit.bank.clone();
    kit.bank.close().await?;
    assert_err!(other.read("thing", "1").await, Error::Closed);
    assert_err!(other.save("thing", "2", json!({})).await, Error::Closed);
    assert_err!(other.incr_by("counter", "c", 1).await, Error::Closed);
    assert_err!(other.count("thing").await, Error::Closed);
    Ok(())
}

/// Closing twice is fine.
pub async fn close_is_idempotent(kit: Kit) -> Result<()> {
    kit.bank.close().await?;
    kit.bank.close().await?;
    Ok(())
}

/// A persistent driver's records, revisions and expiries survive reopening; others report
/// this behaviour skipped.
pub async fn reopen_keeps_records(kit: Kit) -> Result<()> {
    if !kit.bank.capabilities().persistent {
        kit.skip("the driver is not persistent");
        return Ok(());
    }
    let expiry = crate::testkit::in_ms(3_600_000);
    kit.bank
        .save("person", "p", json!({"email": "p@x"}))
        .expires_at(expiry)
        .await?;
    kit.bank.incr_by("counter", "c", 5).await?;
    let before = kit.bank.read("person", "p").await?;
    kit.bank.close().await?;
    let again = kit.reopen().await?;
    let after = again.read("person", "p").await?;
    assert_eq!(after.value, before.value);
    assert_eq!(after.revision, before.revision);
    let millis = |r: &crate::Record| r.expires_at.map(|t| t.timestamp_millis());
    assert_eq!(millis(&after), millis(&before));
    assert_eq!(again.incr_by("counter", "c", 1).await?, 6);
    let hits = again
        .search("person", &crate::Criteria::new().eq("email", "p@x"))
        .await?;
    assert_eq!(hits.len(), 1);
    again.close().await
}

/// `delete` of a missing id in a type that holds other records is `NotFound` and deletes
/// nothing else.
pub async fn delete_missing_among_others_is_not_found(kit: Kit) -> Result<()> {
    kit.bank.create("thing", "a", json!({"v": 1})).await?;
    kit.bank.create("thing", "b", json!({"v": 2})).await?;
    assert_err!(kit.bank.delete("thing", "c").await, Error::NotFound { .. });
    assert_err!(kit.bank.delete("thing", "A").await, Error::NotFound { .. });
    assert_eq!(kit.bank.count("thing").await?, 2);
    assert_eq!(kit.bank.read("thing", "a").await?.value, json!({"v": 1}));
    Ok(())
}
