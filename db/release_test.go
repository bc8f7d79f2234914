package db_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ticketing/concert/db/dbtest"
)

func TestReleaseFreesTheSeatAndEndsTheSessionOnce(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	user := newUser(t, store, 0)
	for _, end := range []string{statusExpired, statusCancelled} {
		t.Run(end, func(t *testing.T) {
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
	user := newUser(t, store, 0)
	slow, _ := heldSession(t, store, s, user)
	lapseHold(t, store, slow.ID)
	next := admitted(t, store, s.code, user)
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
	user := newUser(t, store, 0)
	admitted(t, store, s.code, user)
	waiter := join(t, store, s.code, user)

	require.NoError(t, store.Release(t.Context(), waiter.ID, statusCancelled))

	assert.Equal(t, statusCancelled, status(t, store, waiter.ID))
	res, err := store.AdmitNext(t.Context(), s.code, window)
	require.NoError(t, err)
	assert.Zero(t, res.Waiting, "a cancelled session no longer waits")
}
