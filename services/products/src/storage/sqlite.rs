//! The catalog on SQLite: FTS5 for search, kept in step with `products` in the same transaction.
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};

use super::*;

pub(super) async fn index(tx: &mut SqliteConnection, row: &ProductRow) -> Result<(), sqlx::Error> {
    unindex(tx, &row.id).await?;
    sqlx::query("INSERT INTO products_fts (product_id, name, description) VALUES ($1, $2, $3)")
        .bind(&row.id)
        .bind(&row.name)
        .bind(&row.description)
        .execute(&mut *tx)
        .await?;
    // The row just inserted, found again by key when the product changes (migration 0003).
    sqlx::query(
        "INSERT INTO products_fts_rows (product_id, fts_rowid) VALUES ($1, last_insert_rowid())",
    )
    .bind(&row.id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub(super) async fn unindex(tx: &mut SqliteConnection, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM products_fts WHERE rowid = (SELECT fts_rowid FROM products_fts_rows WHERE product_id = $1)")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM products_fts_rows WHERE product_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

pub(super) async fn search_rows(
    pool: &SqlitePool,
    scope: &Scope<'_>,
) -> Result<Vec<Hit>, sqlx::Error> {
    let q = scope.q;
    let mut sql: QueryBuilder<Sqlite> = QueryBuilder::new("");
    if super::by_price(scope) {
        super::push_by_price(&mut sql, scope, "0.0");
        return sql.build_query_as().fetch_all(pool).await;
    }
    if q.words.is_empty() {
        sql.push("SELECT * FROM (SELECT p.");
        sql.push(PRODUCT_COLUMNS.replace(", ", ", p."));
        sql.push(
            ", lower(p.name) AS sort_name, 0.0 AS rank FROM products p WHERE p.deleted_at IS NULL",
        );
    } else if q.sort == Sort::Relevance && !q.narrowed() {
        // Only the search index until the page is known: the rank and the id of every hit are
        // sorted, and the products table is read for the page's rows alone (reading every hit's
        // row and sorting whole rows cost about twice as much on 10,000 products).
        sql.push("SELECT * FROM (SELECT p.");
        sql.push(PRODUCT_COLUMNS.replace(", ", ", p."));
        sql.push(", lower(p.name) AS sort_name, h.rank AS rank FROM (SELECT id, rank FROM (SELECT f.product_id AS id, bm25(products_fts, 0.0, 10.0, 1.0) AS rank FROM products_fts f WHERE products_fts MATCH ");
        sql.push_bind(match_expression(&q.words));
        sql.push(") h");
        super::push_keyset(&mut sql, q, "h");
        sql.push(") h JOIN products p ON p.id = h.id WHERE p.deleted_at IS NULL");
    } else {
        sql.push("SELECT * FROM (SELECT p.");
        sql.push(PRODUCT_COLUMNS.replace(", ", ", p."));
        sql.push(", lower(p.name) AS sort_name, bm25(products_fts, 0.0, 10.0, 1.0) AS rank FROM products p JOIN products_fts f ON f.product_id = p.id WHERE p.deleted_at IS NULL AND products_fts MATCH ");
        sql.push_bind(match_expression(&q.words));
    }
    super::push_filters(&mut sql, q, scope.categories);
    sql.push(") t");
    super::push_keyset(&mut sql, q, "t");
    sql.build_query_as().fetch_all(pool).await
}

/// The first `limit` hits of `words` as (rank, product id), best first.
pub(super) async fn ranking(
    pool: &SqlitePool,
    words: &[String],
    limit: i64,
) -> Result<Vec<(f64, String)>, sqlx::Error> {
    let rows: Vec<(String, f64)> = sqlx::query_as(
        "SELECT product_id, bm25(products_fts, 0.0, 10.0, 1.0) AS rank FROM products_fts WHERE products_fts MATCH $1 ORDER BY rank, product_id LIMIT $2",
    )
    .bind(match_expression(words))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(id, rank)| (rank, id)).collect())
}

/// FTS5 `MATCH` syntax: `"a" "b" "c"*` (each word quoted, so none reads as an operator).
fn match_expression(words: &[String]) -> String {
    super::every_word(words, " ", |word, prefix| {
        if prefix {
            format!("\"{word}\"*")
        } else {
            format!("\"{word}\"")
        }
    })
}
