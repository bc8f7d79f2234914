//go:build unix

package chaos

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
)

// This file is the chaos event "the worker dies as the sale opens": a third concert, CHAOS-OPENING, opens a
// few seconds into the load, and its fans all come before, so they join its pre-queue (WAITING, told
// opensAt). At the opening the waiting room, a workflow on the worker, draws their order: one transaction
// deals their sequence numbers out again and records drawn_at, and the same step then tells the sessions it
// admitted. Nothing dies before the opening; from then on the chaos watches drawn_at and SIGKILLs the worker
// as soon as the draw has committed, so the step's notices are lost with it and the draw's admissions reach
// the fans only through their own reserves and the next worker. It records the places the draw dealt; the
// verification requires that they never change (the pre-queue is drawn once), that nobody is admitted before
// the opening and that every pre-queued fan ends.

// drawWatchLimit bounds the wait for the draw after the opening, which the waiting room's timer brings on
// the worker: a worker or a Temporal slow to hand it the task delays it, but not by a minute.
const drawWatchLimit = time.Minute

// openingStats is what the opening event saw and the verification found.
type openingStats struct {
	Code    string
	OpensAt time.Time // the opening the concert was created with
	// DrawnAt is drawn_at as the watch saw it (the draw's transaction time), and KilledAfter how long after it
	// the worker was SIGKILLed.
	DrawnAt     time.Time
	KilledAfter time.Duration
	Dealt       map[string]int64 // pre-queued session → the sequence number the draw dealt it
	Reordered   int              // pre-queued sessions dealt another place in line than their arrival's
	// Admitted counts the pre-queued sessions admitted when the worker died, Untold those of them not yet
	// marked told (their workflows not started by the step's notices, or not known to be).
	Admitted, Untold int
	Missed           string // why the watch saw no draw
	// Filled in by the verification.
	PreQueued     int            // sessions that joined before the opening
	ToldOpensAt   int            // users told to wait for the opening
	Outcomes      map[string]int // how the pre-queued sessions ended
	FirstAdmitted time.Duration  // from the opening to the first admission
}

// crashWorkerAtDraw polls drawn_at of the concert until its pre-queue is drawn, SIGKILLs the worker at once,
// records the places the draw dealt and starts the worker again.
func (s *stack) crashWorkerAtDraw(ctx context.Context, t *testing.T, st *chaosStats, start time.Time) {
	o := &st.Opening
	store, err := sqlx.Open("postgres", s.dbURL)
	if err != nil {
		t.Errorf("open database: %v", err)
		return
	}
	defer store.Close()
	deadline := time.Now().Add(drawWatchLimit)
	var drawn sql.NullTime
	for {
		err := store.GetContext(ctx, &drawn, `SELECT drawn_at FROM concerts WHERE code = $1`, o.Code)
		if drawn.Valid {
			break
		}
		if time.Now().After(deadline) || !sleep(ctx, 10*time.Millisecond) {
			o.Missed = fmt.Sprintf("not drawn %s after the opening (last error: %v)", rd(time.Since(o.OpensAt)), err)
			st.event(start, "the sale of %s opened, but its pre-queue was %s", o.Code, o.Missed)
			return
		}
	}
	if err := s.worker.kill(); err != nil {
		t.Errorf("kill worker: %v", err)
		return
	}
	o.DrawnAt, o.KilledAfter = drawn.Time, time.Since(drawn.Time)
	st.WorkerKills++
	// Only a draw changes a sequence number, so what this reads is what the draw dealt.
	var rows []struct {
		ID        string `db:"id"`
		Seq       int64  `db:"seq"`
		Reordered bool   `db:"reordered"`
		Admitted  bool   `db:"admitted"`
		Untold    bool   `db:"untold"`
	}
	err = store.SelectContext(ctx, &rows, `
SELECT id, seq, row_number() OVER (ORDER BY seq) <> row_number() OVER (ORDER BY x.created_at, seq) AS reordered,
       x.admitted_at IS NOT NULL AS admitted, x.admitted_at IS NOT NULL AND NOT x.notified AS untold
FROM sessions x JOIN concerts c ON c.code = x.concert_code
WHERE x.concert_code = $1 AND x.created_at < c.opens_at`, o.Code)
	if err != nil {
		t.Errorf("read the places dealt by the draw: %v", err)
	}
	o.Dealt = map[string]int64{}
	for _, r := range rows {
		o.Dealt[r.ID] = r.Seq
		if r.Reordered {
			o.Reordered++
		}
		if r.Admitted {
			o.Admitted++
		}
		if r.Untold {
			o.Untold++
		}
	}
	st.event(start, "worker SIGKILLed %s after the draw of %s's pre-queue (%d fans, drawn %s after the opening; %d admitted, %d of them not marked told)",
		ms(o.KilledAfter), o.Code, len(o.Dealt), ms(o.DrawnAt.Sub(o.OpensAt)), o.Admitted, o.Untold)
	s.startWorker(t, st)
}

// verifyOpening requires that the concert's pre-queue was drawn once, at or after the opening (drawn_at is
// what the watch saw, and every pre-queued session keeps the place dealt then), that no session of the
// concert was admitted before the opening, and that every session that joined before the opening, and every
// user told to wait for it, ended.
func verifyOpening(ctx context.Context, t *testing.T, o *openingStats, store *sqlx.DB, users []*user, dbStatus map[string]string) {
	var c struct {
		OpensAt time.Time    `db:"opens_at"`
		DrawnAt sql.NullTime `db:"drawn_at"`
	}
	if err := store.GetContext(ctx, &c, `SELECT opens_at, drawn_at FROM concerts WHERE code = $1`, o.Code); err != nil {
		t.Errorf("read the opening of %s: %v", o.Code, err)
		return
	}
	switch {
	case !c.OpensAt.Equal(o.OpensAt):
		t.Errorf("%s opens at %s, not at %s as it was created", o.Code, c.OpensAt, o.OpensAt)
	case !c.DrawnAt.Valid:
		t.Errorf("the pre-queue of %s was never drawn", o.Code)
	case c.DrawnAt.Time.Before(c.OpensAt):
		t.Errorf("the pre-queue of %s was drawn at %s, before the opening at %s", o.Code, c.DrawnAt.Time, c.OpensAt)
	case o.Dealt == nil:
		t.Errorf("the chaos did not see the pre-queue of %s drawn: %s", o.Code, o.Missed)
	case !c.DrawnAt.Time.Equal(o.DrawnAt):
		t.Errorf("the pre-queue of %s was drawn again: at %s, and at %s", o.Code, o.DrawnAt, c.DrawnAt.Time)
	}
	var rows []struct {
		ID         string       `db:"id"`
		Seq        int64        `db:"seq"`
		Status     string       `db:"status"`
		PreQueued  bool         `db:"pre_queued"`
		AdmittedAt sql.NullTime `db:"admitted_at"`
	}
	if err := store.SelectContext(ctx, &rows, `
SELECT id, seq, status, created_at < $2 AS pre_queued, admitted_at FROM sessions WHERE concert_code = $1`, o.Code, c.OpensAt); err != nil {
		t.Errorf("read the sessions of %s: %v", o.Code, err)
		return
	}
	o.Outcomes = map[string]int{}
	o.FirstAdmitted = -1
	found := map[string]bool{}
	for _, r := range rows {
		found[r.ID] = true
		if at := r.AdmittedAt.Time; r.AdmittedAt.Valid {
			if at.Before(c.OpensAt) {
				t.Errorf("session %s of %s was admitted at %s, before the sale opened at %s", r.ID, o.Code, at, c.OpensAt)
			}
			if after := at.Sub(c.OpensAt); o.FirstAdmitted < 0 || after < o.FirstAdmitted {
				o.FirstAdmitted = after
			}
		}
		if dealt, ok := o.Dealt[r.ID]; ok && dealt != r.Seq {
			t.Errorf("session %s of %s was dealt place %d at the draw and has %d now: the pre-queue was dealt again", r.ID, o.Code, dealt, r.Seq)
		}
		if !r.PreQueued {
			continue
		}
		o.PreQueued++
		o.Outcomes[r.Status]++
		if !terminalStatuses[r.Status] {
			t.Errorf("session %s joined the pre-queue of %s and did not end: %s", r.ID, o.Code, r.Status)
		}
	}
	for id := range o.Dealt {
		if !found[id] {
			t.Errorf("session %s was dealt a place at the draw of %s and is gone", id, o.Code)
		}
	}
	if o.PreQueued == 0 {
		t.Errorf("no fan joined the pre-queue of %s before its opening", o.Code)
	}
	for _, u := range users {
		if !u.toldOpensAt {
			continue
		}
		o.ToldOpensAt++
		if st := dbStatus[u.session()]; !terminalStatuses[st] {
			t.Errorf("session %s was told to wait for the opening of %s and did not end: %s", u.session(), o.Code, st)
		}
	}
}

// lines are the report's lines on the opening.
func (o *openingStats) lines() []string {
	if o.Dealt == nil {
		return []string{fmt.Sprintf("%s: no draw seen (%s)", o.Code, o.Missed)}
	}
	first := "nobody admitted"
	if o.FirstAdmitted >= 0 {
		first = "the first admitted " + ms(o.FirstAdmitted) + " after the opening, nobody before"
	}
	return []string{
		fmt.Sprintf("%s: %d fans joined the pre-queue before the opening, %d users were told to wait for it; drawn %s after it, %d of %d dealt another place in line than their arrival's",
			o.Code, o.PreQueued, o.ToldOpensAt, ms(o.DrawnAt.Sub(o.OpensAt)), o.Reordered, len(o.Dealt)),
		fmt.Sprintf("the worker SIGKILLed %s after the draw, with %d of the %d it admitted not marked told; every place dealt kept, %s; the pre-queue ended %s",
			ms(o.KilledAfter), o.Untold, o.Admitted, first, fmtCounts(o.Outcomes)),
	}
}

// ms rounds a duration to the millisecond, for the times around the opening.
func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }
