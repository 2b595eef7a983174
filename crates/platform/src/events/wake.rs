//! Waking the outbox's readers when an entry commits, instead of having them poll: the feed's long
//! polls (`GET /events?wait=`) and the RabbitMQ relay wait here.
//!
//! * **In this process**: a transaction that wrote the outbox ([`Tx::enqueue`](crate::db::Tx::enqueue))
//!   calls [`committed`] once its commit has returned, so the entry is visible to every reader it
//!   wakes. One signal serves the whole process: a service runs alone in its process (`agora up`
//!   starts one per service), and where several share one (tests) a waiter woken by another
//!   database's commit reads, finds nothing and waits again.
//! * **Between replicas** (PostgreSQL): [`listen`] (started with the service's event work) sends
//!   `NOTIFY agora_outbox` after this process's commits, one for all those made while the last was
//!   on its way, and forwards the other replicas' to this process's waiters. A replica ignores its
//!   own notifications, which [`committed`] has already announced. The `NOTIFY` is not sent inside
//!   the writing transaction: PostgreSQL holds a lock from a notifying transaction's commit until
//!   its end, so every writer would commit, and wait for the disk, one after the other.
//! * **Fallback**: a waiter still reads the outbox every [`fallback_poll`], so a lost notification
//!   (a listener reconnecting, a commit whose answer was lost) only delays an entry. SQLite has no
//!   notification between processes: replicas sharing its file find each other's entries by this
//!   poll, which is why it is short there.
use std::sync::LazyLock;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use tokio::sync::Notify;

use crate::db::Database;
use crate::shutdown::Shutdown;

/// The PostgreSQL channel outbox writers notify on commit.
pub const CHANNEL: &str = "agora_outbox";

/// Signalled after a transaction that wrote the outbox has committed, in this process or (heard
/// through [`listen`]) in another replica.
static COMMITTED: LazyLock<Notify> = LazyLock::new(Notify::new);

/// Signalled after a transaction that wrote the outbox has committed in this process: the other
/// replicas are to be told (by every [`listen`] of the process, each on its own database, where
/// several services share one process, as in tests).
static TO_TELL: LazyLock<Notify> = LazyLock::new(Notify::new);

/// This process's name in its notifications, so that its listener can skip what it sent itself.
static PROCESS: LazyLock<String> = LazyLock::new(|| uuid::Uuid::now_v7().to_string());

/// How often a waiter reads the outbox anyway. PostgreSQL: only to cover a lost notification.
/// SQLite: replicas sharing the file are not notified of each other's commits, and this is their
/// wake-up (the interval every waiter used before notifications).
pub fn fallback_poll(db: &Database) -> Duration {
    match db {
        Database::Sqlite(..) => Duration::from_millis(50),
        Database::Postgres(_) => Duration::from_secs(1),
    }
}

/// A wake-up for the next commit. Take it *before* reading the outbox, then await it when the
/// read found nothing: it is registered from the moment it is taken (tokio's `notify_waiters`
/// reaches a `Notified` not yet polled), so a commit between the read and the wait still wakes it.
pub fn next_commit() -> tokio::sync::futures::Notified<'static> {
    COMMITTED.notified()
}

/// Wakes every waiter of this process, and has the other replicas told: an outbox entry has
/// committed here.
pub(crate) fn committed() {
    COMMITTED.notify_waiters();
    TO_TELL.notify_waiters();
}

/// The payload this process's `NOTIFY` carries (its name).
pub(crate) fn process() -> &'static str {
    &PROCESS
}

/// On PostgreSQL, until `shutdown`: forwards other replicas' commit notifications to this process's
/// waiters, on a connection of its own (outside the service's pool), reconnecting with backoff;
/// and notifies them of this process's commits. Does nothing on SQLite.
pub async fn listen(db: Database, shutdown: Shutdown) {
    let Database::Postgres(pool) = db else {
        return;
    };
    // One connection, kept: a listener must stay connected to hear anything.
    let own = PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_lazy_with((*pool.connect_options()).clone());
    tokio::select! {
        _ = shutdown => {}
        _ = async { tokio::join!(hear_others(&own), tell_others(&pool)) } => {}
    }
    own.close().await;
}

/// Hears the other replicas' notifications, reconnecting with backoff; never returns.
async fn hear_others(own: &PgPool) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let lost = listen_connected(own).await;
        tracing::warn!(error = %lost, "outbox listener disconnected; reconnecting (waiters fall back to polling meanwhile)");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Sends one `NOTIFY` for the commits made since the last one was sent; never returns. A
/// `NOTIFY` alone in its transaction writes nothing to the log and waits for no disk.
async fn tell_others(pool: &PgPool) {
    // Always waiting, also while a `NOTIFY` is on its way (a `Notified` hears `notify_waiters`
    // from the moment it is made): a commit meanwhile is told by the next one.
    let mut next = Box::pin(TO_TELL.notified());
    loop {
        next.as_mut().await;
        next.set(TO_TELL.notified());
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(process())
            .execute(pool)
            .await;
        if let Err(e) = sent {
            // The other replicas read the outbox at their fallback poll anyway.
            tracing::warn!(error = %e, "notifying the other replicas of an outbox commit failed");
        }
    }
}

/// Listens until the connection fails; returns why.
async fn listen_connected(pool: &PgPool) -> sqlx::Error {
    let mut listener = match PgListener::connect_with(pool).await {
        Ok(listener) => listener,
        Err(e) => return e,
    };
    if let Err(e) = listener.listen(CHANNEL).await {
        return e;
    }
    // Whatever committed while nobody listened is read now rather than at the next fallback poll.
    COMMITTED.notify_waiters();
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                if notification.payload() != process() {
                    COMMITTED.notify_waiters();
                }
            }
            // The connection dropped and was made again: what came meanwhile was not heard.
            Ok(None) => COMMITTED.notify_waiters(),
            Err(e) => return e,
        }
    }
}
