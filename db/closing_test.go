package db_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ticketing/concert/booking"
	"github.com/ticketing/concert/db"
	"github.com/ticketing/concert/db/dbtest"
)

// TestTheSaleClosesAtItsClosingTime proves closesAt from the store's side: the first waiting-room step
// after the closing ends everyone still waiting CLOSED (and says whom to tell), admits nobody and leaves
// the admitted fan to finish; a fan who asks after it ends CLOSED at once; the closed concert leaves the
// list; its closing can no longer move; a closing not after the opening is refused.
func TestTheSaleClosesAtItsClosingTime(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	code := "SHUT-" + uuid.NewString()[:8]
	require.NoError(t, store.CreateConcert(t.Context(), db.NewConcert{
		Code: code, Title: "Closing", MaxActive: 1, ClosesAt: time.Now().Add(time.Hour),
		Dates: []db.NewConcertDate{{Date: showDate, Seats: 10, Price: 1_000}},
	}))
	err := store.CreateConcert(t.Context(), db.NewConcert{
		Code: "BAD-" + uuid.NewString()[:8], Title: "Backwards", MaxActive: 1,
		OpensAt: time.Now().Add(time.Hour), ClosesAt: time.Now().Add(time.Minute),
		Dates: []db.NewConcertDate{{Date: showDate, Seats: 1, Price: 1_000}},
	})
	require.ErrorIs(t, err, db.ErrClosesBeforeOpening)

	users := newUsers(t, store, 4)
	in, err := store.Join(t.Context(), newSession(code, users[0]))
	require.NoError(t, err)
	require.Equal(t, statusActive, in.Status)
	var waiting []string
	for _, u := range users[1:3] {
		j, err := store.Join(t.Context(), newSession(code, u))
		require.NoError(t, err)
		require.Equal(t, statusWaiting, j.Status)
		waiting = append(waiting, j.ID)
	}
	step, err := store.AdmitNext(t.Context(), code, window)
	require.NoError(t, err)
	assert.False(t, step.Closed)
	assert.WithinDuration(t, time.Now().Add(time.Hour), step.ClosesAt, time.Minute, "the step says when the sale closes")
	listed, err := store.ConcertsOnSale(t.Context())
	require.NoError(t, err)
	assert.True(t, onSale(listed, code))

	require.NoError(t, setClosing(t, store, code, time.Now().Add(-time.Second)))                          // support closes it now
	exec(t, store, `UPDATE sessions SET active_until = now() - interval '1 second' WHERE id = $1`, in.ID) // a slot frees
	step, err = store.AdmitNext(t.Context(), code, window)
	require.NoError(t, err)
	assert.True(t, step.Closed)
	assert.Zero(t, step.Admitted, "nobody is admitted after the closing")
	told := map[string]booking.Status{}
	for _, n := range step.Notify {
		told[n.SessionID] = n.Notice.Status
	}
	for _, id := range waiting {
		assert.Equal(t, booking.StatusClosed, status(t, store, id))
		assert.Equal(t, booking.StatusClosed, told[id], "the waiting room tells the session's workflow")
	}
	assert.Equal(t, statusActive, status(t, store, in.ID), "an admitted fan finishes in their window")

	late, err := store.Join(t.Context(), newSession(code, users[3]))
	require.NoError(t, err)
	assert.Equal(t, booking.StatusClosed, late.Status, "a fan who asks after the closing is turned away")
	listed, err = store.ConcertsOnSale(t.Context())
	require.NoError(t, err)
	assert.False(t, onSale(listed, code), "a closed sale leaves the list")
	require.ErrorIs(t, setClosing(t, store, code, time.Now().Add(time.Hour)), db.ErrSaleClosed)

	found, err := store.CheckInvariants(t.Context(), time.Hour)
	require.NoError(t, err)
	assert.Empty(t, found)
	exec(t, store, `UPDATE sessions SET admitted_at = now() + interval '1 minute' WHERE id = $1`, in.ID)
	requireViolations(t, store, time.Hour, []db.Violation{
		{Invariant: db.InvariantAdmittedWithinTheSale, Subject: "session " + in.ID, Detail: "after the sale closed"},
	})
}

// TestAnOpeningCannotMoveAfterTheClosing proves that the opening and the closing keep their order when
// either moves.
func TestAnOpeningCannotMoveAfterTheClosing(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	code := "PAIR-" + uuid.NewString()[:8]
	require.NoError(t, store.CreateConcert(t.Context(), db.NewConcert{
		Code: code, Title: "Window", MaxActive: 1, OpensAt: time.Now().Add(time.Hour), ClosesAt: time.Now().Add(2 * time.Hour),
		Dates: []db.NewConcertDate{{Date: showDate, Seats: 1, Price: 1_000}},
	}))
	require.ErrorIs(t, setOpening(t, store, code, time.Now().Add(3*time.Hour)), db.ErrClosesBeforeOpening)
	require.ErrorIs(t, setClosing(t, store, code, time.Now().Add(30*time.Minute)), db.ErrClosesBeforeOpening)
	require.NoError(t, setClosing(t, store, code, time.Now().Add(4*time.Hour)))
	require.NoError(t, setOpening(t, store, code, time.Now().Add(3*time.Hour)))
	require.ErrorIs(t, setClosing(t, store, "NOPE-"+uuid.NewString()[:8], time.Now()), db.ErrNotFound)
}

func onSale(list []booking.OnSale, code string) bool {
	for _, c := range list {
		if c.Code == code {
			return true
		}
	}
	return false
}

// TestTheOpeningOfASaleWithSessionsAndNoOpeningTimeCannotMove proves that a sale without an opening time
// counts as opened once anybody joined, whether its closing moves in the same change or not.
func TestTheOpeningOfASaleWithSessionsAndNoOpeningTimeCannotMove(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	s := newShow(t, store, 5, 2, 1_000)
	admitted(t, store, s.code, newUser(t, store, 0))
	soon := time.Now().Add(time.Hour)
	require.ErrorIs(t, setOpening(t, store, s.code, soon), db.ErrSaleOpened)
	require.NoError(t, setClosing(t, store, s.code, soon))
	require.ErrorIs(t, store.SetSaleTimes(t.Context(), s.code, &soon, nil), db.ErrSaleOpened)
}

// setOpening and setClosing move one of a sale's times, as the admission endpoint does with one given.
func setOpening(t *testing.T, store *db.Store, code string, at time.Time) error {
	return store.SetSaleTimes(t.Context(), code, &at, nil)
}

func setClosing(t *testing.T, store *db.Store, code string, at time.Time) error {
	return store.SetSaleTimes(t.Context(), code, nil, &at)
}
