//! The catalog on PostgreSQL: a generated `tsvector` column with a GIN index for search.
use sqlx::{PgPool, Postgres, QueryBuilder};

use super::*;

pub(super) async fn search_rows(pool: &PgPool, scope: &Scope<'_>) -> Result<Vec<Hit>, sqlx::Error> {
    let q = scope.q;
    let mut sql: QueryBuilder<Postgres> = QueryBuilder::new("");
    if super::by_price(scope) {
        super::push_by_price(&mut sql, scope, "0.0::float8");
        return sql.build_query_as().fetch_all(pool).await;
    }
    if q.words.is_empty() {
        sql.push("SELECT * FROM (SELECT p.");
        sql.push(PRODUCT_COLUMNS.replace(", ", ", p."));
        sql.push(", lower(p.name) AS sort_name, 0.0::float8 AS rank FROM products p WHERE p.deleted_at IS NULL");
    } else {
        // The query is parsed once, in a CTE the planner cannot see into: written inline,
        // `to_tsquery($1)` ran again for every hit's rank, and a query whose words the planner
        // could read (the first executions of a prepared statement) was estimated as cheaper by
        // a sequential scan than by the GIN index, which measured 4× slower on 10,000 products.
        sql.push("WITH w AS MATERIALIZED (SELECT to_tsquery('simple', ");
        sql.push_bind(tsquery_expression(&q.words));
        sql.push(") AS q) SELECT * FROM (SELECT p.");
        sql.push(PRODUCT_COLUMNS.replace(", ", ", p."));
        sql.push(", lower(p.name) AS sort_name, -ts_rank(p.search, w.q)::float8 AS rank FROM products p, w WHERE p.deleted_at IS NULL AND p.search @@ w.q");
    }
    super::push_filters(&mut sql, q, scope.categories);
    sql.push(") t");
    super::push_keyset(&mut sql, q, "t");
    sql.build_query_as().fetch_all(pool).await
}

/// The first `limit` hits of `words` as (rank, product id), best first (the query parsed once, as
/// in [`search_rows`]).
pub(super) async fn ranking(
    pool: &PgPool,
    words: &[String],
    limit: i64,
) -> Result<Vec<(f64, String)>, sqlx::Error> {
    let rows: Vec<(String, f64)> = sqlx::query_as(
        "WITH w AS MATERIALIZED (SELECT to_tsquery('simple', $1) AS q) SELECT p.id, -ts_rank(p.search, w.q)::float8 AS rank FROM products p, w WHERE p.deleted_at IS NULL AND p.search @@ w.q ORDER BY rank, p.id LIMIT $2",
    )
    .bind(tsquery_expression(words))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(id, rank)| (rank, id)).collect())
}

/// `to_tsquery` syntax: `a & b & c:*`.
fn tsquery_expression(words: &[String]) -> String {
    super::every_word(words, " & ", |word, prefix| {
        if prefix {
            format!("{word}:*")
        } else {
            word.to_owned()
        }
    })
}
