//! The event backbone's feed transport over real HTTP, on SQLite and PostgreSQL: outbox in the
//! producer's transaction, delivery in order, harmless redelivery, dead letters, access control.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use platform::auth::JwtVerifier;
use platform::client::{ClientCredentials, ServiceClient};
use platform::db::{query, Database};
use platform::events::{store, Event, EventHandler, FeedConsumer, HandlerError};
use serde_json::json;
use sqlx::migrate::Migrator;
use testkit::{TestDatabase, TestIssuer};

async fn connect(db: &TestDatabase) -> Database {
    let none = Migrator::DEFAULT;
    let database = Database::connect(&db.url, 5, &none, &none).await.unwrap();
    store::migrate(&database).await.unwrap();
    store::migrate(&database).await.unwrap();
    database
}

/// Writes an event the way a producer does: in the transaction of its state change.
async fn produce(db: &Database, event: &Event, commit: bool) {
    let mut tx = db.begin_write().await.unwrap();
    tx.enqueue(event).await.unwrap();
    if commit {
        tx.commit().await.unwrap();
    } else {
        tx.rollback().await.unwrap();
    }
}

/// A consumer's effect: one row per applied event, written with the inbox claim.
struct Recorder {
    db: Database,
}

#[async_trait]
impl EventHandler for Recorder {
    fn wants(&self, event_type: &str) -> bool {
        event_type.starts_with("agora.test.")
    }

    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        if event.data["poison"] == true {
            return Err(HandlerError::Retryable("cannot apply this one".into()));
        }
        record_once(&self.db, event, None).await
    }
}

/// Writes `event`'s row in `applied` in the transaction that claims it in the inbox, or, given a
/// position, that advances its subject to it: a redelivered or older event writes nothing.
async fn record_once(
    db: &Database,
    event: &Event,
    position: Option<i64>,
) -> Result<(), HandlerError> {
    let fail = |e: sqlx::Error| HandlerError::Retryable(e.to_string());
    let mut tx = db.begin_write().await.map_err(fail)?;
    let apply = match position {
        Some(position) => tx.advance("test-consumer", event, position).await,
        None => tx.claim("test-consumer", event).await,
    }
    .map_err(fail)?;
    if apply {
        query("INSERT INTO applied (event_id, subject, n) VALUES ($1, $2, $3)")
            .bind(event.id.to_string())
            .bind(&event.subject)
            .bind(event.data["n"].as_i64())
            .execute(&mut tx)
            .await
            .map_err(fail)?;
    }
    tx.commit().await.map_err(fail)?;
    Ok(())
}

async fn applied(db: &Database) -> Vec<(String, i64)> {
    let sql = "SELECT subject, n FROM applied ORDER BY id";
    match db {
        Database::Sqlite(pool, _) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
        Database::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
    }
}

async fn create_applied_table(db: &Database) {
    match db {
        Database::Sqlite(pool, _) => sqlx::query("CREATE TABLE applied (id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, subject TEXT NOT NULL, n BIGINT NOT NULL)").execute(pool).await.map(|_| ()).unwrap(),
        Database::Postgres(pool) => sqlx::query("CREATE TABLE applied (id BIGSERIAL PRIMARY KEY, event_id TEXT NOT NULL, subject TEXT NOT NULL, n BIGINT NOT NULL)").execute(pool).await.map(|_| ()).unwrap(),
    }
}

/// Serves `db`'s feed on a random port, as a producer would.
async fn serve_feed(db: Database, issuer: &TestIssuer) -> String {
    let fallback_poll = platform::events::wake::fallback_poll(&db);
    serve_feed_polling_every(db, issuer, fallback_poll).await
}

/// [`serve_feed`] whose waiting polls read the outbox every `fallback_poll` when nothing wakes
/// them.
async fn serve_feed_polling_every(
    db: Database,
    issuer: &TestIssuer,
    fallback_poll: Duration,
) -> String {
    let verifier = Arc::new(JwtVerifier::remote(
        &format!("{}/.well-known/jwks.json", issuer.users_url),
        testkit::issuer::ISSUER,
        testkit::issuer::AUDIENCE,
    ));
    let (_, stopping) = platform::shutdown::stopping();
    let (router, _) =
        platform::events::feed::router_polling_every(db, verifier, stopping, fallback_poll)
            .split_for_parts();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

fn consumer(feed: &str, issuer: &TestIssuer, db: Database) -> FeedConsumer {
    let client = ServiceClient::new("producer", feed, Duration::from_secs(15)).with_credentials(
        ClientCredentials::new(
            &issuer.users_url,
            "test-client".into(),
            "secret".to_owned().into(),
        ),
    );
    FeedConsumer {
        consumer: "test-consumer".into(),
        producer: "producer".into(),
        client,
        db: db.clone(),
        handler: Arc::new(Recorder { db }),
        max_attempts: 3,
    }
}

#[tokio::test]
async fn events_are_delivered_in_order_once_and_a_rolled_back_one_never() {
    for (producer_db, consumer_db) in TestDatabase::all()
        .await
        .into_iter()
        .zip(TestDatabase::all().await)
    {
        let backend = producer_db.backend;
        let issuer = TestIssuer::start().await;
        let producer = connect(&producer_db).await;
        let consuming = connect(&consumer_db).await;
        create_applied_table(&consuming).await;
        for n in 0..5 {
            let subject = if n % 2 == 0 { "a" } else { "b" };
            let event = Event::new("test", "thing_happened", subject, json!({"n": n}));
            produce(&producer, &event, n != 3).await;
        }
        produce(
            &producer,
            &Event::new("other", "ignored", "x", json!({})),
            true,
        )
        .await;
        let feed = serve_feed(producer.clone(), &issuer).await;
        let consumer = consumer(&feed, &issuer, consuming.clone());
        // On PostgreSQL a page ends at the rolled-back event's position until no transaction of
        // the server (other tests' included) still open could fill it: a few polls, not one.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while applied(&consuming).await.len() < 4 && std::time::Instant::now() < deadline {
            consumer.poll_once(1).await.unwrap();
        }
        let seen = applied(&consuming).await;
        assert_eq!(
            seen,
            vec![
                ("a".into(), 0),
                ("b".into(), 1),
                ("a".into(), 2),
                ("a".into(), 4)
            ],
            "{backend}"
        );

        // Redelivery (the cursor lost, as after a crash before it was saved) changes nothing.
        store::set_cursor(&consuming, "test-consumer", "producer", 0)
            .await
            .unwrap();
        consumer.poll_once(0).await.unwrap();
        assert_eq!(applied(&consuming).await.len(), 4, "{backend}");
    }
}

/// A consumer that keeps each subject's latest level (`level_changed`), as products and carts keep
/// a SKU's stock: a level is applied only when newer by its position, and the type is marked
/// latest-state. Other test events it records like [`Recorder`].
struct Levels {
    db: Database,
}

const LEVEL_CHANGED: &str = "agora.test.level_changed.v1";

#[async_trait]
impl EventHandler for Levels {
    fn wants(&self, event_type: &str) -> bool {
        event_type.starts_with("agora.test.")
    }

    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        self.handle_at(event, None).await
    }

    async fn handle_at(&self, event: &Event, position: Option<i64>) -> Result<(), HandlerError> {
        let level = position.filter(|_| event.event_type == LEVEL_CHANGED);
        record_once(&self.db, event, level).await
    }

    fn latest_state(&self, event_type: &str) -> bool {
        event_type == LEVEL_CHANGED
    }
}

/// Two levels of `a` superseded by a third, a level of `b`, and two events of `a` that are not
/// levels, in this order: what a batch of one page (or of one consumer's deliveries) holds.
const LEVELS_BATCH: [(&str, &str, i64); 6] = [
    ("level_changed", "a", 0),
    ("level_changed", "a", 1),
    ("level_changed", "b", 2),
    ("thing_happened", "a", 3),
    ("thing_happened", "a", 4),
    ("level_changed", "a", 5),
];

/// What applying [`LEVELS_BATCH`] leaves when `a`'s superseded levels 0 and 1 are skipped.
fn newest_of_levels_batch() -> Vec<(String, i64)> {
    vec![
        ("b".into(), 2),
        ("a".into(), 3),
        ("a".into(), 4),
        ("a".into(), 5),
    ]
}

/// Of a subject's latest-state events in one page only the newest is applied; events of other
/// subjects, and events that are not latest-state, are each applied in order; the cursor ends
/// after the page, and the next page's newer level still applies.
#[tokio::test]
async fn of_a_subjects_levels_in_one_page_only_the_newest_is_applied() {
    for (producer_db, consumer_db) in TestDatabase::all()
        .await
        .into_iter()
        .zip(TestDatabase::all().await)
    {
        let backend = producer_db.backend;
        let issuer = TestIssuer::start().await;
        let producer = connect(&producer_db).await;
        let consuming = connect(&consumer_db).await;
        create_applied_table(&consuming).await;
        for (name, subject, n) in LEVELS_BATCH {
            produce(
                &producer,
                &Event::new("test", name, subject, json!({"n": n})),
                true,
            )
            .await;
        }
        let feed = serve_feed(producer.clone(), &issuer).await;
        let consumer = FeedConsumer {
            handler: Arc::new(Levels {
                db: consuming.clone(),
            }),
            ..consumer(&feed, &issuer, consuming.clone())
        };
        assert_eq!(consumer.poll_once(0).await.unwrap(), 6, "{backend}");
        assert_eq!(
            applied(&consuming).await,
            newest_of_levels_batch(),
            "{backend}: levels 0 and 1 of `a` were superseded by 5 in the same page"
        );
        let (_, head) = store::bounds(&producer).await.unwrap();
        assert_eq!(
            store::cursor(&consuming, "test-consumer", "producer")
                .await
                .unwrap(),
            head,
            "{backend}"
        );

        produce(
            &producer,
            &Event::new("test", "level_changed", "a", json!({"n": 6})),
            true,
        )
        .await;
        consumer.poll_once(0).await.unwrap();
        assert_eq!(
            applied(&consuming).await.last(),
            Some(&("a".into(), 6)),
            "{backend}"
        );
    }
}

/// The RabbitMQ consumer applies the deliveries it holds as one batch: whatever the broker's
/// batches, each subject ends at its newest level, the other events are applied once each and in
/// order, and a superseded level is never applied after a newer one.
#[tokio::test]
async fn a_rabbitmq_consumer_applies_a_subjects_newest_level_last() {
    let Some(amqp) = testkit::db::amqp_url() else {
        return;
    };
    for db in TestDatabase::all().await {
        let backend = db.backend;
        let issuer = TestIssuer::start().await;
        let exchange = fresh_exchange();
        let consuming = connect(&db).await;
        create_applied_table(&consuming).await;
        // The queue first, then every event in it, then the consumer: it finds them all waiting.
        let broker = platform::events::amqp::Broker::new(amqp.clone().into(), &exchange);
        let (_connection, channel) = broker.channel().await.unwrap();
        let test = [("test".to_owned(), None)];
        broker
            .declare_queue(&channel, "test-consumer", &test)
            .await
            .unwrap();
        for (position, (name, subject, n)) in (1..).zip(LEVELS_BATCH) {
            let event = Event::new("test", name, subject, json!({"n": n}));
            platform::events::amqp::publish(&channel, &exchange, &event, Some(position))
                .await
                .unwrap();
        }
        let mut following = platform::events::Events::new(
            &common(&issuer, "rabbitmq", &amqp, &exchange),
            "test-consumer",
            consuming.clone(),
        );
        following.follow(
            "test",
            "",
            Arc::new(Levels {
                db: consuming.clone(),
            }),
        );
        let running = following.spawn();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let seen = loop {
            let seen = applied(&consuming).await;
            if seen.last() == Some(&("a".into(), 5)) {
                break seen;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{backend}: level 5 of `a` never applied: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        running.stop().await;
        let kept: Vec<(String, i64)> = seen
            .iter()
            .filter(|(subject, n)| !(subject == "a" && *n < 2))
            .cloned()
            .collect();
        assert_eq!(kept, newest_of_levels_batch(), "{backend}: {seen:?}");
        let older: Vec<i64> = seen
            .iter()
            .filter(|(subject, n)| subject == "a" && *n < 2)
            .map(|(_, n)| *n)
            .collect();
        assert!(older.windows(2).all(|w| w[0] < w[1]), "{backend}: {seen:?}");
    }
}

/// On RabbitMQ a consumer that names its event types gets a queue bound to those alone: what it
/// would skip never reaches it. A queue an earlier version bound to all of the producer's events
/// loses that binding when it is declared again.
#[tokio::test]
async fn a_rabbitmq_queue_holds_only_the_event_types_its_consumer_names() {
    let Some(amqp) = testkit::db::amqp_url() else {
        return;
    };
    let exchange = fresh_exchange();
    let broker = platform::events::amqp::Broker::new(amqp.into(), &exchange);
    let (_connection, channel) = broker.channel().await.unwrap();
    let everything = [("test".to_owned(), None)];
    broker
        .declare_queue(&channel, "test-consumer", &everything)
        .await
        .unwrap();
    let named: [(String, Option<&[&str]>); 1] = [("test".to_owned(), Some(&[WANTED]))];
    let queue = broker
        .declare_queue(&channel, "test-consumer", &named)
        .await
        .unwrap();
    for (n, name) in ["skipped", "wanted", "skipped"].iter().enumerate() {
        let event = Event::new("test", name, "a", json!({"n": n}));
        platform::events::amqp::publish(&channel, &exchange, &event, None)
            .await
            .unwrap();
    }
    // Published with confirms: every message the exchange routed is in the queue already.
    let mut held = Vec::new();
    while let Some(message) = channel
        .basic_get(&queue, lapin::options::BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        let event: Event = serde_json::from_slice(&message.delivery.data).unwrap();
        held.push(event.event_type);
    }
    assert_eq!(held, vec![WANTED.to_owned()]);
    channel
        .queue_delete(&queue, lapin::options::QueueDeleteOptions::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn an_event_that_keeps_failing_is_dead_lettered_and_the_rest_flow_on() {
    for (producer_db, consumer_db) in TestDatabase::all()
        .await
        .into_iter()
        .zip(TestDatabase::all().await)
    {
        let backend = producer_db.backend;
        let issuer = TestIssuer::start().await;
        let producer = connect(&producer_db).await;
        let consuming = connect(&consumer_db).await;
        create_applied_table(&consuming).await;
        let poison = Event::new(
            "test",
            "thing_happened",
            "a",
            json!({"n": 1, "poison": true}),
        );
        produce(&producer, &poison, true).await;
        produce(
            &producer,
            &Event::new("test", "thing_happened", "a", json!({"n": 2})),
            true,
        )
        .await;
        let feed = serve_feed(producer.clone(), &issuer).await;
        consumer(&feed, &issuer, consuming.clone())
            .poll_once(0)
            .await
            .unwrap();
        assert_eq!(
            applied(&consuming).await,
            vec![("a".into(), 2)],
            "{backend}"
        );
        let dead = store::dead_letters(&consuming, "test-consumer")
            .await
            .unwrap();
        assert_eq!(dead.len(), 1, "{backend}");
        assert_eq!(dead[0].event.id, poison.id);
        assert_eq!(dead[0].attempts, 3);
        assert!(
            store::remove_dead_letter(&consuming, "test-consumer", &poison.id.to_string())
                .await
                .unwrap()
        );
        assert!(store::dead_letters(&consuming, "test-consumer")
            .await
            .unwrap()
            .is_empty());
    }
}

#[tokio::test]
async fn the_feed_needs_a_service_token_with_the_events_scope() {
    let issuer = TestIssuer::start().await;
    let db = TestDatabase::sqlite();
    let producer = connect(&db).await;
    let feed = serve_feed(producer, &issuer).await;
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(format!("{feed}/events"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let customer = http
        .get(format!("{feed}/events"))
        .bearer_auth(issuer.customer())
        .send()
        .await
        .unwrap();
    assert_eq!(customer.status(), 403);
    let service = http
        .get(format!("{feed}/events?limit=1000"))
        .bearer_auth(issuer.service("inventory", "events:read"))
        .send()
        .await
        .unwrap();
    assert_eq!(service.status(), 400);
}

/// Longer than any test waits: a waiter that answers did not wait for its fallback poll.
const NEVER: Duration = Duration::from_secs(3600);

/// A long poll of `feed` from the start that waits up to 30 s, and what it answered.
fn long_poll(feed: String, issuer: &TestIssuer) -> tokio::task::JoinHandle<serde_json::Value> {
    let token = issuer.service("inventory", "events:read");
    tokio::spawn(async move {
        reqwest::Client::new()
            .get(format!("{feed}/events?after=0&wait=30"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    })
}

/// What a [`long_poll`] answered, if it answered within 20 s of its 30 s wait: at the end of its
/// wait a poll reads the outbox once more, so only an earlier answer shows it was woken.
async fn woken(waiting: tokio::task::JoinHandle<serde_json::Value>) -> serde_json::Value {
    tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("the long poll was not woken by the commit")
        .unwrap()
}

/// Waits (bounded) until the producer has recorded a feed reader: it does so before it reads and
/// waits, so the long poll is under way.
async fn poll_under_way(producer: &Database) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (readers,): (i64,) = query("SELECT COUNT(*) FROM agora_feed_readers")
            .fetch_one(producer)
            .await
            .unwrap();
        if readers == 1 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the poll never arrived"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The commit wakes the waiting poll: with the fallback poll an hour away, the answer, well before
/// its 30 s wait is over, holds the event. (Other tests of this binary committing at the same moment
/// wake it too; alone, it shows the commit's own wake-up.)
#[tokio::test]
async fn a_long_poll_returns_as_soon_as_an_event_is_committed() {
    for db in TestDatabase::all().await {
        let case = db.backend;
        let issuer = TestIssuer::start().await;
        let producer = connect(&db).await;
        let feed = serve_feed_polling_every(producer.clone(), &issuer, NEVER).await;
        let waiting = long_poll(feed.clone(), &issuer);
        poll_under_way(&producer).await;
        // After recording its reader the poll reads the outbox's bounds and then the outbox
        // before it waits; a commit before that read is found by it, and the poll rightly says
        // it did not wait (seen once, in a CI run beside a load test on the same PostgreSQL).
        // A pause for ordering, nothing is timed.
        tokio::time::sleep(Duration::from_millis(200)).await;
        produce(
            &producer,
            &Event::new("test", "thing_happened", "a", json!({"n": 1})),
            true,
        )
        .await;
        let page = woken(waiting).await;
        assert_eq!(page["items"].as_array().unwrap().len(), 1, "{case}: {page}");
        // It says it waited (its reader had caught up, and need not linger before polling
        // again); a poll that finds the event already there says it did not.
        assert_eq!(page["waited"], true, "{case}: {page}");
        let again = long_poll(feed, &issuer).await.unwrap();
        assert_eq!(
            again["items"].as_array().unwrap().len(),
            1,
            "{case}: {again}"
        );
        assert_eq!(again["waited"], false, "{case}: {again}");
    }
}

const WANTED: &str = "agora.test.wanted.v1";

/// A [`Recorder`] that names the one type it wants, so its producer leaves the others out.
struct Named {
    inner: Recorder,
}

#[async_trait]
impl EventHandler for Named {
    fn event_types(&self) -> Option<&'static [&'static str]> {
        Some(&[WANTED])
    }

    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        self.inner.handle(event).await
    }
}

/// A reader that names the types it wants gets only those, and moves past the rest: its page's
/// `last_position` is the last event read, wanted or not, and a waiting poll goes on waiting
/// through commits of other types until one of its own comes. A consumer whose handler names its
/// types applies the wanted ones and keeps its cursor past the others. Bad `types` are a 400.
#[tokio::test]
async fn a_reader_naming_its_event_types_gets_only_those_and_moves_past_the_rest() {
    for (producer_db, consumer_db) in TestDatabase::all()
        .await
        .into_iter()
        .zip(TestDatabase::all().await)
    {
        let case = producer_db.backend;
        let issuer = TestIssuer::start().await;
        let producer = connect(&producer_db).await;
        let feed = serve_feed_polling_every(producer.clone(), &issuer, NEVER).await;
        for (n, name) in ["skipped", "skipped", "wanted", "skipped"]
            .iter()
            .enumerate()
        {
            let event = Event::new("test", name, "a", json!({"n": n}));
            produce(&producer, &event, true).await;
        }
        let token = issuer.service("inventory", "events:read");
        let http = reqwest::Client::new();
        let get = |query: String| {
            let request = http
                .get(format!("{feed}/events?{query}"))
                .bearer_auth(&token);
            async move { request.send().await.unwrap() }
        };
        // On PostgreSQL positions come from a sequence shared with other tests' outboxes, so they
        // are read from the page, not assumed.
        let all: serde_json::Value = get("after=0".into()).await.json().await.unwrap();
        let positions: Vec<i64> = all["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["position"].as_i64().unwrap())
            .collect();
        assert_eq!(positions.len(), 4, "{case}: {all}");

        let page: serde_json::Value = get(format!("after=0&types={WANTED}"))
            .await
            .json()
            .await
            .unwrap();
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{case}: {page}");
        assert_eq!(items[0]["event"]["type"], WANTED, "{case}: {page}");
        assert_eq!(items[0]["position"], positions[2], "{case}: {page}");
        assert_eq!(page["last_position"], positions[3], "{case}: {page}");

        // Caught up: a waiting poll passes over a skipped commit and answers the wanted one.
        let last = positions[3];
        let waiting = tokio::spawn(get(format!("after={last}&wait=30&types={WANTED}")));
        // A pause for ordering (the poll reads, then waits), nothing is timed.
        tokio::time::sleep(Duration::from_millis(300)).await;
        produce(
            &producer,
            &Event::new("test", "skipped", "a", json!({"n": 4})),
            true,
        )
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !waiting.is_finished(),
            "{case}: a skipped type answered the poll"
        );
        produce(
            &producer,
            &Event::new("test", "wanted", "a", json!({"n": 5})),
            true,
        )
        .await;
        let page: serde_json::Value = tokio::time::timeout(Duration::from_secs(20), waiting)
            .await
            .expect("the long poll was not woken by the wanted commit")
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{case}: {page}");
        assert_eq!(items[0]["event"]["data"]["n"], 5, "{case}: {page}");
        assert_eq!(
            page["last_position"], items[0]["position"],
            "{case}: {page}"
        );
        assert_eq!(page["waited"], true, "{case}: {page}");

        // The consumer: the two wanted events applied, its cursor past everything.
        let consuming = connect(&consumer_db).await;
        create_applied_table(&consuming).await;
        let mut consumer = consumer(&feed, &issuer, consuming.clone());
        consumer.handler = Arc::new(Named {
            inner: Recorder {
                db: consuming.clone(),
            },
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while applied(&consuming).await.len() < 2 && std::time::Instant::now() < deadline {
            consumer.poll_once(1).await.unwrap();
        }
        assert_eq!(
            applied(&consuming).await,
            vec![("a".into(), 2), ("a".into(), 5)],
            "{case}"
        );
        let cursor = store::cursor(&consuming, "test-consumer", "producer")
            .await
            .unwrap();
        assert!(cursor > last, "{case}: cursor {cursor}");

        let many = vec![WANTED; 51].join(",");
        for bad in ["types=", "types=a,,b", "types=a%20b", many.as_str()] {
            let query = if bad == many {
                format!("types={bad}")
            } else {
                bad.to_owned()
            };
            let answer = get(format!("after=0&{query}")).await;
            assert_eq!(answer.status(), 400, "{case}: {query}");
            assert_eq!(
                answer.headers()["content-type"],
                "application/problem+json",
                "{case}: {query}"
            );
        }
    }
}

/// Replicas of a producer share its PostgreSQL database: an entry another process commits wakes
/// this one's waiting poll through `LISTEN/NOTIFY`, not its fallback poll.
#[tokio::test]
async fn another_replicas_commit_wakes_a_long_poll_through_postgres() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let issuer = TestIssuer::start().await;
    let producer = connect(&db).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let listening = tokio::spawn(platform::events::wake::listen(
        producer.clone(),
        Box::pin(async move {
            let _ = stopped.await;
        }),
    ));
    let feed = serve_feed_polling_every(producer.clone(), &issuer, NEVER).await;
    let waiting = long_poll(feed, &issuer);
    poll_under_way(&producer).await;
    // The other replica: a process of its own that commits one event (subject `crash`).
    let mut other = tokio::process::Command::new(env!("CARGO_BIN_EXE_outbox-producer"))
        .args(["commit", &db.url, "", ""])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let page = woken(waiting).await;
    other.kill().await.unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["event"]["subject"], "crash", "{page}");
    let _ = stop.send(());
    listening.await.unwrap();
}

/// PostgreSQL's outbox writers take no lock of their own: a later writer commits while an earlier
/// one is still open, and a reader stops at the earlier one's position until it commits, so that
/// nobody moves past it; a position left by a rollback is passed once nothing open can fill it.
#[tokio::test]
async fn a_reader_waits_at_a_gap_an_open_writer_may_fill_and_passes_one_that_never_will() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let producer = connect(&db).await;
    let event = |n: i64| Event::new("test", "thing_happened", "gap", json!({"n": n}));
    let ns = |entries: &[store::FeedEntry]| -> Vec<i64> {
        entries
            .iter()
            .map(|e| e.event.data["n"].as_i64().unwrap())
            .collect()
    };
    produce(&producer, &event(0), true).await;
    let first = store::read_after(&producer, 0, 100).await.unwrap();
    assert_eq!(ns(&first), [0]);
    let start = first[0].position;

    let mut open = producer.begin_write().await.unwrap();
    open.enqueue(&event(1)).await.unwrap();
    let mut later = producer.begin_write().await.unwrap();
    later.enqueue(&event(2)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), later.commit())
        .await
        .expect("the later writer waited for the earlier one")
        .unwrap();
    let meanwhile = store::read_after(&producer, start, 100).await.unwrap();
    assert!(
        meanwhile.is_empty(),
        "read past a position still open: {:?}",
        ns(&meanwhile)
    );
    open.commit().await.unwrap();
    let both = store::read_after(&producer, start, 100).await.unwrap();
    assert_eq!(ns(&both), [1, 2]);

    let last = both[1].position;
    produce(&producer, &event(3), false).await;
    produce(&producer, &event(4), true).await;
    // Passed once no transaction open on the server could still fill it: other tests' (this
    // binary's, or a run beside it on the same server) may be open when the read begins, and the
    // read then gives up for now and answers nothing. Read again, bounded.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let after_rollback = loop {
        let read = store::read_after(&producer, last, 100).await.unwrap();
        if !read.is_empty() || std::time::Instant::now() >= deadline {
            break read;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(ns(&after_rollback), [4]);
    assert!(after_rollback[0].position > last + 1, "{after_rollback:?}");
}

/// The RabbitMQ relay is woken by the commit: with its fallback poll an hour away, an event
/// committed while it is idle is still published and applied.
#[tokio::test]
async fn an_idle_relay_publishes_an_event_as_soon_as_it_is_committed() {
    let Some(amqp) = testkit::db::amqp_url() else {
        return;
    };
    for (producer_db, consumer_db) in TestDatabase::all()
        .await
        .into_iter()
        .zip(TestDatabase::all().await)
    {
        let case = producer_db.backend;
        let issuer = TestIssuer::start().await;
        let exchange = fresh_exchange();
        let producer = connect(&producer_db).await;
        let consuming = connect(&consumer_db).await;
        create_applied_table(&consuming).await;
        let consumer =
            recording_consumer(&issuer, "rabbitmq", &amqp, &exchange, "", &consuming).await;
        let mut relay = platform::events::Events::new(
            &common(&issuer, "rabbitmq", &amqp, &exchange),
            "test",
            producer.clone(),
        );
        relay.poll_every(NEVER);
        let producing = relay.spawn();
        // Once the first is applied, the relay has gone back to waiting.
        for n in 1..=2 {
            produce(
                &producer,
                &Event::new("test", "thing_happened", "a", json!({"n": n})),
                true,
            )
            .await;
            wait_for(&consuming, n as usize, &format!("{case}: event {n}")).await;
        }
        consumer.stop().await;
        producing.stop().await;
    }
}

#[tokio::test]
async fn an_admin_lists_dead_letters_and_replays_one_once_it_can_apply() {
    for db in TestDatabase::all().await {
        let backend = db.backend;
        let issuer = TestIssuer::start().await;
        let consuming = connect(&db).await;
        create_applied_table(&consuming).await;
        let fixed = Event::new("test", "thing_happened", "a", json!({"n": 7}));
        let poison = Event::new(
            "test",
            "thing_happened",
            "a",
            json!({"n": 8, "poison": true}),
        );
        for event in [&fixed, &poison] {
            store::add_dead_letter(&consuming, "test-consumer", event, "failed before", 5, None)
                .await
                .unwrap();
        }
        let verifier = Arc::new(JwtVerifier::remote(
            &format!("{}/.well-known/jwks.json", issuer.users_url),
            testkit::issuer::ISSUER,
            testkit::issuer::AUDIENCE,
        ));
        let handler = Arc::new(Recorder {
            db: consuming.clone(),
        });
        let (router, _) = platform::events::dead_letters::router(
            consuming.clone(),
            verifier,
            "test-consumer",
            handler,
        )
        .split_for_parts();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        let http = reqwest::Client::new();
        let admin = issuer.admin();
        let listed: serde_json::Value = http
            .get(format!("{base}/admin/dead-letters"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(listed["items"].as_array().unwrap().len(), 2, "{backend}");
        let replay = |id: String| {
            http.post(format!("{base}/admin/dead-letters/{id}/replay"))
                .bearer_auth(&admin)
                .send()
        };
        assert_eq!(replay(fixed.id.to_string()).await.unwrap().status(), 204);
        assert_eq!(
            replay(poison.id.to_string()).await.unwrap().status(),
            409,
            "still failing: kept"
        );
        assert_eq!(replay(fixed.id.to_string()).await.unwrap().status(), 404);
        assert_eq!(applied(&consuming).await, vec![("a".into(), 7)]);
        let customer = http
            .get(format!("{base}/admin/dead-letters"))
            .bearer_auth(issuer.customer())
            .send()
            .await
            .unwrap();
        assert_eq!(customer.status(), 403);
        let left = store::dead_letters(&consuming, "test-consumer")
            .await
            .unwrap();
        assert_eq!(left.len(), 1);
    }
}

/// Platform config for one side of a transport test.
fn common(
    issuer: &TestIssuer,
    transport: &str,
    amqp: &str,
    exchange: &str,
) -> platform::config::CommonConfig {
    let mut overrides = serde_json::Map::new();
    for (k, v) in [
        ("port", json!(0)),
        ("users_url", json!(issuer.users_url)),
        ("client_id", json!("test-client")),
        ("client_secret", json!("secret")),
        ("events", json!(transport)),
        ("amqp_url", json!(amqp)),
        ("amqp_exchange", json!(exchange)),
    ] {
        overrides.insert(k.into(), v);
    }
    platform::config::load(json!({}), overrides).unwrap()
}

/// The test consumer ("test-consumer") recording what it applies into `db`, following the
/// "test" producer over `transport` (the feed at `feed`, or RabbitMQ); started, and with RabbitMQ
/// its queue declared, so that whatever is published from now on reaches it (ADR 0004).
async fn recording_consumer(
    issuer: &TestIssuer,
    transport: &str,
    amqp: &str,
    exchange: &str,
    feed: &str,
    db: &Database,
) -> platform::events::Running {
    let mut events = platform::events::Events::new(
        &common(issuer, transport, amqp, exchange),
        "test-consumer",
        db.clone(),
    );
    events.follow("test", feed, Arc::new(Recorder { db: db.clone() }));
    let running = events.spawn();
    if transport == "rabbitmq" {
        queue_exists(amqp, exchange).await;
    }
    running
}

/// Waits (bounded) until the test consumer's queue is declared.
async fn queue_exists(amqp: &str, exchange: &str) {
    let broker = platform::events::amqp::Broker::new(amqp.to_owned().into(), exchange);
    for _ in 0..100 {
        let (_connection, channel) = broker.channel().await.unwrap();
        let passive = lapin::options::QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let declared = channel
            .queue_declare(&broker.queue("test-consumer"), passive, Default::default())
            .await;
        if declared.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the consumer's queue was never declared");
}

/// An exchange of its own for one test, so that tests running at once never see each other's events.
fn fresh_exchange() -> String {
    format!("agora.test.{}", uuid::Uuid::now_v7().simple())
}

/// The transports to run the contract over: the feed always, RabbitMQ when configured.
fn transports() -> Vec<(&'static str, String)> {
    let mut all = vec![("feed", String::new())];
    if let Some(url) = testkit::db::amqp_url() {
        all.push(("rabbitmq", url));
    }
    all
}

async fn wait_for(db: &Database, count: usize, what: &str) -> Vec<(String, i64)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let seen = applied(db).await;
        if seen.len() >= count {
            return seen;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: {} of {count} applied",
            seen.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (bounded) until an event of `subject` is applied; returns everything applied by then.
async fn wait_for_subject(db: &Database, subject: &str, what: &str) -> Vec<(String, i64)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let seen = applied(db).await;
        if seen.iter().any(|(s, _)| s == subject) {
            return seen;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: no event of {subject} applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The same contract, whatever the transport: every committed event is applied once, in order per
/// subject; a rolled-back one never; one that keeps failing goes to the dead letters and the rest
/// flow on; a redelivered one changes nothing.
#[tokio::test]
async fn the_contract_holds_on_the_feed_and_on_rabbitmq() {
    for (transport, amqp) in transports() {
        for (producer_db, consumer_db) in TestDatabase::all()
            .await
            .into_iter()
            .zip(TestDatabase::all().await)
        {
            let case = format!("{transport}/{}", producer_db.backend);
            let issuer = TestIssuer::start().await;
            let exchange = fresh_exchange();
            let producer = connect(&producer_db).await;
            let consuming = connect(&consumer_db).await;
            create_applied_table(&consuming).await;
            let poison = Event::new(
                "test",
                "thing_happened",
                "b",
                json!({"n": -1, "poison": true}),
            );
            let mut committed = 0;
            for n in 0..30 {
                let subject = ["a", "b", "c"][n % 3];
                if n == 10 {
                    produce(&producer, &poison, true).await;
                }
                let keep = n != 7;
                produce(
                    &producer,
                    &Event::new("test", "thing_happened", subject, json!({"n": n})),
                    keep,
                )
                .await;
                committed += usize::from(keep);
            }
            // The consumer first: a queue receives what is published once it exists (ADR 0004).
            let feed = serve_feed(producer.clone(), &issuer).await;
            let consumer =
                recording_consumer(&issuer, transport, &amqp, &exchange, &feed, &consuming).await;
            let producing = platform::events::Events::new(
                &common(&issuer, transport, &amqp, &exchange),
                "test",
                producer.clone(),
            )
            .spawn();

            let seen = wait_for(&consuming, committed, &case).await;
            for subject in ["a", "b", "c"] {
                let ns: Vec<i64> = seen
                    .iter()
                    .filter(|(s, _)| s == subject)
                    .map(|(_, n)| *n)
                    .collect();
                assert!(
                    ns.windows(2).all(|w| w[0] < w[1]),
                    "{case}: {subject} out of order: {ns:?}"
                );
            }
            assert!(
                !seen.iter().any(|(_, n)| *n == 7),
                "{case}: a rolled-back event arrived"
            );
            let dead = store::dead_letters(&consuming, "test-consumer")
                .await
                .unwrap();
            assert_eq!(dead.len(), 1, "{case}");
            assert_eq!(dead[0].event.id, poison.id, "{case}");

            // Redelivery: every event comes again (the feed's cursor lost; the same messages
            // published twice), then a marker; only the marker is new.
            match transport {
                "feed" => store::set_cursor(&consuming, "test-consumer", "test", 0)
                    .await
                    .unwrap(),
                _ => {
                    let broker =
                        platform::events::amqp::Broker::new(amqp.clone().into(), &exchange);
                    let (_connection, channel) = broker.channel().await.unwrap();
                    for entry in store::read_after(&producer, 0, 100).await.unwrap() {
                        platform::events::amqp::publish(
                            &channel,
                            &exchange,
                            &entry.event,
                            Some(entry.position),
                        )
                        .await
                        .unwrap();
                    }
                }
            }
            produce(
                &producer,
                &Event::new("test", "thing_happened", "z", json!({"n": 99})),
                true,
            )
            .await;
            // Events are applied in order, so once the marker is in, every redelivery before it
            // has been through.
            let seen = wait_for_subject(&consuming, "z", &case).await;
            assert_eq!(
                seen.len(),
                committed + 1,
                "{case}: a redelivery was applied twice"
            );
            consumer.stop().await;
            producing.stop().await;
        }
    }
}

/// The producer process is killed (SIGKILL) after its transaction committed the event and before
/// anything published it; restarted, it publishes the event, which is applied once.
#[tokio::test]
async fn an_event_committed_before_a_crash_is_published_after_the_restart() {
    let Some(amqp) = testkit::db::amqp_url() else {
        return;
    };
    for (producer_db, consumer_db) in TestDatabase::all()
        .await
        .into_iter()
        .zip(TestDatabase::all().await)
    {
        let case = producer_db.backend;
        let issuer = TestIssuer::start().await;
        let exchange = fresh_exchange();
        let consuming = connect(&consumer_db).await;
        create_applied_table(&consuming).await;
        // The consumer's queue must exist before the relay publishes: RabbitMQ drops what an
        // exchange routes to no queue, and a slow start (CI's coverage run) lost the event so.
        let consumer =
            recording_consumer(&issuer, "rabbitmq", &amqp, &exchange, "", &consuming).await;

        let run = |mode: &str| {
            let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_outbox-producer"))
                .args([mode, &producer_db.url, &amqp, &exchange])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            let stdout = child.stdout.take().unwrap();
            (child, tokio::io::BufReader::new(stdout))
        };
        use tokio::io::AsyncBufReadExt;
        let (mut committer, mut out) = run("commit");
        let mut line = String::new();
        out.read_line(&mut line).await.unwrap();
        assert!(line.starts_with("committed"), "{line}");
        let pid = nix::unistd::Pid::from_raw(committer.id().unwrap() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
        let _ = committer.wait().await;
        let producing = connect(&producer_db).await;
        let relay = platform::events::amqp::relay_name("test");
        assert_eq!(
            store::cursor(&producing, &relay, "test").await.unwrap(),
            0,
            "{case}: nothing was published before the crash"
        );
        assert_eq!(store::read_after(&producing, 0, 10).await.unwrap().len(), 1);

        let (mut relay, _out) = run("relay");
        let seen = wait_for(&consuming, 1, &format!("{case} after restart")).await;
        assert_eq!(seen, vec![("crash".into(), 1)], "{case}");
        relay.kill().await.unwrap();
        consumer.stop().await;
    }
}

#[tokio::test]
async fn pruning_deletes_old_entries_and_never_unpublished_ones() {
    use platform::config::EventTransport;
    use platform::events::transport::{prune, prune_before};
    for db in TestDatabase::all().await {
        let backend = db.backend;
        let producer = connect(&db).await;
        for n in 0..3 {
            produce(
                &producer,
                &Event::new("test", "thing_happened", "a", json!({"n": n})),
                true,
            )
            .await;
        }
        let entries = store::read_after(&producer, 0, 10).await.unwrap();
        // Within the retention period nothing goes.
        let hour = Duration::from_secs(3600);
        assert_eq!(
            prune(&producer, "test", EventTransport::Feed, hour)
                .await
                .unwrap(),
            0
        );
        // Past it (an hour from now), with RabbitMQ, only what the relay has published goes.
        let relay = platform::events::amqp::relay_name("test");
        store::set_cursor(&producer, &relay, "test", entries[1].position)
            .await
            .unwrap();
        let later = chrono::Utc::now() + chrono::Duration::hours(1);
        let pruned = prune_before(&producer, "test", EventTransport::Rabbitmq, later)
            .await
            .unwrap();
        assert_eq!(pruned, 2, "{backend}");
        // A reader goes on from the last position pruned, as the feed does: read from before it,
        // the pruned positions are a gap, which on PostgreSQL is waited at while any transaction
        // of the server (another test's) is open.
        let (pruned_up_to, _) = store::bounds(&producer).await.unwrap();
        assert_eq!(pruned_up_to, entries[1].position, "{backend}");
        let left = store::read_after(&producer, pruned_up_to, 10)
            .await
            .unwrap();
        assert_eq!(left.len(), 1, "{backend}");
        assert_eq!(left[0].event.id, entries[2].event.id);
    }
}

/// Counts the deliveries that reach the handler (the inbox hides duplicates from `applied`).
struct Counting {
    inner: Recorder,
    calls: Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait]
impl EventHandler for Counting {
    fn wants(&self, event_type: &str) -> bool {
        self.inner.wants(event_type)
    }

    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.handle(event).await
    }
}

/// Three replicas of the producer and three of the consumer, each pair on one database (as
/// `agora up --replicas` runs them): one relay publishes each event once, one consumer at a time
/// applies them, each subject's events in commit order.
#[tokio::test]
async fn three_replicas_relay_each_event_once_and_apply_each_subject_in_order() {
    for (transport, amqp) in transports() {
        for (producer_db, consumer_db) in TestDatabase::all()
            .await
            .into_iter()
            .zip(TestDatabase::all().await)
        {
            let case = format!("{transport}/{}", producer_db.backend);
            let issuer = TestIssuer::start().await;
            let exchange = fresh_exchange();
            let producer = connect(&producer_db).await;
            let consuming = connect(&consumer_db).await;
            create_applied_table(&consuming).await;
            let feed = serve_feed(producer.clone(), &issuer).await;
            let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let mut replicas = Vec::new();
            for _ in 0..3 {
                let db = connect(&consumer_db).await;
                let mut events = platform::events::Events::new(
                    &common(&issuer, transport, &amqp, &exchange),
                    "test-consumer",
                    db.clone(),
                );
                events.follow(
                    "test",
                    &feed,
                    Arc::new(Counting {
                        inner: Recorder { db },
                        calls: calls.clone(),
                    }),
                );
                replicas.push(events.spawn());
            }
            if transport == "rabbitmq" {
                queue_exists(&amqp, &exchange).await;
            }
            for _ in 0..3 {
                let db = connect(&producer_db).await;
                replicas.push(
                    platform::events::Events::new(
                        &common(&issuer, transport, &amqp, &exchange),
                        "test",
                        db,
                    )
                    .spawn(),
                );
            }
            // Interleaved changes of two subjects, then a marker: applied in order, it comes last.
            let committed = 40;
            for n in 0..committed {
                let subject = ["x", "y"][n % 2];
                let event = Event::new("test", "stock_changed", subject, json!({"n": n}));
                produce(&producer, &event, true).await;
            }
            produce(
                &producer,
                &Event::new("test", "stock_changed", "z", json!({"n": 99})),
                true,
            )
            .await;
            let seen = wait_for_subject(&consuming, "z", &case).await;
            for subject in ["x", "y"] {
                let ns: Vec<i64> = seen
                    .iter()
                    .filter(|(s, _)| s == subject)
                    .map(|(_, n)| *n)
                    .collect();
                assert!(
                    ns.windows(2).all(|w| w[0] < w[1]),
                    "{case}: {subject} out of order: {ns:?}"
                );
            }
            assert_eq!(seen.len(), committed + 1, "{case}: {seen:?}");
            assert_eq!(
                calls.load(std::sync::atomic::Ordering::SeqCst),
                committed + 1,
                "{case}: events were delivered more than once"
            );
            for running in replicas {
                running.stop().await;
            }
        }
    }
}

/// A consumer that falls behind by more than the retention period still gets every event: pruning
/// keeps what a known reader of the feed has not read.
#[tokio::test]
async fn a_consumer_lagging_past_the_retention_still_gets_every_event() {
    use platform::config::EventTransport;
    use platform::events::transport::prune;
    for (producer_db, consumer_db) in TestDatabase::all()
        .await
        .into_iter()
        .zip(TestDatabase::all().await)
    {
        let backend = producer_db.backend;
        let issuer = TestIssuer::start().await;
        let producer = connect(&producer_db).await;
        let consuming = connect(&consumer_db).await;
        create_applied_table(&consuming).await;
        let feed = serve_feed(producer.clone(), &issuer).await;
        let consumer = consumer(&feed, &issuer, consuming.clone());
        produce(
            &producer,
            &Event::new("test", "thing_happened", "a", json!({"n": 0})),
            true,
        )
        .await;
        consumer.poll_once(0).await.unwrap();
        // Its next poll tells the producer where it is; then it stops reading, more events come,
        // and all are past the retention.
        consumer.poll_once(0).await.unwrap();
        for n in 1..4 {
            let event = Event::new("test", "thing_happened", "a", json!({"n": n}));
            produce(&producer, &event, true).await;
        }
        let pruned = prune(&producer, "test", EventTransport::Feed, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(pruned, 1, "{backend}: only what the consumer has read goes");
        consumer.poll_once(0).await.unwrap();
        let ns: Vec<i64> = applied(&consuming)
            .await
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        assert_eq!(ns, vec![0, 1, 2, 3], "{backend}");
        assert!(store::dead_letters(&consuming, "test-consumer")
            .await
            .unwrap()
            .is_empty());
    }
}

/// A consumer the producer has never seen asks for events already pruned: it is told, and the gap
/// is recorded in its dead letters (and logged, and counted), never skipped silently.
#[tokio::test]
async fn a_consumer_asking_for_pruned_events_records_the_gap() {
    use platform::config::EventTransport;
    use platform::events::transport::prune;
    for (producer_db, consumer_db) in TestDatabase::all()
        .await
        .into_iter()
        .zip(TestDatabase::all().await)
    {
        let backend = producer_db.backend;
        let issuer = TestIssuer::start().await;
        let producer = connect(&producer_db).await;
        let consuming = connect(&consumer_db).await;
        create_applied_table(&consuming).await;
        for n in 0..3 {
            let event = Event::new("test", "thing_happened", "a", json!({"n": n}));
            produce(&producer, &event, true).await;
        }
        let entries = store::read_after(&producer, 0, 10).await.unwrap();
        let pruned = prune(&producer, "test", EventTransport::Feed, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(
            pruned, 3,
            "{backend}: no reader known, all are past the retention"
        );
        produce(
            &producer,
            &Event::new("test", "thing_happened", "a", json!({"n": 3})),
            true,
        )
        .await;
        let feed = serve_feed(producer.clone(), &issuer).await;
        let consumer = consumer(&feed, &issuer, consuming.clone());
        consumer.poll_once(0).await.unwrap();
        assert_eq!(
            applied(&consuming).await,
            vec![("a".into(), 3)],
            "{backend}"
        );
        let dead = store::dead_letters(&consuming, "test-consumer")
            .await
            .unwrap();
        assert_eq!(dead.len(), 1, "{backend}: the gap is recorded");
        assert_eq!(dead[0].event.event_type, "agora.platform.events_gap.v1");
        assert_eq!(dead[0].event.data["after"], 0);
        assert_eq!(dead[0].event.data["pruned_up_to"], entries[2].position);
        // Reported once: the consumer has moved past it.
        consumer.poll_once(0).await.unwrap();
        assert_eq!(
            store::dead_letters(&consuming, "test-consumer")
                .await
                .unwrap()
                .len(),
            1,
            "{backend}"
        );
    }
}
