-- join_at_once inserts a session that may be admitted at once: SOLD_OUT when no seat is left to sell; ACTIVE
-- when admission runs, nobody waits and a slot is free; WAITING otherwise. A fan who has a live session
-- already makes it fail on the unique index sessions_one_live_per_user (the caller then answers with that
-- session).
--
-- Admission at once is decided under the concert's row lock, and a stampede's first arrivals all come here
-- until someone waits, so the lock is held as briefly as the server allows: the function is one statement in
-- one round trip; its transaction commits without waiting for the WAL flush (synchronous_commit off, for
-- this transaction only), and the caller makes the commit durable before answering (db.Store.Join commits a
-- write of its own, which flushes the WAL past this one). An arrival that finds the lock taken does not
-- queue for it: it waits (WAITING, committed normally), and the waiting room, which the first waiter wakes,
-- admits it into the free slots in order. A quiet concert's joins find the lock free: the waiting room takes
-- it only when someone waits (and then joins wait without asking for it) or something must be told or sold
-- out (db.Store.AdmitNext). Each statement of the function takes its own snapshot after the lock was
-- granted, so the decision sees every admission committed before it.
--
-- free_slots is maxActive minus the live sessions as the function saw them, so the caller can tell a fan
-- who waits for a free slot that the wait is short.
CREATE FUNCTION join_at_once(p_id TEXT, p_workflow_id TEXT, p_code TEXT, p_user UUID, p_window_us BIGINT,
                             p_hold_window_us BIGINT, p_count_from BIGINT)
RETURNS TABLE (id TEXT, workflow_id TEXT, concert_code TEXT, user_uuid UUID, seq BIGINT, status TEXT,
               active_until TIMESTAMPTZ, held_until TIMESTAMPTZ, status_since TIMESTAMPTZ, ahead BIGINT,
               max_active BIGINT, free_slots BIGINT)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    locked BOOLEAN;
BEGIN
    PERFORM 1 FROM concerts c WHERE c.code = p_code FOR NO KEY UPDATE SKIP LOCKED;
    locked := FOUND;
    IF locked THEN
        PERFORM set_config('synchronous_commit', 'off', true);
    ELSIF NOT EXISTS (SELECT 1 FROM concerts c WHERE c.code = p_code) THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH cfg AS (
        SELECT c.max_active,
               c.max_active - (SELECT count(*) FROM sessions l
                               WHERE l.concert_code = c.code AND l.status IN ('ACTIVE', 'HELD')
                                 AND ((l.status = 'ACTIVE' AND l.active_until > now())
                                   OR (l.status = 'HELD' AND l.held_until > now()))) AS free,
               NOT EXISTS (SELECT 1 FROM seats t WHERE t.concert_code = c.code AND t.status <> 'SOLD') AS sold_out,
               c.admission_paused
                   OR EXISTS (SELECT 1 FROM sessions w WHERE w.concert_code = c.code AND w.status = 'WAITING') AS must_wait
        FROM concerts c WHERE c.code = p_code
    ), decided AS (
        SELECT cfg.*, CASE WHEN cfg.sold_out THEN 'SOLD_OUT'
                           WHEN locked AND NOT cfg.must_wait AND cfg.free > 0 THEN 'ACTIVE'
                           ELSE 'WAITING' END AS status
        FROM cfg
    ), ins AS (
        INSERT INTO sessions (id, workflow_id, concert_code, user_uuid, status, notified, active_until, admitted_at,
                              hold_window_us)
        SELECT p_id, p_workflow_id, p_code, p_user, d.status, d.status <> 'ACTIVE',
               CASE WHEN d.status = 'ACTIVE' THEN now() + p_window_us * interval '1 microsecond' END,
               CASE WHEN d.status = 'ACTIVE' THEN now() END, p_hold_window_us
        FROM decided d
        RETURNING sessions.id, sessions.workflow_id, sessions.concert_code, sessions.user_uuid, sessions.seq,
                  sessions.status, sessions.active_until, sessions.held_until, sessions.status_since
    )
    SELECT ins.id, ins.workflow_id, ins.concert_code, ins.user_uuid, ins.seq, ins.status, ins.active_until,
           ins.held_until, ins.status_since,
           (SELECT count(*) FROM sessions w WHERE w.concert_code = ins.concert_code AND w.status = 'WAITING'
              AND w.seq >= p_count_from AND w.seq < ins.seq),
           d.max_active::BIGINT, GREATEST(d.free - CASE WHEN ins.status = 'ACTIVE' THEN 1 ELSE 0 END, 0)
    FROM ins, decided d;
END
$$;
