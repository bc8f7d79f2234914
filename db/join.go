package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/ticketing/concert/booking"
)

// Errors of Join that name what is missing, so the API can say which.
var (
	// ErrUnknownConcert means no concert has the code a token was asked for.
	ErrUnknownConcert = fmt.Errorf("concert: %w", ErrNotFound)
	// ErrUnknownUser means no user has the UUID a token was asked for.
	ErrUnknownUser = fmt.Errorf("user: %w", ErrNotFound)
)

// NewSession is a fan asking for a queue token. The service chooses SessionID (and the WorkflowID derived
// from it) before the row exists, so the token can be answered the moment the row commits.
type NewSession struct {
	SessionID       string
	WorkflowID      string
	ConcertCode     string
	UserUUID        string
	AdmissionWindow time.Duration
	// HoldWindow is kept with the session, so its workflow holds seats for as long as the service promised
	// when the fan joined, whatever the configuration says when the workflow starts.
	HoldWindow time.Duration
	// StaleAfter is how far past its deadline a live session of the same fan must be for a new token request
	// to end it (its workflow is gone: terminated, or never started) instead of answering with it.
	StaleAfter time.Duration
	// CountFrom is the first sequence number from which Join counts the waiting sessions ahead of a new
	// waiting one (Joined.Ahead): QueueSnapshot.Fresh of the caller's snapshot, or 0 to count them all.
	CountFrom int64
}

// Joined is the outcome of Join: the fan's session, whether this call created it, and, for a session that
// waits, how many sessions with a sequence number from NewSession.CountFrom wait ahead of it.
type Joined struct {
	booking.Session
	Created bool
	Ahead   int64
	// MaxActive is the concert's maxActive as the join saw it (0 when it found the fan's open session).
	MaxActive int64
	// FreeSlots is how many admission slots were free after the join, as far as it looked (0 when it did
	// not count them): a session that waits while slots are free is admitted by the waiting room's next step.
	FreeSlots int64
}

// oneLivePerUser is the unique index that lets a fan have one live session per concert.
const oneLivePerUser = "sessions_one_live_per_user"

// Join takes a fan's place in the concert's waiting room in one short transaction: it returns the fan's live
// session if there is one (created false), or inserts a new one with the next sequence number, admitted at
// once when a slot is free and nobody waits, SOLD_OUT when nothing is left to sell, WAITING otherwise. It waits
// for no workflow: the session's workflow is started afterwards and attaches to this row. ErrUnknownConcert
// and ErrUnknownUser say what is missing.
func (s *Store) Join(ctx context.Context, p NewSession) (Joined, error) {
	for attempt := 0; ; attempt++ {
		j, ok, err := s.joinWaiting(ctx, p)
		switch {
		case err != nil || ok:
		case attempt == 0:
			// Nobody waits and a slot may be free, or the fan has a live session (the unique index says so,
			// and the next attempt's transaction answers with it), or the concert is sold out.
			j, err = s.joinAtOnce(ctx, p)
		default:
			if j, ok, err = s.join(ctx, p); err == nil && !ok {
				j, err = s.joinAtOnce(ctx, p)
			}
		}
		// The fan has a live session, or two token requests of one fan raced and the other inserted first:
		// the next attempt finds the row.
		if isUniqueViolation(err, oneLivePerUser) && attempt < 3 {
			continue
		}
		if err != nil {
			return Joined{}, fmt.Errorf("join queue of %s: %w", p.ConcertCode, err)
		}
		return j, nil
	}
}

// waitingAhead6 counts, for an inserted row ins, the waiting sessions ahead of it from the sequence number in
// parameter $6.
const waitingAhead6 = `(SELECT count(*) FROM sessions w WHERE w.concert_code = ins.concert_code AND w.status = 'WAITING'
        AND w.seq >= $6 AND w.seq < ins.seq)`

// joinWaiting is the stampede's common case in one statement, without a transaction of its own: a fan with
// no live session who finds people waiting, every slot taken or admission paused, and seats left, is inserted
// WAITING and told how many wait ahead. ok is false when the case does not apply (nothing was written); the
// transaction of join then decides.
func (s *Store) joinWaiting(ctx context.Context, p NewSession) (Joined, bool, error) {
	const q = `
WITH st AS (
    SELECT c.code, c.max_active, c.admission_paused, c.max_active - (` + liveCountOf + `) AS free,
           EXISTS (SELECT 1 FROM sessions WHERE concert_code = c.code AND status = 'WAITING') AS waiting,
           c.opens_at IS NOT NULL AND (c.opens_at > now() OR c.drawn_at IS NULL) AS unopened
    FROM concerts c
    WHERE c.code = $1 AND (c.closes_at IS NULL OR c.closes_at > now())
      AND EXISTS (SELECT 1 FROM seats WHERE concert_code = c.code AND status <> 'SOLD')
      AND NOT EXISTS (SELECT 1 FROM sessions WHERE concert_code = c.code AND user_uuid = $2
                                                AND status IN ('WAITING', 'ACTIVE', 'HELD'))
), ins AS (
    INSERT INTO sessions (id, workflow_id, concert_code, user_uuid, status, notified, hold_window_us)
    SELECT $3, $4, st.code, $2, 'WAITING', true, $5 FROM st WHERE st.admission_paused OR st.waiting OR st.free <= 0 OR st.unopened
    RETURNING ` + sessionColumns + `
)
SELECT ins.*, ` + waitingAhead6 + ` AS ahead, st.max_active,
       CASE WHEN st.admission_paused THEN 0 ELSE GREATEST(st.free, 0) END AS free_slots
FROM ins, st`
	var j insertedRow
	stmt, err := s.prepared(ctx, q)
	if err != nil {
		return Joined{}, false, err
	}
	err = stmt.GetContext(ctx, &j, p.ConcertCode, p.UserUUID, p.SessionID, p.WorkflowID, holdWindow(p), p.CountFrom)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Joined{}, false, nil
	case err != nil:
		return Joined{}, false, unknownUser(err, p.UserUUID)
	}
	return j.joined(), true, nil
}

// insertedRow is a session a join inserted, with what the join saw.
type insertedRow struct {
	sessionRow
	Ahead     int64 `db:"ahead"`
	MaxActive int64 `db:"max_active"`
	FreeSlots int64 `db:"free_slots"`
}

func (r insertedRow) joined() Joined {
	return Joined{Session: r.session(), Created: true, Ahead: r.Ahead, MaxActive: r.MaxActive, FreeSlots: r.FreeSlots}
}

func holdWindow(p NewSession) sql.NullInt64 {
	return sql.NullInt64{Int64: micros(p.HoldWindow), Valid: p.HoldWindow > 0}
}

// unknownUser names a foreign-key failure on the user as ErrUnknownUser.
func unknownUser(err error, user string) error {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "23503" && pqErr.Constraint == "sessions_user_uuid_fkey" {
		return fmt.Errorf("%s: %w", user, ErrUnknownUser)
	}
	return err
}

// joinLive finds the fan's live session for the concert, and whether it is stale (see NewSession.StaleAfter).
const joinLive = `
SELECT ` + sessionColumns + `,
       (status = 'ACTIVE' AND active_until < now() - $3 * interval '1 microsecond')
    OR (status = 'HELD' AND held_until < now() - $3 * interval '1 microsecond') AS stale
FROM sessions WHERE concert_code = $1 AND user_uuid = $2 AND status IN ('WAITING', 'ACTIVE', 'HELD')`

// join answers a fan who has a live session with it (ok true). A stale one (its window ended long ago and
// nothing ended it: no workflow looks after it any more) is ended first, its seat freed; the fan then joins
// anew, and joinAtOnce decides how (ok false), as it does for a fan with no live session.
func (s *Store) join(ctx context.Context, p NewSession) (j Joined, ok bool, err error) {
	live, err := s.prepared(ctx, joinLive)
	if err != nil {
		return Joined{}, false, err
	}
	const endStale = `UPDATE sessions SET status = 'EXPIRED', status_since = now() WHERE id = $1 AND status IN ('ACTIVE', 'HELD')`
	const freeStale = `
UPDATE seats SET status = 'AVAILABLE', session_id = NULL, reservation_id = NULL, held_until = NULL
WHERE session_id = $1 AND status = 'HELD'`
	var cur struct {
		sessionRow
		Stale bool `db:"stale"`
	}
	switch err := live.GetContext(ctx, &cur, p.ConcertCode, p.UserUUID, micros(p.StaleAfter)); {
	case errors.Is(err, sql.ErrNoRows):
		return Joined{}, false, nil
	case err != nil:
		return Joined{}, false, err
	case !cur.Stale:
		return Joined{Session: cur.session()}, true, nil
	}
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, freeStale, cur.ID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, endStale, cur.ID)
		return err
	})
	return Joined{}, false, err
}

// joinAtOnce inserts a session that may be admitted at once, deciding under the concert's lock (the
// function join_at_once of migration 0006). In a stampede every arrival of the first moments comes here
// until someone waits, so the lock is held for the server's own work only: one round trip, and a commit
// that does not wait for the WAL flush; an arrival that finds the lock taken waits instead of queueing for
// it (the waiting room admits it into a free slot in order). The session is made durable before Join
// returns by a second, ordinary transaction that writes: its commit flushes the WAL past the first one's
// commit record. The flushes of many joins are then shared (group commit), outside the lock.
func (s *Store) joinAtOnce(ctx context.Context, p NewSession) (Joined, error) {
	const q = `SELECT ` + sessionColumns + `, ahead, max_active, free_slots FROM join_at_once($1, $2, $3, $4, $5, $6, $7)`
	const durable = `UPDATE sessions SET status_since = status_since WHERE id = $1`
	var row insertedRow
	stmt, err := s.prepared(ctx, q)
	if err != nil {
		return Joined{}, err
	}
	err = stmt.GetContext(ctx, &row, p.SessionID, p.WorkflowID, p.ConcertCode, p.UserUUID, micros(p.AdmissionWindow),
		holdWindow(p), p.CountFrom)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Joined{}, fmt.Errorf("%s: %w", p.ConcertCode, ErrUnknownConcert)
	case err != nil:
		return Joined{}, unknownUser(err, p.UserUUID)
	}
	flush, err := s.prepared(ctx, durable)
	if err != nil {
		return Joined{}, err
	}
	if _, err := flush.ExecContext(ctx, row.ID); err != nil {
		return Joined{}, fmt.Errorf("make session %s durable: %w", row.ID, err)
	}
	return row.joined(), nil
}

// Attach is the first step of a session's workflow: it reads the session and marks it notified in one
// statement, so the status the workflow starts from is the status it has been told of; any later change by
// the waiting room (admission, sold out) marks it unnotified again and is signalled. ErrNotFound if no such
// session exists.
func (s *Store) Attach(ctx context.Context, sessionID string) (booking.Attachment, error) {
	const q = `
UPDATE sessions SET notified = true WHERE id = $1
RETURNING ` + sessionColumns + `, COALESCE(hold_window_us, 0) AS hold_window_us,
          (SELECT max_seats_per_order FROM concerts WHERE code = sessions.concert_code) AS seats_per_order`
	const seats = `
SELECT reservation_id, concert_code, concert_date, seat_number, price, held_until
FROM seats WHERE session_id = $1 AND status = 'HELD' ORDER BY seat_number`
	var row struct {
		sessionRow
		HoldWindowUs  int64 `db:"hold_window_us"`
		SeatsPerOrder int   `db:"seats_per_order"`
	}
	if err := s.db.GetContext(ctx, &row, q, sessionID); err != nil {
		return booking.Attachment{}, noRows(err, "session "+sessionID)
	}
	a := booking.Attachment{
		Status: booking.Status(row.Status), ActiveUntil: row.ActiveUntil.Time,
		HoldWindow: time.Duration(row.HoldWindowUs) * time.Microsecond,
	}
	if row.SeatsPerOrder > 1 { // one seat per order is what attachments said before they said anything
		a.SeatsPerOrder = row.SeatsPerOrder
	}
	if a.Status == booking.StatusHeld {
		var held []reservationRow
		if err := s.db.SelectContext(ctx, &held, seats, sessionID); err != nil {
			return booking.Attachment{}, fmt.Errorf("seats of session %s: %w", sessionID, err)
		}
		if len(held) > 0 { // the order's first hold stands for it: its window is the order's
			res, _ := reservationOf(held, held[0].ReservationID)
			a.Reservation = &res
		}
	}
	return a, nil
}

// WaitingBetween counts the sessions of a concert that wait with a sequence number from (and including)
// from up to (not including) before: the arrivals a queue snapshot may not have seen (QueueSnapshot.Fresh).
func (s *Store) WaitingBetween(ctx context.Context, code string, from, before int64) (int64, error) {
	const q = `SELECT count(*) FROM sessions WHERE concert_code = $1 AND status = 'WAITING' AND seq >= $2 AND seq < $3`
	var n int64
	if before <= from {
		return 0, nil
	}
	if err := s.db.GetContext(ctx, &n, q, code, from, before); err != nil {
		return 0, fmt.Errorf("waiting arrivals of %s: %w", code, err)
	}
	return n, nil
}

// SessionOwner is who a session belongs to and the seats it holds or bought, in seat order.
type SessionOwner struct {
	UserUUID string
	Seats    []int
}

// SessionOwners returns the owner of each of these sessions that exists, by session ID. Support tooling
// reads sessions from Temporal visibility, which holds no personal data and one seat per session, and names
// their users and every seat of their orders from here.
func (s *Store) SessionOwners(ctx context.Context, ids []string) (map[string]SessionOwner, error) {
	const q = `
SELECT x.id, x.user_uuid,
       (SELECT array_agg(st.seat_number ORDER BY st.seat_number) FROM seats st WHERE st.session_id = x.id) AS seats
FROM sessions x WHERE x.id = ANY($1)`
	var rows []struct {
		ID    string        `db:"id"`
		User  string        `db:"user_uuid"`
		Seats pq.Int64Array `db:"seats"`
	}
	if err := s.db.SelectContext(ctx, &rows, q, pq.Array(ids)); err != nil {
		return nil, fmt.Errorf("owners of sessions: %w", err)
	}
	out := make(map[string]SessionOwner, len(rows))
	for _, r := range rows {
		o := SessionOwner{UserUUID: r.User}
		for _, n := range r.Seats {
			o.Seats = append(o.Seats, int(n))
		}
		out[r.ID] = o
	}
	return out, nil
}

// LatestSession returns the newest session of a user for a concert; ErrNotFound if the user has none.
func (s *Store) LatestSession(ctx context.Context, concertCode, userUUID string) (booking.Session, error) {
	const q = `SELECT ` + sessionColumns + ` FROM sessions WHERE concert_code = $1 AND user_uuid = $2 ORDER BY seq DESC LIMIT 1`
	var sess sessionRow
	if err := s.db.GetContext(ctx, &sess, q, concertCode, userUUID); err != nil {
		return booking.Session{}, noRows(err, "session of user "+userUUID+" for "+concertCode)
	}
	return sess.session(), nil
}
