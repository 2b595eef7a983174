//! The producer side of the broker-less transport: `GET /events?after=&limit=&wait=&types=` serves the
//! outbox in order, long-polling up to `wait` seconds when nothing is new; a waiting poll answers
//! as soon as an outbox entry commits ([`super::wake`]). Only service clients with the
//! `events:read` scope may read it, and the gateway never routes it.
//!
//! Each request tells the producer where that reader (its client id) is, and pruning keeps what a
//! known reader has not read. A reader that asks from before what was pruned anyway (one never seen
//! before, or a restored database) is told of the gap (`gap`), and the producer counts it in
//! `events_gap_total` and logs it as an error: events are never lost silently.
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{FromRef, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::store::{self, FeedEntry};
use super::wake;
use crate::auth::{JwtVerifier, ScopeName, Scoped};
use crate::db::Database;
use crate::error::Problem;
use crate::extract::{Json, Query};
use crate::shutdown::Stopping;

pub struct EventsRead;
impl ScopeName for EventsRead {
    const SCOPE: &'static str = "events:read";
}

#[derive(Clone)]
pub struct FeedState {
    db: Database,
    verifier: Arc<JwtVerifier>,
    stopping: Stopping,
    /// How often a waiting poll reads the outbox when no commit wakes it.
    fallback_poll: Duration,
}

impl FromRef<FeedState> for Arc<JwtVerifier> {
    fn from_ref(state: &FeedState) -> Self {
        state.verifier.clone()
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// The last position already seen (0 for the start).
    #[serde(default)]
    after: i64,
    /// At most this many events (1–500, default 100).
    limit: Option<i64>,
    /// Seconds to wait for a new event when there is none (0–30, default 0).
    #[serde(default)]
    wait: u64,
    /// Only events of these types, comma-separated (at most 50); every type when absent. The others
    /// are passed over: `last_position` still moves past them, and a waiting poll goes on waiting
    /// for one of these.
    types: Option<String>,
}

/// The most event types one poll may name.
const MAX_TYPES: usize = 50;

impl FeedQuery {
    /// The types asked for (`None`: all), or why they cannot be read.
    fn types(&self) -> Result<Option<Vec<&str>>, Problem> {
        let Some(types) = &self.types else {
            return Ok(None);
        };
        let types: Vec<&str> = types.split(',').collect();
        let named = |t: &&str| {
            !t.is_empty()
                && t.len() <= 200
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        };
        if types.len() > MAX_TYPES || !types.iter().all(named) {
            return Err(Problem::bad_request(format!(
                "`types` must be 1 to {MAX_TYPES} event types separated by commas, each of \
                 letters, digits, `.`, `_` and `-`."
            )));
        }
        Ok(Some(types))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FeedPage {
    pub items: Vec<FeedEntry>,
    /// Pass as `after` next time.
    pub last_position: i64,
    /// Present when events after `after` were pruned before this reader read them: the last
    /// position pruned. Those events are gone; `items` go on from the oldest one kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gap: Option<i64>,
    /// Whether this poll found nothing new when it came and answered a commit it waited for:
    /// the reader had caught up, and its next poll need not wait for more to pile up.
    pub waited: bool,
}

/// The feed routes for a producer, with their state applied. Long polls end early once
/// `stopping` is set, so that shutdown does not wait for them.
pub fn router(db: Database, verifier: Arc<JwtVerifier>, stopping: Stopping) -> OpenApiRouter {
    let fallback_poll = wake::fallback_poll(&db);
    router_polling_every(db, verifier, stopping, fallback_poll)
}

/// [`router`] whose waiting polls read the outbox every `fallback_poll` when no commit wakes them
/// (tests set it long to show that the wake-up alone answers).
pub fn router_polling_every(
    db: Database,
    verifier: Arc<JwtVerifier>,
    stopping: Stopping,
    fallback_poll: Duration,
) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(events))
        .with_state(FeedState {
            db,
            verifier,
            stopping,
            fallback_poll,
        })
}

/// The producer's events after a position, oldest first (long-poll with `wait`).
#[utoipa::path(get, path = "/events", tag = "events", params(FeedQuery),
    security(("bearer" = ["events:read"])),
    responses(
        (status = 200, body = FeedPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn events(
    State(state): State<FeedState>,
    caller: Scoped<EventsRead>,
    Query(query): Query<FeedQuery>,
) -> Result<Json<FeedPage>, Problem> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) || query.after < 0 || query.wait > 30 {
        return Err(Problem::bad_request(
            "`after` must be ≥ 0, `limit` 1 to 500 and `wait` 0 to 30 seconds.",
        ));
    }
    let types = query.types()?;
    let caller = caller.0;
    let internal = |e: sqlx::Error| {
        tracing::error!(error = %e, "reading the outbox failed");
        Problem::internal()
    };
    if let Err(e) = store::saw_reader(&state.db, &caller.sub, query.after).await {
        // The gap check below is the backstop if pruning misses this request.
        tracing::warn!(error = %e, reader = %caller.sub, "recording a feed reader's position failed");
    }
    let (pruned, head) = store::bounds(&state.db).await.map_err(internal)?;
    let gap = (query.after < pruned).then_some(pruned);
    // Saturation seen from the producer: how many positions its outbox holds (since the last
    // pruning; an upper bound, as PostgreSQL sequences may skip), and how far behind the head
    // this reader is (each consumer reads with its own client id).
    let head = head.max(pruned);
    metrics::gauge!("events_outbox_entries").set((head - pruned) as f64);
    metrics::gauge!("events_feed_reader_lag", "reader" => caller.sub.clone())
        .set((head - query.after).max(0) as f64);
    if gap.is_some() {
        tracing::error!(reader = %caller.sub, after = query.after, pruned_up_to = pruned, "a feed reader asked for events already pruned");
        metrics::counter!("events_gap_total", "reader" => caller.sub.clone()).increment(1);
    }
    let deadline = Instant::now() + Duration::from_secs(query.wait);
    let mut stopping = state.stopping.clone();
    let mut waited = false;
    // What was pruned is gone: read from there, not from a gap that never fills.
    let mut after = query.after.max(pruned);
    loop {
        // Taken before the read, so that a commit between the read and the wait still wakes it.
        let committed = wake::next_commit();
        let mut items = store::read_after(&state.db, after, limit)
            .await
            .map_err(internal)?;
        let full = items.len() as i64 == limit;
        // Past what was read, wanted or not: the reader need not see those positions again.
        after = items.last().map_or(after, |e| e.position);
        if let Some(types) = &types {
            items.retain(|e| types.contains(&e.event.event_type.as_str()));
        }
        if !items.is_empty() || gap.is_some() || Instant::now() >= deadline || stopping.is_set() {
            return Ok(Json(FeedPage {
                items,
                last_position: after,
                gap,
                waited,
            }));
        }
        // A full page of events this reader passes over: more may be waiting already.
        if full {
            continue;
        }
        let pause = state
            .fallback_poll
            .min(deadline.saturating_duration_since(Instant::now()));
        tokio::select! {
            _ = committed => {}
            _ = stopping.pause(pause) => {}
        }
        waited = true;
    }
}
