#![doc = include_str!("../README.md")]
//!
//! # What is here
//!
//! Everything a user touches: [`Bank`] (every operation is a method on it), [`open`], the
//! [`Error`] enum, [`Schema`], [`Criteria`], [`Record`], the stream types a scan returns
//! ([`RecordStream`], [`RecordsStream`]), and `json!`. A driver author implements
//! [`driver::Driver`] (see that module); the conformance kit is `databank_core::testkit`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use databank_core::driver::{RecordStream, RecordsStream};
pub use databank_core::{
    criteria, driver, json, redact, schemes, validate, Applied, Bank, Capabilities, Criteria,
    Error, Expiry, IfChanged, PatchCall, Record, Result, Revision, Schema, Value, WriteCall,
};

#[cfg(feature = "couchbase")]
pub use databank_couchbase as couchbase;
#[cfg(feature = "disk")]
pub use databank_disk as disk;
#[cfg(feature = "memory")]
pub use databank_memory as memory;
#[cfg(feature = "mongo")]
pub use databank_mongo as mongo;
#[cfg(feature = "redis")]
pub use databank_redis as redis;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub use databank_sql as sql;

/// Every URL scheme a driver of this workspace serves, with the feature of this crate that
/// compiles it in.
const SCHEMES: &[(&str, &str)] = &[
    ("memory", "memory"),
    ("disk", "disk"),
    ("redis", "redis"),
    ("rediss", "redis"),
    ("redis-cluster", "redis"),
    ("rediss-cluster", "redis"),
    ("mongodb", "mongo"),
    ("mongodb+srv", "mongo"),
    ("postgres", "postgres"),
    ("postgresql", "postgres"),
    ("sqlite", "sqlite"),
    ("couchbase", "couchbase"),
    ("couchbases", "couchbase"),
];

/// Opens a bank by URL with the drivers this build has (its features), registering them on
/// first use. A URL of a driver this build lacks fails with [`Error::UnknownScheme`] naming the
/// feature to enable; a third party's driver, once registered with
/// [`driver::register`], opens here too.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> databank::Result<()> {
/// let bank = databank::open("memory://", databank::Schema::new()).await?;
/// bank.save("thing", "a", databank::json!({"n": 1})).await?;
/// # Ok(())
/// # }
/// ```
pub async fn open(url: &str, schema: Schema) -> Result<Bank> {
    register_drivers()?;
    match databank_core::open(url, schema).await {
        Err(Error::UnknownScheme { scheme, registered }) => {
            match SCHEMES.iter().find(|(known, _)| *known == scheme) {
                Some((_, feature)) => Err(Error::InvalidInput(format!(
                    "{scheme}:// needs the {feature} driver, which this build does not have: \
                     enable the `{feature}` feature of the `databank` crate"
                ))),
                None => Err(Error::UnknownScheme { scheme, registered }),
            }
        }
        other => other,
    }
}

/// Registers the drivers this build has (its features) with the URL registry, for
/// `databank_core::open` and for code that lists [`schemes`]; [`open`] calls it itself.
/// Calling it again is harmless; it fails only when another driver has taken one of their
/// schemes.
pub fn register_drivers() -> Result<()> {
    #[cfg(feature = "memory")]
    databank_memory::register()?;
    #[cfg(feature = "disk")]
    databank_disk::register()?;
    #[cfg(feature = "redis")]
    databank_redis::register()?;
    #[cfg(feature = "mongo")]
    databank_mongo::register()?;
    #[cfg(feature = "couchbase")]
    databank_couchbase::register()?;
    #[cfg(any(feature = "postgres", feature = "sqlite"))]
    databank_sql::register()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scheme_names_a_feature_of_this_crate() {
        let features = [
            "memory",
            "disk",
            "redis",
            "mongo",
            "postgres",
            "sqlite",
            "couchbase",
        ];
        for (scheme, feature) in SCHEMES {
            assert!(features.contains(feature), "{scheme}: {feature}");
        }
    }
}

/// The workspace README, whose example runs as a doc test of this crate (doc tests only: not
/// part of the API, and not in the published package, which has no workspace README).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct WorkspaceReadme;
