//! The behaviours, one `pub async fn` each, grouped by area.

mod capabilities;
mod crud;
mod expiry;
mod input;
mod known;
mod lists;
mod loops;
mod patch;
mod search;

pub use capabilities::*;
pub use crud::*;
pub use expiry::*;
pub use input::*;
pub use known::*;
pub use lists::*;
pub use loops::*;
pub use patch::*;
pub use search::*;

/// Asserts that a result is the error variant given, with a message naming what came instead.
macro_rules! assert_err {
    ($result:expr, $pattern:pat) => {
        match $result {
            Err($pattern) => {}
            other => panic!(
                "expected {} from `{}`, got {:?}",
                stringify!($pattern),
                stringify!($result),
                other
            ),
        }
    };
}
pub(crate) use assert_err;

use crate::{Bank, Result};
use serde_json::Value;

/// The ids of search hits, sorted.
pub(crate) fn ids(hits: Vec<(String, Value)>) -> Vec<String> {
    let mut ids: Vec<String> = hits.into_iter().map(|(id, _)| id).collect();
    ids.sort();
    ids
}

/// Every id a scan yields, sorted.
pub(crate) async fn scan_ids(bank: &Bank, kind: &str) -> Result<Vec<String>> {
    use futures_util::StreamExt;
    let mut stream = bank.scan(kind);
    let mut ids = Vec::new();
    while let Some(item) = stream.next().await {
        ids.push(item?.0);
    }
    ids.sort();
    Ok(ids)
}
