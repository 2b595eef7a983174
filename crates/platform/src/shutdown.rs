//! Shutdown is a value passed in, not a global: a future that completes when the process should stop.
use std::future::Future;
use std::pin::Pin;

/// What `run` functions take to know when to stop. `Box` so callers can pass any future.
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub fn on_signal() -> Shutdown {
    Box::pin(async {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = ctrl_c => {},
                        _ = term.recv() => {},
                    }
                }
                Err(_) => {
                    let _ = ctrl_c.await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
    })
}

/// Never completes; for tests whose server lives as long as the test runtime.
pub fn never() -> Shutdown {
    Box::pin(std::future::pending())
}
