//! The RabbitMQ transport (`AGORA_EVENTS=rabbitmq`):
//!
//! * a **relay** per producing service reads its outbox in position order (commit order along each subject) and publishes each entry
//!   to a durable topic exchange (routing key = the event type, persistent, `message_id` = the
//!   event id, header [`POSITION_HEADER`] = its outbox position) with publisher confirms; its
//!   position advances only after the broker confirmed, so an entry left unpublished by a crash is
//!   published after the restart (at least once). Of a service's replicas only the leader relays
//!   ([`super::leader`]): they share one outbox and one relay position. An idle relay waits for
//!   an outbox entry to commit ([`super::wake`]), reading the outbox anyway every fallback poll;
//! * a **consumer** per consuming service owns one durable queue `<exchange>.<service>` bound, for
//!   each producer it follows, to the event types its handler names of that producer, or to
//!   `agora.<producer>.#` when it names none. The queue has a single active consumer
//!   (`x-single-active-consumer`): the replicas of a service all subscribe, the broker delivers to
//!   one of them and fails over to the next, so deliveries never run side by side. It applies the
//!   deliveries it holds (up to [`PREFETCH`]) one after the other in the queue's order (so order per
//!   subject holds) through the same inbox-claiming handler as the feed, of a subject's
//!   latest-state events only the newest ([`EventHandler::latest_state`]), and acks them only after
//!   the handlers' transactions committed or the events went to the dead letters. A message that is
//!   not even an event is rejected to the dead-letter exchange `<exchange>.dlx`.
//!
//! Both reconnect with backoff when the broker goes away.
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::publisher_confirm::{Confirmation, PublisherConfirm};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use secrecy::{ExposeSecret, SecretString};

use super::consumer::{apply, superseded};
use super::leader::{self, Leadership};
use super::{store, wake, Event, EventHandler};
use crate::db::Database;
use crate::shutdown::Shutdown;

/// Where events go: the broker and the exchange.
#[derive(Clone)]
pub struct Broker {
    url: SecretString,
    pub exchange: String,
}

impl Broker {
    pub fn new(url: SecretString, exchange: &str) -> Self {
        Self {
            url,
            exchange: exchange.to_owned(),
        }
    }

    /// The queue of one consuming service.
    pub fn queue(&self, service: &str) -> String {
        format!("{}.{service}", self.exchange)
    }

    fn dead_letter_exchange(&self) -> String {
        format!("{}.dlx", self.exchange)
    }

    /// A channel with the exchange declared.
    pub async fn channel(&self) -> Result<(Connection, Channel), lapin::Error> {
        let properties = ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio);
        let connection = Connection::connect(self.url.expose_secret(), properties).await?;
        let channel = connection.create_channel().await?;
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        channel
            .exchange_declare(
                &self.exchange,
                ExchangeKind::Topic,
                durable,
                FieldTable::default(),
            )
            .await?;
        Ok((connection, channel))
    }

    /// Declares `service`'s queue (and its dead-letter queue) bound to the events it follows: for
    /// each producer, the event types named of it ([`EventHandler::event_types`]), or all of its
    /// events when none are named.
    pub async fn declare_queue(
        &self,
        channel: &Channel,
        service: &str,
        follows: &[(String, Option<&[&str]>)],
    ) -> Result<String, lapin::Error> {
        let dlx = self.dead_letter_exchange();
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        channel
            .exchange_declare(
                &dlx,
                ExchangeKind::Fanout,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        let dlq = format!("{}.dlq", self.queue(service));
        channel
            .queue_declare(&dlq, durable, FieldTable::default())
            .await?;
        channel
            .queue_bind(
                &dlq,
                &dlx,
                "",
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let queue = self.queue(service);
        let mut arguments = FieldTable::default();
        arguments.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(dlx.into()),
        );
        arguments.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
        channel.queue_declare(&queue, durable, arguments).await?;
        for (producer, types) in follows {
            let all = format!("agora.{producer}.#");
            let Some(types) = types else {
                channel
                    .queue_bind(
                        &queue,
                        &self.exchange,
                        &all,
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
                continue;
            };
            let own = format!("agora.{producer}.");
            for key in types.iter().filter(|t| t.starts_with(&own)) {
                channel
                    .queue_bind(
                        &queue,
                        &self.exchange,
                        key,
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
            }
            // A queue declared by an earlier version was bound to all of the producer's events
            // (RabbitMQ takes the removal of a binding that does not exist as done).
            channel
                .queue_unbind(&queue, &self.exchange, &all, FieldTable::default())
                .await?;
        }
        Ok(queue)
    }
}

/// The message header that carries an event's position in its producer's outbox.
pub const POSITION_HEADER: &str = "agora-position";

/// Publishes one event, with its outbox position when known, and waits for the broker's confirm.
pub async fn publish(
    channel: &Channel,
    exchange: &str,
    event: &Event,
    position: Option<i64>,
) -> anyhow::Result<()> {
    accepted(send(channel, exchange, event, position).await?, event).await
}

/// Sends one event without waiting for the broker's confirm, which the returned future brings.
async fn send(
    channel: &Channel,
    exchange: &str,
    event: &Event,
    position: Option<i64>,
) -> anyhow::Result<PublisherConfirm> {
    let payload = serde_json::to_vec(event)?;
    let mut properties = BasicProperties::default()
        .with_message_id(event.id.to_string().into())
        .with_content_type("application/cloudevents+json".into())
        .with_delivery_mode(2);
    if let Some(position) = position {
        let mut headers = FieldTable::default();
        headers.insert(POSITION_HEADER.into(), AMQPValue::LongLongInt(position));
        properties = properties.with_headers(headers);
    }
    Ok(channel
        .basic_publish(
            exchange,
            &event.event_type,
            BasicPublishOptions::default(),
            &payload,
            properties,
        )
        .await?)
}

/// Waits for the broker's confirm of `event`; an error when it refused it.
async fn accepted(confirm: PublisherConfirm, event: &Event) -> anyhow::Result<()> {
    match confirm.await? {
        Confirmation::Ack(_) | Confirmation::NotRequested => Ok(()),
        Confirmation::Nack(_) => anyhow::bail!("the broker refused event {}", event.id),
    }
}

/// The relay's position in its own outbox is kept like a consumer's cursor.
pub fn relay_name(service: &str) -> String {
    format!("{service}:rabbitmq-relay")
}

/// Runs the relay of `service`'s outbox until `shutdown`, reconnecting as needed, while this
/// replica leads it. Idle, it reads the outbox every `fallback_poll` when no commit wakes it.
pub async fn relay(
    broker: Broker,
    service: String,
    db: Database,
    fallback_poll: Duration,
    mut shutdown: Shutdown,
) {
    let name = relay_name(&service);
    'lead: loop {
        let Some(mut leadership) = leader::acquire(&db, &name, &mut shutdown).await else {
            return;
        };
        let mut backoff = Duration::from_millis(200);
        loop {
            tokio::select! {
                _ = &mut shutdown => {
                    leadership.release().await;
                    return;
                }
                ended = relay_connected(&broker, &service, &db, fallback_poll, &mut leadership) => match ended {
                    Ok(()) => {
                        tracing::warn!("event relay: lost the lead");
                        continue 'lead;
                    }
                    Err(e) => tracing::warn!(error = %e, "event relay: broker unavailable; retrying"),
                }
            }
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

/// Publishes new outbox entries as long as the connection and the lead hold; returns the
/// connection's error, or `Ok` once the lead is lost.
async fn relay_connected(
    broker: &Broker,
    service: &str,
    db: &Database,
    fallback_poll: Duration,
    leadership: &mut Leadership,
) -> anyhow::Result<()> {
    let (_connection, channel) = broker.channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let name = relay_name(service);
    tracing::info!(exchange = %broker.exchange, "event relay connected");
    let mut confirmed = Instant::now();
    loop {
        // Taken before the read, so that a commit between the read and the wait still wakes it.
        let committed = wake::next_commit();
        let position = store::cursor(db, &name, service).await?;
        let entries = store::read_after(db, position, 100).await?;
        let Some(last) = entries.last().map(|e| e.position) else {
            // Nothing new: wait for a commit, or the fallback poll. Idle, the lead is still kept
            // alive (a SQLite lease must be renewed), without reading the outbox for it.
            let poll = tokio::time::sleep(fallback_poll);
            tokio::pin!(committed, poll);
            loop {
                let renewal = (leader::LEASE / 5).saturating_sub(confirmed.elapsed());
                tokio::select! {
                    _ = &mut committed => break,
                    _ = &mut poll => break,
                    _ = tokio::time::sleep(renewal) => {
                        if !leadership.confirm().await {
                            return Ok(());
                        }
                        confirmed = Instant::now();
                    }
                }
            }
            continue;
        };
        // Checked right before publishing, so that a replica that lost the lead stops.
        if !leadership.confirm().await {
            return Ok(());
        }
        confirmed = Instant::now();
        // The page goes out at once and its confirms are awaited after: one round trip to the
        // broker for the page instead of one per entry. The position moves only once every
        // entry is confirmed; a failure re-sends the page (at least once).
        let mut sent = Vec::with_capacity(entries.len());
        for entry in &entries {
            let position = Some(entry.position);
            sent.push(send(&channel, &broker.exchange, &entry.event, position).await?);
        }
        for (entry, confirm) in entries.iter().zip(sent) {
            accepted(confirm, &entry.event).await?;
            metrics::counter!("events_published_total", "type" => entry.event.event_type.clone())
                .increment(1);
        }
        store::set_cursor(db, &name, service, last).await?;
    }
}

/// The most deliveries a consumer holds unacked, and so applies as one batch.
const PREFETCH: u16 = 64;

/// A delivery that is an event, with the handler of its producer when that handler wants it.
struct Received {
    delivery: Delivery,
    event: Event,
    handler: Option<Arc<dyn EventHandler>>,
}

impl Received {
    /// `None` for a message that is not even an event: rejected to the dead-letter exchange.
    async fn of(
        delivery: Delivery,
        handlers: &[(String, Arc<dyn EventHandler>)],
    ) -> anyhow::Result<Option<Self>> {
        let event: Event = match serde_json::from_slice(&delivery.data) {
            Ok(event) => event,
            Err(e) => {
                tracing::error!(error = %e, "not an event; rejected to the dead-letter exchange");
                delivery
                    .reject(BasicRejectOptions { requeue: false })
                    .await?;
                return Ok(None);
            }
        };
        let handler = handlers
            .iter()
            .find(|(producer, _)| event.event_type.starts_with(&format!("agora.{producer}.")))
            .map(|(_, h)| h.clone())
            .filter(|h| h.wants(&event.event_type));
        Ok(Some(Self {
            delivery,
            event,
            handler,
        }))
    }

    /// The event's position in its producer's outbox, from the relay's header.
    fn position(&self) -> Option<i64> {
        self.delivery
            .properties
            .headers()
            .as_ref()
            .and_then(|headers| headers.inner().get(POSITION_HEADER))
            .and_then(|value| match value {
                AMQPValue::LongLongInt(position) => Some(*position),
                AMQPValue::LongInt(position) => Some(i64::from(*position)),
                AMQPValue::LongUInt(position) => Some(i64::from(*position)),
                _ => None,
            })
    }
}

/// Runs `service`'s consumer until `shutdown`: every event of the producers in `handlers` goes to
/// that producer's handler.
pub async fn consume(
    broker: Broker,
    service: String,
    db: Database,
    handlers: Vec<(String, Arc<dyn EventHandler>)>,
    mut shutdown: Shutdown,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            failed = consume_connected(&broker, &service, &db, &handlers) => {
                if let Err(e) = failed {
                    tracing::warn!(error = %e, "event consumer: broker unavailable; retrying");
                }
            }
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn consume_connected(
    broker: &Broker,
    service: &str,
    db: &Database,
    handlers: &[(String, Arc<dyn EventHandler>)],
) -> anyhow::Result<()> {
    let (_connection, channel) = broker.channel().await?;
    let follows: Vec<(String, Option<&[&str]>)> = handlers
        .iter()
        .map(|(producer, handler)| (producer.clone(), handler.event_types()))
        .collect();
    let queue = broker.declare_queue(&channel, service, &follows).await?;
    // The broker sends up to PREFETCH unacked deliveries; they are applied one after the other in
    // the queue's order (a single active consumer: nobody else applies meanwhile), and acked
    // together once every one is applied or dead-lettered. One at a time cost a round trip to the
    // broker per event, and a hot SKU's stock levels piled up in the queue under a checkout load.
    channel
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await?;
    let mut deliveries = channel
        .basic_consume(
            &queue,
            &format!("{service}-{}", uuid::Uuid::now_v7()),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(%queue, "event consumer connected");
    while let Some(first) = deliveries.next().await {
        // What has arrived already joins the batch; nothing is waited for.
        let mut batch = Vec::new();
        let mut next = Some(first);
        while let Some(delivery) = next {
            if let Some(received) = Received::of(delivery?, handlers).await? {
                batch.push(received);
            }
            next = if batch.len() < usize::from(PREFETCH) {
                deliveries.next().now_or_never().flatten()
            } else {
                None
            };
        }
        let superseded = superseded(batch.iter().map(|r| {
            let latest = r
                .handler
                .as_ref()
                .is_some_and(|h| h.latest_state(&r.event.event_type));
            (&r.event, latest)
        }));
        for (received, superseded) in batch.iter().zip(superseded) {
            if superseded {
                metrics::counter!("events_superseded_total", "consumer" => service.to_owned())
                    .increment(1);
            } else if let Some(handler) = &received.handler {
                let position = received.position();
                apply(service, db, handler.as_ref(), 5, &received.event, position).await?;
            }
        }
        if let Some(last) = batch.last() {
            let every = BasicAckOptions { multiple: true };
            last.delivery.ack(every).await?;
        }
    }
    anyhow::bail!("the broker closed the consumer")
}
