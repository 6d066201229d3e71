//! The check that keeps the driver crates alike: the same file for the same role in each, as
//! the README's "Writing a driver" section says.

use std::path::Path;

/// The driver crates of this workspace.
const DRIVERS: [&str; 6] = [
    "databank-memory",
    "databank-disk",
    "databank-redis",
    "databank-mongo",
    "databank-sql",
    "databank-couchbase",
];

/// Files every driver crate has in `src/`.
const EVERY_DRIVER_HAS: [&str; 3] = ["lib.rs", "backend.rs", "layout.md"];

/// A role only one file may hold: what in the source shows it, and that file's name.
const ROLES: [(&str, &str); 3] = [
    ("Driver for ", "backend.rs"),
    ("fn from_url(", "config.rs"),
    ("fn map_err(", "error.rs"),
];

/// What the driver crates under `root` do against the rule, one line each (none: they follow
/// it).
pub fn problems(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for driver in DRIVERS {
        let src = root.join(driver).join("src");
        for name in EVERY_DRIVER_HAS {
            if !src.join(name).is_file() {
                found.push(format!("{driver}/src has no {name}"));
            }
        }
        let Ok(entries) = std::fs::read_dir(&src) else {
            found.push(format!("{driver}/src cannot be read"));
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".rs") {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(entry.path()) else {
                found.push(format!("{driver}/src/{name} cannot be read"));
                continue;
            };
            if text.contains("macro_rules!") {
                found.push(format!(
                    "{driver}/src/{name} defines a macro: a driver's code is written out"
                ));
            }
            for (shows, file) in ROLES {
                if name != file && text.contains(shows) {
                    found.push(format!(
                        "{driver}/src/{name} has `{}`, which belongs in {file}",
                        shows.trim()
                    ));
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::problems;

    #[test]
    fn this_workspace_follows_the_rule() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        assert_eq!(problems(&root), Vec::<String>::new());
    }

    #[test]
    fn a_driver_out_of_shape_is_named() -> std::io::Result<()> {
        let root = tempfile_dir()?;
        let src = root.join("databank-memory").join("src");
        std::fs::create_dir_all(&src)?;
        std::fs::write(src.join("lib.rs"), "macro_rules! x { () => {} }")?;
        std::fs::write(src.join("table.rs"), "impl Driver for Table {}")?;
        let found = problems(&root);
        std::fs::remove_dir_all(&root)?;
        for expected in [
            "databank-memory/src has no backend.rs",
            "databank-memory/src has no layout.md",
            "databank-memory/src/lib.rs defines a macro: a driver's code is written out",
            "databank-memory/src/table.rs has `Driver for`, which belongs in backend.rs",
            "databank-disk/src has no lib.rs",
        ] {
            assert!(
                found.iter().any(|p| p == expected),
                "{expected} in {found:?}"
            );
        }
        Ok(())
    }

    /// A directory of this test's own under the system's temporary one.
    fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
        let dir = std::env::temp_dir().join(format!(
            "xtask-drivers-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }
}
