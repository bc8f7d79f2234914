package db_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ticketing/concert/booking"
	"github.com/ticketing/concert/db"
	"github.com/ticketing/concert/db/dbtest"
)

// laterDate is the second performance of the fixtures that have two.
var laterDate = showDate.Add(24 * time.Hour)

// newOrderShow puts a concert on sale whose orders may hold perOrder seats, with two performances of seats
// 1..seats at price; the show is the first.
func newOrderShow(t *testing.T, store *db.Store, perOrder, ticketLimit, seats int, price int64) show {
	t.Helper()
	s := show{code: "ORD-" + uuid.NewString()[:8], date: showDate}
	require.NoError(t, store.CreateConcert(t.Context(), db.NewConcert{
		Code: s.code, Title: "Orders", MaxActive: 50, MaxSeatsPerOrder: perOrder, MaxTicketsPerUser: ticketLimit,
		Dates: []db.NewConcertDate{{Date: s.date, Seats: seats, Price: price}, {Date: laterDate, Seats: seats, Price: price}},
	}))
	return s
}

// holdSeats asks for several seats of the show at once for a session, under a fresh reservation ID.
func holdSeats(s show, sessionID string, seats ...int) booking.Hold {
	h := holdParams(s, sessionID, seats[0])
	h.SeatNumbers = seats
	return h
}

// TestAnOrderHoldsSeveralSeatsOfOneDateAndPaysForThemOnce proves maxSeatsPerOrder from the store's side:
// seats are added one request at a time or several at once, all share the window that began with the
// first, the order cannot outgrow its concert's limit or span two performances, and one payment sells all
// of them with one debit and one ledger row.
func TestAnOrderHoldsSeveralSeatsOfOneDateAndPaysForThemOnce(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	s := newOrderShow(t, store, 3, 0, 5, 1_000)
	fan := newUser(t, store, 10_000)
	sess := admitted(t, store, s.code, fan)

	first := hold(t, store, s, sess.ID, 1)
	assert.Nil(t, first.SeatNumbers, "a one-seat reservation reads as it always did")

	other := holdParams(s, sess.ID, 1)
	other.ConcertDate = laterDate
	_, err := store.HoldSeat(t.Context(), other)
	require.ErrorIs(t, err, db.ErrOtherDate)

	time.Sleep(20 * time.Millisecond) // a later seat must not move the window on
	two := holdSeats(s, sess.ID, 3, 2)
	more, err := store.HoldSeat(t.Context(), two)
	require.NoError(t, err)
	assert.Equal(t, []int{2, 3}, more.SeatNumbers)
	assert.Equal(t, 2, more.SeatNumber, "the lowest seat stands for the reservation")
	assert.Equal(t, int64(2_000), more.Price, "the price of a reservation is its seats' total")
	assert.True(t, first.HeldUntil.Equal(more.HeldUntil), "the window starts with the order's first seat: %v, then %v", first.HeldUntil, more.HeldUntil)
	again, err := store.HoldSeat(t.Context(), two)
	require.NoError(t, err, "a retried hold of several seats is answered with what it held")
	assert.Equal(t, more, again)

	_, err = store.HoldSeat(t.Context(), holdParams(s, sess.ID, 4))
	require.ErrorIs(t, err, db.ErrOrderFull)
	assert.Equal(t, seatAvailable, seat(t, store, s, 4).Status)

	pay, err := store.Pay(t.Context(), sess.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(3_000), pay.Amount)
	assert.Equal(t, []int{1, 2, 3}, pay.SeatNumbers)
	assert.Equal(t, 1, pay.SeatNumber)
	assert.Equal(t, first.ReservationID, pay.ReservationID, "the payment names the order's first reservation")
	assert.Equal(t, int64(7_000), pay.Balance)
	assert.Equal(t, int64(7_000), balance(t, store, fan))
	assert.Equal(t, 1, count(t, store, `SELECT count(*) FROM ledger WHERE user_uuid = $1 AND kind = 'PAYMENT'`, fan), "one debit")
	assert.Equal(t, 3, count(t, store, `SELECT count(*) FROM payment_seats WHERE payment_id = $1`, pay.PaymentID))
	for n := 1; n <= 3; n++ {
		assert.Equal(t, seatSold, seat(t, store, s, n).Status, "seat %d", n)
	}
	looked, err := store.PaymentOfSession(t.Context(), sess.ID)
	require.NoError(t, err)
	assert.Equal(t, pay.SeatNumbers, looked.SeatNumbers, "a payment looked up again lists its seats")

	found, err := store.CheckInvariants(t.Context(), time.Minute)
	require.NoError(t, err)
	assert.Empty(t, found)
	exec(t, store, `UPDATE concerts SET max_seats_per_order = 2 WHERE code = $1`, s.code)
	requireViolations(t, store, time.Minute, []db.Violation{{
		Invariant: db.InvariantOrderWithinSeatsPerOrder, Subject: "session " + sess.ID,
		Detail: "holds or bought 3 seats of 1 performances, one order may hold 2 of one",
	}})
}

// TestAHoldOfSeveralSeatsTakesAllOrNone proves that a hold of several seats that cannot take one of them
// takes none and says which one failed, and that one seat per order stays the default.
func TestAHoldOfSeveralSeatsTakesAllOrNone(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	s := newOrderShow(t, store, 4, 0, 5, 1_000)
	users := newUsers(t, store, 2)
	rival := admitted(t, store, s.code, users[0])
	hold(t, store, s, rival.ID, 2)
	sess := admitted(t, store, s.code, users[1])

	_, err := store.HoldSeat(t.Context(), holdSeats(s, sess.ID, 1, 2, 3))
	require.ErrorIs(t, err, db.ErrSeatTaken)
	assert.Contains(t, err.Error(), "seat 2")
	_, err = store.HoldSeat(t.Context(), holdSeats(s, sess.ID, 1, 99))
	require.ErrorIs(t, err, db.ErrSeatNotFound)
	assert.Contains(t, err.Error(), "seat 99")
	for _, n := range []int{1, 3} {
		assert.Equal(t, seatAvailable, seat(t, store, s, n).Status, "seat %d was not taken by the failed holds", n)
	}
	assert.Equal(t, statusActive, status(t, store, sess.ID), "a failed hold leaves the session as it was")

	single := newShow(t, store, 5, 5, 1_000) // one seat per order: today's contract
	one := admitted(t, store, single.code, users[1])
	_, err = store.HoldSeat(t.Context(), holdSeats(single, one.ID, 1, 2))
	require.ErrorIs(t, err, db.ErrOrderFull)
	hold(t, store, single, one.ID, 1)
	_, err = store.HoldSeat(t.Context(), holdParams(single, one.ID, 2))
	require.ErrorIs(t, err, db.ErrAlreadyHolding)
}

// TestATicketLimitCountsEverySeatOfAnOrder proves that the seats an order asks for count against the fan's
// ticket limit, all of them, before any is taken.
func TestATicketLimitCountsEverySeatOfAnOrder(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	s := newOrderShow(t, store, 4, 3, 6, 1_000)
	fan := newUser(t, store, 10_000)
	sess := admitted(t, store, s.code, fan)
	_, err := store.HoldSeat(t.Context(), holdSeats(s, sess.ID, 1, 2))
	require.NoError(t, err)
	_, err = store.Pay(t.Context(), sess.ID)
	require.NoError(t, err)

	next := admitted(t, store, s.code, fan)
	_, err = store.HoldSeat(t.Context(), holdSeats(s, next.ID, 3, 4))
	require.ErrorIs(t, err, db.ErrTicketLimit, "2 bought + 2 asked for is over the limit of 3")
	hold(t, store, s, next.ID, 3)
	_, err = store.HoldSeat(t.Context(), holdParams(s, next.ID, 4))
	require.ErrorIs(t, err, db.ErrTicketLimit)

	found, err := store.CheckInvariants(t.Context(), time.Minute)
	require.NoError(t, err)
	assert.Empty(t, found)
	exec(t, store, `UPDATE concerts SET max_tickets_per_user = 1 WHERE code = $1`, s.code)
	requireViolations(t, store, time.Minute, []db.Violation{{
		Invariant: db.InvariantFanWithinTicketLimit, Subject: "user " + fan + " concert " + s.code,
		Detail: "bought 2 tickets, the limit is 1",
	}})
}

// TestOrdersRacingForOverlappingSeatsNeverDeadlockOrShareASeat runs many sessions that each ask for
// overlapping seats, listed in different orders, at the same moment: each hold takes all its seats or
// none, no seat ends up in two orders, and none fails with anything but a taken seat (PostgreSQL would
// report a deadlock if two holds locked the same seats in opposite orders).
func TestOrdersRacingForOverlappingSeatsNeverDeadlockOrShareASeat(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	const fans = 24
	s := newOrderShow(t, store, 3, 0, 8, 1_000)
	users := newUsers(t, store, fans)
	sessions := make([]booking.Session, fans)
	for i := range sessions {
		sessions[i] = admitted(t, store, s.code, users[i])
	}
	asks := make([][]int, fans)
	for i := range asks {
		a := 1 + i%6
		asks[i] = []int{a + 2, a, a + 1} // 1..8, overlapping their neighbours', never in seat order
		if i%2 == 1 {
			asks[i] = []int{a + 1, a + 2, a}
		}
	}
	got := make([]error, fans)
	held := make([]booking.Reservation, fans)
	together(fans, func(i int) {
		held[i], got[i] = store.HoldSeat(t.Context(), holdSeats(s, sessions[i].ID, asks[i]...))
	})
	owner := map[int]int{}
	won := 0
	for i, err := range got {
		if err != nil {
			require.True(t, errors.Is(err, db.ErrSeatTaken), "fan %d: %v", i, err)
			assert.Equal(t, statusActive, status(t, store, sessions[i].ID))
			continue
		}
		won++
		require.Len(t, held[i].SeatNumbers, 3)
		for _, n := range held[i].SeatNumbers {
			_, dup := owner[n]
			require.False(t, dup, "seat %d is in two orders", n)
			owner[n] = i
			assert.Equal(t, sessions[i].ID, seat(t, store, s, n).SessionID.String, fmt.Sprintf("seat %d", n))
		}
	}
	assert.GreaterOrEqual(t, won, 1)
	assert.Equal(t, 3*won, count(t, store, `SELECT count(*) FROM seats WHERE concert_code = $1 AND status = 'HELD'`, s.code))
	found, err := store.CheckInvariants(t.Context(), time.Minute)
	require.NoError(t, err)
	assert.Empty(t, found)
}

// TestARefusedOrderSaysByHowMuch proves the answers a fan reads when an order cannot grow: a seat the order
// holds already is named, and a limit says what the fan has, asks for and may have.
func TestARefusedOrderSaysByHowMuch(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	s := newOrderShow(t, store, 3, 4, 6, 1_000)
	sess := admitted(t, store, s.code, newUser(t, store, 0))
	hold(t, store, s, sess.ID, 1)

	_, err := store.HoldSeat(t.Context(), holdSeats(s, sess.ID, 2, 1))
	require.ErrorIs(t, err, db.ErrAlreadyHolding)
	var seat *db.SeatError
	require.ErrorAs(t, err, &seat)
	assert.Equal(t, 1, seat.Seat)

	_, err = store.HoldSeat(t.Context(), holdSeats(s, sess.ID, 2, 3, 4))
	var limit *db.LimitError
	require.ErrorAs(t, err, &limit)
	require.ErrorIs(t, err, db.ErrOrderFull)
	assert.Equal(t, db.LimitError{Err: db.ErrOrderFull, Have: 1, Asked: 3, Limit: 3}, *limit)
}

// TestAHoldAskedForAgainAfterItLapsedIsNotTheFansAnyMore proves the answer to a retried hold (a reserve
// update redelivered after a worker crash that outlasted the hold window): once the hold has lapsed, or
// another fan has taken some of its seats, it is ErrHoldExpired, never a past window or part of the seats.
func TestAHoldAskedForAgainAfterItLapsedIsNotTheFansAnyMore(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	s := newOrderShow(t, store, 3, 0, 6, 1_000)
	users := newUsers(t, store, 3)

	one := admitted(t, store, s.code, users[0])
	single := holdParams(s, one.ID, 1)
	_, err := store.HoldSeat(t.Context(), single)
	require.NoError(t, err)
	lapseHold(t, store, one.ID)
	_, err = store.HoldSeat(t.Context(), single)
	require.ErrorIs(t, err, db.ErrHoldExpired, "a lapsed hold is not answered as held")

	several := admitted(t, store, s.code, users[1])
	ask := holdSeats(s, several.ID, 3, 4, 5)
	_, err = store.HoldSeat(t.Context(), ask)
	require.NoError(t, err)
	lapseHold(t, store, several.ID)
	rival := admitted(t, store, s.code, users[2])
	hold(t, store, s, rival.ID, 4) // takes one seat of the lapsed hold
	_, err = store.HoldSeat(t.Context(), ask)
	require.ErrorIs(t, err, db.ErrHoldExpired, "never a part of the seats asked for")
}
