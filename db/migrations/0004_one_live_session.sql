-- A user has at most one live session per concert. Temporal already runs one session workflow per user and
-- concert at a time; this makes the database say so too (JoinQueue ends rows orphaned by a closed run).
-- Rows that break the rule already (left by terminated runs) are ended first: the newest live session of each
-- user and concert stays, the others end CANCELLED and give their seats back.
WITH ranked AS (
    SELECT id, row_number() OVER (PARTITION BY concert_code, user_uuid ORDER BY seq DESC) AS n
    FROM sessions WHERE status IN ('WAITING', 'ACTIVE', 'HELD')
), orphans AS (
    SELECT id FROM ranked WHERE n > 1
), freed AS (
    UPDATE seats SET status = 'AVAILABLE', session_id = NULL, reservation_id = NULL, held_until = NULL
    WHERE status = 'HELD' AND session_id IN (SELECT id FROM orphans)
)
UPDATE sessions SET status = 'CANCELLED', status_since = now() WHERE id IN (SELECT id FROM orphans);

CREATE UNIQUE INDEX sessions_one_live_per_user ON sessions (concert_code, user_uuid)
    WHERE status IN ('WAITING', 'ACTIVE', 'HELD');
