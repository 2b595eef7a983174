//! The consumer side of the broker-less transport: follows a producer's feed, applies each event
//! through the service's handler (which claims the event in its inbox in the same transaction as
//! its effect), keeps its position in its own database, and sets aside an event that keeps failing.
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;

use super::store;
use super::Event;
use crate::client::ServiceClient;
use crate::db::Database;
use crate::shutdown::Shutdown;

/// Why a handler could not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth trying again (a database hiccup, a busy lock).
    #[error("{0}")]
    Retryable(String),
    /// Will never work (a payload the consumer cannot read): dead-lettered at once.
    #[error("{0}")]
    Permanent(String),
}

/// What a consuming service implements. It must claim the event with
/// [`Tx::claim`](crate::db::Tx::claim) in the transaction that applies it, so a
/// redelivered event changes nothing.
#[async_trait]
pub trait EventHandler: Send + Sync {
    /// The event types wanted, when the handler can name them all: producers then leave the others
    /// out of what they send this consumer (a feed page, a queue's bindings), so that it does not
    /// poll, or wake, for events it would skip. `None` (the default): every event of the
    /// producers followed comes, and [`EventHandler::wants`] sorts them.
    fn event_types(&self) -> Option<&'static [&'static str]> {
        None
    }

    /// Whether an event of this type is applied; others are skipped. Default: it is one of
    /// [`EventHandler::event_types`], or any when they are not named.
    fn wants(&self, event_type: &str) -> bool {
        self.event_types()
            .is_none_or(|types| types.contains(&event_type))
    }

    async fn handle(&self, event: &Event) -> Result<(), HandlerError>;

    /// [`EventHandler::handle`], told the event's position in its producer's outbox when the
    /// transport knows it. Along one subject positions follow the order its writers commit in (they
    /// queue on the subject's row and draw their position before they commit), so along one subject a
    /// higher one is a newer state: a handler that keeps the latest state of a subject applies an
    /// event only when it is newer ([`Tx::advance`](crate::db::Tx::advance)), which
    /// keeps it right however the transport orders deliveries.
    async fn handle_at(&self, event: &Event, _position: Option<i64>) -> Result<(), HandlerError> {
        self.handle(event).await
    }

    /// Whether an event of this type carries its subject's whole latest state and is applied only
    /// when newer ([`Tx::advance`](crate::db::Tx::advance) with its position), so that applying
    /// the newest of a subject leaves what applying each in turn would. Of such events in one page
    /// of the feed only the newest of each subject is applied (a hot SKU's stock levels, say: one
    /// transaction for the page instead of one per level). Default: none.
    fn latest_state(&self, _event_type: &str) -> bool {
        false
    }
}

#[derive(Deserialize)]
struct Page {
    items: Vec<Entry>,
    last_position: i64,
    /// Set when events after our position were pruned before we read them.
    #[serde(default)]
    gap: Option<i64>,
    /// The producer had nothing new when asked and answered a commit it waited for (a producer
    /// that does not say is taken to have had events waiting).
    #[serde(default)]
    waited: bool,
}

#[derive(Deserialize)]
struct Entry {
    position: i64,
    event: Event,
}

/// The most events a consumer asks for in one page.
const PAGE: usize = 100;

/// How long a consumer waits after a page that was not full before it polls again, so that what
/// commits meanwhile comes in one page: a bound on the polls a busy producer serves, and a page in
/// which a hot subject's newer level supersedes the older ones. Only after a page whose events
/// were already waiting when it was asked: a page that answered a wait means the consumer had
/// caught up, and the next change, alone, should not wait for company (it arrives at once).
const LINGER: Duration = Duration::from_millis(2);

/// What one poll of the feed went through.
struct Polled {
    /// Events in the page (applied, superseded or not wanted).
    read: usize,
    /// Whether the producer answered a commit it had waited for (see [`LINGER`]).
    waited: bool,
}

impl Polled {
    /// Whether to wait [`LINGER`] before the next poll: events were piling up, and more are likely
    /// on their way; a full page means more are waiting already.
    fn linger(&self) -> bool {
        (1..PAGE).contains(&self.read) && !self.waited
    }
}

/// Follows one producer's feed for one consumer.
pub struct FeedConsumer {
    pub consumer: String,
    pub producer: String,
    pub client: ServiceClient,
    pub db: Database,
    pub handler: Arc<dyn EventHandler>,
    /// Attempts before an event is dead-lettered.
    pub max_attempts: u32,
}

impl FeedConsumer {
    /// A consumer for a service, when it has client credentials to read the producer's feed
    /// (`agora up` gives every service its own); `None`, after saying so, when it has none.
    pub fn for_service(
        common: &crate::config::CommonConfig,
        consumer: &str,
        producer: &str,
        producer_url: &str,
        db: Database,
        handler: Arc<dyn EventHandler>,
    ) -> Option<Self> {
        let (Some(id), Some(secret)) = (&common.client_id, &common.client_secret) else {
            tracing::info!(
                producer,
                "no client credentials: not following {producer}'s events"
            );
            return None;
        };
        // Longer than the longest long poll the consumer asks for.
        let client = ServiceClient::new(producer, producer_url, Duration::from_secs(40))
            .with_credentials(crate::client::ClientCredentials::new(
                &common.users_url,
                id.clone(),
                secret.clone(),
            ));
        Some(Self {
            consumer: consumer.to_owned(),
            producer: producer.to_owned(),
            client,
            db,
            handler,
            max_attempts: 5,
        })
    }

    /// Runs in the background until [`Running::stop`].
    pub fn spawn(consumer: Option<Self>) -> Running {
        let mut running = Running::new();
        if let Some(consumer) = consumer {
            let stop = running.stop_signal();
            running.add(tokio::spawn(consumer.run(stop)));
        }
        running
    }

    /// Runs until `shutdown`. Events are applied one at a time in feed order, which keeps the
    /// order per subject; of the service's replicas only the leader follows the feed, so that they
    /// do not apply one producer's events side by side.
    pub async fn run(self, mut shutdown: Shutdown) {
        let name = format!("{}:feed:{}", self.consumer, self.producer);
        let Some(mut leadership) = super::leader::acquire(&self.db, &name, &mut shutdown).await
        else {
            return;
        };
        let mut backoff = Duration::from_millis(200);
        loop {
            if !leadership.confirm().await {
                tracing::warn!(producer = %self.producer, "lost the lead of the event feed");
                let Some(regained) = super::leader::acquire(&self.db, &name, &mut shutdown).await
                else {
                    return;
                };
                leadership = regained;
            }
            tokio::select! {
                _ = &mut shutdown => {
                    leadership.release().await;
                    return;
                }
                done = self.poll(10) => match done {
                    Ok(polled) => {
                        backoff = Duration::from_millis(200);
                        // Polling again at once under load made pages of one event, each a poll
                        // the producer serves and an apply no newer level supersedes
                        // (docs/performance.md).
                        if polled.linger() {
                            tokio::select! {
                                _ = &mut shutdown => {
                                    leadership.release().await;
                                    return;
                                }
                                _ = tokio::time::sleep(LINGER) => {}
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(producer = %self.producer, error = %e, "reading the event feed failed; retrying");
                        tokio::select! {
                            _ = &mut shutdown => {
                                leadership.release().await;
                                return;
                            }
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }
    }

    /// Fetches and applies one page (waiting up to `wait` seconds for one); returns how many events
    /// it went through.
    pub async fn poll_once(&self, wait: u64) -> anyhow::Result<usize> {
        Ok(self.poll(wait).await?.read)
    }

    async fn poll(&self, wait: u64) -> anyhow::Result<Polled> {
        let position = store::cursor(&self.db, &self.consumer, &self.producer).await?;
        let mut path = format!("/events?after={position}&limit={PAGE}&wait={wait}");
        // Event types are names of letters, digits, dots and underscores: nothing to escape.
        if let Some(types) = self.handler.event_types() {
            path.push_str("&types=");
            path.push_str(&types.join(","));
        }
        let response = self.client.send(Method::GET, &path, None, |r| r).await?;
        if !response.status().is_success() {
            anyhow::bail!("the feed answered {}", response.status());
        }
        let page: Page = response.json().await?;
        if let Some(pruned) = page.gap {
            let gap = Gap {
                producer: &self.producer,
                after: position,
                pruned_up_to: pruned,
            };
            gap.report(&self.consumer, &self.db).await?;
        }
        let count = page.items.len();
        let superseded = superseded(page.items.iter().map(|entry| {
            let event = &entry.event;
            (event, self.handler.latest_state(&event.event_type))
        }));
        for (entry, superseded) in page.items.iter().zip(superseded) {
            if superseded {
                metrics::counter!("events_superseded_total", "consumer" => self.consumer.clone())
                    .increment(1);
            } else if self.handler.wants(&entry.event.event_type) {
                self.apply(&entry.event, entry.position).await?;
            }
        }
        // Once for the page: a crash before this line redelivers the page, and every handler
        // claims or advances in its own transaction, so what it applied already changes nothing.
        if page.last_position > position {
            store::set_cursor(&self.db, &self.consumer, &self.producer, page.last_position).await?;
        }
        Ok(Polled {
            read: count,
            waited: page.waited,
        })
    }

    async fn apply(&self, event: &Event, position: i64) -> anyhow::Result<()> {
        apply(
            &self.consumer,
            &self.db,
            self.handler.as_ref(),
            self.max_attempts,
            event,
            Some(position),
        )
        .await
    }
}

/// For each event of a batch in delivery order (a page of the feed, the deliveries a RabbitMQ
/// consumer holds), given with whether its type carries its subject's latest state
/// ([`EventHandler::latest_state`]): whether a later event of the batch carries the same subject's
/// latest state, so that it need not be applied. Both transports use it.
pub(crate) fn superseded<'a>(
    events: impl DoubleEndedIterator<Item = (&'a Event, bool)>,
) -> Vec<bool> {
    let mut newest = std::collections::HashSet::new();
    let mut superseded: Vec<bool> = events
        .rev()
        .map(|(event, latest_state)| {
            latest_state && !newest.insert((event.event_type.as_str(), event.subject.as_str()))
        })
        .collect();
    superseded.reverse();
    superseded
}

/// Events a consumer can never get: the producer pruned them before it read them.
struct Gap<'a> {
    producer: &'a str,
    after: i64,
    pruned_up_to: i64,
}

impl Gap<'_> {
    /// Says so loudly: an error log, `events_gap_total`, and a dead letter that records it (an
    /// `agora.platform.events_gap.v1` event; replaying it only removes it).
    async fn report(&self, consumer: &str, db: &Database) -> anyhow::Result<()> {
        let error = format!(
            "events after position {} up to {} of {} were pruned before {consumer} read them",
            self.after, self.pruned_up_to, self.producer
        );
        tracing::error!(producer = %self.producer, after = self.after, pruned_up_to = self.pruned_up_to, "{error}");
        metrics::counter!("events_gap_total", "consumer" => consumer.to_owned(), "producer" => self.producer.to_owned())
            .increment(1);
        let event = Event::new(
            "platform",
            "events_gap",
            self.producer,
            serde_json::json!({"producer": self.producer, "after": self.after, "pruned_up_to": self.pruned_up_to}),
        );
        store::add_dead_letter(db, consumer, &event, &error, 0, None).await?;
        Ok(())
    }
}

/// Applies one event for `consumer`, retrying with backoff; after `max_attempts` (or a permanent
/// error) it goes to the dead letters and the consumer moves on. Both transports use it.
pub(crate) async fn apply(
    consumer: &str,
    db: &Database,
    handler: &dyn EventHandler,
    max_attempts: u32,
    event: &Event,
    position: Option<i64>,
) -> anyhow::Result<()> {
    let mut delay = Duration::from_millis(50);
    let mut attempts = 0;
    // The handler's calls, events and logs carry the request id and trace that caused the event.
    // Exported, its span is a child of the event's `publish` span, in the producer's trace.
    let kind = event
        .event_type
        .split('.')
        .nth(2)
        .unwrap_or(&event.event_type);
    let span = tracing::info_span!(
        "event",
        otel.name = %format!("handle {kind}"),
        otel.kind = "consumer",
        consumer,
        event_id = %event.id,
        request_id = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    );
    crate::telemetry::otel::adopt(&span, event.traceparent.as_deref());
    let context = event.context().joined(&span);
    span.record("request_id", context.request_id.as_str());
    span.record("trace_id", context.trace_id.as_str());
    span.record("span_id", context.span_id.as_str());
    // How old the event is when its consumer gets to it: the consumer's lag in time, on either
    // transport.
    let age = (chrono::Utc::now() - event.time).num_milliseconds().max(0) as f64 / 1000.0;
    metrics::gauge!("events_consumer_lag_seconds", "consumer" => consumer.to_owned()).set(age);
    loop {
        attempts += 1;
        let handled = context.clone().scope(handler.handle_at(event, position));
        match tracing::Instrument::instrument(handled, span.clone()).await {
            Ok(()) => {
                metrics::counter!("events_consumed_total", "consumer" => consumer.to_owned(), "type" => event.event_type.clone()).increment(1);
                return Ok(());
            }
            Err(HandlerError::Retryable(e)) if attempts < max_attempts => {
                tracing::warn!(event_id = %event.id, attempts, error = %e, "handling an event failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                tracing::error!(event_id = %event.id, event_type = %event.event_type, attempts, error = %e, "event dead-lettered");
                metrics::counter!("events_dead_lettered_total", "consumer" => consumer.to_owned())
                    .increment(1);
                let error = e.to_string();
                store::add_dead_letter(db, consumer, event, &error, attempts as i32, position)
                    .await?;
                return Ok(());
            }
        }
    }
}

/// Background event work (consumers, a relay, pruning), stopped together by [`Running::stop`],
/// or when dropped.
pub struct Running {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    pub(crate) fn new() -> Self {
        Self {
            stop: tokio::sync::watch::channel(false).0,
            tasks: Vec::new(),
        }
    }

    /// A future that completes when [`Running::stop`] is called.
    pub(crate) fn stop_signal(&self) -> Shutdown {
        let mut stopped = self.stop.subscribe();
        Box::pin(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        })
    }

    pub(crate) fn add(&mut self, task: tokio::task::JoinHandle<()>) {
        self.tasks.push(task);
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Polled, PAGE};

    /// A consumer lingers only while events pile up: after a page of events that were already
    /// waiting, not after one that answered a wait (it had caught up), an empty or a full one.
    #[test]
    fn lingers_only_after_a_page_of_events_that_were_waiting() {
        let linger = |read, waited| Polled { read, waited }.linger();
        assert!(linger(1, false));
        assert!(linger(PAGE - 1, false));
        assert!(!linger(1, true), "caught up: the next change comes at once");
        assert!(!linger(0, false), "nothing came");
        assert!(!linger(PAGE, false), "more are waiting");
    }
}
