//! A patch as one sub-document multi-mutation, with no read before it (see `layout.md`,
//! "Patches"). The server cannot compare a record's millisecond expiry with the time, nor add
//! up its size, so two counters in the document do it for the driver: a counter step whose
//! result would pass `i64::MAX` fails the whole multi-mutation (kv_engine
//! `docs/SubDocument.md`, counter: "SUBDOC_DELTA_ERANGE" when the result is out of range), and
//! nothing of it applies.
//!
//! - `p.g`, the expiry guard, holds `i64::MAX - e + 1` (`0` with no expiry): adding the time in
//!   milliseconds overflows exactly when the record has expired (`e <= now`).
//! - `p.q`, the size budget, holds `i64::MAX - MAX_VALUE_BYTES + b`, where `b` is at least the
//!   value's size as compact JSON: adding what a patch can add overflows exactly when `b` would
//!   pass the limit. A full write sets `b` to the exact size; a patch adds the size of the
//!   entries it sets (plus a comma each) and takes nothing off for what it replaces or
//!   removes, so `b` only grows until a patch finds no room. That patch, and anything else
//!   the multi-mutation cannot do, goes the read-and-write way, which measures the record and
//!   writes it whole with an exact budget again.

use couchbase::options::kv_options::MutateInOptions;
use couchbase::subdoc::mutate_in_specs::MutateInSpec;
use databank_core::driver::entries_size;
use databank_core::driver::{canonical, index_field, lookup};
use databank_core::driver::{random_revision, DateTime, Patch, PatchExpiry, Utc};
use databank_core::{Result, Revision, Value};

use crate::codec::{expiry_guard, server_expiry};
use crate::error::map_err;

/// The most specs one multi-mutation may hold (`docs/SubDocument.md`, "Multi-Path").
const MAX_SPECS: usize = 16;
/// The longest key the fast path addresses (the server's path limit is 1,024 bytes).
const MAX_PATH_KEY: usize = 1000;

/// The path of top-level key `key` of the value: `v.` and the key in backticks, a backtick
/// doubled (`docs/SubDocument.md`, "Path syntax"). `None` for a key the fast path leaves to the
/// read-and-write way: empty, with a control character, or too long for a path.
fn value_path(key: &str) -> Option<String> {
    if key.is_empty() || key.len() > MAX_PATH_KEY || key.chars().any(char::is_control) {
        return None;
    }
    Some(format!("v.`{}`", key.replace('`', "``")))
}

/// One patch as a multi-mutation: its specs, options, and the revision it writes.
pub struct Plan {
    /// The specs, in the order the server applies them.
    pub specs: Vec<MutateInSpec>,
    /// The expiry to set, or to keep.
    pub options: MutateInOptions,
    /// The record's revision once it applies.
    pub revision: Revision,
}

/// The multi-mutation for `patch` on a record whose type indexes `indexed`, at `now`; `None`
/// when it must go the read-and-write way (a key it cannot address, too many specs). Fails
/// only on what would fail either way: set values too large or too deep.
pub fn plan(patch: &Patch<'_>, indexed: &[String], now: DateTime<Utc>) -> Result<Option<Plan>> {
    let growth = entries_size(&patch.set)? + patch.set.len();
    let now_ms = now.timestamp_millis();
    let revision = random_revision();
    let mut specs = Vec::with_capacity(6 + patch.set.len() + patch.remove.len());
    // The record must be live: this step overflows once `e <= now`.
    specs.push(MutateInSpec::increment("p.g", now_ms, None).map_err(map_err)?);
    let mut options = MutateInOptions::new();
    match patch.expiry {
        PatchExpiry::Keep => {
            specs.push(MutateInSpec::decrement("p.g", now_ms, None).map_err(map_err)?);
            options = options.preserve_expiry(true);
        }
        PatchExpiry::Set(at) => {
            specs.push(MutateInSpec::upsert("p.g", expiry_guard(at), None).map_err(map_err)?);
            specs.push(
                MutateInSpec::upsert("e", at.map(|at| at.timestamp_millis()), None)
                    .map_err(map_err)?,
            );
            // With no expiry option the mutation clears the document's expiry.
            if let Some(expiry) = server_expiry(at, now) {
                options = options.expiry(expiry);
            }
        }
    }
    if growth > 0 {
        let growth = i64::try_from(growth).unwrap_or(i64::MAX);
        specs.push(MutateInSpec::increment("p.q", growth, None).map_err(map_err)?);
    }
    specs.push(MutateInSpec::upsert("r", revision.get(), None).map_err(map_err)?);
    for (key, value) in &patch.set {
        let Some(path) = value_path(key) else {
            return Ok(None);
        };
        specs.push(MutateInSpec::upsert(path, value, None).map_err(map_err)?);
    }
    let mut removed: Vec<&str> = Vec::new();
    for key in &patch.remove {
        // A key also set ends up set; one named twice is removed once.
        if patch.set.contains_key(key) || removed.contains(&key.as_str()) {
            continue;
        }
        let Some(path) = value_path(key) else {
            return Ok(None);
        };
        removed.push(key);
        specs.push(MutateInSpec::remove(path, None));
    }
    for field in indexed {
        let (head, rest) = field.split_once('.').unwrap_or((field, ""));
        let now_there = match patch.set.get(head) {
            Some(value) if rest.is_empty() => Some(value),
            Some(value) => lookup(value, rest),
            None if removed.contains(&head) => None,
            None => continue, // untouched
        };
        // `null` never equals a parameter, as an absent field never matches.
        let entry = now_there.map(|value| Value::String(canonical(value)));
        let path = format!("ix.{}", index_field(field));
        specs.push(MutateInSpec::upsert(path, entry, None).map_err(map_err)?);
    }
    if specs.len() > MAX_SPECS {
        return Ok(None);
    }
    Ok(Some(Plan {
        specs,
        options,
        revision,
    }))
}

/// Whether a refused multi-mutation goes the read-and-write way: the server applied none of
/// it, and the reason is one that way handles (no document, an expired one, a value that is
/// not an object, a budget used up, a key to remove that is not there, an older document
/// without `p`, a path or value the server would not take), or the SDK refused to send it
/// (a server before 7.0 cannot preserve an expiry).
pub fn falls_back(refused: &couchbase::error::Error) -> bool {
    use couchbase::error::ErrorKind;
    matches!(
        refused.kind(),
        ErrorKind::InvalidArgument(_)
            | ErrorKind::FeatureNotAvailable(_)
            | ErrorKind::DocumentNotFound
            | ErrorKind::DocumentNotJSON
            | ErrorKind::PathNotFound
            | ErrorKind::PathMismatch
            | ErrorKind::PathInvalid
            | ErrorKind::PathTooBig
            | ErrorKind::PathTooDeep
            | ErrorKind::ValueTooDeep
            | ErrorKind::ValueInvalid
            | ErrorKind::NumberTooBig
            | ErrorKind::DeltaInvalid
            | ErrorKind::ValueTooLarge
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use databank_core::driver::MAX_VALUE_BYTES;
    use databank_core::json;

    fn patch() -> Patch<'static> {
        Patch::new("session", "s1")
    }

    fn specs(patch: &Patch<'_>, indexed: &[&str]) -> Option<usize> {
        let indexed: Vec<String> = indexed.iter().map(|s| s.to_string()).collect();
        plan(patch, &indexed, Utc::now())
            .expect("a plan")
            .map(|plan| plan.specs.len())
    }

    #[test]
    fn a_patch_is_guards_revision_and_one_spec_a_key() {
        // guard check, guard kept, budget, revision, one key
        assert_eq!(specs(&patch().set("a", json!(1)), &[]), Some(5));
        // guard check, guard set, e, revision, one removal (no growth: no budget step)
        assert_eq!(
            specs(&patch().remove("a").expiry(PatchExpiry::Set(None)), &[]),
            Some(5)
        );
        // a key both removed and set is set once; a key removed twice is removed once
        assert_eq!(
            specs(
                &patch()
                    .set("a", json!(1))
                    .remove("a")
                    .remove("b")
                    .remove("b"),
                &[]
            ),
            Some(6)
        );
        // an indexed field under a touched key is rewritten; one under an untouched key is not
        assert_eq!(
            specs(
                &patch().set("user", json!({"email": "x"})),
                &["user.email", "name"]
            ),
            Some(6)
        );
    }

    #[test]
    fn what_a_path_cannot_name_or_one_mutation_cannot_hold_goes_the_long_way() {
        assert_eq!(specs(&patch().set("", json!(1)), &[]), None);
        assert_eq!(specs(&patch().remove("a\0b"), &[]), None);
        assert_eq!(specs(&patch().set("k".repeat(1024), json!(1)), &[]), None);
        let mut many = patch();
        // 4 specs of guards, budget and revision, 13 keys: 17 specs
        for i in 0..13 {
            many = many.set(format!("k{i}"), json!(i));
        }
        assert_eq!(specs(&many, &[]), None);
        assert_eq!(value_path("a.b`c"), Some("v.`a.b``c`".into()));
    }

    #[test]
    fn only_refusals_that_applied_nothing_fall_back() {
        use couchbase::error::{Error as SdkError, ErrorKind};
        for kind in [
            ErrorKind::DocumentNotFound,
            ErrorKind::PathNotFound,
            ErrorKind::PathMismatch,
            ErrorKind::DeltaInvalid,
            ErrorKind::NumberTooBig,
        ] {
            assert!(falls_back(&SdkError::new(kind)));
        }
        for kind in [
            ErrorKind::ServerTimeout,
            ErrorKind::RequestCanceled,
            ErrorKind::AuthenticationFailure,
            ErrorKind::TemporaryFailure,
        ] {
            assert!(!falls_back(&SdkError::new(kind)));
        }
    }

    #[test]
    fn values_past_the_limits_fail_as_they_would_anyway() {
        let big = "x".repeat(MAX_VALUE_BYTES);
        let too_large = plan(&patch().set("a", json!(big)), &[], Utc::now());
        assert!(matches!(
            too_large,
            Err(databank_core::Error::InvalidInput(_))
        ));
    }
}
