//! The CloudEvents 1.0 envelope (JSON format) of every Agora integration event.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::telemetry::TraceContext;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Event {
    pub specversion: String,
    pub id: Uuid,
    /// The producing service, e.g. `/agora/products`.
    pub source: String,
    /// E.g. `agora.products.product_created.v1`.
    #[serde(rename = "type")]
    pub event_type: String,
    pub time: DateTime<Utc>,
    /// The aggregate the event is about; consumers keep order per subject.
    pub subject: String,
    pub datacontenttype: String,
    pub data: Value,
    /// W3C trace context of the work that caused the event, when there was one (the CloudEvents
    /// distributed-tracing extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// The request id of the work that caused the event (an extension attribute: CloudEvents
    /// names are lowercase letters and digits only).
    #[serde(default, rename = "requestid", skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Event {
    /// A new event from `service` (e.g. `products`) of kind `name` (e.g. `product_created`), in
    /// the trace and for the request id of the work now running, if any.
    pub fn new(service: &str, name: &str, subject: impl Into<String>, data: Value) -> Self {
        let context = TraceContext::current();
        let event_type = format!("agora.{service}.{name}.v1");
        // The event's own span (a producer's): its consumers' spans become its children.
        let span = match &context {
            Some(_) if crate::telemetry::otel::exporting() => tracing::info_span!(
                "publish",
                otel.name = %format!("publish {name}"),
                otel.kind = "producer",
                event_type = %event_type,
            ),
            _ => tracing::Span::none(),
        };
        Self {
            specversion: "1.0".into(),
            id: Uuid::now_v7(),
            source: format!("/agora/{service}"),
            event_type,
            time: Utc::now(),
            subject: subject.into(),
            datacontenttype: "application/json".into(),
            data,
            traceparent: context.as_ref().map(|c| {
                c.parent(&span);
                c.traceparent_in(&span)
            }),
            request_id: context.map(|c| c.request_id),
        }
    }

    /// The context to handle this event in: a new hop of the trace that caused it, for the same
    /// request id (new ones for an event that carries none).
    pub fn context(&self) -> TraceContext {
        TraceContext::continuing(self.request_id.as_deref(), self.traceparent.as_deref())
    }

    pub fn with_traceparent(mut self, traceparent: Option<String>) -> Self {
        self.traceparent = traceparent;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_is_cloudevents_json() {
        let event = Event::new(
            "products",
            "product_created",
            "p-1",
            serde_json::json!({"sku": "A"}),
        );
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["type"], "agora.products.product_created.v1");
        assert_eq!(json["source"], "/agora/products");
        assert_eq!(json["subject"], "p-1");
        assert!(json.get("traceparent").is_none());
        assert!(json.get("requestid").is_none());
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }

    #[tokio::test]
    async fn an_event_made_for_a_request_carries_its_trace_and_request_id() {
        let request = TraceContext::continuing(
            Some("req-7"),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let event = request
            .clone()
            .scope(async { Event::new("orders", "order_placed", "o-1", serde_json::json!({})) })
            .await;
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["traceparent"], request.traceparent());
        assert_eq!(json["requestid"], "req-7");

        let handling = serde_json::from_value::<Event>(json).unwrap().context();
        assert_eq!(handling.request_id, "req-7");
        assert_eq!(handling.trace_id, request.trace_id);
        assert_ne!(handling.span_id, request.span_id);
    }
}
