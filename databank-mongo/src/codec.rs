//! How a record is stored as a MongoDB document, and read back (see `layout.md`, shown in the crate docs).

use databank_core::driver::{canonical, index_field, lookup};
use databank_core::driver::{DateTime, Utc};
use databank_core::Value;
use databank_core::{Error, Expiry, Record, Revision};
use mongodb::bson::{doc, Bson, Document};

/// The document for a record.
pub fn to_document(
    id: &str,
    value: &Value,
    revision: Revision,
    expires_at: Expiry,
    indexed: &[String],
) -> Result<Document, Error> {
    let mut document = doc! { "_id": id, "r": revision_bson(revision) };
    if let Some(at) = expires_at {
        document.insert("e", bson_date(at));
    }
    match value {
        Value::Object(map) => {
            let mut fields = Document::new();
            let mut size = 0usize;
            for (key, item) in map {
                let text = json(item)?;
                size += key_cost(key) + text.len();
                fields.insert(key_field(key), text);
            }
            document.insert("o", fields);
            document.insert("s", size as i64);
        }
        other => {
            match other.as_i64() {
                Some(n) => document.insert("n", n),
                None => document.insert("j", json(other)?),
            };
        }
    }
    let mut ix = Document::new();
    for path in indexed {
        if let Some(found) = lookup(value, path) {
            ix.insert(index_field(path), canonical(found));
        }
    }
    if !ix.is_empty() {
        document.insert("ix", ix);
    }
    Ok(document)
}

/// The id and record a document holds.
pub fn from_document(kind: &str, document: &Document) -> Result<(String, Record), Error> {
    let corrupt = |reason: &str| Error::Corrupt {
        location: format!("mongo collection {kind}, _id {:?}", document.get("_id")),
        reason: reason.to_owned(),
    };
    let id = document
        .get_str("_id")
        .map_err(|_| corrupt("_id is not a string"))?
        .to_owned();
    let revision = match document.get("r") {
        Some(Bson::Int64(r)) => Revision::new(*r as u64),
        Some(Bson::Int32(r)) => Revision::new(*r as u64),
        _ => return Err(corrupt("r is not an integer")),
    };
    let expires_at = match document.get("e") {
        None | Some(Bson::Null) => None,
        Some(Bson::DateTime(at)) => Some(
            DateTime::<Utc>::from_timestamp_millis(at.timestamp_millis())
                .ok_or_else(|| corrupt("e is out of range"))?,
        ),
        Some(_) => return Err(corrupt("e is not a date")),
    };
    let value = match (document.get("n"), document.get("j"), document.get("o")) {
        (Some(Bson::Int64(n)), _, _) => Value::from(*n),
        (Some(Bson::Int32(n)), _, _) => Value::from(*n),
        (_, Some(Bson::String(text)), _) => {
            serde_json::from_str(text).map_err(|e| corrupt(&e.to_string()))?
        }
        (_, _, Some(Bson::Document(fields))) => {
            let mut map = serde_json::Map::new();
            for (field, text) in fields {
                let key = key_of(field).ok_or_else(|| corrupt("a key of o is not escaped"))?;
                let Bson::String(text) = text else {
                    return Err(corrupt("a value in o is not JSON text"));
                };
                let item = serde_json::from_str(text).map_err(|e| corrupt(&e.to_string()))?;
                map.insert(key, item);
            }
            Value::Object(map)
        }
        _ => return Err(corrupt("neither n, j nor o holds the value")),
    };
    Ok((
        id,
        databank_core::driver::record(value, revision, expires_at),
    ))
}

/// JSON text of a value.
pub fn json(value: &Value) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::backend("mongo", e))
}

/// The field of `o` holding a top-level object key: `k` and the key with `%`, `.`, `$` and NUL
/// escaped as `%XX`, so that any key (empty, `$set`, `a.b`) is a plain field name and a path.
pub fn key_field(key: &str) -> String {
    let mut field = String::with_capacity(key.len() + 1);
    field.push('k');
    for c in key.chars() {
        match c {
            '%' => field.push_str("%25"),
            '.' => field.push_str("%2E"),
            '$' => field.push_str("%24"),
            '\0' => field.push_str("%00"),
            c => field.push(c),
        }
    }
    field
}

/// The key a field of `o` holds; `None` if it is not one [`key_field`] makes.
pub fn key_of(field: &str) -> Option<String> {
    databank_core::driver::percent_decode(field.strip_prefix('k')?)
}

/// What one top-level key adds to `s` besides its value's JSON: its quoted name, the colon
/// and a comma. `s` is the object's compact JSON size minus one (two for `{}`).
pub fn key_cost(key: &str) -> usize {
    databank_core::driver::escaped_len(key) + 2
}

/// A revision as stored (int64; revisions are 63-bit).
pub fn revision_bson(revision: Revision) -> i64 {
    (revision.get() & (i64::MAX as u64)) as i64
}

/// A chrono instant as a BSON date.
pub fn bson_date(at: DateTime<Utc>) -> mongodb::bson::DateTime {
    mongodb::bson::DateTime::from_millis(at.timestamp_millis())
}

/// The filter matching records that have not expired at `now` (no `e`, or `e` after `now`).
/// One condition on `e`, not an `$or`, so that with an `_id` equality beside it the server
/// still answers from the `_id` index.
pub fn live(now: DateTime<Utc>) -> Document {
    doc! { "e": { "$not": { "$lte": bson_date(now) } } }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_what_bson_cannot_hold() -> Result<(), Error> {
        let indexed = vec!["a.b".to_string(), "$x".to_string()];
        for value in [
            json!({"a.b": 1, "$set": 2, "a": {"b": [1, {"$gt": ""}]}, "big": u64::MAX}),
            json!(42),
            json!(i64::MIN),
            json!(1.5),
            json!("text"),
            json!(null),
        ] {
            let d = to_document("id\0/x", &value, Revision::new(7), None, &indexed)?;
            let (id, record) = from_document("t", &d)?;
            assert_eq!(id, "id\0/x");
            assert_eq!(record.value, value);
            assert_eq!(record.revision, Revision::new(7));
        }
        Ok(())
    }

    #[test]
    fn odd_keys_make_plain_fields() {
        for key in ["", "a.b", "$set", "%2E", "\0", "é", "k"] {
            let field = key_field(key);
            assert!(!field.contains('.') && !field.starts_with('$') && !field.contains('\0'));
            assert_eq!(key_of(&field).as_deref(), Some(key));
        }
    }

    #[test]
    fn index_fields_are_plain_names() {
        assert_eq!(index_field("a.$b"), "f612e2462");
        let d = to_document(
            "i",
            &json!({"a": {"b": {"$gt": ""}}}),
            Revision::new(1),
            None,
            &["a.b".into()],
        );
        let ix = d.ok().and_then(|d| d.get_document("ix").ok().cloned());
        assert_eq!(ix, Some(doc! { index_field("a.b"): r#"{"$gt":""}"# }));
    }

    #[test]
    fn bad_documents_are_corrupt_not_panics() {
        for d in [
            doc! {},
            doc! {"_id": 1, "r": 1_i64, "j": "1"},
            doc! {"_id": "x", "r": "no", "j": "1"},
            doc! {"_id": "x", "r": 1_i64, "j": "{"},
            doc! {"_id": "x", "r": 1_i64},
        ] {
            assert!(
                matches!(from_document("t", &d), Err(Error::Corrupt { .. })),
                "{d}"
            );
        }
    }
}
