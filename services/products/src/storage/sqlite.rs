//! The catalog on SQLite: FTS5 for search, kept in step with `products` in the same transaction.
use async_trait::async_trait;
use chrono::Utc;
use platform::db::{is_foreign_key_violation, is_unique_violation, sqlite_write};
use platform::events::{store as events, Event};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};

use super::*;

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }
}

async fn index(tx: &mut SqliteConnection, row: &ProductRow) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM products_fts WHERE product_id = $1")
        .bind(&row.id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO products_fts (product_id, name, description) VALUES ($1, $2, $3)")
        .bind(&row.id)
        .bind(&row.name)
        .bind(&row.description)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

async fn fetch_product(
    tx: &mut SqliteConnection,
    id: &str,
) -> Result<Option<ProductRow>, sqlx::Error> {
    sqlx::query_as(&select_product())
        .bind(id)
        .fetch_optional(tx)
        .await
}

async fn ancestors(tx: &mut SqliteConnection, slug: &str) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as(ANCESTORS).bind(slug).fetch_all(tx).await?;
    Ok(rows.into_iter().map(|(s,)| s).collect())
}

fn map_write_error(e: sqlx::Error, what: &str) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Conflict(format!("{what} already exists"))
    } else if is_foreign_key_violation(&e) {
        StoreError::Invalid {
            field: "category".into(),
            message: "no such category".into(),
        }
    } else {
        StoreError::Database(e)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_category(&self, c: &NewCategory) -> Result<Category, StoreError> {
        let mut tx = sqlite_write(&self.pool).await?;
        if let Some(parent) = &c.parent {
            let found: Option<Category> = sqlx::query_as(SELECT_CATEGORY)
                .bind(parent.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            if found.is_none() {
                return Err(StoreError::Invalid {
                    field: "parent".into(),
                    message: format!("no category `{parent}`"),
                });
            }
        }
        sqlx::query(INSERT_CATEGORY)
            .bind(c.slug.as_str())
            .bind(&c.name.0)
            .bind(&c.description.0)
            .bind(c.parent.as_ref().map(Slug::as_str))
            .bind(Utc::now())
            .execute(&mut *tx)
            .await
            .map_err(|e| map_write_error(e, &format!("category `{}`", c.slug)))?;
        tx.commit().await?;
        Ok(Category {
            slug: c.slug.as_str().to_owned(),
            name: c.name.0.clone(),
            description: c.description.0.clone(),
            parent: c.parent.as_ref().map(|p| p.as_str().to_owned()),
        })
    }

    async fn categories(&self) -> Result<Vec<Category>, StoreError> {
        Ok(sqlx::query_as(SELECT_CATEGORIES)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn category(&self, slug: &Slug) -> Result<Option<Category>, StoreError> {
        Ok(sqlx::query_as(SELECT_CATEGORY)
            .bind(slug.as_str())
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn update_category(
        &self,
        slug: &Slug,
        patch: &CategoryPatch,
    ) -> Result<Category, StoreError> {
        let mut tx = sqlite_write(&self.pool).await?;
        let current: Category = sqlx::query_as(SELECT_CATEGORY)
            .bind(slug.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let parent = match &patch.parent {
            Some(Some(parent)) => {
                let chain = ancestors(&mut tx, parent.as_str()).await?;
                if chain.is_empty() {
                    return Err(StoreError::Invalid {
                        field: "parent".into(),
                        message: format!("no category `{parent}`"),
                    });
                }
                if chain.iter().any(|s| s == slug.as_str()) {
                    return Err(StoreError::Invalid {
                        field: "parent".into(),
                        message: "a category cannot be inside itself".into(),
                    });
                }
                Some(parent.as_str().to_owned())
            }
            Some(None) => None,
            None => current.parent.clone(),
        };
        let updated = Category {
            slug: current.slug,
            name: patch.name.as_ref().map_or(current.name, |n| n.0.clone()),
            description: patch
                .description
                .as_ref()
                .map_or(current.description, |d| d.0.clone()),
            parent,
        };
        sqlx::query(UPDATE_CATEGORY)
            .bind(&updated.slug)
            .bind(&updated.name)
            .bind(&updated.description)
            .bind(&updated.parent)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(updated)
    }

    async fn delete_category(&self, slug: &Slug) -> Result<(), StoreError> {
        let mut tx = sqlite_write(&self.pool).await?;
        let (children,): (i64,) = sqlx::query_as(COUNT_CHILDREN)
            .bind(slug.as_str())
            .fetch_one(&mut *tx)
            .await?;
        let (products,): (i64,) = sqlx::query_as(COUNT_PRODUCTS_IN)
            .bind(slug.as_str())
            .fetch_one(&mut *tx)
            .await?;
        if children > 0 || products > 0 {
            return Err(StoreError::Conflict(format!(
                "category `{slug}` has {children} subcategories and {products} products (deleted products count too)"
            )));
        }
        let done = sqlx::query(DELETE_CATEGORY)
            .bind(slug.as_str())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    async fn create_product(&self, p: &NewProduct) -> Result<ProductRow, StoreError> {
        let id = uuid::Uuid::now_v7().to_string();
        let attributes = serde_json::to_string(&p.attributes.0).unwrap_or_else(|_| "{}".into());
        let mut tx = sqlite_write(&self.pool).await?;
        sqlx::query(INSERT_PRODUCT)
            .bind(&id)
            .bind(p.sku.as_str())
            .bind(&p.name.0)
            .bind(&p.description.0)
            .bind(p.price.amount)
            .bind(&p.price.currency)
            .bind(p.category.as_str())
            .bind(attributes)
            .bind(Utc::now())
            .execute(&mut *tx)
            .await
            .map_err(|e| map_write_error(e, &format!("a product with SKU {}", p.sku.as_str())))?;
        let row = fetch_product(&mut tx, &id)
            .await?
            .ok_or(StoreError::NotFound)?;
        index(&mut tx, &row).await?;
        events::enqueue_sqlite(&mut tx, &product_event("product_created", &row)).await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn product(&self, id: &str) -> Result<Option<ProductRow>, StoreError> {
        Ok(sqlx::query_as(&select_product())
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn update_product(
        &self,
        id: &str,
        expected: Option<i64>,
        patch: &ProductPatch,
    ) -> Result<ProductRow, StoreError> {
        let mut tx = sqlite_write(&self.pool).await?;
        let current = fetch_product(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        if expected.is_some_and(|v| v != current.version) {
            return Err(StoreError::VersionMismatch);
        }
        let price_changed = patch
            .price
            .as_ref()
            .is_some_and(|p| p.amount != current.price_amount || p.currency != current.currency);
        let (amount, currency) = patch
            .price
            .as_ref()
            .map_or((current.price_amount, current.currency.clone()), |p| {
                (p.amount, p.currency.clone())
            });
        let attributes = match &patch.attributes {
            Some(a) => serde_json::to_string(&a.0).unwrap_or_else(|_| "{}".into()),
            None => current.attributes.clone(),
        };
        sqlx::query(UPDATE_PRODUCT)
            .bind(id)
            .bind(patch.name.as_ref().map_or(&current.name, |n| &n.0))
            .bind(
                patch
                    .description
                    .as_ref()
                    .map_or(&current.description, |d| &d.0),
            )
            .bind(amount)
            .bind(currency)
            .bind(
                patch
                    .category
                    .as_ref()
                    .map_or(current.category.as_str(), Slug::as_str),
            )
            .bind(attributes)
            .bind(Utc::now())
            .execute(&mut *tx)
            .await
            .map_err(|e| map_write_error(e, "that product"))?;
        let row = fetch_product(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        index(&mut tx, &row).await?;
        events::enqueue_sqlite(&mut tx, &product_event("product_updated", &row)).await?;
        if price_changed {
            events::enqueue_sqlite(&mut tx, &product_event("price_changed", &row)).await?;
        }
        tx.commit().await?;
        Ok(row)
    }

    async fn delete_product(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = sqlite_write(&self.pool).await?;
        let row = fetch_product(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        sqlx::query(DELETE_PRODUCT)
            .bind(id)
            .bind(Utc::now())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM products_fts WHERE product_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        events::enqueue_sqlite(&mut tx, &product_event("product_deleted", &row)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn search(&self, q: &SearchQuery) -> Result<Vec<Hit>, StoreError> {
        let mut sql: QueryBuilder<Sqlite> = QueryBuilder::new("SELECT * FROM (SELECT p.");
        sql.push(PRODUCT_COLUMNS.replace(", ", ", p."));
        sql.push(", lower(p.name) AS sort_name");
        if q.words.is_empty() {
            sql.push(", 0.0 AS rank FROM products p WHERE p.deleted_at IS NULL");
        } else {
            // Every word must match; the last may be the start of a word (search as you type).
            let last = q.words.len() - 1;
            let expression: Vec<String> = q
                .words
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    if i == last {
                        format!("\"{w}\"*")
                    } else {
                        format!("\"{w}\"")
                    }
                })
                .collect();
            sql.push(", bm25(products_fts, 0.0, 10.0, 1.0) AS rank FROM products p JOIN products_fts f ON f.product_id = p.id WHERE p.deleted_at IS NULL AND products_fts MATCH ");
            sql.push_bind(expression.join(" "));
        }
        super::push_filters(&mut sql, q);
        sql.push(") t");
        super::push_keyset(&mut sql, q);
        Ok(sql.build_query_as().fetch_all(&self.pool).await?)
    }

    async fn apply_availability(&self, event: &Event, a: &Availability) -> Result<(), StoreError> {
        let mut tx = sqlite_write(&self.pool).await?;
        if events::claim_sqlite(&mut tx, crate::NAME, event).await? {
            let status = if a.available > 0 {
                "in_stock"
            } else {
                "out_of_stock"
            };
            sqlx::query(UPDATE_AVAILABILITY)
                .bind(&a.sku)
                .bind(status)
                .bind(a.available)
                .bind(Utc::now())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
