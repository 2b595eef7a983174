//! Login throttling: failures are counted per account and per client address over a sliding
//! window, in the users database, so that every replica sees the same counts and a restart forgets
//! nothing. Each failure is a row; rows older than the window are deleted as new failures come in,
//! so the table holds at most one window of failures (each costs an argon2 verification, which
//! bounds their rate) and no flood of other keys can clear a key's count.
//! The address is the TCP peer: behind the gateway it is the gateway's, so there the per-address
//! limit applies to all of its traffic together.
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::crypto::sha256;
use crate::storage::{Store, StoreError};

pub struct Throttle {
    store: Arc<dyn Store>,
    /// What is counted (`account`, `address`): each kind has its own counts.
    kind: &'static str,
    limit: i64,
    window_ms: i64,
}

impl Throttle {
    pub fn new(store: Arc<dyn Store>, kind: &'static str, limit: usize, window: Duration) -> Self {
        Self {
            store,
            kind,
            limit: i64::try_from(limit).unwrap_or(i64::MAX).max(1),
            window_ms: i64::try_from(window.as_millis()).unwrap_or(i64::MAX),
        }
    }

    /// `Some(wait)` when `key` has used up its failures in the window.
    pub async fn blocked(&self, key: &str) -> Result<Option<Duration>, StoreError> {
        let now = now_ms();
        let (count, oldest) = self
            .store
            .login_failures(self.kind, &sha256(key), now.saturating_sub(self.window_ms))
            .await?;
        if count < self.limit {
            return Ok(None);
        }
        let wait = oldest.map_or(0, |t| {
            t.saturating_add(self.window_ms).saturating_sub(now).max(0)
        });
        Ok(Some(Duration::from_millis(
            u64::try_from(wait).unwrap_or_default(),
        )))
    }

    pub async fn fail(&self, key: &str) -> Result<(), StoreError> {
        let now = now_ms();
        self.store
            .record_login_failure(
                self.kind,
                &sha256(key),
                now,
                now.saturating_sub(self.window_ms),
            )
            .await
    }

    pub async fn clear(&self, key: &str) -> Result<(), StoreError> {
        self.store
            .clear_login_failures(self.kind, &sha256(key))
            .await
    }
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distinct keys failing after the victim: more than the in-memory throttle kept (it cleared
    /// every count, the victim's included, past 100,000 keys). The same test against that throttle
    /// failed (docs/resilience.md, "Failing-first evidence").
    const SPRAY: i64 = 150_000;

    #[tokio::test]
    async fn a_spray_of_other_keys_does_not_reset_a_lockout() {
        for db in testkit::TestDatabase::all().await {
            let (store, pool) = crate::storage::connect(&db.url, 4).await.unwrap();
            let throttle = Throttle::new(store.clone(), "account", 5, Duration::from_secs(900));
            for _ in 0..5 {
                throttle.fail("victim").await.unwrap();
            }
            assert!(throttle.blocked("victim").await.unwrap().is_some());
            // The spray's failures are written in one statement (one insert each would take
            // minutes), then one more goes through `fail`, which is where old rows are deleted.
            let sprayed =
                crate::storage::spray_login_failures(&pool, "account", "spray-", SPRAY, now_ms())
                    .await
                    .unwrap();
            assert_eq!(sprayed, SPRAY as u64, "{}", db.backend);
            throttle.fail("spray-last").await.unwrap();
            // Every sprayed key is still counted (the bulk rows hold their subjects as they are,
            // `fail` stores a key's hash).
            for subject in [
                "spray-0".to_owned(),
                format!("spray-{}", SPRAY - 1),
                sha256("spray-last"),
            ] {
                let (count, _) = store.login_failures("account", &subject, 0).await.unwrap();
                assert_eq!(count, 1, "{}: {subject} is counted", db.backend);
            }
            assert!(
                throttle.blocked("victim").await.unwrap().is_some(),
                "{}: the victim's lockout survives a spray of {SPRAY} keys",
                db.backend
            );
        }
    }

    #[tokio::test]
    async fn failures_older_than_the_window_stop_counting_and_are_deleted() {
        for db in testkit::TestDatabase::all().await {
            let (store, _db) = crate::storage::connect(&db.url, 2).await.unwrap();
            let window = Duration::from_secs(60);
            let throttle = Throttle::new(store.clone(), "account", 2, window);
            let now = now_ms();
            let hour_ago = now - 3_600_000;
            for _ in 0..2 {
                store
                    .record_login_failure("account", &sha256("old"), hour_ago, 0)
                    .await
                    .unwrap();
            }
            assert_eq!(
                throttle.blocked("old").await.unwrap(),
                None,
                "{}",
                db.backend
            );
            throttle.fail("new").await.unwrap();
            let (left, _) = store
                .login_failures("account", &sha256("old"), 0)
                .await
                .unwrap();
            assert_eq!(left, 0, "{}: expired rows are deleted", db.backend);
            throttle.fail("new").await.unwrap();
            let wait = throttle.blocked("new").await.unwrap().unwrap();
            assert!(wait <= window && wait > Duration::ZERO, "{wait:?}");
            throttle.clear("new").await.unwrap();
            assert_eq!(throttle.blocked("new").await.unwrap(), None);
        }
    }
}
