//! The CloudEvents 1.0 envelope (JSON format) of every Agora integration event.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

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
    /// W3C trace context of the request that caused the event, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl Event {
    /// A new event from `service` (e.g. `products`) of kind `name` (e.g. `product_created`).
    pub fn new(service: &str, name: &str, subject: impl Into<String>, data: Value) -> Self {
        Self {
            specversion: "1.0".into(),
            id: Uuid::now_v7(),
            source: format!("/agora/{service}"),
            event_type: format!("agora.{service}.{name}.v1"),
            time: Utc::now(),
            subject: subject.into(),
            datacontenttype: "application/json".into(),
            data,
            traceparent: None,
        }
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
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }
}
