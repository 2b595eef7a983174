//! The gateway as backend-for-frontend: sessions in `HttpOnly` cookies, cookies turned into
//! headers on `/api`, CSRF, the guest cart's cookie, and the admin status page. Stand-in users and
//! carts record what reaches them.
use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::IntoResponse;

use super::*;

/// One request as a stand-in service saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Value,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

type Answerer = dyn Fn(&Seen) -> (StatusCode, Value) + Send + Sync;

/// A stand-in service answering with `answer` and keeping every request but its health checks.
struct Stand {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Stand {
    async fn start(answer: impl Fn(&Seen) -> (StatusCode, Value) + Send + Sync + 'static) -> Self {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let answer: Arc<Answerer> = Arc::new(answer);
        let record = seen.clone();
        let app = Router::new()
            .route("/health/ready", get(|| async { "ready" }))
            .fallback(
                move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                    let (record, answer) = (record.clone(), answer.clone());
                    async move {
                        let seen = Seen {
                            method,
                            path: uri.to_string(),
                            headers,
                            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                        };
                        let (status, body) = answer(&seen);
                        record.lock().unwrap().push(seen);
                        let mut response = (status, axum::Json(body)).into_response();
                        if !status.is_success() {
                            response.headers_mut().insert(
                                "content-type",
                                "application/problem+json".parse().unwrap(),
                            );
                        }
                        response
                    }
                },
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn at(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }
}

const PASSWORD: &str = "correct horse battery staple";
const REFRESH: &str = "refresh-1";

/// Stand-in users: `ann` logs in with [`PASSWORD`] and gets `token`; `/users/me` answers whoever
/// sends a bearer token.
async fn users(token: String) -> Stand {
    Stand::start(move |seen| match (seen.method.as_str(), seen.path.as_str()) {
        ("POST", "/auth/login") if seen.body["password"] == PASSWORD => (
            StatusCode::OK,
            json!({"access_token": token, "refresh_token": REFRESH, "token_type": "Bearer", "expires_in": 900}),
        ),
        ("POST", "/auth/login") => (
            StatusCode::UNAUTHORIZED,
            json!({"type": "about:blank", "title": "Unauthorized", "status": 401, "detail": "The login or the password is wrong."}),
        ),
        ("POST", "/auth/refresh") if seen.body["refresh_token"] == REFRESH => (
            StatusCode::OK,
            json!({"access_token": token, "refresh_token": "refresh-2", "token_type": "Bearer", "expires_in": 900}),
        ),
        ("POST", "/auth/logout") => (StatusCode::NO_CONTENT, Value::Null),
        ("GET", "/users") => (StatusCode::OK, json!({"items": []})),
        // A password change ends every login and answers a new pair with the user.
        ("PATCH", "/users/me") if seen.header("authorization").is_some() => (
            StatusCode::OK,
            json!({"id": "u1", "username": "ann", "roles": ["customer"],
                   "tokens": {"access_token": "access-after-change", "refresh_token": "refresh-after-change",
                              "token_type": "Bearer", "expires_in": 900}}),
        ),
        ("GET", "/users/me") if seen.header("authorization").is_some() => (
            StatusCode::OK,
            json!({"id": "u1", "username": "ann", "roles": ["customer"]}),
        ),
        _ => (
            StatusCode::UNAUTHORIZED,
            json!({"type": "about:blank", "title": "Unauthorized", "status": 401}),
        ),
    })
    .await
}

/// Stand-in carts: a new guest cart `guest-1` with secret `s3cret`; merges answer `merge`.
async fn carts(merge: StatusCode) -> Stand {
    Stand::start(move |seen| match (seen.method.as_str(), seen.path.as_str()) {
        ("POST", "/carts") if seen.header("authorization").is_some() => (
            StatusCode::OK,
            json!({"cart": {"id": "user-cart", "owner": "user", "items": []}}),
        ),
        ("POST", "/carts") => (
            StatusCode::CREATED,
            json!({"cart": {"id": "guest-1", "owner": "guest", "items": []}, "secret": "s3cret"}),
        ),
        ("POST", "/carts/guest-1/merge") => (merge, json!({"cart": {"id": "user-cart"}, "notes": []})),
        ("GET", "/carts/guest-1") if seen.header("x-cart-secret") == Some("s3cret") => (
            StatusCode::OK,
            json!({"id": "guest-1", "owner": "guest", "items": []}),
        ),
        // A guest cart that expired.
        ("GET", "/carts/gone-1") => (StatusCode::NOT_FOUND, json!({"status": 404})),
        (_, path) if path.starts_with("/carts/") => (StatusCode::OK, json!({"ok": true})),
        _ => (StatusCode::NOT_FOUND, json!({"status": 404})),
    })
    .await
}

/// The browser's side: cookies by name, as the gateway set them.
#[derive(Default, Clone)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    /// Takes the response's `Set-Cookie`s (a `Max-Age=0` one deletes), and returns them by name.
    fn take(&mut self, response: &reqwest::Response) -> BTreeMap<String, String> {
        let mut set = BTreeMap::new();
        for value in response.headers().get_all("set-cookie") {
            let line = value.to_str().unwrap().to_owned();
            let (pair, _) = line.split_once(';').unwrap_or((&line, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if line.contains("Max-Age=0") {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_owned(), value.to_owned());
            }
            set.insert(name.to_owned(), line.clone());
        }
        set
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn csrf(&self) -> &str {
        &self.0["agora_csrf"]
    }
}

impl TestGateway {
    /// A request as the page's kit sends it: the jar's cookies and, unless told, the CSRF header.
    fn browser(&self, method: Method, path: &str, jar: &Jar) -> reqwest::RequestBuilder {
        let request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .header("cookie", jar.header());
        if method == Method::GET || !jar.0.contains_key("agora_csrf") {
            request
        } else {
            request.header("x-csrf-token", jar.csrf())
        }
    }

    /// [`Self::browser`]'s request without a body, sent.
    async fn send(&self, method: Method, path: &str, jar: &Jar) -> reqwest::Response {
        self.browser(method, path, jar).send().await.unwrap()
    }
}

/// A browser after its first page load: it has the CSRF cookie, and is told it is a guest (an
/// answer, not an error: every page asks).
async fn first_visit(gw: &TestGateway) -> Jar {
    let mut jar = Jar::default();
    let response = gw.get("/session").await;
    assert_eq!(response.status(), 200, "nobody is signed in yet");
    let set = jar.take(&response);
    let csrf = &set["agora_csrf"];
    assert!(!csrf.contains("HttpOnly"), "the page must read it: {csrf}");
    assert!(csrf.contains("SameSite=Strict") && csrf.contains("Secure"));
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"signed_in": false})
    );
    jar
}

/// A browser after its first page load, signed in with `token`: the access cookie a login sets.
async fn signed_in(gw: &TestGateway, token: String) -> Jar {
    let mut jar = first_visit(gw).await;
    jar.0.insert("agora_access".to_owned(), token);
    jar
}

async fn sign_in(gw: &TestGateway, jar: &mut Jar) -> reqwest::Response {
    let response = gw
        .browser(Method::POST, "/session", jar)
        .json(&json!({"login": "ann", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    jar.take(&response);
    response
}

#[tokio::test]
async fn login_sets_http_only_cookies_and_answers_the_user_without_any_token() {
    let token = TestIssuer::start().await.customer();
    let users = users(token.clone()).await;
    let gw = spawn_gateway(json!({"users": [users.url]}), json!({})).await;
    let mut jar = first_visit(&gw).await;

    // A wrong password: users' own 401, as it is.
    let wrong = gw
        .browser(Method::POST, "/session", &jar)
        .json(&json!({"login": "ann", "password": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(wrong.headers()["content-type"], "application/problem+json");
    assert!(wrong.headers().get("set-cookie").is_none());

    let response = gw
        .browser(Method::POST, "/session", &jar)
        .json(&json!({"login": "ann", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let set = jar.take(&response);
    let access = &set["agora_access"];
    assert!(access.contains(&format!("agora_access={token};")));
    for attribute in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/;",
        "Max-Age=900",
    ] {
        assert!(access.contains(attribute), "{attribute} in {access}");
    }
    let refresh = &set["agora_refresh"];
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/session;"] {
        assert!(refresh.contains(attribute), "{attribute} in {refresh}");
    }
    let body = response.text().await.unwrap();
    assert!(!body.contains(&token) && !body.contains(REFRESH), "{body}");
    let user: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(user["username"], "ann");

    // Users saw the browser's address (its login throttle counts clients), and no cookie.
    let logins = users.at("/auth/login");
    assert_eq!(logins.len(), 2);
    assert_eq!(logins[1].header("x-forwarded-for"), Some("127.0.0.1"));
    assert!(users.seen().iter().all(|s| s.header("cookie").is_none()));

    // Signed in: GET /session is the user; the page never saw the token.
    let me = gw.send(Method::GET, "/session", &jar).await;
    assert_eq!(me.status(), 200);
    assert_eq!(me.json::<Value>().await.unwrap()["username"], "ann");

    // A refresh rotates the pair, again only in cookies.
    let refreshed = gw.send(Method::POST, "/session/refresh", &jar).await;
    assert_eq!(refreshed.status(), 204);
    let set = jar.take(&refreshed);
    assert!(set["agora_refresh"].contains("agora_refresh=refresh-2;"));
    assert_eq!(users.at("/auth/refresh")[0].body["refresh_token"], REFRESH);
}

#[tokio::test]
async fn the_access_cookie_becomes_a_bearer_token_on_the_api_and_no_cookie_goes_upstream() {
    let users = users("t".into()).await;
    let gw = spawn_gateway(json!({"users": [users.url]}), json!({})).await;
    // The gateway verifies tokens with its own issuer.
    let token = gw.issuer.customer();
    let mut jar = signed_in(&gw, token.clone()).await;
    jar.0.insert("theme".to_owned(), "dark".to_owned());
    let response = gw.send(Method::GET, "/api/users/me", &jar).await;
    assert_eq!(response.status(), 200);
    let seen = &users.at("/users/me")[0];
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    assert!(seen.header("cookie").is_none());

    // A stale cookie is no token at all: public routes still work, private ones are 401.
    let stale = Jar(BTreeMap::from([(
        "agora_access".to_owned(),
        "expired.or.garbage".to_owned(),
    )]));
    let public = gw.send(Method::GET, "/api/users", &stale).await;
    assert_eq!(public.status(), 200);
    assert!(users.at("/users")[0].header("authorization").is_none());
    let private = gw.send(Method::GET, "/api/users/me", &stale).await;
    assert_eq!(private.status(), 401);
}

#[tokio::test]
async fn an_unsafe_request_without_the_csrf_header_is_403_and_reaches_nothing() {
    let carts = carts(StatusCode::OK).await;
    let users = users("t".into()).await;
    let gw = spawn_gateway(
        json!({"carts": [carts.url], "users": [users.url]}),
        json!({}),
    )
    .await;
    let jar = signed_in(&gw, gw.issuer.customer()).await;
    let path = "/api/carts/guest-1/items";
    let body = json!({"product_id": "p", "quantity": 1});
    for csrf in [None, Some("wrong"), Some("")] {
        let mut request = gw
            .http
            .post(format!("{}{path}", gw.base))
            .header("cookie", jar.header())
            .json(&body);
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 403, "{csrf:?}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    // Login CSRF: a forged sign-in, even from a browser with no cookie at all.
    let forged = gw
        .http
        .post(format!("{}/session", gw.base))
        .json(&json!({"login": "ann", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(
        carts.seen().is_empty() && users.seen().is_empty(),
        "nothing was forwarded"
    );

    // The page's own request, with the header.
    let ok = gw
        .browser(Method::POST, path, &jar)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // An API client with a bearer token and no cookie needs no CSRF header.
    let api = gw
        .http
        .post(format!("{}{path}", gw.base))
        .bearer_auth(gw.issuer.customer())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);
    assert_eq!(carts.at("/carts/guest-1/items").len(), 2);
}

#[tokio::test]
async fn the_guest_cart_cookie_adds_the_secret_only_for_its_own_cart() {
    let carts = carts(StatusCode::OK).await;
    let gw = spawn_gateway(json!({"carts": [carts.url]}), json!({})).await;
    let mut jar = first_visit(&gw).await;
    let none = gw.send(Method::GET, "/session/cart", &jar).await;
    assert_eq!(none.status(), 204, "no cart yet, which is not an error");
    let created = gw.send(Method::POST, "/session/cart", &jar).await;
    assert_eq!(created.status(), 201);
    let set = jar.take(&created);
    let cookie = &set["agora_cart"];
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let body = created.text().await.unwrap();
    assert!(
        !body.contains("s3cret") && !body.contains("secret"),
        "{body}"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["id"],
        "guest-1"
    );

    // The page finds its cart again.
    let again = gw.send(Method::GET, "/session/cart", &jar).await;
    assert_eq!(again.status(), 200);
    assert!(!again.text().await.unwrap().contains("s3cret"));

    for (path, secret) in [
        ("/api/carts/guest-1", Some("s3cret")),
        ("/api/carts/guest-1/items/p1", Some("s3cret")),
        ("/api/carts/guest-10", None),
        ("/api/carts/other", None),
    ] {
        let response = gw.send(Method::GET, path, &jar).await;
        assert_eq!(response.status(), 200, "{path}");
        let upstream = path.trim_start_matches("/api");
        let seen = carts.at(upstream).pop().unwrap();
        assert_eq!(seen.header("x-cart-secret"), secret, "{path}");
        assert!(seen.header("cookie").is_none());
    }
    // A secret the client sends itself wins.
    gw.browser(Method::GET, "/api/carts/guest-1/x", &jar)
        .header("x-cart-secret", "mine")
        .send()
        .await
        .unwrap();
    assert_eq!(
        carts.at("/carts/guest-1/x")[0].header("x-cart-secret"),
        Some("mine")
    );
}

#[tokio::test]
async fn a_guest_cart_that_is_gone_is_no_cart_and_its_cookie_is_cleared() {
    let carts = carts(StatusCode::OK).await;
    let gw = spawn_gateway(json!({"carts": [carts.url]}), json!({})).await;
    let mut jar = first_visit(&gw).await;
    jar.0
        .insert("agora_cart".to_owned(), "gone-1.s3cret".to_owned());
    let response = gw.send(Method::GET, "/session/cart", &jar).await;
    assert_eq!(response.status(), 204);
    let set = jar.take(&response);
    assert!(set["agora_cart"].contains("Max-Age=0"), "{set:?}");
    assert_eq!(carts.at("/carts/gone-1").len(), 1, "carts was asked");
}

#[tokio::test]
async fn a_session_whose_access_cookie_is_gone_or_refused_is_401_so_the_page_refreshes() {
    let users = users("t".into()).await;
    let gw = spawn_gateway(json!({"users": [users.url]}), json!({})).await;
    let mut jar = first_visit(&gw).await;
    // The access cookie expired (the browser dropped it); the refresh cookie is still there.
    jar.0.insert("agora_refresh".into(), REFRESH.into());
    let expired = gw.send(Method::GET, "/session", &jar).await;
    assert_eq!(expired.status(), 401);
    // What the kit then does: refresh, and ask again.
    let refreshed = gw.send(Method::POST, "/session/refresh", &jar).await;
    assert_eq!(refreshed.status(), 204);
    jar.take(&refreshed);
    let again = gw.send(Method::GET, "/session", &jar).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["username"], "ann");
}

#[tokio::test]
async fn login_merges_the_guest_cart_and_a_failed_merge_does_not_fail_it() {
    for (merge, cleared) in [
        (StatusCode::OK, true),
        (StatusCode::INTERNAL_SERVER_ERROR, false),
    ] {
        let carts = carts(merge).await;
        // The gateway passes the token users gave on to carts without reading it.
        let users = users("t".into()).await;
        let gw = spawn_gateway(
            json!({"carts": [carts.url], "users": [users.url]}),
            json!({}),
        )
        .await;
        let mut jar = first_visit(&gw).await;
        let created = gw.send(Method::POST, "/session/cart", &jar).await;
        jar.take(&created);
        let response = sign_in(&gw, &mut jar).await;
        assert_eq!(response.status(), 200, "{merge}: the login succeeds");
        let merges = carts.at("/carts/guest-1/merge");
        assert_eq!(merges.len(), 1);
        assert_eq!(merges[0].header("x-cart-secret"), Some("s3cret"));
        assert!(merges[0]
            .header("authorization")
            .is_some_and(|a| a.starts_with("Bearer ")));
        assert_eq!(!jar.0.contains_key("agora_cart"), cleared, "{merge}");
    }
}

#[tokio::test]
async fn logout_revokes_and_clears_every_session_cookie() {
    let users = users("unused".into()).await;
    let gw = spawn_gateway(json!({"users": [users.url]}), json!({})).await;
    let mut jar = signed_in(&gw, gw.issuer.customer()).await;
    jar.0.insert("agora_refresh".into(), REFRESH.into());
    jar.0.insert("agora_cart".into(), "guest-1.s3cret".into());
    let before = jar.csrf().to_owned();
    let response = gw.send(Method::DELETE, "/session", &jar).await;
    assert_eq!(response.status(), 204);
    let set = jar.take(&response);
    for (name, path) in [
        ("agora_access", "/"),
        ("agora_refresh", "/session"),
        ("agora_cart", "/"),
    ] {
        let cookie = &set[name];
        assert!(cookie.contains("Max-Age=0"), "{cookie}");
        assert!(cookie.contains(&format!("Path={path};")), "{cookie}");
    }
    assert_eq!(
        jar.0.keys().collect::<Vec<_>>(),
        ["agora_csrf"],
        "only a new CSRF token is left"
    );
    assert_ne!(jar.csrf(), before);
    assert_eq!(users.at("/auth/logout")[0].body["refresh_token"], REFRESH);
    let me = gw.send(Method::GET, "/session", &jar).await;
    assert_eq!(me.status(), 200);
    assert_eq!(
        me.json::<Value>().await.unwrap(),
        json!({"signed_in": false}),
        "a guest again"
    );
}

#[tokio::test]
async fn the_status_page_is_for_admins_only() {
    let users = users("unused".into()).await;
    let gw = spawn_gateway(json!({"users": [users.url]}), json!({})).await;
    assert_eq!(gw.get("/status").await.status(), 401);
    let customer = gw
        .http
        .get(format!("{}/status", gw.base))
        .bearer_auth(gw.issuer.customer())
        .send()
        .await
        .unwrap();
    assert_eq!(customer.status(), 403);
    // An admin signed in by cookie.
    let jar = signed_in(&gw, gw.issuer.admin()).await;
    let response = gw.send(Method::GET, "/status", &jar).await;
    assert_eq!(response.status(), 200);
    let status: Value = response.json().await.unwrap();
    let users_status = status["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "users")
        .unwrap();
    assert_eq!(users_status["service"], "users");
    assert_eq!(users_status["breaker"], "closed");
    assert_eq!(users_status["replicas"][0]["healthy"], true);
    assert_eq!(users_status["replicas"][0]["url"], users.url);
    // The stand-in has no real /metrics: its JSON 404 is named, not invented figures.
    assert!(users_status["replicas"][0]["metrics"].is_null());
    assert!(users_status["replicas"][0]["metrics_error"].is_string());
}

#[tokio::test]
async fn a_password_change_from_the_browser_renews_the_cookies_and_no_token_reaches_the_page() {
    let users = users(String::new()).await;
    let gw = spawn_gateway(json!({"users": [users.url]}), json!({})).await;
    // The gateway verifies tokens with its own issuer.
    let token = gw.issuer.customer();
    let mut jar = signed_in(&gw, token.clone()).await;

    let changed = gw
        .browser(Method::PATCH, "/api/users/me", &jar)
        .json(&json!({"current_password": PASSWORD, "password": "another long passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    let set = jar.take(&changed);
    assert!(set["agora_access"].contains("agora_access=access-after-change;"));
    assert!(set["agora_access"].contains("HttpOnly"));
    assert!(set["agora_refresh"].contains("agora_refresh=refresh-after-change;"));
    let body = changed.text().await.unwrap();
    assert!(
        !body.contains("after-change") && !body.contains("tokens"),
        "{body}"
    );
    let user: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(user["username"], "ann");

    // An API client (a bearer token, no cookie) gets the answer as users gave it.
    let api = gw
        .http
        .patch(format!("{}/api/users/me", gw.base))
        .bearer_auth(&token)
        .json(&json!({"current_password": PASSWORD, "password": "another long passphrase"}))
        .send()
        .await
        .unwrap();
    assert!(api.headers().get("set-cookie").is_none());
    let body: Value = api.json().await.unwrap();
    assert_eq!(body["tokens"]["access_token"], "access-after-change");
}
