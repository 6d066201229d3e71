//! What the framework adapters carry from `load` to `save`: a short opaque token naming the
//! [`Origin`]s this process keeps for it, instead of an origin itself.
//!
//! A token names one load (or create), and then every save made under it: its history of
//! versions, each the fingerprints of the whole session as that save stored it. A cache in
//! front of the store (tower-sessions' `CachingSessionStore`) hands each later request the
//! record as some save under the token left it, token included; concurrent requests may start
//! from different versions. The save picks the version its data differs least from (see
//! [`closest`](crate::session::closest)), most likely the one the request started from, and
//! sets the keys whose values differ from it, so it does not write back values another request
//! changed meanwhile. Keys the data lacks are another matter: a request that removed a key (a
//! logout, a flash message read) ends with data equal to a version before that key was added,
//! and data alone cannot tell that from a request that started there while another added it.
//! So every key some version holds and the data lacks is removed (see
//! [`absent_keys`](crate::session::absent_keys)): a removal is never lost; a key added by a
//! concurrent request may be, as with any store behind a cache. A save
//! records its data as a version before it reaches the bank, since the cache hands that data
//! out from then on (it saves to itself and to the store at once), and puts what the bank
//! stored in its place when the bank answers: a request that started from data still being
//! saved finds its version, instead of a newer one holding keys it lacks.
//!
//! Memory is bounded: at most [`VERSIONS`] versions a token, and two generations of at most
//! `capacity / 2` versions kept each; a token that outlived them (or one a handler wrote, or
//! one from another process) names nothing, and the save then replaces the whole session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::session::Origin;

const TAG: &str = "dbo1:";

/// The versions one token keeps: enough for the requests a cache may have in flight on one
/// session at once.
pub(crate) const VERSIONS: usize = 16;

#[derive(Debug)]
struct Remembered {
    sid: String,
    /// Oldest first.
    versions: Vec<Arc<Origin>>,
}

impl Remembered {
    /// Adds the newest version, dropping the oldest past [`VERSIONS`]; for another session the
    /// history starts over.
    fn push(&mut self, sid: &str, origin: Arc<Origin>) {
        if self.sid != sid {
            sid.clone_into(&mut self.sid);
            self.versions.clear();
        }
        if self.versions.len() >= VERSIONS {
            self.versions.remove(0);
        }
        self.versions.push(origin);
    }
}

#[derive(Debug, Default)]
struct Generations {
    current: HashMap<u64, Remembered>,
    previous: HashMap<u64, Remembered>,
    /// Versions added to `current` since it began.
    added: usize,
}

/// The origins behind the tokens handed out, bounded.
#[derive(Debug)]
pub(crate) struct Origins {
    generations: Mutex<Generations>,
    capacity: usize,
}

/// What a carried token names.
#[derive(Debug)]
pub(crate) struct Recalled {
    /// The token, if the carried value was one (known or not).
    pub token: Option<u64>,
    /// Its versions, oldest first; empty when it names nothing this process knows for `sid`.
    pub versions: Vec<Arc<Origin>>,
}

impl Origins {
    /// Keeps at most `capacity` versions (two generations of half).
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

    /// Adds `origin` as the newest version of `token` for `sid` (a token of another session
    /// starts over). A token in the current generation is changed in place; a new generation
    /// reuses the table of the one it drops (no regrowth, no rehash).
    fn add(&self, token: u64, sid: &str, origin: Arc<Origin>) {
        let mut generations = self.lock();
        if generations.added >= self.capacity / 2 {
            let mut dropped = std::mem::take(&mut generations.previous);
            dropped.clear();
            generations.previous = std::mem::replace(&mut generations.current, dropped);
            generations.added = 0;
        }
        generations.added += 1;
        if let Some(remembered) = generations.current.get_mut(&token) {
            remembered.push(sid, origin);
            return;
        }
        let remembered = match generations.previous.remove(&token) {
            Some(mut remembered) => {
                remembered.push(sid, origin);
                remembered
            }
            None => Remembered {
                sid: sid.to_owned(),
                versions: vec![origin],
            },
        };
        generations.current.insert(token, remembered);
    }

    /// A new token naming `origin` (a load or a create) of `sid`.
    pub fn remember(&self, sid: &str, origin: Arc<Origin>) -> String {
        let token = databank_core::driver::random_revision().get();
        self.add(token, sid, origin);
        format!("{TAG}{token:016x}")
    }

    /// What a value carried under the reserved key names for `sid`.
    pub fn recall(&self, sid: &str, carried: Option<&Value>) -> Recalled {
        let token = carried
            .and_then(Value::as_str)
            .and_then(|text| text.strip_prefix(TAG))
            .and_then(|hex| u64::from_str_radix(hex, 16).ok());
        let versions = token
            .and_then(|token| {
                let generations = self.lock();
                generations
                    .current
                    .get(&token)
                    .or_else(|| generations.previous.get(&token))
                    .filter(|remembered| remembered.sid == sid)
                    .map(|remembered| remembered.versions.clone())
            })
            .unwrap_or_default();
        Recalled { token, versions }
    }

    /// Records what a save under `token` stored (or is storing) as its newest version.
    pub fn saved(&self, token: u64, sid: &str, origin: Arc<Origin>) {
        self.add(token, sid, origin);
    }

    /// Puts what a save stored in the place of the `pending` version it recorded when it
    /// began (as the newest version if that one is gone).
    pub fn settled(&self, token: u64, sid: &str, pending: &Arc<Origin>, saved: Arc<Origin>) {
        {
            let mut generations = self.lock();
            let Generations {
                current, previous, ..
            } = &mut *generations;
            let slot = current
                .get_mut(&token)
                .or_else(|| previous.get_mut(&token))
                .filter(|remembered| remembered.sid == sid)
                .and_then(|remembered| {
                    remembered
                        .versions
                        .iter_mut()
                        .find(|version| Arc::ptr_eq(version, pending))
                });
            if let Some(slot) = slot {
                *slot = saved;
                return;
            }
        }
        self.add(token, sid, saved);
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

    #[test]
    fn tokens_name_their_origin_for_their_session_only() {
        let origins = Origins::new(8);
        let token = origins.remember("s1", origin(1));
        let carried = json!(token);
        assert_eq!(
            origins.recall("s1", Some(&carried)).versions,
            vec![origin(1)]
        );
        assert!(origins.recall("s2", Some(&carried)).versions.is_empty());
        assert!(origins
            .recall("s1", Some(&json!("dbo1:zz")))
            .versions
            .is_empty());
        assert!(origins.recall("s1", Some(&json!(7))).versions.is_empty());
        assert!(origins.recall("s1", None).versions.is_empty());
    }

    #[test]
    fn memory_stays_bounded() {
        let origins = Origins::new(8);
        let first = json!(origins.remember("s", origin(1)));
        for n in 0..100 {
            origins.remember("s", origin(n));
        }
        assert!(origins.recall("s", Some(&first)).versions.is_empty());
        let generations = origins.lock();
        assert!(generations.current.len() + generations.previous.len() <= 8);
        drop(generations);
        // One token saved under many times keeps its newest VERSIONS versions.
        let origins = Origins::new(1024);
        let carried = json!(origins.remember("s", origin(0)));
        let Some(token) = origins.recall("s", Some(&carried)).token else {
            panic!("a token handed out was not read back");
        };
        for n in 1..100 {
            origins.saved(token, "s", origin(n));
        }
        let versions = origins.recall("s", Some(&carried)).versions;
        assert_eq!(versions.len(), VERSIONS);
        assert_eq!(versions.last(), Some(&origin(99)));
    }

    #[test]
    fn a_settled_save_takes_the_place_of_its_pending_version() {
        let origins = Origins::new(8);
        let carried = json!(origins.remember("s", origin(1)));
        let Some(token) = origins.recall("s", Some(&carried)).token else {
            panic!("a token handed out was not read back");
        };
        let (first, second) = (origin(0), origin(0));
        origins.saved(token, "s", first.clone());
        origins.saved(token, "s", second.clone());
        // The first save to begin answers last: it keeps its place in the order.
        origins.settled(token, "s", &second, origin(3));
        origins.settled(token, "s", &first, origin(2));
        assert_eq!(
            origins.recall("s", Some(&carried)).versions,
            vec![origin(1), origin(2), origin(3)]
        );
        // A pending version already dropped: the settled one comes in as the newest.
        origins.settled(token, "s", &origin(0), origin(4));
        assert_eq!(
            origins.recall("s", Some(&carried)).versions.last(),
            Some(&origin(4))
        );
    }

    #[test]
    fn a_save_adds_a_version() {
        let origins = Origins::new(8);
        let carried = json!(origins.remember("s", origin(1)));
        let recalled = origins.recall("s", Some(&carried));
        if let Some(token) = recalled.token {
            origins.saved(token, "s", origin(2));
        }
        assert_eq!(
            origins.recall("s", Some(&carried)).versions,
            vec![origin(1), origin(2)]
        );
    }
}
