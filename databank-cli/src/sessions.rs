//! `sessions`: the session store's view of a bank (what `databank-session-store` keeps there).
//! Session ids are credentials: they are printed only with `--show-ids`; otherwise each
//! session is labelled by a hash of its id.

use databank_core::Bank;
use databank_session_store::{DatabankStore, StoreOptions};
use serde_json::{json, Value};

use crate::cli::SessionsCommand;
use crate::{fnv64, Failure};

/// How a session is named in output: its id with `show_ids`, else `#` and 12 hex digits of a
/// hash of it (the same session, the same label).
fn label(sid: &str, show_ids: bool) -> String {
    if show_ids {
        sid.to_owned()
    } else {
        format!("#{:012x}", fnv64(sid) >> 16)
    }
}

/// Runs one `sessions` subcommand on the sessions of type `kind` in `bank`.
pub async fn sessions(
    bank: Bank,
    kind: String,
    command: SessionsCommand,
    json: bool,
) -> Result<(), Failure> {
    let store = DatabankStore::with_options(bank, StoreOptions::new().kind(kind));
    match command {
        SessionsCommand::Count => {
            let n = store.length().await.map_err(session_error)?;
            print(json, json!({"sessions": n}), &n.to_string());
        }
        SessionsCommand::List { show_ids } => {
            let mut ids: Vec<String> = store
                .all()
                .await
                .map_err(session_error)?
                .into_keys()
                .collect();
            ids.sort();
            let mut rows = Vec::new();
            for sid in ids {
                // Read again for the expiry; one that expired meanwhile is left out.
                let Some(session) = store.get(&sid).await.map_err(session_error)? else {
                    continue;
                };
                rows.push(json!({
                    "session": label(&sid, show_ids),
                    "keys": session.data.len(),
                    "bytes": Value::Object(session.data).to_string().len(),
                    "expires_at": session.expires_at.map(|at| at.to_rfc3339()),
                }));
            }
            if json {
                println!("{}", Value::Array(rows));
            } else {
                for row in rows {
                    println!(
                        "{}\t{} keys\t{} bytes\texpires {}",
                        row["session"].as_str().unwrap_or_default(),
                        row["keys"],
                        row["bytes"],
                        row["expires_at"].as_str().unwrap_or("never"),
                    );
                }
            }
        }
        SessionsCommand::Show { id } => {
            let session = store
                .get(&id)
                .await
                .map_err(session_error)?
                .ok_or_else(|| Failure("no live session has this id".into()))?;
            let data = Value::Object(session.data);
            let shown = json!({
                "bytes": data.to_string().len(),
                "expires_at": session.expires_at.map(|at| at.to_rfc3339()),
                "data": data,
            });
            if json {
                println!("{shown}");
            } else {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&shown).map_err(Failure::output)?
                );
            }
        }
        SessionsCommand::Clear => {
            let n = store.clear().await.map_err(session_error)?;
            print(
                json,
                json!({"deleted": n}),
                &format!("deleted {n} sessions"),
            );
        }
        SessionsCommand::Cleanup => {
            let n = store.cleanup().await.map_err(session_error)?;
            print(
                json,
                json!({"removed_expired": n}),
                &format!("removed {n} expired sessions"),
            );
        }
    }
    Ok(())
}

fn print(json: bool, value: Value, text: &str) {
    if json {
        println!("{value}");
    } else {
        println!("{text}");
    }
}

fn session_error(e: databank_session_store::SessionError) -> Failure {
    Failure(e.to_string())
}
