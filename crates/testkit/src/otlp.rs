//! A small OpenTelemetry collector for tests: it receives OTLP/HTTP traces in JSON (what
//! `AGORA_OTLP_ENDPOINT` points the services at) and keeps every span it is sent.
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;

/// One span as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// The `service.name` of the process that sent it.
    pub service: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_id: String,
    pub name: String,
}

/// The running receiver; stops when dropped.
pub struct Collector {
    /// What `AGORA_OTLP_ENDPOINT` should say (spans go to `<url>/v1/traces`).
    pub url: String,
    spans: Arc<Mutex<Vec<Span>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Collector {
    pub async fn start() -> Self {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/v1/traces", post(receive))
            .with_state(spans.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, spans, task }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }

    /// The spans of one trace.
    pub fn trace(&self, trace_id: &str) -> Vec<Span> {
        self.spans()
            .into_iter()
            .filter(|s| s.trace_id == trace_id)
            .collect()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `ExportTraceServiceRequest` in OTLP's JSON encoding: ids are hex strings.
async fn receive(
    State(spans): State<Arc<Mutex<Vec<Span>>>>,
    Json(body): Json<Value>,
) -> Json<Value> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let mut received = Vec::new();
    for resource in body["resourceSpans"].as_array().into_iter().flatten() {
        let service = resource["resource"]["attributes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["key"] == "service.name")
            .map(|a| text(&a["value"]["stringValue"]))
            .unwrap_or_default();
        for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
            for span in scope["spans"].as_array().into_iter().flatten() {
                received.push(Span {
                    service: service.clone(),
                    trace_id: text(&span["traceId"]).to_ascii_lowercase(),
                    span_id: text(&span["spanId"]).to_ascii_lowercase(),
                    parent_id: text(&span["parentSpanId"]).to_ascii_lowercase(),
                    name: text(&span["name"]),
                });
            }
        }
    }
    spans.lock().unwrap().extend(received);
    Json(serde_json::json!({}))
}
