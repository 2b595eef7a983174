//! Fault injection on `/v1/*`, so that clients can be tested against a gateway that misbehaves the
//! ways real ones do: slow answers, 5xx that did nothing, answers that never come in time, and
//! answers lost after the request took effect (the case that makes idempotency keys necessary).
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use platform::shutdown::Stopping;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::lock;
use crate::stripe::ApiError;

/// The knobs. Rates are shares of requests, from 0 to 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    /// Added to every `/v1` request.
    pub latency_ms: u64,
    /// Requests answered 500 or 503 (`api_error`) without taking effect.
    pub error_rate: f64,
    /// Requests that take effect, then wait `hang_ms` before answering: longer than a client's
    /// timeout, so the client cannot know what happened.
    pub hang_rate: f64,
    pub hang_ms: u64,
    /// POSTs that take effect, then lose their answer: the connection is dropped mid-response.
    pub lost_answer_rate: f64,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            error_rate: 0.0,
            hang_rate: 0.0,
            hang_ms: 30_000,
            lost_answer_rate: 0.0,
        }
    }
}

/// `PUT /admin/faults`: the knobs it names change, the others keep their values.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsPatch {
    pub latency_ms: Option<u64>,
    pub error_rate: Option<f64>,
    pub hang_rate: Option<f64>,
    pub hang_ms: Option<u64>,
    pub lost_answer_rate: Option<f64>,
}

impl Faults {
    /// The first invalid knob: its name and why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("hang_rate", self.hang_rate),
            ("lost_answer_rate", self.lost_answer_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err((name, format!("{name} must be between 0 and 1, not {rate}.")));
            }
        }
        Ok(())
    }

    pub fn patched(mut self, patch: FaultsPatch) -> Self {
        self.latency_ms = patch.latency_ms.unwrap_or(self.latency_ms);
        self.error_rate = patch.error_rate.unwrap_or(self.error_rate);
        self.hang_rate = patch.hang_rate.unwrap_or(self.hang_rate);
        self.hang_ms = patch.hang_ms.unwrap_or(self.hang_ms);
        self.lost_answer_rate = patch.lost_answer_rate.unwrap_or(self.lost_answer_rate);
        self
    }
}

/// The current knobs and the dice. Seeded for a reproducible run, from entropy otherwise.
pub struct Injector {
    faults: Mutex<Faults>,
    rng: Mutex<StdRng>,
    /// Cuts hangs and latency short on shutdown, so that graceful shutdown does not wait them out.
    stopping: Stopping,
}

impl Injector {
    pub fn new(faults: Faults, seed: Option<u64>, stopping: Stopping) -> Self {
        let rng = match seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_entropy(),
        };
        Self {
            faults: Mutex::new(faults),
            rng: Mutex::new(rng),
            stopping,
        }
    }

    pub fn get(&self) -> Faults {
        *lock(&self.faults)
    }

    pub fn set(&self, faults: Faults) {
        *lock(&self.faults) = faults;
    }

    fn roll(&self, rate: f64) -> bool {
        rate > 0.0 && lock(&self.rng).gen::<f64>() < rate
    }

    async fn pause(&self, ms: u64) {
        if ms > 0 {
            self.stopping.clone().pause(Duration::from_millis(ms)).await;
        }
    }
}

/// The outer fault layer: errors before anything happens, hangs and lost answers after.
pub async fn middleware(
    State(injector): State<Arc<Injector>>,
    request: Request,
    next: Next,
) -> Response {
    let faults = injector.get();
    if injector.roll(faults.error_rate) {
        injector.pause(faults.latency_ms).await;
        let status = if injector.roll(0.5) {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        tracing::info!(status = status.as_u16(), "fault injected: error answer");
        return ApiError::server_error(status).into_response();
    }
    let lose = request.method() == Method::POST && injector.roll(faults.lost_answer_rate);
    let hang = injector.roll(faults.hang_rate);
    let response = next.run(request).await;
    if hang {
        tracing::info!(hang_ms = faults.hang_ms, "fault injected: hanging");
        injector.pause(faults.hang_ms).await;
    }
    if lose {
        tracing::info!("fault injected: answer lost");
        return lost(response);
    }
    response
}

/// The inner latency layer: inside the idempotency layer, so that a key stays "in flight" while
/// the gateway is slow, as it would on a real one.
pub async fn latency(
    State(injector): State<Arc<Injector>>,
    request: Request,
    next: Next,
) -> Response {
    injector.pause(injector.get().latency_ms).await;
    next.run(request).await
}

/// The answer with a body that fails at once: hyper then aborts the connection, and the client
/// gets no complete answer.
fn lost(response: Response) -> Response {
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let failing = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "answer lost on purpose (fault injection)",
        ))
    });
    Response::from_parts(parts, Body::from_stream(failing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_changes_only_the_knobs_it_names() {
        let faults = Faults {
            latency_ms: 50,
            ..Faults::default()
        };
        let patched = faults.patched(FaultsPatch {
            error_rate: Some(0.5),
            ..FaultsPatch::default()
        });
        assert_eq!(patched.latency_ms, 50);
        assert_eq!(patched.error_rate, 0.5);
        assert_eq!(patched.hang_ms, 30_000);
    }

    #[test]
    fn rates_outside_zero_to_one_are_refused() {
        assert!(Faults::default().check().is_ok());
        let bad = Faults {
            hang_rate: 1.5,
            ..Faults::default()
        };
        assert_eq!(bad.check().unwrap_err().0, "hang_rate");
        let nan = Faults {
            error_rate: f64::NAN,
            ..Faults::default()
        };
        assert!(nan.check().is_err());
    }

    #[test]
    fn a_seeded_injector_rolls_the_same_dice() {
        let (_, stopping) = platform::shutdown::stopping();
        let a = Injector::new(Faults::default(), Some(7), stopping.clone());
        let b = Injector::new(Faults::default(), Some(7), stopping);
        let rolls = |i: &Injector| (0..64).map(|_| i.roll(0.5)).collect::<Vec<_>>();
        assert_eq!(rolls(&a), rolls(&b));
        assert!(!a.roll(0.0));
        assert!(a.roll(1.0));
    }
}
