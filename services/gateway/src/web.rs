//! The front ends' entry: the shell page at `/`, `/admin` and every storefront path, with the import
//! map that composes the micro frontends and the Content-Security-Policy that admits only it
//! (docs/frontend.md, ADR 0006). The gateway also serves its own two micro frontends, the shell
//! (with the kit) and the admin; the others are served by their services under `/ui/<name>/`.
use std::sync::LazyLock;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};

#[derive(RustEmbed)]
#[folder = "web/shell/"]
struct Shell;

#[derive(RustEmbed)]
#[folder = "web/admin/"]
struct Admin;

/// Each micro frontend by the name pages import it with (`agora/<name>`). The path is the same
/// whichever replica or version serves it: a service deploys its micro frontend with itself.
pub const MICRO_FRONTENDS: [&str; 6] = ["kit", "catalog", "cart", "account", "orders", "admin"];

/// The storefront's and the admin's paths; the shell page's router decides what each shows.
const PAGES: [&str; 13] = [
    "/",
    "/search",
    "/c/{*rest}",
    "/p/{*rest}",
    "/cart",
    "/checkout",
    "/login",
    "/register",
    "/account",
    "/orders",
    "/orders/{*rest}",
    "/admin",
    "/admin/{*rest}",
];

struct Composition {
    import_map: String,
    csp: String,
}

static COMPOSITION: LazyLock<Composition> = LazyLock::new(|| {
    let imports: serde_json::Map<String, serde_json::Value> = MICRO_FRONTENDS
        .iter()
        .map(|name| {
            let url = match *name {
                "kit" => "/ui/shell/kit.js".to_owned(),
                other => format!("/ui/{other}/index.js"),
            };
            (format!("agora/{name}"), url.into())
        })
        .collect();
    let import_map = serde_json::json!({ "imports": imports }).to_string();
    // The import map is the page's one inline script: admitted by its hash, so the policy needs no
    // 'unsafe-inline' (CSP3 hashes cover inline import maps).
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&import_map));
    let csp = format!(
        "default-src 'self'; script-src 'self' 'sha256-{hash}'; style-src 'self'; \
         img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    Composition { import_map, csp }
});

/// The shell page and the gateway's own micro frontends.
pub fn router() -> Router {
    let mut router = Router::new();
    for page in PAGES {
        router = router.route(page, get(shell_page));
    }
    router
        .merge(platform::web::assets::<Shell>("shell"))
        .merge(platform::web::assets::<Admin>("admin"))
}

async fn shell_page() -> Response {
    let Some(file) = Shell::get("index.html") else {
        return platform::error::Problem::internal().into_response();
    };
    let template = String::from_utf8_lossy(&file.data);
    let page = template.replace(
        "<!--importmap-->",
        &format!(
            "<script type=\"importmap\">{}</script>",
            COMPOSITION.import_map
        ),
    );
    let mut response = (StatusCode::OK, page).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(csp) = HeaderValue::from_str(&COMPOSITION.csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{to_bytes, Body};
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(uri: &str) -> Response {
        router()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn every_storefront_and_admin_path_is_the_shell_with_its_import_map_admitted_by_hash() {
        for path in ["/", "/p/some-id", "/orders/1", "/admin", "/admin/orders/1"] {
            let response = get(path).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .to_owned();
            let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
            let page = String::from_utf8(body.to_vec()).unwrap();
            let start = page.find("<script type=\"importmap\">").unwrap() + 25;
            let end = start + page[start..].find("</script>").unwrap();
            let map = &page[start..end];
            let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(map));
            assert!(csp.contains(&format!("'sha256-{hash}'")), "{csp}");
            assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
            let imports: serde_json::Value = serde_json::from_str(map).unwrap();
            assert_eq!(imports["imports"]["agora/cart"], "/ui/cart/index.js");
            assert_eq!(imports["imports"]["agora/kit"], "/ui/shell/kit.js");
        }
    }

    #[tokio::test]
    async fn the_gateways_own_micro_frontends_are_served_and_others_are_not_here() {
        assert_eq!(get("/ui/shell/kit.js").await.status(), StatusCode::OK);
        assert_eq!(get("/ui/admin/index.js").await.status(), StatusCode::OK);
        assert_eq!(
            get("/ui/shell/nothing.js").await.status(),
            StatusCode::NOT_FOUND
        );
        // Not a page: the shell is not served for unknown paths (API clients get a 404 problem).
        assert_eq!(get("/cartx").await.status(), StatusCode::NOT_FOUND);
    }
}
