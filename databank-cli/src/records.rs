//! One record at a time: get, put, delete; and count and search.

use std::time::Duration;

use databank_core::{Bank, Criteria, Value};
use serde_json::json;

use crate::format::Line;
use crate::Failure;

/// Prints one record: its value, or with `json` the whole record.
pub async fn get(bank: &Bank, kind: &str, id: &str, json: bool) -> Result<(), Failure> {
    let record = bank.read(kind, id).await?;
    if json {
        let line = Line {
            kind: kind.into(),
            id: id.into(),
            value: record.value,
            expires_at: record.expires_at,
        };
        let mut out = serde_json::to_value(line).map_err(Failure::output)?;
        out["revision"] = json!(record.revision.get().to_string());
        println!("{out}");
    } else {
        println!(
            "{}",
            serde_json::to_string_pretty(&record.value).map_err(Failure::output)?
        );
    }
    Ok(())
}

/// Writes one record from JSON text.
pub async fn put(
    bank: &Bank,
    kind: &str,
    id: &str,
    text: &str,
    expires_in: Option<u64>,
) -> Result<(), Failure> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| Failure(format!("the value is not valid JSON: {e}")))?;
    let mut write = bank.save(kind, id, value);
    if let Some(seconds) = expires_in {
        write = write.expires_in(Duration::from_secs(seconds));
    }
    write.await?;
    Ok(())
}

/// Deletes one record.
pub async fn delete(bank: &Bank, kind: &str, id: &str) -> Result<(), Failure> {
    bank.delete(kind, id).await?;
    Ok(())
}

/// Prints how many live records a type has.
pub async fn count(bank: &Bank, kind: &str, json: bool) -> Result<(), Failure> {
    let n = bank.count(kind).await?;
    if json {
        println!("{}", json!({"type": kind, "count": n}));
    } else {
        println!("{n}");
    }
    Ok(())
}

/// Prints the records that meet every `field=value` criterion: `id<TAB>value` lines, or a
/// JSON array of `{"id", "value"}`.
pub async fn search(
    bank: &Bank,
    kind: &str,
    criteria: &[String],
    json: bool,
) -> Result<(), Failure> {
    let mut parsed = Criteria::new();
    for criterion in criteria {
        let (field, value) = parse_criterion(criterion)?;
        parsed = parsed.eq(field, value);
    }
    let mut hits = bank.search(kind, &parsed).await?;
    hits.sort_by(|a, b| a.0.cmp(&b.0));
    if json {
        let hits: Vec<Value> = hits
            .into_iter()
            .map(|(id, value)| json!({"id": id, "value": value}))
            .collect();
        println!("{}", Value::Array(hits));
    } else {
        for (id, value) in hits {
            println!("{id}\t{value}");
        }
    }
    Ok(())
}

/// `field=value`: the value as JSON when it parses, else as a string.
fn parse_criterion(criterion: &str) -> Result<(&str, Value), Failure> {
    let (field, text) = criterion
        .split_once('=')
        .filter(|(field, _)| !field.is_empty())
        .ok_or_else(|| Failure(format!("criterion {criterion:?} is not field=value")))?;
    let value = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()));
    Ok((field, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criteria_values_are_json_when_they_parse() {
        let parsed = |c| parse_criterion(c).map_err(|e| e.0);
        assert_eq!(parsed("age=36"), Ok(("age", json!(36))));
        assert_eq!(parsed("name=Ada"), Ok(("name", json!("Ada"))));
        assert_eq!(parsed("name=\"36\""), Ok(("name", json!("36"))));
        assert_eq!(parsed("a.b=x=y"), Ok(("a.b", json!("x=y"))));
        assert_eq!(parsed("empty="), Ok(("empty", json!(""))));
        assert!(parsed("=1").is_err());
        assert!(parsed("novalue").is_err());
    }
}
