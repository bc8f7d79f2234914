package db_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ticketing/concert/db"
	"github.com/ticketing/concert/db/dbtest"
)

// statsOf returns the figures of one concert from ConcertStats, failing the test if it is missing.
func statsOf(t *testing.T, store *db.Store, code string) db.ConcertStats {
	t.Helper()
	all, err := store.ConcertStats(t.Context())
	require.NoError(t, err)
	for _, s := range all {
		if s.ConcertCode == code {
			return s
		}
	}
	require.Failf(t, "concert missing from stats", "concert %s", code)
	return db.ConcertStats{}
}

func TestConcertStatsCountsEverySessionStatusLiveHoldsAndAdmissions(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	s := newShow(t, store, 10, 6, 1_000)
	users := newUsers(t, store, 8) // one per session but the paid one's

	paid := admitted(t, store, s.code, newUser(t, store, 10_000))
	hold(t, store, s, paid.ID, 1)
	_, err := store.Pay(t.Context(), paid.ID)
	require.NoError(t, err)
	held := admitted(t, store, s.code, users[0])
	hold(t, store, s, held.ID, 2)
	lapsed := admitted(t, store, s.code, users[1])
	hold(t, store, s, lapsed.ID, 3)
	lapseHold(t, store, lapsed.ID) // the session stays HELD until its workflow ends it; the seat is free
	expired := admitted(t, store, s.code, users[2])
	hold(t, store, s, expired.ID, 4)
	require.NoError(t, store.Release(t.Context(), expired.ID, statusExpired))
	cancelled := admitted(t, store, s.code, users[3])
	require.NoError(t, store.Release(t.Context(), cancelled.ID, statusCancelled))
	admitted(t, store, s.code, users[4]) // stays ACTIVE
	pause(t, store, s.code, true)
	join(t, store, s.code, users[5])
	join(t, store, s.code, users[6])
	gaveUp := join(t, store, s.code, users[7])
	require.NoError(t, store.Release(t.Context(), gaveUp.ID, statusCancelled)) // never admitted

	assert.Equal(t, db.ConcertStats{
		ConcertCode: s.code,
		Sessions:    db.SessionCounts{Waiting: 2, Active: 1, Held: 2, Paid: 1, Expired: 1, Cancelled: 2},
		Seats:       db.SeatCounts{Available: 4, Held: 1, Sold: 1},
		Admitted:    6,
	}, statsOf(t, store, s.code))

	// Admitting the waiting sessions moves them to ACTIVE and adds them to the admissions, which never
	// drop when admitted sessions end.
	pause(t, store, s.code, false)
	res, err := store.AdmitNext(t.Context(), s.code, window)
	require.NoError(t, err)
	require.Equal(t, 2, res.Admitted)
	got := statsOf(t, store, s.code)
	assert.Equal(t, db.SessionCounts{Active: 3, Held: 2, Paid: 1, Expired: 1, Cancelled: 2}, got.Sessions)
	assert.Equal(t, int64(8), got.Admitted)
}

func TestConcertStatsListsEveryConcertInCodeOrderIncludingOnesWithoutSessions(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	soldOut := newShow(t, store, 5, 1, 1_000)
	quiet := newShow(t, store, 5, 3, 1_000)
	user := newUser(t, store, 1_000)
	buyer := admitted(t, store, soldOut.code, user)
	hold(t, store, soldOut, buyer.ID, 1)
	_, err := store.Pay(t.Context(), buyer.ID)
	require.NoError(t, err)
	late := join(t, store, soldOut.code, user)
	require.Equal(t, statusSoldOut, late.Status)

	all, err := store.ConcertStats(t.Context())
	require.NoError(t, err)

	want := []db.ConcertStats{
		{
			ConcertCode: soldOut.code,
			Sessions:    db.SessionCounts{Paid: 1, SoldOut: 1},
			Seats:       db.SeatCounts{Sold: 1},
			Admitted:    1,
		},
		{ConcertCode: quiet.code, Seats: db.SeatCounts{Available: 3}},
	}
	if quiet.code < soldOut.code {
		want[0], want[1] = want[1], want[0]
	}
	assert.Equal(t, want, all)
}

func TestConcertStatsOfAnEmptyDatabaseIsEmpty(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)

	all, err := store.ConcertStats(t.Context())

	require.NoError(t, err)
	assert.Empty(t, all)
}

func TestConcertStatsWrapsTheContextErrorOfACancelledScrape(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	_, err := store.ConcertStats(ctx)

	require.ErrorIs(t, err, context.Canceled)
}

func TestConcertStatsByStatusNamesEveryStatusAsTheTablesSpellIt(t *testing.T) {
	t.Parallel()
	sessions := db.SessionCounts{Waiting: 1, Active: 2, Held: 3, Paid: 4, Expired: 5, Cancelled: 6, SoldOut: 7, Closed: 8}
	seats := db.SeatCounts{Available: 1, Held: 2, Sold: 3}

	assert.Equal(t, map[string]int64{
		"WAITING": 1, "ACTIVE": 2, "HELD": 3, "PAID": 4,
		"EXPIRED": 5, "CANCELLED": 6, "SOLD_OUT": 7, "CLOSED": 8,
	}, sessions.ByStatus())
	assert.Equal(t, map[string]int64{seatAvailable: 1, seatHeld: 2, seatSold: 3}, seats.ByStatus())
}
