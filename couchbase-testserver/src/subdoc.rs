//! Sub-document mutations on a JSON document: couchbase/kv_engine `docs/SubDocument.md`
//! ("Multi-Path" mutation 0xd1: the spec encoding, the doc flags in extras, per-spec results)
//! and `docs/BinaryProtocol.md` ("Response Status" 0xc0-0xcc). Only what `databank-couchbase`
//! sends is implemented; any other spec opcode or flag is refused with an error status.

use serde_json::{Map, Value};

use crate::frame::status;

/// Spec opcodes (`docs/SubDocument.md`, "Commands").
pub mod spec {
    pub const DICT_ADD: u8 = 0xc7;
    pub const DICT_UPSERT: u8 = 0xc8;
    pub const DELETE: u8 = 0xc9;
    pub const REPLACE: u8 = 0xca;
    pub const ARRAY_PUSH_LAST: u8 = 0xcb;
    pub const ARRAY_PUSH_FIRST: u8 = 0xcc;
    pub const COUNTER: u8 = 0xcf;
}

/// Spec flag: create missing parents ("Path flags": Mkdir_p).
const MKDIR_P: u8 = 0x01;
/// Spec flag: the path is an extended attribute (not supported here).
const XATTR: u8 = 0x04;

/// One mutation spec as the client encoded it: opcode, flags, path length (2), value length
/// (4), path, value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub opcode: u8,
    pub flags: u8,
    pub path: String,
    pub value: Vec<u8>,
}

/// Parses the specs of a multi-mutation body.
pub fn parse_specs(mut body: &[u8]) -> Result<Vec<Spec>, u16> {
    let mut specs = Vec::new();
    while !body.is_empty() {
        let header = body.get(..8).ok_or(status::INVALID_ARGUMENTS)?;
        let path_len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let value_len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let path = body.get(8..8 + path_len).ok_or(status::INVALID_ARGUMENTS)?;
        let value = body
            .get(8 + path_len..8 + path_len + value_len)
            .ok_or(status::INVALID_ARGUMENTS)?;
        specs.push(Spec {
            opcode: header[0],
            flags: header[1],
            path: String::from_utf8(path.to_vec()).map_err(|_| status::SUBDOC_PATH_INVALID)?,
            value: value.to_vec(),
        });
        body = &body[8 + path_len + value_len..];
    }
    if specs.is_empty() || specs.len() > 16 {
        return Err(status::SUBDOC_INVALID_COMBO);
    }
    Ok(specs)
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(i64),
}

/// Parses a path: names separated by `.`, a name in backticks may hold any character (a
/// backtick written twice), `[n]` indexes an array (`-1`: the last element).
fn parse_path(path: &str) -> Result<Vec<Step>, u16> {
    let mut steps = Vec::new();
    let mut chars = path.chars().peekable();
    let mut name = String::new();
    let mut in_name = false;
    while let Some(c) = chars.next() {
        match c {
            '`' => {
                loop {
                    match chars.next() {
                        Some('`') if chars.peek() == Some(&'`') => {
                            chars.next();
                            name.push('`');
                        }
                        Some('`') => break,
                        Some(other) => name.push(other),
                        None => return Err(status::SUBDOC_PATH_INVALID),
                    }
                }
                in_name = true;
            }
            '.' => {
                if in_name {
                    steps.push(Step::Key(std::mem::take(&mut name)));
                    in_name = false;
                } else if !matches!(steps.last(), Some(Step::Index(_))) {
                    return Err(status::SUBDOC_PATH_INVALID);
                }
            }
            '[' => {
                if in_name {
                    steps.push(Step::Key(std::mem::take(&mut name)));
                    in_name = false;
                }
                let mut digits = String::new();
                loop {
                    match chars.next() {
                        Some(']') => break,
                        Some(d) => digits.push(d),
                        None => return Err(status::SUBDOC_PATH_INVALID),
                    }
                }
                let index = digits.parse().map_err(|_| status::SUBDOC_PATH_INVALID)?;
                steps.push(Step::Index(index));
            }
            other => {
                name.push(other);
                in_name = true;
            }
        }
    }
    if in_name {
        steps.push(Step::Key(name));
    }
    if steps.is_empty() {
        return Err(status::SUBDOC_PATH_INVALID);
    }
    Ok(steps)
}

/// The value `step` leads to in `container`; a missing key of an object is created as
/// `missing` when one is given (mkdir_p), else the path is not found.
fn child<'v>(
    step: &Step,
    container: &'v mut Value,
    missing: Option<Value>,
) -> Result<&'v mut Value, u16> {
    match (step, container) {
        (Step::Key(key), Value::Object(map)) => {
            if !map.contains_key(key) {
                map.insert(key.clone(), missing.ok_or(status::SUBDOC_PATH_NOT_FOUND)?);
            }
            map.get_mut(key).ok_or(status::SUBDOC_PATH_NOT_FOUND)
        }
        (Step::Index(i), Value::Array(items)) => {
            let at = resolve_index(*i, items.len()).ok_or(status::SUBDOC_PATH_NOT_FOUND)?;
            items.get_mut(at).ok_or(status::SUBDOC_PATH_NOT_FOUND)
        }
        _ => Err(status::SUBDOC_PATH_MISMATCH),
    }
}

/// The container a path's last step is in, creating missing objects on the way with `mkdir`.
fn parent<'v>(doc: &'v mut Value, steps: &[Step], mkdir: bool) -> Result<&'v mut Value, u16> {
    let mut at = doc;
    for step in steps {
        at = child(step, at, mkdir.then(|| Value::Object(Map::new())))?;
    }
    Ok(at)
}

fn resolve_index(index: i64, len: usize) -> Option<usize> {
    let at = if index < 0 {
        (len as i64).checked_add(index)?
    } else {
        index
    };
    usize::try_from(at).ok().filter(|at| *at < len)
}

fn parse_value(value: &[u8]) -> Result<Value, u16> {
    serde_json::from_slice(value).map_err(|_| status::SUBDOC_VALUE_CANNOT_INSERT)
}

/// Applies one spec to `doc`; the value it returns (a counter's new value), if any.
pub fn apply(doc: &mut Value, spec: &Spec) -> Result<Option<Vec<u8>>, u16> {
    if spec.flags & XATTR != 0 || spec.flags & !(MKDIR_P | XATTR) != 0 {
        return Err(status::NOT_SUPPORTED);
    }
    let steps = parse_path(&spec.path)?;
    let (last, above) = steps.split_last().ok_or(status::SUBDOC_PATH_INVALID)?;
    let mkdir = spec.flags & MKDIR_P != 0;
    let container = parent(doc, above, mkdir)?;
    match spec.opcode {
        spec::DICT_UPSERT | spec::DICT_ADD | spec::REPLACE => {
            let value = parse_value(&spec.value)?;
            match (last, container) {
                (Step::Key(key), Value::Object(map)) => {
                    let exists = map.contains_key(key);
                    if spec.opcode == spec::DICT_ADD && exists {
                        return Err(status::SUBDOC_PATH_EXISTS);
                    }
                    if spec.opcode == spec::REPLACE && !exists {
                        return Err(status::SUBDOC_PATH_NOT_FOUND);
                    }
                    map.insert(key.clone(), value);
                }
                (Step::Index(i), Value::Array(items)) if spec.opcode == spec::REPLACE => {
                    let at = resolve_index(*i, items.len()).ok_or(status::SUBDOC_PATH_NOT_FOUND)?;
                    items[at] = value;
                }
                _ => return Err(status::SUBDOC_PATH_MISMATCH),
            }
            Ok(None)
        }
        spec::DELETE => {
            match (last, container) {
                (Step::Key(key), Value::Object(map)) => {
                    map.remove(key).ok_or(status::SUBDOC_PATH_NOT_FOUND)?;
                }
                (Step::Index(i), Value::Array(items)) => {
                    let at = resolve_index(*i, items.len()).ok_or(status::SUBDOC_PATH_NOT_FOUND)?;
                    items.remove(at);
                }
                _ => return Err(status::SUBDOC_PATH_MISMATCH),
            }
            Ok(None)
        }
        spec::ARRAY_PUSH_LAST | spec::ARRAY_PUSH_FIRST => {
            // The value is one or more JSON values separated by commas.
            let mut wrapped = Vec::with_capacity(spec.value.len() + 2);
            wrapped.push(b'[');
            wrapped.extend_from_slice(&spec.value);
            wrapped.push(b']');
            let Value::Array(mut new) = parse_value(&wrapped)? else {
                return Err(status::SUBDOC_VALUE_CANNOT_INSERT);
            };
            let target = child(last, container, mkdir.then(|| Value::Array(Vec::new())))?;
            let Value::Array(items) = target else {
                return Err(status::SUBDOC_PATH_MISMATCH);
            };
            if spec.opcode == spec::ARRAY_PUSH_LAST {
                items.append(&mut new);
            } else {
                new.append(items);
                *items = new;
            }
            Ok(None)
        }
        spec::COUNTER => {
            let delta: i64 = std::str::from_utf8(&spec.value)
                .ok()
                .and_then(|text| text.trim().parse().ok())
                .filter(|delta| *delta != 0)
                .ok_or(status::SUBDOC_DELTA_OUT_OF_RANGE)?;
            let Step::Key(key) = last else {
                return Err(status::SUBDOC_PATH_MISMATCH);
            };
            let Value::Object(map) = container else {
                return Err(status::SUBDOC_PATH_MISMATCH);
            };
            let new = match map.get(key) {
                None => delta,
                Some(Value::Number(n)) => {
                    let current = n.as_i64().ok_or(status::SUBDOC_NUMBER_OUT_OF_RANGE)?;
                    current
                        .checked_add(delta)
                        .ok_or(status::SUBDOC_DELTA_OUT_OF_RANGE)?
                }
                Some(_) => return Err(status::SUBDOC_PATH_MISMATCH),
            };
            map.insert(key.clone(), Value::from(new));
            Ok(Some(new.to_string().into_bytes()))
        }
        _ => Err(status::UNKNOWN_COMMAND),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(opcode: u8, path: &str, value: &str) -> Spec {
        Spec {
            opcode,
            flags: 0,
            path: path.into(),
            value: value.as_bytes().to_vec(),
        }
    }

    #[test]
    fn paths_parse_names_backticks_and_indices() -> Result<(), u16> {
        assert_eq!(
            parse_path("a.`b.c``d`[2].e[-1]")?,
            vec![
                Step::Key("a".into()),
                Step::Key("b.c`d".into()),
                Step::Index(2),
                Step::Key("e".into()),
                Step::Index(-1)
            ]
        );
        for bad in ["", "a..b", "`open", "a[x]", "a[1"] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
        Ok(())
    }

    /// The per-spec statuses `docs/BinaryProtocol.md` lists: 0xc0 path does not exist, 0xc1
    /// path mismatch, 0xc8 result out of range, 0xc9 path exists.
    #[test]
    fn each_spec_answers_its_documented_status() -> Result<(), u16> {
        let mut doc = json!({"v": [1, 2], "n": 5, "s": "x", "big": i64::MAX});
        assert_eq!(
            apply(&mut doc, &spec(spec::COUNTER, "n", "3"))?,
            Some(b"8".to_vec())
        );
        assert_eq!(
            apply(&mut doc, &spec(spec::COUNTER, "s", "1")),
            Err(status::SUBDOC_PATH_MISMATCH)
        );
        assert_eq!(
            apply(&mut doc, &spec(spec::COUNTER, "big", "1")),
            Err(status::SUBDOC_DELTA_OUT_OF_RANGE)
        );
        apply(&mut doc, &spec(spec::ARRAY_PUSH_LAST, "v", "3,4"))?;
        apply(&mut doc, &spec(spec::ARRAY_PUSH_FIRST, "v", "0"))?;
        assert_eq!(doc["v"], json!([0, 1, 2, 3, 4]));
        apply(&mut doc, &spec(spec::DELETE, "v[1]", ""))?;
        assert_eq!(doc["v"], json!([0, 2, 3, 4]));
        assert_eq!(
            apply(&mut doc, &spec(spec::DELETE, "v[9]", "")),
            Err(status::SUBDOC_PATH_NOT_FOUND)
        );
        assert_eq!(
            apply(&mut doc, &spec(spec::DELETE, "nope", "")),
            Err(status::SUBDOC_PATH_NOT_FOUND)
        );
        assert_eq!(
            apply(&mut doc, &spec(spec::ARRAY_PUSH_LAST, "s", "1")),
            Err(status::SUBDOC_PATH_MISMATCH)
        );
        assert_eq!(
            apply(&mut doc, &spec(spec::DICT_ADD, "s", "1")),
            Err(status::SUBDOC_PATH_EXISTS)
        );
        apply(&mut doc, &spec(spec::DICT_UPSERT, "`a.b`", "{\"x\":1}"))?;
        assert_eq!(doc["a.b"], json!({"x": 1}));
        assert_eq!(
            apply(&mut doc, &spec(spec::DICT_UPSERT, "t", "{")),
            Err(status::SUBDOC_VALUE_CANNOT_INSERT)
        );
        assert_eq!(
            apply(&mut doc, &spec(0xc5, "s", "")),
            Err(status::UNKNOWN_COMMAND)
        );
        Ok(())
    }

    #[test]
    fn specs_parse_from_their_encoding() -> Result<(), u16> {
        let mut body = vec![spec::COUNTER, 0, 0, 1, 0, 0, 0, 1];
        body.extend_from_slice(b"v5");
        assert_eq!(parse_specs(&body)?, vec![spec(spec::COUNTER, "v", "5")]);
        assert!(parse_specs(&body[..5]).is_err());
        Ok(())
    }
}
