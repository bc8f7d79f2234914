-- A user has at most one live session per concert. Temporal already runs one session workflow per user and
-- concert at a time; this makes the database say so too (JoinQueue ends rows orphaned by a closed run).
CREATE UNIQUE INDEX sessions_one_live_per_user ON sessions (concert_code, user_uuid)
    WHERE status IN ('WAITING', 'ACTIVE', 'HELD');
