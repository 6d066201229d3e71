//! JSON text that PostgreSQL's `jsonb` stores without loss, and back.
//!
//! `jsonb` refuses the character NUL in strings and keys, and turns numbers into `numeric`,
//! which prints `1e16` as `10000000000000000`: an integer when read back, not the float
//! written. So before a value reaches `jsonb`:
//! - a string or key that holds NUL or starts with U+E000 is written as U+E000 followed by
//!   the string with U+E000 as U+E000 `m` and NUL as U+E000 `0` (every other string is
//!   written as it is);
//! - a float with no fractional part from 1e16 up is written in full with `.0`.
//!
//! Reading undoes the first rule; the second needs no undoing. `-0.0` is stored as `0.0`,
//! which JSON equality does not tell apart.

use databank_core::{Error, Result, Value};
use serde_json::Map;

const MARK: char = '\u{E000}';

/// The text to store for `value`.
pub fn to_text(value: &Value) -> Result<String> {
    let mut out = String::with_capacity(64);
    write(value, &mut out)?;
    Ok(out)
}

/// The stored text of a string (for a key in a path, or a key to remove).
pub fn key(text: &str) -> String {
    if needs_marking(text) {
        mark(text)
    } else {
        text.to_owned()
    }
}

/// The value stored as `text`.
pub fn from_text(location: impl FnOnce() -> String, text: &str) -> Result<Value> {
    let value: Value = serde_json::from_str(text).map_err(|e| Error::Corrupt {
        location: location(),
        reason: e.to_string(),
    })?;
    if text.contains(MARK) {
        Ok(unmark_value(value))
    } else {
        Ok(value)
    }
}

fn needs_marking(text: &str) -> bool {
    text.starts_with(MARK) || text.contains('\0')
}

fn mark(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4);
    out.push(MARK);
    for c in text.chars() {
        match c {
            MARK => {
                out.push(MARK);
                out.push('m');
            }
            '\0' => {
                out.push(MARK);
                out.push('0');
            }
            c => out.push(c),
        }
    }
    out
}

fn unmark(text: String) -> String {
    let Some(rest) = text.strip_prefix(MARK) else {
        return text;
    };
    let mut out = String::with_capacity(rest.len());
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        if c == MARK {
            match chars.next() {
                Some('0') => out.push('\0'),
                Some('m') => out.push(MARK),
                // Not written by us: keep it as it is.
                Some(other) => {
                    out.push(MARK);
                    out.push(other);
                }
                None => out.push(MARK),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn unmark_value(value: Value) -> Value {
    match value {
        Value::String(s) => Value::String(unmark(s)),
        Value::Array(items) => Value::Array(items.into_iter().map(unmark_value).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (unmark(k), unmark_value(v)))
                .collect::<Map<String, Value>>(),
        ),
        other => other,
    }
}

fn write_str(text: &str, out: &mut String) -> Result<()> {
    let json = if needs_marking(text) {
        serde_json::to_string(&mark(text))
    } else {
        serde_json::to_string(text)
    };
    out.push_str(&json.map_err(|e| Error::InvalidInput(e.to_string()))?);
    Ok(())
}

fn write(value: &Value, out: &mut String) -> Result<()> {
    match value {
        Value::String(s) => write_str(s, out)?,
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() >= 1e16 && f.abs() < 2e19 => {
                out.push_str(&format!("{f:.1}"))
            }
            _ => out.push_str(&n.to_string()),
        },
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out)?;
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(k, out)?;
                out.push(':');
                write(v, out)?;
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn marked_strings_round_trip() -> Result<()> {
        let tricky = json!({
            "\0": "a\0b", "\u{E000}": "\u{E000}x", "\u{E000}m": ["\u{E000}0", "plain"],
            "n": [1e16, -1e17, 1.5, 1e300, 18446744073709551615u64, -0.0]
        });
        let text = to_text(&tricky)?;
        assert!(!text.contains("\\u0000"));
        assert!(text.contains("10000000000000000.0"));
        assert_eq!(from_text(String::new, &text)?, tricky);
        assert_eq!(key("a"), "a");
        assert_eq!(key("\0"), "\u{E000}\u{E000}0");
        Ok(())
    }
}
