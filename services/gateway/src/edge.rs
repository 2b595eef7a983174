//! Checks on the client before anything is sent upstream: rate limits per address and per user,
//! and the access token (for a browser, its access cookie stands for one). Every route the
//! gateway serves itself goes through them too.
use std::net::IpAddr;
use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use platform::auth::{bearer_from_headers, Claims};
use platform::error::Problem;

use crate::config::Access;
use crate::Gateway;

impl Gateway {
    /// The client's address within its rate limit; any token sent valid (so a bad one never
    /// reaches a service; the services still verify it themselves), and its user within theirs;
    /// a token present where `access` needs one.
    pub async fn check_client(
        &self,
        headers: &HeaderMap,
        client: IpAddr,
        access: Access,
    ) -> Result<(), Response> {
        self.limit_ip(client)?;
        self.check_token(bearer_from_headers(headers), access)
            .await
            .map(|_| ())
    }

    /// Like [`Self::check_client`], for a request that may come from a browser: when it sent no
    /// `Authorization`, its access cookie (`cookie`) stands for one and is put in `headers` as
    /// `Authorization: Bearer`. An invalid or expired cookie counts as no token at all, so a stale
    /// cookie never locks a visitor out of public pages (a route that needs a user still
    /// answers 401, and the page then refreshes or signs in again).
    pub async fn check_browser(
        &self,
        headers: &mut HeaderMap,
        cookie: Option<&str>,
        client: IpAddr,
        access: Access,
    ) -> Result<(), Response> {
        let cookie = cookie.filter(|_| !headers.contains_key(header::AUTHORIZATION));
        let Some(token) = cookie else {
            return self.check_client(headers, client, access).await;
        };
        self.limit_ip(client)?;
        match self.verifier.verify(token).await {
            Ok(claims) => {
                self.limit_user(&claims.sub)?;
                if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
                    headers.insert(header::AUTHORIZATION, value);
                }
                Ok(())
            }
            Err(_) => self.check_token(None, access).await.map(|_| ()),
        }
    }

    /// The claims of `token` when it is valid and its user within their rate limit; none when
    /// no token came and `access` does not need one.
    pub(crate) async fn check_token(
        &self,
        token: Option<&str>,
        access: Access,
    ) -> Result<Option<Claims>, Response> {
        match token {
            Some(token) => match self.verifier.verify(token).await {
                Ok(claims) => {
                    self.limit_user(&claims.sub)?;
                    Ok(Some(claims))
                }
                Err(_) => Err(
                    Problem::unauthorized("The access token is invalid or expired.")
                        .into_response(),
                ),
            },
            None if access == Access::Authenticated => Err(Problem::unauthorized(
                "Send an access token as `Authorization: Bearer <token>`.",
            )
            .into_response()),
            None => Ok(None),
        }
    }

    pub(crate) fn limit_ip(&self, ip: IpAddr) -> Result<(), Response> {
        let (rate, burst) = (
            self.settings.rate_limit_ip_per_second,
            self.settings.rate_limit_ip_burst,
        );
        self.ip_limiter.check_key(&ip).map_err(|not_until| {
            too_many(
                not_until.wait_time_from(DefaultClock::default().now()),
                rate,
                burst,
            )
        })
    }

    fn limit_user(&self, subject: &str) -> Result<(), Response> {
        let (rate, burst) = (
            self.settings.rate_limit_user_per_second,
            self.settings.rate_limit_user_burst,
        );
        self.user_limiter
            .check_key(&subject.to_owned())
            .map_err(|not_until| {
                too_many(
                    not_until.wait_time_from(DefaultClock::default().now()),
                    rate,
                    burst,
                )
            })
    }
}

/// Every `rate_limit_sweep_ms`, forgets the clients whose bucket has filled up again: they are
/// limited exactly as if never seen, and without this every address and user ever seen would keep
/// an entry for the life of the process.
pub async fn sweep_forever(gateway: Gateway) {
    let mut every = tokio::time::interval(Duration::from_millis(
        gateway.settings.rate_limit_sweep_ms.max(10),
    ));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        gateway.ip_limiter.retain_recent();
        gateway.ip_limiter.shrink_to_fit();
        gateway.user_limiter.retain_recent();
        gateway.user_limiter.shrink_to_fit();
    }
}

/// 429 with `Retry-After` and the `RateLimit` / `RateLimit-Policy` headers of the IETF draft.
fn too_many(wait: Duration, rate: u32, burst: u32) -> Response {
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    let mut response = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        "Too many requests",
    )
    .detail("Slow down; try again after the time in Retry-After.")
    .retry_after(seconds)
    .into_response();
    let headers = response.headers_mut();
    if let Ok(value) =
        HeaderValue::from_str(&format!("limit={burst}, remaining=0, reset={seconds}"))
    {
        headers.insert(HeaderName::from_static("ratelimit"), value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!("{burst};w=1;burst={burst};rate={rate}")) {
        headers.insert(HeaderName::from_static("ratelimit-policy"), value);
    }
    response
}
