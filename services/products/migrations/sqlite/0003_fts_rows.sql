-- Which full-text row belongs to which product. `products_fts.product_id` is an UNINDEXED FTS5
-- column, so finding a product's row by it read the whole index: every product write (create,
-- update, delete) deleted its old row that way, 1.6 ms at 10,000 products and growing with the
-- catalog. This table finds it by key.
CREATE TABLE products_fts_rows (
    product_id TEXT PRIMARY KEY,
    fts_rowid INTEGER NOT NULL
);
INSERT OR REPLACE INTO products_fts_rows (product_id, fts_rowid)
SELECT product_id, rowid FROM products_fts;
