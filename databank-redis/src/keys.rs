//! The key layout; the table and the reasoning are in `layout.md`, shown in the crate docs.

use databank_core::criteria::{canonical, lookup};
use serde_json::Value;

/// The keys of one bank.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_owned(),
        }
    }

    pub fn record_prefix(&self, kind: &str) -> String {
        format!("{}:r:{kind}:", self.prefix)
    }

    pub fn record(&self, kind: &str, id: &str) -> Vec<u8> {
        let mut key = self.record_prefix(kind).into_bytes();
        key.extend_from_slice(id.as_bytes());
        key
    }

    pub fn members(&self, kind: &str) -> String {
        format!("{}:z:{kind}", self.prefix)
    }

    pub fn index_lists(&self, kind: &str) -> String {
        format!("{}:x:{kind}", self.prefix)
    }

    pub fn index(&self, kind: &str, field: &str, value: &Value) -> String {
        format!("{}{}", self.index_prefix(kind, field), canonical(value))
    }

    /// What every index key of one field starts with.
    pub fn index_prefix(&self, kind: &str, field: &str) -> String {
        format!("{}:i:{kind}:{}:{field}:", self.prefix, field.len())
    }

    /// The index keys a value belongs in, for the given indexed fields.
    pub fn indices_of(&self, kind: &str, fields: &[String], value: &Value) -> Vec<String> {
        fields
            .iter()
            .filter_map(|field| Some(self.index(kind, field, lookup(value, field)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_with_colons_cannot_collide() {
        let k = Keys::new("p");
        assert_ne!(
            k.index("t", "a:b", &json!("c")),
            k.index("t", "a", &json!("b:c"))
        );
        assert_eq!(
            k.index("t", "a", &json!({"y": 1, "x": 2})),
            r#"p:i:t:1:a:{"x":2,"y":1}"#
        );
    }

    #[test]
    fn ids_stand_last() {
        let k = Keys::new("p");
        assert_eq!(k.record("t", "a:b*"), b"p:r:t:a:b*".to_vec());
        assert_ne!(k.record("t", "x"), k.record("tx", ""));
    }
}
