//! The one bucket's documents: value, flags, CAS and expiry, shared by the key-value and query
//! services.

use std::collections::HashMap;
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

/// The bucket.
#[derive(Debug, Default)]
pub struct Store {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
pub struct State {
    pub docs: HashMap<Vec<u8>, Doc>,
    last_cas: u64,
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
    /// Runs `f` on the bucket's state under its lock.
    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut state)
    }
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
    fn cas_always_moves_forward() {
        let mut state = State::default();
        let a = state.next_cas();
        assert!(state.next_cas() > a);
    }
}
