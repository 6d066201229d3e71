//! The SQL++ statements the driver runs. Values always travel as named parameters; the only
//! text spliced in is the keyspace (names checked to hold no backtick) and `ix` field names we
//! make ourselves (`f` + hex).

use databank_core::driver::{canonical, index_field};
use databank_core::{Criteria, Schema};
use serde_json::Value;

/// A statement and its named parameters (names without the `$`).
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// The SQL++ text.
    pub text: String,
    /// `$name` → value.
    pub params: Vec<(String, Value)>,
}

/// The condition every read shares: this type, not expired at `$now`.
const LIVE: &str = "d.t = $t AND (d.e IS NULL OR d.e IS MISSING OR d.e > $now)";

fn base(tag: &str, now_ms: i64) -> Vec<(String, Value)> {
    vec![
        ("t".into(), Value::from(tag)),
        ("now".into(), Value::from(now_ms)),
    ]
}

/// The keys of the live records of a type (`tag`: what `t` holds for it).
pub fn scan_keys(keyspace: &str, tag: &str, now_ms: i64) -> Statement {
    Statement {
        text: format!("SELECT RAW META(d).id FROM {keyspace} AS d WHERE {LIVE}"),
        params: base(tag, now_ms),
    }
}

/// How many live records a type has.
pub fn count(keyspace: &str, tag: &str, now_ms: i64) -> Statement {
    Statement {
        text: format!("SELECT RAW COUNT(*) FROM {keyspace} AS d WHERE {LIVE}"),
        params: base(tag, now_ms),
    }
}

/// The keys of live records whose indexed fields equal the criteria's (fields the schema does
/// not index are left to the caller's filter). `tag` is what `t` holds for `kind`.
pub fn search_keys(
    keyspace: &str,
    schema: &Schema,
    kind: &str,
    tag: &str,
    criteria: &Criteria,
    now_ms: i64,
) -> Statement {
    let mut statement = scan_keys(keyspace, tag, now_ms);
    let indexed = criteria
        .fields()
        .filter(|(field, _)| schema.is_indexed(kind, field));
    for (i, (field, value)) in indexed.enumerate() {
        statement
            .text
            .push_str(&format!(" AND d.ix.`{}` = $p{i}", index_field(field)));
        statement
            .params
            .push((format!("p{i}"), Value::String(canonical(value))));
    }
    statement
}

/// Deletes the expired records of a type, returning their keys.
pub fn purge(keyspace: &str, tag: &str, now_ms: i64) -> Statement {
    Statement {
        text: format!(
            "DELETE FROM {keyspace} AS d WHERE d.t = $t AND d.e <= $now RETURNING RAW META(d).id"
        ),
        params: base(tag, now_ms),
    }
}

/// The distinct type tags in the collection from `lo` up to (not including) `hi`.
pub fn tags(keyspace: &str, lo: &str, hi: &str) -> Statement {
    Statement {
        text: format!(
            "SELECT DISTINCT RAW d.t FROM {keyspace} AS d WHERE d.t >= $lo AND d.t < $hi"
        ),
        params: vec![
            ("lo".into(), Value::String(lo.to_owned())),
            ("hi".into(), Value::String(hi.to_owned())),
        ],
    }
}

/// Deletes every record whose tag starts with `<prefix>:` (all types of one prefixed bank).
pub fn delete_prefixed(keyspace: &str, prefix: &str) -> Statement {
    Statement {
        // Tags from `<prefix>:` up to (not including) `<prefix>;`, the next character after `:`.
        text: format!(
            "DELETE FROM {keyspace} AS d WHERE d.t >= $lo AND d.t < $hi RETURNING RAW META(d).id"
        ),
        params: vec![
            ("lo".into(), Value::String(format!("{prefix}:"))),
            ("hi".into(), Value::String(format!("{prefix};"))),
        ],
    }
}

/// A secondary index to create at open: its name and its keys (SQL++ expressions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSpec {
    /// `databank_type`, or `databank_<type>_<field hash>`.
    pub name: String,
    /// The index keys.
    pub fields: Vec<String>,
}

/// The indices the driver needs: one on `(t, e)` for scans, counts and purges, and one on
/// `(t, ix.<field>)` for each field the schema declares.
pub fn indices(schema: &Schema) -> Vec<IndexSpec> {
    let mut specs = vec![IndexSpec {
        name: "databank_type".into(),
        fields: vec!["`t`".into(), "`e`".into()],
    }];
    for (kind, fields) in schema.types() {
        for field in fields {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(field.as_bytes());
            let short: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
            specs.push(IndexSpec {
                name: format!("databank_{kind}_{short}"),
                fields: vec!["`t`".into(), format!("`ix`.`{}`", index_field(field))],
            });
        }
    }
    specs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KS: &str = "`b`.`_default`.`_default`";

    #[test]
    fn scan_count_and_purge_take_the_type_as_a_parameter() {
        let hostile = "x` OR 1=1 --";
        for statement in [
            scan_keys(KS, hostile, 5),
            count(KS, hostile, 5),
            purge(KS, hostile, 5),
        ] {
            assert!(!statement.text.contains(hostile), "{}", statement.text);
            assert!(statement.text.contains("d.t = $t"));
            assert_eq!(statement.params[0], ("t".into(), json!(hostile)));
            assert_eq!(statement.params[1], ("now".into(), json!(5)));
        }
    }

    #[test]
    fn hostile_criteria_travel_only_as_parameters() {
        let fields = ["na`me", "a.$b", "x\"; DROP", "c/*", "d--", "e'f"];
        let schema = Schema::new().index("user", fields);
        let mut criteria = Criteria::new();
        let values = [
            json!("' OR '1'='1"),
            json!("`) OR TRUE --"),
            json!({"$gt": ""}),
            json!("/* */"),
            json!("$now"),
            json!(-0.0),
        ];
        for (field, value) in fields.iter().zip(values.iter()) {
            criteria = criteria.eq(*field, value.clone());
        }
        criteria = criteria.eq("unindexed", "z");
        let s = search_keys(KS, &schema, "user", "p:user", &criteria, 9);
        // Only our own fixed text, hex field names and parameter names are in the statement.
        let allowed = |c: char| c.is_ascii_alphanumeric() || " `.$=()>_,*".contains(c);
        assert!(s.text.chars().all(allowed), "{}", s.text);
        for bad in ["'", "--", "/*", "DROP", "OR TRUE"] {
            assert!(!s.text.contains(bad), "{}", s.text);
        }
        assert_eq!(s.params.len(), 2 + fields.len());
        assert!(!s.text.contains(&index_field("unindexed")));
        for (i, value) in values.iter().enumerate() {
            assert!(s.text.contains(&format!("= $p{i}")));
            assert_eq!(s.params[2 + i].1, json!(canonical(value)));
        }
    }

    #[test]
    fn delete_prefixed_is_a_range_over_the_tag() {
        let s = delete_prefixed(KS, "kit_1");
        assert!(s.text.contains("d.t >= $lo AND d.t < $hi"));
        assert_eq!(s.params[0].1, json!("kit_1:"));
        assert_eq!(s.params[1].1, json!("kit_1;"));
        assert!("kit_1:session" >= "kit_1:" && "kit_1:session" < "kit_1;");
        assert!("kit_12:session" >= "kit_1;" || "kit_12:session" < "kit_1:");
    }

    #[test]
    fn one_index_per_declared_field_plus_the_type_index() {
        let schema = Schema::new()
            .index("user", ["email", "a.b"])
            .index("post", ["author"]);
        let specs = indices(&schema);
        assert_eq!(specs.len(), 4);
        assert_eq!(specs[0].fields, ["`t`", "`e`"]);
        let names: std::collections::HashSet<&str> =
            specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names.len(), 4);
        for spec in &specs[1..] {
            assert!(spec.name.len() <= 90);
            assert!(spec
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
            assert!(spec.fields[1].starts_with("`ix`.`f"));
        }
    }
}
