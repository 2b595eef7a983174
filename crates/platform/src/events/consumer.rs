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
/// [`store::claim_sqlite`]/[`store::claim_postgres`] in the transaction that applies it, so a
/// redelivered event changes nothing.
#[async_trait]
pub trait EventHandler: Send + Sync {
    /// The event types wanted; others are skipped.
    fn wants(&self, event_type: &str) -> bool;
    async fn handle(&self, event: &Event) -> Result<(), HandlerError>;
}

#[derive(Deserialize)]
struct Page {
    items: Vec<Entry>,
    last_position: i64,
}

#[derive(Deserialize)]
struct Entry {
    position: i64,
    event: Event,
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
    /// order per subject.
    pub async fn run(self, mut shutdown: Shutdown) {
        let mut backoff = Duration::from_millis(200);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                done = self.poll_once(10) => match done {
                    Ok(_) => backoff = Duration::from_millis(200),
                    Err(e) => {
                        tracing::warn!(producer = %self.producer, error = %e, "reading the event feed failed; retrying");
                        tokio::select! {
                            _ = &mut shutdown => return,
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
        let position = store::cursor(&self.db, &self.consumer, &self.producer).await?;
        let path = format!("/events?after={position}&limit=100&wait={wait}");
        let response = self.client.send(Method::GET, &path, None, |r| r).await?;
        if !response.status().is_success() {
            anyhow::bail!("the feed answered {}", response.status());
        }
        let page: Page = response.json().await?;
        let count = page.items.len();
        for entry in page.items {
            if self.handler.wants(&entry.event.event_type) {
                self.apply(&entry.event).await?;
            }
            store::set_cursor(&self.db, &self.consumer, &self.producer, entry.position).await?;
        }
        if count == 0 && page.last_position > position {
            store::set_cursor(&self.db, &self.consumer, &self.producer, page.last_position).await?;
        }
        Ok(count)
    }

    async fn apply(&self, event: &Event) -> anyhow::Result<()> {
        apply(
            &self.consumer,
            &self.db,
            self.handler.as_ref(),
            self.max_attempts,
            event,
        )
        .await
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
) -> anyhow::Result<()> {
    let mut delay = Duration::from_millis(50);
    let mut attempts = 0;
    // The handler's calls, events and logs carry the request id and trace that caused the event.
    let context = event.context();
    let span = tracing::info_span!("event", event_id = %event.id, request_id = %context.request_id, trace_id = %context.trace_id);
    loop {
        attempts += 1;
        let handled = context.clone().scope(handler.handle(event));
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
                store::add_dead_letter(db, consumer, event, &e.to_string(), attempts as i32)
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
