-- A concert may open at a time (opens_at). Fans who ask for a token before it join a pre-queue: they wait,
-- and none is admitted. At opening, the waiting room's first step (db.Store.AdmitNext) draws their order: the
-- sequence numbers they joined with are dealt out again in a random order fixed by the concert's secret
-- draw_salt, in the same transaction that records drawn_at, so a crash at opening neither loses anyone nor
-- deals twice, and refreshing early or hammering the endpoint buys nothing. Later arrivals get larger
-- sequence numbers and line up behind them in arrival order. Until the draw, every join waits (join_at_once
-- below, replaced to say so; the rest of it is as in 0006).
ALTER TABLE concerts
    ADD COLUMN opens_at  TIMESTAMPTZ,
    ADD COLUMN drawn_at  TIMESTAMPTZ,
    ADD COLUMN draw_salt UUID NOT NULL DEFAULT gen_random_uuid();

CREATE OR REPLACE FUNCTION join_at_once(p_id TEXT, p_workflow_id TEXT, p_code TEXT, p_user UUID, p_window_us BIGINT,
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
                   OR (c.opens_at IS NOT NULL AND (c.opens_at > now() OR c.drawn_at IS NULL))
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
