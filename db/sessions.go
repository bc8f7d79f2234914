package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/ticketing/concert/booking"
)

// sessionRow is a row of sessions; callers get it as a booking.Session.
type sessionRow struct {
	ID          string       `db:"id"`
	WorkflowID  string       `db:"workflow_id"`
	ConcertCode string       `db:"concert_code"`
	UserUUID    string       `db:"user_uuid"`
	Seq         int64        `db:"seq"`
	Status      string       `db:"status"`
	ActiveUntil sql.NullTime `db:"active_until"`
	HeldUntil   sql.NullTime `db:"held_until"`
	StatusSince time.Time    `db:"status_since"`
}

func (r sessionRow) session() booking.Session {
	return booking.Session{
		ID: r.ID, WorkflowID: r.WorkflowID, ConcertCode: r.ConcertCode, UserUUID: r.UserUUID, Seq: r.Seq,
		Status: booking.Status(r.Status), ActiveUntil: r.ActiveUntil.Time, HeldUntil: r.HeldUntil.Time,
		StatusSince: r.StatusSince,
	}
}

// JoinParams identifies a new session joining a concert's waiting room.
type JoinParams struct {
	SessionID       string
	WorkflowID      string
	ConcertCode     string
	UserUUID        string
	AdmissionWindow time.Duration
}

// AdmitBatchLimit caps how many sessions one admission step admits, so one step stays one short
// transaction and one bounded burst of signals even when a concert opens with a large maxActive.
const AdmitBatchLimit = 500

// admissionRow is a session a waiting-room step must tell of its admission (ACTIVE, with the end of its
// admission window) or of its sold-out end.
type admissionRow struct {
	SessionID   string       `db:"id"`
	WorkflowID  string       `db:"workflow_id"`
	ConcertCode string       `db:"concert_code"`
	UserUUID    string       `db:"user_uuid"`
	Status      string       `db:"status"`
	ActiveUntil sql.NullTime `db:"active_until"`
}

func (r admissionRow) admission() booking.Admission {
	return booking.Admission{
		SessionID: r.SessionID, WorkflowID: r.WorkflowID, ConcertCode: r.ConcertCode, UserUUID: r.UserUUID,
		Notice: booking.AdmissionNotice{Status: booking.Status(r.Status), ActiveUntil: r.ActiveUntil.Time},
	}
}

// Who and why of a session ended by a waiting-room step (AdmitNext), as its audit row says.
const (
	RepairActor  = "waiting room"
	RepairReason = "past its window and not ended by its workflow (terminated, or never ran)"
)

// pastRepair is true of a live session ($2 microseconds past its window), in a statement over sessions.
const pastRepair = `(status = 'ACTIVE' AND active_until < now() - $2 * interval '1 microsecond')
        OR (status = 'HELD' AND held_until < now() - $2 * interval '1 microsecond')`

// untoldGrace is how long a notice may stay unconfirmed before a waiting-room step sends it again: the
// time the API that admitted a fan at its join has to start the fan's workflow.
const untoldGrace = "3 seconds"

const sessionColumns = `id, workflow_id, concert_code, user_uuid, seq, status, active_until, held_until, status_since`

// lockConcert serialises the waiting room of one concert: token issue and admission steps take this lock,
// so neither can admit past maxActive nor out of FIFO order. FOR NO KEY UPDATE does not block the foreign
// key checks of concurrent inserts.
const lockConcert = `SELECT max_active, admission_paused FROM concerts WHERE code = $1 FOR NO KEY UPDATE`

// liveCount counts the sessions that occupy an admission slot: ACTIVE or HELD, and within their window. A
// session whose window has passed frees its slot at once, even if its workflow has not yet caught up.
const liveCount = `
SELECT count(*) FROM sessions
WHERE concert_code = $1 AND status IN ('ACTIVE', 'HELD')
  AND ((status = 'ACTIVE' AND active_until > now()) OR (status = 'HELD' AND held_until > now()))`

// nextFreeOf is, as a subquery of a statement over concerts c, the end of the first live window among the
// concert's sessions: when the first slot frees even if nothing ends its session (AdmitResult.NextFree).
const nextFreeOf = `
SELECT min(CASE WHEN status = 'ACTIVE' THEN active_until ELSE held_until END) FROM sessions
WHERE concert_code = c.code AND status IN ('ACTIVE', 'HELD')
  AND ((status = 'ACTIVE' AND active_until > now()) OR (status = 'HELD' AND held_until > now()))`

// liveCountOf is liveCount as a subquery of a statement over concerts c.
const liveCountOf = `
SELECT count(*) FROM sessions
WHERE concert_code = c.code AND status IN ('ACTIVE', 'HELD')
  AND ((status = 'ACTIVE' AND active_until > now()) OR (status = 'HELD' AND held_until > now()))`

const soldOutQuery = `SELECT NOT EXISTS (SELECT 1 FROM seats WHERE concert_code = $1 AND status <> 'SOLD')`

// JoinQueue puts a session in its concert's waiting room, or returns it as it is if it is there already (so
// the API and the workflow may both call it). A session that finds a free slot and nobody waiting is admitted
// at once; a concert with every seat sold ends the session SOLD_OUT. created reports whether this call
// inserted the row. Only a join that might be admitted at once takes the concert's lock: while people wait,
// joins do not queue behind each other (or behind admission steps) to learn that they must wait too.
func (s *Store) JoinQueue(ctx context.Context, p JoinParams) (_ booking.Session, created bool, err error) {
	var sess sessionRow
	const existing = `SELECT ` + sessionColumns + ` FROM sessions WHERE id = $1`
	const waitingExists = `SELECT EXISTS (SELECT 1 FROM sessions WHERE concert_code = $1 AND status = 'WAITING')`
	const freeOrphans = `
UPDATE seats SET status = 'AVAILABLE', session_id = NULL, reservation_id = NULL, held_until = NULL
WHERE status = 'HELD' AND session_id IN (
    SELECT id FROM sessions WHERE concert_code = $1 AND user_uuid = $2 AND id <> $3 AND status IN ('WAITING', 'ACTIVE', 'HELD'))`
	const freeEnded = `
UPDATE seats SET status = 'AVAILABLE', session_id = NULL, reservation_id = NULL, held_until = NULL
WHERE status = 'HELD' AND session_id IN (
    SELECT id FROM sessions WHERE concert_code = $1 AND user_uuid = $2 AND id <> $3 AND status = 'CANCELLED')`
	const endOrphans = `
UPDATE sessions SET status = 'CANCELLED', status_since = now()
WHERE concert_code = $1 AND user_uuid = $2 AND id <> $3 AND status IN ('WAITING', 'ACTIVE', 'HELD')`
	const insert = `
INSERT INTO sessions (id, workflow_id, concert_code, user_uuid, status, notified, active_until, admitted_at)
VALUES ($1, $2, $3, $4, $5::text, true,
        CASE WHEN $5::text = 'ACTIVE' THEN now() + $6 * interval '1 microsecond' END,
        CASE WHEN $5::text = 'ACTIVE' THEN now() END)
RETURNING ` + sessionColumns
	// state reads what decides a join without locking anything: most joins of a busy on-sale find people
	// waiting (or admission paused, or the concert sold out) and can only wait.
	const state = `
SELECT max_active, admission_paused,
       NOT EXISTS (SELECT 1 FROM seats WHERE concert_code = $1 AND status <> 'SOLD') AS sold_out,
       EXISTS (SELECT 1 FROM sessions WHERE concert_code = $1 AND status = 'WAITING') AS waiting
FROM concerts WHERE code = $1`
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := tx.GetContext(ctx, &sess, existing, p.SessionID); err == nil {
			return nil
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var st struct {
			MaxActive int  `db:"max_active"`
			Paused    bool `db:"admission_paused"`
			SoldOut   bool `db:"sold_out"`
			Waiting   bool `db:"waiting"`
		}
		if err := tx.GetContext(ctx, &st, state, p.ConcertCode); err != nil {
			return noRows(err, "concert "+p.ConcertCode)
		}
		// Temporal runs one session workflow per user and concert at a time, so a live row of another session
		// of this user belongs to a run that is closed (terminated, say) and will never end it: end it here.
		if _, err := tx.ExecContext(ctx, freeOrphans, p.ConcertCode, p.UserUUID, p.SessionID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, endOrphans, p.ConcertCode, p.UserUUID, p.SessionID); err != nil {
			return err
		}
		// A HoldSeat of the closed run may have been committing meanwhile (end waited for its session row).
		if _, err := tx.ExecContext(ctx, freeEnded, p.ConcertCode, p.UserUUID, p.SessionID); err != nil {
			return err
		}
		status := ""
		switch {
		case st.SoldOut:
			status = "SOLD_OUT"
		case st.Paused || st.Waiting:
			status = "WAITING"
		default:
			// A slot may be free and nobody waits: decide under the concert's lock, so that concurrent joins
			// and admission steps cannot admit past maxActive or out of order.
			var cfg struct {
				MaxActive int  `db:"max_active"`
				Paused    bool `db:"admission_paused"`
			}
			if err := tx.GetContext(ctx, &cfg, lockConcert, p.ConcertCode); err != nil {
				return noRows(err, "concert "+p.ConcertCode)
			}
			var waiting bool
			var live int
			if err := tx.GetContext(ctx, &waiting, waitingExists, p.ConcertCode); err != nil {
				return err
			}
			if err := tx.GetContext(ctx, &live, liveCount, p.ConcertCode); err != nil {
				return err
			}
			status = "WAITING"
			if !cfg.Paused && !waiting && live < cfg.MaxActive {
				status = "ACTIVE"
			}
		}
		if err := tx.GetContext(ctx, &sess, insert, p.SessionID, p.WorkflowID, p.ConcertCode, p.UserUUID, status, micros(p.AdmissionWindow)); err != nil {
			return err
		}
		created = true
		return nil
	})
	if err != nil {
		return booking.Session{}, false, fmt.Errorf("join queue of %s: %w", p.ConcertCode, err)
	}
	return sess.session(), created, nil
}

// GetSession returns a session by ID; ErrNotFound if unknown.
// Every authenticated request and every position poll reads its session here, so the statement is prepared.
func (s *Store) GetSession(ctx context.Context, id string) (booking.Session, error) {
	const q = `SELECT ` + sessionColumns + ` FROM sessions WHERE id = $1`
	stmt, err := s.prepared(ctx, q)
	if err != nil {
		return booking.Session{}, err
	}
	var sess sessionRow
	if err := stmt.GetContext(ctx, &sess, id); err != nil {
		return booking.Session{}, noRows(err, "session "+id)
	}
	return sess.session(), nil
}

// admissionRateWindow is the span over which recent admissions are counted for wait estimates.
const admissionRateWindow = 5 * time.Minute

// QueueSnapshot is a concert's waiting room at one moment: the sequence numbers of the waiting sessions in
// order, and the figures that turn a place in the queue into an estimated wait. The API keeps one per concert
// for a moment, so that position polls of many thousand waiting sessions cost a binary search, not a count.
type QueueSnapshot struct {
	// Through is the highest sequence number any session had when the snapshot was taken: a session with a
	// higher one joined later, and is counted by Store.WaitingBetween.
	Through          int64
	Waiting          []int64
	RecentAdmissions int64
	MaxActive        int64
}

// Queue reads the waiting room of a concert.
func (s *Store) Queue(ctx context.Context, code string) (QueueSnapshot, error) {
	const waiting = `SELECT seq FROM sessions WHERE concert_code = $1 AND status = 'WAITING' ORDER BY seq`
	const rate = `
SELECT (SELECT count(*) FROM sessions WHERE concert_code = $1 AND admitted_at > now() - $2 * interval '1 microsecond') AS recent,
       COALESCE((SELECT max_active FROM concerts WHERE code = $1), 0) AS max_active`
	q := QueueSnapshot{Waiting: []int64{}}
	if err := s.db.GetContext(ctx, &q.Through, `SELECT COALESCE(max(seq), 0) FROM sessions`); err != nil {
		return QueueSnapshot{}, fmt.Errorf("queue of %s: %w", code, err)
	}
	if err := s.db.SelectContext(ctx, &q.Waiting, waiting, code); err != nil {
		return QueueSnapshot{}, fmt.Errorf("queue of %s: %w", code, err)
	}
	var r struct {
		Recent    int64 `db:"recent"`
		MaxActive int64 `db:"max_active"`
	}
	if err := s.db.GetContext(ctx, &r, rate, code, micros(admissionRateWindow)); err != nil {
		return QueueSnapshot{}, fmt.Errorf("admission rate of %s: %w", code, err)
	}
	q.RecentAdmissions, q.MaxActive = r.Recent, r.MaxActive
	return q, nil
}

// Position is the place in the queue of the waiting session with sequence number seq: 1 for the next to be
// admitted. It counts the waiting sessions ahead, so it is right also for a session that joined after the
// snapshot was taken.
func (q QueueSnapshot) Position(seq int64) int64 {
	return int64(sort.Search(len(q.Waiting), func(i int) bool { return q.Waiting[i] >= seq })) + 1
}

// inFlightMargin is how many sequence numbers below the highest one a snapshot saw may still belong to
// transactions that had not committed when it was taken: more than all the joins that can be in flight at
// once (one per database connection of every API process).
const inFlightMargin = 256

// Fresh is the first sequence number a snapshot does not count with certainty: sessions at or above it may
// have committed after the snapshot was taken (see Store.WaitingBetween).
func (q QueueSnapshot) Fresh() int64 { return max(q.Through-inFlightMargin+1, 1) }

// PositionWith is Position for a session whose queue snapshot is q and for which later counts the waiting
// sessions from q.Fresh() up to (not including) seq, read from the database just now: exact for the sessions
// that joined after the snapshot, and for those that were still committing when it was taken.
func (q QueueSnapshot) PositionWith(seq, later int64) int64 {
	return q.Position(min(seq, q.Fresh())) + later
}

// EstimatedWait turns a position into a wait: at the recent admission rate, or failing that at the slowest
// possible one (every admitted session using its whole admission window).
func (q QueueSnapshot) EstimatedWait(position int64, admissionWindow time.Duration) time.Duration {
	switch {
	case position <= 0:
		return 0
	case q.RecentAdmissions > 0:
		perSecond := float64(q.RecentAdmissions) / admissionRateWindow.Seconds()
		return time.Duration(float64(position) / perSecond * float64(time.Second))
	case q.MaxActive > 0:
		return time.Duration((position+q.MaxActive-1)/q.MaxActive) * admissionWindow
	}
	return 0
}

// AdmitNext runs one step of a concert's waiting room: if every seat is sold it ends the waiting and active
// sessions SOLD_OUT; otherwise, unless admission is paused, it admits waiting sessions in FIFO order into the
// free slots (at most AdmitBatchLimit). It returns the sessions whose workflows must be told.
func (s *Store) AdmitNext(ctx context.Context, code string, admissionWindow time.Duration) (booking.AdmissionStep, error) {
	const soldOut = `
UPDATE sessions SET status = 'SOLD_OUT', notified = false, status_since = now()
WHERE concert_code = $1 AND status IN ('WAITING', 'ACTIVE')`
	const admit = `
UPDATE sessions SET status = 'ACTIVE', notified = false, status_since = now(), admitted_at = now(),
                    active_until = now() + $3 * interval '1 microsecond'
WHERE id IN (SELECT id FROM sessions WHERE concert_code = $1 AND status = 'WAITING' ORDER BY seq LIMIT $2)`
	// The sessions to tell: those this step moved on (status_since = now(), the transaction's time), and those
	// left untold for a few seconds (a notification that failed, or a session admitted at its join whose
	// workflow has not attached: its token answer went out, but the API that issued it may have died before
	// starting the workflow). Younger ones are left to the starter of the API that admitted them.
	const notify = `
SELECT id, workflow_id, concert_code, user_uuid, status, active_until FROM sessions
WHERE concert_code = $1 AND NOT notified
  AND (status_since = now() OR status_since < now() - interval '` + untoldGrace + `')
ORDER BY seq LIMIT 2000`
	// What the waiting room needs to know to sleep until something changes.
	const after = `
SELECT (SELECT count(*) FROM sessions WHERE concert_code = $1 AND status = 'WAITING') AS waiting,
       (` + nextFreeOf + `) AS next_free,
       (SELECT count(*) FROM sessions WHERE concert_code = $1 AND NOT notified
          AND status_since <> now() AND status_since >= now() - interval '` + untoldGrace + `') AS untold
FROM concerts c WHERE c.code = $1`
	// A waiting room with nobody waiting, seats left, no notice overdue (younger ones are the API's
	// starter's, and reported as Untold) and no draw due has nothing to decide. (A draw is due from the
	// opening on, even of an empty pre-queue: until it is recorded every arrival waits, so the first step
	// after the opening always draws, whoever has come.) it answers without the concert's lock, so a quiet concert's joins never find the lock taken by a step (they would
	// wait for the next one; see join_at_once).
	const quiet = `
SELECT c.max_active, c.admission_paused, (` + liveCountOf + `) AS live,
       (` + nextFreeOf + `) AS next_free,
       (SELECT count(*) FROM sessions WHERE concert_code = c.code AND NOT notified) AS untold,
       CASE WHEN c.opens_at > now() THEN c.opens_at END AS opens_at,
       CASE WHEN c.closes_at > now() THEN c.closes_at END AS closes_at, c.closes_at <= now() AS closed
FROM concerts c
WHERE c.code = $1
  AND NOT EXISTS (SELECT 1 FROM sessions WHERE concert_code = c.code AND status = 'WAITING')
  AND NOT EXISTS (SELECT 1 FROM sessions WHERE concert_code = c.code AND NOT notified
                                            AND status_since < now() - interval '` + untoldGrace + `')
  AND EXISTS (SELECT 1 FROM seats WHERE concert_code = c.code AND status <> 'SOLD')
  AND NOT EXISTS (SELECT 1 FROM sessions WHERE concert_code = c.code AND (` + pastRepair + `))
  AND NOT COALESCE(c.opens_at <= now() AND c.drawn_at IS NULL, false)`
	// A live session this far past its window was not ended by its workflow: the workflow was terminated
	// (Terminate skips every compensation) or never ran. The step ends it EXPIRED, frees its seat and records
	// why, so the seat goes back on sale and the books are clean again without a human.
	const repair = `
WITH stale AS (
    UPDATE sessions SET status = 'EXPIRED', status_since = now()
    WHERE concert_code = $1 AND (` + pastRepair + `)
    RETURNING id, workflow_id
), freed AS (
    UPDATE seats SET status = 'AVAILABLE', session_id = NULL, reservation_id = NULL, held_until = NULL
    FROM stale WHERE seats.session_id = stale.id AND seats.status = 'HELD'
    RETURNING stale.id AS session_id
)
INSERT INTO admin_audit (action, target, session_id, actor, reason, outcome)
SELECT 'expire', stale.workflow_id, stale.id, '` + RepairActor + `', '` + RepairReason + `',
       CASE WHEN EXISTS (SELECT 1 FROM freed WHERE freed.session_id = stale.id) THEN 'expired, seat released' ELSE 'expired' END
FROM stale`
	var q struct {
		MaxActive int          `db:"max_active"`
		Paused    bool         `db:"admission_paused"`
		Live      int          `db:"live"`
		NextFree  sql.NullTime `db:"next_free"`
		Untold    int          `db:"untold"`
		OpensAt   sql.NullTime `db:"opens_at"`
		ClosesAt  sql.NullTime `db:"closes_at"`
		Closed    sql.NullBool `db:"closed"`
	}
	grace := micros(s.repairGrace())
	switch err := s.db.GetContext(ctx, &q, quiet, code, grace); {
	case err == nil:
		// A concert that opens later says so even with nobody waiting yet: its waiting room then sleeps until
		// the opening, and the fans who join before it need not wake it.
		return booking.AdmissionStep{MaxActive: q.MaxActive, Paused: q.Paused, Live: q.Live, NextFree: q.NextFree.Time,
			Untold: q.Untold, OpensAt: q.OpensAt.Time, ClosesAt: q.ClosesAt.Time, Closed: q.Closed.Bool}, nil
	case !errors.Is(err, sql.ErrNoRows):
		return booking.AdmissionStep{}, fmt.Errorf("admit next of %s: %w", code, err)
	}
	const lockForStep = `
SELECT max_active, admission_paused, opens_at, draw_salt::text AS draw_salt,
       opens_at > now() AS before_opening, opens_at <= now() AND drawn_at IS NULL AS draw_due,
       CASE WHEN closes_at > now() THEN closes_at END AS closes_at, closes_at <= now() AS closed
FROM concerts WHERE code = $1 FOR NO KEY UPDATE`
	const closed = `
UPDATE sessions SET status = 'CLOSED', notified = false, status_since = now()
WHERE concert_code = $1 AND status = 'WAITING'`
	var res booking.AdmissionStep
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var cfg struct {
			MaxActive     int          `db:"max_active"`
			Paused        bool         `db:"admission_paused"`
			OpensAt       sql.NullTime `db:"opens_at"`
			Salt          string       `db:"draw_salt"`
			BeforeOpening sql.NullBool `db:"before_opening"`
			DrawDue       sql.NullBool `db:"draw_due"`
			ClosesAt      sql.NullTime `db:"closes_at"`
			Closed        sql.NullBool `db:"closed"`
		}
		if err := tx.GetContext(ctx, &cfg, lockForStep, code); err != nil {
			return noRows(err, "concert "+code)
		}
		res.MaxActive, res.Paused = cfg.MaxActive, cfg.Paused
		res.ClosesAt, res.Closed = cfg.ClosesAt.Time, cfg.Closed.Bool
		beforeOpening := cfg.BeforeOpening.Bool
		if beforeOpening {
			res.OpensAt = cfg.OpensAt.Time // nobody is admitted before the opening
		}
		if cfg.DrawDue.Bool {
			if err := drawPreQueue(ctx, tx, code, cfg.OpensAt.Time, cfg.Salt); err != nil {
				return err
			}
		}
		r, err := tx.ExecContext(ctx, repair, code, grace)
		if err != nil {
			return err
		}
		repaired, err := r.RowsAffected()
		if err != nil {
			return err
		}
		res.Repaired = int(repaired)
		if err := tx.GetContext(ctx, &res.SoldOut, soldOutQuery, code); err != nil {
			return err
		}
		if err := tx.GetContext(ctx, &res.Live, liveCount, code); err != nil {
			return err
		}
		switch {
		case res.SoldOut:
			if _, err := tx.ExecContext(ctx, soldOut, code); err != nil {
				return err
			}
			res.Live = 0
		case res.Closed:
			// Everyone still waiting is turned away; those admitted before the closing finish in their windows.
			if _, err := tx.ExecContext(ctx, closed, code); err != nil {
				return err
			}
		case !cfg.Paused && !beforeOpening && res.Live < cfg.MaxActive:
			n := min(cfg.MaxActive-res.Live, AdmitBatchLimit)
			r, err := tx.ExecContext(ctx, admit, code, n, micros(admissionWindow))
			if err != nil {
				return err
			}
			admitted, err := r.RowsAffected()
			if err != nil {
				return err
			}
			res.Admitted = int(admitted)
			res.Live += res.Admitted
		}
		var notices []admissionRow
		if err := tx.SelectContext(ctx, &notices, notify, code); err != nil {
			return err
		}
		for _, n := range notices {
			res.Notify = append(res.Notify, n.admission())
		}
		var rest struct {
			Waiting  int          `db:"waiting"`
			NextFree sql.NullTime `db:"next_free"`
			Untold   int          `db:"untold"`
		}
		if err := tx.GetContext(ctx, &rest, after, code); err != nil {
			return err
		}
		res.Waiting, res.NextFree, res.Untold = rest.Waiting, rest.NextFree.Time, rest.Untold
		return nil
	})
	if err != nil {
		return booking.AdmissionStep{}, fmt.Errorf("admit next of %s: %w", code, err)
	}
	return res, nil
}

// MarkNotified records that the workflows of these sessions have been told of their admission.
func (s *Store) MarkNotified(ctx context.Context, ids []string) error {
	const q = `UPDATE sessions SET notified = true WHERE id = ANY($1)`
	if _, err := s.db.ExecContext(ctx, q, pq.Array(ids)); err != nil {
		return fmt.Errorf("mark notified: %w", err)
	}
	return nil
}

// WaitersOf returns the concert of a session and whether anyone waits in that concert's waiting room: when
// a session ends before its window does, its slot goes to the next fan only if the waiting room is told.
func (s *Store) WaitersOf(ctx context.Context, sessionID string) (code string, waiting bool, err error) {
	const q = `
SELECT s.concert_code, EXISTS (SELECT 1 FROM sessions w WHERE w.concert_code = s.concert_code AND w.status = 'WAITING') AS waiting
FROM sessions s WHERE s.id = $1`
	stmt, err := s.prepared(ctx, q)
	if err != nil {
		return "", false, err
	}
	var row struct {
		Code    string `db:"concert_code"`
		Waiting bool   `db:"waiting"`
	}
	if err := stmt.GetContext(ctx, &row, sessionID); err != nil {
		return "", false, noRows(err, "session "+sessionID)
	}
	return row.Code, row.Waiting, nil
}

// OverdueSession is a live session (ACTIVE or HELD) whose window ended: its workflow should have ended it.
type OverdueSession struct {
	booking.Session
	Deadline time.Time
	// ConcertDate and SeatNumber are the held seat; zero when the session holds none.
	ConcertDate time.Time
	SeatNumber  int
	// RepairBy is when a waiting-room step ends it, if its workflow does not (see DefaultRepairAfter).
	RepairBy time.Time
}

// OverdueSessions lists, from the store of record, live sessions whose admission or hold window ended
// before `before`, oldest deadline first, at most limit of them; concertCode and status narrow the list when
// not empty. Whatever their workflows show (running behind, terminated, never started), these are the
// sessions that still count against a slot or a seat.
func (s *Store) OverdueSessions(ctx context.Context, concertCode, status string, before time.Time, limit int) ([]OverdueSession, error) {
	const q = `
SELECT s.id, s.workflow_id, s.concert_code, s.user_uuid, s.seq, s.status, s.active_until, s.held_until, s.status_since,
       w.deadline, st.concert_date, st.seat_number, w.deadline + $5 * interval '1 microsecond' AS repair_by
FROM sessions s
CROSS JOIN LATERAL (SELECT CASE s.status WHEN 'ACTIVE' THEN s.active_until ELSE s.held_until END AS deadline) w
LEFT JOIN seats st ON st.session_id = s.id AND st.status = 'HELD'
WHERE s.status IN ('ACTIVE', 'HELD') AND w.deadline < $1
  AND ($2 = '' OR s.concert_code = $2)
  AND ($3 = '' OR s.status = $3)
ORDER BY w.deadline, s.seq
LIMIT $4`
	var rows []struct {
		sessionRow
		Deadline    time.Time     `db:"deadline"`
		ConcertDate sql.NullTime  `db:"concert_date"`
		SeatNumber  sql.NullInt64 `db:"seat_number"`
		RepairBy    time.Time     `db:"repair_by"`
	}
	if err := s.db.SelectContext(ctx, &rows, q, before, concertCode, status, limit, micros(s.repairGrace())); err != nil {
		return nil, fmt.Errorf("overdue sessions: %w", err)
	}
	out := make([]OverdueSession, len(rows))
	for i, r := range rows {
		out[i] = OverdueSession{Session: r.session(), Deadline: r.Deadline, ConcertDate: r.ConcertDate.Time,
			SeatNumber: int(r.SeatNumber.Int64), RepairBy: r.RepairBy}
	}
	return out, nil
}

// drawPreQueue deals the sequence numbers of the concert's pre-queue (the sessions that joined before
// opensAt and still wait) out again in a random order fixed by the concert's secret salt, and records the
// draw. It runs in the waiting room's step under the concert's lock, so it happens once: a step that crashes
// rolls it back whole and the next deals the same order. Every later arrival has a larger sequence number,
// so it lines up behind the pre-queue in arrival order.
func drawPreQueue(ctx context.Context, tx *sqlx.Tx, code string, opensAt time.Time, salt string) error {
	// Sequence numbers are unique: the new ones are parked negative first, then turned back.
	const deal = `
WITH pre AS (
    SELECT id, seq FROM sessions WHERE concert_code = $1 AND status = 'WAITING' AND created_at < $2
), drawn AS (
    SELECT id, row_number() OVER (ORDER BY md5($3 || id), id) AS r FROM pre
), places AS (
    SELECT seq, row_number() OVER (ORDER BY seq) AS r FROM pre
)
UPDATE sessions x SET seq = -places.seq, drawn_from = x.seq FROM drawn JOIN places USING (r) WHERE x.id = drawn.id`
	const settle = `UPDATE sessions SET seq = -seq WHERE concert_code = $1 AND seq < 0`
	const record = `UPDATE concerts SET drawn_at = now() WHERE code = $1`
	if _, err := tx.ExecContext(ctx, deal, code, opensAt, salt); err != nil {
		return fmt.Errorf("draw the pre-queue of %s: %w", code, err)
	}
	if _, err := tx.ExecContext(ctx, settle, code); err != nil {
		return fmt.Errorf("draw the pre-queue of %s: %w", code, err)
	}
	_, err := tx.ExecContext(ctx, record, code)
	return err
}
