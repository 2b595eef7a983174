//! The catalog on PostgreSQL: a generated `tsvector` column with a GIN index for search.
use sqlx::{PgPool, Postgres, QueryBuilder};

use super::*;

pub(super) async fn search_rows(pool: &PgPool, q: &SearchQuery) -> Result<Vec<Hit>, sqlx::Error> {
    let mut sql: QueryBuilder<Postgres> = QueryBuilder::new("SELECT * FROM (SELECT p.");
    sql.push(PRODUCT_COLUMNS.replace(", ", ", p."));
    sql.push(", lower(p.name) AS sort_name");
    if q.words.is_empty() {
        sql.push(", 0.0::float8 AS rank FROM products p WHERE p.deleted_at IS NULL");
    } else {
        // Every word must match; the last may be the start of a word (search as you type).
        let last = q.words.len() - 1;
        let expression: Vec<String> = q
            .words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                if i == last {
                    format!("{w}:*")
                } else {
                    w.clone()
                }
            })
            .collect();
        sql.push(", -ts_rank(p.search, to_tsquery('simple', ");
        sql.push_bind(expression.join(" & "));
        sql.push("))::float8 AS rank FROM products p WHERE p.deleted_at IS NULL AND p.search @@ to_tsquery('simple', ");
        sql.push_bind(expression.join(" & "));
        sql.push(")");
    }
    super::push_filters(&mut sql, q);
    sql.push(") t");
    super::push_keyset(&mut sql, q);
    sql.build_query_as().fetch_all(pool).await
}
