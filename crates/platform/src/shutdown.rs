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

/// Tells long-running handlers (long polls) that the server is shutting down, so that graceful
/// shutdown does not wait out their full timeout.
#[derive(Clone)]
pub struct Stopping(tokio::sync::watch::Receiver<bool>);

/// The sending side of [`Stopping`].
pub struct StopSignal(tokio::sync::watch::Sender<bool>);

pub fn stopping() -> (StopSignal, Stopping) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    (StopSignal(tx), Stopping(rx))
}

impl StopSignal {
    /// Wraps `shutdown` so that handlers learn of it the moment it completes.
    pub fn on(self, shutdown: Shutdown) -> Shutdown {
        Box::pin(async move {
            shutdown.await;
            let _ = self.0.send(true);
        })
    }
}

impl Stopping {
    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits at most `pause`, less if shutdown begins meanwhile.
    pub async fn pause(&mut self, pause: std::time::Duration) {
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            Ok(()) = self.0.changed() => {}
        }
    }
}
