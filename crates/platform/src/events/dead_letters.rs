//! Admin endpoints over a consumer's dead letters: list them, and replay one through the
//! consumer's handler (removed when it applies). Not routed by the gateway.
use std::sync::Arc;

use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::store::{self, DeadLetter};
use super::EventHandler;
use crate::auth::{Admin, JwtVerifier};
use crate::db::Database;
use crate::error::Problem;
use crate::extract::Json;

#[derive(Clone)]
pub struct DeadLetterState {
    db: Database,
    verifier: Arc<JwtVerifier>,
    consumer: String,
    handler: Arc<dyn EventHandler>,
}

impl FromRef<DeadLetterState> for Arc<JwtVerifier> {
    fn from_ref(state: &DeadLetterState) -> Self {
        state.verifier.clone()
    }
}

pub fn router(
    db: Database,
    verifier: Arc<JwtVerifier>,
    consumer: &str,
    handler: Arc<dyn EventHandler>,
) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(replay))
        .with_state(DeadLetterState {
            db,
            verifier,
            consumer: consumer.to_owned(),
            handler,
        })
}

#[derive(Serialize, ToSchema)]
pub struct DeadLetters {
    items: Vec<DeadLetter>,
}

fn internal(e: sqlx::Error) -> Problem {
    tracing::error!(error = %e, "reading dead letters failed");
    Problem::internal()
}

/// Events this service gave up on (admin).
#[utoipa::path(get, path = "/admin/dead-letters", tag = "events", security(("bearer" = [])),
    responses((status = 200, body = DeadLetters),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn list(
    State(state): State<DeadLetterState>,
    _admin: Admin,
) -> Result<Json<DeadLetters>, Problem> {
    let items = store::dead_letters(&state.db, &state.consumer)
        .await
        .map_err(internal)?;
    metrics::gauge!("events_dead_letters", "consumer" => state.consumer.clone())
        .set(items.len() as f64);
    Ok(Json(DeadLetters { items }))
}

/// Applies a dead letter again (admin); it is removed when that works, kept when it fails again.
/// One the consumer does not apply (a recorded gap in a producer's feed) is removed.
#[utoipa::path(post, path = "/admin/dead-letters/{event_id}/replay", tag = "events", security(("bearer" = [])),
    responses((status = 204),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")))]
async fn replay(
    State(state): State<DeadLetterState>,
    _admin: Admin,
    Path(event_id): Path<String>,
) -> Result<StatusCode, Problem> {
    let letters = store::dead_letters(&state.db, &state.consumer)
        .await
        .map_err(internal)?;
    let letter = letters
        .into_iter()
        .find(|l| l.event.id.to_string() == event_id)
        .ok_or_else(|| Problem::not_found("No such dead letter."))?;
    // One the handler does not take (a recorded gap, say) has nothing to apply: replaying it
    // acknowledges it.
    if state.handler.wants(&letter.event.event_type) {
        state
            .handler
            .handle_at(&letter.event, letter.position)
            .await
            .map_err(|e| Problem::conflict(format!("The event still cannot be applied: {e}")))?;
    }
    store::remove_dead_letter(&state.db, &state.consumer, &event_id)
        .await
        .map_err(internal)?;
    Ok(StatusCode::NO_CONTENT)
}
