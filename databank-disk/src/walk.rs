//! Walking a type's directory tree a batch of files at a time, so a scan holds one batch of
//! paths (and one open directory per level), not the whole listing.

use std::fs;
use std::path::PathBuf;

use databank_core::Result;

use crate::error::io_error;
use crate::path::TEMP_PREFIX;

/// The record files under a directory, depth first; temporary files left out. Entries added or
/// removed during the walk may or may not be seen; the others are seen once.
#[derive(Debug)]
pub struct Walk {
    /// Directories still to open.
    pending: Vec<PathBuf>,
    /// The directory being read.
    open: Option<(PathBuf, fs::ReadDir)>,
}

impl Walk {
    /// A walk of `root` (a missing root is empty).
    pub fn new(root: PathBuf) -> Self {
        Walk {
            pending: vec![root],
            open: None,
        }
    }

    /// Up to `max` more files; none once the walk is over.
    pub fn next_batch(&mut self, max: usize) -> Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        while files.len() < max {
            let Some((dir, entries)) = &mut self.open else {
                let Some(dir) = self.pending.pop() else {
                    break;
                };
                match fs::read_dir(&dir) {
                    Ok(entries) => self.open = Some((dir, entries)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_error(&dir, e)),
                }
                continue;
            };
            let Some(entry) = entries.next() else {
                self.open = None;
                continue;
            };
            let entry = entry.map_err(|e| io_error(dir, e))?;
            let path = entry.path();
            if entry.file_type().map_err(|e| io_error(&path, e))?.is_dir() {
                self.pending.push(path);
            } else if !entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                files.push(path);
            }
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_nested_directories_in_batches() -> Result<()> {
        let root = tempfile::tempdir().map_err(|e| io_error(std::path::Path::new("tmp"), e))?;
        let nested = root.path().join("a").join("b");
        fs::create_dir_all(&nested).map_err(|e| io_error(&nested, e))?;
        for (dir, name) in [
            (root.path().to_path_buf(), "one"),
            (nested.clone(), "two"),
            (nested.clone(), "three"),
            (nested.clone(), &format!("{TEMP_PREFIX}x")),
        ] {
            let file = dir.join(name);
            fs::write(&file, b"{}").map_err(|e| io_error(&file, e))?;
        }
        let mut walk = Walk::new(root.path().to_path_buf());
        let mut seen = Vec::new();
        loop {
            let batch = walk.next_batch(2)?;
            assert!(batch.len() <= 2);
            if batch.is_empty() {
                break;
            }
            seen.extend(
                batch
                    .into_iter()
                    .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())),
            );
        }
        seen.sort();
        assert_eq!(seen, ["one", "three", "two"]);
        assert!(Walk::new(root.path().join("missing"))
            .next_batch(5)?
            .is_empty());
        Ok(())
    }
}
