//! The one bucket's documents: value, flags, CAS and expiry, shared by the key-value and query
//! services.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Expiries up to 30 days are relative seconds, larger ones absolute Unix time
/// (`docs/BinaryProtocol.md`, "Expiration").
const RELATIVE_LIMIT: u32 = 30 * 24 * 60 * 60;

/// One document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc {
    pub value: Vec<u8>,
    pub flags: u32,
    pub datatype: u8,
    pub cas: u64,
    /// Unix seconds at which it expires.
    pub expires: Option<u64>,
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The absolute expiry an expiry field asks for.
pub fn expiry(field: u32) -> Option<u64> {
    match field {
        0 => None,
        relative if relative <= RELATIVE_LIMIT => Some(now_secs() + u64::from(relative)),
        absolute => Some(u64::from(absolute)),
    }
}

impl Doc {
    /// Not expired at `now`.
    pub fn live(&self, now: u64) -> bool {
        self.expires.is_none_or(|at| at > now)
    }
}

/// The bucket: in memory, and with a data file also written there after every change (for
/// tests that restart the server and expect their data back).
#[derive(Debug, Default)]
pub struct Store {
    state: Mutex<State>,
    file: Option<PathBuf>,
}

#[derive(Debug, Default)]
pub struct State {
    pub docs: HashMap<Vec<u8>, Doc>,
    last_cas: u64,
    saved_cas: u64,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl State {
    /// A CAS no document had before.
    pub fn next_cas(&mut self) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        self.last_cas = now.max(self.last_cas + 1);
        self.last_cas
    }

    /// The live document under `key` (an expired one is dropped).
    pub fn live(&mut self, key: &[u8]) -> Option<&mut Doc> {
        let now = now_secs();
        if self.docs.get(key).is_some_and(|doc| !doc.live(now)) {
            self.docs.remove(key);
        }
        self.docs.get_mut(key)
    }
}

impl Store {
    /// A bucket kept in `file` too, starting from what it holds (if it exists).
    pub fn persistent(file: PathBuf) -> std::io::Result<Store> {
        let mut state = State::default();
        if file.exists() {
            let text = std::fs::read_to_string(&file)?;
            let saved: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            for (key, doc) in saved {
                let field = |name: &str| doc.get(name).and_then(serde_json::Value::as_u64);
                let (Some(key), Some(value)) =
                    (unhex(&key), doc.get("v").and_then(|v| unhex(v.as_str()?)))
                else {
                    continue;
                };
                let cas = field("c").unwrap_or(0);
                state.last_cas = state.last_cas.max(cas);
                state.docs.insert(
                    key,
                    Doc {
                        value,
                        flags: field("f").unwrap_or(0) as u32,
                        datatype: field("d").unwrap_or(0) as u8,
                        cas,
                        expires: field("x"),
                    },
                );
            }
        }
        state.saved_cas = state.last_cas;
        Ok(Store {
            state: Mutex::new(state),
            file: Some(file),
        })
    }

    /// Runs `f` on the bucket's state under its lock (and writes the data file if it changed).
    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let result = f(&mut state);
        if let Some(file) = &self.file {
            if state.saved_cas != state.last_cas {
                if let Err(e) = save(file, &state.docs) {
                    tracing::warn!(error = %e, "could not write the data file");
                }
                state.saved_cas = state.last_cas;
            }
        }
        result
    }
}

/// Writes every document to `file` (through a temporary file and a rename).
fn save(file: &std::path::Path, docs: &HashMap<Vec<u8>, Doc>) -> std::io::Result<()> {
    let saved: serde_json::Map<String, serde_json::Value> = docs
        .iter()
        .map(|(key, doc)| {
            let entry = serde_json::json!({
                "v": hex(&doc.value), "f": doc.flags, "d": doc.datatype, "c": doc.cas, "x": doc.expires,
            });
            (hex(key), entry)
        })
        .collect();
    let temporary = file.with_extension("tmp");
    std::fs::write(&temporary, serde_json::Value::Object(saved).to_string())?;
    std::fs::rename(&temporary, file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_relative_up_to_thirty_days() {
        let now = now_secs();
        assert_eq!(expiry(0), None);
        assert!(expiry(10).is_some_and(|at| at >= now + 10 && at <= now + 11));
        assert_eq!(
            expiry(RELATIVE_LIMIT + 1),
            Some(u64::from(RELATIVE_LIMIT + 1))
        );
    }

    #[test]
    fn a_persistent_bucket_comes_back() -> std::io::Result<()> {
        let file =
            std::env::temp_dir().join(format!("cbts-{}-{}.json", std::process::id(), now_secs()));
        let store = Store::persistent(file.clone())?;
        store.with(|state| {
            let cas = state.next_cas();
            state.docs.insert(
                b"k".to_vec(),
                Doc {
                    value: b"{}".to_vec(),
                    flags: 7,
                    datatype: 1,
                    cas,
                    expires: None,
                },
            );
        });
        let again = Store::persistent(file.clone())?;
        let doc = again.with(|state| state.docs.get(&b"k"[..]).cloned());
        assert_eq!(doc.map(|d| (d.value, d.flags)), Some((b"{}".to_vec(), 7)));
        std::fs::remove_file(file)
    }

    #[test]
    fn cas_always_moves_forward() {
        let mut state = State::default();
        let a = state.next_cas();
        assert!(state.next_cas() > a);
    }
}
