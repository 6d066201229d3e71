//! The export format (FORMAT.md): JSON Lines, a header line, then one record a line.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `format` of the header line.
pub const FORMAT: &str = "databank-export";
/// The version this tool writes and reads.
pub const VERSION: u64 = 1;

/// The first line of an export.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`].
    pub version: u64,
}

impl Header {
    /// The header this tool writes.
    pub fn current() -> Self {
        Header {
            format: FORMAT.into(),
            version: VERSION,
        }
    }
}

/// One record of an export.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Line {
    /// The record's type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The record's id.
    pub id: String,
    /// The record's value.
    pub value: Value,
    /// When it expires (RFC 3339, UTC, milliseconds), or `null`.
    #[serde(with = "rfc3339")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// Checks the first line of an export; the message says what is wrong.
pub fn read_header(text: &str) -> Result<(), String> {
    match serde_json::from_str::<Header>(text) {
        Ok(header) if header.format == FORMAT && header.version == VERSION => Ok(()),
        Ok(header) if header.format == FORMAT => Err(format!(
            "export version {} is not one this tool reads (it reads {VERSION})",
            header.version
        )),
        _ => Err(format!(
            "not a databank export: the first line must be {}",
            serde_json::to_string(&Header::current()).unwrap_or_default()
        )),
    }
}

mod rfc3339 {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Millis, true)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(text) => DateTime::parse_from_rfc3339(&text)
                .map(|at| Some(at.with_timezone(&Utc)))
                .map_err(|e| serde::de::Error::custom(format!("expires_at {text:?}: {e}"))),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_line_round_trips_with_its_expiry_to_the_millisecond() -> Result<(), serde_json::Error> {
        let at = DateTime::<Utc>::from_timestamp_millis(1_800_000_000_123);
        let line = Line {
            kind: "person".into(),
            id: "a/b".into(),
            value: json!({"n": 1}),
            expires_at: at,
        };
        let text = serde_json::to_string(&line)?;
        assert_eq!(
            text,
            r#"{"type":"person","id":"a/b","value":{"n":1},"expires_at":"2027-01-15T08:00:00.123Z"}"#
        );
        assert_eq!(serde_json::from_str::<Line>(&text)?, line);
        let forever: Line =
            serde_json::from_str(r#"{"type":"t","id":"i","value":1,"expires_at":null}"#)?;
        assert_eq!(forever.expires_at, None);
        Ok(())
    }

    #[test]
    fn headers_are_checked() {
        assert_eq!(
            read_header(r#"{"format":"databank-export","version":1}"#),
            Ok(())
        );
        assert!(read_header(r#"{"format":"databank-export","version":2}"#)
            .is_err_and(|e| e.contains("version 2")));
        assert!(read_header("{}").is_err_and(|e| e.contains("not a databank export")));
        assert!(read_header("hello").is_err_and(|e| e.contains("not a databank export")));
    }
}
