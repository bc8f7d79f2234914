package db_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ticketing/concert/booking"
	"github.com/ticketing/concert/db"
	"github.com/ticketing/concert/db/dbtest"
)

func TestHoldSeatHoldsSeatAndSessionUntilTheWindowEnds(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	s := newShow(t, store, 1, 3, 7_000)
	sess := admitted(t, store, s.code, newUser(t, store, 0))
	p := holdParams(s, sess.ID, 2)

	r, err := store.HoldSeat(t.Context(), p)

	require.NoError(t, err)
	assert.Equal(t, p.ReservationID, r.ReservationID)
	assert.Equal(t, s.code, r.ConcertCode)
	assert.WithinDuration(t, s.date, r.ConcertDate, 0)
	assert.Equal(t, 2, r.SeatNumber)
	assert.Equal(t, int64(7_000), r.Price)
	assert.WithinDuration(t, time.Now().Add(window), r.HeldUntil, clockSkew)

	st := seat(t, store, s, 2)
	assert.Equal(t, seatHeld, st.Status)
	assert.Equal(t, sess.ID, st.SessionID.String)
	assert.Equal(t, p.ReservationID, st.ReservationID.String)
	require.True(t, st.HeldUntil.Valid)
	assert.WithinDuration(t, r.HeldUntil, st.HeldUntil.Time, 0)

	got, err := store.GetSession(t.Context(), sess.ID)
	require.NoError(t, err)
	assert.Equal(t, statusHeld, got.Status)
	require.True(t, !got.HeldUntil.IsZero())
	assert.WithinDuration(t, r.HeldUntil, got.HeldUntil, 0, "seat and session share one deadline")

	seats, err := store.Seats(t.Context(), s.code, s.date)
	require.NoError(t, err)
	assert.Equal(t, seatHeld, seats[1].Status)
}

func TestHoldSeatAgainWithSameReservationReturnsTheSameReservation(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	s := newShow(t, store, 1, 3, 7_000)
	sess := admitted(t, store, s.code, newUser(t, store, 0))
	p := holdParams(s, sess.ID, 2)
	first, err := store.HoldSeat(t.Context(), p)
	require.NoError(t, err)

	again, err := store.HoldSeat(t.Context(), p)

	require.NoError(t, err)
	assert.Equal(t, first.ReservationID, again.ReservationID)
	assert.Equal(t, first.SeatNumber, again.SeatNumber)
	assert.Equal(t, first.Price, again.Price)
	assert.WithinDuration(t, first.HeldUntil, again.HeldUntil, 0, "a retry does not extend the hold")
	assert.Equal(t, 1, count(t, store, `SELECT count(*) FROM seats WHERE session_id = $1`, sess.ID))
}

func TestHoldSeatConcurrentRetriesOfOneReservationAllGetIt(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	s := newShow(t, store, 1, 3, 7_000)
	sess := admitted(t, store, s.code, newUser(t, store, 0))
	p := holdParams(s, sess.ID, 2)
	const calls = 20

	got := make([]booking.Reservation, calls)
	errs := make([]error, calls)
	together(calls, func(i int) { got[i], errs[i] = store.HoldSeat(t.Context(), p) })

	for i := range calls {
		require.NoError(t, errs[i], "call %d", i)
		assert.Equal(t, p.ReservationID, got[i].ReservationID)
		assert.Equal(t, 2, got[i].SeatNumber)
	}
	assert.Equal(t, sess.ID, seat(t, store, s, 2).SessionID.String)
}

func TestHoldSeatErrors(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	user := newUser(t, store, 0)
	tests := []struct {
		name string
		// arrange returns the request for a session of the show that must fail with want (and wantAlso).
		arrange  func(t *testing.T, s show) booking.Hold
		want     error
		wantAlso error
	}{
		{name: "another seat for a session that holds one", want: db.ErrAlreadyHolding,
			arrange: func(t *testing.T, s show) booking.Hold {
				sess := admitted(t, store, s.code, user)
				hold(t, store, s, sess.ID, 1)
				return holdParams(s, sess.ID, 2)
			}},
		{name: "another seat for a session whose own hold lapsed", want: db.ErrAlreadyHolding,
			arrange: func(t *testing.T, s show) booking.Hold {
				sess := admitted(t, store, s.code, user)
				hold(t, store, s, sess.ID, 1)
				lapseHold(t, store, sess.ID)
				return holdParams(s, sess.ID, 2)
			}},
		{name: "seat held by another live session", want: db.ErrSeatTaken,
			arrange: func(t *testing.T, s show) booking.Hold {
				hold(t, store, s, admitted(t, store, s.code, newUser(t, store, 0)).ID, 2)
				return holdParams(s, admitted(t, store, s.code, user).ID, 2)
			}},
		{name: "seat sold", want: db.ErrSeatTaken,
			arrange: func(t *testing.T, s show) booking.Hold {
				exec(t, store, `UPDATE seats SET status = 'SOLD', session_id = 'buyer' WHERE concert_code = $1 AND seat_number = 2`, s.code)
				return holdParams(s, admitted(t, store, s.code, user).ID, 2)
			}},
		{name: "unknown date", want: db.ErrDateNotFound, wantAlso: db.ErrNotFound,
			arrange: func(t *testing.T, s show) booking.Hold {
				p := holdParams(s, admitted(t, store, s.code, user).ID, 2)
				p.ConcertDate = s.date.Add(24 * time.Hour)
				return p
			}},
		{name: "unknown concert", want: db.ErrDateNotFound, wantAlso: db.ErrNotFound,
			arrange: func(t *testing.T, s show) booking.Hold {
				p := holdParams(s, admitted(t, store, s.code, user).ID, 2)
				p.ConcertCode = "NOPE"
				return p
			}},
		{name: "unknown seat", want: db.ErrSeatNotFound, wantAlso: db.ErrNotFound,
			arrange: func(t *testing.T, s show) booking.Hold {
				return holdParams(s, admitted(t, store, s.code, user).ID, 99)
			}},
		{name: "waiting session", want: db.ErrNotActive,
			arrange: func(t *testing.T, s show) booking.Hold {
				pause(t, store, s.code, true)
				return holdParams(s, join(t, store, s.code, user).ID, 2)
			}},
		{name: "session past its admission window", want: db.ErrNotActive,
			arrange: func(t *testing.T, s show) booking.Hold {
				sess := admitted(t, store, s.code, user)
				lapseAdmission(t, store, sess.ID)
				return holdParams(s, sess.ID, 2)
			}},
		{name: "cancelled session", want: db.ErrNotActive,
			arrange: func(t *testing.T, s show) booking.Hold {
				sess := admitted(t, store, s.code, user)
				require.NoError(t, store.Release(t.Context(), sess.ID, statusCancelled))
				return holdParams(s, sess.ID, 2)
			}},
		{name: "unknown session", want: db.ErrNotActive,
			arrange: func(_ *testing.T, s show) booking.Hold { return holdParams(s, uuid.NewString(), 2) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newShow(t, store, 5, 3, 1_000)
			p := tt.arrange(t, s)
			before := seat(t, store, s, 2)
			var statusBefore booking.Status
			if sess, err := store.GetSession(t.Context(), p.SessionID); err == nil {
				statusBefore = sess.Status
			}

			_, err := store.HoldSeat(t.Context(), p)

			require.ErrorIs(t, err, tt.want)
			if tt.wantAlso != nil {
				require.ErrorIs(t, err, tt.wantAlso)
			}
			assert.Equal(t, before, seat(t, store, s, 2), "a failed hold leaves the seat as it was")
			if statusBefore != "" {
				assert.Equal(t, statusBefore, status(t, store, p.SessionID), "a failed hold leaves the session as it was")
			}
			assert.Zero(t, count(t, store, `SELECT count(*) FROM seats WHERE reservation_id = $1`, p.ReservationID))
		})
	}
}

func TestHoldSeatTakesALapsedHoldBeforeItsReleaseRuns(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	s := newShow(t, store, 2, 3, 1_000)
	users := newUsers(t, store, 2)
	slow := admitted(t, store, s.code, users[0])
	hold(t, store, s, slow.ID, 1)
	lapseHold(t, store, slow.ID) // its window passed; its Release has not run yet
	next := admitted(t, store, s.code, users[1])
	require.Equal(t, statusHeld, status(t, store, slow.ID), "the lapsed session is not ended yet")

	r := hold(t, store, s, next.ID, 1)

	st := seat(t, store, s, 1)
	assert.Equal(t, seatHeld, st.Status)
	assert.Equal(t, next.ID, st.SessionID.String)
	assert.Equal(t, r.ReservationID, st.ReservationID.String)
	assert.WithinDuration(t, time.Now().Add(window), st.HeldUntil.Time, clockSkew)
	assert.Equal(t, statusHeld, status(t, store, next.ID))
}

func TestHoldSeatRaceOfHundredSessionsHasExactlyOneWinner(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	const racers = 100
	s := newShow(t, store, racers, 5, 1_000)
	users := newUsers(t, store, racers)
	sessions := make([]booking.Session, racers)
	for i := range sessions {
		sessions[i] = admitted(t, store, s.code, users[i])
	}

	got := make([]booking.Reservation, racers)
	errs := make([]error, racers)
	together(racers, func(i int) { got[i], errs[i] = store.HoldSeat(t.Context(), holdParams(s, sessions[i].ID, 3)) })

	winner := -1
	taken := 0
	for i, err := range errs {
		switch {
		case err == nil:
			assert.Equal(t, -1, winner, "sessions %d and %d both won", winner, i)
			winner = i
		case errors.Is(err, db.ErrSeatTaken):
			taken++
		default:
			t.Errorf("session %d: unexpected error %v", i, err)
		}
	}
	require.NotEqual(t, -1, winner, "nobody won the seat")
	assert.Equal(t, racers-1, taken)
	st := seat(t, store, s, 3)
	assert.Equal(t, seatHeld, st.Status)
	assert.Equal(t, sessions[winner].ID, st.SessionID.String)
	assert.Equal(t, got[winner].ReservationID, st.ReservationID.String)
	assert.Equal(t, 1, count(t, store, `SELECT count(*) FROM seats WHERE session_id IS NOT NULL`))
	assert.Equal(t, 1, count(t, store, `SELECT count(*) FROM sessions WHERE status = 'HELD'`))
	assert.Equal(t, racers-1, count(t, store, `SELECT count(*) FROM sessions WHERE status = 'ACTIVE'`), "losers stay admitted")
}

func TestSeatTakenByOtherSeesSalesAndLiveHoldsOfOthersOnly(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	s := newShow(t, store, 5, 3, 1_000)
	users := newUsers(t, store, 2)
	mine, other := admitted(t, store, s.code, users[0]), admitted(t, store, s.code, users[1])
	hold(t, store, s, other.ID, 1)
	hold(t, store, s, mine.ID, 2)
	taken := func(seat int) bool {
		n, err := store.SeatTakenByOther(t.Context(), s.code, s.date, []int{seat}, mine.ID)
		require.NoError(t, err)
		return n != 0
	}
	assert.True(t, taken(1), "held by another session")
	assert.False(t, taken(2), "held by this session")
	assert.False(t, taken(3), "available")
	assert.False(t, taken(99), "no such seat: left to the hold to say so")
	first, err := store.SeatTakenByOther(t.Context(), s.code, s.date, []int{3, 2, 1}, mine.ID)
	require.NoError(t, err)
	assert.Equal(t, 1, first, "of several seats, the lowest taken one is named")
	lapseHold(t, store, other.ID)
	assert.False(t, taken(1), "a lapsed hold can be taken")
}

// TestHoldSeatKeepsAFanWithinTheConcertsTicketLimit proves maxTicketsPerUser: the fan's bought and held
// seats of all their sessions count, a hold past the limit is refused with ErrTicketLimit and leaves the
// session as it was, other fans are not affected, and `concert check` reports a fan over the limit.
func TestHoldSeatKeepsAFanWithinTheConcertsTicketLimit(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	s := show{code: "LIM-" + uuid.NewString()[:8], date: showDate}
	require.NoError(t, store.CreateConcert(t.Context(), db.NewConcert{
		Code: s.code, Title: "Limited", MaxActive: 5, MaxTicketsPerUser: 2,
		Dates: []db.NewConcertDate{{Date: s.date, Seats: 5, Price: 1_000}},
	}))
	fan, other := newUser(t, store, 10_000), newUser(t, store, 10_000)

	for seat := 1; seat <= 2; seat++ { // two sessions, one ticket each
		sess := admitted(t, store, s.code, fan)
		hold(t, store, s, sess.ID, seat)
		_, err := store.Pay(t.Context(), sess.ID)
		require.NoError(t, err)
	}
	third := admitted(t, store, s.code, fan)
	_, err := store.HoldSeat(t.Context(), holdParams(s, third.ID, 3))
	require.ErrorIs(t, err, db.ErrTicketLimit)
	assert.Equal(t, statusActive, status(t, store, third.ID), "a refused hold leaves the session as it was")
	assert.Equal(t, seatAvailable, seat(t, store, s, 3).Status)

	theirs := admitted(t, store, s.code, other)
	hold(t, store, s, theirs.ID, 3)

	found, err := store.CheckInvariants(t.Context(), time.Minute)
	require.NoError(t, err)
	assert.Empty(t, found)
	exec(t, store, `UPDATE concerts SET max_tickets_per_user = 1 WHERE code = $1`, s.code)
	requireViolations(t, store, time.Minute, []db.Violation{{
		Invariant: db.InvariantFanWithinTicketLimit, Subject: "user " + fan + " concert " + s.code,
		Detail: "bought 2 tickets, the limit is 1",
	}})
}
