//! The error answers the shared layers and extractors give on every route, written into each
//! operation of a spec, so that the spec lists every status a client can get and not only the ones
//! a handler returns itself.
use utoipa::openapi::path::Operation;
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};
use utoipa::OpenApi as _;

use crate::error::{FieldError, Problem, PROBLEM_JSON};

#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(Problem, FieldError)))]
struct ProblemSchemas;

/// A service's OpenAPI document before its routes are added: its title and description, the
/// platform's version and licence, and the bearer scheme its secured routes name.
pub fn document(title: &str, description: &str) -> OpenApi {
    use utoipa::openapi::{InfoBuilder, LicenseBuilder, OpenApiBuilder};
    use utoipa::Modify;
    let mut openapi = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title(title)
                .description(Some(description))
                .version(env!("CARGO_PKG_VERSION"))
                .license(Some(
                    LicenseBuilder::new()
                        .name(env!("CARGO_PKG_LICENSE"))
                        .identifier(Some(env!("CARGO_PKG_LICENSE")))
                        .build(),
                )),
        )
        .build();
    crate::http::BearerAuth.modify(&mut openapi);
    openapi
}

/// Adds to every operation the problem+json answers it can get from outside its handler: a body
/// that is not JSON (400), too large (413), without a JSON content type (415) or of the wrong
/// shape (422); a path or query parameter that does not parse (400); no or a bad token (401), and a
/// token without a scope the operation names (403). Statuses an operation already documents keep
/// their own description.
pub fn document_shared_errors(openapi: &mut OpenApi) {
    openapi.merge(ProblemSchemas::openapi());
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            add_shared_errors(operation);
        }
    }
}

fn add_shared_errors(operation: &mut Operation) {
    let mut statuses = Vec::new();
    if operation.request_body.is_some() {
        statuses.extend([
            ("400", "The body is not valid JSON"),
            ("413", "The body is larger than the service accepts"),
            ("415", "The body is not sent as `application/json`"),
            ("422", "The body does not have the expected shape"),
        ]);
    }
    if operation
        .parameters
        .as_ref()
        .is_some_and(|parameters| !parameters.is_empty())
    {
        statuses.push(("400", "A parameter does not parse"));
    }
    let security = operation.security.as_deref().unwrap_or_default();
    if !security.is_empty() {
        statuses.push(("401", "No access token, or an invalid or expired one"));
    }
    // A requirement serializes as `{"bearer": ["scope", ...]}`.
    let scoped = security.iter().any(|requirement| {
        serde_json::to_value(requirement)
            .ok()
            .and_then(|v| v.as_object().cloned())
            .is_some_and(|schemes| {
                schemes
                    .values()
                    .any(|s| s.as_array().is_some_and(|s| !s.is_empty()))
            })
    });
    if scoped {
        statuses.push((
            "403",
            "The token lacks the role or scope the operation needs",
        ));
    }
    for (status, description) in statuses {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::T(problem_response(description)));
    }
}

fn problem_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}
