-- A cart belongs to a signed-in user (user_id) or to whoever holds its secret (a guest cart:
-- secret_hash, the SHA-256 of the secret; the secret itself is never stored).
CREATE TABLE carts (
    id TEXT PRIMARY KEY,
    user_id TEXT,
    secret_hash TEXT,
    status TEXT NOT NULL,
    order_id TEXT,
    -- When cart_abandoned was published for the cart's current contents; any change clears it.
    abandoned_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ NOT NULL,
    CHECK ((user_id IS NULL) <> (secret_hash IS NULL))
);
-- One current (open) cart per user.
CREATE UNIQUE INDEX carts_current ON carts (user_id) WHERE status = 'open' AND user_id IS NOT NULL;
CREATE INDEX carts_idle ON carts (status, updated_at);

-- seen_price is the price the buyer last saw or accepted; the catalog's price differing from it
-- is the price_changed flag.
CREATE TABLE cart_lines (
    cart_id TEXT NOT NULL REFERENCES carts (id),
    product_id TEXT NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity BETWEEN 1 AND 99),
    seen_price BIGINT NOT NULL,
    seen_currency TEXT NOT NULL,
    added_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (cart_id, product_id)
);

-- The catalog as the products events tell it (a projection: never read from products per request).
CREATE TABLE catalog (
    product_id TEXT PRIMARY KEY,
    sku TEXT NOT NULL,
    name TEXT NOT NULL,
    price_amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    version BIGINT NOT NULL
);
CREATE INDEX catalog_sku ON catalog (sku);

-- Units available per SKU, as inventory's stock_changed events tell it.
CREATE TABLE stock_levels (
    sku TEXT PRIMARY KEY,
    available BIGINT NOT NULL
);
