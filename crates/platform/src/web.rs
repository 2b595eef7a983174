//! A service's micro frontend: the files under its `web/` folder, embedded in its binary and
//! served at `/ui/<name>/` (docs/frontend.md). A release build carries the files; a debug build
//! reads them from disk on each request (rust-embed's behaviour), so a front-end edit needs a reload,
//! not a rebuild.
use std::marker::PhantomData;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use rust_embed::RustEmbed;

use crate::error::Problem;

/// The routes serving `E`'s files at `/ui/<name>/<file>`.
pub fn assets<E: RustEmbed + Send + Sync + 'static>(name: &str) -> Router {
    Router::new().route(
        &format!("/ui/{name}/{{*file}}"),
        get(|Path(file): Path<String>, headers: HeaderMap| async move {
            Files::<E>(PhantomData).serve(&file, &headers)
        }),
    )
}

struct Files<E>(PhantomData<E>);

impl<E: RustEmbed> Files<E> {
    /// One file with its type and a strong ETag from its content hash; `no-cache` so a browser
    /// revalidates and sees a new deploy of this micro frontend at once (a 304 costs no body).
    fn serve(&self, file: &str, headers: &HeaderMap) -> Response {
        let Some(found) = E::get(file) else {
            return Problem::not_found("No such file.").into_response();
        };
        let hash = found.metadata.sha256_hash();
        let etag = format!("\"{}\"", hex::encode(&hash[..16]));
        let cached = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
        let mut response = if cached {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(content_type(file)),
                )],
                found.data.into_owned(),
            )
                .into_response()
        };
        let h = response.headers_mut();
        if let Ok(etag) = HeaderValue::from_str(&etag) {
            h.insert(header::ETAG, etag);
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }
}

/// The media type of a front-end file, by its extension.
pub fn content_type(file: &str) -> &'static str {
    match file.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    #[derive(RustEmbed)]
    #[folder = "tests/web/"]
    struct Sample;

    async fn get(uri: &str, etag: Option<&str>) -> Response {
        let mut request = Request::get(uri);
        if let Some(etag) = etag {
            request = request.header(header::IF_NONE_MATCH, etag);
        }
        assets::<Sample>("sample")
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_file_is_served_with_its_type_and_revalidated_by_etag() {
        let first = get("/ui/sample/index.js", None).await;
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(
            first.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert_eq!(first.headers()[header::CACHE_CONTROL], "no-cache");
        let etag = first.headers()[header::ETAG].to_str().unwrap().to_owned();
        let again = get("/ui/sample/index.js", Some(&etag)).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        let changed = get("/ui/sample/index.js", Some("\"other\"")).await;
        assert_eq!(changed.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn unknown_and_escaping_paths_are_not_found() {
        for uri in [
            "/ui/sample/missing.js",
            "/ui/sample/../Cargo.toml",
            "/ui/sample/%2e%2e/Cargo.toml",
        ] {
            let response = get(uri, None).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{uri}");
        }
    }
}
