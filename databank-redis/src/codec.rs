//! How a value is spread over the fields of its record hash, and gathered back (see
//! `layout.md`): an object as one `.key` field per top-level key, so that a patch touches only
//! the fields it names; anything else as one `v` field.

use databank_core::driver::escaped_len;
use databank_core::driver::{is_expired, record, DateTime, Utc};
use databank_core::{Error, Expiry, Record, Result, Revision, Value};
use serde_json::Map;

/// The fields of one record hash, as `HGETALL` returns them.
pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// The hash field of a top-level object key.
pub fn key_field(key: &str) -> Vec<u8> {
    let mut field = Vec::with_capacity(key.len() + 1);
    field.push(b'.');
    field.extend_from_slice(key.as_bytes());
    field
}

/// What one top-level key adds to the `n` field besides its value's JSON: its quoted name, the
/// colon and a comma. The scripts' `exact_size` counts the same way on the server.
pub fn key_cost(key: &str) -> usize {
    escaped_len(key) + 2
}

/// JSON text of a value.
pub fn json(value: &Value) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::backend("redis", e))
}

/// The field, value pairs a value is stored as (the revision and expiry fields aside).
pub fn of(value: &Value) -> Result<Vec<Vec<u8>>> {
    let Value::Object(map) = value else {
        return Ok(vec![b"v".to_vec(), json(value)?]);
    };
    let mut out = Vec::with_capacity(4 + 2 * map.len());
    let mut size = 0usize;
    out.push(b"o".to_vec());
    out.push(b"1".to_vec());
    out.push(b"n".to_vec());
    out.push(Vec::new());
    for (key, item) in map {
        let text = json(item)?;
        size += key_cost(key) + text.len();
        out.push(key_field(key));
        out.push(text);
    }
    out[3] = size.to_string().into_bytes();
    Ok(out)
}

fn corrupt(kind: &str, id: &str, reason: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        location: format!("redis {kind} {id:?}"),
        reason: reason.to_string(),
    }
}

/// Parses a stored expiry (milliseconds since the epoch).
pub fn parse_expiry(kind: &str, id: &str, text: Option<&[u8]>) -> Result<Expiry> {
    let Some(text) = text else { return Ok(None) };
    std::str::from_utf8(text)
        .ok()
        .and_then(|ms| ms.parse::<i64>().ok())
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .map(Some)
        .ok_or_else(|| {
            corrupt(
                kind,
                id,
                format!("bad expiry {:?}", String::from_utf8_lossy(text)),
            )
        })
}

/// A stored revision (`None` for anything but decimal digits of a `u64`, as `''`).
pub fn parse_revision(text: &[u8]) -> Option<Revision> {
    std::str::from_utf8(text)
        .ok()?
        .parse()
        .ok()
        .map(Revision::new)
}

fn parse_json(kind: &str, id: &str, text: &[u8]) -> Result<Value> {
    serde_json::from_slice(text).map_err(|e| corrupt(kind, id, e))
}

/// The live record a hash holds; `None` when the hash is empty (no record), expired, or holds
/// no value (no `o` or `v` field, which no write makes).
pub fn gather(kind: &str, id: &str, fields: Fields) -> Result<Option<Record>> {
    if fields.is_empty() {
        return Ok(None);
    }
    let (mut revision, mut expiry, mut whole, mut object) = (None, None, None, None);
    let mut entries = Map::with_capacity(fields.len());
    for (name, text) in fields {
        match name.as_slice() {
            b"r" => revision = Some(text),
            b"e" => expiry = Some(text),
            b"v" => whole = Some(text),
            b"o" => object = Some(()),
            b"n" => {}
            [b'.', ..] => {
                // The field's own bytes become the key: no copy.
                let mut key = String::from_utf8(name).map_err(|e| corrupt(kind, id, e))?;
                key.remove(0);
                entries.insert(key, parse_json(kind, id, &text)?);
            }
            other => {
                return Err(corrupt(
                    kind,
                    id,
                    format!("unknown field {:?}", String::from_utf8_lossy(other)),
                ))
            }
        }
    }
    let expires_at = parse_expiry(kind, id, expiry.as_deref())?;
    if is_expired(expires_at, Utc::now()) {
        return Ok(None);
    }
    let revision = revision
        .as_deref()
        .and_then(parse_revision)
        .ok_or_else(|| corrupt(kind, id, "no revision"))?;
    let value = match (whole, object) {
        (Some(text), None) => parse_json(kind, id, &text)?,
        (None, Some(())) => Value::Object(entries),
        // No value: not a record (no write makes such a hash).
        (None, None) => return Ok(None),
        _ => return Err(corrupt(kind, id, "both one value and one object")),
    };
    Ok(Some(record(value, revision, expires_at)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pairs(flat: Vec<Vec<u8>>) -> Fields {
        flat.chunks(2)
            .map(|pair| (pair[0].clone(), pair[1].clone()))
            .collect()
    }

    #[test]
    fn objects_and_others_round_trip() -> Result<()> {
        for value in [
            json!({"a.b": [1], "": null, "\u{0}": {"$x": u64::MAX}}),
            json!({}),
            json!([1, 2]),
            json!("text"),
            json!(-1.5e-300),
        ] {
            let mut fields = pairs(of(&value)?);
            fields.push((b"r".to_vec(), b"7".to_vec()));
            let back = gather("t", "i", fields)?.ok_or_else(|| Error::not_found("t", "i"))?;
            assert_eq!(back.value, value);
            assert_eq!(back.revision, Revision::new(7));
        }
        Ok(())
    }

    #[test]
    fn n_counts_what_the_object_adds() -> Result<()> {
        let value = json!({"a": 1, "b\n": "x"});
        let fields = of(&value)?;
        let n: usize = String::from_utf8_lossy(&fields[3]).parse().unwrap_or(0);
        let total = serde_json::to_vec(&value).map(|v| v.len()).unwrap_or(0);
        assert_eq!(n + 1, total);
        Ok(())
    }

    #[test]
    fn unknown_fields_are_corrupt() {
        let fields = vec![
            (b"r".to_vec(), b"1".to_vec()),
            (b"zz".to_vec(), b"1".to_vec()),
        ];
        assert!(matches!(
            gather("t", "i", fields),
            Err(Error::Corrupt { .. })
        ));
    }
}
