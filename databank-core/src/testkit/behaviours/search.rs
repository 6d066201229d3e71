use serde_json::json;

use super::{assert_err, ids, scan_ids};
use crate::testkit::Kit;
use crate::{Criteria, Error, Result};

async fn people(kit: &Kit) -> Result<()> {
    let rows = [
        (
            "ada",
            json!({"email": "ada@x", "name": {"first": "Ada", "last": "Lovelace"}, "age": 36, "city": "London"}),
        ),
        (
            "alan",
            json!({"email": "alan@x", "name": {"first": "Alan", "last": "Turing"}, "age": 41, "city": "London"}),
        ),
        (
            "grace",
            json!({"email": "grace@x", "name": {"first": "Grace", "last": "Hopper"}, "age": "36", "city": "NYC"}),
        ),
        (
            "ann",
            json!({"email": "ann@x", "name": {"first": "Ann", "last": "Lovelace"}, "age": 36.5, "city": "Paris"}),
        ),
    ];
    for (id, value) in rows {
        kit.bank.create("person", id, value).await?;
    }
    Ok(())
}

/// Search on a declared index finds exactly the matching records.
pub async fn search_on_an_indexed_field(kit: Kit) -> Result<()> {
    people(&kit).await?;
    let hits = kit
        .bank
        .search("person", &Criteria::new().eq("email", "alan@x"))
        .await?;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].0, "alan");
    assert_eq!(hits[0].1["name"]["last"], json!("Turing"));
    Ok(())
}

/// Search on a field with no index still works.
pub async fn search_on_an_unindexed_field(kit: Kit) -> Result<()> {
    people(&kit).await?;
    let hits = kit
        .bank
        .search("person", &Criteria::new().eq("city", "London"))
        .await?;
    assert_eq!(ids(hits), ["ada", "alan"]);
    Ok(())
}

/// Dotted paths reach into nested objects, indexed (`name.last`) or not (`name.first`).
pub async fn search_on_a_dotted_path(kit: Kit) -> Result<()> {
    people(&kit).await?;
    let hits = kit
        .bank
        .search("person", &Criteria::new().eq("name.last", "Lovelace"))
        .await?;
    assert_eq!(ids(hits), ["ada", "ann"]);
    let hits = kit
        .bank
        .search("person", &Criteria::new().eq("name.first", "Grace"))
        .await?;
    assert_eq!(ids(hits), ["grace"]);
    Ok(())
}

/// `36` matches neither `"36"` nor `36.5`, and `"36"` matches only the string.
pub async fn search_equality_is_typed(kit: Kit) -> Result<()> {
    people(&kit).await?;
    assert_eq!(
        ids(kit
            .bank
            .search("person", &Criteria::new().eq("age", 36))
            .await?),
        ["ada"]
    );
    assert_eq!(
        ids(kit
            .bank
            .search("person", &Criteria::new().eq("age", "36"))
            .await?),
        ["grace"]
    );
    assert_eq!(
        ids(kit
            .bank
            .search("person", &Criteria::new().eq("age", 36.5))
            .await?),
        ["ann"]
    );
    assert!(kit
        .bank
        .search("person", &Criteria::new().eq("age", true))
        .await?
        .is_empty());
    kit.bank
        .create("thing", "t", json!({"flag": true, "one": 1}))
        .await?;
    assert!(kit
        .bank
        .search("thing", &Criteria::new().eq("flag", 1))
        .await?
        .is_empty());
    assert!(kit
        .bank
        .search("thing", &Criteria::new().eq("one", true))
        .await?
        .is_empty());
    Ok(())
}

/// `-0.0` equals `0.0` as JSON, on indexed fields (index keys) as on others (regression found
/// by fuzzing the canonical form).
pub async fn search_negative_zero_equals_zero(kit: Kit) -> Result<()> {
    kit.bank
        .create("person", "z", json!({"age": -0.0, "score": -0.0}))
        .await?;
    assert_eq!(
        ids(kit
            .bank
            .search("person", &Criteria::new().eq("age", 0.0))
            .await?),
        ["z"]
    );
    assert_eq!(
        ids(kit
            .bank
            .search("person", &Criteria::new().eq("score", 0.0))
            .await?),
        ["z"]
    );
    assert!(kit
        .bank
        .search("person", &Criteria::new().eq("age", 0))
        .await?
        .is_empty());
    Ok(())
}

/// No match is an empty result, not an error.
pub async fn search_with_no_hits_is_empty(kit: Kit) -> Result<()> {
    people(&kit).await?;
    assert!(kit
        .bank
        .search("person", &Criteria::new().eq("email", "nobody@x"))
        .await?
        .is_empty());
    Ok(())
}

/// Several criteria must all hold.
pub async fn search_criteria_are_anded(kit: Kit) -> Result<()> {
    people(&kit).await?;
    let c = Criteria::new().eq("city", "London").eq("age", 41);
    assert_eq!(ids(kit.bank.search("person", &c).await?), ["alan"]);
    let c = Criteria::new()
        .eq("name.last", "Lovelace")
        .eq("city", "Paris");
    assert_eq!(ids(kit.bank.search("person", &c).await?), ["ann"]);
    Ok(())
}

/// After an update and a save, search finds the new values and not the old ones.
pub async fn search_sees_updates_not_old_values(kit: Kit) -> Result<()> {
    people(&kit).await?;
    kit.bank
        .update("person", "ada", json!({"email": "countess@x", "age": 37}))
        .await?;
    kit.bank
        .save("person", "alan", json!({"email": "turing@x"}))
        .await?;
    assert!(kit
        .bank
        .search("person", &Criteria::new().eq("email", "ada@x"))
        .await?
        .is_empty());
    assert!(kit
        .bank
        .search("person", &Criteria::new().eq("email", "alan@x"))
        .await?
        .is_empty());
    assert_eq!(
        ids(kit
            .bank
            .search("person", &Criteria::new().eq("email", "countess@x"))
            .await?),
        ["ada"]
    );
    assert_eq!(
        ids(kit
            .bank
            .search("person", &Criteria::new().eq("name.last", "Lovelace"))
            .await?),
        ["ann"]
    );
    Ok(())
}

/// A deleted record is no longer found.
pub async fn search_after_delete_finds_nothing(kit: Kit) -> Result<()> {
    people(&kit).await?;
    kit.bank.delete("person", "alan").await?;
    assert!(kit
        .bank
        .search("person", &Criteria::new().eq("email", "alan@x"))
        .await?
        .is_empty());
    Ok(())
}

/// Criteria that look like query operators match only a field equal to that object.
pub async fn search_operator_lookalikes_match_literally(kit: Kit) -> Result<()> {
    people(&kit).await?;
    let op = json!({"$gt": ""});
    kit.bank
        .create(
            "person",
            "odd",
            json!({"email": op.clone(), "city": {"$ne": null}}),
        )
        .await?;
    let hits = kit
        .bank
        .search("person", &Criteria::new().eq("email", op))
        .await?;
    assert_eq!(ids(hits), ["odd"]);
    let hits = kit
        .bank
        .search("person", &Criteria::new().eq("city", json!({"$ne": null})))
        .await?;
    assert_eq!(ids(hits), ["odd"]);
    let hits = kit
        .bank
        .search(
            "person",
            &Criteria::new().eq("email", json!({"$where": "true"})),
        )
        .await?;
    assert!(hits.is_empty());
    let hits = kit
        .bank
        .search("person", &Criteria::new().eq("email", "' OR 1=1 --"))
        .await?;
    assert!(hits.is_empty());
    Ok(())
}

/// A `null` criterion matches a field that is `null`, not a field that is missing.
pub async fn search_missing_field_does_not_match_null(kit: Kit) -> Result<()> {
    kit.bank
        .create("person", "with", json!({"email": null}))
        .await?;
    kit.bank
        .create("person", "without", json!({"age": 1}))
        .await?;
    let hits = kit
        .bank
        .search("person", &Criteria::new().eq("email", json!(null)))
        .await?;
    assert_eq!(ids(hits), ["with"]);
    Ok(())
}

/// Searching a type that has no records is empty.
pub async fn search_unknown_type_is_empty(kit: Kit) -> Result<()> {
    assert!(kit
        .bank
        .search("neverwritten", &Criteria::new().eq("a", 1))
        .await?
        .is_empty());
    Ok(())
}

/// Records whose value is not an object never match a field criterion.
pub async fn search_ignores_non_object_values(kit: Kit) -> Result<()> {
    kit.bank.create("thing", "n", json!(5)).await?;
    kit.bank.create("thing", "a", json!(["email"])).await?;
    kit.bank.create("thing", "o", json!({"email": "e"})).await?;
    let hits = kit
        .bank
        .search("thing", &Criteria::new().eq("email", "e"))
        .await?;
    assert_eq!(ids(hits), ["o"]);
    Ok(())
}

/// Empty criteria match every live record of the type.
pub async fn search_with_no_criteria_returns_all(kit: Kit) -> Result<()> {
    people(&kit).await?;
    assert_eq!(
        ids(kit.bank.search("person", &Criteria::new()).await?),
        ["ada", "alan", "ann", "grace"]
    );
    Ok(())
}

/// Malformed field paths are `InvalidInput`.
pub async fn search_bad_criteria_is_invalid_input(kit: Kit) -> Result<()> {
    for field in ["", ".", "a..b", "a."] {
        assert_err!(
            kit.bank
                .search("person", &Criteria::new().eq(field, 1))
                .await,
            Error::InvalidInput(_)
        );
    }
    assert_err!(Criteria::try_from(json!([1, 2])), Error::InvalidInput(_));
    Ok(())
}

/// Scanning a type that has no records yields nothing.
pub async fn scan_unknown_type_is_empty(kit: Kit) -> Result<()> {
    assert!(scan_ids(&kit.bank, "neverwritten").await?.is_empty());
    Ok(())
}

/// After 1,000 writes (and some deletes and updates) a scan yields each live record once.
pub async fn scan_yields_every_record_after_1000_writes(kit: Kit) -> Result<()> {
    let mut tasks = Vec::new();
    for chunk in 0..8 {
        let bank = kit.bank.clone();
        tasks.push(tokio::spawn(async move {
            for i in (chunk * 125)..((chunk + 1) * 125) {
                bank.create("thing", &format!("r{i:04}"), json!({"i": i}))
                    .await?;
            }
            Ok::<_, Error>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| Error::backend("testkit", e))??;
    }
    for i in 0..10 {
        kit.bank.delete("thing", &format!("r{i:04}")).await?;
        kit.bank
            .update("thing", &format!("r{:04}", i + 10), json!({"u": i}))
            .await?;
    }
    let mut expected: Vec<String> = (10..1000).map(|i| format!("r{i:04}")).collect();
    expected.sort();
    assert_eq!(scan_ids(&kit.bank, "thing").await?, expected);
    assert_eq!(kit.bank.count("thing").await?, 990);
    Ok(())
}

/// A scan yields only its own type.
pub async fn scan_skips_other_types(kit: Kit) -> Result<()> {
    kit.bank.create("thing", "a", json!({})).await?;
    kit.bank.create("person", "b", json!({})).await?;
    kit.bank.create("thing2", "c", json!({})).await?;
    assert_eq!(scan_ids(&kit.bank, "thing").await?, ["a"]);
    Ok(())
}

/// `kinds` names the types holding live records, sorted: not a type whose records were all
/// deleted or have expired.
pub async fn kinds_lists_the_types_with_live_records(kit: Kit) -> Result<()> {
    kit.bank.create("zebra", "z", json!({})).await?;
    kit.bank.create("apple", "a", json!({"n": 1})).await?;
    kit.bank.create("apple", "b", json!({"n": 2})).await?;
    kit.bank.create("gone", "g", json!({})).await?;
    kit.bank.delete("gone", "g").await?;
    kit.bank
        .create("stale", "s", json!({}))
        .expires_in(std::time::Duration::from_millis(1))
        .await?;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let kinds = match kit.bank.kinds().await {
        Err(crate::Error::Unsupported(_)) if !kit.bank.capabilities().supports_kinds => {
            kit.skip("the driver cannot list its types (supports_kinds is off)");
            return Ok(());
        }
        other => other?,
    };
    // Only this behaviour's types are asserted: a harness may share its backend.
    let ours: Vec<&str> = kinds
        .iter()
        .map(String::as_str)
        .filter(|k| ["apple", "gone", "stale", "zebra"].contains(k))
        .collect();
    assert_eq!(ours, ["apple", "zebra"], "kinds() gave {kinds:?}");
    let mut sorted = kinds.clone();
    sorted.sort();
    assert_eq!(kinds, sorted, "sorted");
    Ok(())
}

/// `scan_records` yields each live record once with the value, revision and expiry `read`
/// gives, and leaves out expired ones.
pub async fn scan_records_carry_revision_and_expiry(kit: Kit) -> Result<()> {
    use futures_util::TryStreamExt;
    let in_an_hour =
        chrono::DateTime::from_timestamp_millis(chrono::Utc::now().timestamp_millis() + 3_600_000);
    kit.bank.create("thing", "a", json!({"n": 1})).await?;
    kit.bank
        .create("thing", "b/ü", json!({"n": 2}))
        .expires_at(in_an_hour)
        .await?;
    kit.bank
        .create("thing", "stale", json!({}))
        .expires_in(std::time::Duration::from_millis(1))
        .await?;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let mut scanned: Vec<(String, crate::Record)> =
        kit.bank.scan_records("thing").try_collect().await?;
    scanned.sort_by(|x, y| x.0.cmp(&y.0));
    let expected = vec![
        ("a".to_owned(), kit.bank.read("thing", "a").await?),
        ("b/ü".to_owned(), kit.bank.read("thing", "b/ü").await?),
    ];
    assert_eq!(scanned, expected);
    assert_eq!(scanned[1].1.expires_at, in_an_hour);
    assert!(kit.bank.scan_records("nothing").try_next().await?.is_none());
    Ok(())
}

/// `count` counts the live records of a type.
pub async fn count_counts_live_records(kit: Kit) -> Result<()> {
    assert_eq!(kit.bank.count("thing").await?, 0);
    for i in 0..5 {
        kit.bank.create("thing", &i.to_string(), json!({})).await?;
    }
    kit.bank.delete("thing", "0").await?;
    kit.bank.create("person", "p", json!({})).await?;
    assert_eq!(kit.bank.count("thing").await?, 4);
    Ok(())
}
