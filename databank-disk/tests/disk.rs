//! Disk-specific behaviour: files on disk, corruption, crashes, the process lock.

use std::fs;

use databank_core::{json, Bank, Error, Result};
use databank_disk::DiskBank;
use futures_util::StreamExt;

fn tempdir() -> Result<tempfile::TempDir> {
    tempfile::tempdir().map_err(|e| Error::backend("test", e))
}

fn io(e: std::io::Error) -> Error {
    Error::backend("test", e)
}

#[tokio::test]
async fn corrupt_file_is_a_typed_error_naming_the_path_and_blocks_nothing() -> Result<()> {
    let dir = tempdir()?;
    let bank = Bank::new(DiskBank::open(dir.path())?);
    bank.save("thing", "good", json!({"ok": true})).await?;
    bank.save("thing", "bad", json!({"ok": true})).await?;
    let bad = dir.path().join("thing").join("bad.json");
    fs::write(&bad, b"{\"databank\":1,\"id\":\"bad\",\"rev").map_err(io)?;
    match bank.read("thing", "bad").await {
        Err(Error::Corrupt { location, .. }) => {
            assert!(location.ends_with("bad.json"), "{location}")
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(bank.read("thing", "good").await?.value, json!({"ok": true}));
    // scan reports the bad file and still yields the good one.
    let items: Vec<_> = bank.scan("thing").collect().await;
    assert_eq!(items.len(), 2);
    assert!(items
        .iter()
        .any(|i| matches!(i, Err(Error::Corrupt { .. }))));
    assert!(items
        .iter()
        .any(|i| matches!(i, Ok((id, _)) if id == "good")));
    // search and count skip it.
    assert_eq!(bank.count("thing").await?, 1);
    // Writes refuse to overwrite it: the bad file stays for an operator to inspect.
    assert!(matches!(
        bank.save("thing", "bad", json!({"fixed": 1})).await,
        Err(Error::Corrupt { .. })
    ));
    assert!(bad.exists());
    Ok(())
}

#[tokio::test]
async fn foreign_files_and_swapped_files_are_reported() -> Result<()> {
    let dir = tempdir()?;
    let bank = Bank::new(DiskBank::open(dir.path())?);
    bank.save("thing", "a", json!(1)).await?;
    bank.save("thing", "b", json!(2)).await?;
    let type_dir = dir.path().join("thing");
    fs::write(type_dir.join("README.txt"), b"hello").map_err(io)?;
    fs::copy(type_dir.join("a.json"), type_dir.join("c.json")).map_err(io)?;
    match bank.read("thing", "c").await {
        Err(Error::Corrupt { reason, .. }) => assert!(reason.contains("\"a\""), "{reason}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let errors = bank
        .scan("thing")
        .filter(|i| std::future::ready(i.is_err()))
        .count()
        .await;
    assert_eq!(errors, 2);
    assert_eq!(bank.count("thing").await?, 2);
    Ok(())
}

#[tokio::test]
async fn ids_never_leave_the_directory() -> Result<()> {
    let dir = tempdir()?;
    let root = dir.path().join("bank");
    let bank = Bank::new(DiskBank::open(&root)?);
    for id in ["../../escape", "/abs", "..", "a/../../b", "\\..\\x"] {
        bank.save("thing", id, json!({"id": id})).await?;
    }
    let outside: Vec<_> = fs::read_dir(dir.path())
        .map_err(io)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert_eq!(outside, ["bank"], "files outside the bank: {outside:?}");
    Ok(())
}

#[tokio::test]
async fn temp_files_left_by_a_crash_are_removed_at_open() -> Result<()> {
    let dir = tempdir()?;
    {
        let bank = Bank::new(DiskBank::open(dir.path())?);
        bank.save("thing", "x", json!(1)).await?;
        bank.close().await?;
    }
    let leftover = dir.path().join("thing").join(".tmp-1-1-x.json");
    fs::write(&leftover, b"half a reco").map_err(io)?;
    // Files that merely start with `.tmp-` are not ours: they stay.
    let foreign = [
        dir.path().join(".tmp-notes.txt"),
        dir.path().join("thing").join(".tmp-editor-swap"),
        dir.path().join("thing").join(".tmp-1-1-Upper.json"),
    ];
    for file in &foreign {
        fs::write(file, b"someone else's").map_err(io)?;
    }
    let bank = Bank::new(DiskBank::open(dir.path())?);
    assert!(!leftover.exists());
    for file in &foreign {
        assert!(file.exists(), "{} was deleted", file.display());
    }
    assert_eq!(bank.read("thing", "x").await?.value, json!(1));
    Ok(())
}

#[tokio::test]
async fn a_second_process_gets_a_clear_error() -> Result<()> {
    let dir = tempdir()?;
    fs::create_dir_all(dir.path()).map_err(io)?;
    // Another open file description holding the lock is what another process looks like.
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.path().join(".lock"))
        .map_err(io)?;
    lock.try_lock()
        .map_err(|e| Error::backend("test", e.to_string()))?;
    match DiskBank::open(dir.path()) {
        Err(e) => assert!(e.to_string().contains("another process"), "{e}"),
        Ok(_) => panic!("opened a bank another process holds"),
    }
    drop(lock);
    DiskBank::open(dir.path())?;
    Ok(())
}

#[tokio::test]
async fn two_handles_in_one_process_share_locks() -> Result<()> {
    let dir = tempdir()?;
    let a = Bank::new(DiskBank::open(dir.path())?);
    let b = Bank::new(DiskBank::open(dir.path())?);
    let mut tasks = Vec::new();
    for bank in [a.clone(), b.clone()] {
        for _ in 0..8 {
            let bank = bank.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..25 {
                    bank.incr_by("counter", "c", 1).await?;
                }
                Ok::<_, Error>(())
            }));
        }
    }
    for task in tasks {
        task.await.map_err(|e| Error::backend("test", e))??;
    }
    assert_eq!(a.read("counter", "c").await?.value, json!(400));
    Ok(())
}

#[tokio::test]
async fn opened_by_url() -> Result<()> {
    let dir = tempdir()?;
    databank_disk::register()?;
    let url = format!("disk://{}", dir.path().display());
    let bank = databank_core::open(&url, databank_core::Schema::new()).await?;
    bank.save("thing", "u", json!("via url")).await?;
    assert!(dir.path().join("thing").join("u.json").exists());
    Ok(())
}

#[tokio::test]
async fn an_id_too_long_for_the_path_limit_is_invalid_input_naming_it() -> Result<()> {
    let dir = tempdir()?;
    // A root of about 1000 bytes, as in a deep deployment directory.
    let mut root = dir.path().to_path_buf();
    while root.as_os_str().len() < 1000 {
        root.push("deep-directory-name");
    }
    let bank = Bank::new(DiskBank::open(&root)?);
    // 1 KiB of bytes the encoding escapes: about 3 KiB of path under this root.
    let id = "É".repeat(512);
    match bank.save("thing", &id, json!(1)).await {
        Err(Error::InvalidInput(why)) => {
            let limit = databank_disk::MAX_PATH_BYTES.to_string();
            assert!(why.contains(&limit), "the message names no limit: {why}");
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    // The same id under a short root is fine.
    let short = Bank::new(DiskBank::open(dir.path().join("short"))?);
    short.save("thing", &id, json!(1)).await?;
    assert_eq!(short.read("thing", &id).await?.value, json!(1));
    Ok(())
}

#[tokio::test]
async fn urls_are_absolute_or_relative_never_a_host() -> Result<()> {
    databank_disk::register()?;
    for ambiguous in ["disk://data/bank", "disk://data"] {
        match databank_core::open(ambiguous, databank_core::Schema::new()).await {
            Err(Error::InvalidInput(why)) => assert!(why.contains("host"), "{why}"),
            other => panic!("{ambiguous}: expected InvalidInput, got {other:?}"),
        }
    }
    Ok(())
}
