//! MongoDB-specific behaviour against real servers: indices at open, literal criteria, outages
//! and restarts, and a second process reading what the first wrote.

use std::path::PathBuf;
use std::time::Duration;

use databank_core::testkit::{self, unique_name, RestartLimits};
use databank_core::{json, Bank, Criteria, Error, Result, Schema};
use databank_mongo::{MongoBank, MongoConfig};
use databank_testservers::Server;
use futures_util::TryStreamExt;
use mongodb::bson::Document;

/// The test server's URL; where there is none (outside CI), the test returns at once, after one
/// line saying so (`testkit::server_url`).
macro_rules! base_url {
    () => {
        databank_core::server_or_skip!("DATABANK_TEST_MONGO_URL", "cargo xtask services up mongo")
    };
}

/// The server's own connection string (our `timeout_ms` taken out), for the raw client.
fn server_url_of(base: &str) -> String {
    match MongoConfig::from_url(base) {
        Ok(config) => config.server_url,
        Err(e) => panic!("DATABANK_TEST_MONGO_URL: {e}"),
    }
}

fn with_database(base: &str, database: &str, query: &str) -> String {
    let mut url = match url::Url::parse(base) {
        Ok(url) => url,
        Err(e) => panic!("{base}: {e}"),
    };
    url.set_path(&format!("/{database}"));
    if !query.is_empty() {
        url.set_query(Some(query));
    }
    url.to_string()
}

fn schema() -> Schema {
    Schema::new().index("person", ["email", "name.last"])
}

async fn open(url: &str) -> Result<Bank> {
    Ok(Bank::new(
        MongoBank::connect(MongoConfig::from_url(url)?, schema()).await?,
    ))
}

fn to_err(e: impl std::fmt::Display) -> Error {
    Error::backend("test", e.to_string())
}

#[tokio::test]
async fn indices_are_created_at_open_idempotently() -> Result<()> {
    let database = unique_name("ix");
    let url = with_database(&base_url!(), &database, "");
    open(&url).await?;
    open(&url).await?; // a second open must not fail on existing indices
    let client = mongodb::Client::with_uri_str(&server_url_of(&base_url!()))
        .await
        .map_err(to_err)?;
    let cursor = client
        .database(&database)
        .collection::<Document>("person")
        .list_indexes()
        .await
        .map_err(to_err)?;
    let indexes: Vec<mongodb::IndexModel> = cursor.try_collect().await.map_err(to_err)?;
    let keys: Vec<String> = indexes
        .iter()
        .flat_map(|i| i.keys.keys().cloned())
        .collect();
    assert!(keys.iter().any(|k| k == "e"), "no TTL index: {keys:?}");
    assert!(
        keys.iter().filter(|k| k.starts_with("ix.")).count() == 2,
        "{keys:?}"
    );
    let ttl = indexes.iter().find(|i| i.keys.contains_key("e"));
    let expire = ttl
        .and_then(|i| i.options.as_ref())
        .and_then(|o| o.expire_after);
    assert_eq!(expire, Some(Duration::ZERO));
    Ok(())
}

#[tokio::test]
async fn operator_criteria_never_act_as_operators() -> Result<()> {
    let bank = open(&with_database(&base_url!(), &unique_name("inj"), "")).await?;
    bank.save("person", "a", json!({"email": "a@x"})).await?;
    bank.save("person", "b", json!({"email": {"$gt": ""}}))
        .await?;
    bank.save("person", "c", json!({"email": {"$where": "sleep(1000)"}}))
        .await?;
    for (criterion, expected) in [
        (json!({"$gt": ""}), vec!["b"]),
        (json!({"$ne": null}), vec![]),
        (json!({"$where": "sleep(1000)"}), vec!["c"]),
        (json!({"$regex": ".*"}), vec![]),
        (json!({"$exists": true}), vec![]),
    ] {
        for field in ["email", "name.last", "other"] {
            let hits = bank
                .search("person", &Criteria::new().eq(field, criterion.clone()))
                .await?;
            let mut ids: Vec<String> = hits.into_iter().map(|(id, _)| id).collect();
            ids.sort();
            let want: Vec<&str> = if field == "email" {
                expected.clone()
            } else {
                vec![]
            };
            assert_eq!(ids, want, "criterion {field} = {criterion}");
        }
    }
    Ok(())
}

/// The Python that runs SecantusDB (restart tests start their own server with it); where there
/// is none (outside CI), the test returns at once, after one line saying so.
macro_rules! secantus_python {
    () => {
        PathBuf::from(databank_core::server_or_skip!(
            "DATABANK_TEST_MONGO_PYTHON",
            "cargo xtask services up mongo (it installs SecantusDB)"
        ))
    };
}

#[tokio::test]
async fn survives_a_server_restart() -> Result<()> {
    let mut server = Server::secantus(&secantus_python!(), true).map_err(to_err)?;
    let url = with_database(server.url(), "restart", "timeout_ms=1000");
    let bank = open(&url).await?;
    let limits = RestartLimits {
        records: 30,
        probes: 2,
        hang: Duration::from_secs(10),
        recovery: Duration::from_secs(20),
        retry_every: Duration::from_millis(200),
    };
    let server = std::cell::RefCell::new(&mut server);
    testkit::survives_a_server_restart(
        &bank,
        || server.borrow_mut().stop(),
        || server.borrow_mut().start(),
        limits,
    )
    .await
}

#[tokio::test]
async fn a_timed_out_counter_is_not_retryable() -> Result<()> {
    let server = Server::secantus(&secantus_python!(), false).map_err(to_err)?;
    let timeout = Duration::from_millis(1000);
    let query = format!("timeout_ms={}", timeout.as_millis());
    let bank = open(&with_database(server.url(), "hang", &query)).await?;
    // Time is the subject: the call ends at its timeout; 2 s of headroom for a loaded machine.
    let hang = timeout * 2 + Duration::from_secs(2);
    testkit::a_timed_out_counter_is_not_retryable(
        &bank,
        || server.pause().unwrap_or_else(|e| panic!("{e}")),
        || server.resume().unwrap_or_else(|e| panic!("{e}")),
        hang,
    )
    .await
}

/// Time is the subject: open gives up after server selection (one timeout of 500 ms) and the
/// ping (another); 2 s of headroom for a loaded machine.
#[tokio::test]
async fn a_server_that_is_down_at_open_is_not_connected() -> Result<()> {
    testkit::a_server_down_at_open_is_unavailable(
        |port| open_owned(format!("mongodb://127.0.0.1:{port}/x?timeout_ms=500")),
        Duration::from_millis(500) * 2 + Duration::from_secs(2),
    )
    .await
}

async fn open_owned(url: String) -> Result<Bank> {
    open(&url).await
}

/// Run in a child process by the test below; reads what the parent wrote.
#[tokio::test]
#[ignore = "run as a child process by written_by_one_process_read_by_another"]
async fn child_reader() -> Result<()> {
    let url = std::env::var("DATABANK_CHILD_URL").map_err(to_err)?;
    let bank = open(&url).await?;
    let record = bank.read("person", "shared").await?;
    assert_eq!(
        record.value,
        json!({"email": "shared@x", "n": [1, 2.5, "3"], "a.b": {"$c": u64::MAX}})
    );
    bank.save("person", "from-child", json!({"email": "child@x"}))
        .await?;
    Ok(())
}

#[tokio::test]
async fn written_by_one_process_read_by_another() -> Result<()> {
    let url = with_database(&base_url!(), &unique_name("xproc"), "");
    let bank = open(&url).await?;
    let value = json!({"email": "shared@x", "n": [1, 2.5, "3"], "a.b": {"$c": u64::MAX}});
    bank.save("person", "shared", value).await?;
    let exe = std::env::current_exe().map_err(to_err)?;
    let child = std::process::Command::new(exe)
        .args(["--ignored", "--exact", "child_reader"])
        .env("DATABANK_CHILD_URL", &url)
        .output()
        .map_err(to_err)?;
    assert!(
        child.status.success(),
        "the child process failed: {}\n{}",
        child.status,
        String::from_utf8_lossy(&child.stdout)
    );
    let hits = bank
        .search("person", &Criteria::new().eq("email", "child@x"))
        .await?;
    assert_eq!(hits.len(), 1);
    Ok(())
}

/// Regression: the first increments of a new counter, racing each other, answered `WrongType`
/// when another task created the counter between the `$inc` (no match yet) and the read that
/// tells a missing counter from a non-integer one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn regression_incr_racing_a_create_is_not_wrong_type() -> Result<()> {
    let bank = open(&with_database(
        &base_url!(),
        &unique_name("race"),
        "timeout_ms=60000",
    ))
    .await?;
    for round in 0..10 {
        let key = format!("fresh{round}");
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (bank, key) = (bank.clone(), key.clone());
                tokio::spawn(async move { bank.incr_by("counter", &key, 1).await })
            })
            .collect();
        for task in tasks {
            task.await.map_err(to_err)??;
        }
        assert_eq!(
            bank.read("counter", &key).await?.value,
            json!(16),
            "round {round}"
        );
    }
    Ok(())
}

/// `create` over an expired record while the server purges it (as its TTL monitor may at any
/// moment): every create succeeds, none reports `AlreadyExists`. Regression test for the race
/// between our replace of the expired holder and the server's purge. The purge is made by a
/// concurrent `delete_many` here, so the interleaving is likely but not certain on each id.
#[tokio::test]
async fn create_over_an_expired_record_being_purged_succeeds() -> Result<()> {
    let database = unique_name("purge");
    let bank = open(&with_database(&base_url!(), &database, "")).await?;
    let ids: Vec<String> = (0..40).map(|i| format!("p{i}")).collect();
    use databank_core::driver::{chrono, Utc};
    let soon = Utc::now() + chrono::Duration::milliseconds(50);
    for id in &ids {
        bank.save("session", id, json!({"old": true}))
            .expires_at(Some(soon))
            .await?;
    }
    while Utc::now() <= soon {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let client = mongodb::Client::with_uri_str(&server_url_of(&base_url!()))
        .await
        .map_err(to_err)?;
    let collection = client.database(&database).collection::<Document>("session");
    let purger = tokio::spawn(async move {
        for id in 0..40 {
            // Only the expired holder, as the TTL monitor would: never the new record.
            let now = mongodb::bson::DateTime::now();
            let filter = mongodb::bson::doc! { "_id": format!("p{id}"), "e": { "$lte": now } };
            collection.delete_one(filter).await.map_err(to_err)?;
        }
        Ok::<(), Error>(())
    });
    for id in &ids {
        bank.create("session", id, json!({"new": true})).await?;
    }
    purger.await.map_err(to_err)??;
    for id in &ids {
        assert_eq!(bank.read("session", id).await?.value, json!({"new": true}));
    }
    Ok(())
}
