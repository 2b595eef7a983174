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
    Ok(())
}

pub(super) async fn unindex(tx: &mut SqliteConnection, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM products_fts WHERE product_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

pub(super) async fn search_rows(
    pool: &SqlitePool,
    q: &SearchQuery,
) -> Result<Vec<Hit>, sqlx::Error> {
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
    sql.build_query_as().fetch_all(pool).await
}
