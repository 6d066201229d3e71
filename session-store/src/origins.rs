//! What the framework adapters carry from `load` to `save`: a short opaque token naming an
//! [`Origin`] this process keeps, instead of the origin itself.
//!
//! A token names one load (or create). Each save under it moves its origin to what that save
//! stored, so a cache in front of the store (tower-sessions' `CachingSessionStore`), which hands
//! the next request the record as last saved with the token it carried, still gets a save of
//! exactly what that request changed, at the right revision. Memory is bounded: two
//! generations of at most `capacity / 2` origins each; a token that outlived them (or one a
//! handler wrote, or one from another process) names nothing, and the save then replaces the
//! whole session.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;

use crate::session::Origin;

/// What every token starts with.
const TAG: &str = "dbo1:";

#[derive(Debug)]
struct Remembered {
    sid: String,
    origin: Origin,
}

#[derive(Debug, Default)]
struct Generations {
    current: HashMap<u64, Remembered>,
    previous: HashMap<u64, Remembered>,
}

/// The origins behind live tokens.
#[derive(Debug)]
pub(crate) struct Origins {
    generations: Mutex<Generations>,
    capacity: usize,
}

/// A token taken back from a framework's data: the origin it names, if this process still
/// knows it.
#[derive(Debug)]
pub(crate) struct Recalled {
    pub token: Option<u64>,
    pub origin: Option<Origin>,
}

impl Origins {
    pub fn new(capacity: usize) -> Self {
        Origins {
            generations: Mutex::new(Generations::default()),
            capacity: capacity.max(2),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations> {
        // Each change is one map call: a poisoned lock holds nothing half-done.
        self.generations
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn keep(&self, token: u64, remembered: Remembered) {
        let mut generations = self.lock();
        if generations.current.len() >= self.capacity / 2 {
            generations.previous = std::mem::take(&mut generations.current);
        }
        generations.current.insert(token, remembered);
    }

    /// Remembers an origin of session `sid` under a new token; returns the token's text.
    pub fn remember(&self, sid: &str, origin: Origin) -> String {
        let token = databank_core::driver::random_revision().get();
        self.keep(
            token,
            Remembered {
                sid: sid.to_owned(),
                origin,
            },
        );
        format!("{TAG}{token:016x}")
    }

    /// The origin a carried value names for session `sid`.
    pub fn recall(&self, sid: &str, carried: Option<&Value>) -> Recalled {
        let token = carried
            .and_then(Value::as_str)
            .and_then(|text| text.strip_prefix(TAG))
            .and_then(|hex| u64::from_str_radix(hex, 16).ok());
        let origin = token.and_then(|token| {
            let generations = self.lock();
            generations
                .current
                .get(&token)
                .or_else(|| generations.previous.get(&token))
                .filter(|remembered| remembered.sid == sid)
                .map(|remembered| remembered.origin.clone())
        });
        Recalled { token, origin }
    }

    /// After a save under `token`: its origin is now what that save stored.
    pub fn moved(&self, token: u64, sid: &str, origin: Origin) {
        self.keep(
            token,
            Remembered {
                sid: sid.to_owned(),
                origin,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use databank_core::Revision;
    use serde_json::{json, Map};

    fn origin(revision: u64) -> Origin {
        Origin::of(Revision::new(revision), &Map::new())
    }

    #[test]
    fn tokens_name_their_origin_for_their_session_only() {
        let origins = Origins::new(8);
        let token = origins.remember("s1", origin(1));
        let carried = json!(token);
        assert_eq!(origins.recall("s1", Some(&carried)).origin, Some(origin(1)));
        assert_eq!(origins.recall("s2", Some(&carried)).origin, None);
        assert_eq!(origins.recall("s1", Some(&json!("dbo1:zz"))).origin, None);
        assert_eq!(origins.recall("s1", Some(&json!(7))).origin, None);
        assert_eq!(origins.recall("s1", None).origin, None);
    }

    #[test]
    fn memory_stays_bounded() {
        let origins = Origins::new(8);
        let first = json!(origins.remember("s", origin(1)));
        for n in 0..100 {
            origins.remember("s", origin(n));
        }
        assert_eq!(origins.recall("s", Some(&first)).origin, None);
        let generations = origins.lock();
        assert!(generations.current.len() + generations.previous.len() <= 8);
    }

    #[test]
    fn a_save_moves_the_origin() {
        let origins = Origins::new(8);
        let carried = json!(origins.remember("s", origin(1)));
        let recalled = origins.recall("s", Some(&carried));
        if let Some(token) = recalled.token {
            origins.moved(token, "s", origin(2));
        }
        assert_eq!(origins.recall("s", Some(&carried)).origin, Some(origin(2)));
    }
}
