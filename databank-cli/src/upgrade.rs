//! `databank upgrade URL [--dry-run]`: moves a bank written by an older databank into this
//! version's layout. Only Redis banks of databank 0.2 have one to move; every other driver
//! reads what older versions wrote as it is.

use databank_core::driver::Url;
use serde_json::json;

use crate::Failure;

/// Upgrades (or, with `dry_run`, describes the upgrade of) the bank at `url`.
pub async fn upgrade(url: &str, dry_run: bool, json: bool) -> Result<(), Failure> {
    let scheme = Url::parse(url)
        .map(|u| u.scheme().to_owned())
        .map_err(|e| Failure(format!("not a bank URL: {e}")))?;
    if !scheme.starts_with("redis") {
        // Opening checks the scheme and reaches the bank, as every other command does.
        crate::open(url).await?.close().await?;
        let summary = format!("the {scheme} driver has one layout: nothing to upgrade");
        return report(json, dry_run, false, &[], &summary);
    }
    redis(url, dry_run, json).await
}

#[cfg(feature = "redis")]
async fn redis(url: &str, dry_run: bool, json: bool) -> Result<(), Failure> {
    let config = databank::redis::RedisConfig::from_url(url)?;
    let found = databank::redis::upgrade(config, dry_run).await?;
    let summary = match (found.old_layout, dry_run) {
        (false, _) => "already in this version's layout: nothing to upgrade".to_owned(),
        (true, true) => "in databank 0.2's layout; the upgrade would move:".to_owned(),
        (true, false) => "moved from databank 0.2's layout:".to_owned(),
    };
    report(json, dry_run, found.old_layout, &found.types, &summary)
}

#[cfg(not(feature = "redis"))]
async fn redis(_url: &str, _dry_run: bool, _json: bool) -> Result<(), Failure> {
    Err(Failure(
        "this build of databank has no Redis driver (feature `redis`)".into(),
    ))
}

/// Prints what was found: a line and one line per type, or one JSON object.
fn report(
    json: bool,
    dry_run: bool,
    old_layout: bool,
    types: &[(String, u64)],
    summary: &str,
) -> Result<(), Failure> {
    if json {
        let types: Vec<_> = types
            .iter()
            .map(|(kind, records)| json!({"type": kind, "records": records}))
            .collect();
        let line = json!({"old_layout": old_layout, "dry_run": dry_run, "types": types});
        println!("{}", serde_json::to_string(&line).map_err(Failure::output)?);
    } else {
        println!("{summary}");
        for (kind, records) in types {
            println!("  {kind}: {records} records");
        }
    }
    Ok(())
}
