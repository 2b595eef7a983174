//! What a service starts for its events, whichever the transport: `Events::new(...)`, one
//! `follow(...)` per producer it consumes, then `spawn()`; `stop()` on shutdown.
//!
//! * `feed`: a [`FeedConsumer`] per producer followed (the producer serves its own outbox).
//! * `rabbitmq`: a relay publishing this service's outbox, and one consumer on this service's
//!   queue for every producer followed.
//!
//! Either way, outbox entries older than the retention period are pruned, but never one a known
//! feed reader has not read yet nor, with RabbitMQ, one the relay has not published; and on
//! PostgreSQL a listener wakes this replica's feed polls and relay when another replica commits an
//! outbox entry ([`wake::listen`]).
use std::sync::Arc;
use std::time::Duration;

use super::amqp::{self, Broker};
use super::consumer::{FeedConsumer, Running};
use super::{store, wake, EventHandler};
use crate::config::{CommonConfig, EventTransport};
use crate::db::Database;
use crate::shutdown::Shutdown;

pub struct Events {
    common: CommonConfig,
    service: String,
    db: Database,
    follows: Vec<(String, String, Arc<dyn EventHandler>)>,
    fallback_poll: Duration,
}

impl Events {
    pub fn new(common: &CommonConfig, service: &str, db: Database) -> Self {
        Self {
            common: common.clone(),
            service: service.to_owned(),
            fallback_poll: wake::fallback_poll(&db),
            db,
            follows: Vec::new(),
        }
    }

    /// The relay reads the outbox every `every` when no commit wakes it (default
    /// [`wake::fallback_poll`]; tests set it long to show that the wake-up alone moves events).
    pub fn poll_every(&mut self, every: Duration) {
        self.fallback_poll = every;
    }

    /// Consumes `producer`'s events (its feed at `url`, or its messages on the broker).
    pub fn follow(&mut self, producer: &str, url: &str, handler: Arc<dyn EventHandler>) {
        self.follows
            .push((producer.to_owned(), url.to_owned(), handler));
    }

    /// Starts everything in the background.
    pub fn spawn(self) -> Running {
        let mut running = Running::new();
        match self.common.events {
            EventTransport::Feed => {
                for (producer, url, handler) in self.follows {
                    let consumer = FeedConsumer::for_service(
                        &self.common,
                        &self.service,
                        &producer,
                        &url,
                        self.db.clone(),
                        handler,
                    );
                    if let Some(consumer) = consumer {
                        let stop = running.stop_signal();
                        running.add(tokio::spawn(consumer.run(stop)));
                    }
                }
            }
            EventTransport::Rabbitmq => {
                let broker = Broker::new(self.common.amqp_url.clone(), &self.common.amqp_exchange);
                let stop = running.stop_signal();
                running.add(tokio::spawn(amqp::relay(
                    broker.clone(),
                    self.service.clone(),
                    self.db.clone(),
                    self.fallback_poll,
                    stop,
                )));
                if !self.follows.is_empty() {
                    let handlers = self
                        .follows
                        .into_iter()
                        .map(|(producer, _, handler)| (producer, handler))
                        .collect();
                    let stop = running.stop_signal();
                    running.add(tokio::spawn(amqp::consume(
                        broker,
                        self.service.clone(),
                        self.db.clone(),
                        handlers,
                        stop,
                    )));
                }
            }
        }
        if let Database::Postgres(_) = self.db {
            let stop = running.stop_signal();
            running.add(tokio::spawn(wake::listen(self.db.clone(), stop)));
        }
        let stop = running.stop_signal();
        running.add(tokio::spawn(prune_forever(
            self.db,
            self.service,
            self.common.events,
            Duration::from_secs(self.common.events_retention_hours.saturating_mul(3600)),
            stop,
        )));
        running
    }
}

/// Once an hour (and at start), deletes outbox entries past the retention period.
async fn prune_forever(
    db: Database,
    service: String,
    transport: EventTransport,
    retention: Duration,
    mut shutdown: Shutdown,
) {
    loop {
        if let Err(e) = prune(&db, &service, transport, retention).await {
            tracing::warn!(error = %e, "pruning the outbox failed");
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}

/// Deletes what is older than `retention` and every known feed reader has read; with RabbitMQ,
/// only what the relay has published.
pub async fn prune(
    db: &Database,
    service: &str,
    transport: EventTransport,
    retention: Duration,
) -> Result<u64, sqlx::Error> {
    let before = chrono::Utc::now() - chrono::Duration::from_std(retention).unwrap_or_default();
    prune_before(db, service, transport, before).await
}

/// [`prune`] of what was created before `before`.
pub async fn prune_before(
    db: &Database,
    service: &str,
    transport: EventTransport,
    before: chrono::DateTime<chrono::Utc>,
) -> Result<u64, sqlx::Error> {
    let up_to = match transport {
        EventTransport::Feed => None,
        EventTransport::Rabbitmq => {
            Some(store::cursor(db, &amqp::relay_name(service), service).await?)
        }
    };
    let pruned = store::prune_outbox(db, before, up_to).await?;
    if pruned > 0 {
        tracing::info!(pruned, "outbox entries past retention deleted");
    }
    Ok(pruned)
}
