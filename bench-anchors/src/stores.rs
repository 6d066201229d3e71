//! Every store under test as one shape: a request (load, change, save) on a session, through
//! each store's own tower-sessions `SessionStore` trait (three versions of it).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use databank_bench::Error;
use serde_json::{json, Value};

/// One simulated request on session number `i`.
pub type Op = Arc<dyn Fn(usize) -> Pending<()> + Send + Sync>;

/// A boxed future of a result.
pub type Pending<T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send>>;

/// Counts the keys of the contended session.
pub type Count = Arc<dyn Fn() -> Pending<usize> + Send + Sync>;

/// A store under test: its requests, and a way to read one session's data back.
pub struct Subject {
    pub name: String,
    /// Load session `i % sessions`, set `visits`, save.
    pub request: Op,
    /// Load the contended session, add key `r<i>`, save (section 6).
    pub contend: Op,
    /// The keys of the contended session now.
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

/// Builds a [`Subject`] over any version of tower-sessions-core (`$core`) and a store value.
#[macro_export]
macro_rules! subject {
    (@seed create, $store:ident, $record:ident) => {
        SessionStore::create(&*$store, &mut $record).await?
    };
    (@seed save, $store:ident, $record:ident) => {
        SessionStore::save(&*$store, &$record).await?
    };
    // `$seed`: how the store makes a session, `create` (core 0.12 and later) or `save` (0.11).
    ($name:expr, $core:ident, $seed:ident, $store:expr, $sessions:expr) => {{
        use $core::session::{Id, Record};
        use $core::SessionStore;
        let store = std::sync::Arc::new($store);
        let sessions: usize = $sessions;
        let later = || time::OffsetDateTime::now_utc() + time::Duration::hours(1);
        let mut seeded = Vec::with_capacity(sessions + 1);
        let base = $crate::stores::fresh_id_base();
        for i in 0..=sessions {
            #[allow(unused_mut)]
            let mut record = Record {
                id: Id(base + i as i128),
                data: $crate::stores::session_data(i).into_iter().collect(),
                expiry_date: later(),
            };
            subject!(@seed $seed, store, record);
            seeded.push(record.id);
        }
        let ids: std::sync::Arc<Vec<Id>> = std::sync::Arc::new(seeded);
        let (s, ids_r) = (store.clone(), ids.clone());
        let request: $crate::stores::Op = std::sync::Arc::new(move |i| {
            let (store, id) = (s.clone(), ids_r[i % sessions]);
            Box::pin(async move {
                let mut record = SessionStore::load(&*store, &id).await?.ok_or("a seeded session was missing")?;
                record.data.insert("visits".into(), serde_json::json!(i));
                record.expiry_date = later();
                SessionStore::save(&*store, &record).await?;
                Ok(())
            })
        });
        // The last id is the contended one.
        let hot = ids[sessions];
        let s = store.clone();
        let contend: $crate::stores::Op = std::sync::Arc::new(move |i| {
            let store = s.clone();
            Box::pin(async move {
                let mut record = SessionStore::load(&*store, &hot).await?.ok_or("the contended session was missing")?;
                record.data.insert(format!("r{i}"), serde_json::json!(true));
                SessionStore::save(&*store, &record).await?;
                Ok(())
            })
        });
        let s = store.clone();
        let contended_keys: $crate::stores::Count = std::sync::Arc::new(move || {
            let store = s.clone();
            Box::pin(async move {
                let record = SessionStore::load(&*store, &hot).await?.ok_or("the contended session was missing")?;
                Ok(record.data.keys().filter(|k| k.starts_with('r')).count())
            })
        });
        $crate::stores::Subject {
            name: $name.to_string(),
            request,
            contend,
            contended_keys,
        }
    }};
}
