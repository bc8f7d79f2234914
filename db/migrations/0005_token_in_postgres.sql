-- A token is issued by one PostgreSQL transaction; the session's workflow starts afterwards, off the request
-- path. The session therefore keeps the hold window it joined with (its workflow reads it when it attaches),
-- and the ID it is known by is the service's own, not a Temporal run ID.
ALTER TABLE sessions ADD COLUMN hold_window_us BIGINT CHECK (hold_window_us > 0);
