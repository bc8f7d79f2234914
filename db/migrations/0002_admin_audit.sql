-- Every action support staff or operators take through the admin API: who, when, why, and what came of it.
CREATE TABLE admin_audit (
    id          BIGSERIAL   PRIMARY KEY,
    action      TEXT        NOT NULL,
    target      TEXT        NOT NULL,
    session_id  TEXT,
    actor       TEXT        NOT NULL,
    reason      TEXT        NOT NULL,
    outcome     TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX admin_audit_target ON admin_audit (target, created_at);
