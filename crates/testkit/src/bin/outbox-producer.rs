//! A minimal producer process for the transport crash test: `commit` writes one event to the
//! outbox of `--database-url` (telling other replicas on PostgreSQL, as a service's event work
//! does) and then waits to be killed, before anything relays it; `relay` runs
//! the RabbitMQ relay over that outbox (the producer restarted) until killed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use platform::db::Database;
use platform::events::{store, Event, Events};
use serde_json::{json, Map, Value};
use sqlx::migrate::Migrator;

#[tokio::main]
async fn main() {
    platform::telemetry::init("outbox-producer");
    let args: Vec<String> = std::env::args().collect();
    let (mode, url, amqp, exchange) = (&args[1], &args[2], &args[3], &args[4]);
    let none = Migrator::DEFAULT;
    let db = Database::connect(url, 2, &none, &none).await.unwrap();
    store::migrate(&db).await.unwrap();
    // Kept to the end: dropping it stops the relay.
    let mut running = None;
    match mode.as_str() {
        "commit" => {
            tokio::spawn(platform::events::wake::listen(
                db.clone(),
                platform::shutdown::never(),
            ));
            let event = Event::new("test", "thing_happened", "crash", json!({"n": 1}));
            let mut tx = db.begin_write().await.unwrap();
            tx.enqueue(&event).await.unwrap();
            tx.commit().await.unwrap();
            println!("committed {}", event.id);
        }
        "relay" => {
            let mut overrides = Map::new();
            overrides.insert("port".into(), json!(0));
            overrides.insert("events".into(), json!("rabbitmq"));
            overrides.insert("amqp_url".into(), Value::from(amqp.clone()));
            overrides.insert("amqp_exchange".into(), Value::from(exchange.clone()));
            let common: platform::config::CommonConfig =
                platform::config::load(json!({}), overrides).unwrap();
            running = Some(Events::new(&common, "test", db).spawn());
            println!("relaying");
        }
        other => panic!("unknown mode {other}"),
    }
    // Wait to be killed (SIGKILL: nothing after this point runs).
    std::future::pending::<()>().await;
    drop(running);
}
