//! The reversible, filesystem-safe mapping from type names and ids to paths.
//!
//! Bytes `a`-`z`, `0`-`9`, `_` and `-` stand for themselves; every other byte (upper-case letters,
//! `.`, `/`, `%`, NUL, every non-ASCII byte) becomes `%` and two lower-case hex digits. The result
//! is lower-case only (no two ids collide on a case-insensitive filesystem), never `.` or `..`,
//! and never contains a separator. An encoded id longer than [`CHUNK`] bytes is cut into
//! [`CHUNK`]-byte pieces, all but the last becoming directories, so no file name passes the usual
//! 255-byte limit. A record file is the last piece plus `.json`.

use std::path::{Path, PathBuf};

/// The longest file or directory name the encoding produces, before the `.json` suffix.
pub const CHUNK: usize = 200;
/// The suffix of record files.
pub const SUFFIX: &str = ".json";
/// The longest path of a record file, in bytes. Linux refuses paths of 4096 bytes or more;
/// the temporary file written beside a record needs about 40 bytes more than the record's own
/// path, so record paths stop well short of that.
pub const MAX_PATH_BYTES: usize = 4000;
/// The prefix of temporary files (never produced by the encoding, which escapes `.`).
pub const TEMP_PREFIX: &str = ".tmp-";

/// Encodes a name into the safe alphabet: `a/B.c` becomes `a%2f%42%2ec`.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-' {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(hex(b >> 4));
            out.push(hex(b & 0xf));
        }
    }
    out
}

/// Decodes what [`encode`] produced; `None` for anything it could not have produced (`A`).
pub fn decode(encoded: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut input = encoded.bytes();
    while let Some(b) = input.next() {
        match b {
            b'%' => {
                let hi = unhex(input.next()?)?;
                let lo = unhex(input.next()?)?;
                let byte = (hi << 4) | lo;
                if byte.is_ascii_lowercase()
                    || byte.is_ascii_digit()
                    || byte == b'_'
                    || byte == b'-'
                {
                    return None; // encode never escapes these: not ours.
                }
                bytes.push(byte);
            }
            b if b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-' => {
                bytes.push(b)
            }
            _ => return None,
        }
    }
    String::from_utf8(bytes).ok()
}

/// The file of a record: `dir/<chunks...>/<last>.json`.
pub fn record_path(dir: &Path, id: &str) -> PathBuf {
    let encoded = encode(id);
    let mut path = dir.to_path_buf();
    let mut rest = encoded.as_str();
    while rest.len() > CHUNK {
        let (head, tail) = rest.split_at(CHUNK);
        path.push(head);
        rest = tail;
    }
    path.push(format!("{rest}{SUFFIX}"));
    path
}

/// True for the name of a temporary file this driver writes: `.tmp-<pid>-<n>-<record file>`,
/// where the record file is a name the encoding produces. Nothing else is ever deleted as a
/// leftover (`.tmp-42-7-ada.json`, never `.tmp-notes.txt` or `.tmp-42-7-Ada.json`).
pub fn is_temp_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(TEMP_PREFIX) else {
        return false;
    };
    let mut parts = rest.splitn(3, '-');
    let (Some(pid), Some(n), Some(file)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let Some(stem) = file.strip_suffix(SUFFIX) else {
        return false;
    };
    digits(pid) && digits(n) && stem.len() <= CHUNK && decode(stem).is_some()
}

/// The id a record file under `dir` stands for, or `None` for a file the encoding cannot produce.
pub fn id_of(dir: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(dir).ok()?;
    let mut encoded = String::new();
    let mut parts = relative.components().peekable();
    while let Some(part) = parts.next() {
        let name = part.as_os_str().to_str()?;
        if parts.peek().is_some() {
            if name.len() != CHUNK {
                return None;
            }
            encoded.push_str(name);
        } else {
            let last = name.strip_suffix(SUFFIX)?;
            if last.is_empty() || last.len() > CHUNK {
                return None;
            }
            encoded.push_str(last);
        }
    }
    decode(&encoded)
}

fn hex(nibble: u8) -> char {
    char::from(b"0123456789abcdef"[usize::from(nibble & 0xf)])
}

fn unhex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the docs above say (this module is private outside the fuzz build, so its doc
    /// examples could not run).
    #[test]
    fn the_documented_examples_hold() {
        assert_eq!(encode("a/B.c"), "a%2f%42%2ec");
        assert_eq!(decode(&encode("../x\0🦀")).as_deref(), Some("../x\0🦀"));
        assert_eq!(decode("A"), None);
        assert!(is_temp_name(".tmp-42-7-ada.json"));
        assert!(!is_temp_name(".tmp-notes.txt"));
        assert!(!is_temp_name(".tmp-42-7-Ada.json"));
    }

    #[test]
    fn round_trips_and_stays_inside() {
        let dir = Path::new("/bank/thing");
        let long = "é".repeat(300);
        for id in [
            "/", "..", ".", "../../x", "a\\b", "\0", "🦀", "ABC", "abc", "%", "-", &long,
        ] {
            let path = record_path(dir, id);
            assert!(path.starts_with(dir), "{path:?}");
            assert!(path
                .components()
                .all(|c| c.as_os_str() != ".." && c.as_os_str() != "."));
            for part in path.strip_prefix(dir).iter().flat_map(|p| p.components()) {
                assert!(part.as_os_str().len() <= CHUNK + SUFFIX.len());
                let name = part.as_os_str().to_string_lossy();
                assert_eq!(name, name.to_lowercase(), "case-sensitive name {name}");
            }
            assert_eq!(id_of(dir, &path).as_deref(), Some(id));
        }
    }

    #[test]
    fn foreign_names_are_rejected() {
        let dir = Path::new("/d");
        for name in [
            "x.txt",
            ".DS_Store",
            "A.json",
            "%2.json",
            "%61.json",
            ".json",
            "%ff.json",
        ] {
            assert_eq!(id_of(dir, &dir.join(name)), None, "{name}");
        }
    }
}
