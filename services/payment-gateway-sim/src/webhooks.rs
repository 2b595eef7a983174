//! Webhook delivery, as Stripe does it: each event POSTed as JSON to the endpoint, signed with
//! `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, and retried with exponential
//! backoff until the endpoint answers 2xx. Deliveries run in the background, each on its own (so a
//! failing one holds up no other, and, as with Stripe, order is not guaranteed); the API never
//! waits for them. Pending deliveries are dropped on shutdown: the simulator keeps nothing.
use std::time::Duration;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinSet;

use crate::stripe::Event;

/// The retry schedule: 200 ms, doubling, at most 30 s between attempts, 20 attempts in all
/// (about seven minutes), and never past an hour.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub first_delay: Duration,
    pub max_delay: Duration,
    pub max_attempts: u32,
    pub give_up_after: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
            max_attempts: 20,
            give_up_after: Duration::from_secs(60 * 60),
        }
    }
}

/// At most this many webhook requests are in flight at once, as a real gateway limits its
/// concurrency per endpoint; the others wait their turn. Unbounded, a burst of payments opened one
/// connection per event to the receiver (thousands under load, hundreds of MiB in the simulator and
/// the API gateway in front of payments).
const MAX_IN_FLIGHT: usize = 32;

/// The sending side, held by the routes: hands events to the dispatcher, never blocks.
#[derive(Clone)]
pub struct Webhooks {
    tx: Option<mpsc::UnboundedSender<Event>>,
}

impl Webhooks {
    pub fn send(&self, event: Event) {
        match &self.tx {
            Some(tx) => {
                if tx.send(event).is_err() {
                    tracing::debug!("webhook dispatcher stopped; event dropped");
                }
            }
            None => tracing::debug!(event = event.kind, "no webhook_url; event not delivered"),
        }
    }
}

/// The delivering side, run by the application until shutdown.
pub struct Dispatcher {
    rx: mpsc::UnboundedReceiver<Event>,
    url: String,
    secret: SecretString,
    retry: Retry,
    http: reqwest::Client,
    in_flight: Arc<Semaphore>,
}

/// A sender and its dispatcher; without a URL, events are dropped and there is no dispatcher.
pub fn channel(url: Option<String>, secret: SecretString) -> (Webhooks, Option<Dispatcher>) {
    let Some(url) = url else {
        return (Webhooks { tx: None }, None);
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(2))
        .build()
        .unwrap_or_default();
    let dispatcher = Dispatcher {
        rx,
        url,
        secret,
        retry: Retry::default(),
        http,
        in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
    };
    (Webhooks { tx: Some(tx) }, Some(dispatcher))
}

impl Dispatcher {
    /// Delivers events until `stop` fires (or every sender is gone), then abandons what is left.
    pub async fn run(mut self, mut stop: oneshot::Receiver<()>) {
        let mut deliveries = JoinSet::new();
        loop {
            tokio::select! {
                event = self.rx.recv() => match event {
                    Some(event) => {
                        deliveries.spawn(deliver(
                            self.http.clone(),
                            self.url.clone(),
                            self.secret.clone(),
                            self.retry,
                            self.in_flight.clone(),
                            event,
                        ));
                    }
                    None => break,
                },
                Some(_) = deliveries.join_next(), if !deliveries.is_empty() => {}
                _ = &mut stop => break,
            }
        }
        if !deliveries.is_empty() {
            tracing::info!(
                pending = deliveries.len(),
                "stopping: pending webhook deliveries dropped"
            );
        }
        deliveries.shutdown().await;
    }
}

/// `t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length, so this never fails.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return format!("t={timestamp}"),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

async fn deliver(
    http: reqwest::Client,
    url: String,
    secret: SecretString,
    retry: Retry,
    in_flight: Arc<Semaphore>,
    event: Event,
) {
    let body = match serde_json::to_vec_pretty(&event) {
        Ok(body) => body,
        Err(e) => {
            tracing::warn!(error = %e, "an event could not be serialized");
            return;
        }
    };
    let started = tokio::time::Instant::now();
    let mut delay = retry.first_delay;
    for attempt in 1..=retry.max_attempts {
        // Signed at each attempt, as Stripe does, so that a late retry is not refused as a replay.
        let header = signature(
            secret.expose_secret().as_bytes(),
            chrono::Utc::now().timestamp(),
            &body,
        );
        // Held for the request only, not the backoff: a failing event does not hold up others.
        let Ok(permit) = in_flight.acquire().await else {
            return;
        };
        let outcome = http
            .post(&url)
            .header("content-type", "application/json; charset=utf-8")
            .header("stripe-signature", header)
            .header(
                "user-agent",
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            )
            .body(body.clone())
            .send()
            .await;
        drop(permit);
        let failure = match outcome {
            Ok(r) if r.status().is_success() => {
                tracing::debug!(event = %event.id, kind = event.kind, attempt, "webhook delivered");
                return;
            }
            Ok(r) => format!("answered {}", r.status().as_u16()),
            Err(e) => format!("unreachable: {e}"),
        };
        if attempt == retry.max_attempts || started.elapsed() + delay > retry.give_up_after {
            tracing::warn!(event = %event.id, kind = event.kind, attempt, %failure,
                "webhook delivery abandoned");
            return;
        }
        tracing::info!(event = %event.id, kind = event.kind, attempt, %failure,
            retry_in_ms = delay.as_millis() as u64, "webhook delivery failed; will retry");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(retry.max_delay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_an_hmac_of_the_timestamp_and_body() {
        let header = signature(b"whsec_test", 1_700_000_000, br#"{"id":"evt_1"}"#);
        let (t, v1) = header.split_once(',').unwrap();
        assert_eq!(t, "t=1700000000");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"whsec_test").unwrap();
        mac.update(br#"1700000000.{"id":"evt_1"}"#);
        mac.verify_slice(&hex::decode(v1.strip_prefix("v1=").unwrap()).unwrap())
            .unwrap();
    }

    #[test]
    fn the_schedule_is_bounded() {
        let retry = Retry::default();
        let mut delay = retry.first_delay;
        let mut total = Duration::ZERO;
        for _ in 1..retry.max_attempts {
            total += delay;
            delay = (delay * 2).min(retry.max_delay);
        }
        assert_eq!(delay, retry.max_delay);
        assert!(total < retry.give_up_after, "{total:?}");
    }
}
