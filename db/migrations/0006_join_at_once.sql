-- join_at_once inserts a session that may be admitted at once, deciding its status under the concert's row
-- lock: ACTIVE when admission runs, nobody waits and a slot is free, WAITING otherwise. It is one statement
-- sent in one round trip, so the lock is held for the server's few statements only, never across a client's
-- round trips. Its transaction commits without waiting for the WAL flush (synchronous_commit off, for this
-- transaction only), so the lock is not held through a disk flush either: the caller makes the commit durable
-- before answering (db.Store.Join commits a transaction of its own, which flushes the WAL past this one).
-- Each statement of the function takes its own snapshot after the lock was granted, so the decision sees
-- every admission committed before it.
CREATE FUNCTION join_at_once(p_id TEXT, p_workflow_id TEXT, p_code TEXT, p_user UUID, p_window_us BIGINT,
                             p_hold_window_us BIGINT, p_count_from BIGINT)
RETURNS TABLE (id TEXT, workflow_id TEXT, concert_code TEXT, user_uuid UUID, seq BIGINT, status TEXT,
               active_until TIMESTAMPTZ, held_until TIMESTAMPTZ, status_since TIMESTAMPTZ, ahead BIGINT)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM 1 FROM concerts c WHERE c.code = p_code FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH cfg AS (
        SELECT CASE WHEN NOT c.admission_paused
                     AND NOT EXISTS (SELECT 1 FROM sessions w WHERE w.concert_code = c.code AND w.status = 'WAITING')
                     AND (SELECT count(*) FROM sessions l
                          WHERE l.concert_code = c.code AND l.status IN ('ACTIVE', 'HELD')
                            AND ((l.status = 'ACTIVE' AND l.active_until > now())
                              OR (l.status = 'HELD' AND l.held_until > now()))) < c.max_active
                    THEN 'ACTIVE' ELSE 'WAITING' END AS status
        FROM concerts c WHERE c.code = p_code
    ), ins AS (
        INSERT INTO sessions (id, workflow_id, concert_code, user_uuid, status, notified, active_until, admitted_at,
                              hold_window_us)
        SELECT p_id, p_workflow_id, p_code, p_user, cfg.status, cfg.status <> 'ACTIVE',
               CASE WHEN cfg.status = 'ACTIVE' THEN now() + p_window_us * interval '1 microsecond' END,
               CASE WHEN cfg.status = 'ACTIVE' THEN now() END, p_hold_window_us
        FROM cfg
        RETURNING sessions.id, sessions.workflow_id, sessions.concert_code, sessions.user_uuid, sessions.seq,
                  sessions.status, sessions.active_until, sessions.held_until, sessions.status_since
    )
    SELECT ins.id, ins.workflow_id, ins.concert_code, ins.user_uuid, ins.seq, ins.status, ins.active_until,
           ins.held_until, ins.status_since,
           (SELECT count(*) FROM sessions w WHERE w.concert_code = ins.concert_code AND w.status = 'WAITING'
              AND w.seq >= p_count_from AND w.seq < ins.seq)
    FROM ins;
END
$$;
