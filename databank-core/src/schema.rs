//! Which fields of which types are indexed.

use std::collections::BTreeMap;

/// The indexed fields of each type. Types not named here work too, with no indices.
///
/// ```
/// use databank_core::Schema;
/// let schema = Schema::new()
///     .index("person", ["email", "name.last"])
///     .index("session", ["user"]);
/// assert_eq!(schema.indices("person"), ["email", "name.last"]);
/// assert!(schema.indices("other").is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    types: BTreeMap<String, Vec<String>>,
}

impl Schema {
    /// An empty schema: no type has an index.
    pub fn new() -> Self {
        Schema::default()
    }

    /// Declares indexed fields (dotted paths allowed) for a type, adding to any declared before.
    pub fn index<I, S>(mut self, kind: &str, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let entry = self.types.entry(kind.to_owned()).or_default();
        for field in fields {
            let field = field.into();
            if !entry.contains(&field) {
                entry.push(field);
            }
        }
        self
    }

    /// The indexed fields of a type, in declaration order (empty for an unknown type).
    pub fn indices(&self, kind: &str) -> &[String] {
        self.types.get(kind).map(Vec::as_slice).unwrap_or(&[])
    }

    /// True when `field` is indexed for `kind`.
    pub fn is_indexed(&self, kind: &str, field: &str) -> bool {
        self.indices(kind).iter().any(|f| f == field)
    }

    /// Every type with declared indices, with its fields.
    pub fn types(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.types.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}
