//! A patch is one sub-document multi-mutation, seen in the stored document: its size budget
//! `p.q` grows by what the patch set, where the read-and-write way would have measured the
//! record again; and what the multi-mutation cannot do (a key to remove that is not there)
//! goes that way. Against the Couchbase that `DATABANK_TEST_COUCHBASE_URL` names (`cargo xtask
//! test` provides it), read back with the SDK itself.

use std::time::Duration;

use couchbase::authenticator::{Authenticator, PasswordAuthenticator};
use couchbase::cluster::Cluster;
use couchbase::collection::Collection;
use couchbase::options::cluster_options::ClusterOptions;
use databank_core::testkit::{server_url, unique_name};
use databank_core::validate::MAX_VALUE_BYTES;
use databank_core::{json, Bank, Result, Schema, Value};
use databank_couchbase::{CouchbaseBank, CouchbaseConfig};

fn url() -> Option<String> {
    let url = server_url(
        "DATABANK_TEST_COUCHBASE_URL",
        "cargo xtask services up couchbase",
    )?;
    let join = if url.contains('?') { '&' } else { '?' };
    Some(format!("{url}{join}prefix={}", unique_name("layout")))
}

/// The SDK's own handle on the collection (the cluster must outlive it).
async fn raw(config: &CouchbaseConfig) -> (Cluster, Collection) {
    let auth = Authenticator::PasswordAuthenticator(PasswordAuthenticator::new(
        config.username.clone(),
        config.password.clone(),
    ));
    let cluster = Cluster::connect(config.connection_string.clone(), ClusterOptions::new(auth))
        .await
        .expect("the SDK connects");
    let collection = cluster
        .bucket(config.bucket.clone())
        .scope(config.scope.clone())
        .collection(config.collection.clone());
    (cluster, collection)
}

async fn document(collection: &Collection, key: &str) -> Value {
    collection
        .get(key, None)
        .await
        .expect("the document is there")
        .content_as::<Value>()
        .expect("it is JSON")
}

/// The size `b` that the budget `p.q` of a document stands for.
fn budgeted(document: &Value) -> i64 {
    let q = document["p"]["q"].as_i64().expect("p.q is an integer");
    q - (i64::MAX - MAX_VALUE_BYTES as i64)
}

#[tokio::test]
async fn a_patch_is_one_mutation_and_falls_back_only_when_it_must() -> Result<()> {
    let Some(url) = url() else {
        return Ok(());
    };
    let config = CouchbaseConfig::from_url(&url)?;
    let bank = Bank::new(CouchbaseBank::connect(config.clone(), Schema::new()).await?);
    let (_cluster, collection) = raw(&config).await;
    let key = format!("{}:session::s1", config.prefix);

    bank.save("session", "s1", json!({"a": "xxxxxxxxxx"}))
        .await?;
    let written = document(&collection, &key).await;
    assert_eq!(budgeted(&written), r#"{"a":"xxxxxxxxxx"}"#.len() as i64);

    let revision = bank
        .patch("session", "s1")
        .set("a", "y")
        .expires_in(Duration::from_secs(3600))
        .await?;
    let patched = document(&collection, &key).await;
    // Grown by `"a":"y"` and a comma, not measured again (that would be 9).
    assert_eq!(budgeted(&patched), 18 + 7 + 1);
    assert_eq!(patched["v"], json!({"a": "y"}));
    assert_eq!(patched["r"].as_u64(), Some(revision.get()));
    let record = bank.read("session", "s1").await?;
    let e = record.expires_at.expect("an expiry").timestamp_millis();
    assert_eq!(patched["e"].as_i64(), Some(e));
    assert_eq!(patched["p"]["g"].as_i64(), Some(i64::MAX - e + 1));

    // Removing a key that is not there fails the multi-mutation; the read-and-write way
    // does it and measures the record exactly again.
    bank.patch("session", "s1").remove("missing").await?;
    let rewritten = document(&collection, &key).await;
    assert_eq!(budgeted(&rewritten), r#"{"a":"y"}"#.len() as i64);
    assert_eq!(rewritten["v"], json!({"a": "y"}));
    assert_eq!(
        bank.read("session", "s1")
            .await?
            .expires_at
            .map(|at| at.timestamp_millis()),
        Some(e),
        "the expiry is kept"
    );
    bank.delete("session", "s1").await?;
    Ok(())
}
