//! The built `databank` binary, run as a user would: records in and out of a disk bank, records
//! moved disk → Redis → MongoDB → JSON Lines → disk and memory with nothing lost and expiries
//! kept, copies stopped halfway and finished, sessions, the progress bar in a terminal, and
//! every kind of bad input answered by one line and exit code 1. Redis and MongoDB are the
//! servers `cargo xtask test` starts (`DATABANK_TEST_REDIS_URL`, `DATABANK_TEST_MONGO_URL`),
//! under a prefix or database of this test's own.

use std::path::Path;
use std::process::{Command, Output};

use databank_core::testkit::{server_url, unique_name};
use serde_json::{json, Value};

fn databank(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_databank"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs")
}

/// Runs it and expects success; returns standard output.
fn ok(dir: &Path, args: &[&str]) -> String {
    let out = databank(dir, args);
    assert!(
        out.status.success(),
        "databank {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Runs it and expects exit code 1 with one line on stderr, no panic; returns that line.
fn fails(dir: &Path, args: &[&str]) -> String {
    let out = databank(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "databank {args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("databank: "), "{stderr}");
    stderr
}

/// The records of an export, without its header, sorted.
fn records(export: &str) -> Vec<Value> {
    let mut lines = export.lines();
    assert_eq!(
        serde_json::from_str::<Value>(lines.next().expect("a header")).ok(),
        Some(json!({"format": "databank-export", "version": 1}))
    );
    let mut records: Vec<Value> = lines
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    records.sort_by_key(|r| r["id"].to_string());
    records
}

#[test]
fn records_go_in_and_out_of_a_disk_bank() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let dir = dir.path();
    ok(
        dir,
        &[
            "put",
            "disk:bank",
            "person",
            "ada",
            r#"{"name":"Ada","age":36}"#,
            "--expires-in",
            "3600",
        ],
    );
    ok(
        dir,
        &[
            "put",
            "disk:bank",
            "person",
            "a/b",
            r#"{"name":"Bob","age":40}"#,
        ],
    );
    let ada: Value =
        serde_json::from_str(&ok(dir, &["get", "--json", "disk:bank", "person", "ada"]))
            .expect("JSON");
    assert_eq!(ada["value"], json!({"name": "Ada", "age": 36}));
    assert!(ada["expires_at"].is_string(), "{ada}");
    assert_eq!(ok(dir, &["count", "disk:bank", "person"]).trim(), "2");
    assert_eq!(
        ok(dir, &["search", "disk:bank", "person", "age=40"]),
        "a/b\t{\"name\":\"Bob\",\"age\":40}\n"
    );
    let hits: Value = serde_json::from_str(&ok(
        dir,
        &["search", "--json", "disk:bank", "person", "name=Ada"],
    ))
    .expect("JSON");
    assert_eq!(
        hits,
        json!([{"id": "ada", "value": {"name": "Ada", "age": 36}}])
    );
    ok(dir, &["delete", "disk:bank", "person", "a/b"]);
    assert!(fails(dir, &["get", "disk:bank", "person", "a/b"]).contains("not found"));
    assert_eq!(ok(dir, &["count", "disk:bank", "person"]).trim(), "1");
}

/// A MongoDB database of this test's own on the server `DATABANK_TEST_MONGO_URL` names.
/// `None` where there is no such server (outside CI; one line says so: `testkit::server_url`).
fn mongo_bank(name: &str) -> Option<String> {
    let base = server_url("DATABANK_TEST_MONGO_URL", "cargo xtask services up mongo")?;
    let mut url = databank_core::driver::Url::parse(&base).expect("a MongoDB URL");
    url.set_path(&format!("/{}", unique_name(name)));
    Some(url.to_string())
}

/// Disk to SQLite and back out, with NUL, newlines, odd ids and expiries: the embedded pair,
/// no server needed.
#[test]
fn records_travel_disk_sqlite_jsonl_with_nothing_lost() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let dir = dir.path();
    for i in 0..30 {
        let value = format!(r#"{{"n":{i},"text":"é\n\u0000 {i}","k\u0000":[{i}]}}"#);
        let id = format!("id {i}/ü'\"");
        let mut args = vec!["put", "disk:from", "item", &id, &value];
        if i % 2 == 0 {
            args.extend(["--expires-in", "7200"]);
        }
        ok(dir, &args);
    }
    let first = records(&ok(dir, &["export", "disk:from"]));
    assert_eq!(first.len(), 30);
    ok(
        dir,
        &["copy", "disk:from", "sqlite://lite/bank.db", "--verify"],
    );
    let through_sqlite = records(&ok(dir, &["export", "sqlite://lite/bank.db"]));
    assert_eq!(through_sqlite, first, "SQLite kept every record and expiry");
}

#[test]
fn records_travel_disk_redis_mongo_jsonl_disk_memory_with_nothing_lost() {
    let (Some(redis), Some(mongo)) = (redis_bank("cli"), mongo_bank("cli")) else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temp dir");
    let dir = dir.path();
    for i in 0..30 {
        let value = format!(r#"{{"n":{i},"text":"é\n\u0000 {i}"}}"#);
        let id = format!("id {i}/ü");
        let mut args = vec!["put", "disk:from", "item", &id, &value];
        if i % 2 == 0 {
            args.extend(["--expires-in", "7200"]);
        }
        ok(dir, &args);
    }
    ok(dir, &["put", "disk:from", "other", "x", "[1,2]"]);
    ok(
        dir,
        &[
            "export",
            "disk:from",
            "-t",
            "item",
            "-t",
            "other",
            "-o",
            "first.jsonl",
        ],
    );
    let first = std::fs::read_to_string(dir.join("first.jsonl")).expect("the export");
    assert_eq!(records(&first).len(), 31);

    ok(dir, &["import", redis.as_str(), "first.jsonl"]);
    let through_redis = ok(
        dir,
        &["export", redis.as_str(), "-t", "item", "-t", "other"],
    );
    assert_eq!(
        records(&through_redis),
        records(&first),
        "Redis kept every record and expiry"
    );

    // On through MongoDB, copied rather than imported.
    ok(dir, &["copy", redis.as_str(), mongo.as_str(), "--verify"]);
    let through_mongo = ok(dir, &["export", mongo.as_str()]);
    assert_eq!(
        records(&through_mongo),
        records(&first),
        "MongoDB kept every record and expiry"
    );
    std::fs::write(dir.join("second.jsonl"), &through_mongo).expect("written");

    ok(dir, &["import", "disk:to", "second.jsonl"]);
    let back = ok(dir, &["export", "disk:to", "-t", "item", "-t", "other"]);
    assert_eq!(records(&back), records(&first));
    // And into memory (a bank that lives as long as the process): every record is taken.
    let into_memory: Value =
        serde_json::from_str(&ok(dir, &["import", "--json", "memory://", "second.jsonl"]))
            .expect("JSON");
    assert_eq!(into_memory["imported"], 31);

    // Again: every record exists. Fail names the line; skip and overwrite go through.
    assert!(fails(dir, &["import", "disk:to", "second.jsonl"]).contains("line 2"));
    let skipped: Value = serde_json::from_str(&ok(
        dir,
        &[
            "import",
            "--json",
            "disk:to",
            "second.jsonl",
            "--on-conflict",
            "skip",
        ],
    ))
    .expect("JSON");
    assert_eq!(skipped["skipped_existing"], 31);
    ok(
        dir,
        &[
            "import",
            "disk:to",
            "second.jsonl",
            "--on-conflict",
            "overwrite",
        ],
    );
}

#[test]
fn info_names_the_driver_its_capabilities_and_types() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let dir = dir.path();
    ok(dir, &["put", "disk:bank", "zebra", "z", "{}"]);
    ok(dir, &["put", "disk:bank", "apple", "a", "1"]);
    ok(dir, &["put", "disk:bank", "apple", "b", "2"]);
    ok(dir, &["put", "disk:bank", "gone", "g", "3"]);
    ok(dir, &["delete", "disk:bank", "gone", "g"]);
    ok(
        dir,
        &["put", "disk:bank", "apple", "old", "4", "--expires-in", "0"],
    );
    let info: Value =
        serde_json::from_str(&ok(dir, &["info", "--json", "disk:bank"])).expect("JSON");
    assert_eq!(info["scheme"], "disk");
    assert_eq!(
        info["types"],
        json!([
            {"type": "apple", "count": 2, "expired_not_purged": 1},
            {"type": "zebra", "count": 1, "expired_not_purged": 0},
        ])
    );
    let capabilities = info["capabilities"].as_array().expect("a list");
    assert!(capabilities.contains(&json!("persistent")), "{info}");
    let text = ok(dir, &["info", "disk:bank"]);
    assert!(
        text.contains("apple") && text.contains("2 live records (1 expired, not yet purged)"),
        "{text}"
    );
}

/// A Redis bank of this test's own (`DATABANK_TEST_REDIS_URL`, a prefix no one else uses), or
/// `None` where there is no such server (outside CI; one line says so: `testkit::server_url`).
fn redis_bank(name: &str) -> Option<String> {
    let redis = server_url("DATABANK_TEST_REDIS_URL", "cargo xtask services up redis")?;
    let join = if redis.contains('?') { '&' } else { '?' };
    Some(format!("{redis}{join}prefix={}", unique_name(name)))
}

/// Writes an export of `n` records of type `item` (every third with an expiry) to `file`.
fn items_export(file: &Path, n: usize) {
    let mut text = String::from("{\"format\":\"databank-export\",\"version\":1}\n");
    for i in 0..n {
        let expiry = if i % 3 == 0 {
            "\"2099-01-01T00:00:00.007Z\""
        } else {
            "null"
        };
        text.push_str(&format!(
            "{{\"type\":\"item\",\"id\":\"i{i}\",\"value\":{{\"n\":{i}}},\"expires_at\":{expiry}}}\n"
        ));
    }
    std::fs::write(file, text).expect("written");
}

#[test]
fn copy_moves_a_bank_and_refuses_a_full_destination() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let dir = dir.path();
    items_export(&dir.join("items.jsonl"), 40);
    ok(dir, &["import", "disk:src", "items.jsonl"]);
    ok(dir, &["put", "disk:src", "other", "x", "[1]"]);
    let Some(to) = redis_bank("copy") else {
        return;
    };
    let done: Value =
        serde_json::from_str(&ok(dir, &["copy", "--json", "disk:src", &to, "--verify"]))
            .expect("JSON");
    assert_eq!(done["copied"], 41);
    assert_eq!(done["verified"], 41);
    assert_eq!(
        records(&ok(dir, &["export", &to])),
        records(&ok(dir, &["export", "disk:src"])),
        "every record and expiry arrived, and no marker is left"
    );
    assert!(fails(dir, &["copy", "disk:src", &to]).contains("holds 40 records of type item"));
    let again: Value = serde_json::from_str(&ok(
        dir,
        &["copy", "--json", "disk:src", &to, "--on-conflict", "skip"],
    ))
    .expect("JSON");
    assert_eq!(again["skipped_existing"], 41);
}

/// Starts a slow copy (one record in flight) of `n` records and stops it with `signal` once
/// some have arrived; then the same command finishes it, every record there once.
fn copy_stopped_halfway_finishes_on_rerun(signal: &str) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let dir = dir.path();
    let (Some(from), Some(to)) = (redis_bank("from"), redis_bank("to")) else {
        return;
    };
    let n = 6000;
    items_export(&dir.join("items.jsonl"), n);
    ok(dir, &["import", &from, "items.jsonl"]);
    let args = [
        "copy",
        "--quiet",
        from.as_str(),
        to.as_str(),
        "--concurrency",
        "1",
    ];
    let child = Command::new(env!("CARGO_BIN_EXE_databank"))
        .args(args)
        .current_dir(dir)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the copy starts");
    let count = |kind: &str| -> u64 {
        ok(dir, &["count", &to, kind])
            .trim()
            .parse()
            .expect("a number")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while count("item") < 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the copy never got going"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let out = child.wait_with_output().expect("the copy ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "stopped halfway: {stderr}");
    if signal == "-INT" {
        assert!(stderr.contains("interrupted after"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let halfway = count("item");
    assert!(
        halfway < n as u64,
        "stopped before the end ({halfway} of {n})"
    );
    assert_eq!(
        count("databank-copy"),
        1,
        "the marker says a copy is under way"
    );

    let done: Value =
        serde_json::from_str(&ok(dir, &["copy", "--json", &from, &to, "--verify"])).expect("JSON");
    assert_eq!(done["resumed"], true);
    assert_eq!(count("item"), n as u64);
    assert_eq!(count("databank-copy"), 0);
    assert_eq!(
        records(&ok(dir, &["export", &to])),
        records(&ok(dir, &["export", &from]))
    );
}

#[test]
fn a_copy_killed_halfway_finishes_on_rerun() {
    copy_stopped_halfway_finishes_on_rerun("-KILL");
}

#[test]
fn a_copy_interrupted_halfway_finishes_on_rerun() {
    copy_stopped_halfway_finishes_on_rerun("-INT");
}

#[test]
fn expired_records_are_not_imported() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let dir = dir.path();
    let export = concat!(
        "{\"format\":\"databank-export\",\"version\":1}\n",
        "{\"type\":\"t\",\"id\":\"old\",\"value\":1,\"expires_at\":\"2001-01-01T00:00:00.000Z\"}\n",
        "{\"type\":\"t\",\"id\":\"new\",\"value\":2,\"expires_at\":null}\n",
    );
    std::fs::write(dir.join("e.jsonl"), export).expect("written");
    let done: Value = serde_json::from_str(&ok(dir, &["import", "--json", "disk:bank", "e.jsonl"]))
        .expect("JSON");
    assert_eq!(
        done,
        json!({"imported": 1, "skipped_existing": 0, "skipped_expired": 1})
    );
    assert_eq!(ok(dir, &["count", "disk:bank", "t"]).trim(), "1");
}

#[test]
fn bad_input_is_one_line_and_exit_code_1() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let dir = dir.path();
    assert!(fails(dir, &["count", "nosuch://x", "t"]).contains("no databank driver"));
    let unreachable = fails(dir, &["count", "redis://app:s3cr%40t@127.0.0.1:1/0", "t"]);
    assert!(!unreachable.contains("s3cr"), "{unreachable}");
    assert!(fails(dir, &["put", "disk:bank", "Bad Type!", "a", "{}"]).contains("type name"));
    assert!(fails(dir, &["put", "disk:bank", "t", "a", "{not json"]).contains("not valid JSON"));
    assert!(fails(dir, &["search", "disk:bank", "t", "novalue"]).contains("field=value"));
    std::fs::write(dir.join("plain.txt"), "hello\n").expect("written");
    assert!(fails(dir, &["import", "disk:bank", "plain.txt"]).contains("not a databank export"));
    std::fs::write(
        dir.join("broken.jsonl"),
        "{\"format\":\"databank-export\",\"version\":1}\n{\"type\":\"t\",\"id\":\"a\",\"value\":1,\"expires_at\":null}\n{\"type\":\n",
    )
    .expect("written");
    assert!(fails(dir, &["import", "disk:bank", "broken.jsonl"]).contains("line 3"));
    assert!(fails(dir, &["import", "disk:bank", "missing.jsonl"]).contains("cannot read"));
    let completions = ok(dir, &["completions", "bash"]);
    assert!(completions.contains("databank") && completions.contains("copy"));
    // clap's own usage errors exit with 2.
    let usage = databank(dir, &["get", "disk:bank"]);
    assert_eq!(usage.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_are_counted_listed_shown_and_cleared_without_showing_ids() {
    use databank_session_store::{DatabankStore, Session};
    let Some(url) = redis_bank("sessions") else {
        return;
    };
    let bank = databank::open(&url, databank_core::Schema::new())
        .await
        .expect("Redis opens");
    let store = DatabankStore::new(bank);
    let in_an_hour = chrono::Utc::now() + chrono::Duration::hours(1);
    for (sid, user) in [("sid-secret-1", "ada"), ("sid-secret-2", "bob")] {
        let mut data = serde_json::Map::new();
        data.insert("user".into(), json!(user));
        let mut session = Session::with_data(data, Some(in_an_hour));
        store.set(sid, &mut session).await.expect("saved");
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    let dir = dir.path().to_owned();
    let url = url.clone();
    tokio::task::spawn_blocking(move || {
        let dir = dir.as_path();
        assert_eq!(ok(dir, &["sessions", &url, "count"]).trim(), "2");
        let listed = ok(dir, &["sessions", &url, "list"]);
        assert_eq!(listed.lines().count(), 2, "{listed}");
        assert!(!listed.contains("sid-secret"), "ids stay hidden: {listed}");
        assert!(listed.contains("1 keys"), "{listed}");
        let with_ids = ok(dir, &["sessions", &url, "list", "--show-ids"]);
        assert!(with_ids.contains("sid-secret-1") && with_ids.contains("sid-secret-2"));
        let shown: Value = serde_json::from_str(&ok(
            dir,
            &["sessions", "--json", &url, "show", "sid-secret-1"],
        ))
        .expect("JSON");
        assert_eq!(shown["data"], json!({"user": "ada"}));
        assert!(shown["expires_at"].is_string());
        assert!(fails(dir, &["sessions", &url, "show", "nobody"]).contains("no live session"));
        let cleaned: Value =
            serde_json::from_str(&ok(dir, &["sessions", "--json", &url, "cleanup"])).expect("JSON");
        assert_eq!(cleaned["removed_expired"], 0, "nothing had expired");
        assert_eq!(
            ok(dir, &["sessions", &url, "clear"]).trim(),
            "deleted 2 sessions"
        );
        assert_eq!(ok(dir, &["sessions", &url, "count"]).trim(), "0");
    })
    .await
    .expect("the checks ran");
}

/// In a pseudo-terminal (util-linux `script`) the export draws its progress bar, ending full;
/// with `--quiet`, or when stderr is not a terminal, it draws none.
#[test]
fn the_progress_bar_is_drawn_in_a_terminal_and_ends_full() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let dir = dir.path();
    items_export(&dir.join("items.jsonl"), 120);
    ok(dir, &["import", "disk:bank", "items.jsonl"]);
    let in_terminal = |quiet: &str| {
        let command = format!(
            "{} export {quiet} disk:bank -t item -o out.jsonl",
            env!("CARGO_BIN_EXE_databank")
        );
        let out = Command::new("script")
            .args(["-q", "-e", "-c", &command, "/dev/null"])
            .current_dir(dir)
            .output()
            .expect("script (util-linux) runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let drawn = in_terminal("");
    assert!(drawn.contains("export item ["), "a bar: {drawn:?}");
    assert!(drawn.contains("] 120/120"), "ending full: {drawn:?}");
    let quiet = in_terminal("--quiet");
    assert!(!quiet.contains("export item ["), "no bar: {quiet:?}");
    let piped = databank(
        dir,
        &["export", "disk:bank", "-t", "item", "-o", "out.jsonl"],
    );
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(!stderr.contains('['), "no bar off a terminal: {stderr:?}");
    assert!(stderr.contains("exported 120 records"));
}

#[test]
fn upgrade_says_what_it_would_move_and_what_has_nothing_to_move() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let dir = dir.path();
    // A bank in this version's layout (the move of a 0.2 layout is tested with the driver).
    let Some(redis) = redis_bank("upgrade") else {
        return;
    };
    ok(dir, &["put", &redis, "item", "a", "1"]);
    let text = ok(dir, &["upgrade", &redis, "--dry-run"]);
    assert!(text.contains("nothing to upgrade"), "{text}");
    let found: Value =
        serde_json::from_str(&ok(dir, &["upgrade", "--json", &redis])).expect("JSON");
    assert_eq!(
        found,
        json!({"old_layout": false, "dry_run": false, "types": []})
    );
    assert_eq!(ok(dir, &["get", &redis, "item", "a"]).trim(), "1");
    let text = ok(dir, &["upgrade", "disk:bank"]);
    assert!(text.contains("the disk driver has one layout"), "{text}");
    let refused = fails(dir, &["upgrade", "nosuch://x"]);
    assert!(refused.contains("nosuch"), "{refused}");
}
