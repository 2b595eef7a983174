//! Request-body extractors whose rejections are problem+json, so a client's mistake always gets a
//! clear 4xx naming what is wrong.
use axum::body::{Body, Bytes};
use axum::extract::rejection::{FormRejection, JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Problem;

/// Like `axum::Json`, but a missing content type is 415, malformed JSON is 400, a body of the
/// wrong shape is 422 and an oversize body is 413, each as problem+json.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(|e| body_problem(e.status(), e.body_text()))?;
        let req = Request::from_parts(parts, Body::from(bytes.clone()));
        match axum::Json::<T>::from_request(req, state).await {
            // serde reads a struct from a JSON array too (fields by position): every Agora request
            // body is an object, so anything else is the wrong shape.
            Ok(_) if bytes.trim_ascii_start().first() != Some(&b'{') => Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-body",
                "The body does not have the expected shape",
            )
            .detail("The body must be a JSON object.")),
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(json_problem(rejection)),
        }
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn json_problem(rejection: JsonRejection) -> Problem {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
        )
        .detail("Send the body as JSON with `Content-Type: application/json`."),
        JsonRejection::JsonSyntaxError(e) => {
            Problem::bad_request(format!("The body is not valid JSON: {}", source_text(&e)))
        }
        JsonRejection::JsonDataError(e) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-body",
            "The body does not have the expected shape",
        )
        .detail(source_text(&e)),
        other => body_problem(other.status(), other.body_text()),
    }
}

/// Like `axum::Form`, with problem+json rejections.
#[derive(Debug, Clone, Copy, Default)]
pub struct Form<T>(pub T);

impl<T, S> FromRequest<S> for Form<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(value)) => Ok(Form(value)),
            Err(FormRejection::InvalidFormContentType(_)) => Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            )
            .detail("Send the body as `application/x-www-form-urlencoded`.")),
            Err(other) => Err(body_problem(other.status(), other.body_text())),
        }
    }
}

fn body_problem(status: StatusCode, text: String) -> Problem {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::new(status, "payload-too-large", "Payload too large")
            .detail("The request body is larger than this service accepts.")
    } else if status.is_client_error() {
        Problem::new(status, "bad-request", "Malformed request").detail(text)
    } else {
        Problem::bad_request(text)
    }
}

/// serde's message without axum's prefix, which names Rust types.
fn source_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        text = inner.to_string();
        source = inner.source();
    }
    text
}

/// Like `axum::extract::Query`, but a query string of the wrong shape is a 400 problem+json.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(Problem::bad_request(
                format!("The query string is invalid: {}", source_text(&e)),
            )),
            Err(other) => Err(Problem::bad_request(other.body_text())),
        }
    }
}
