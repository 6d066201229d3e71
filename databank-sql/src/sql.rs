//! The SQL helpers both dialects use: quoting, index names, expiry as milliseconds, the
//! live and expired conditions, revisions.

use databank_core::driver::{DateTime, Utc};
use databank_core::Expiry;

/// The schema version this crate writes and reads (the `schema_version` row of
/// `<table>_meta`).
pub const SCHEMA_VERSION: i64 = 1;

/// Rows fetched per page of a scan.
pub const SCAN_PAGE: i64 = 500;

/// An expiry as stored: milliseconds since 1970 (UTC), `None` for never.
pub fn to_ms(at: Expiry) -> Option<i64> {
    at.map(|at| at.timestamp_millis())
}

/// The expiry stored as `ms`.
pub fn from_ms(ms: Option<i64>) -> Expiry {
    ms.and_then(DateTime::<Utc>::from_timestamp_millis)
}

/// A fresh revision with its lowest bit clear. A patch stores it when the record stood at the
/// base revision and it plus one otherwise (`revision = $r + (old IS DISTINCT FROM base)`), so
/// the revision the statement returns tells which, with no second statement.
pub fn even_revision() -> i64 {
    (databank_core::driver::random_revision().get() & !1).max(2) as i64
}

/// `live` as SQL, for the table alias `r` and the parameter holding now.
pub fn live(now: &str) -> String {
    format!("(r.expires_at IS NULL OR r.expires_at > {now})")
}

/// Expired as SQL for the parameter holding now: through the expiry index (every expired row
/// is in a minute up to now's: `minute_of` is the dialect's minute of a time, as the index
/// holds it), then exactly.
pub fn expired_by(now: &str, minute_of: fn(&str) -> String) -> String {
    format!(
        "r.expiry_minute <= {} AND r.expires_at <= {now}",
        minute_of(now)
    )
}

/// Now, as stored.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// `name` as an SQL identifier: in double quotes, inner ones doubled.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `text` as an SQL string literal: in single quotes, inner ones doubled (statements that
/// hold one run with `standard_conforming_strings` on, so backslashes are plain).
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The name of the index on `field` of type `kind`: the table, `_ix_` and 16 hex digits of a
/// hash of both (FNV-1a, fixed so that every version names it alike).
pub fn index_name(table: &str, kind: &str, field: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in kind.bytes().chain([0]).chain(field.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{table}_ix_{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_names() {
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("it's"), "'it''s'");
        let name = index_name("databank", "person", "name.last");
        assert_eq!(name.len(), "databank_ix_".len() + 16);
        assert_ne!(name, index_name("databank", "person", "email"));
        assert_eq!(from_ms(to_ms(None)), None);
    }
}
