//! The input rules every bank enforces, in one place ([`crate::Bank`] calls these).
//!
//! | input | rule |
//! |---|---|
//! | type name | 1 to [`MAX_KIND_LEN`] bytes of ASCII letters, digits, `_` and `-`, starting with a letter |
//! | id | 1 to [`MAX_ID_LEN`] bytes of any UTF-8 (`/`, `..`, `:`, `*`, spaces, NUL and emoji included) |
//! | value | any JSON value, at most [`MAX_VALUE_BYTES`] bytes serialized and [`MAX_DEPTH`] levels deep |
//!
//! Everything these rules accept round-trips exactly on every driver.

use serde_json::Value;

use crate::{Error, Result};

/// The longest type name, in bytes.
pub const MAX_KIND_LEN: usize = 64;
/// The longest id, in bytes.
pub const MAX_ID_LEN: usize = 1024;
/// The largest value, in bytes of compact JSON.
pub const MAX_VALUE_BYTES: usize = 8 * 1024 * 1024;
/// The deepest nesting of arrays and objects in a value (JSON parsers refuse deeper input).
pub const MAX_DEPTH: usize = 100;

/// Checks a type name.
///
/// ```
/// use databank_core::validate::kind;
/// assert!(kind("user_profile").is_ok());
/// assert!(kind("../etc").is_err());
/// ```
pub fn kind(kind: &str) -> Result<()> {
    let ok = !kind.is_empty()
        && kind.len() <= MAX_KIND_LEN
        && kind.as_bytes()[0].is_ascii_alphabetic()
        && kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "type name {:?} must be 1 to {MAX_KIND_LEN} ASCII letters, digits, '_' or '-', starting with a letter",
            shorten(kind)
        )))
    }
}

/// Checks an id.
///
/// ```
/// use databank_core::validate::id;
/// assert!(id("../a/b:c*").is_ok());
/// assert!(id("").is_err());
/// assert!(id(&"x".repeat(10_000)).is_err());
/// ```
pub fn id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::InvalidInput("id must not be empty".into()));
    }
    if id.len() > MAX_ID_LEN {
        return Err(Error::InvalidInput(format!(
            "id of {} bytes is longer than {MAX_ID_LEN} bytes",
            id.len()
        )));
    }
    Ok(())
}

/// Checks a value's nesting depth and serialized size, without recursion.
///
/// ```
/// use databank_core::validate::value;
/// assert!(value(&serde_json::json!({"a": [1, 2, {"b": null}]})).is_ok());
/// ```
pub fn value(value: &Value) -> Result<()> {
    measure(value).map(|_| ())
}

/// The size of a value as compact JSON, counted without serializing it; fails like
/// [`value`] past the depth or size limit.
///
/// ```
/// use databank_core::validate::json_size;
/// let v = serde_json::json!({"a": [1, "x\n"], "b": null});
/// assert_eq!(json_size(&v)?, serde_json::to_vec(&v).map(|b| b.len()).unwrap_or(0));
/// # Ok::<(), databank_core::Error>(())
/// ```
pub fn json_size(value: &Value) -> Result<usize> {
    measure(value)
}

/// The size of the entries of an object as compact JSON (`"key":value` each, without the
/// braces and commas), checked as if they sat in an object: each value at most
/// [`MAX_DEPTH`] minus one levels deep. What a patch's `set` adds is checked this way.
///
/// ```
/// use databank_core::validate::entries_size;
/// let map = serde_json::json!({"a": 1, "b\n": "x"});
/// let map = map.as_object().expect("an object");
/// assert_eq!(entries_size(map)?, "\"a\":1".len() + "\"b\\n\":\"x\"".len());
/// # Ok::<(), databank_core::Error>(())
/// ```
pub fn entries_size<'a>(
    entries: impl IntoIterator<Item = (&'a String, &'a Value)>,
) -> Result<usize> {
    let mut size = 0usize;
    for (key, value) in entries {
        size += entry_size(key, measure_from(value, 2)?);
        if size > MAX_VALUE_BYTES {
            return Err(too_large());
        }
    }
    Ok(size)
}

/// The size of one `"key":value` entry of an object whose value is `value_size` bytes.
pub fn entry_size(key: &str, value_size: usize) -> usize {
    escaped_len(key) + 1 + value_size
}

/// The compact JSON size of an object whose entries (see [`entries_size`]) add up to `entries`
/// bytes over `count` keys.
pub fn object_size(entries: usize, count: usize) -> usize {
    2 + entries + count.saturating_sub(1)
}

/// Fails with the size error past [`MAX_VALUE_BYTES`].
pub fn check_size(size: usize) -> Result<()> {
    if size > MAX_VALUE_BYTES {
        Err(too_large())
    } else {
        Ok(())
    }
}

fn too_large() -> Error {
    Error::InvalidInput(format!(
        "value is larger than {MAX_VALUE_BYTES} bytes of JSON"
    ))
}

/// The compact JSON size of a value, failing past the depth or size limit.
fn measure(value: &Value) -> Result<usize> {
    measure_from(value, 1)
}

/// [`measure`] of a value nested at `depth` (1: the top).
fn measure_from(value: &Value, depth: usize) -> Result<usize> {
    // Recursion is bounded: a level past MAX_DEPTH is refused before it is entered.
    if depth > MAX_DEPTH {
        return Err(Error::InvalidInput(format!(
            "value is nested more than {MAX_DEPTH} levels deep"
        )));
    }
    let size = match value {
        Value::Null => 4,
        Value::Bool(b) => 4 + usize::from(!*b),
        Value::Number(n) => number_len(n),
        Value::String(s) => escaped_len(s),
        Value::Array(items) => {
            let mut size = 2 + items.len().saturating_sub(1);
            for item in items {
                size += measure_from(item, depth + 1)?;
                if size > MAX_VALUE_BYTES {
                    return Err(too_large());
                }
            }
            size
        }
        Value::Object(map) => {
            let mut size = 2 + map.len().saturating_sub(1);
            for (key, item) in map {
                size += escaped_len(key) + 1 + measure_from(item, depth + 1)?;
                if size > MAX_VALUE_BYTES {
                    return Err(too_large());
                }
            }
            size
        }
    };
    if size > MAX_VALUE_BYTES {
        return Err(too_large());
    }
    Ok(size)
}

/// The length of a number as serde_json writes it, without allocating.
fn number_len(n: &serde_json::Number) -> usize {
    struct Count(usize);
    impl std::fmt::Write for Count {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0 += s.len();
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to a counter cannot fail.
    let _ = std::fmt::Write::write_fmt(&mut count, format_args!("{n}"));
    count.0
}

/// The length of a string as a JSON literal, quotes included.
pub fn escaped_len(s: &str) -> usize {
    // Most strings need no escape: a pass over 64-byte chunks that the compiler vectorizes
    // (no early exit inside a chunk) tells.
    let plain = s.as_bytes().chunks(64).all(|chunk| {
        !chunk.iter().fold(false, |special, &b| {
            special | (b < 0x20) | (b == b'"') | (b == b'\\')
        })
    });
    if plain {
        return 2 + s.len();
    }
    2 + s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

/// The first characters of a possibly huge input, for error messages.
pub(crate) fn shorten(s: &str) -> String {
    const KEEP: usize = 40;
    match s.char_indices().nth(KEEP) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn size_matches_serde() -> Result<()> {
        let v = json!({"a": [1, -2.5, "x\"y\n\u{1}", true, false, null], "b": {"c": "é", "d": []}, "e": {}});
        let encoded = serde_json::to_string(&v).map_err(|e| Error::backend("test", e))?;
        assert_eq!(measure(&v)?, encoded.len());
        for n in [
            json!(0),
            json!(-17),
            json!(u64::MAX),
            json!(1e300),
            json!(-0.5),
            json!(1.0),
        ] {
            let encoded = serde_json::to_string(&n).map_err(|e| Error::backend("test", e))?;
            assert_eq!(measure(&n)?, encoded.len(), "{n}");
        }
        Ok(())
    }

    #[test]
    fn deep_values_are_refused_without_overflow() {
        let mut v = json!(1);
        for _ in 0..10_000 {
            v = Value::Array(vec![v]);
        }
        assert!(matches!(value(&v), Err(Error::InvalidInput(_))));
    }

    #[test]
    fn big_values_are_refused() {
        let v = json!({"blob": "x".repeat(MAX_VALUE_BYTES)});
        assert!(matches!(value(&v), Err(Error::InvalidInput(_))));
        assert!(value(&json!({"blob": "x".repeat(MAX_VALUE_BYTES - 100)})).is_ok());
    }

    #[test]
    fn kinds() {
        for bad in ["", "1abc", "a/b", "a:b", "a.b", "a b", "a\0", "é"] {
            assert!(kind(bad).is_err(), "{bad:?}");
        }
        assert!(kind(&"a".repeat(MAX_KIND_LEN)).is_ok());
        assert!(kind(&"a".repeat(MAX_KIND_LEN + 1)).is_err());
    }
}
