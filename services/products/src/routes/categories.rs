//! `/categories`: the category tree. Reads are public; writes need an admin.
use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use platform::auth::Admin;
use platform::error::{Problem, Violations};
use platform::extract::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::{CategoryName, Description, Slug};
use crate::error::ApiError;
use crate::storage::{Category, CategoryPatch, NewCategory};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, delete))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryView {
    slug: String,
    name: String,
    description: String,
    parent: Option<String>,
    #[schema(no_recursion)]
    children: Vec<CategoryView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryTree {
    /// Top-level categories, each with its subcategories nested.
    items: Vec<CategoryView>,
}

/// Nests flat rows under their parents.
fn tree(categories: Vec<Category>) -> Vec<CategoryView> {
    let mut children: BTreeMap<Option<String>, Vec<Category>> = BTreeMap::new();
    for category in categories {
        children
            .entry(category.parent.clone())
            .or_default()
            .push(category);
    }
    fn build(
        parent: Option<String>,
        children: &mut BTreeMap<Option<String>, Vec<Category>>,
    ) -> Vec<CategoryView> {
        children
            .remove(&parent)
            .unwrap_or_default()
            .into_iter()
            .map(|c| {
                let nested = build(Some(c.slug.clone()), children);
                CategoryView {
                    slug: c.slug,
                    name: c.name,
                    description: c.description,
                    parent: c.parent,
                    children: nested,
                }
            })
            .collect()
    }
    build(None, &mut children)
}

fn slug_in_path(text: &str) -> Result<Slug, ApiError> {
    Slug::parse(text).map_err(|_| ApiError::NotFound("category"))
}

/// Every category, as a tree.
#[utoipa::path(get, path = "/categories", tag = "categories",
    responses((status = 200, body = CategoryTree)))]
async fn list(State(state): State<AppState>) -> Result<Json<CategoryTree>, ApiError> {
    let all = state.store.categories().await?;
    Ok(Json(CategoryTree { items: tree(all) }))
}

/// One category with its subcategories.
#[utoipa::path(get, path = "/categories/{slug}", tag = "categories",
    responses((status = 200, body = CategoryView),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_one(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Json<CategoryView>, ApiError> {
    let slug = slug_in_path(&slug)?;
    let all = state.store.categories().await?;
    find(tree(all), slug.as_str())
        .map(Json)
        .ok_or(ApiError::NotFound("category"))
}

fn find(views: Vec<CategoryView>, slug: &str) -> Option<CategoryView> {
    for view in views {
        if view.slug == slug {
            return Some(view);
        }
        if let Some(found) = find(view.children, slug) {
            return Some(found);
        }
    }
    None
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCategory {
    slug: String,
    name: String,
    #[serde(default)]
    description: String,
    parent: Option<String>,
}

/// Creates a category (admin).
#[utoipa::path(post, path = "/categories", tag = "categories", request_body = CreateCategory,
    security(("bearer" = [])),
    responses((status = 201, body = CategoryView),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn create(
    State(state): State<AppState>,
    _admin: Admin,
    Json(body): Json<CreateCategory>,
) -> Result<Response, ApiError> {
    let mut v = Violations::new();
    let slug = v.check("slug", Slug::parse(&body.slug));
    let name = v.check("name", CategoryName::parse(&body.name));
    let description = v.check("description", Description::parse(&body.description, 1000));
    let parent = match &body.parent {
        Some(p) => v.check("parent", Slug::parse(p)).map(Some),
        None => Some(None),
    };
    let (Some(slug), Some(name), Some(description), Some(parent)) =
        (slug, name, description, parent)
    else {
        return Err(v.into_problem().into());
    };
    let created = state
        .store
        .create_category(&NewCategory {
            slug,
            name,
            description,
            parent,
        })
        .await?;
    let location = format!("/categories/{}", created.slug);
    let view = CategoryView {
        slug: created.slug,
        name: created.name,
        description: created.description,
        parent: created.parent,
        children: Vec::new(),
    };
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(view),
    )
        .into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCategory {
    name: Option<String>,
    description: Option<String>,
    /// A slug to move under, or null to move to the top level.
    #[schema(value_type = Option<String>)]
    #[serde(default, deserialize_with = "present")]
    parent: Option<Value>,
}

/// Keeps an explicit `null` (move to the top level) apart from an absent field (leave it).
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// Renames, re-describes or moves a category (admin).
#[utoipa::path(patch, path = "/categories/{slug}", tag = "categories", request_body = UpdateCategory,
    security(("bearer" = [])),
    responses((status = 200, body = CategoryView),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn update(
    State(state): State<AppState>,
    _admin: Admin,
    Path(slug): Path<String>,
    Json(body): Json<UpdateCategory>,
) -> Result<Json<CategoryView>, ApiError> {
    let slug = slug_in_path(&slug)?;
    let mut v = Violations::new();
    let mut patch = CategoryPatch::default();
    if let Some(name) = &body.name {
        patch.name = v.check("name", CategoryName::parse(name));
    }
    if let Some(description) = &body.description {
        patch.description = v.check("description", Description::parse(description, 1000));
    }
    match &body.parent {
        None => {}
        Some(Value::Null) => patch.parent = Some(None),
        Some(Value::String(parent)) => {
            patch.parent = v.check("parent", Slug::parse(parent)).map(Some);
        }
        Some(_) => v.add("parent", "must be a category slug or null"),
    }
    v.finish()?;
    let updated = state
        .store
        .update_category(&slug, &patch)
        .await
        .map_err(|e| match e {
            crate::storage::StoreError::NotFound => ApiError::NotFound("category"),
            other => other.into(),
        })?;
    Ok(Json(CategoryView {
        slug: updated.slug,
        name: updated.name,
        description: updated.description,
        parent: updated.parent,
        children: Vec::new(),
    }))
}

/// Deletes an empty category (admin): one with subcategories or products is a 409.
#[utoipa::path(delete, path = "/categories/{slug}", tag = "categories",
    security(("bearer" = [])),
    responses((status = 204),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")))]
async fn delete(
    State(state): State<AppState>,
    _admin: Admin,
    Path(slug): Path<String>,
) -> Result<StatusCode, ApiError> {
    let slug = slug_in_path(&slug)?;
    state
        .store
        .delete_category(&slug)
        .await
        .map_err(|e| match e {
            crate::storage::StoreError::NotFound => ApiError::NotFound("category"),
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}
