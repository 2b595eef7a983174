//! Waiting on state instead of sleeping: a test polls what it expects until it holds or a deadline
//! passes, so it neither flakes on a slow machine nor waits longer than it must on a fast one.
use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

/// How long `eventually` pauses between two looks.
const POLL: Duration = Duration::from_millis(50);

/// Calls `check` until it returns `Ok`, and returns that value; `Err` carries what was seen
/// instead. Panics with the last `Err` once `within` has passed (the last look starts before the
/// deadline, so a slow `check` is never cut short).
pub async fn eventually<T, E, F, Fut>(within: Duration, mut check: F) -> T
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + within;
    loop {
        let seen = match check().await {
            Ok(value) => return value,
            Err(seen) => seen,
        };
        if Instant::now() >= deadline {
            panic!("not within {within:?}: {seen}");
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn eventually_returns_the_value_once_the_check_holds() {
        let looks = AtomicU32::new(0);
        let value = eventually(Duration::from_secs(30), || async {
            match looks.fetch_add(1, Ordering::SeqCst) {
                n if n >= 3 => Ok(n),
                n => Err(format!("look {n}")),
            }
        })
        .await;
        assert_eq!(value, 3);
    }

    #[tokio::test]
    async fn eventually_fails_with_what_it_last_saw_when_the_check_never_holds() {
        let outcome = tokio::spawn(eventually(Duration::ZERO, || async {
            Err::<(), _>("still pending")
        }))
        .await;
        let panic = outcome.unwrap_err().into_panic();
        let message = panic.downcast_ref::<String>().unwrap();
        assert!(message.contains("still pending"), "{message}");
    }
}
