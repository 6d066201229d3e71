//! `info`: what a bank is and what it holds.

use databank_core::{Bank, Capabilities};
use serde_json::json;

use crate::Failure;

/// The capabilities a driver has, by name.
fn capability_names(caps: &Capabilities) -> Vec<&'static str> {
    [
        ("supports_kinds", caps.supports_kinds),
        ("supports_count_expired", caps.supports_count_expired),
        ("persistent", caps.persistent),
        ("multi_process", caps.multi_process),
        ("native_expiry", caps.native_expiry),
        ("native_counters", caps.native_counters),
        ("native_search", caps.native_search),
        ("native_conditional_update", caps.native_conditional_update),
        ("native_lists", caps.native_lists),
        ("native_patch", caps.native_patch),
        ("native_patch_on", caps.native_patch_on),
        ("native_read_if_changed", caps.native_read_if_changed),
    ]
    .into_iter()
    .filter_map(|(name, has)| has.then_some(name))
    .collect()
}

/// Prints the bank's driver (by URL scheme), its capabilities, and its types with counts of
/// live records and, where the backend can tell, of expired ones not yet purged.
pub async fn info(bank: &Bank, url: &str, json: bool) -> Result<(), Failure> {
    let scheme = url.split(':').next().unwrap_or_default();
    let caps = bank.capabilities();
    let capabilities = capability_names(&caps);
    let mut types = Vec::new();
    for kind in bank.kinds().await? {
        let count = bank.count(&kind).await?;
        let expired = if caps.supports_count_expired {
            Some(bank.count_expired(&kind).await?)
        } else {
            None
        };
        types.push((kind, count, expired));
    }
    if json {
        let types: Vec<_> = types
            .iter()
            .map(|(kind, count, expired)| {
                json!({"type": kind, "count": count, "expired_not_purged": expired})
            })
            .collect();
        println!(
            "{}",
            json!({
                "url": databank_core::redact(url),
                "scheme": scheme,
                "capabilities": capabilities,
                "types": types,
            })
        );
    } else {
        println!("bank:         {}", databank_core::redact(url));
        println!("scheme:       {scheme}");
        println!("capabilities: {}", capabilities.join(", "));
        println!(
            "types:        {}",
            if types.is_empty() { "none" } else { "" }
        );
        for (kind, count, expired) in &types {
            let expired = match expired {
                Some(n) => format!("{n} expired, not yet purged"),
                None => "expired: the backend cannot tell".into(),
            };
            println!("  {kind:<24} {count:>10} live records ({expired})");
        }
    }
    Ok(())
}
