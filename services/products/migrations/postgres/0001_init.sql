CREATE TABLE categories (
    slug TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    parent TEXT REFERENCES categories (slug),
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX categories_parent ON categories (parent);

CREATE TABLE products (
    id TEXT PRIMARY KEY,
    sku TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    price_amount BIGINT NOT NULL CHECK (price_amount >= 0),
    currency TEXT NOT NULL,
    category TEXT NOT NULL REFERENCES categories (slug),
    attributes TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    version BIGINT NOT NULL,
    deleted_at TIMESTAMPTZ,
    availability_status TEXT NOT NULL DEFAULT 'unknown',
    available BIGINT,
    availability_updated_at TIMESTAMPTZ,
    -- Name words weigh more than description words in the ranking.
    search TSVECTOR GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', name), 'A') || setweight(to_tsvector('simple', description), 'B')
    ) STORED
);
CREATE INDEX products_category ON products (category);
CREATE INDEX products_price ON products (price_amount, id);
CREATE INDEX products_name ON products (lower(name), id);
CREATE INDEX products_search ON products USING GIN (search);
