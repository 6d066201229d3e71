//! Every store under test as one shape: requests (load, maybe change and save) on its
//! sessions, through each store's own tower-sessions `SessionStore` trait (three versions of
//! it), on either of two separately opened instances of the store.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use databank_bench::Error;
use serde_json::{json, Value};

/// A boxed future of a result.
pub type Pending<T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send>>;

/// One simulated request.
pub type Request = Arc<dyn Fn(Visit) -> Pending<()> + Send + Sync>;

/// One contending request, number `i` (section 6).
pub type Op = Arc<dyn Fn(usize) -> Pending<()> + Send + Sync>;

/// Starts a fresh contended session holding this many keys besides the contenders'.
pub type Reset = Arc<dyn Fn(usize) -> Pending<()> + Send + Sync>;

/// Counts the contenders' keys (`r<i>`) of the contended session.
pub type Count = Arc<dyn Fn() -> Pending<usize> + Send + Sync>;

/// What one request does.
#[derive(Debug, Clone, Copy)]
pub struct Visit {
    /// Which seeded session (taken modulo the number seeded).
    pub session: usize,
    /// Through which instance of the store: 0 or 1 (two app instances on the same data).
    pub instance: usize,
    /// Whether the request changes the session (sets `visits` and saves); otherwise it only
    /// loads it, as tower-sessions makes no save call for an unchanged session.
    pub write: bool,
    /// The request's number (the value written).
    pub n: usize,
}

/// A store under test.
pub struct Subject {
    pub name: String,
    /// How many sessions were seeded.
    pub sessions: usize,
    /// Loads session `visit.session` through instance `visit.instance`; when `visit.write`,
    /// sets `visits` and saves.
    pub request: Request,
    /// Loads the contended session, adds key `r<i>`, saves (section 6).
    pub contend: Op,
    /// Replaces the contended session with a fresh one pre-filled with `n` keys `p<k>`.
    pub reset_contended: Reset,
    /// The contenders' keys of the contended session now.
    pub contended_keys: Count,
}

/// The session data every request carries: 10 keys, about 1 KiB of JSON.
pub fn session_data(i: usize) -> Vec<(String, Value)> {
    (0..10)
        .map(|k| {
            (
                format!("k{k}"),
                json!(format!("{i:06}-{k}-{}", "v".repeat(80))),
            )
        })
        .collect()
}

/// A base for session ids no other subject in this run (or an earlier one) uses: subjects
/// share servers, and some stores' `create` fails outright on an id that exists.
pub fn fresh_id_base() -> i128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0);
    (nanos << 40) + ((NEXT.fetch_add(1, Ordering::Relaxed) as i128) << 24)
}

/// How many sessions are seeded at once.
pub const SEEDING: usize = 64;

/// Builds a [`Subject`] over any version of tower-sessions-core (`$core`) from two instances
/// of a store over the same data (`$first`, `$second`).
#[macro_export]
macro_rules! subject {
    (@seed create, $store:ident, $record:ident) => {
        SessionStore::create(&*$store, &mut $record).await?
    };
    (@seed save, $store:ident, $record:ident) => {
        SessionStore::save(&*$store, &$record).await?
    };
    // `$seed`: how the store makes a session, `create` (core 0.12 and later) or `save` (0.11).
    ($name:expr, $core:ident, $seed:ident, $first:expr, $second:expr, $sessions:expr) => {{
        use futures_util::{StreamExt, TryStreamExt};
        use $core::session::{Id, Record};
        use $core::SessionStore;
        let instances = std::sync::Arc::new([$first, $second]);
        let sessions: usize = $sessions;
        let later = || time::OffsetDateTime::now_utc() + time::Duration::hours(1);
        let base = $crate::stores::fresh_id_base();
        let seeded: Vec<Id> = futures_util::stream::iter(0..sessions)
            .map(|i| {
                let store = instances.clone();
                async move {
                    #[allow(unused_mut)]
                    let mut record = Record {
                        id: Id(base + i as i128),
                        data: $crate::stores::session_data(i).into_iter().collect(),
                        expiry_date: later(),
                    };
                    let store = &store[0];
                    subject!(@seed $seed, store, record);
                    Ok::<_, databank_bench::Error>(record.id)
                }
            })
            .buffered($crate::stores::SEEDING)
            .try_collect()
            .await?;
        let ids: std::sync::Arc<Vec<Id>> = std::sync::Arc::new(seeded);
        let (s, ids_r) = (instances.clone(), ids.clone());
        let request: $crate::stores::Request = std::sync::Arc::new(move |visit| {
            let (stores, id) = (s.clone(), ids_r[visit.session % sessions]);
            Box::pin(async move {
                let store = &stores[visit.instance % 2];
                let mut record = SessionStore::load(store, &id).await?.ok_or("a seeded session was missing")?;
                if visit.write {
                    record.data.insert("visits".into(), serde_json::json!(visit.n));
                    record.expiry_date = later();
                    SessionStore::save(store, &record).await?;
                }
                Ok(())
            })
        });
        // The contended session: a fresh one per measured run.
        let hot = std::sync::Arc::new(std::sync::Mutex::new(Id(base - 1)));
        let hot_id = {
            let hot = hot.clone();
            move || *hot.lock().unwrap_or_else(|poison| poison.into_inner())
        };
        let (s, at) = (instances.clone(), hot_id.clone());
        let contend: $crate::stores::Op = std::sync::Arc::new(move |i| {
            let (store, id) = (s.clone(), at());
            Box::pin(async move {
                let store = &store[0];
                let mut record = SessionStore::load(store, &id).await?.ok_or("the contended session was missing")?;
                record.data.insert(format!("r{i}"), serde_json::json!(true));
                SessionStore::save(store, &record).await?;
                Ok(())
            })
        });
        let (s, hot_w) = (instances.clone(), hot.clone());
        let reset_contended: $crate::stores::Reset = std::sync::Arc::new(move |prefill| {
            let (store, hot) = (s.clone(), hot_w.clone());
            Box::pin(async move {
                #[allow(unused_mut)]
                let mut record = Record {
                    id: Id($crate::stores::fresh_id_base()),
                    data: (0..prefill)
                        .map(|k| (format!("p{k}"), serde_json::json!(true)))
                        .collect(),
                    expiry_date: later(),
                };
                let store = &store[0];
                subject!(@seed $seed, store, record);
                *hot.lock().unwrap_or_else(|poison| poison.into_inner()) = record.id;
                Ok(())
            })
        });
        let (s, at) = (instances.clone(), hot_id);
        let contended_keys: $crate::stores::Count = std::sync::Arc::new(move || {
            let (store, id) = (s.clone(), at());
            Box::pin(async move {
                let record = SessionStore::load(&store[0], &id).await?.ok_or("the contended session was missing")?;
                Ok(record.data.keys().filter(|k| k.starts_with('r')).count())
            })
        });
        $crate::stores::Subject {
            name: $name.to_string(),
            sessions,
            request,
            contend,
            reset_contended,
            contended_keys,
        }
    }};
}
