//! What the framework adapters carry from `load` to `save`: a short opaque token naming the
//! [`Origin`] this process keeps for it, instead of an origin itself.
//!
//! A token names one load (or create), then what the latest save under it stored: a cache in
//! front of the store (tower-sessions' `CachingSessionStore`) hands each later request the
//! record as the last save left it, token included, so the next save compares its data with
//! what that save stored and sends exactly what changed since (a key removed after a save that
//! added it, a logout, is removed). Requests a cache runs at once on one session may start
//! from data older or newer than the token's origin: an older origin only makes a save send
//! more keys than it changed; a newer one makes it remove keys another request added
//! meanwhile, as with any store behind a cache. A removal is never lost.
//!
//! Memory is bounded: two generations of at most `capacity / 2` tokens each; a token that
//! outlived them (or one a handler wrote, or one from another process) names nothing, and the
//! save then replaces the whole session. A token names an origin for one session only: the
//! table keeps a seeded 64-bit hash of the session's id with it (no copy of the id), so a
//! token carried into another session's data names nothing there.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::session::{key_hash, Origin};

const TAG: &str = "dbo1:";

/// Token → (a hash of the session id, the origin). Tokens are random: a fast hash will do.
type Table = HashMap<u64, (u64, Arc<Origin>), foldhash::fast::RandomState>;

#[derive(Debug, Default)]
struct Generations {
    current: Table,
    previous: Table,
}

/// The origins behind the tokens handed out, bounded.
#[derive(Debug)]
pub(crate) struct Origins {
    generations: Mutex<Generations>,
    capacity: usize,
}

impl Origins {
    /// Keeps at most `capacity` tokens (two generations of half).
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

    /// A new token naming `origin` (a load or a create) of `sid`.
    pub fn remember(&self, sid: &str, origin: Arc<Origin>) -> String {
        let token = databank_core::driver::random_revision().get();
        self.saved(token, sid, origin);
        format!("{TAG}{token:016x}")
    }

    /// The token a value carried under the reserved key holds, if it is one (known or not),
    /// and the origin it names for `sid`, if this process knows it.
    pub fn recall(&self, sid: &str, carried: Option<&Value>) -> (Option<u64>, Option<Arc<Origin>>) {
        let token = carried
            .and_then(Value::as_str)
            .and_then(|text| text.strip_prefix(TAG))
            .and_then(|hex| u64::from_str_radix(hex, 16).ok());
        let origin = token.and_then(|token| {
            let named = key_hash(sid);
            let generations = self.lock();
            generations
                .current
                .get(&token)
                .or_else(|| generations.previous.get(&token))
                .filter(|(of, _)| *of == named)
                .map(|(_, origin)| origin.clone())
        });
        (token, origin)
    }

    /// Makes `token` name `origin` of `sid` from now on (what a save under it stored). A full
    /// current generation becomes the previous one, reusing the table of the one it drops.
    pub fn saved(&self, token: u64, sid: &str, origin: Arc<Origin>) {
        let named = key_hash(sid);
        let mut generations = self.lock();
        if generations.current.len() >= self.capacity / 2
            && !generations.current.contains_key(&token)
        {
            let mut dropped = std::mem::take(&mut generations.previous);
            dropped.clear();
            generations.previous = std::mem::replace(&mut generations.current, dropped);
        }
        generations.previous.remove(&token);
        generations.current.insert(token, (named, origin));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use databank_core::Revision;
    use serde_json::json;

    fn origin(revision: u64) -> Arc<Origin> {
        Arc::new(Origin::with(Revision::new(revision), Default::default()))
    }

    fn token_of(carried: &Value) -> u64 {
        carried
            .as_str()
            .and_then(|text| text.strip_prefix(TAG))
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            .unwrap_or_default()
    }

    #[test]
    fn tokens_name_their_origin_for_their_session_only() {
        let origins = Origins::new(8);
        let carried = json!(origins.remember("s1", origin(1)));
        assert_eq!(origins.recall("s1", Some(&carried)).1, Some(origin(1)));
        assert_eq!(origins.recall("s2", Some(&carried)).1, None);
        assert_eq!(origins.recall("s1", Some(&json!("dbo1:zz"))), (None, None));
        assert_eq!(origins.recall("s1", Some(&json!(7))), (None, None));
        assert_eq!(origins.recall("s1", None), (None, None));
    }

    #[test]
    fn a_save_makes_the_token_name_what_it_stored() {
        let origins = Origins::new(8);
        let carried = json!(origins.remember("s", origin(1)));
        let (token, _) = origins.recall("s", Some(&carried));
        assert_eq!(token, Some(token_of(&carried)));
        origins.saved(token_of(&carried), "s", origin(2));
        assert_eq!(origins.recall("s", Some(&carried)).1, Some(origin(2)));
    }

    #[test]
    fn memory_stays_bounded() {
        let origins = Origins::new(8);
        let first = json!(origins.remember("s", origin(1)));
        for n in 0..100 {
            origins.remember("s", origin(n));
        }
        assert_eq!(origins.recall("s", Some(&first)).1, None);
        let generations = origins.lock();
        assert!(generations.current.len() + generations.previous.len() <= 8);
        drop(generations);
        // A token saved under many times stays one entry, and recent.
        let origins = Origins::new(8);
        let carried = json!(origins.remember("s", origin(0)));
        for n in 1..100 {
            origins.saved(token_of(&carried), "s", origin(n));
        }
        assert_eq!(origins.recall("s", Some(&carried)).1, Some(origin(99)));
        assert_eq!(origins.lock().current.len(), 1);
    }
}
