//! `/products`: the catalog and its search. Reads are public; writes need an admin.
use std::collections::BTreeMap;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use platform::auth::Admin;
use platform::error::{Problem, Violations};
use platform::extract::{Json, Query};
use platform::pagination::{PageQuery, Paginated};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::{search_words, Attributes, Description, Money, ProductName, Sku, Slug};
use crate::error::ApiError;
use crate::storage::{NewProduct, Position, ProductPatch, ProductRow, SearchQuery, Sort};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search, create))
        .routes(routes!(get_one, update, delete))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AvailabilityView {
    /// `unknown` until inventory reports stock for the product.
    status: String,
    available: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductView {
    id: String,
    sku: String,
    name: String,
    description: String,
    price: Money,
    category: String,
    attributes: BTreeMap<String, String>,
    availability: AvailabilityView,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
}

impl From<ProductRow> for ProductView {
    fn from(row: ProductRow) -> Self {
        let attributes = row.attributes();
        Self {
            id: row.id,
            sku: row.sku,
            name: row.name,
            description: row.description,
            price: Money {
                amount: row.price_amount,
                currency: row.currency,
            },
            category: row.category,
            attributes,
            availability: AvailabilityView {
                status: row.availability_status,
                available: row.available,
            },
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
        }
    }
}

/// The product's `ETag`: its version, which `If-Match` names, then its availability, which stock
/// events change without a new version. A representation tag that left availability out would
/// answer a browser's revalidation with 304 and keep showing the old stock.
fn etag(row: &ProductRow) -> HeaderValue {
    let available = row
        .available
        .map_or_else(|| "-".to_owned(), |n| n.to_string());
    HeaderValue::from_str(&format!(
        "\"{}.{}.{available}\"",
        row.version, row.availability_status
    ))
    .unwrap_or(HeaderValue::from_static("\"0\""))
}

/// A product with its `ETag`.
fn with_etag(status: StatusCode, row: ProductRow) -> Response {
    let tag = etag(&row);
    let mut response = (status, Json(ProductView::from(row))).into_response();
    response.headers_mut().insert(header::ETAG, tag);
    response
}

/// Ids are UUIDs; anything else cannot name a product.
fn id_in_path(text: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(text)
        .map(|id| id.to_string())
        .map_err(|_| Problem::bad_request("The product id is not a UUID.").into())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Words to find in names and descriptions (case-insensitive; the last word may be a prefix).
    q: Option<String>,
    /// A category slug; its subcategories are included. An unknown one matches nothing.
    category: Option<String>,
    /// Minimum price in minor units.
    min_price: Option<i64>,
    /// Maximum price in minor units.
    max_price: Option<i64>,
    /// Only products inventory reports in stock (true) or not (false).
    in_stock: Option<bool>,
    /// `relevance` (default with `q`), `price`, `-price`, `name`, `newest` (default without `q`).
    sort: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Searches the catalog; every match appears exactly once across pages. A page shows a product
/// or category change made through the replica that serves it at once; one made through another
/// replica, and availability, within a second (pages are kept that long). A product by id is
/// always read fresh.
#[utoipa::path(get, path = "/products", tag = "products", params(SearchParams),
    responses((status = 200, body = Paginated<ProductView>),
        (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn search(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    Query(params): Query<SearchParams>,
) -> Result<Response, ApiError> {
    // Taken before the read: a change committed while it runs leaves the page stale (`pages.rs`).
    let (changes, read_at) = (state.store.changes(), Instant::now());
    let key = raw.unwrap_or_default();
    let kept = state.pages.get(&key, changes);
    state.pages.count(kept.is_some());
    let body = match kept {
        Some(body) => body,
        None => {
            let page = search_page(&state, params).await?;
            // Strings, numbers and string maps always serialize; a failure would be a bug here.
            let body = serde_json::to_vec(&page).map_err(|e| {
                tracing::error!(error = %e, "a page of products did not serialize");
                Problem::internal()
            })?;
            let body = Bytes::from(body);
            // A change committed during the read has made this page stale already.
            if state.store.changes() == changes {
                state.pages.put(key, changes, read_at, body.clone());
            }
            body
        }
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// A page of a search, read from the store.
async fn search_page(
    state: &AppState,
    params: SearchParams,
) -> Result<Paginated<ProductView>, ApiError> {
    let words = params.q.as_deref().map(search_words).unwrap_or_default();
    let sort = match params.sort.as_deref() {
        None if words.is_empty() => Sort::Newest,
        None | Some("relevance") => Sort::Relevance,
        Some("price") => Sort::Price,
        Some("-price") => Sort::PriceDesc,
        Some("name") => Sort::Name,
        Some("newest") => Sort::Newest,
        Some(other) => {
            return Err(Problem::bad_request(format!(
                "Unknown sort `{other}`: use relevance, price, -price, name or newest."
            ))
            .into())
        }
    };
    if let (Some(min), Some(max)) = (params.min_price, params.max_price) {
        if min > max {
            return Err(Problem::bad_request("`min_price` is above `max_price`.").into());
        }
    }
    let page = PageQuery {
        limit: params.limit,
        cursor: params.cursor.clone(),
    }
    .parse::<Position>()?;
    let cursor_fits = matches!(
        (&page.after, sort),
        (None, _)
            | (Some(Position::Rank(..)), Sort::Relevance)
            | (Some(Position::Price(..)), Sort::Price | Sort::PriceDesc)
            | (Some(Position::Name(..)), Sort::Name)
            | (Some(Position::Id(..)), Sort::Newest)
    );
    if !cursor_fits {
        return Err(Problem::bad_request("The cursor belongs to another sort order.").into());
    }
    // Without words, relevance has nothing to rank: newest first instead.
    let sort = if sort == Sort::Relevance && words.is_empty() {
        Sort::Newest
    } else {
        sort
    };
    let category = match params.category.as_deref() {
        None => None,
        Some(slug) => match Slug::parse(slug) {
            Ok(slug) => Some(slug),
            Err(_) => {
                return Ok(Paginated {
                    items: Vec::new(),
                    next_cursor: None,
                })
            }
        },
    };
    let fetch = page.fetch_limit();
    let hits = state
        .store
        .search(&SearchQuery {
            words,
            category,
            min_price: params.min_price,
            max_price: params.max_price,
            in_stock: params.in_stock,
            sort,
            after: page.after,
            fetch,
        })
        .await?;
    Ok(
        Paginated::from_rows(hits, page.limit, |hit| hit.position(sort))
            .map(|hit| ProductView::from(hit.product)),
    )
}

/// One product, with its version as `ETag`.
#[utoipa::path(get, path = "/products/{id}", tag = "products",
    responses((status = 200, body = ProductView, headers(("ETag" = String))),
        (status = 304),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = id_in_path(&id)?;
    let row = state
        .store
        .product(&id)
        .await?
        .ok_or(ApiError::NotFound("product"))?;
    let tag = etag(&row);
    if headers.get(header::IF_NONE_MATCH) == Some(&tag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response());
    }
    Ok(with_etag(StatusCode::OK, row))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceBody {
    amount: i64,
    currency: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProduct {
    sku: String,
    name: String,
    #[serde(default)]
    description: String,
    price: PriceBody,
    category: String,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
}

/// Adds a product (admin).
#[utoipa::path(post, path = "/products", tag = "products", request_body = CreateProduct,
    security(("bearer" = [])),
    responses((status = 201, body = ProductView, headers(("ETag" = String), ("Location" = String))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn create(
    State(state): State<AppState>,
    _admin: Admin,
    Json(body): Json<CreateProduct>,
) -> Result<Response, ApiError> {
    let mut v = Violations::new();
    let sku = v.check("sku", Sku::parse(&body.sku));
    let name = v.check("name", ProductName::parse(&body.name));
    let description = v.check("description", Description::parse(&body.description, 5000));
    let price = match Money::parse(body.price.amount, &body.price.currency) {
        Ok(price) => Some(price),
        Err(errors) => {
            for (field, message) in errors {
                v.add(field, message);
            }
            None
        }
    };
    let category = v.check("category", Slug::parse(&body.category));
    let attributes = v.check("attributes", Attributes::parse(body.attributes));
    let (Some(sku), Some(name), Some(description), Some(price), Some(category), Some(attributes)) =
        (sku, name, description, price, category, attributes)
    else {
        return Err(v.into_problem().into());
    };
    let row = state
        .store
        .create_product(&NewProduct {
            sku,
            name,
            description,
            price,
            category,
            attributes,
        })
        .await?;
    let location = format!("/products/{}", row.id);
    let mut response = with_etag(StatusCode::CREATED, row);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProduct {
    name: Option<String>,
    description: Option<String>,
    price: Option<PriceBody>,
    category: Option<String>,
    attributes: Option<BTreeMap<String, String>>,
    /// Not changeable: sending it is a 422.
    #[schema(value_type = Option<String>)]
    sku: Option<Value>,
}

/// The version an `If-Match` header names (an `ETag` as read, `"3.in_stock.12"`, or just the
/// version, `"3"`, `W/"3"`); `None` for `*` or no header.
fn expected_version(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(None);
    }
    let tag = text.trim_start_matches("W/").trim_matches('"');
    tag.split('.')
        .next()
        .unwrap_or(tag)
        .parse::<i64>()
        .map(Some)
        .map_err(|_| ApiError::Store(crate::storage::StoreError::VersionMismatch))
}

/// Changes a product (admin). Send the `ETag` you read as `If-Match` to be sure you do not
/// overwrite someone else's change: a stale one is a 412 and changes nothing.
#[utoipa::path(patch, path = "/products/{id}", tag = "products", request_body = UpdateProduct,
    security(("bearer" = [])),
    params(("If-Match" = Option<String>, Header, description = "The ETag last read")),
    responses((status = 200, body = ProductView, headers(("ETag" = String))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn update(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<UpdateProduct>,
) -> Result<Response, ApiError> {
    let id = id_in_path(&id)?;
    let mut v = Violations::new();
    if body.sku.is_some() {
        v.add("sku", "cannot be changed; create a new product instead");
    }
    let mut patch = ProductPatch::default();
    if let Some(name) = &body.name {
        patch.name = v.check("name", ProductName::parse(name));
    }
    if let Some(description) = &body.description {
        patch.description = v.check("description", Description::parse(description, 5000));
    }
    if let Some(price) = &body.price {
        match Money::parse(price.amount, &price.currency) {
            Ok(money) => patch.price = Some(money),
            Err(errors) => {
                for (field, message) in errors {
                    v.add(field, message);
                }
            }
        }
    }
    if let Some(category) = &body.category {
        patch.category = v.check("category", Slug::parse(category));
    }
    if let Some(attributes) = body.attributes {
        patch.attributes = v.check("attributes", Attributes::parse(attributes));
    }
    v.finish()?;
    // An invalid body is the client's first mistake to hear about (422), before a stale ETag (412).
    let expected = expected_version(&headers)?;
    let row = state
        .store
        .update_product(&id, expected, &patch)
        .await
        .map_err(|e| match e {
            crate::storage::StoreError::NotFound => ApiError::NotFound("product"),
            other => other.into(),
        })?;
    Ok(with_etag(StatusCode::OK, row))
}

/// Removes a product from the catalog (admin). Its SKU stays taken, so that orders' snapshots of
/// it never point at another product.
#[utoipa::path(delete, path = "/products/{id}", tag = "products",
    security(("bearer" = [])),
    responses((status = 204),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn delete(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = id_in_path(&id)?;
    state.store.delete_product(&id).await.map_err(|e| match e {
        crate::storage::StoreError::NotFound => ApiError::NotFound("product"),
        other => other.into(),
    })?;
    Ok(StatusCode::NO_CONTENT)
}
