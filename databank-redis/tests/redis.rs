//! Redis-specific behaviour against real servers: key layout, prefix isolation, stale index
//! entries, outages and restarts, and a second process reading what the first wrote.

use std::time::Duration;

use databank_core::testkit::{self, unique_name, RestartLimits};
use databank_core::{json, Bank, Criteria, Error, Result, Schema};
use databank_redis::{bucket, RedisBank, RedisConfig, BUCKETS};
use databank_testservers::Server;
use redis::AsyncCommands;

/// The test server's URL; where there is none (outside CI), the test returns at once, after one
/// line saying so.
macro_rules! base_url {
    () => {
        databank_core::server_or_skip!("DATABANK_TEST_REDIS_URL", "cargo xtask services up redis")
    };
}

fn with_prefix(base: &str, prefix: &str, extra: &str) -> String {
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}prefix={prefix}{extra}")
}

fn schema() -> Schema {
    Schema::new().index("person", ["email"])
}

async fn open(url: &str) -> Result<Bank> {
    Ok(Bank::new(
        RedisBank::connect(RedisConfig::from_url(url)?, schema()).await?,
    ))
}

async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url).unwrap_or_else(|e| panic!("{e}"));
    client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn keys(con: &mut redis::aio::MultiplexedConnection, pattern: &str) -> Vec<Vec<u8>> {
    let mut found: Vec<Vec<u8>> = Vec::new();
    let mut iter: redis::AsyncIter<Vec<u8>> = con
        .scan_match(pattern)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    while let Some(key) = futures_util::StreamExt::next(&mut iter).await {
        found.push(key.unwrap_or_else(|e| panic!("{e}")));
    }
    found
}

fn to_err(e: impl std::fmt::Display) -> Error {
    Error::backend("test", e.to_string())
}

#[tokio::test]
async fn keys_stay_under_the_prefix_and_prefixes_are_isolated() -> Result<()> {
    let base = base_url!();
    let (p1, p2) = (unique_name("iso"), unique_name("iso"));
    let a = open(&with_prefix(&base, &p1, "")).await?;
    let b = open(&with_prefix(&base, &p2, "")).await?;
    for id in ["x", "*", "a:b", "[1]", "sp ace", "nul\0"] {
        a.save("person", id, json!({"email": "same@x", "who": "a"}))
            .await?;
        b.save("person", id, json!({"email": "same@x", "who": "b"}))
            .await?;
    }
    a.incr_by("counter", "c", 1).await?;
    assert_eq!(a.count("person").await?, 6);
    let hits = b
        .search("person", &Criteria::new().eq("email", "same@x"))
        .await?;
    assert_eq!(hits.len(), 6);
    assert!(hits.iter().all(|(_, v)| v["who"] == "b"));
    b.delete("person", "*").await?;
    assert_eq!(a.read("person", "*").await?.value["who"], "a");
    assert_eq!(a.count("person").await?, 6);

    let mut con = raw(&base).await;
    let mine = keys(&mut con, &format!("{p1}:*")).await;
    assert!(!mine.is_empty());
    for key in &mine {
        let text = String::from_utf8_lossy(key);
        let layout_ok = (0..BUCKETS).any(|b| {
            ["person", "counter"].iter().any(|kind| {
                let bucket = format!("{p1}:{{{kind}:{b}}}:");
                ["r:", "z", "x", "i:5:email:"]
                    .iter()
                    .any(|part| text.starts_with(&format!("{bucket}{part}")))
            })
        });
        assert!(layout_ok, "key outside the documented layout: {text:?}");
    }
    Ok(())
}

/// Ids that all live in one bucket, so that its sorted set spans many pages.
fn ids_in_one_bucket(n: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("r{i:06}"))
        .filter(|id| bucket(id) == 0)
        .take(n)
        .collect()
}

/// A scan pages through the type's sorted set: every record present throughout is yielded
/// exactly once even when the ids its pages end at are deleted mid-scan (the cursor is then
/// found again among the entries of its score: here one shared expiry, and no expiry).
#[tokio::test]
async fn a_scan_pages_exactly_once_through_deletions() -> Result<()> {
    use futures_util::TryStreamExt;
    let url = with_prefix(&base_url!(), &unique_name("page"), "");
    let bank = open(&url).await?;
    let later = databank_core::driver::Utc::now() + Duration::from_secs(3600);
    let ids = ids_in_one_bucket(1500);
    for (i, id) in ids.iter().enumerate() {
        // Most never expire (one score, ordered by id); 150 share one expiry.
        let expiry = (i % 2 == 0 && i < 300).then_some(later);
        bank.create("item", id, json!({"n": i}))
            .expires_at(expiry)
            .await?;
    }
    let mut seen = std::collections::HashMap::new();
    let mut stream = bank.scan_records("item");
    // Four waves of deletions as the scan starts (ids ≡ wave mod 5): the pages listed ahead of
    // them end at ids they delete (r0511 ends the second page, among the unexpiring ids), so
    // the next page starts from a cursor that is gone.
    let mut consumed = 0;
    while let Some((id, _)) = stream.try_next().await? {
        *seen.entry(id).or_insert(0) += 1;
        if consumed < 4 {
            let wave = consumed;
            for i in (wave..1500).step_by(5) {
                bank.delete("item", &ids[i]).await?;
            }
        }
        consumed += 1;
    }
    assert!(seen.values().all(|n| *n == 1), "an id came twice");
    for i in (4..1500).step_by(5) {
        assert_eq!(seen.get(&ids[i]), Some(&1), "{} was skipped", ids[i]);
    }
    Ok(())
}

#[tokio::test]
async fn expired_records_leave_no_index_entries_behind() -> Result<()> {
    let base = base_url!();
    let prefix = unique_name("stale");
    let bank = open(&with_prefix(&base, &prefix, "")).await?;
    let soon = databank_core::testkit::in_ms(200);
    for i in 0..10 {
        bank.save("person", &format!("p{i}"), json!({"email": "e@x"}))
            .expires_at(soon)
            .await?;
    }
    bank.save("person", "stays", json!({"email": "e@x"}))
        .await?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Search never returns a stale id, before any purge.
    let hits = bank
        .search("person", &Criteria::new().eq("email", "e@x"))
        .await?;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].0, "stays");
    // Redis expired the records by itself: the purge counts only those it deleted.
    let purged = bank.purge_expired("person").await?;
    assert!(purged <= 10, "purged {purged} of 10");
    let mut con = raw(&base).await;
    let (members, lists, entries) =
        bookkeeping(&mut con, &prefix, "person", "email", "\"e@x\"").await;
    assert_eq!(members, ["stays"], "stale index entries left after purge");
    assert_eq!((lists, entries), (1, 1));
    Ok(())
}

/// What a type's buckets hold besides records: the ids in one index (`field` = `json`), how
/// many ids have index lists, and how many sorted-set entries there are.
async fn bookkeeping(
    con: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
    kind: &str,
    field: &str,
    json: &str,
) -> (Vec<String>, usize, usize) {
    let (mut members, mut lists, mut entries) = (Vec::new(), 0, 0);
    for b in 0..BUCKETS {
        let bucket = format!("{prefix}:{{{kind}:{b}}}:");
        let index = format!("{bucket}i:{}:{field}:{json}", field.len());
        let ids: Vec<String> = con.smembers(&index).await.unwrap_or_else(|e| panic!("{e}"));
        members.extend(ids);
        let n: usize = con
            .hlen(format!("{bucket}x"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        lists += n;
        let n: usize = con
            .zcard(format!("{bucket}z"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        entries += n;
    }
    (members, lists, entries)
}

/// A bank whose owner never purges does not grow: each write sweeps expired entries of its
/// bucket, so the bookkeeping expired records leave behind is bounded by the live records.
#[tokio::test]
async fn writes_sweep_what_expired_records_leave_behind() -> Result<()> {
    let base = base_url!();
    let prefix = unique_name("sweep");
    let bank = open(&with_prefix(&base, &prefix, "")).await?;
    let gone = databank_core::testkit::in_ms(-1_000);
    for i in 0..500 {
        bank.save("person", &format!("old{i}"), json!({"email": "old@x"}))
            .expires_at(gone)
            .await?;
    }
    let mut con = raw(&base).await;
    let (members, lists, entries) =
        bookkeeping(&mut con, &prefix, "person", "email", "\"old@x\"").await;
    assert!(
        members.len() + lists + entries > 0,
        "nothing to sweep was written"
    );
    // Live writes (as many as the expired ones) sweep their buckets as they go.
    for i in 0..500 {
        bank.save("person", &format!("new{i}"), json!({"email": "new@x"}))
            .await?;
    }
    let (members, lists, entries) =
        bookkeeping(&mut con, &prefix, "person", "email", "\"old@x\"").await;
    assert!(members.is_empty(), "{} stale index entries", members.len());
    assert_eq!(
        (lists, entries),
        (500, 500),
        "only the live records' bookkeeping stays"
    );
    Ok(())
}

#[tokio::test]
async fn survives_a_server_restart() -> Result<()> {
    let mut server = match Server::redis(true) {
        Ok(server) => server,
        Err(e) => panic!("this test starts its own redis-server and could not: {e}"),
    };
    let url = with_prefix(server.url(), "restart", "&timeout_ms=500");
    let bank = open(&url).await?;
    let limits = RestartLimits {
        records: 50,
        probes: 3,
        hang: Duration::from_secs(5),
        recovery: Duration::from_secs(10),
        retry_every: Duration::from_millis(100),
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
    let server = match Server::redis(false) {
        Ok(server) => server,
        Err(e) => panic!("this test starts its own redis-server and could not: {e}"),
    };
    let timeout = Duration::from_millis(500);
    let query = format!("&timeout_ms={}", timeout.as_millis());
    let bank = open(&with_prefix(server.url(), "hang", &query)).await?;
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

/// Time is the subject: open gives up within its timeout (300 ms); 2 s of headroom for a
/// loaded machine.
#[tokio::test]
async fn a_server_that_is_down_at_open_is_not_connected() -> Result<()> {
    testkit::a_server_down_at_open_is_unavailable(
        |port| open_owned(format!("redis://127.0.0.1:{port}?timeout_ms=300")),
        Duration::from_millis(300) + Duration::from_secs(2),
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
        json!({"email": "shared@x", "n": [1, 2.5, "3"]})
    );
    bank.save("person", "from-child", json!({"email": "child@x"}))
        .await?;
    Ok(())
}

#[tokio::test]
async fn written_by_one_process_read_by_another() -> Result<()> {
    let url = with_prefix(&base_url!(), &unique_name("xproc"), "");
    let bank = open(&url).await?;
    bank.save(
        "person",
        "shared",
        json!({"email": "shared@x", "n": [1, 2.5, "3"]}),
    )
    .await?;
    let exe = std::env::current_exe().map_err(to_err)?;
    // The child's output is captured so that its test summary does not mix with ours.
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

/// A bank written by databank 0.2 (its keys written here by hand, as 0.2 wrote them) does not
/// open: the error names `databank upgrade`. A dry run of the upgrade says what it would move
/// and changes nothing; the upgrade moves records, expiries and index entries into the
/// bucketed layout, and the bank then opens.
#[tokio::test]
async fn a_bank_of_the_0_2_layout_opens_only_after_an_explicit_upgrade() -> Result<()> {
    let base = base_url!();
    let p = unique_name("old");
    let mut con = raw(&base).await;
    let later = (databank_core::driver::Utc::now() + Duration::from_secs(3600)).timestamp_millis();
    let index = |email: &str| format!("{p}:i:person:5:email:\"{email}\"");
    let mut pipe = redis::pipe();
    pipe.hset_multiple(
        format!("{p}:r:person:a"),
        &[("r", "5"), ("v", r#"{"email":"a@x","n":1}"#)],
    )
    .zadd(format!("{p}:z:person"), "a", "+inf")
    .sadd(index("a@x"), "a")
    .hset(
        format!("{p}:x:person"),
        "a",
        format!("[{:?}]", index("a@x")),
    )
    .hset_multiple(
        format!("{p}:r:person:b*"),
        &[
            ("r", "6"),
            ("e", later.to_string().as_str()),
            ("v", r#"{"email":"b@x"}"#),
        ],
    )
    .pexpire_at(format!("{p}:r:person:b*"), later)
    .zadd(format!("{p}:z:person"), "b*", later)
    .sadd(index("b@x"), "b*")
    .hset(
        format!("{p}:x:person"),
        "b*",
        format!("[{:?}]", index("b@x")),
    )
    .set(format!("{p}:rev"), 6);
    let () = pipe.query_async(&mut con).await.map_err(to_err)?;
    let url = with_prefix(&base, &p, "");
    let before = keys(&mut con, &format!("{p}:*")).await;

    let refused = open(&url).await;
    match &refused {
        Err(e @ Error::Backend { .. }) => assert!(
            e.to_string().contains("databank upgrade URL"),
            "the error names the command: {e}"
        ),
        other => panic!("an old-layout bank opened: {other:?}"),
    }
    let config = RedisConfig::from_url(&url)?;
    let plan = databank_redis::upgrade(config.clone(), true).await?;
    assert!(plan.old_layout && plan.dry_run, "{plan:?}");
    assert_eq!(plan.types, [("person".to_string(), 2)]);
    let mut after_dry_run = keys(&mut con, &format!("{p}:*")).await;
    let mut expected = before.clone();
    after_dry_run.sort();
    expected.sort();
    assert_eq!(after_dry_run, expected, "a dry run changes nothing");
    assert!(
        open(&url).await.is_err(),
        "still the old layout after a dry run"
    );

    let done = databank_redis::upgrade(config.clone(), false).await?;
    assert_eq!(done.types, plan.types);
    assert!(done.old_layout && !done.dry_run);
    let again = databank_redis::upgrade(config, false).await?;
    assert!(
        !again.old_layout,
        "a second upgrade finds nothing: {again:?}"
    );

    let bank = open(&url).await?;
    assert_eq!(
        bank.read("person", "a").await?.value,
        json!({"email": "a@x", "n": 1})
    );
    let b = bank.read("person", "b*").await?;
    assert_eq!(b.expires_at.map(|t| t.timestamp_millis()), Some(later));
    let hits = bank
        .search("person", &Criteria::new().eq("email", "b@x"))
        .await?;
    assert_eq!(hits.len(), 1);
    assert_eq!(bank.count("person").await?, 2);
    // The patch of a 0.2 object (one `v` field) still works, and rewrites it.
    bank.patch("person", "a").set("n", json!(2)).await?;
    assert_eq!(bank.read("person", "a").await?.value["n"], 2);
    for old in ["r:*", "z:*", "x:*", "i:*", "rev"] {
        let left = keys(&mut con, &format!("{p}:{old}")).await;
        assert!(left.is_empty(), "{p}:{old} left: {left:?}");
    }
    Ok(())
}

/// With `wait_replicas`, a write no replica acknowledged is `OutcomeUnknown`: it is on the
/// master (readable), but not known to survive it. This server has no replica.
#[tokio::test]
async fn a_write_no_replica_acknowledged_is_outcome_unknown() -> Result<()> {
    let url = with_prefix(
        &base_url!(),
        &unique_name("wait"),
        "&wait_replicas=1&timeout_ms=400",
    );
    let bank = open(&url).await?;
    let saved = bank.save("person", "a", json!({"email": "a@x"})).await;
    assert!(
        matches!(saved, Err(Error::OutcomeUnknown { .. })),
        "{saved:?}"
    );
    assert_eq!(bank.read("person", "a").await?.value["email"], "a@x");
    // A patch's reply (its code and base) comes back beside WAIT's count as well.
    let patched = bank.patch("person", "a").set("age", json!(36)).await;
    assert!(
        matches!(patched, Err(Error::OutcomeUnknown { .. })),
        "{patched:?}"
    );
    assert_eq!(bank.read("person", "a").await?.value["age"], 36);
    // A write that changed nothing waits for nothing.
    assert!(matches!(
        bank.create("person", "a", json!({})).await,
        Err(Error::AlreadyExists { .. })
    ));
    Ok(())
}

fn record_key(prefix: &str, kind: &str, id: &str) -> String {
    format!("{prefix}:{{{kind}:{}}}:r:{id}", bucket(id))
}

/// A patch on a base that sets an expiry, of a record that was deleted or expired, writes
/// nothing (its checks come before its writes): no key appears, and what the expired record
/// left in its bucket is what a purge clears.
#[tokio::test]
async fn an_expiring_patch_on_a_gone_record_leaves_nothing() -> Result<()> {
    let base = base_url!();
    let prefix = unique_name("gone");
    let bank = open(&with_prefix(&base, &prefix, "")).await?;
    let later = databank_core::testkit::in_ms(3_600_000);
    let deleted = bank
        .create("session", "deleted", json!({"user": "ada"}))
        .expires_at(later)
        .await?;
    bank.delete("session", "deleted").await?;
    let soon = databank_core::testkit::in_ms(200);
    let expired = bank
        .create("session", "expired", json!({"user": "ada"}))
        .expires_at(soon)
        .await?;
    databank_core::testkit::sleep_past(soon).await;
    for (id, base_revision) in [("deleted", deleted), ("expired", expired)] {
        let patched = bank
            .patch("session", id)
            .set("visits", 2)
            .expires_at(later)
            .must_exist()
            .applied_on(base_revision)
            .await;
        assert!(
            matches!(patched, Err(Error::NotFound { .. })),
            "{id}: {patched:?}"
        );
    }
    let mut con = raw(&base).await;
    for id in ["deleted", "expired"] {
        let exists: bool = con
            .exists(record_key(&prefix, "session", id))
            .await
            .map_err(to_err)?;
        assert!(!exists, "{id}: a patch of a gone record wrote a key");
    }
    assert_eq!(bank.count("session").await?, 0);
    assert_eq!(bank.count_expired("session").await?, 1, "the expired entry");
    bank.purge_expired("session").await?;
    let (_, lists, entries) = bookkeeping(&mut con, &prefix, "session", "user", "\"ada\"").await;
    assert_eq!((lists, entries), (0, 0), "bookkeeping of dead ids stayed");
    assert_eq!(bank.count_expired("session").await?, 0);
    Ok(())
}

/// A hash with no value (no write makes one; development builds of 0.3 left such hashes
/// behind a patch of a gone record) is no record: reads miss it and a create replaces it.
#[tokio::test]
async fn a_hash_without_a_value_is_no_record() -> Result<()> {
    let base = base_url!();
    let prefix = unique_name("novalue");
    let bank = open(&with_prefix(&base, &prefix, "")).await?;
    let key = record_key(&prefix, "session", "s");
    let mut con = raw(&base).await;
    let at = databank_core::testkit::in_ms(3_600_000)
        .map(|t| t.timestamp_millis())
        .unwrap_or_default();
    let _: () = redis::pipe()
        .cmd("HSET")
        .arg(&key)
        .arg(&["r", "42", "e", &at.to_string(), ".visits", "2"])
        .ignore()
        .cmd("PEXPIREAT")
        .arg(&key)
        .arg(at)
        .ignore()
        .query_async(&mut con)
        .await
        .map_err(to_err)?;
    assert!(matches!(
        bank.read("session", "s").await,
        Err(Error::NotFound { .. })
    ));
    let known = databank_core::Revision::new(42);
    assert!(matches!(
        bank.read_if_changed("session", "s", known).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        bank.patch("session", "s").set("a", 1).must_exist().await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        bank.delete("session", "s").await,
        Err(Error::NotFound { .. })
    ));
    bank.create("session", "s", json!({"user": "ada"})).await?;
    assert_eq!(
        bank.read("session", "s").await?.value,
        json!({"user": "ada"})
    );
    Ok(())
}

/// The compact JSON size of a record's value minus one, what `n` keeps (an object's).
async fn size_of(bank: &Bank, id: &str) -> Result<i64> {
    let value = bank.read("session", id).await?.value;
    Ok(serde_json::to_vec(&value).map_err(to_err)?.len() as i64 - 1)
}

/// The size bookkeeping `n` is the object's compact JSON size minus one after patches that
/// grow, shrink, add and remove keys, and after a whole write.
#[tokio::test]
async fn patches_keep_the_size_exact() -> Result<()> {
    let base = base_url!();
    let prefix = unique_name("size");
    let bank = open(&with_prefix(&base, &prefix, "")).await?;
    let later = databank_core::testkit::in_ms(3_600_000);
    let mut revision = bank
        .create("session", "s", json!({"a": 1, "b": "two", "c\n": [3]}))
        .expires_at(later)
        .await?;
    let steps: [(&str, Option<serde_json::Value>); 5] = [
        ("a", Some(json!(100_000))),
        ("b", Some(json!("t"))),
        ("c\n", None),
        ("new", Some(json!({"deep": ["x", null]}))),
        ("missing", None),
    ];
    let mut con = raw(&base).await;
    let key = record_key(&prefix, "session", "s");
    for (name, value) in steps {
        let patch = bank.patch("session", "s").expires_at(later).must_exist();
        let patch = match value {
            Some(value) => patch.set(name, value),
            None => patch.remove(name),
        };
        let applied = patch.applied_on(revision).await?;
        assert!(
            applied.on_base,
            "{name}: an uncontested patch missed its base"
        );
        revision = applied.revision;
        let n: i64 = con.hget(&key, "n").await.map_err(to_err)?;
        let size = size_of(&bank, "s").await?;
        assert_eq!(n, size, "after {name}");
    }
    bank.save("session", "s", json!({"a": 1}))
        .expires_at(later)
        .await?;
    let n: i64 = con.hget(&key, "n").await.map_err(to_err)?;
    assert_eq!(n, size_of(&bank, "s").await?, "a whole write keeps n exact");
    Ok(())
}

/// A patch whose result would pass the size limit changes nothing: the value, revision, expiry
/// and size bookkeeping are as they were.
#[tokio::test]
async fn a_patch_past_the_size_limit_changes_nothing() -> Result<()> {
    let base = base_url!();
    let prefix = unique_name("limit");
    let bank = open(&with_prefix(&base, &prefix, "")).await?;
    let later = databank_core::testkit::in_ms(3_600_000);
    let big = "x".repeat(databank_core::validate::MAX_VALUE_BYTES - 100);
    let revision = bank
        .create("session", "s", json!({"big": big}))
        .expires_at(later)
        .await?;
    let before = bank.read("session", "s").await?;
    let patched = bank
        .patch("session", "s")
        .set("more", "y".repeat(200))
        .expires_at(databank_core::testkit::in_ms(7_200_000))
        .must_exist()
        .applied_on(revision)
        .await;
    assert!(
        matches!(patched, Err(Error::InvalidInput(_))),
        "{patched:?}"
    );
    let after = bank.read("session", "s").await?;
    assert_eq!(after.revision, before.revision);
    assert_eq!(after.expires_at, before.expires_at);
    assert!(after.value == before.value, "the value changed");
    let n: i64 = raw(&base)
        .await
        .hget(record_key(&prefix, "session", "s"), "n")
        .await
        .map_err(to_err)?;
    assert_eq!(n, size_of(&bank, "s").await?, "n changed");
    Ok(())
}

/// A patch that moves the expiry into the past ends the record, and brings back no hash.
#[tokio::test]
async fn a_patch_into_the_past_ends_the_record() -> Result<()> {
    let base = base_url!();
    let prefix = unique_name("past");
    let bank = open(&with_prefix(&base, &prefix, "")).await?;
    let revision = bank
        .create("session", "s", json!({"user": "ada"}))
        .expires_at(databank_core::testkit::in_ms(3_600_000))
        .await?;
    bank.patch("session", "s")
        .set("visits", "a longer value than before")
        .expires_at(databank_core::testkit::in_ms(-1_000))
        .must_exist()
        .applied_on(revision)
        .await?;
    assert!(matches!(
        bank.read("session", "s").await,
        Err(Error::NotFound { .. })
    ));
    let mut con = raw(&base).await;
    let exists: bool = con
        .exists(record_key(&prefix, "session", "s"))
        .await
        .map_err(to_err)?;
    assert!(!exists, "a hash came back after the record ended");
    Ok(())
}

/// A save of a type with no index still drops the index entries an older schema gave the
/// record, and still sweeps what expired records left in the buckets it grows.
#[tokio::test]
async fn saves_of_unindexed_types_keep_the_bookkeeping() -> Result<()> {
    let base = base_url!();
    let prefix = unique_name("plainsave");
    let url = with_prefix(&base, &prefix, "");
    let indexed = open(&url).await?;
    let plain = Bank::new(RedisBank::connect(RedisConfig::from_url(&url)?, Schema::new()).await?);
    indexed
        .save("person", "x", json!({"email": "old@x"}))
        .await?;
    plain
        .save("person", "x", json!({"email": "new@x", "n": 1}))
        .await?;
    assert_eq!(plain.read("person", "x").await?.value["n"], 1);
    let mut con = raw(&base).await;
    let (members, lists, entries) =
        bookkeeping(&mut con, &prefix, "person", "email", "\"old@x\"").await;
    assert!(members.is_empty(), "the old index entry stayed");
    assert_eq!((lists, entries), (0, 1));
    let hits = indexed
        .search("person", &Criteria::new().eq("email", "old@x"))
        .await?;
    assert!(
        hits.is_empty(),
        "found by a value it no longer has: {hits:?}"
    );

    let gone = databank_core::testkit::in_ms(-1_000);
    for i in 0..300 {
        plain
            .save("note", &format!("old{i}"), json!({"a": i}))
            .expires_at(gone)
            .await?;
        assert!(matches!(
            plain.read("note", &format!("old{i}")).await,
            Err(Error::NotFound { .. })
        ));
    }
    for i in 0..300 {
        plain.save("note", &format!("new{i}"), json!([i])).await?;
    }
    let (_, lists, entries) = bookkeeping(&mut con, &prefix, "note", "a", "0").await;
    assert_eq!((lists, entries), (0, 300), "expired entries were not swept");
    assert_eq!(plain.count("note").await?, 300);
    Ok(())
}
