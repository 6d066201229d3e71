//! Patches: some top-level keys of an object record set or removed in one atomic step.

use std::future::IntoFuture;

use serde_json::{json, Value};

use super::{assert_err, ids};
use crate::testkit::{in_ms, sleep_past, Kit, SHORT_LIFE_MS};
use crate::validate::{MAX_DEPTH, MAX_VALUE_BYTES};
use crate::{Criteria, Error, Result};

/// A patch sets and removes the keys it names and leaves the others as they were.
pub async fn patch_sets_and_removes_keys(kit: Kit) -> Result<()> {
    kit.bank
        .create(
            "doc",
            "d",
            json!({"keep": [1, {"x": null}], "drop": 2, "change": 3}),
        )
        .await?;
    kit.bank
        .patch("doc", "d")
        .set("change", json!({"now": 30}))
        .set("new", "n")
        .remove("drop")
        .await?;
    assert_eq!(
        kit.bank.read("doc", "d").await?.value,
        json!({"keep": [1, {"x": null}], "change": {"now": 30}, "new": "n"})
    );
    Ok(())
}

/// A patch of a missing record creates it from `{}`, with no expiry; with `must_exist` it is
/// `NotFound` and creates nothing.
pub async fn patch_creates_a_missing_record_unless_told_not_to(kit: Kit) -> Result<()> {
    assert_err!(
        kit.bank
            .patch("doc", "absent")
            .set("a", 1)
            .must_exist()
            .await,
        Error::NotFound { .. }
    );
    assert_err!(kit.bank.read("doc", "absent").await, Error::NotFound { .. });
    let revision = kit.bank.patch("doc", "new").set("a", 1).remove("b").await?;
    let record = kit.bank.read("doc", "new").await?;
    assert_eq!(record.value, json!({"a": 1}));
    assert_eq!(record.revision, revision);
    assert_eq!(record.expires_at, None);
    Ok(())
}

/// An expired record counts as missing: `must_exist` is `NotFound`, and a creating patch starts
/// from `{}` (none of the expired keys come back).
pub async fn patch_of_an_expired_record_starts_afresh(kit: Kit) -> Result<()> {
    let expiry = in_ms(SHORT_LIFE_MS);
    for id in ["a", "b"] {
        kit.bank
            .create("doc", id, json!({"old": true}))
            .expires_at(expiry)
            .await?;
    }
    sleep_past(expiry).await;
    assert_err!(
        kit.bank.patch("doc", "a").set("new", 1).must_exist().await,
        Error::NotFound { .. }
    );
    assert_err!(kit.bank.read("doc", "a").await, Error::NotFound { .. });
    kit.bank.patch("doc", "b").set("new", 1).await?;
    let record = kit.bank.read("doc", "b").await?;
    assert_eq!(record.value, json!({"new": 1}));
    assert_eq!(record.expires_at, None);
    Ok(())
}

/// Removing a key the record lacks is no error and changes no other key.
pub async fn patch_removing_a_missing_key_is_ok(kit: Kit) -> Result<()> {
    kit.bank.create("doc", "d", json!({"a": 1})).await?;
    kit.bank
        .patch("doc", "d")
        .remove("nope")
        .must_exist()
        .await?;
    assert_eq!(kit.bank.read("doc", "d").await?.value, json!({"a": 1}));
    Ok(())
}

/// Keys with `.`, `$`, the empty key, NUL, `_id`, and 1 KiB names are set, read back and
/// removed exactly, next to keys that look like their escapes.
pub async fn patch_of_odd_keys_round_trips(kit: Kit) -> Result<()> {
    let long = "k".repeat(1024);
    let odd = [
        "a.b", "$set", "", "\0", "a\0b", "_id", "%2E", "~", ".", "$", "é", &long,
    ];
    kit.bank.create("doc", "d", json!({"plain": 0})).await?;
    let mut call = kit.bank.patch("doc", "d");
    for (n, key) in odd.iter().enumerate() {
        call = call.set(*key, json!({"n": n, "x.y": {"$z": n}}));
    }
    call.await?;
    let mut expected = json!({"plain": 0});
    for (n, key) in odd.iter().enumerate() {
        expected[*key] = json!({"n": n, "x.y": {"$z": n}});
    }
    assert_eq!(kit.bank.read("doc", "d").await?.value, expected);
    let mut call = kit.bank.patch("doc", "d");
    for key in &odd[..6] {
        call = call.remove(*key);
    }
    call.await?;
    for key in &odd[..6] {
        if let Some(map) = expected.as_object_mut() {
            map.remove(*key);
        }
    }
    assert_eq!(kit.bank.read("doc", "d").await?.value, expected);
    Ok(())
}

/// Numbers and nested keys set by a patch come back exactly as given.
pub async fn patch_values_round_trip_exactly(kit: Kit) -> Result<()> {
    let values = json!({
        "max": i64::MAX, "min": i64::MIN, "umax": u64::MAX, "f": 0.1, "neg": -1.5e-300,
        "z": 0, "s": "line\n\"quoted\"\u{1}", "deep": {"a.b": [{"$k": [null, true]}]}
    });
    kit.bank.create("doc", "d", json!({"other": 1})).await?;
    let mut call = kit.bank.patch("doc", "d");
    for (key, value) in values.as_object().into_iter().flatten() {
        call = call.set(key.clone(), value.clone());
    }
    call.await?;
    let mut expected = values.clone();
    expected["other"] = json!(1);
    let back = kit.bank.read("doc", "d").await?.value;
    assert_eq!(back, expected);
    assert!(
        back["z"].is_i64() || back["z"].is_u64(),
        "0 came back as {}",
        back["z"]
    );
    Ok(())
}

/// A patch whose result would pass the size limit is `InvalidInput` and changes nothing, even
/// when each value it sets is small enough; one that stays under the limit by shrinking a key
/// succeeds. A value one level too deep for its place in the record is refused too.
pub async fn patch_past_the_size_limit_fails_and_changes_nothing(kit: Kit) -> Result<()> {
    let half = "x".repeat(MAX_VALUE_BYTES / 2);
    kit.bank
        .create("doc", "d", json!({"a": half, "n": 1}))
        .await?;
    let before = kit.bank.read("doc", "d").await?;
    assert_err!(
        kit.bank
            .patch("doc", "d")
            .set("b", half.clone())
            .set("n", 2)
            .await,
        Error::InvalidInput(_)
    );
    let after = kit.bank.read("doc", "d").await?;
    assert_eq!(after.value, before.value);
    assert_eq!(after.revision, before.revision);
    kit.bank
        .patch("doc", "d")
        .set("a", "small")
        .set("b", half)
        .await?;
    assert_eq!(kit.bank.read("doc", "d").await?.value["a"], json!("small"));
    let mut deep = json!(1);
    for _ in 0..MAX_DEPTH - 1 {
        deep = Value::Array(vec![deep]);
    }
    assert_err!(
        kit.bank.patch("doc", "d").set("deep", deep).await,
        Error::InvalidInput(_)
    );
    Ok(())
}

/// The size limit is exact for a patched record, after patches that replaced, added and
/// removed keys (one named twice): a result of exactly the limit is stored, one byte more is
/// refused.
pub async fn patch_size_limit_is_exact_after_patches(kit: Kit) -> Result<()> {
    let base = json!({"a": "", "c": 1}).to_string().len();
    kit.bank
        .create("doc", "d", json!({"a": "x", "b": "y".repeat(10), "c": 1}))
        .await?;
    kit.bank
        .patch("doc", "d")
        .remove("b")
        .remove("b")
        .set("c", 1)
        .await?;
    kit.bank
        .patch("doc", "d")
        .set("a", "x".repeat(MAX_VALUE_BYTES - base))
        .await?;
    let full = kit.bank.read("doc", "d").await?;
    assert_eq!(full.value.to_string().len(), MAX_VALUE_BYTES);
    assert_err!(
        kit.bank.patch("doc", "d").set("c", 10).await,
        Error::InvalidInput(_)
    );
    assert_eq!(kit.bank.read("doc", "d").await?.revision, full.revision);
    kit.bank.patch("doc", "d").set("c", 2).await?;
    assert_eq!(kit.bank.read("doc", "d").await?.value["c"], json!(2));
    Ok(())
}

/// A patch keeps the expiry by default, sets it when given one, and clears it with `None`
/// (compared to the millisecond, which every driver keeps).
pub async fn patch_sets_keeps_and_clears_the_expiry(kit: Kit) -> Result<()> {
    let ms = |at: crate::Expiry| at.map(|t| t.timestamp_millis());
    let first = in_ms(600_000);
    kit.bank
        .create("doc", "d", json!({}))
        .expires_at(first)
        .await?;
    kit.bank.patch("doc", "d").set("a", 1).await?;
    assert_eq!(ms(kit.bank.read("doc", "d").await?.expires_at), ms(first));
    let later = in_ms(1_200_000);
    kit.bank
        .patch("doc", "d")
        .set("a", 2)
        .expires_at(later)
        .await?;
    assert_eq!(ms(kit.bank.read("doc", "d").await?.expires_at), ms(later));
    kit.bank
        .patch("doc", "d")
        .set("a", 3)
        .expires_at(None)
        .await?;
    let record = kit.bank.read("doc", "d").await?;
    assert_eq!((record.value, record.expires_at), (json!({"a": 3}), None));
    let short = in_ms(SHORT_LIFE_MS);
    kit.bank
        .patch("doc", "d")
        .set("a", 4)
        .expires_at(short)
        .await?;
    sleep_past(short).await;
    assert_err!(kit.bank.read("doc", "d").await, Error::NotFound { .. });
    Ok(())
}

/// Every patch gives a new revision: `update_if` on the one before conflicts.
pub async fn patch_advances_the_revision(kit: Kit) -> Result<()> {
    let first = kit.bank.create("doc", "d", json!({"a": 1})).await?;
    let second = kit.bank.patch("doc", "d").set("b", 2).await?;
    assert_ne!(first, second);
    let third = kit.bank.patch("doc", "d").remove("zzz").await?;
    assert_ne!(second, third);
    assert_eq!(kit.bank.read("doc", "d").await?.revision, third);
    assert_err!(
        kit.bank.update_if("doc", "d", json!({}), second).await,
        Error::Conflict { .. }
    );
    Ok(())
}

/// A patch of a record that is not an object is `WrongType` and changes nothing; naming one
/// key both to set and to remove, an empty id or a bad type name is `InvalidInput`.
pub async fn patch_of_a_non_object_is_wrong_type(kit: Kit) -> Result<()> {
    for (id, value) in [("arr", json!([1])), ("num", json!(7)), ("str", json!("s"))] {
        kit.bank.create("doc", id, value.clone()).await?;
        assert_err!(
            kit.bank.patch("doc", id).set("a", 1).await,
            Error::WrongType { .. }
        );
        assert_eq!(kit.bank.read("doc", id).await?.value, value);
    }
    kit.bank.create("doc", "obj", json!({"a": 1})).await?;
    assert_err!(
        kit.bank.patch("doc", "obj").set("a", 2).remove("a").await,
        Error::InvalidInput(_)
    );
    assert_err!(
        kit.bank.patch("doc", "").set("a", 2).await,
        Error::InvalidInput(_)
    );
    assert_err!(
        kit.bank.patch("../doc", "obj").set("a", 2).await,
        Error::InvalidInput(_)
    );
    assert_eq!(kit.bank.read("doc", "obj").await?.value, json!({"a": 1}));
    Ok(())
}

/// 64 tasks each patch 4 distinct keys of one record at once: all 256 keys land.
pub async fn concurrent_patches_of_distinct_keys_lose_nothing(kit: Kit) -> Result<()> {
    kit.bank.create("doc", "hot", json!({"base": true})).await?;
    let mut tasks = Vec::new();
    for task in 0..64 {
        let bank = kit.bank.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..4 {
                bank.patch("doc", "hot")
                    .set(format!("k{task}.{round}"), json!([task, round]))
                    .must_exist()
                    .await?;
            }
            Ok::<_, Error>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| Error::backend("testkit", e))??;
    }
    let value = kit.bank.read("doc", "hot").await?.value;
    let map = value.as_object().cloned().unwrap_or_default();
    assert_eq!(
        map.len(),
        1 + 64 * 4,
        "keys: {:?}",
        map.keys().collect::<Vec<_>>()
    );
    for task in 0..64 {
        for round in 0..4 {
            assert_eq!(
                map.get(&format!("k{task}.{round}")),
                Some(&json!([task, round]))
            );
        }
    }
    Ok(())
}

/// A patch that must find its record, racing a delete: the delete always succeeds and the
/// record never comes back, whichever lands first.
pub async fn patch_racing_a_delete_never_revives_the_record(kit: Kit) -> Result<()> {
    for n in 0..24 {
        let id = format!("r{n}");
        kit.bank.create("doc", &id, json!({"user": "ada"})).await?;
        let (patched, deleted) = tokio::join!(
            kit.bank
                .patch("doc", &id)
                .set("cart", n)
                .must_exist()
                .into_future(),
            kit.bank.delete("doc", &id)
        );
        deleted?;
        match patched {
            Ok(_) | Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        assert_err!(kit.bank.read("doc", &id).await, Error::NotFound { .. });
    }
    Ok(())
}

/// Search sees what a patch set, and not what it replaced or removed (`session` indexes `user`).
pub async fn patch_updates_what_search_finds(kit: Kit) -> Result<()> {
    kit.bank
        .create("session", "s", json!({"user": "ada", "n": 1}))
        .await?;
    kit.bank.patch("session", "s").set("user", "alan").await?;
    let by = |user: &str| Criteria::new().eq("user", user.to_owned());
    assert!(kit.bank.search("session", &by("ada")).await?.is_empty());
    assert_eq!(ids(kit.bank.search("session", &by("alan")).await?), ["s"]);
    kit.bank.patch("session", "s").set("n", 2).await?;
    assert_eq!(ids(kit.bank.search("session", &by("alan")).await?), ["s"]);
    kit.bank.patch("session", "s").remove("user").await?;
    assert!(kit.bank.search("session", &by("alan")).await?.is_empty());
    assert_eq!(
        ids(kit
            .bank
            .search("session", &Criteria::new().eq("n", 2))
            .await?),
        ["s"]
    );
    Ok(())
}
