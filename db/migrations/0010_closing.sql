-- A sale may close at a time (closes_at). A fan who asks for a token after it gets a session that ends at
-- once, CLOSED (join_at_once below, replaced to say so; the rest of it is as in 0008), and the waiting room's
-- first step after it ends everyone still waiting CLOSED and admits nobody. Fans admitted before it finish
-- within their windows. CLOSED is an ending of its own: the seats were not sold out.
--
-- The draw at opening now records each drawn session's place before the draw (drawn_from), so `concert
-- check` can verify that the draw dealt out exactly the places the pre-queue held.
ALTER TABLE concerts ADD COLUMN closes_at TIMESTAMPTZ;
ALTER TABLE concerts ADD CONSTRAINT concerts_closes_after_opening CHECK (closes_at > opens_at);
ALTER TABLE sessions ADD COLUMN drawn_from BIGINT;
ALTER TABLE sessions DROP CONSTRAINT sessions_status_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_status_check
    CHECK (status IN ('WAITING', 'ACTIVE', 'HELD', 'PAID', 'EXPIRED', 'CANCELLED', 'SOLD_OUT', 'CLOSED'));

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
               c.closes_at IS NOT NULL AND c.closes_at <= now() AS closed,
               c.admission_paused
                   OR (c.opens_at IS NOT NULL AND (c.opens_at > now() OR c.drawn_at IS NULL))
                   OR EXISTS (SELECT 1 FROM sessions w WHERE w.concert_code = c.code AND w.status = 'WAITING') AS must_wait
        FROM concerts c WHERE c.code = p_code
    ), decided AS (
        SELECT cfg.*, CASE WHEN cfg.sold_out THEN 'SOLD_OUT'
                           WHEN cfg.closed THEN 'CLOSED'
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
