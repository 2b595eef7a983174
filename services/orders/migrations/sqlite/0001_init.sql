-- One row per order. `saga_step` is the checkout (or cancellation) step still to do; NULL when
-- the order rests. `next_attempt_at` is when the recovery worker may take the step up: a running
-- step pushes it ahead (a soft lease), a failed one sets it to its retry time.
CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    currency TEXT NOT NULL,
    total_amount BIGINT NOT NULL CHECK (total_amount >= 0),
    payment_method TEXT NOT NULL,
    shipping_address TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    saga_step TEXT,
    saga_outcome TEXT,
    saga_deadline TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    payment_id TEXT,
    failure TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (user_id, idempotency_key)
);
CREATE INDEX orders_user ON orders (user_id, id);
CREATE INDEX orders_saga ON orders (next_attempt_at) WHERE saga_step IS NOT NULL;

-- The products as they were when the order was placed: later catalog changes do not touch them.
CREATE TABLE order_lines (
    order_id TEXT NOT NULL REFERENCES orders (id),
    line_no INTEGER NOT NULL,
    product_id TEXT NOT NULL,
    sku TEXT NOT NULL,
    name TEXT NOT NULL,
    unit_price BIGINT NOT NULL CHECK (unit_price >= 0),
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, line_no)
);

CREATE TABLE order_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id TEXT NOT NULL REFERENCES orders (id),
    status TEXT NOT NULL,
    note TEXT,
    at TEXT NOT NULL
);
CREATE INDEX order_history_order ON order_history (order_id, seq);
