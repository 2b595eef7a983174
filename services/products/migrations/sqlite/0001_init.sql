CREATE TABLE categories (
    slug TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    parent TEXT REFERENCES categories (slug),
    created_at TEXT NOT NULL
);
CREATE INDEX categories_parent ON categories (parent);

CREATE TABLE products (
    id TEXT PRIMARY KEY,
    sku TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    price_amount INTEGER NOT NULL CHECK (price_amount >= 0),
    currency TEXT NOT NULL,
    category TEXT NOT NULL REFERENCES categories (slug),
    attributes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version INTEGER NOT NULL,
    deleted_at TEXT,
    availability_status TEXT NOT NULL DEFAULT 'unknown',
    available INTEGER,
    availability_updated_at TEXT
);
CREATE INDEX products_category ON products (category);
CREATE INDEX products_price ON products (price_amount, id);
CREATE INDEX products_name ON products (lower(name), id);

-- Full-text index of live products, kept in step by the storage code in the same transaction.
CREATE VIRTUAL TABLE products_fts USING fts5 (
    product_id UNINDEXED,
    name,
    description,
    tokenize = 'unicode61 remove_diacritics 2'
);
