package db_test

import (
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ticketing/concert/booking"
	"github.com/ticketing/concert/db"
	"github.com/ticketing/concert/db/dbtest"
)

func TestReleaseFreesTheSeatAndEndsTheSessionOnce(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	user := newUser(t, store, 0)
	for _, end := range []booking.Status{statusExpired, statusCancelled} {
		t.Run(string(end), func(t *testing.T) {
			t.Parallel()
			s := newShow(t, store, 1, 2, 1_000)
			sess, _ := heldSession(t, store, s, user)

			require.NoError(t, store.Release(t.Context(), sess.ID, end))

			assert.Equal(t, seatRow{Status: seatAvailable}, seat(t, store, s, 1))
			assert.Equal(t, end, status(t, store, sess.ID))
			dates, err := store.ConcertDates(t.Context(), s.code)
			require.NoError(t, err)
			assert.Equal(t, 2, dates[0].AvailableSeats)

			// A retried or late second release, even with another ending, changes nothing.
			other := statusCancelled
			if end == statusCancelled {
				other = statusExpired
			}
			require.NoError(t, store.Release(t.Context(), sess.ID, other))
			assert.Equal(t, end, status(t, store, sess.ID))
			assert.Equal(t, seatRow{Status: seatAvailable}, seat(t, store, s, 1))
		})
	}
}

func TestReleaseAfterAnotherSessionTookTheLapsedSeatLeavesThatSeatAlone(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	s := newShow(t, store, 2, 2, 1_000)
	users := newUsers(t, store, 2)
	slow, _ := heldSession(t, store, s, users[0])
	lapseHold(t, store, slow.ID)
	next := admitted(t, store, s.code, users[1])
	r := hold(t, store, s, next.ID, 1)
	taken := seat(t, store, s, 1)

	require.NoError(t, store.Release(t.Context(), slow.ID, statusExpired))

	assert.Equal(t, taken, seat(t, store, s, 1))
	assert.Equal(t, next.ID, taken.SessionID.String)
	assert.Equal(t, r.ReservationID, taken.ReservationID.String)
	assert.Equal(t, statusExpired, status(t, store, slow.ID))
	assert.Equal(t, statusHeld, status(t, store, next.ID))
}

func TestReleaseOfAPaidSessionChangesNothing(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	s := newShow(t, store, 1, 2, 1_000)
	user := newUser(t, store, 1_000)
	sess, _ := heldSession(t, store, s, user)
	_, err := store.Pay(t.Context(), sess.ID)
	require.NoError(t, err)
	sold := seat(t, store, s, 1)

	require.NoError(t, store.Release(t.Context(), sess.ID, statusExpired))

	assert.Equal(t, sold, seat(t, store, s, 1))
	assert.Equal(t, seatSold, sold.Status)
	assert.Equal(t, statusPaid, status(t, store, sess.ID))
	assert.Zero(t, balance(t, store, user), "nothing is refunded")
}

func TestReleaseOfAWaitingSessionEndsIt(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	s := newShow(t, store, 1, 2, 1_000)
	users := newUsers(t, store, 2)
	admitted(t, store, s.code, users[0])
	waiter := join(t, store, s.code, users[1])
	require.Equal(t, statusWaiting, waiter.Status)

	require.NoError(t, store.Release(t.Context(), waiter.ID, statusCancelled))

	assert.Equal(t, statusCancelled, status(t, store, waiter.ID))
	res, err := store.AdmitNext(t.Context(), s.code, window)
	require.NoError(t, err)
	assert.Zero(t, res.Waiting, "a cancelled session no longer waits")
}

// TestReleaseFreesASeatWhoseHoldCommittedMeanwhile proves that a Release racing with the commit of the same
// session's HoldSeat does not leave the seat HELD by an ended session: the hold's transaction holds the
// session row, Release waits for it and then frees the seat it can now see.
func TestReleaseFreesASeatWhoseHoldCommittedMeanwhile(t *testing.T) {
	t.Parallel()
	store, code, user := raceFixture(t)
	sess, _, err := store.JoinQueue(t.Context(), db.JoinParams{SessionID: "s-race", WorkflowID: "w", ConcertCode: code, UserUUID: user, AdmissionWindow: time.Minute})
	require.NoError(t, err)
	require.Equal(t, statusActive, sess.Status)

	seatFreedAfterCommit(t, store, code, "s-race", func() error { return store.Release(t.Context(), "s-race", "CANCELLED") })
	got, err := store.GetSession(t.Context(), "s-race")
	require.NoError(t, err)
	assert.Equal(t, statusCancelled, got.Status)
}

// raceFixture is a store with a two-seat concert and one user, for the commit-race tests.
func raceFixture(t *testing.T) (*db.Store, string, string) {
	t.Helper()
	store := dbtest.New(t)
	code := "RACE"
	require.NoError(t, store.CreateConcert(t.Context(), db.NewConcert{Code: code, Title: "t", MaxActive: 5,
		Dates: []db.NewConcertDate{{Date: time.Date(2026, 12, 24, 19, 0, 0, 0, time.UTC), Seats: 2, Price: 10}}}))
	u, err := store.CreateUser(t.Context())
	require.NoError(t, err)
	return store, code, u.UUID
}

// seatFreedAfterCommit runs HoldSeat's statements for session on seat 1 in a transaction left open, starts
// racer, waits until racer is blocked on the hold's locks, commits the hold, and checks that racer still freed
// the seat.
func seatFreedAfterCommit(t *testing.T, store *db.Store, code, session string, racer func() error) {
	t.Helper()
	tx, err := store.SQL().Beginx()
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	_, err = tx.Exec(`UPDATE sessions SET status = 'HELD', held_until = now() + interval '1 minute' WHERE id = $1`, session)
	require.NoError(t, err)
	_, err = tx.Exec(`UPDATE seats SET status = 'HELD', session_id = $2, reservation_id = gen_random_uuid(), held_until = now() + interval '1 minute' WHERE concert_code = $1 AND seat_number = 1`, code, session)
	require.NoError(t, err)

	done := make(chan error, 1)
	go func() { done <- racer() }()
	require.Eventually(t, func() bool { // the racer waits for the session row the hold holds
		var waiting int
		_ = store.SQL().Get(&waiting, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)
		return waiting > 0
	}, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, tx.Commit())
	require.NoError(t, <-done)

	var seat string
	require.NoError(t, store.SQL().Get(&seat, `SELECT status FROM seats WHERE concert_code = $1 AND seat_number = 1`, code))
	assert.Equal(t, "AVAILABLE", seat)
}

// TestJoinQueueEndsALiveSessionLeftByAClosedRun proves the one-live-session rule: when a user's new session
// joins while an older one of the same concert is still live in the database (its workflow was terminated
// and will never end it), the old one ends CANCELLED and its seat is freed, instead of the join failing.
func TestJoinQueueEndsALiveSessionLeftByAClosedRun(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	ctx := t.Context()
	code := "ORPHAN"
	date := time.Date(2026, 12, 24, 19, 0, 0, 0, time.UTC)
	require.NoError(t, store.CreateConcert(ctx, db.NewConcert{Code: code, Title: "t", MaxActive: 5,
		Dates: []db.NewConcertDate{{Date: date, Seats: 2, Price: 10}}}))
	u, err := store.CreateUser(ctx)
	require.NoError(t, err)
	join := func(id string) booking.Session {
		s, _, err := store.JoinQueue(ctx, db.JoinParams{SessionID: id, WorkflowID: "w", ConcertCode: code, UserUUID: u.UUID, AdmissionWindow: time.Minute})
		require.NoError(t, err)
		return s
	}
	join("old")
	_, err = store.HoldSeat(ctx, booking.Hold{SessionID: "old", ConcertCode: code, ConcertDate: date, SeatNumber: 2,
		ReservationID: "6a1f6a34-4a38-4b8e-9a0e-3a3c8f0b2e11", Window: time.Minute})
	require.NoError(t, err)

	fresh := join("new")
	assert.Equal(t, statusActive, fresh.Status)
	old, err := store.GetSession(ctx, "old")
	require.NoError(t, err)
	assert.Equal(t, statusCancelled, old.Status)
	var seat string
	require.NoError(t, store.SQL().Get(&seat, `SELECT status FROM seats WHERE concert_code = $1 AND seat_number = 2`, code))
	assert.Equal(t, "AVAILABLE", seat)
	_, err = store.SQL().Exec(`UPDATE sessions SET status = 'ACTIVE' WHERE id = 'old'`)
	var pqErr *pq.Error
	require.ErrorAs(t, err, &pqErr, "the database refuses a second live session of one user and concert")
	assert.Equal(t, "sessions_one_live_per_user", pqErr.Constraint)
}

// TestJoinQueueFreesASeatTheClosedRunHeldMeanwhile proves the same for the orphan clean-up of JoinQueue: a
// hold of the closed run that commits while the new session joins does not leave its seat stranded.
func TestJoinQueueFreesASeatTheClosedRunHeldMeanwhile(t *testing.T) {
	t.Parallel()
	store, code, user := raceFixture(t)
	join := func(id string) error {
		_, _, err := store.JoinQueue(t.Context(), db.JoinParams{SessionID: id, WorkflowID: "w", ConcertCode: code, UserUUID: user, AdmissionWindow: time.Minute})
		return err
	}
	require.NoError(t, join("old"))

	seatFreedAfterCommit(t, store, code, "old", func() error { return join("new") })
	old, err := store.GetSession(t.Context(), "old")
	require.NoError(t, err)
	assert.Equal(t, statusCancelled, old.Status)
}
