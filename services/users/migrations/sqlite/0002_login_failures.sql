-- Failed logins, one row each, shared by every replica of the service. `subject` is the SHA-256
-- of what was counted (an account or a client address); `failed_at` is Unix milliseconds. Rows
-- older than the throttling window are deleted as new failures come in.
CREATE TABLE login_failures (
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    failed_at INTEGER NOT NULL
);
CREATE INDEX login_failures_subject ON login_failures (kind, subject, failed_at);
CREATE INDEX login_failures_age ON login_failures (kind, failed_at);
