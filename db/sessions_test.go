package db_test

import (
	"github.com/lib/pq"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ticketing/concert/booking"
	"github.com/ticketing/concert/db"
	"github.com/ticketing/concert/db/dbtest"
)

// pause pauses or resumes admission to a concert.
func pause(t *testing.T, store *db.Store, code string, paused bool) {
	t.Helper()
	_, err := store.SetAdmission(t.Context(), code, &paused, nil)
	require.NoError(t, err)
}

// statuses reads the statuses of sessions, in the order given.
func statuses(t *testing.T, store *db.Store, sessions ...booking.Session) []booking.Status {
	t.Helper()
	out := make([]booking.Status, len(sessions))
	for i, s := range sessions {
		out[i] = status(t, store, s.ID)
	}
	return out
}

// ids lists the session IDs of admissions, in order.
func ids(as []booking.Admission) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.SessionID
	}
	return out
}

func TestJoinQueueAdmitsUpToMaxActiveAtOnceThenQueues(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	s := newShow(t, store, 2, 10, 1_000)
	users := newUsers(t, store, 3)

	first := join(t, store, s.code, users[0])
	second := join(t, store, s.code, users[1])
	third := join(t, store, s.code, users[2])

	for _, a := range []booking.Session{first, second} {
		assert.Equal(t, statusActive, a.Status)
		require.True(t, !a.ActiveUntil.IsZero(), "an admitted session has an admission deadline")
		assert.WithinDuration(t, time.Now().Add(window), a.ActiveUntil, clockSkew)
	}
	assert.Equal(t, statusWaiting, third.Status)
	assert.False(t, !third.ActiveUntil.IsZero())
	assert.Less(t, first.Seq, second.Seq)
	assert.Less(t, second.Seq, third.Seq)
	assert.Equal(t, s.code, third.ConcertCode)
	assert.Equal(t, users[2], third.UserUUID)
	assert.Equal(t, "session-"+third.ID, third.WorkflowID)
}

func TestJoinQueueWithSameSessionIDReturnsTheExistingRow(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	s := newShow(t, store, 1, 10, 1_000)
	admitted(t, store, s.code, newUser(t, store, 0)) // another user fills the only slot
	p := joinParams(s.code, newUser(t, store, 0))

	first, created, err := store.JoinQueue(t.Context(), p)
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, statusWaiting, first.Status)
	// The slot frees up; joining again must still not re-decide (or re-insert) the session.
	exec(t, store, `UPDATE sessions SET status = 'EXPIRED' WHERE status = 'ACTIVE'`)

	again, created, err := store.JoinQueue(t.Context(), p)
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, first, again)
	assert.Equal(t, 1, count(t, store, `SELECT count(*) FROM sessions WHERE id = $1`, p.SessionID))
}

func TestJoinQueueOutcomes(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	user := newUser(t, store, 0)
	tests := []struct {
		name    string
		setup   func(t *testing.T, s show)
		code    func(s show) string
		want    booking.Status
		wantErr error
	}{
		{name: "free slot and nobody waiting admits at once", want: statusActive},
		{name: "paused concert queues", want: statusWaiting, setup: func(t *testing.T, s show) {
			pause(t, store, s.code, true)
		}},
		{name: "full concert queues", want: statusWaiting, setup: func(t *testing.T, s show) {
			admitted(t, store, s.code, newUser(t, store, 0)) // another user fills the only slot
		}},
		{name: "sold-out concert ends the session SOLD_OUT", want: statusSoldOut, setup: func(t *testing.T, s show) {
			exec(t, store, `UPDATE seats SET status = 'SOLD', session_id = 'buyer-' || seat_number WHERE concert_code = $1`, s.code)
		}},
		{name: "lapsed holds are not sold: concert is not sold out", want: statusActive, setup: func(t *testing.T, s show) {
			exec(t, store, `UPDATE seats SET status = 'HELD', session_id = 'gone-' || seat_number, held_until = now() - interval '1 second'
				WHERE concert_code = $1`, s.code)
		}},
		{name: "unknown concert is not found", wantErr: db.ErrNotFound, code: func(show) string { return "NOPE" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newShow(t, store, 1, 2, 1_000)
			if tt.setup != nil {
				tt.setup(t, s)
			}
			code := s.code
			if tt.code != nil {
				code = tt.code(s)
			}
			p := joinParams(code, user)

			got, created, err := store.JoinQueue(t.Context(), p)

			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.False(t, created)
				assert.Zero(t, count(t, store, `SELECT count(*) FROM sessions WHERE id = $1`, p.SessionID))
				return
			}
			require.NoError(t, err)
			assert.True(t, created)
			assert.Equal(t, tt.want, got.Status)
			assert.Equal(t, tt.want, status(t, store, p.SessionID))
		})
	}
}

func TestJoinQueueKeepsFIFOWhenSomeoneWaitsForAFreeSlot(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	s := newShow(t, store, 1, 10, 1_000)
	users := newUsers(t, store, 3)
	first := admitted(t, store, s.code, users[0])
	waiter := join(t, store, s.code, users[1])
	require.Equal(t, statusWaiting, waiter.Status)
	require.NoError(t, store.Release(t.Context(), first.ID, statusCancelled)) // a slot is free now

	late := join(t, store, s.code, users[2])
	assert.Equal(t, statusWaiting, late.Status, "a later joiner must not overtake the waiting one")

	res, err := store.AdmitNext(t.Context(), s.code, window)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Admitted)
	assert.Equal(t, []booking.Status{statusActive, statusWaiting}, statuses(t, store, waiter, late))
}

// place is a session's position and estimated wait as a status poll computes them: from the concert's
// queue snapshot, for a session that is still waiting.
func place(t *testing.T, store *db.Store, id string) (int64, time.Duration) {
	t.Helper()
	sess, err := store.GetSession(t.Context(), id)
	require.NoError(t, err)
	if sess.Status != statusWaiting {
		return 0, 0
	}
	q, err := store.Queue(t.Context(), sess.ConcertCode)
	require.NoError(t, err)
	later, err := store.WaitingBetween(t.Context(), sess.ConcertCode, q.Fresh(), sess.Seq)
	require.NoError(t, err)
	pos := q.PositionWith(sess.Seq, later)
	return pos, q.EstimatedWait(pos, window)
}

func TestQueuePositionsFollowJoinOrderAndCloseUp(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	s := newShow(t, store, 1, 10, 1_000)
	users := newUsers(t, store, 4)
	in := admitted(t, store, s.code, users[0])
	queue := []booking.Session{join(t, store, s.code, users[1]), join(t, store, s.code, users[2]), join(t, store, s.code, users[3])}
	positions := func() []int64 {
		out := make([]int64, len(queue))
		for i, q := range queue {
			out[i], _ = place(t, store, q.ID)
		}
		return out
	}

	pos, wait := place(t, store, in.ID)
	assert.Zero(t, pos, "an admitted session has no position")
	assert.Zero(t, wait)
	assert.Equal(t, []int64{1, 2, 3}, positions())

	var waits []time.Duration
	for _, q := range queue {
		_, wait := place(t, store, q.ID)
		assert.Positive(t, wait)
		waits = append(waits, wait)
	}
	assert.IsIncreasing(t, waits, "a later place waits longer")

	require.NoError(t, store.Release(t.Context(), queue[0].ID, statusCancelled))
	assert.Equal(t, []int64{0, 1, 2}, positions(), "the cancelled session has no place and the others close up")
}

func TestQueueWithoutRecentAdmissionsAssumesWholeWindows(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	s := newShow(t, store, 2, 10, 1_000)
	waits := []time.Duration{window, window, 2 * window, 2 * window, 3 * window}
	users := newUsers(t, store, len(waits))
	pause(t, store, s.code, true) // nobody is admitted, so there is no recent rate
	var got []time.Duration
	for i := range waits {
		q := join(t, store, s.code, users[i])
		_, wait := place(t, store, q.ID)
		got = append(got, wait)
	}
	assert.Equal(t, waits, got, "maxActive 2: two sessions per window")
}

func TestSessionLookupsOfUnknownIDsAreNotFound(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	_, err := store.GetSession(t.Context(), uuid.NewString())
	require.ErrorIs(t, err, db.ErrNotFound)
	_, err = store.AdmitNext(t.Context(), "NOPE", window)
	require.ErrorIs(t, err, db.ErrNotFound)
}

func TestAdmitNextAdmitsInFIFOOrderAndReportsUntilNotified(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	s := newShow(t, store, 2, 10, 1_000)
	pause(t, store, s.code, true)
	var queue []booking.Session
	for _, user := range newUsers(t, store, 5) {
		queue = append(queue, join(t, store, s.code, user))
	}

	res, err := store.AdmitNext(t.Context(), s.code, window)
	require.NoError(t, err)
	assert.True(t, res.Paused)
	assert.Zero(t, res.Admitted, "a paused concert admits nobody")
	assert.Empty(t, res.Notify)
	assert.Equal(t, 5, res.Waiting)

	pause(t, store, s.code, false)
	res, err = store.AdmitNext(t.Context(), s.code, window)
	require.NoError(t, err)
	assert.Equal(t, 2, res.Admitted)
	assert.Equal(t, 2, res.Live)
	assert.Equal(t, 3, res.Waiting)
	assert.Equal(t, 2, res.MaxActive)
	assert.Equal(t, []string{queue[0].ID, queue[1].ID}, ids(res.Notify))
	for _, a := range res.Notify {
		assert.Equal(t, statusActive, a.Notice.Status)
		assert.Equal(t, "session-"+a.SessionID, a.WorkflowID)
		require.True(t, !a.Notice.ActiveUntil.IsZero())
		assert.WithinDuration(t, time.Now().Add(window), a.Notice.ActiveUntil, clockSkew)
	}
	assert.Equal(t, []booking.Status{statusActive, statusActive, statusWaiting, statusWaiting, statusWaiting}, statuses(t, store, queue...))

	res, err = store.AdmitNext(t.Context(), s.code, window)
	require.NoError(t, err)
	assert.Zero(t, res.Admitted, "no slot is free")
	assert.Empty(t, res.Notify, "an admission a moment old is left to the notification under way")
	assert.Equal(t, 2, res.Untold, "but a later step must look at it again")
	assert.WithinDuration(t, time.Now().Add(window), res.NextFree, clockSkew, "the first slot frees when its window ends")

	exec(t, store, `UPDATE sessions SET status_since = status_since - interval '4 seconds' WHERE id = ANY($1)`,
		pq.Array([]string{queue[0].ID, queue[1].ID}))
	res, err = store.AdmitNext(t.Context(), s.code, window)
	require.NoError(t, err)
	assert.Equal(t, []string{queue[0].ID, queue[1].ID}, ids(res.Notify), "unnotified admissions are reported again")

	require.NoError(t, store.MarkNotified(t.Context(), ids(res.Notify)))
	res, err = store.AdmitNext(t.Context(), s.code, window)
	require.NoError(t, err)
	assert.Empty(t, res.Notify)
	assert.Zero(t, res.Untold)

	lapseAdmission(t, store, queue[1].ID) // its window passed: the slot is free before its workflow notices
	res, err = store.AdmitNext(t.Context(), s.code, window)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Admitted)
	assert.Equal(t, []string{queue[2].ID}, ids(res.Notify))
	assert.Equal(t, []booking.Status{statusActive, statusActive, statusActive, statusWaiting, statusWaiting}, statuses(t, store, queue...))
}

func TestAdmitNextFreesSlotsOnlyOfSessionsOutsideTheirWindow(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	tests := []struct {
		name        string
		occupant    func(t *testing.T, s show, occupant booking.Session)
		wantAdmit   int
		wantWaiting booking.Status
	}{
		{name: "ACTIVE within its window keeps the slot", wantAdmit: 0, wantWaiting: statusWaiting,
			occupant: func(*testing.T, show, booking.Session) {}},
		{name: "ACTIVE past its window frees the slot", wantAdmit: 1, wantWaiting: statusActive,
			occupant: func(t *testing.T, _ show, o booking.Session) { lapseAdmission(t, store, o.ID) }},
		{name: "HELD within its hold keeps the slot", wantAdmit: 0, wantWaiting: statusWaiting,
			occupant: func(t *testing.T, s show, o booking.Session) { hold(t, store, s, o.ID, 1) }},
		{name: "HELD past its hold frees the slot", wantAdmit: 1, wantWaiting: statusActive,
			occupant: func(t *testing.T, s show, o booking.Session) { hold(t, store, s, o.ID, 1); lapseHold(t, store, o.ID) }},
		{name: "CANCELLED frees the slot", wantAdmit: 1, wantWaiting: statusActive,
			occupant: func(t *testing.T, _ show, o booking.Session) {
				require.NoError(t, store.Release(t.Context(), o.ID, statusCancelled))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newShow(t, store, 1, 3, 1_000)
			users := newUsers(t, store, 2)
			occupant := admitted(t, store, s.code, users[0])
			waiter := join(t, store, s.code, users[1])
			tt.occupant(t, s, occupant)

			res, err := store.AdmitNext(t.Context(), s.code, window)

			require.NoError(t, err)
			assert.Equal(t, tt.wantAdmit, res.Admitted)
			assert.Equal(t, 1, res.Live, "the slot is used either by the occupant or by the admitted waiter")
			assert.Equal(t, tt.wantWaiting, status(t, store, waiter.ID))
		})
	}
}

func TestAdmitNextEndsWaitingAndActiveSessionsSoldOutWhenEverySeatIsSold(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	s := newShow(t, store, 2, 1, 1_000)
	buyer := admitted(t, store, s.code, newUser(t, store, 1_000))
	browser := admitted(t, store, s.code, newUser(t, store, 0))
	waiter := join(t, store, s.code, newUser(t, store, 0))
	require.Equal(t, statusWaiting, waiter.Status)
	hold(t, store, s, buyer.ID, 1)
	_, err := store.Pay(t.Context(), buyer.ID)
	require.NoError(t, err)

	res, err := store.AdmitNext(t.Context(), s.code, window)

	require.NoError(t, err)
	assert.True(t, res.SoldOut)
	assert.Zero(t, res.Admitted)
	assert.Zero(t, res.Waiting)
	assert.Equal(t, []string{browser.ID, waiter.ID}, ids(res.Notify))
	for _, a := range res.Notify {
		assert.Equal(t, statusSoldOut, a.Notice.Status)
	}
	assert.Equal(t, []booking.Status{statusPaid, statusSoldOut, statusSoldOut}, statuses(t, store, buyer, browser, waiter))

	require.NoError(t, store.MarkNotified(t.Context(), ids(res.Notify)))
	res, err = store.AdmitNext(t.Context(), s.code, window)
	require.NoError(t, err)
	assert.Empty(t, res.Notify)
}

func TestAdmitNextNeverAdmitsPastMaxActiveUnderConcurrency(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	const maxActive, joiners, admitters = 5, 60, 10
	s := newShow(t, store, maxActive, 10, 1_000)
	users := newUsers(t, store, joiners)

	errs := make([]error, joiners+admitters)
	var overfull atomic.Int32
	together(joiners+admitters, func(i int) {
		if i < joiners {
			_, _, errs[i] = store.JoinQueue(t.Context(), joinParams(s.code, users[i]))
			return
		}
		for range 5 {
			res, err := store.AdmitNext(t.Context(), s.code, window)
			if err != nil {
				errs[i] = err
				return
			}
			if res.Live > maxActive {
				overfull.Add(1)
			}
		}
	})

	for i, err := range errs {
		require.NoError(t, err, "goroutine %d", i)
	}
	assert.Zero(t, overfull.Load(), "an admission step saw more live sessions than maxActive")
	assert.Equal(t, maxActive, count(t, store, `SELECT count(*) FROM sessions WHERE status = 'ACTIVE'`))
	assert.Equal(t, joiners-maxActive, count(t, store, `SELECT count(*) FROM sessions WHERE status = 'WAITING'`))
	// The admitted ones are the first five in queue order.
	assert.Equal(t, maxActive, count(t, store, `
		SELECT count(*) FROM (SELECT status FROM sessions ORDER BY seq LIMIT $1) first WHERE status = 'ACTIVE'`, maxActive))
}

func TestWaitersOfSaysWhetherAnyoneWaitsForTheSessionsConcert(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	s := newShow(t, store, 1, 3, 1_000)
	users := newUsers(t, store, 2)
	occupant := admitted(t, store, s.code, users[0])

	code, waiting, err := store.WaitersOf(t.Context(), occupant.ID)
	require.NoError(t, err)
	assert.Equal(t, s.code, code)
	assert.False(t, waiting, "nobody waits yet")

	join(t, store, s.code, users[1])
	_, waiting, err = store.WaitersOf(t.Context(), occupant.ID)
	require.NoError(t, err)
	assert.True(t, waiting)

	_, _, err = store.WaitersOf(t.Context(), uuid.NewString())
	assert.ErrorIs(t, err, db.ErrNotFound)
}
