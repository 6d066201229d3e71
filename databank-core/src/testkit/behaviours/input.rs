use serde_json::{json, Value};

use super::{assert_err, scan_ids};
use crate::testkit::Kit;
use crate::validate::{MAX_ID_LEN, MAX_VALUE_BYTES};
use crate::{Error, Result};

/// Ids that are dangerous as paths, keys or patterns round-trip exactly and stay distinct.
pub async fn hostile_ids_round_trip(kit: Kit) -> Result<()> {
    let ids = [
        "/",
        "..",
        ".",
        "../../etc/passwd",
        "a/b",
        "a\\b",
        "C:\\x",
        "a:b",
        "a::b",
        "*",
        "?",
        "[a-z]",
        "{x}",
        "$x",
        "a.b",
        "'\"`",
        "a b",
        " ",
        "nul\0byte",
        "\0",
        "emoji 🦀",
        "%2F",
        "%",
        "CON",
        "x*y?z[1]",
        "\n\t",
        "-",
        "~",
        "#",
        "é",
    ];
    for (i, id) in ids.iter().enumerate() {
        kit.bank
            .create("thing", id, json!({"i": i, "id": id}))
            .await?;
    }
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            kit.bank.read("thing", id).await?.value,
            json!({"i": i, "id": id}),
            "id {id:?}"
        );
    }
    let mut expected: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    expected.sort();
    assert_eq!(scan_ids(&kit.bank, "thing").await?, expected);
    kit.bank.delete("thing", "*").await?;
    kit.bank.delete("thing", "..").await?;
    assert_eq!(kit.bank.count("thing").await?, ids.len() as u64 - 2);
    Ok(())
}

/// `Ab`, `aB` and `ab` are three records, even on a case-insensitive filesystem.
pub async fn ids_differing_in_case_do_not_collide(kit: Kit) -> Result<()> {
    for id in ["Ab", "aB", "ab", "AB"] {
        kit.bank.create("thing", id, json!(id)).await?;
    }
    for id in ["Ab", "aB", "ab", "AB"] {
        assert_eq!(kit.bank.read("thing", id).await?.value, json!(id));
    }
    Ok(())
}

/// Ids up to the length limit, of any characters, round-trip.
pub async fn long_ids_round_trip(kit: Kit) -> Result<()> {
    let long = "x".repeat(MAX_ID_LEN);
    let weird = "é/".repeat(MAX_ID_LEN / 3);
    let prefix_a = format!("{}a", "y".repeat(300));
    let prefix_b = format!("{}b", "y".repeat(300));
    for id in [&long, &weird, &prefix_a, &prefix_b] {
        kit.bank
            .create("thing", id, json!({"len": id.len()}))
            .await?;
    }
    for id in [&long, &weird, &prefix_a, &prefix_b] {
        assert_eq!(
            kit.bank.read("thing", id).await?.value,
            json!({"len": id.len()})
        );
    }
    assert_eq!(scan_ids(&kit.bank, "thing").await?.len(), 4);
    Ok(())
}

/// Empty and over-long ids are `InvalidInput` for every operation.
pub async fn invalid_ids_are_invalid_input(kit: Kit) -> Result<()> {
    let huge = "x".repeat(10 * 1024);
    for id in ["", huge.as_str()] {
        assert_err!(
            kit.bank.create("thing", id, json!({})).await,
            Error::InvalidInput(_)
        );
        assert_err!(
            kit.bank.save("thing", id, json!({})).await,
            Error::InvalidInput(_)
        );
        assert_err!(kit.bank.read("thing", id).await, Error::InvalidInput(_));
        assert_err!(kit.bank.delete("thing", id).await, Error::InvalidInput(_));
        assert_err!(kit.bank.incr("thing", id).await, Error::InvalidInput(_));
        assert_err!(
            kit.bank.read_all("thing", &["ok", id]).await,
            Error::InvalidInput(_)
        );
    }
    assert_eq!(kit.bank.count("thing").await?, 0);
    Ok(())
}

/// Type names outside the documented set are `InvalidInput`, for reads, writes and scans.
pub async fn invalid_type_names_are_invalid_input(kit: Kit) -> Result<()> {
    for kind in [
        "", "../x", "a/b", "a:b", "a*", "a b", "a\0", "$x", "a.b", "🦀", "1a",
    ] {
        assert_err!(
            kit.bank.create(kind, "1", json!({})).await,
            Error::InvalidInput(_)
        );
        assert_err!(kit.bank.read(kind, "1").await, Error::InvalidInput(_));
        assert_err!(kit.bank.purge_expired(kind).await, Error::InvalidInput(_));
        assert_err!(scan_ids(&kit.bank, kind).await, Error::InvalidInput(_));
    }
    Ok(())
}

/// A value over the size limit is refused and the stored one kept.
pub async fn oversized_value_is_refused_and_the_old_one_kept(kit: Kit) -> Result<()> {
    kit.bank.create("thing", "x", json!({"v": "small"})).await?;
    let big = json!({"v": "x".repeat(MAX_VALUE_BYTES + 1)});
    assert_err!(
        kit.bank.save("thing", "x", big.clone()).await,
        Error::InvalidInput(_)
    );
    assert_err!(
        kit.bank.update("thing", "x", big.clone()).await,
        Error::InvalidInput(_)
    );
    assert_err!(
        kit.bank.create("thing", "y", big).await,
        Error::InvalidInput(_)
    );
    assert_eq!(
        kit.bank.read("thing", "x").await?.value,
        json!({"v": "small"})
    );
    assert_err!(kit.bank.read("thing", "y").await, Error::NotFound { .. });
    Ok(())
}

/// A value nested 10,000 deep is `InvalidInput`, with no stack overflow.
pub async fn deeply_nested_value_is_invalid_input(kit: Kit) -> Result<()> {
    let mut deep = json!(1);
    for _ in 0..10_000 {
        deep = Value::Array(vec![deep]);
    }
    let result = kit.bank.save("thing", "deep", deep).await;
    assert_err!(result, Error::InvalidInput(_));
    assert_err!(kit.bank.read("thing", "deep").await, Error::NotFound { .. });
    Ok(())
}

/// A 1 MiB value round-trips.
pub async fn one_mib_value_round_trips(kit: Kit) -> Result<()> {
    let blob: String = (0..1024 * 1024)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let value = json!({"blob": blob});
    kit.bank.save("thing", "big", value.clone()).await?;
    assert_eq!(kit.bank.read("thing", "big").await?.value, value);
    Ok(())
}

/// Unicode in keys and values round-trips.
pub async fn unicode_round_trips(kit: Kit) -> Result<()> {
    let value = json!({"名前": "Ада 🦀", "e\u{301}": "\u{10FFFF}", "rtl": "\u{202E}abc", "zw": "a\u{200B}b"});
    kit.bank.save("thing", "ü", value.clone()).await?;
    assert_eq!(kit.bank.read("thing", "ü").await?.value, value);
    Ok(())
}

/// Values that are not objects round-trip with their JSON type.
pub async fn non_object_values_round_trip(kit: Kit) -> Result<()> {
    let values = [
        json!(null),
        json!(true),
        json!(0),
        json!(-7),
        json!(2.5),
        json!(""),
        json!("text"),
        json!([]),
        json!([1, "1", null, {"a": []}]),
        json!({}),
    ];
    for (i, value) in values.iter().enumerate() {
        kit.bank
            .save("thing", &i.to_string(), value.clone())
            .await?;
    }
    for (i, value) in values.iter().enumerate() {
        assert_eq!(&kit.bank.read("thing", &i.to_string()).await?.value, value);
    }
    Ok(())
}

/// Integers at the edges of i64/u64 and ordinary floats keep their exact value and type.
pub async fn numbers_round_trip_exactly(kit: Kit) -> Result<()> {
    let value = json!({"max": i64::MAX, "min": i64::MIN, "umax": u64::MAX, "f": 0.1, "neg": -1.5e-300, "z": 0});
    kit.bank.save("thing", "n", value.clone()).await?;
    let back = kit.bank.read("thing", "n").await?.value;
    assert_eq!(back, value);
    assert!(
        back["z"].is_i64() || back["z"].is_u64(),
        "0 came back as {}",
        back["z"]
    );
    Ok(())
}

/// Object keys with dots, leading `$`, and empty keys are stored and restored exactly.
pub async fn keys_with_dots_and_dollars_round_trip(kit: Kit) -> Result<()> {
    let value = json!({"a.b": 1, "$set": {"$inc": 2}, "": 3, "_id": "not the id", "x": {"y.z": [{"$k": 4}]}});
    kit.bank.save("person", "odd", value.clone()).await?;
    assert_eq!(kit.bank.read("person", "odd").await?.value, value);
    Ok(())
}

/// `save_as` and `read_as` round-trip a typed value; the wrong shape is `InvalidInput`.
pub async fn typed_helpers_round_trip(kit: Kit) -> Result<()> {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Person {
        email: String,
        age: u32,
    }
    let ada = Person {
        email: "ada@x".into(),
        age: 36,
    };
    kit.bank.save_as("person", "ada", &ada).await?;
    assert_eq!(kit.bank.read_as::<Person>("person", "ada").await?, ada);
    kit.bank.save("person", "bad", json!({"email": 1})).await?;
    assert_err!(
        kit.bank.read_as::<Person>("person", "bad").await,
        Error::InvalidInput(_)
    );
    Ok(())
}
