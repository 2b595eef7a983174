//! The gateway as backend-for-frontend (docs/frontend.md, "Browser security"): a browser signs
//! in at `/session` and from then on holds its tokens, and its guest cart's secret, only in
//! `HttpOnly` cookies that page scripts cannot read. The proxy turns them back into the headers the
//! services expect (`Authorization`, `X-Cart-Secret`) and never forwards a cookie. Every unsafe
//! request that carries an `agora_*` cookie, and every unsafe request to `/session*`, must repeat
//! the readable `agora_csrf` cookie in `X-CSRF-Token`.
//!
//! Cookie values are credentials: none is ever logged.
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use platform::breaker::Rejected;
use platform::error::Problem;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::proxy::{forwarded_headers, Call};
use crate::Gateway;

pub const ACCESS: &str = "agora_access";
pub const REFRESH: &str = "agora_refresh";
pub const CSRF: &str = "agora_csrf";
pub const CART: &str = "agora_cart";
pub const CSRF_HEADER: &str = "x-csrf-token";
const CART_SECRET_HEADER: &str = "x-cart-secret";

/// The refresh cookie's path: only the session routes ever see the refresh token.
const REFRESH_PATH: &str = "/session";
/// How long the browser keeps the refresh cookie: users' default refresh token lifetime. The
/// token pair does not say when the refresh token expires; a cookie outliving its token only
/// earns a 401 at the next refresh, which clears it.
const REFRESH_MAX_AGE: u64 = 30 * 24 * 3600;
/// How long the browser keeps a guest cart's cookie: carts' default guest cart lifetime, renewed
/// whenever `GET /session/cart` finds the cart. A cart that expired sooner is a 204 (no cart) that
/// clears the cookie.
const CART_MAX_AGE: u64 = 30 * 24 * 3600;
/// The most of an upstream answer the session routes read (users, carts: small JSON documents).
const ANSWER_LIMIT: usize = 1 << 20;

/// The session routes (`/session`, `/session/refresh`, `/session/cart`) and their OpenAPI paths.
pub fn routes() -> OpenApiRouter<Gateway> {
    OpenApiRouter::new()
        .routes(routes!(current, login, logout))
        .routes(routes!(refresh))
        .routes(routes!(cart, new_cart))
}

/// An answer the gateway passes on from a service as the service gave it (its schema is in that
/// service's document, under `/api/openapi.json`).
// Only named in the OpenAPI document.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct PassedOn {}

/// The `agora_*` cookies a request carries (the first of each name).
#[derive(Default)]
pub struct Browser {
    pub access: Option<String>,
    pub refresh: Option<String>,
    pub csrf: Option<String>,
    /// The guest cart: its id and secret.
    pub cart: Option<(String, String)>,
    /// Whether any `agora_*` cookie came: such a request is a browser's, and CSRF applies.
    pub any: bool,
}

impl Browser {
    pub fn of(headers: &HeaderMap) -> Self {
        let mut browser = Self::default();
        let pairs = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='));
        for (name, value) in pairs {
            let (name, value) = (name.trim(), value.trim());
            if !name.starts_with("agora_") {
                continue;
            }
            browser.any = true;
            let value = Some(value.to_owned()).filter(|v| !v.is_empty());
            let slot = match name {
                ACCESS => &mut browser.access,
                REFRESH => &mut browser.refresh,
                CSRF => &mut browser.csrf,
                CART => {
                    if browser.cart.is_none() {
                        browser.cart = value
                            .as_deref()
                            .and_then(|v| v.split_once('.'))
                            .filter(|(id, secret)| !id.is_empty() && !secret.is_empty())
                            .map(|(id, secret)| (id.to_owned(), secret.to_owned()));
                    }
                    continue;
                }
                _ => continue,
            };
            if slot.is_none() {
                *slot = value;
            }
        }
        browser
    }
}

/// Prepares a proxied request to `upstream_path` (the path as the service sees it): a guest cart
/// call gets the cart cookie's secret as `X-Cart-Secret` when it names that cart and sent no
/// secret of its own; every cookie is removed. (The access cookie is handled by
/// [`Gateway::check_browser`].)
pub fn prepare_proxied(headers: &mut HeaderMap, browser: &Browser, upstream_path: &str) {
    headers.remove(header::COOKIE);
    let Some((id, secret)) = &browser.cart else {
        return;
    };
    let named = upstream_path
        .strip_prefix("/carts/")
        .map(|rest| rest.split('/').next().unwrap_or(rest));
    if named == Some(id.as_str()) && !headers.contains_key(CART_SECRET_HEADER) {
        if let Ok(value) = HeaderValue::from_str(secret) {
            headers.insert(HeaderName::from_static(CART_SECRET_HEADER), value);
        }
    }
}

/// CSRF, as a layer over every route the gateway serves: a request that is not GET, HEAD or
/// OPTIONS and carries an `agora_*` cookie (the browser would add it to a forged request too),
/// or goes to `/session*` (so that a forged form cannot sign a browser in to someone else's
/// account, login CSRF), must send the `agora_csrf` cookie's value in `X-CSRF-Token`; else 403
/// and nothing is forwarded. API clients that send `Authorization` and no cookie are unaffected.
pub async fn csrf(request: Request, next: Next) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if safe {
        return next.run(request).await;
    }
    let path = request.uri().path();
    let session = path == "/session" || path.starts_with("/session/");
    let browser = Browser::of(request.headers());
    if !(browser.any || session) {
        return next.run(request).await;
    }
    let sent = request
        .headers()
        .get(CSRF_HEADER)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    let matches = browser
        .csrf
        .as_deref()
        .is_some_and(|expected| bool::from(expected.as_bytes().ct_eq(sent)));
    if matches {
        return next.run(request).await;
    }
    Problem::new(StatusCode::FORBIDDEN, "csrf", "CSRF check failed")
        .detail(
            "Send the value of the agora_csrf cookie as X-CSRF-Token (GET /session sets the \
             cookie).",
        )
        .into_response()
}

/// A new CSRF token: 32 random bytes, hex.
fn csrf_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A `Set-Cookie` value. Every cookie is `Secure` (Chromium and Firefox keep secure cookies set
/// by `http://localhost` and `http://127.0.0.1`, which count as secure contexts, so a local
/// `agora up` works over plain HTTP; anywhere else the gateway is reached over TLS) and
/// `SameSite=Strict`; all but the CSRF token are `HttpOnly`. `max_age` 0 deletes the cookie.
fn set_cookie(
    name: &str,
    value: &str,
    path: &str,
    max_age: u64,
    http_only: bool,
) -> Option<HeaderValue> {
    let http_only = if http_only { "; HttpOnly" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; Secure; SameSite=Strict{http_only}"
    ))
    .ok()
}

fn clear_cookie(name: &str, path: &str) -> Option<HeaderValue> {
    set_cookie(name, "", path, 0, name != CSRF)
}

/// The CSRF cookie for a request without one, so the first page load gets one. (The shell page
/// may set it too, with this.)
pub fn csrf_cookie_if_missing(headers: &HeaderMap) -> Option<HeaderValue> {
    match Browser::of(headers).csrf {
        Some(_) => None,
        None => new_csrf_cookie(),
    }
}

fn new_csrf_cookie() -> Option<HeaderValue> {
    set_cookie(CSRF, &csrf_token(), "/", 400 * 24 * 3600, false)
}

fn with_cookies(
    mut response: Response,
    cookies: impl IntoIterator<Item = Option<HeaderValue>>,
) -> Response {
    for cookie in cookies.into_iter().flatten() {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    // An answer that sets credentials is never cached.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A browser's password change (`PATCH /users/me`) is answered by users with a new token pair
/// (every other login of the user was just ended): the pair becomes the session's cookies and is
/// taken out of the answer, so the page never sees a token. Other answers pass untouched.
pub async fn keep_tokens_of(
    browser: &Browser,
    upstream_path: &str,
    response: Response,
) -> Response {
    if browser.access.is_none() || upstream_path != "/users/me" || !response.status().is_success() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // The answer is a user view: small. Past the bound it is not ours to rewrite.
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return bad_tokens();
    };
    let mut view: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let cookies = view
        .as_object_mut()
        .and_then(|fields| fields.remove("tokens"))
        .filter(|pair| !pair.is_null())
        .map(|pair| token_cookies(&pair));
    match cookies {
        None => Response::from_parts(parts, Body::from(bytes)),
        Some(None) => bad_tokens(),
        Some(Some(cookies)) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            let body = serde_json::to_vec(&view).unwrap_or_default();
            with_cookies(Response::from_parts(parts, Body::from(body)), cookies)
        }
    }
}

/// An upstream service's answer, read whole.
pub struct Answer {
    pub status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The answer as the service gave it (status, type, `Retry-After`, body).
    fn passed_on(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = self.status;
        for name in [header::CONTENT_TYPE, header::RETRY_AFTER] {
            if let Some(value) = self.headers.get(&name) {
                response.headers_mut().insert(name, value.clone());
            }
        }
        response
    }
}

impl Gateway {
    /// A call the gateway makes on a browser's behalf to the service owning the public path
    /// `path` (e.g. `/api/auth/login`): through the same breaker, replicas, timeout and retries as
    /// a proxied request, with the client's address in `X-Forwarded-For` exactly as the proxy
    /// sends it (so users' login throttle still counts the real client) and the request id.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn on_behalf(
        &self,
        peer: IpAddr,
        incoming: &HeaderMap,
        method: Method,
        path: &str,
        token: Option<&str>,
        extra: &[(&'static str, &str)],
        body: Option<Bytes>,
    ) -> Result<Answer, Response> {
        let unavailable = || Problem::unavailable("The service is not available.").into_response();
        let target = self.table.resolve(path).ok_or_else(unavailable)?;
        let upstream = self
            .upstreams
            .get(&target.route.service)
            .cloned()
            .ok_or_else(unavailable)?;
        let permit = upstream
            .breaker
            .admit()
            .map_err(|Rejected { retry_after }| {
                Problem::unavailable(format!(
                    "{} is failing; the gateway is not sending it requests for now.",
                    upstream.service
                ))
                .retry_after(retry_after.as_secs().max(1))
                .into_response()
            })?;
        // Only what the proxy would pass on that matters here; never the client's cookies.
        let mut kept = HeaderMap::new();
        for name in [
            header::HOST,
            HeaderName::from_static("x-forwarded-for"),
            platform::http::REQUEST_ID,
            header::ACCEPT_LANGUAGE,
        ] {
            if let Some(value) = incoming.get(&name) {
                kept.insert(name, value.clone());
            }
        }
        if body.is_some() {
            // The client's own type: a body a cross-site form could send (text/plain, a form)
            // is refused by the service as it would be on its own route.
            let json = HeaderValue::from_static("application/json");
            let kind = incoming.get(header::CONTENT_TYPE).unwrap_or(&json);
            kept.insert(header::CONTENT_TYPE, kind.clone());
        }
        let mut headers = forwarded_headers(kept, peer);
        if let Some(value) = token.and_then(|t| HeaderValue::from_str(&format!("Bearer {t}")).ok())
        {
            headers.insert(header::AUTHORIZATION, value);
        }
        for (name, value) in extra {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
        let call = Call {
            method,
            path_and_query: target.path.clone(),
            headers,
            body: body.unwrap_or_default(),
            timeout: Duration::from_millis(
                target
                    .route
                    .timeout_ms
                    .unwrap_or(self.settings.upstream_timeout_ms),
            ),
            route: target.route,
        };
        let response = self
            .call(&upstream, &call, &permit)
            .await
            .map_err(IntoResponse::into_response)?;
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, ANSWER_LIMIT)
            .await
            .map_err(|_| {
                Problem::new(StatusCode::BAD_GATEWAY, "bad-gateway", "Bad gateway")
                    .detail(format!("{} answered unreadably.", upstream.service))
                    .into_response()
            })?;
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

fn not_signed_in() -> Response {
    Problem::unauthorized("Not signed in.").into_response()
}

/// The cookies of a token pair from users (`/auth/login`, `/auth/refresh`): the access token for
/// its lifetime, the refresh token on the session paths only.
fn token_cookies(pair: &Value) -> Option<[Option<HeaderValue>; 2]> {
    let access = pair["access_token"].as_str()?;
    let refresh = pair["refresh_token"].as_str()?;
    let lifetime = pair["expires_in"].as_u64().unwrap_or(0);
    Some([
        set_cookie(ACCESS, access, "/", lifetime, true),
        set_cookie(REFRESH, refresh, REFRESH_PATH, REFRESH_MAX_AGE, true),
    ])
}

fn bad_tokens() -> Response {
    Problem::new(StatusCode::BAD_GATEWAY, "bad-gateway", "Bad gateway")
        .detail("users answered without a token pair.")
        .into_response()
}

/// `GET /session`: the signed-in user (users' `/users/me`); for a guest (no session cookie at all)
/// `{"signed_in": false}`, which is an answer and not an error, since every page asks; 401 when a
/// session cookie is there but its access token is missing or refused (the page then refreshes).
/// Sets the CSRF cookie when the browser has none.
#[utoipa::path(get, path = "/session", tag = "session",
    responses(
        (status = 200, body = PassedOn, description = "The signed-in user as users' `GET /users/me` \
            answers it, or `{\"signed_in\": false}` for a browser without a session"),
        (status = 401, body = Problem, content_type = "application/problem+json",
            description = "A session cookie whose access token is gone or refused: refresh it"),
        (status = 429, body = Problem, content_type = "application/problem+json")))]
async fn current(
    State(gateway): State<Gateway>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let csrf = csrf_cookie_if_missing(&headers);
    let browser = Browser::of(&headers);
    let answer = match gateway.limit_ip(peer.ip()) {
        Err(refused) => refused,
        Ok(()) if browser.access.is_none() && browser.refresh.is_none() => {
            axum::Json(json!({"signed_in": false})).into_response()
        }
        Ok(()) => me(&gateway, peer.ip(), &headers, browser.access.as_deref()).await,
    };
    let mut response = with_cookies(answer, [csrf]);
    // The answer differs by cookie.
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("cookie"));
    response
}

/// The user of `token` (users' `/users/me`), passed on as users answers; 401 without a token.
/// (The caller has counted the request against the address's rate limit.)
async fn me(gateway: &Gateway, peer: IpAddr, headers: &HeaderMap, token: Option<&str>) -> Response {
    let Some(token) = token else {
        return not_signed_in();
    };
    match gateway
        .on_behalf(
            peer,
            headers,
            Method::GET,
            "/api/users/me",
            Some(token),
            &[],
            None,
        )
        .await
    {
        Ok(answer) if answer.status == StatusCode::UNAUTHORIZED => not_signed_in(),
        Ok(answer) => answer.passed_on(),
        Err(failed) => failed,
    }
}

/// `POST /session` `{login, password}`: logs in through users, sets the token cookies and
/// answers the user. A guest cart in the cookie is merged into the user's cart.
#[utoipa::path(post, path = "/session", tag = "session",
    params(("X-CSRF-Token" = String, Header, description = "The `agora_csrf` cookie's value")),
    request_body(content = PassedOn, content_type = "application/json",
        description = "Users' login body, passed on: `{\"login\", \"password\"}`"),
    responses(
        (status = 200, body = PassedOn, description = "Signed in: the user as users' \
            `GET /users/me` answers it; the tokens are set as HttpOnly cookies, never answered"),
        (status = 401, body = Problem, content_type = "application/problem+json",
            description = "The login or the password is wrong"),
        (status = 403, body = Problem, content_type = "application/problem+json",
            description = "The CSRF check failed"),
        (status = 429, body = Problem, content_type = "application/problem+json")))]
async fn login(
    State(gateway): State<Gateway>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let peer = peer.ip();
    if let Err(refused) = gateway.limit_ip(peer) {
        return refused;
    }
    let answer = match gateway
        .on_behalf(
            peer,
            &headers,
            Method::POST,
            "/api/auth/login",
            None,
            &[],
            Some(body),
        )
        .await
    {
        Ok(answer) if answer.status == StatusCode::OK => answer,
        // 401, 422, 429 ...: users' own problem, as it is.
        Ok(answer) => return answer.passed_on(),
        Err(failed) => return failed,
    };
    let pair = answer.json();
    let (Some(cookies), Some(access)) = (token_cookies(&pair), pair["access_token"].as_str())
    else {
        return bad_tokens();
    };
    let browser = Browser::of(&headers);
    let mut set: Vec<Option<HeaderValue>> = cookies.into();
    // A new CSRF token with the new session (the old one was readable by the anonymous page).
    set.push(new_csrf_cookie());
    if let Some((id, secret)) = &browser.cart {
        if merge(&gateway, peer, &headers, access, id, secret).await {
            set.push(clear_cookie(CART, "/"));
        }
    }
    with_cookies(me(&gateway, peer, &headers, Some(access)).await, set)
}

/// Merges the guest cart into the user's; whether the cookie is spent (merged, or the cart is
/// gone). A failure is logged and does not fail the login: the cookie stays for the next one.
async fn merge(
    gateway: &Gateway,
    peer: IpAddr,
    headers: &HeaderMap,
    token: &str,
    id: &str,
    secret: &str,
) -> bool {
    let path = format!("/api/carts/{id}/merge");
    let answer = gateway
        .on_behalf(
            peer,
            headers,
            Method::POST,
            &path,
            Some(token),
            &[(CART_SECRET_HEADER, secret)],
            None,
        )
        .await;
    match answer {
        Ok(answer) if answer.status.is_success() => true,
        Ok(answer) if answer.status == StatusCode::NOT_FOUND => {
            tracing::info!("the guest cart to merge at login no longer exists");
            true
        }
        Ok(answer) => {
            tracing::warn!(status = %answer.status, "merging the guest cart at login failed; kept for the next login");
            false
        }
        Err(failed) => {
            tracing::warn!(status = %failed.status(), "merging the guest cart at login failed; kept for the next login");
            false
        }
    }
}

/// `POST /session/refresh`: rotates the token pair through users' `/auth/refresh`; 204. A refused
/// refresh token clears the session's cookies.
#[utoipa::path(post, path = "/session/refresh", tag = "session",
    params(("X-CSRF-Token" = String, Header, description = "The `agora_csrf` cookie's value")),
    responses(
        (status = 204, description = "New token cookies are set"),
        (status = 401, body = Problem, content_type = "application/problem+json",
            description = "No refresh cookie, or users refused it: the session's cookies are cleared"),
        (status = 403, body = Problem, content_type = "application/problem+json",
            description = "The CSRF check failed"),
        (status = 429, body = Problem, content_type = "application/problem+json")))]
async fn refresh(
    State(gateway): State<Gateway>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let peer = peer.ip();
    if let Err(refused) = gateway.limit_ip(peer) {
        return refused;
    }
    let Some(token) = Browser::of(&headers).refresh else {
        return not_signed_in();
    };
    let answer =
        match with_refresh_token(&gateway, peer, &headers, "/api/auth/refresh", &token).await {
            Ok(answer) => answer,
            Err(failed) => return failed,
        };
    match answer.status {
        StatusCode::OK => match token_cookies(&answer.json()) {
            Some(cookies) => with_cookies(StatusCode::NO_CONTENT.into_response(), cookies),
            None => bad_tokens(),
        },
        StatusCode::UNAUTHORIZED => with_cookies(
            answer.passed_on(),
            [
                clear_cookie(ACCESS, "/"),
                clear_cookie(REFRESH, REFRESH_PATH),
            ],
        ),
        _ => answer.passed_on(),
    }
}

/// `DELETE /session`: ends the login at users (`/auth/logout`) and clears the session's cookies
/// (tokens, guest cart); the CSRF token is replaced, not left out, so the page can sign in again
/// without a reload. 204 even when users cannot be told: the browser forgets the tokens anyway.
#[utoipa::path(delete, path = "/session", tag = "session",
    params(("X-CSRF-Token" = String, Header, description = "The `agora_csrf` cookie's value")),
    responses(
        (status = 204, description = "Signed out: the session's cookies are cleared, a new CSRF \
            cookie is set"),
        (status = 403, body = Problem, content_type = "application/problem+json",
            description = "The CSRF check failed"),
        (status = 429, body = Problem, content_type = "application/problem+json")))]
async fn logout(
    State(gateway): State<Gateway>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let peer = peer.ip();
    if let Err(refused) = gateway.limit_ip(peer) {
        return refused;
    }
    if let Some(token) = Browser::of(&headers).refresh {
        let status =
            match with_refresh_token(&gateway, peer, &headers, "/api/auth/logout", &token).await {
                Ok(answer) => answer.status,
                Err(failed) => failed.status(),
            };
        if !(status.is_success() || status == StatusCode::UNAUTHORIZED) {
            tracing::warn!(%status, "users could not revoke the refresh token at logout");
        }
    }
    with_cookies(
        StatusCode::NO_CONTENT.into_response(),
        [
            clear_cookie(ACCESS, "/"),
            clear_cookie(REFRESH, REFRESH_PATH),
            clear_cookie(CART, "/"),
            new_csrf_cookie(),
        ],
    )
}

/// Users' `path` (`/api/auth/refresh`, `/api/auth/logout`) called with the browser's refresh
/// token, as users takes it: a JSON body `{refresh_token}`.
async fn with_refresh_token(
    gateway: &Gateway,
    peer: IpAddr,
    headers: &HeaderMap,
    path: &str,
    token: &str,
) -> Result<Answer, Response> {
    let body = Bytes::from(json!({"refresh_token": token}).to_string());
    let mut json_headers = headers.clone();
    json_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    gateway
        .on_behalf(
            peer,
            &json_headers,
            Method::POST,
            path,
            None,
            &[],
            Some(body),
        )
        .await
}

/// The signed-in browser's valid access token, if any (a cookie or `Authorization`).
async fn signed_in(gateway: &Gateway, headers: &HeaderMap, browser: &Browser) -> Option<String> {
    let token = platform::auth::bearer_from_headers(headers)
        .map(str::to_owned)
        .or_else(|| browser.access.clone())?;
    gateway.verifier.verify(&token).await.ok().map(|_| token)
}

/// `GET /session/cart`: the browser's cart: the user's current cart when signed in (carts'
/// `POST /carts` with the user's token, which makes one when there is none), else the guest cart
/// of the cookie, else 204: no cart yet is an answer, not an error (a guest's every page asks).
#[utoipa::path(get, path = "/session/cart", tag = "session",
    responses(
        (status = 200, body = PassedOn, description = "The browser's cart as carts answers it \
            (`GET /carts/{id}`); its secret stays in the HttpOnly `agora_cart` cookie"),
        (status = 204, description = "The browser has no cart yet (or its guest cart is gone: the \
            cookie is cleared)"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json")))]
async fn cart(
    State(gateway): State<Gateway>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let peer = peer.ip();
    if let Err(refused) = gateway.limit_ip(peer) {
        return refused;
    }
    match existing_cart(&gateway, peer, &headers).await {
        Existing::Answered(response) => response,
        Existing::Guest(answer, id, secret) => {
            let renewed = set_cookie(CART, &format!("{id}.{secret}"), "/", CART_MAX_AGE, true);
            with_cookies(answer.passed_on(), [renewed])
        }
        Existing::Gone => with_cookies(
            StatusCode::NO_CONTENT.into_response(),
            [clear_cookie(CART, "/")],
        ),
        Existing::Nothing => StatusCode::NO_CONTENT.into_response(),
    }
}

/// The cart a browser already has.
enum Existing {
    /// Answered already: the signed-in user's cart, or a failure to pass on.
    Answered(Response),
    /// The cookie's guest cart as carts read it, with its id and secret.
    Guest(Answer, String, String),
    /// The cookie names a guest cart carts no longer has (expired, merged, a wrong secret).
    Gone,
    /// No cart yet.
    Nothing,
}

/// The user's current cart when signed in, else the cookie's guest cart when it still exists.
async fn existing_cart(gateway: &Gateway, peer: IpAddr, headers: &HeaderMap) -> Existing {
    let browser = Browser::of(headers);
    if let Some(token) = signed_in(gateway, headers, &browser).await {
        return Existing::Answered(user_cart(gateway, peer, headers, &token).await);
    }
    let Some((id, secret)) = browser.cart else {
        return Existing::Nothing;
    };
    match guest_cart(gateway, peer, headers, &id, &secret).await {
        Ok(Some(answer)) => Existing::Guest(answer, id, secret),
        Ok(None) => Existing::Gone,
        Err(failed) => Existing::Answered(failed),
    }
}

/// The user's current cart, as carts' `POST /carts` gives it (`{cart}`), answered as the cart.
async fn user_cart(gateway: &Gateway, peer: IpAddr, headers: &HeaderMap, token: &str) -> Response {
    match gateway
        .on_behalf(
            peer,
            headers,
            Method::POST,
            "/api/carts",
            Some(token),
            &[],
            None,
        )
        .await
    {
        Ok(answer) if answer.status.is_success() => {
            let status = answer.status;
            (status, axum::Json(answer.json()["cart"].clone())).into_response()
        }
        Ok(answer) => answer.passed_on(),
        Err(failed) => failed,
    }
}

/// The guest cart `id` (carts' `GET /carts/{id}` with its secret); none when carts says it does
/// not exist (expired, merged, or a wrong secret).
async fn guest_cart(
    gateway: &Gateway,
    peer: IpAddr,
    headers: &HeaderMap,
    id: &str,
    secret: &str,
) -> Result<Option<Answer>, Response> {
    let answer = gateway
        .on_behalf(
            peer,
            headers,
            Method::GET,
            &format!("/api/carts/{id}"),
            None,
            &[(CART_SECRET_HEADER, secret)],
            None,
        )
        .await?;
    match answer.status {
        StatusCode::OK => Ok(Some(answer)),
        StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST => Ok(None),
        _ => Err(answer.passed_on()),
    }
}

/// `POST /session/cart`: a cart for the browser. Signed in, the user's current cart; else the
/// guest cart of the cookie when it still exists (200), else a new guest cart (201) whose id and
/// secret go in the `HttpOnly` cart cookie. The answer is the cart, never its secret.
#[utoipa::path(post, path = "/session/cart", tag = "session",
    params(("X-CSRF-Token" = String, Header, description = "The `agora_csrf` cookie's value")),
    responses(
        (status = 200, body = PassedOn, description = "The cart the browser already has, as carts \
            answers it"),
        (status = 201, body = PassedOn, description = "A new guest cart; its id and secret are set \
            in the HttpOnly `agora_cart` cookie, never answered"),
        (status = 403, body = Problem, content_type = "application/problem+json",
            description = "The CSRF check failed"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json")))]
async fn new_cart(
    State(gateway): State<Gateway>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let peer = peer.ip();
    if let Err(refused) = gateway.limit_ip(peer) {
        return refused;
    }
    match existing_cart(&gateway, peer, &headers).await {
        Existing::Answered(response) => return response,
        Existing::Guest(answer, ..) => return answer.passed_on(),
        Existing::Gone | Existing::Nothing => {}
    }
    let answer = match gateway
        .on_behalf(peer, &headers, Method::POST, "/api/carts", None, &[], None)
        .await
    {
        Ok(answer) if answer.status.is_success() => answer,
        Ok(answer) => return answer.passed_on(),
        Err(failed) => return failed,
    };
    let created = answer.json();
    let (Some(id), Some(secret)) = (created["cart"]["id"].as_str(), created["secret"].as_str())
    else {
        return Problem::new(StatusCode::BAD_GATEWAY, "bad-gateway", "Bad gateway")
            .detail("carts answered without a guest cart.")
            .into_response();
    };
    let cookie = set_cookie(CART, &format!("{id}.{secret}"), "/", CART_MAX_AGE, true);
    with_cookies(
        (answer.status, axum::Json(created["cart"].clone())).into_response(),
        [cookie],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agora_cookies_are_read_and_others_ignored() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; agora_access=a.b.c; agora_csrf=x"),
        );
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("agora_cart=id-1.s3cr3t; agora_access=second"),
        );
        let browser = Browser::of(&headers);
        assert!(browser.any);
        assert_eq!(browser.access.as_deref(), Some("a.b.c"));
        assert_eq!(browser.csrf.as_deref(), Some("x"));
        assert_eq!(browser.cart, Some(("id-1".to_owned(), "s3cr3t".to_owned())));
        let mut other = HeaderMap::new();
        other.insert(header::COOKIE, HeaderValue::from_static("theme=dark"));
        assert!(!Browser::of(&other).any);
    }

    #[test]
    fn the_cart_secret_goes_only_to_its_own_cart_and_cookies_never_upstream() {
        let mut cookie = HeaderMap::new();
        cookie.insert(header::COOKIE, HeaderValue::from_static("agora_cart=c1.s"));
        let browser = Browser::of(&cookie);
        for (path, expected) in [
            ("/carts/c1", Some("s")),
            ("/carts/c1/items/p", Some("s")),
            ("/carts/c2", None),
            ("/carts/c10", None),
            ("/orders", None),
        ] {
            let mut headers = cookie.clone();
            prepare_proxied(&mut headers, &browser, path);
            assert!(headers.get(header::COOKIE).is_none());
            assert_eq!(
                headers
                    .get(CART_SECRET_HEADER)
                    .and_then(|v| v.to_str().ok()),
                expected,
                "{path}"
            );
        }
    }

    #[test]
    fn cookies_are_secure_strict_and_only_the_csrf_token_is_readable() {
        let access = set_cookie(ACCESS, "t", "/", 900, true).unwrap();
        assert_eq!(
            access,
            "agora_access=t; Path=/; Max-Age=900; Secure; SameSite=Strict; HttpOnly"
        );
        let csrf = new_csrf_cookie().unwrap();
        let csrf = csrf.to_str().unwrap();
        assert!(csrf.starts_with("agora_csrf=") && !csrf.contains("HttpOnly"));
        assert_eq!(csrf_token().len(), 64);
        assert_ne!(csrf_token(), csrf_token());
    }
}
