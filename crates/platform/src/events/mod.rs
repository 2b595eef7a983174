//! Integration events (docs/conventions.md, Consistency): a CloudEvents envelope, a transactional outbox the producer
//! writes in the same transaction as the state change, a broker-less feed (`GET /events`) that
//! serves the outbox in position order (commit order along each subject), and a consumer that applies events through an idempotent inbox
//! and sets aside, after a bounded number of attempts, an event it cannot apply (dead letters).
//! With `AGORA_EVENTS=rabbitmq` a relay publishes the outbox to RabbitMQ instead and consumers
//! read their own queues ([`amqp`]); services start either through [`Events`]. The feed's long
//! polls and the relay are woken when an outbox entry commits ([`wake`]), not by polling.
//!
//! Every service that produces or consumes events calls [`store::migrate`] at start; the tables are
//! the platform's own (`agora_outbox`, `agora_inbox`, `agora_cursors`, `agora_dead_letters`,
//! `agora_subject_positions`, `agora_feed_readers`, `agora_outbox_pruned`, and on SQLite
//! `agora_leases`).
pub mod amqp;
pub mod consumer;
pub mod dead_letters;
pub mod envelope;
pub mod feed;
pub mod leader;
pub mod store;
pub mod transport;
pub mod wake;

pub use consumer::{EventHandler, FeedConsumer, HandlerError, Running};
pub use envelope::Event;
pub use transport::Events;

/// The event endpoints a service serves: its feed (`GET /events`) and, when it consumes events,
/// its dead letters (`GET /admin/dead-letters`, replay) for `consumer` with `handler`.
pub fn routes(
    db: crate::db::Database,
    verifier: std::sync::Arc<crate::auth::JwtVerifier>,
    stopping: crate::shutdown::Stopping,
    consumer: Option<(&'static str, std::sync::Arc<dyn EventHandler>)>,
) -> utoipa_axum::router::OpenApiRouter {
    let routes = feed::router(db.clone(), verifier.clone(), stopping);
    match consumer {
        Some((name, handler)) => routes.merge(dead_letters::router(db, verifier, name, handler)),
        None => routes,
    }
}
