//! The `cargo package` check: every crate meant for crates.io packages and builds from its
//! package alone.

use std::process::{Command, ExitStatus};

use crate::Error;

/// The workspace's crates meant for crates.io: those whose manifest does not say
/// `publish = false` (`cargo metadata` gives them `"publish": null`).
fn publishable() -> Result<Vec<String>, Error> {
    let out = Command::new(crate::cargo())
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .output()?;
    if !out.status.success() {
        return Err(format!("cargo metadata failed ({})", out.status).into());
    }
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let packages = metadata["packages"]
        .as_array()
        .ok_or("cargo metadata gave no packages")?;
    Ok(packages
        .iter()
        .filter(|p| p["publish"].is_null())
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect())
}

/// Packages every publishable crate at once and verifies each package by building it. Packaged
/// together, the crates that depend on each other by path resolve to each other's packages (a
/// local overlay of crates.io), so no `--no-verify` is needed. `--allow-dirty`: a local run may
/// have uncommitted changes, and they are what gets checked.
pub fn check() -> Result<ExitStatus, Error> {
    let crates = publishable()?;
    let mut cargo = Command::new(crate::cargo());
    cargo.args(["package", "--allow-dirty"]);
    for name in &crates {
        cargo.args(["-p", name]);
    }
    println!("xtask: cargo package -p {}", crates.join(" -p "));
    Ok(cargo.status()?)
}
