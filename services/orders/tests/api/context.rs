//! The request id and W3C trace of a request into orders go with every call it makes to the other
//! services and with every event it causes, and a consumer handles those events in that context.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use platform::client::{ClientCredentials, ServiceClient};
use platform::events::{Event, EventHandler, FeedConsumer, HandlerError};
use platform::telemetry::{parse_traceparent, TraceContext};
use serde_json::{json, Map};
use testkit::{TestDatabase, TestIssuer};

use crate::upstream::Upstream;

const REQUEST_ID: &str = "checkout-7f3a";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// What a consumer saw: the event's own attributes and the context it was handled in.
#[derive(Default)]
struct Recorder(Mutex<Vec<(Event, Option<TraceContext>)>>);

#[async_trait]
impl EventHandler for Recorder {
    fn wants(&self, event_type: &str) -> bool {
        event_type.starts_with("agora.orders.")
    }

    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        self.0
            .lock()
            .unwrap()
            .push((event.clone(), TraceContext::current()));
        Ok(())
    }
}

/// The parent span of a `traceparent` in this trace; fails on any other trace.
fn parent_in_trace(traceparent: Option<&str>, what: &str) -> String {
    let traceparent = traceparent.unwrap_or_else(|| panic!("{what}: no traceparent"));
    let (trace_id, _) =
        parse_traceparent(traceparent).unwrap_or_else(|| panic!("{what}: {traceparent}"));
    assert_eq!(trace_id, TRACE_ID, "{what}");
    let parent = traceparent.split('-').nth(2).unwrap().to_owned();
    assert_ne!(parent, CALLER_SPAN, "{what}: orders is a hop of its own");
    parent
}

#[tokio::test]
async fn a_request_id_and_trace_reach_every_call_and_event_of_a_checkout() {
    for db in TestDatabase::all().await {
        let issuer = TestIssuer::start().await;
        let upstream = Upstream::start(true).await;
        let dir = tempfile::tempdir().unwrap();
        let mut o = Map::new();
        o.insert("port".into(), json!(0));
        o.insert("database_url".into(), json!(db.url));
        o.insert("users_url".into(), json!(issuer.users_url));
        o.insert("data_dir".into(), json!(dir.path().display().to_string()));
        for service in ["products_url", "inventory_url", "payments_url"] {
            o.insert(service.into(), json!(upstream.url));
        }
        let app = orders::Application::build(orders::Config::load(o).unwrap())
            .await
            .unwrap();
        let orders_url = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run(platform::shutdown::never()));

        let r = reqwest::Client::new()
            .post(format!("{orders_url}/orders"))
            .bearer_auth(issuer.customer())
            .header("Idempotency-Key", crate::new_id())
            .header("x-request-id", REQUEST_ID)
            .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
            .json(
                &json!({"items": [{"product_id": crate::new_id(), "quantity": 2}],
                "payment_method": "pm_card_visa", "shipping_address": crate::address()}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", db.backend);
        assert_eq!(r.headers()["x-request-id"], REQUEST_ID);

        let calls = upstream.calls();
        let paths: Vec<_> = calls
            .iter()
            .map(|c| format!("{} {}", c.method, c.path))
            .collect();
        for wanted in ["GET /products/", "POST /reservations", "POST /payments"] {
            assert!(
                paths.iter().any(|p| p.starts_with(wanted)),
                "{}: {wanted} in {paths:?}",
                db.backend
            );
        }
        assert!(paths.iter().any(|p| p.ends_with("/commit")), "{paths:?}");
        let mut parents = Vec::new();
        for call in &calls {
            let what = format!("{}: {} {}", db.backend, call.method, call.path);
            assert_eq!(call.request_id.as_deref(), Some(REQUEST_ID), "{what}");
            parents.push(parent_in_trace(call.traceparent.as_deref(), &what));
        }

        // The events it caused carry the trace and request id; a consumer handles them in both.
        let (_, consumer_db) = orders::storage::connect(&TestDatabase::sqlite().url, 2)
            .await
            .unwrap();
        let recorder = Arc::new(Recorder::default());
        let consumer = FeedConsumer {
            consumer: "context-test".into(),
            producer: "orders".into(),
            client: ServiceClient::new("orders", &orders_url, Duration::from_secs(10))
                .with_credentials(ClientCredentials::new(
                    &issuer.users_url,
                    "test-client".into(),
                    "test-secret".to_owned().into(),
                )),
            db: consumer_db,
            handler: recorder.clone(),
            max_attempts: 1,
        };
        consumer.poll_once(0).await.unwrap();
        let seen = recorder.0.lock().unwrap();
        let types: Vec<_> = seen.iter().map(|(e, _)| e.event_type.as_str()).collect();
        assert_eq!(
            types,
            [
                "agora.orders.order_placed.v1",
                "agora.orders.order_confirmed.v1"
            ],
            "{}",
            db.backend
        );
        for (event, handled_in) in seen.iter() {
            let what = format!("{}: {}", db.backend, event.event_type);
            assert_eq!(event.request_id.as_deref(), Some(REQUEST_ID), "{what}");
            let parent = parent_in_trace(event.traceparent.as_deref(), &what);
            let handled_in = handled_in.as_ref().expect("handled in a context");
            assert_eq!(handled_in.request_id, REQUEST_ID, "{what}");
            assert_eq!(handled_in.trace_id, TRACE_ID, "{what}");
            assert_ne!(
                handled_in.span_id, parent,
                "{what}: the consumer is a hop of its own"
            );
        }
    }
}
