//! Search criteria: an AND of exact, typed JSON equalities on (dotted) fields.

use serde_json::Value;

use crate::{Error, Result};

/// What [`search`](crate::Bank::search) looks for: every field equal to its value.
///
/// Equality is exact JSON equality: `1` does not equal `"1"` nor `true`, objects compare by
/// content. A field is a dotted path into nested objects (`name.last`); a record whose path is
/// missing does not match (not even a `null` criterion).
///
/// ```
/// use databank_core::Criteria;
/// use serde_json::json;
/// let c = Criteria::new().eq("name.last", "Smith").eq("age", 42);
/// assert!(c.matches(&json!({"name": {"last": "Smith"}, "age": 42})));
/// assert!(!c.matches(&json!({"name": {"last": "Smith"}, "age": "42"})));
/// let from_json = Criteria::try_from(json!({"age": 42})).unwrap();
/// assert_eq!(from_json.fields().count(), 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Criteria {
    fields: Vec<(String, Value)>,
}

impl Criteria {
    /// No criteria: matches every record.
    pub fn new() -> Self {
        Criteria::default()
    }

    /// Adds the condition "`field` equals `value`".
    pub fn eq(mut self, field: impl Into<String>, value: impl Into<Value>) -> Self {
        self.fields.push((field.into(), value.into()));
        self
    }

    /// The conditions, in the order given.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.fields.iter().map(|(f, v)| (f.as_str(), v))
    }

    /// True when there are no conditions.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// True when `value` meets every condition.
    pub fn matches(&self, value: &Value) -> bool {
        self.fields
            .iter()
            .all(|(field, expected)| lookup(value, field) == Some(expected))
    }

    /// Checks that every field path is well formed (non-empty segments).
    pub(crate) fn validate(&self) -> Result<()> {
        for (field, _) in &self.fields {
            if field.is_empty() || field.split('.').any(str::is_empty) {
                return Err(Error::InvalidInput(format!(
                    "search field {field:?} is not a dotted path of non-empty names"
                )));
            }
        }
        Ok(())
    }
}

impl TryFrom<Value> for Criteria {
    type Error = Error;

    /// Takes a JSON object of `field: value` pairs; anything else is `InvalidInput`.
    fn try_from(value: Value) -> Result<Self> {
        match value {
            Value::Object(map) => Ok(Criteria {
                fields: map.into_iter().collect(),
            }),
            other => Err(Error::InvalidInput(format!(
                "search criteria must be a JSON object, got {}",
                json_type_name(&other)
            ))),
        }
    }
}

/// Follows a dotted path through nested objects.
///
/// ```
/// use databank_core::criteria::lookup;
/// use serde_json::json;
/// let v = json!({"a": {"b": 1}});
/// assert_eq!(lookup(&v, "a.b"), Some(&json!(1)));
/// assert_eq!(lookup(&v, "a.c"), None);
/// ```
pub fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.')
        .try_fold(value, |current, segment| current.as_object()?.get(segment))
}

/// The JSON type of a value, for messages.
pub fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A canonical text form of a JSON value, equal for two values exactly when they are equal:
/// object keys sorted, numbers as serde_json prints them. Drivers use it as an index key.
///
/// The name under which drivers that copy indexed fields into a map store a field path: `f` and
/// the path's bytes in hex, so any path (dots, `$`, backticks, unicode) is a plain field name.
///
/// ```
/// assert_eq!(databank_core::criteria::index_field("a.$b"), "f612e2462");
/// ```
pub fn index_field(path: &str) -> String {
    use std::fmt::Write;
    let mut name = String::with_capacity(1 + path.len() * 2);
    name.push('f');
    for b in path.bytes() {
        let _ = write!(name, "{b:02x}");
    }
    name
}

/// ```
/// use databank_core::criteria::canonical;
/// use serde_json::json;
/// assert_eq!(canonical(&json!({"b": 1, "a": [true]})), r#"{"a":[true],"b":1}"#);
/// assert_ne!(canonical(&json!(1)), canonical(&json!("1")));
/// ```
pub fn canonical(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(key) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        // -0.0 equals 0.0 as JSON values, so it must share their canonical form (and index key).
        Value::Number(n) if n.is_f64() && n.as_f64() == Some(0.0) => out.push_str("0.0"),
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Regression (found by the `criteria_matching` fuzz target): `-0.0 == 0.0` as JSON values,
    /// but their canonical forms differed, so an indexed search for `0.0` missed a stored `-0.0`
    /// on memory, Redis and MongoDB while disk (which filters) found it.
    #[test]
    fn regression_negative_zero_has_one_canonical_form() {
        assert_eq!(json!(-0.0), json!(0.0));
        assert_eq!(canonical(&json!(-0.0)), canonical(&json!(0.0)));
        assert_eq!(
            canonical(&json!({"a": [-0.0]})),
            canonical(&json!({"a": [0.0]}))
        );
        assert_ne!(canonical(&json!(0.0)), canonical(&json!(0)));
    }
}
