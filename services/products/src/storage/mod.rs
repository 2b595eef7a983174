//! The catalog's storage: one trait, implemented once over either database (`platform::db`). All
//! SQL lives in this module; SQL that both dialects accept is written once here, search per
//! dialect in `sqlite.rs` and `postgres.rs`.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use platform::db::{query, Database, Tx};
use platform::events::Event;
use platform::service::Migrations;
use serde::{Deserialize, Serialize};
use sqlx::QueryBuilder;

use crate::domain::{Attributes, CategoryName, Description, Money, ProductName, Sku, Slug};

/// The one store, over either database. What differs between the dialects is search
/// (`sqlite.rs`: an FTS5 table kept in step; `postgres.rs`: a generated `tsvector`).
pub struct DbStore {
    db: Database,
    /// The category tree, so that a listing of a category does not walk it in SQL every time.
    tree: Mutex<TreeCache>,
    /// The order of recent searches' hits, so that a repeated search does not rank every hit
    /// again (`rankings.rs`).
    rankings: Mutex<Rankings>,
    /// Catalog changes this process has committed (`Store::changes`).
    changes: AtomicU64,
}

/// The store over a connected, migrated database.
pub fn open(db: Database) -> Arc<dyn Store> {
    Arc::new(DbStore {
        db,
        tree: Mutex::new(TreeCache::default()),
        rankings: Mutex::new(Rankings::default()),
        changes: AtomicU64::new(0),
    })
}

/// How long a process trusts its copy of the category tree. It drops its copy when it changes a
/// category itself; a change made through another replica shows here within this time (a slug
/// the copy does not know reloads it at once, so a new category is found straight away).
pub const TREE_TTL: Duration = Duration::from_secs(2);

/// The cached tree and a generation that every category change bumps, so that a reader that
/// loaded the tree before a change cannot store its stale copy after it.
#[derive(Default)]
struct TreeCache {
    generation: u64,
    tree: Option<(Instant, Arc<CategoryTree>)>,
}

/// Every category's children, by slug (every slug is a key).
struct CategoryTree {
    children: HashMap<String, Vec<String>>,
}

impl CategoryTree {
    fn new(rows: Vec<(String, Option<String>)>) -> Self {
        let mut children: HashMap<String, Vec<String>> = HashMap::new();
        for (slug, parent) in rows {
            children.entry(slug.clone()).or_default();
            if let Some(parent) = parent {
                children.entry(parent).or_default().push(slug);
            }
        }
        Self { children }
    }

    /// The category and all its subcategories at any depth; `None` for an unknown slug.
    fn subtree(&self, slug: &str) -> Option<Vec<String>> {
        self.children.get(slug)?;
        let mut seen = HashSet::new();
        let mut todo = vec![slug.to_owned()];
        let mut all = Vec::new();
        while let Some(next) = todo.pop() {
            if seen.insert(next.clone()) {
                todo.extend(self.children.get(&next).into_iter().flatten().cloned());
                all.push(next);
            }
        }
        Some(all)
    }
}

impl DbStore {
    fn tree_cache(&self) -> std::sync::MutexGuard<'_, TreeCache> {
        // The cache holds no invariant a panicking holder could break: a poisoned lock is usable.
        self.tree.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn rankings(&self) -> std::sync::MutexGuard<'_, Rankings> {
        // As the tree's: nothing a panicking holder could leave half-done.
        self.rankings.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A page of a search by relevance with nothing but words, from the kept ranking of its words
    /// (ranked once, then kept for [`RANKING_TTL`]) and the page's products read fresh by key;
    /// `None` when the page lies past what a ranking keeps, for the database to rank.
    async fn ranked_page(&self, q: &SearchQuery) -> Result<Option<Vec<Hit>>, StoreError> {
        let words = q.words.join(" ");
        // Each turn either ends or follows a search that gave up ranking these words.
        let ranking = loop {
            // Bound first: the guard must be gone before the awaits below.
            let lookup = self.rankings().get(&words);
            match lookup {
                Lookup::Kept(ranking) => break ranking,
                Lookup::Wait(made) => {
                    if let Some(ranking) = Lookup::wait(made).await {
                        break ranking;
                    }
                }
                Lookup::Rank(ticket) => {
                    let limit = MAX_RANKED as i64 + 1;
                    let hits = match &self.db {
                        Database::Sqlite(pool, _) => sqlite::ranking(pool, &q.words, limit).await?,
                        Database::Postgres(pool) => {
                            postgres::ranking(pool, &q.words, limit).await?
                        }
                    };
                    let ranking = Arc::new(Ranking::new(hits));
                    self.rankings().put(words, ticket, ranking.clone());
                    break ranking;
                }
            }
        };
        let after = match &q.after {
            Some(Position::Rank(rank, id)) => Some((*rank, id.as_str())),
            _ => None,
        };
        let wanted = usize::try_from(q.fetch).unwrap_or(0);
        let Some(rest) = ranking.after(after, wanted) else {
            return Ok(None);
        };
        let mut page = Vec::with_capacity(wanted);
        // Usually one read; more only when products deleted since the ranking leave gaps.
        for chunk in rest.chunks(wanted.max(1)) {
            let mut rows: HashMap<String, ProductRow> = Self::live_products(&self.db, chunk)
                .await?
                .into_iter()
                .map(|row| (row.id.clone(), row))
                .collect();
            for (rank, id) in chunk {
                let Some(product) = rows.remove(id) else {
                    continue;
                };
                page.push(Hit {
                    sort_name: product.name.to_lowercase(),
                    product,
                    rank: *rank,
                });
                if page.len() == wanted {
                    return Ok(Some(page));
                }
            }
        }
        // Ran out of kept hits: the rest are the database's to rank, unless there are none.
        Ok(ranking.complete().then_some(page))
    }

    /// The products of `hits` that are not deleted, in no particular order.
    async fn live_products(
        db: &Database,
        hits: &[(f64, String)],
    ) -> Result<Vec<ProductRow>, sqlx::Error> {
        let marks: Vec<String> = (1..=hits.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT {PRODUCT_COLUMNS} FROM products WHERE deleted_at IS NULL AND id IN ({})",
            marks.join(", ")
        );
        let read = hits
            .iter()
            .fold(query(sql), |read, (_, id)| read.bind(id.clone()));
        read.fetch_all(db).await
    }

    /// Drops the cached tree; called after a category change commits.
    fn forget_tree(&self) {
        let mut cache = self.tree_cache();
        cache.generation += 1;
        cache.tree = None;
        drop(cache);
        self.changed();
    }

    /// Counts a committed catalog change; called after the commit, so that a reader that took
    /// the count before it cannot have read the state before the change under the new count.
    fn changed(&self) {
        self.changes.fetch_add(1, Ordering::Release);
    }

    /// Drops the search rankings and counts the change; called after a product write commits.
    fn product_changed(&self) {
        self.rankings().forget();
        self.changed();
    }

    /// The slugs a listing of `slug` covers, from the cached tree (read again when older than
    /// [`TREE_TTL`] or when it does not know `slug`); `None` when there is no such category.
    async fn subtree(&self, slug: &str) -> Result<Option<Vec<String>>, StoreError> {
        let generation = {
            let cache = self.tree_cache();
            if let Some((loaded, tree)) = &cache.tree {
                if loaded.elapsed() < TREE_TTL {
                    if let Some(slugs) = tree.subtree(slug) {
                        return Ok(Some(slugs));
                    }
                }
            }
            cache.generation
        };
        let rows: Vec<(String, Option<String>)> = query(SELECT_TREE).fetch_all(&self.db).await?;
        let tree = Arc::new(CategoryTree::new(rows));
        let slugs = tree.subtree(slug);
        let mut cache = self.tree_cache();
        if cache.generation == generation {
            cache.tree = Some((Instant::now(), tree));
        }
        Ok(slugs)
    }

    async fn fetch_product(tx: &mut Tx, id: &str) -> Result<Option<ProductRow>, sqlx::Error> {
        query(select_product()).bind(id).fetch_optional(tx).await
    }

    async fn ancestors(tx: &mut Tx, slug: &str) -> Result<Vec<String>, sqlx::Error> {
        let rows: Vec<(String,)> = query(ANCESTORS).bind(slug).fetch_all(tx).await?;
        Ok(rows.into_iter().map(|(s,)| s).collect())
    }

    /// Keeps the search index in step with `row` (SQLite only: PostgreSQL generates its column).
    async fn index(tx: &mut Tx, row: &ProductRow) -> Result<(), sqlx::Error> {
        match tx {
            Tx::Sqlite(tx) => sqlite::index(tx.connection().await?, row).await,
            Tx::Postgres(_) => Ok(()),
        }
    }

    async fn unindex(tx: &mut Tx, id: &str) -> Result<(), sqlx::Error> {
        match tx {
            Tx::Sqlite(tx) => sqlite::unindex(tx.connection().await?, id).await,
            Tx::Postgres(_) => Ok(()),
        }
    }

    async fn search_rows(&self, q: &SearchQuery) -> Result<Vec<Hit>, StoreError> {
        if !q.words.is_empty() && q.sort == Sort::Relevance && !q.narrowed() {
            if let Some(page) = self.ranked_page(q).await? {
                return Ok(page);
            }
        }
        let categories = match &q.category {
            None => None,
            // An unknown category matches nothing.
            Some(slug) => match self.subtree(slug.as_str()).await? {
                Some(slugs) => Some(slugs),
                None => return Ok(Vec::new()),
            },
        };
        let scope = Scope {
            q,
            categories: categories.as_deref(),
        };
        Ok(match &self.db {
            Database::Sqlite(pool, _) => sqlite::search_rows(pool, &scope).await?,
            Database::Postgres(pool) => postgres::search_rows(pool, &scope).await?,
        })
    }
}

#[async_trait]
impl Store for DbStore {
    async fn create_category(&self, c: &NewCategory) -> Result<Category, StoreError> {
        let mut tx = self.db.begin_write().await?;
        if let Some(parent) = &c.parent {
            let found: Option<Category> = query(SELECT_CATEGORY)
                .bind(parent.as_str())
                .fetch_optional(&mut tx)
                .await?;
            if found.is_none() {
                return Err(StoreError::Invalid {
                    field: "parent".into(),
                    message: format!("no category `{parent}`"),
                });
            }
        }
        query(INSERT_CATEGORY)
            .bind(c.slug.as_str())
            .bind(&c.name.0)
            .bind(&c.description.0)
            .bind(c.parent.as_ref().map(Slug::as_str))
            .bind(Utc::now())
            .execute(&mut tx)
            .await
            .map_err(|e| map_write_error(e, &format!("category `{}`", c.slug)))?;
        tx.commit().await?;
        self.forget_tree();
        Ok(Category {
            slug: c.slug.as_str().to_owned(),
            name: c.name.0.clone(),
            description: c.description.0.clone(),
            parent: c.parent.as_ref().map(|p| p.as_str().to_owned()),
        })
    }

    async fn categories(&self) -> Result<Vec<Category>, StoreError> {
        Ok(query(SELECT_CATEGORIES).fetch_all(&self.db).await?)
    }

    async fn category(&self, slug: &Slug) -> Result<Option<Category>, StoreError> {
        Ok(query(SELECT_CATEGORY)
            .bind(slug.as_str())
            .fetch_optional(&self.db)
            .await?)
    }

    async fn update_category(
        &self,
        slug: &Slug,
        patch: &CategoryPatch,
    ) -> Result<Category, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let current: Category = query(SELECT_CATEGORY)
            .bind(slug.as_str())
            .fetch_optional(&mut tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let parent = match &patch.parent {
            Some(Some(parent)) => {
                let chain = Self::ancestors(&mut tx, parent.as_str()).await?;
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
        query(UPDATE_CATEGORY)
            .bind(&updated.slug)
            .bind(&updated.name)
            .bind(&updated.description)
            .bind(&updated.parent)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        self.forget_tree();
        Ok(updated)
    }

    async fn delete_category(&self, slug: &Slug) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().await?;
        let (children,): (i64,) = query(COUNT_CHILDREN)
            .bind(slug.as_str())
            .fetch_one(&mut tx)
            .await?;
        let (products,): (i64,) = query(COUNT_PRODUCTS_IN)
            .bind(slug.as_str())
            .fetch_one(&mut tx)
            .await?;
        if children > 0 || products > 0 {
            return Err(StoreError::Conflict(format!(
                "category `{slug}` has {children} subcategories and {products} products (deleted products count too)"
            )));
        }
        let done = query(DELETE_CATEGORY)
            .bind(slug.as_str())
            .execute(&mut tx)
            .await?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        self.forget_tree();
        Ok(())
    }

    async fn create_product(&self, p: &NewProduct) -> Result<ProductRow, StoreError> {
        let id = uuid::Uuid::now_v7().to_string();
        let attributes = serde_json::to_string(&p.attributes.0).unwrap_or_else(|_| "{}".into());
        let mut tx = self.db.begin_write().await?;
        query(INSERT_PRODUCT)
            .bind(&id)
            .bind(p.sku.as_str())
            .bind(&p.name.0)
            .bind(&p.description.0)
            .bind(p.price.amount)
            .bind(&p.price.currency)
            .bind(p.category.as_str())
            .bind(attributes)
            .bind(Utc::now())
            .execute(&mut tx)
            .await
            .map_err(|e| map_write_error(e, &format!("a product with SKU {}", p.sku.as_str())))?;
        let row = Self::fetch_product(&mut tx, &id)
            .await?
            .ok_or(StoreError::NotFound)?;
        Self::index(&mut tx, &row).await?;
        tx.enqueue(&product_event("product_created", &row)).await?;
        tx.commit().await?;
        self.product_changed();
        Ok(row)
    }

    async fn product(&self, id: &str) -> Result<Option<ProductRow>, StoreError> {
        Ok(query(select_product())
            .bind(id)
            .fetch_optional(&self.db)
            .await?)
    }

    async fn update_product(
        &self,
        id: &str,
        expected: Option<i64>,
        patch: &ProductPatch,
    ) -> Result<ProductRow, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let current = Self::fetch_product(&mut tx, id)
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
        query(UPDATE_PRODUCT)
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
            .execute(&mut tx)
            .await
            .map_err(|e| map_write_error(e, "that product"))?;
        let row = Self::fetch_product(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        Self::index(&mut tx, &row).await?;
        tx.enqueue(&product_event("product_updated", &row)).await?;
        if price_changed {
            tx.enqueue(&product_event("price_changed", &row)).await?;
        }
        tx.commit().await?;
        self.product_changed();
        Ok(row)
    }

    async fn delete_product(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().await?;
        let row = Self::fetch_product(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        query(DELETE_PRODUCT)
            .bind(id)
            .bind(Utc::now())
            .execute(&mut tx)
            .await?;
        Self::unindex(&mut tx, id).await?;
        tx.enqueue(&product_event("product_deleted", &row)).await?;
        tx.commit().await?;
        self.product_changed();
        Ok(())
    }

    async fn search(&self, q: &SearchQuery) -> Result<Vec<Hit>, StoreError> {
        self.search_rows(q).await
    }

    async fn apply_availability(&self, event: &Event, a: &Availability) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().await?;
        // Availability is the SKU's latest level: an older level delivered after a newer one
        // (replicas, redelivery) changes nothing. With the event's position, the SKU's position
        // alone decides, and a redelivery is not newer than itself; the inbox claim is only for
        // an event without one (it was one more statement, and one more kept row, per stock
        // change).
        let apply = match a.position {
            Some(position) => tx.advance(crate::NAME, event, position).await?,
            None => tx.claim(crate::NAME, event).await?,
        };
        if apply {
            let status = if a.available > 0 {
                "in_stock"
            } else {
                "out_of_stock"
            };
            // Nothing reads it back: on SQLite it goes with the COMMIT, one call fewer a level.
            tx.execute_later(
                query(UPDATE_AVAILABILITY)
                    .bind(&a.sku)
                    .bind(status)
                    .bind(a.available)
                    .bind(Utc::now()),
            )
            .await?;
        }
        // Not counted as a change (`Store::changes`): with every sale moving a level, kept pages
        // would never outlive the next checkout; a listing shows a level within `PAGE_TTL`.
        tx.commit().await?;
        Ok(())
    }

    fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }
}

/// A failed write as the API should see it: a taken SKU or slug, or an unknown category.
fn map_write_error(e: sqlx::Error, what: &str) -> StoreError {
    if platform::db::is_unique_violation(&e) {
        StoreError::Conflict(format!("{what} already exists"))
    } else if platform::db::is_foreign_key_violation(&e) {
        StoreError::Invalid {
            field: "category".into(),
            message: "no such category".into(),
        }
    } else {
        StoreError::Database(e)
    }
}

mod postgres;
mod rankings;
mod sqlite;

pub use rankings::RANKING_TTL;
use rankings::{Lookup, Ranking, Rankings, MAX_RANKED};

/// The service's schema per dialect, and the platform's event tables.
pub static MIGRATIONS: Migrations = Migrations {
    sqlite: sqlx::migrate!("./migrations/sqlite"),
    postgres: sqlx::migrate!("./migrations/postgres"),
    events: true,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    /// A request that refers to something that does not exist (an unknown category, say).
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("the version does not match")]
    VersionMismatch,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Category {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub parent: Option<String>,
}

pub struct NewCategory {
    pub slug: Slug,
    pub name: CategoryName,
    pub description: Description,
    pub parent: Option<Slug>,
}

/// A change to a category; `parent: Some(None)` moves it to the top level.
#[derive(Default)]
pub struct CategoryPatch {
    pub name: Option<CategoryName>,
    pub description: Option<Description>,
    pub parent: Option<Option<Slug>>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProductRow {
    pub id: String,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub price_amount: i64,
    pub currency: String,
    pub category: String,
    pub attributes: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub availability_status: String,
    pub available: Option<i64>,
}

impl ProductRow {
    pub fn attributes(&self) -> BTreeMap<String, String> {
        serde_json::from_str(&self.attributes).unwrap_or_default()
    }
}

pub struct NewProduct {
    pub sku: Sku,
    pub name: ProductName,
    pub description: Description,
    pub price: Money,
    pub category: Slug,
    pub attributes: Attributes,
}

#[derive(Default)]
pub struct ProductPatch {
    pub name: Option<ProductName>,
    pub description: Option<Description>,
    pub price: Option<Money>,
    pub category: Option<Slug>,
    pub attributes: Option<Attributes>,
}

/// Orders of a search result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Relevance,
    Price,
    PriceDesc,
    Name,
    Newest,
}

/// Where a page ends, as the keyset of its sort; what a cursor encodes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Position {
    Rank(f64, String),
    Price(i64, String),
    Name(String, String),
    Id(String),
}

pub struct SearchQuery {
    pub words: Vec<String>,
    pub category: Option<Slug>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub in_stock: Option<bool>,
    pub sort: Sort,
    pub after: Option<Position>,
    pub fetch: i64,
}

/// A product row with its rank in a full-text search (0 without one).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Hit {
    #[sqlx(flatten)]
    pub product: ProductRow,
    /// Lower is better: bm25 on SQLite, minus ts_rank on PostgreSQL, 0 without words.
    pub rank: f64,
    /// The name as the database lower-cases it, the key of the name order.
    pub sort_name: String,
}

impl Hit {
    /// The keyset position of this hit under `sort`.
    pub fn position(&self, sort: Sort) -> Position {
        let id = self.product.id.clone();
        match sort {
            Sort::Relevance => Position::Rank(self.rank, id),
            Sort::Price | Sort::PriceDesc => Position::Price(self.product.price_amount, id),
            Sort::Name => Position::Name(self.sort_name.clone(), id),
            Sort::Newest => Position::Id(id),
        }
    }
}

/// What consumed inventory events set.
pub struct Availability {
    pub sku: String,
    pub available: i64,
    /// The event's position in inventory's outbox (newer levels have higher ones), when known.
    pub position: Option<i64>,
}

#[async_trait]
pub trait Store: Send + Sync {
    async fn create_category(&self, category: &NewCategory) -> Result<Category, StoreError>;
    async fn categories(&self) -> Result<Vec<Category>, StoreError>;
    async fn category(&self, slug: &Slug) -> Result<Option<Category>, StoreError>;
    async fn update_category(
        &self,
        slug: &Slug,
        patch: &CategoryPatch,
    ) -> Result<Category, StoreError>;
    async fn delete_category(&self, slug: &Slug) -> Result<(), StoreError>;

    async fn create_product(&self, product: &NewProduct) -> Result<ProductRow, StoreError>;
    async fn product(&self, id: &str) -> Result<Option<ProductRow>, StoreError>;
    /// Applies `patch` when the stored version is `expected` (any version when `None`).
    async fn update_product(
        &self,
        id: &str,
        expected: Option<i64>,
        patch: &ProductPatch,
    ) -> Result<ProductRow, StoreError>;
    async fn delete_product(&self, id: &str) -> Result<(), StoreError>;
    async fn search(&self, query: &SearchQuery) -> Result<Vec<Hit>, StoreError>;
    /// How many catalog changes (products, categories) this process has committed since it
    /// started: what a reader kept from before a change is stale once this has moved. Stock
    /// levels applied from inventory's events and changes committed by other replicas over the
    /// same database are not counted.
    fn changes(&self) -> u64;

    /// Applies an inventory `stock_changed` event when no newer level of that SKU (by its outbox
    /// position; without one, the inbox) was applied before it, so a redelivery changes nothing.
    async fn apply_availability(
        &self,
        event: &Event,
        availability: &Availability,
    ) -> Result<(), StoreError>;
}

/// Connects to `url`, migrates it and opens the store (tests use a store on its own this way).
pub async fn connect(
    url: &str,
    max_connections: u32,
) -> anyhow::Result<(Arc<dyn Store>, Database)> {
    let db = platform::service::connect_url(url, max_connections, &MIGRATIONS).await?;
    Ok((open(db.clone()), db))
}

// SQL both dialects share.

const PRODUCT_COLUMNS: &str = "id, sku, name, description, price_amount, currency, category, attributes, created_at, updated_at, version, availability_status, available";
const SELECT_CATEGORIES: &str =
    "SELECT slug, name, description, parent FROM categories ORDER BY name, slug";
const SELECT_CATEGORY: &str =
    "SELECT slug, name, description, parent FROM categories WHERE slug = $1";
const INSERT_CATEGORY: &str = "INSERT INTO categories (slug, name, description, parent, created_at) VALUES ($1, $2, $3, $4, $5)";
const UPDATE_CATEGORY: &str =
    "UPDATE categories SET name = $2, description = $3, parent = $4 WHERE slug = $1";
const DELETE_CATEGORY: &str = "DELETE FROM categories WHERE slug = $1";
const SELECT_TREE: &str = "SELECT slug, parent FROM categories";
const COUNT_CHILDREN: &str = "SELECT COUNT(*) FROM categories WHERE parent = $1";
const COUNT_PRODUCTS_IN: &str = "SELECT COUNT(*) FROM products WHERE category = $1";
/// The category and every ancestor of it, for the cycle check.
const ANCESTORS: &str = "WITH RECURSIVE up(slug, parent) AS (SELECT slug, parent FROM categories WHERE slug = $1 UNION ALL SELECT c.slug, c.parent FROM categories c JOIN up ON c.slug = up.parent) SELECT slug FROM up";
const INSERT_PRODUCT: &str = "INSERT INTO products (id, sku, name, description, price_amount, currency, category, attributes, created_at, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, 1)";
const UPDATE_PRODUCT: &str = "UPDATE products SET name = $2, description = $3, price_amount = $4, currency = $5, category = $6, attributes = $7, updated_at = $8, version = version + 1 WHERE id = $1 AND deleted_at IS NULL";
const DELETE_PRODUCT: &str =
    "UPDATE products SET deleted_at = $2, version = version + 1 WHERE id = $1 AND deleted_at IS NULL";
const UPDATE_AVAILABILITY: &str = "UPDATE products SET availability_status = $2, available = $3, availability_updated_at = $4 WHERE sku = $1";

fn select_product() -> String {
    format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE id = $1 AND deleted_at IS NULL")
}

/// The events a product change publishes, written to the outbox in the change's transaction.
fn product_event(name: &str, row: &ProductRow) -> Event {
    Event::new(
        crate::NAME,
        name,
        row.id.clone(),
        serde_json::json!({
            "id": row.id,
            "sku": row.sku,
            "name": row.name,
            "price": {"amount": row.price_amount, "currency": row.currency},
            "category": row.category,
            "version": row.version,
        }),
    )
}

/// A search with its category resolved into the slugs it covers (the category and all its
/// subcategories, from the cached tree).
pub(crate) struct Scope<'a> {
    q: &'a SearchQuery,
    categories: Option<&'a [String]>,
}

impl SearchQuery {
    /// Whether anything but the words narrows the search: a category, a price band, stock.
    fn narrowed(&self) -> bool {
        self.category.is_some()
            || self.min_price.is_some()
            || self.max_price.is_some()
            || self.in_stock.is_some()
    }
}

/// The most subcategories a price listing reads one by one (see [`push_by_price`]); a larger tree
/// is read with one `IN` list and sorted.
const MAX_ARMS: usize = 32;

/// A search's words as a full-text query in the database's syntax: every word must match, the
/// last may be the start of a word (search as you type). `term` writes one word, told whether it
/// is that last one; `and` joins them.
fn every_word(words: &[String], and: &str, term: impl Fn(&str, bool) -> String) -> String {
    let last = words.len().saturating_sub(1);
    let terms: Vec<String> = words
        .iter()
        .enumerate()
        .map(|(i, word)| term(word, i == last))
        .collect();
    terms.join(and)
}

/// The filters of a search, as SQL over `products p`; both dialects share them.
fn push_filters<'a, DB: sqlx::Database>(
    sql: &mut QueryBuilder<'a, DB>,
    q: &SearchQuery,
    categories: Option<&[String]>,
) where
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    if let Some(slugs) = categories {
        sql.push(" AND p.category IN (");
        let mut list = sql.separated(", ");
        for slug in slugs {
            list.push_bind(slug.clone());
        }
        sql.push(")");
    }
    if let Some(min) = q.min_price {
        sql.push(" AND p.price_amount >= ").push_bind(min);
    }
    if let Some(max) = q.max_price {
        sql.push(" AND p.price_amount <= ").push_bind(max);
    }
    match q.in_stock {
        Some(true) => {
            sql.push(" AND p.availability_status = 'in_stock'");
        }
        Some(false) => {
            sql.push(" AND p.availability_status <> 'in_stock'");
        }
        None => {}
    }
}

/// Whether [`push_by_price`] serves this search: a category's listing by price, without words.
fn by_price(scope: &Scope<'_>) -> bool {
    scope.q.words.is_empty()
        && matches!(scope.q.sort, Sort::Price | Sort::PriceDesc)
        && scope.categories.is_some_and(|c| c.len() <= MAX_ARMS)
}

/// A category's listing by price, one subcategory at a time: each arm reads its own first page
/// from `products_category_price` (category, price, id) in order, and only those few rows are
/// merged and sorted. One `IN` list over the tree would read every product of every subcategory
/// in the band and sort them all to keep a page. The arms and the merge carry (price, id) alone;
/// the page's rows are read whole at the end: sorting whole rows of every arm (descriptions and
/// attributes copied into SQLite's sorter) was most of a listing's cost in the database.
/// `zero` is the dialect's `0.0` as a float.
fn push_by_price<'a, DB: sqlx::Database>(
    sql: &mut QueryBuilder<'a, DB>,
    scope: &Scope<'_>,
    zero: &str,
) where
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    f64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let q = scope.q;
    let (op, direction) = if q.sort == Sort::PriceDesc {
        ("<", " DESC")
    } else {
        (">", "")
    };
    sql.push("SELECT p.");
    sql.push(PRODUCT_COLUMNS.replace(", ", ", p."));
    sql.push(format!(
        ", lower(p.name) AS sort_name, {zero} AS rank FROM (SELECT * FROM ("
    ));
    for (i, slug) in scope.categories.unwrap_or_default().iter().enumerate() {
        if i > 0 {
            sql.push(" UNION ALL ");
        }
        sql.push(
            "SELECT * FROM (SELECT p.id, p.price_amount FROM products p WHERE p.deleted_at IS NULL",
        );
        push_filters(sql, q, Some(std::slice::from_ref(slug)));
        if let Some(Position::Price(amount, id)) = &q.after {
            // A row value, so the index's range starts at the cursor.
            sql.push(format!(" AND (p.price_amount, p.id) {op} ("));
            sql.push_bind(*amount)
                .push(", ")
                .push_bind(id.clone())
                .push(")");
        }
        sql.push(format!(
            " ORDER BY p.price_amount{direction}, p.id{direction} LIMIT "
        ));
        sql.push_bind(q.fetch);
        sql.push(format!(") c{i}"));
    }
    sql.push(") t");
    push_keyset(sql, q, "t");
    sql.push(format!(
        ") k JOIN products p ON p.id = k.id ORDER BY k.price_amount{direction}, k.id{direction}"
    ));
}

/// Where the page starts and how it is ordered, over the derived table `alias`. Every order ends
/// with the id, so that ties cannot repeat or skip a product across pages.
fn push_keyset<'a, DB: sqlx::Database>(sql: &mut QueryBuilder<'a, DB>, q: &SearchQuery, alias: &str)
where
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    f64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let t = alias;
    match &q.after {
        Some(Position::Rank(rank, id)) => {
            sql.push(format!(" WHERE ({t}.rank > ")).push_bind(*rank);
            sql.push(format!(" OR ({t}.rank = ")).push_bind(*rank);
            sql.push(format!(" AND {t}.id > "))
                .push_bind(id.clone())
                .push("))");
        }
        Some(Position::Price(amount, id)) => {
            let op = if q.sort == Sort::PriceDesc { "<" } else { ">" };
            sql.push(format!(" WHERE ({t}.price_amount {op} "))
                .push_bind(*amount);
            sql.push(format!(" OR ({t}.price_amount = "))
                .push_bind(*amount);
            sql.push(format!(" AND {t}.id {op} "))
                .push_bind(id.clone())
                .push("))");
        }
        Some(Position::Name(name, id)) => {
            sql.push(format!(" WHERE ({t}.sort_name > "))
                .push_bind(name.clone());
            sql.push(format!(" OR ({t}.sort_name = "))
                .push_bind(name.clone());
            sql.push(format!(" AND {t}.id > "))
                .push_bind(id.clone())
                .push("))");
        }
        Some(Position::Id(id)) => {
            sql.push(format!(" WHERE {t}.id < ")).push_bind(id.clone());
        }
        None => {}
    }
    sql.push(match q.sort {
        Sort::Relevance => format!(" ORDER BY {t}.rank, {t}.id"),
        Sort::Price => format!(" ORDER BY {t}.price_amount, {t}.id"),
        Sort::PriceDesc => format!(" ORDER BY {t}.price_amount DESC, {t}.id DESC"),
        Sort::Name => format!(" ORDER BY {t}.sort_name, {t}.id"),
        Sort::Newest => format!(" ORDER BY {t}.id DESC"),
    });
    sql.push(" LIMIT ").push_bind(q.fetch);
}
