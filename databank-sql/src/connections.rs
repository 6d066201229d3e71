//! The connections a bank runs its statements on.
//!
//! sqlx tests every connection that goes back to its pool with a round trip (a `Sync` to
//! PostgreSQL, a message to the SQLite connection's thread), which doubles the round trips of
//! a one-statement call. A bank that opened its own pool keeps the connections it used between
//! statements instead, and gives one back to the pool (where sqlx tests it, and closes it if
//! it is broken) only when a statement failed in a way that may have left it broken, or was
//! cancelled. A bank on a pool the application shares takes a connection from it for each
//! statement and gives it straight back, so it never holds what the application may need; a
//! bank whose own pool is handed out (`pool()`) does the same from then on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use sqlx::pool::PoolConnection;
use sqlx::{Database, Pool};
use tokio::sync::{Semaphore, SemaphorePermit};

/// A pool, and the connections taken from it and kept between statements.
pub(crate) struct Connections<DB: Database> {
    pool: Pool<DB>,
    /// Connections kept between statements (always empty on a shared pool), with when each
    /// was taken from the pool and when it was last kept.
    idle: Mutex<Vec<Kept<DB>>>,
    /// False once the pool is shared: connections then go straight back.
    keeps: AtomicBool,
    /// One permit per connection this bank may use at once, when it owns the pool: no more
    /// are taken from the pool than that, so taking one never waits for a kept one.
    permits: Option<Semaphore>,
}

impl<DB: Database> Connections<DB> {
    /// Statements on a pool this bank opened, of `size` connections: connections are kept.
    pub(crate) fn owned(pool: Pool<DB>, size: u32) -> Self {
        Self {
            pool,
            idle: Mutex::new(Vec::new()),
            keeps: AtomicBool::new(true),
            permits: Some(Semaphore::new(size as usize)),
        }
    }

    /// Statements on a pool the application shares: each connection goes straight back.
    pub(crate) fn shared(pool: Pool<DB>) -> Self {
        Self {
            pool,
            idle: Mutex::new(Vec::new()),
            keeps: AtomicBool::new(false),
            permits: None,
        }
    }

    /// The pool, for statements that take a connection of their own (the set-up).
    pub(crate) fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    /// The pool, to share with the application: the kept connections go back to it, and
    /// from now on every connection goes back after its statement.
    pub(crate) fn share(&self) -> &Pool<DB> {
        self.keeps.store(false, Ordering::Release);
        self.give_back_kept();
        &self.pool
    }

    /// A connection for one statement: a kept one when there is one, else one from the pool.
    /// A kept one past the pool's idle timeout or lifetime goes back to it instead, where sqlx
    /// tests it or closes it as it would its own.
    pub(crate) async fn take(&self) -> Result<Held<'_, DB>, sqlx::Error> {
        let permit = match &self.permits {
            Some(permits) => Some(
                permits
                    .acquire()
                    .await
                    .map_err(|_| sqlx::Error::PoolClosed)?,
            ),
            None => None,
        };
        let options = self.pool.options();
        let (idle_timeout, lifetime) = (options.get_idle_timeout(), options.get_max_lifetime());
        let now = Instant::now();
        let fresh = loop {
            let Some(kept) = self.idle().pop() else {
                break None;
            };
            let stale = idle_timeout.is_some_and(|t| now.duration_since(kept.idle_since) > t)
                || lifetime.is_some_and(|t| now.duration_since(kept.taken_at) > t);
            if !stale {
                break Some(kept);
            }
        };
        let (connection, taken_at) = match fresh {
            Some(kept) => (kept.connection, kept.taken_at),
            None => (self.pool.acquire().await?, now),
        };
        Ok(Held {
            connection: Some(connection),
            taken_at,
            home: self,
            _permit: permit,
        })
    }

    /// Gives every kept connection back and closes the pool.
    pub(crate) async fn close(&self) {
        if let Some(permits) = &self.permits {
            permits.close();
        }
        self.give_back_kept();
        self.pool.close().await;
    }

    /// Gives every kept connection back (see [`give_back`]).
    fn give_back_kept(&self) {
        give_back(std::mem::take(&mut *self.idle()));
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Kept<DB>>> {
        // The list is consistent whatever a panicking holder did: a push or a pop.
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<DB: Database> Drop for Connections<DB> {
    fn drop(&mut self) {
        self.give_back_kept();
    }
}

/// Gives kept connections back to their pool. sqlx does that in a task it spawns, which needs a
/// Tokio runtime; where there is none (a bank dropped after its runtime stopped, or `pool()`
/// called outside one) each is closed instead.
fn give_back<DB: Database>(kept: Vec<Kept<DB>>) {
    if tokio::runtime::Handle::try_current().is_ok() {
        drop(kept);
    } else {
        for kept in kept {
            drop(kept.connection.detach());
        }
    }
}

/// A connection kept between statements.
struct Kept<DB: Database> {
    connection: PoolConnection<DB>,
    taken_at: Instant,
    idle_since: Instant,
}

/// A connection in use by one statement. Dropped without [`Held::done`] (a cancelled call), it
/// goes back to the pool, which tests it.
pub(crate) struct Held<'a, DB: Database> {
    connection: Option<PoolConnection<DB>>,
    /// When it was taken from the pool.
    taken_at: Instant,
    home: &'a Connections<DB>,
    // Released after the connection is kept, so the next statement finds it.
    _permit: Option<SemaphorePermit<'a>>,
}

impl<DB: Database> Held<'_, DB> {
    /// The connection.
    pub(crate) fn connection(&mut self) -> &mut DB::Connection {
        self.connection
            .as_deref_mut()
            .expect("a held connection is only taken by `done`")
    }

    /// The statement ended with `outcome`: the connection is kept when the statement ran to
    /// its end (a result, or an error the database answered with), else given back to the
    /// pool to be tested.
    pub(crate) fn done<T>(mut self, outcome: &Result<T, sqlx::Error>) {
        let sound = matches!(outcome, Ok(_) | Err(sqlx::Error::Database(_)));
        let Some(connection) = self.connection.take() else {
            return;
        };
        if !sound {
            // What broke this one (a server restart, a network cut) most likely broke the kept
            // ones too: they go back to be tested rather than fail a statement each.
            self.home.give_back_kept();
        } else if !self.home.pool.is_closed() {
            // Checked under the lock `share` empties the list under, after clearing `keeps`.
            let mut idle = self.home.idle();
            if self.home.keeps.load(Ordering::Acquire) {
                idle.push(Kept {
                    connection,
                    taken_at: self.taken_at,
                    idle_since: Instant::now(),
                });
                return;
            }
        }
        drop(connection);
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use futures_util::FutureExt;
    use sqlx::sqlite::{SqlitePool, SqlitePoolOptions};
    use sqlx::Sqlite;

    use super::*;

    async fn pool(size: u32) -> SqlitePool {
        SqlitePoolOptions::new()
            .max_connections(size)
            .connect("sqlite::memory:")
            .await
            .expect("an in-memory SQLite database opens")
    }

    async fn statement(connections: &Connections<Sqlite>) -> Result<(), sqlx::Error> {
        let mut held = connections.take().await?;
        let outcome = sqlx::query("SELECT 1").execute(held.connection()).await;
        held.done(&outcome);
        outcome.map(drop)
    }

    fn kept(connections: &Connections<Sqlite>) -> usize {
        connections.idle().len()
    }

    #[tokio::test]
    async fn an_owned_pool_runs_statements_on_kept_connections() {
        let connections = Connections::owned(pool(4).await, 4);
        for _ in 0..20 {
            statement(&connections).await.expect("the statement runs");
        }
        assert_eq!(
            kept(&connections),
            1,
            "one connection serves statements in turn"
        );
        assert_eq!(connections.pool().size(), 1, "no other was opened");
        assert_eq!(connections.pool().num_idle(), 0, "the pool lent it");
    }

    #[tokio::test]
    async fn no_more_connections_are_taken_than_permits() {
        let connections = Connections::owned(pool(2).await, 2);
        let first = connections.take().await.expect("a first connection");
        let second = connections.take().await.expect("a second connection");
        assert!(
            connections.take().now_or_never().is_none(),
            "a third waits for a permit"
        );
        first.done(&Ok::<(), sqlx::Error>(()));
        let third = connections
            .take()
            .now_or_never()
            .expect("a permit is free again")
            .expect("the kept connection");
        third.done(&Ok::<(), sqlx::Error>(()));
        second.done(&Ok::<(), sqlx::Error>(()));
        assert_eq!(kept(&connections), 2);
        assert_eq!(connections.pool().size(), 2);
    }

    #[tokio::test]
    async fn a_failure_other_than_the_databases_answer_gives_every_kept_connection_back() {
        let connections = Connections::owned(pool(3).await, 3);
        let held = [
            connections.take().await.expect("a connection"),
            connections.take().await.expect("a connection"),
            connections.take().await.expect("a connection"),
        ];
        for held in held {
            held.done(&Ok::<(), sqlx::Error>(()));
        }
        assert_eq!(kept(&connections), 3);

        let answered = statement_failing(&connections, "SELECT * FROM no_such_table").await;
        assert!(matches!(answered, Err(sqlx::Error::Database(_))));
        assert_eq!(
            kept(&connections),
            3,
            "an error the database answered keeps it"
        );

        let held = connections.take().await.expect("a connection");
        held.done(&Err::<(), _>(sqlx::Error::Io(std::io::Error::other("cut"))));
        assert_eq!(kept(&connections), 0, "a broken connection sends all back");
        statement(&connections)
            .await
            .expect("the next statement runs");
    }

    async fn statement_failing(
        connections: &Connections<Sqlite>,
        sql: &str,
    ) -> Result<(), sqlx::Error> {
        let mut held = connections.take().await?;
        let outcome = sqlx::query(sql).execute(held.connection()).await;
        held.done(&outcome);
        outcome.map(drop)
    }

    #[tokio::test]
    async fn a_connection_idle_past_the_pools_idle_timeout_goes_back_to_it() {
        let released = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = released.clone();
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .idle_timeout(std::time::Duration::from_secs(60))
            .after_release(move |_, _| {
                counter.fetch_add(1, Ordering::SeqCst);
                Box::pin(async { Ok(true) })
            })
            // Lazy: no connection is opened and given back before the test's own.
            .connect_lazy("sqlite::memory:")
            .expect("an in-memory SQLite database opens");
        let connections = Connections::owned(pool, 2);
        let given_back = || released.load(Ordering::SeqCst);
        statement(&connections).await.expect("the statement runs");
        statement(&connections).await.expect("the statement runs");
        assert_eq!(kept(&connections), 1);
        // Made older than the timeout rather than waited for.
        let past = std::time::Instant::now() - std::time::Duration::from_secs(120);
        connections.idle()[0].idle_since = past;
        let held = connections.take().await.expect("a connection");
        assert_eq!(kept(&connections), 0);
        for _ in 0..1000 {
            if given_back() > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(given_back(), 1, "the stale one went back to the pool");
        held.done(&Ok::<(), sqlx::Error>(()));
        assert_eq!(kept(&connections), 1);
        assert_eq!(given_back(), 1);
    }

    #[tokio::test]
    async fn a_cancelled_statement_gives_its_connection_back() {
        let connections = Connections::owned(pool(2).await, 2);
        let held = connections.take().await.expect("a connection");
        drop(held);
        assert_eq!(kept(&connections), 0);
        statement(&connections)
            .await
            .expect("the next statement runs");
        assert_eq!(kept(&connections), 1);
    }

    #[tokio::test]
    async fn a_shared_pool_keeps_nothing() {
        let connections = Connections::shared(pool(2).await);
        statement(&connections).await.expect("the statement runs");
        assert_eq!(kept(&connections), 0);

        let owned = Connections::owned(pool(2).await, 2);
        statement(&owned).await.expect("the statement runs");
        assert_eq!(kept(&owned), 1);
        let _pool = owned.share();
        assert_eq!(kept(&owned), 0, "sharing gives the kept ones back");
        statement(&owned).await.expect("the statement runs");
        assert_eq!(kept(&owned), 0, "and keeps none from then on");
    }

    #[test]
    fn a_bank_dropped_after_its_runtime_stopped_closes_what_it_kept() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let connections = runtime.block_on(async {
            let connections = Connections::owned(pool(2).await, 2);
            statement(&connections).await.expect("the statement runs");
            connections
        });
        drop(runtime);
        assert_eq!(kept(&connections), 1);
        let pool = connections.pool().clone();
        drop(connections);
        assert_eq!(
            pool.size(),
            0,
            "closed, not handed to a task that cannot run"
        );
    }

    #[tokio::test]
    async fn close_gives_back_and_closes() {
        let connections = Connections::owned(pool(2).await, 2);
        statement(&connections).await.expect("the statement runs");
        connections.close().await;
        assert_eq!(kept(&connections), 0);
        assert!(connections.pool().is_closed());
        assert!(statement(&connections).await.is_err());
    }
}
