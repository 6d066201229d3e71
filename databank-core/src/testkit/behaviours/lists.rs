use serde_json::json;

use super::assert_err;
use crate::testkit::Kit;
use crate::{Error, Result};

/// `incr` on a missing key gives 1, then 2.
pub async fn incr_missing_starts_at_zero(kit: Kit) -> Result<()> {
    assert_eq!(kit.bank.incr("counter", "c").await?, 1);
    assert_eq!(kit.bank.incr("counter", "c").await?, 2);
    assert_eq!(kit.bank.read("counter", "c").await?.value, json!(2));
    Ok(())
}

/// `decr` on a missing key gives -1.
pub async fn decr_goes_below_zero(kit: Kit) -> Result<()> {
    assert_eq!(kit.bank.decr("counter", "c").await?, -1);
    assert_eq!(kit.bank.decr("counter", "c").await?, -2);
    Ok(())
}

/// `incr_by` adds any delta to a stored integer.
pub async fn incr_by_adds_the_delta(kit: Kit) -> Result<()> {
    kit.bank.create("counter", "c", json!(40)).await?;
    assert_eq!(kit.bank.incr_by("counter", "c", 2).await?, 42);
    assert_eq!(kit.bank.incr_by("counter", "c", -50).await?, -8);
    assert_eq!(kit.bank.read("counter", "c").await?.value, json!(-8));
    Ok(())
}

/// Counting on a string, float, object or array is `WrongType` and changes nothing.
pub async fn incr_non_integer_is_wrong_type(kit: Kit) -> Result<()> {
    for (id, value) in [
        ("s", json!("1")),
        ("f", json!(1.5)),
        ("o", json!({"n": 1})),
        ("a", json!([1])),
    ] {
        kit.bank.create("counter", id, value.clone()).await?;
        assert_err!(kit.bank.incr("counter", id).await, Error::WrongType { .. });
        assert_eq!(kit.bank.read("counter", id).await?.value, value);
    }
    Ok(())
}

/// A sum outside `i64` is `WrongType`, not a wrapped number.
pub async fn incr_overflow_is_wrong_type(kit: Kit) -> Result<()> {
    kit.bank.create("counter", "big", json!(i64::MAX)).await?;
    assert!(kit.bank.incr("counter", "big").await.is_err());
    assert_eq!(
        kit.bank.read("counter", "big").await?.value,
        json!(i64::MAX)
    );
    Ok(())
}

/// 64 tasks × 25 `incr` on one key give exactly 1,600. The 64-way contention is what finds a
/// lost increment; the count stays small enough for the slow MongoDB test server on a busy
/// machine (6,400 took longer than the behaviour timeout there).
pub async fn concurrent_incr_loses_no_increment(kit: Kit) -> Result<()> {
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let bank = kit.bank.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                bank.incr("counter", "hot").await?;
            }
            Ok::<_, Error>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| Error::backend("testkit", e))??;
    }
    assert_eq!(kit.bank.read("counter", "hot").await?.value, json!(1600));
    Ok(())
}

/// `append` adds at the end, `prepend` at the start; both return the new length.
pub async fn append_and_prepend(kit: Kit) -> Result<()> {
    kit.bank.create("list", "l", json!([2])).await?;
    assert_eq!(kit.bank.append("list", "l", json!(3)).await?, 2);
    assert_eq!(kit.bank.prepend("list", "l", json!(1)).await?, 3);
    assert_eq!(kit.bank.append("list", "l", json!({"four": [4]})).await?, 4);
    assert_eq!(
        kit.bank.read("list", "l").await?.value,
        json!([1, 2, 3, {"four": [4]}])
    );
    Ok(())
}

/// `append` and `prepend` on a missing key start from `[]`.
pub async fn append_to_missing_creates_a_list(kit: Kit) -> Result<()> {
    assert_eq!(kit.bank.append("list", "a", json!("x")).await?, 1);
    assert_eq!(kit.bank.prepend("list", "p", json!("y")).await?, 1);
    assert_eq!(kit.bank.read("list", "a").await?.value, json!(["x"]));
    assert_eq!(kit.bank.read("list", "p").await?.value, json!(["y"]));
    Ok(())
}

/// Every list operation on a non-array value is `WrongType`, and nothing changes.
pub async fn list_ops_on_a_non_array_are_wrong_type(kit: Kit) -> Result<()> {
    kit.bank.create("list", "o", json!({"a": 1})).await?;
    assert_err!(
        kit.bank.append("list", "o", json!(1)).await,
        Error::WrongType { .. }
    );
    assert_err!(
        kit.bank.prepend("list", "o", json!(1)).await,
        Error::WrongType { .. }
    );
    assert_err!(
        kit.bank.remove("list", "o", &json!(1)).await,
        Error::WrongType { .. }
    );
    assert_err!(kit.bank.item("list", "o", 0).await, Error::WrongType { .. });
    assert_err!(
        kit.bank.slice("list", "o", 0, 1).await,
        Error::WrongType { .. }
    );
    assert_err!(
        kit.bank.index_of("list", "o", &json!(1)).await,
        Error::WrongType { .. }
    );
    assert_err!(kit.bank.length("list", "o").await, Error::WrongType { .. });
    assert_eq!(kit.bank.read("list", "o").await?.value, json!({"a": 1}));
    Ok(())
}

/// `item` past the end, or on a missing list, is `NoSuchItem`.
pub async fn item_out_of_range_is_no_such_item(kit: Kit) -> Result<()> {
    kit.bank.create("list", "l", json!(["a", "b"])).await?;
    assert_eq!(kit.bank.item("list", "l", 1).await?, json!("b"));
    assert_err!(
        kit.bank.item("list", "l", 2).await,
        Error::NoSuchItem { index: 2, .. }
    );
    assert_err!(
        kit.bank.item("list", "missing", 0).await,
        Error::NoSuchItem { .. }
    );
    Ok(())
}

/// `slice(start, end)` is the half-open range cut to fit the list.
pub async fn slice_clamps_to_the_list(kit: Kit) -> Result<()> {
    kit.bank.create("list", "l", json!([0, 1, 2, 3, 4])).await?;
    assert_eq!(
        kit.bank.slice("list", "l", 1, 3).await?,
        [json!(1), json!(2)]
    );
    assert_eq!(
        kit.bank.slice("list", "l", 3, 100).await?,
        [json!(3), json!(4)]
    );
    assert!(kit.bank.slice("list", "l", 4, 2).await?.is_empty());
    assert!(kit.bank.slice("list", "l", 10, 20).await?.is_empty());
    assert!(kit.bank.slice("list", "missing", 0, 2).await?.is_empty());
    Ok(())
}

/// `index_of` compares items as JSON values, deeply and typed.
pub async fn index_of_uses_deep_equality(kit: Kit) -> Result<()> {
    kit.bank
        .create(
            "list",
            "l",
            json!([1, "1", {"a": [1, {"b": 2}]}, {"a": [1, {"b": 2}]}]),
        )
        .await?;
    assert_eq!(kit.bank.index_of("list", "l", &json!("1")).await?, Some(1));
    assert_eq!(
        kit.bank
            .index_of("list", "l", &json!({"a": [1, {"b": 2}]}))
            .await?,
        Some(2)
    );
    assert_eq!(
        kit.bank.index_of("list", "l", &json!({"a": [1]})).await?,
        None
    );
    assert_eq!(kit.bank.index_of("list", "l", &json!(true)).await?, None);
    Ok(())
}

/// `remove` takes out the first deep-equal item only.
pub async fn remove_takes_the_first_occurrence(kit: Kit) -> Result<()> {
    kit.bank
        .create("list", "l", json!(["a", {"x": 1}, "b", {"x": 1}]))
        .await?;
    assert!(kit.bank.remove("list", "l", &json!({"x": 1})).await?);
    assert_eq!(
        kit.bank.read("list", "l").await?.value,
        json!(["a", "b", {"x": 1}])
    );
    Ok(())
}

/// Removing an absent member (or from a missing list) is `Ok(false)` and changes nothing.
pub async fn remove_absent_member_is_ok(kit: Kit) -> Result<()> {
    kit.bank.create("list", "l", json!([1, 2])).await?;
    assert!(!kit.bank.remove("list", "l", &json!("1")).await?);
    assert!(!kit.bank.remove("list", "missing", &json!(1)).await?);
    assert_eq!(kit.bank.read("list", "l").await?.value, json!([1, 2]));
    assert_err!(
        kit.bank.read("list", "missing").await,
        Error::NotFound { .. }
    );
    Ok(())
}

/// `length` of a missing list is 0; of a list, its item count.
pub async fn length_of_missing_is_zero(kit: Kit) -> Result<()> {
    assert_eq!(kit.bank.length("list", "missing").await?, 0);
    kit.bank.create("list", "l", json!([1, [2, 3], 4])).await?;
    assert_eq!(kit.bank.length("list", "l").await?, 3);
    Ok(())
}

/// 32 tasks appending distinct items at once lose none.
pub async fn concurrent_appends_lose_nothing(kit: Kit) -> Result<()> {
    let mut tasks = Vec::new();
    for t in 0..32 {
        let bank = kit.bank.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..5 {
                bank.append("list", "shared", json!(format!("{t}-{i}")))
                    .await?;
            }
            Ok::<_, Error>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| Error::backend("testkit", e))??;
    }
    let mut items = kit.bank.list("list", "shared").await?;
    items.sort_by_key(|v| v.to_string());
    items.dedup();
    assert_eq!(items.len(), 160);
    Ok(())
}
