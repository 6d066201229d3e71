//! The query service: `GET /admin/ping` and `POST /query/service` for the statement shapes
//! `databank-couchbase` sends (its `statements.rs`) and the SDK's `CREATE INDEX`. This is no
//! SQL++ engine: a statement is matched by shape, its named parameters (`$name` in the request
//! body) are bound, and anything else answers a syntax error, as the real service does for a
//! statement it cannot parse (status `fatal`, error code 3000). Reads are always consistent
//! with every acknowledged write (what `request_plus` asks for).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use crate::store::{now_secs, Store};

/// The routes of the query service.
pub fn router(store: Arc<Store>) -> Router {
    Router::new()
        .route("/admin/ping", get(|| async { "{}" }))
        .route("/query/service", post(service))
        .with_state(store)
}

/// The condition every read statement shares (`statements.rs`, `LIVE`).
const LIVE: &str = "d.t = $t AND (d.e IS NULL OR d.e IS MISSING OR d.e > $now)";

fn answer(results: Vec<Value>) -> Response {
    let count = results.len();
    Json(json!({
        "requestID": "databank-testserver",
        "signature": {"*": "*"},
        "results": results,
        "status": "success",
        "metrics": {"elapsedTime": "0s", "executionTime": "0s", "resultCount": count, "resultSize": 0},
    }))
    .into_response()
}

fn syntax_error(statement: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({
            "requestID": "databank-testserver",
            "errors": [{"code": 3000, "msg": format!("syntax error (the test server does not know this statement): {statement}")}],
            "status": "fatal",
            "metrics": {"elapsedTime": "0s", "executionTime": "0s", "resultCount": 0, "resultSize": 0, "errorCount": 1},
        })),
    )
        .into_response()
}

/// A statement after its keyspace (`FROM <keyspace> AS d`), the keyspace itself skipped.
fn after_keyspace<'s>(statement: &'s str, head: &str) -> Option<&'s str> {
    let rest = statement.strip_prefix(head)?;
    let (_, tail) = rest.split_once(" AS d WHERE ")?;
    Some(tail)
}

async fn service(
    State(store): State<Arc<Store>>,
    Json(body): Json<Map<String, Value>>,
) -> Response {
    match execute(&store, &body) {
        Ok(results) => answer(results),
        Err(statement) => syntax_error(&statement),
    }
}

/// Runs the statement of a request body: its results, or the statement back when this server
/// does not know its shape.
fn execute(store: &Store, body: &Map<String, Value>) -> Result<Vec<Value>, String> {
    let Some(statement) = body.get("statement").and_then(Value::as_str) else {
        return Err("(none)".into());
    };
    let param = |name: &str| {
        body.get(&format!("${name}"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    if statement.starts_with("CREATE INDEX ") || statement.starts_with("CREATE PRIMARY INDEX ") {
        return Ok(Vec::new());
    }
    if let Some(rest) = after_keyspace(statement, "SELECT RAW META(d).id FROM ") {
        let Some(extra) = rest.strip_prefix(LIVE) else {
            return Err(statement.to_owned());
        };
        // Zero or more ` AND d.ix.`<field>` = $p<i>`.
        let mut equal = Vec::new();
        for clause in extra.split(" AND ").skip(1) {
            let Some((field, name)) = clause
                .strip_prefix("d.ix.`")
                .and_then(|c| c.split_once("` = $"))
            else {
                return Err(statement.to_owned());
            };
            equal.push((field.to_owned(), param(name)));
        }
        if !extra.is_empty() && equal.is_empty() {
            return Err(statement.to_owned());
        }
        let keys = live_keys(store, &param("t"), &param("now"), |doc| {
            equal
                .iter()
                .all(|(field, value)| doc.get("ix").and_then(|ix| ix.get(field)) == Some(value))
        });
        return Ok(keys.into_iter().map(Value::String).collect());
    }
    if let Some(rest) = after_keyspace(statement, "SELECT DISTINCT RAW d.t FROM ") {
        if rest != "d.t >= $lo AND d.t < $hi" {
            return Err(statement.to_owned());
        }
        let (lo, hi) = (param("lo"), param("hi"));
        let (Some(lo), Some(hi)) = (lo.as_str(), hi.as_str()) else {
            return Ok(Vec::new()); // comparisons with a non-string are never true
        };
        let mut tags: Vec<String> = store.with(|state| {
            let now = now_secs();
            state
                .docs
                .values()
                .filter(|doc| doc.live(now))
                .filter_map(|doc| {
                    let value: Value = serde_json::from_slice(&doc.value).ok()?;
                    let t = value.get("t")?.as_str()?;
                    (t >= lo && t < hi).then(|| t.to_owned())
                })
                .collect()
        });
        tags.sort();
        tags.dedup();
        return Ok(tags.into_iter().map(Value::String).collect());
    }
    if let Some(rest) = after_keyspace(statement, "SELECT RAW COUNT(*) FROM ") {
        if rest != LIVE {
            return Err(statement.to_owned());
        }
        let count = live_keys(store, &param("t"), &param("now"), |_| true).len();
        return Ok(vec![json!(count)]);
    }
    if let Some(rest) = after_keyspace(statement, "DELETE FROM ") {
        let purge = "d.t = $t AND d.e <= $now RETURNING RAW META(d).id";
        let prefixed = "d.t >= $lo AND d.t < $hi RETURNING RAW META(d).id";
        let matches: Box<dyn Fn(&Value) -> bool> = if rest == purge {
            let (t, now) = (param("t"), param("now"));
            Box::new(move |doc: &Value| {
                doc.get("t") == Some(&t)
                    && matches!((doc.get("e").and_then(Value::as_i64), now.as_i64()), (Some(e), Some(now)) if e <= now)
            })
        } else if rest == prefixed {
            let (lo, hi) = (param("lo"), param("hi"));
            Box::new(move |doc: &Value| {
                match (
                    doc.get("t").and_then(Value::as_str),
                    lo.as_str(),
                    hi.as_str(),
                ) {
                    (Some(t), Some(lo), Some(hi)) => t >= lo && t < hi,
                    _ => false,
                }
            })
        } else {
            return Err(statement.to_owned());
        };
        let deleted = store.with(|state| {
            let now = now_secs();
            let keys: Vec<Vec<u8>> = state
                .docs
                .iter()
                .filter(|(_, doc)| doc.live(now))
                .filter(|(_, doc)| {
                    serde_json::from_slice::<Value>(&doc.value).is_ok_and(|v| matches(&v))
                })
                .map(|(key, _)| key.clone())
                .collect();
            for key in &keys {
                state.docs.remove(key);
            }
            if !keys.is_empty() {
                state.next_cas();
            }
            keys
        });
        return Ok(deleted
            .into_iter()
            .map(|key| Value::String(String::from_utf8_lossy(&key).into_owned()))
            .collect());
    }
    Err(statement.to_owned())
}

/// Keys of live documents whose `t` is `t` and whose `e` is missing, null or after `now`, and
/// that `also` accepts.
fn live_keys(store: &Store, t: &Value, now: &Value, also: impl Fn(&Value) -> bool) -> Vec<String> {
    let now_ms = now.as_i64().unwrap_or(i64::MAX);
    store.with(|state| {
        let server_now = now_secs();
        state
            .docs
            .iter()
            .filter(|(_, doc)| doc.live(server_now))
            .filter_map(|(key, doc)| {
                let value: Value = serde_json::from_slice(&doc.value).ok()?;
                let live = value.get("t") == Some(t)
                    && match value.get("e") {
                        None | Some(Value::Null) => true,
                        Some(e) => e.as_i64().is_some_and(|e| e > now_ms),
                    };
                (live && also(&value)).then(|| String::from_utf8_lossy(key).into_owned())
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Doc;

    const KS: &str = "`b`.`_default`.`_default`";

    fn store() -> Store {
        let store = Store::default();
        store.with(|state| {
            for (key, doc) in [
                ("p:s::a", json!({"t": "p:s", "e": null, "ix": {"f1": "x"}})),
                ("p:s::b", json!({"t": "p:s", "e": 5000, "ix": {"f1": "y"}})),
                ("p:s::c", json!({"t": "p:s", "e": 1000})),
                ("q:s::d", json!({"t": "q:s"})),
            ] {
                let cas = state.next_cas();
                let value = doc.to_string().into_bytes();
                state.docs.insert(
                    key.as_bytes().to_vec(),
                    Doc {
                        value,
                        flags: 0,
                        datatype: 1,
                        cas,
                        expires: None,
                    },
                );
            }
        });
        store
    }

    fn run(store: &Store, statement: &str, params: Value) -> Result<Vec<Value>, String> {
        let mut body = Map::new();
        body.insert("statement".into(), json!(statement));
        body.insert("scan_consistency".into(), json!("request_plus"));
        if let Value::Object(params) = params {
            for (name, value) in params {
                body.insert(format!("${name}"), value);
            }
        }
        execute(store, &body)
    }

    fn sorted(mut values: Vec<Value>) -> Vec<Value> {
        values.sort_by_key(|v| v.to_string());
        values
    }

    /// The shapes of `databank-couchbase/src/statements.rs`, with their named parameters.
    #[test]
    fn the_driver_statements_answer_from_the_documents() -> Result<(), String> {
        let store = store();
        let scan = format!("SELECT RAW META(d).id FROM {KS} AS d WHERE {LIVE}");
        let now = json!({"t": "p:s", "now": 2000});
        assert_eq!(
            sorted(run(&store, &scan, now.clone())?),
            vec![json!("p:s::a"), json!("p:s::b")]
        );
        let count = format!("SELECT RAW COUNT(*) FROM {KS} AS d WHERE {LIVE}");
        assert_eq!(run(&store, &count, now.clone())?, vec![json!(2)]);
        let search = format!("{scan} AND d.ix.`f1` = $p0");
        let params = json!({"t": "p:s", "now": 2000, "p0": "y"});
        assert_eq!(run(&store, &search, params)?, vec![json!("p:s::b")]);
        let purge = format!(
            "DELETE FROM {KS} AS d WHERE d.t = $t AND d.e <= $now RETURNING RAW META(d).id"
        );
        assert_eq!(run(&store, &purge, now.clone())?, vec![json!("p:s::c")]);
        let prefixed = format!(
            "DELETE FROM {KS} AS d WHERE d.t >= $lo AND d.t < $hi RETURNING RAW META(d).id"
        );
        let range = json!({"lo": "p:", "hi": "p;"});
        assert_eq!(
            sorted(run(&store, &prefixed, range)?),
            vec![json!("p:s::a"), json!("p:s::b")]
        );
        assert_eq!(run(&store, &count, now)?, vec![json!(0)]);
        let tags = format!("SELECT DISTINCT RAW d.t FROM {KS} AS d WHERE d.t >= $lo AND d.t < $hi");
        assert_eq!(
            run(&store, &tags, json!({"lo": "A", "hi": "{"}))?,
            vec![json!("q:s")],
            "distinct tags in the range, of documents still there"
        );
        assert!(run(&store, &tags, json!({"lo": 1, "hi": "{"}))?.is_empty());
        assert!(run(&store, "CREATE INDEX `i` ON `b`(`t`)", json!({}))?.is_empty());
        Ok(())
    }

    /// A statement of another shape is a syntax error (code 3000, status `fatal`), never an
    /// empty success.
    #[test]
    fn other_statements_are_syntax_errors() {
        let store = store();
        for statement in [
            "SELECT * FROM `b`",
            "DELETE FROM `b` AS d WHERE TRUE RETURNING RAW META(d).id",
            &format!("SELECT RAW META(d).id FROM {KS} AS d WHERE {LIVE} OR TRUE"),
        ] {
            assert!(run(&store, statement, json!({})).is_err(), "{statement}");
        }
        assert_eq!(run(&store, "", json!({})), Err(String::new()));
        assert!(execute(&store, &Map::new()).is_err());
    }
}
