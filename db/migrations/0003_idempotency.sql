-- Idempotency keys of retried requests (PATCH balance, PATCH reserve, POST payments): the first response is
-- kept and returned again for the same key and body until the key expires.
CREATE TABLE idempotency_keys (
    scope         TEXT        NOT NULL,
    key           TEXT        NOT NULL,
    request_hash  TEXT        NOT NULL,
    state         TEXT        NOT NULL CHECK (state IN ('IN_PROGRESS', 'DONE')),
    status        INT,
    content_type  TEXT,
    body          BYTEA,
    locked_until  TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

-- A top-up retried with the same key credits once: the key is stored with its ledger row.
ALTER TABLE ledger ADD COLUMN request_key TEXT;
CREATE UNIQUE INDEX ledger_request_key ON ledger (user_uuid, request_key) WHERE request_key IS NOT NULL;
