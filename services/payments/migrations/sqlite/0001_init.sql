-- One row per payment (one authorization of one amount for one order). The idempotency key of the
-- request that created it is unique; the first answer is kept to be replayed byte for byte.
CREATE TABLE payments (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    payment_method TEXT NOT NULL,
    status TEXT NOT NULL,
    intent_id TEXT UNIQUE,
    capture_amount BIGINT,
    captured_amount BIGINT NOT NULL DEFAULT 0 CHECK (captured_amount >= 0 AND captured_amount <= amount),
    refunded_amount BIGINT NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0 AND refunded_amount <= captured_amount),
    decline_code TEXT,
    decline_message TEXT,
    idempotency_key TEXT NOT NULL UNIQUE,
    request_hash TEXT NOT NULL,
    response_status INTEGER,
    response_body TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX payments_order ON payments (order_id);
CREATE INDEX payments_status ON payments (status, updated_at);

-- Refunds of a captured payment; their sum never exceeds what was captured.
CREATE TABLE refunds (
    id TEXT PRIMARY KEY,
    payment_id TEXT NOT NULL REFERENCES payments (id),
    idempotency_key TEXT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    reason TEXT,
    status TEXT NOT NULL,
    gateway_refund_id TEXT,
    failure TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (payment_id, idempotency_key)
);
CREATE INDEX refunds_status ON refunds (status, updated_at);

-- Every gateway call, written before it is made and after its answer.
CREATE TABLE gateway_calls (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    payment_id TEXT NOT NULL,
    operation TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    phase TEXT NOT NULL,
    outcome TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX gateway_calls_payment ON gateway_calls (payment_id, seq);

-- Gateway webhook events already applied.
CREATE TABLE webhook_events (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    received_at TEXT NOT NULL
);
