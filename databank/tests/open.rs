//! `databank::open` with the default features: memory and disk open without a `register`
//! call; a driver this build lacks fails naming the feature; an unknown scheme says so.

use databank::{json, Error, Schema};

#[tokio::test]
async fn the_default_drivers_open_without_registering() -> databank::Result<()> {
    let bank = databank::open("memory://", Schema::new()).await?;
    bank.create("thing", "a", json!({"n": 1})).await?;
    assert_eq!(bank.read("thing", "a").await?.value, json!({"n": 1}));
    let dir = tempfile::tempdir().map_err(|e| Error::backend("test", e))?;
    let url = format!("disk://{}", dir.path().display());
    let disk = databank::open(&url, Schema::new()).await?;
    disk.save("thing", "b", json!([1, 2])).await?;
    assert_eq!(disk.read("thing", "b").await?.value, json!([1, 2]));
    Ok(())
}

#[cfg(not(feature = "redis"))]
#[tokio::test]
async fn a_driver_left_out_names_its_feature() {
    match databank::open("redis://127.0.0.1/0", Schema::new()).await {
        Err(Error::InvalidInput(message)) => {
            assert!(message.contains("`redis` feature"), "{message}")
        }
        other => panic!("expected the feature named, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unknown_scheme_is_unknown() {
    match databank::open("nosuch://x", Schema::new()).await {
        Err(Error::UnknownScheme { scheme, registered }) => {
            assert_eq!(scheme, "nosuch");
            assert!(registered.iter().any(|s| s == "memory"), "{registered:?}");
        }
        other => panic!("expected UnknownScheme, got {other:?}"),
    }
}
