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

// ledgerRow is one ledger entry as stored.
type ledgerRow struct {
	Delta     int64   `db:"delta"`
	Kind      string  `db:"kind"`
	PaymentID *string `db:"payment_id"`
}

// ledger reads a user's ledger rows in the order they were written.
func ledger(t *testing.T, store *db.Store, user string) []ledgerRow {
	t.Helper()
	var rows []ledgerRow
	require.NoError(t, store.SQL().SelectContext(t.Context(), &rows,
		`SELECT delta, kind, payment_id FROM ledger WHERE user_uuid = $1 ORDER BY id`, user))
	return rows
}

// heldSession is an admitted session of user that holds seat 1 of the show.
func heldSession(t *testing.T, store *db.Store, s show, user string) (booking.Session, booking.Reservation) {
	t.Helper()
	sess := admitted(t, store, s.code, user)
	return sess, hold(t, store, s, sess.ID, 1)
}

func TestPaySellsTheHeldSeatAndDebitsTheBalanceThroughTheLedger(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	s := newShow(t, store, 1, 2, 3_000)
	user := newUser(t, store, 10_000)
	sess, r := heldSession(t, store, s, user)

	p, err := store.Pay(t.Context(), sess.ID)

	require.NoError(t, err)
	_, err = uuid.Parse(p.PaymentID)
	require.NoError(t, err)
	assert.Equal(t, r.ReservationID, p.ReservationID)
	assert.Equal(t, user, p.UserUUID)
	assert.Equal(t, s.code, p.ConcertCode)
	assert.WithinDuration(t, s.date, p.ConcertDate, 0)
	assert.Equal(t, 1, p.SeatNumber)
	assert.Equal(t, int64(3_000), p.Amount)
	assert.Equal(t, int64(7_000), p.Balance)
	assert.WithinDuration(t, time.Now(), p.CreatedAt, clockSkew)

	assert.Equal(t, int64(7_000), balance(t, store, user))
	assert.Equal(t, balance(t, store, user), ledgerSum(t, store, user))
	rows := ledger(t, store, user)
	require.Len(t, rows, 2)
	assert.Equal(t, int64(-3_000), rows[1].Delta)
	assert.Equal(t, "PAYMENT", rows[1].Kind)
	require.NotNil(t, rows[1].PaymentID)
	assert.Equal(t, p.PaymentID, *rows[1].PaymentID)

	st := seat(t, store, s, 1)
	assert.Equal(t, seatSold, st.Status)
	assert.Equal(t, sess.ID, st.SessionID.String)
	assert.False(t, st.HeldUntil.Valid, "a sold seat has no deadline")
	assert.Equal(t, statusPaid, status(t, store, sess.ID))
	assert.Equal(t, 1, count(t, store, `SELECT count(*) FROM payments WHERE session_id = $1 AND amount = 3000`, sess.ID))
	seats, err := store.Seats(t.Context(), s.code, s.date)
	require.NoError(t, err)
	assert.Equal(t, seatSold, seats[0].Status)
}

func TestPayAgainReturnsTheSamePaymentAndChargesOnce(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	s := newShow(t, store, 1, 2, 3_000)
	user := newUser(t, store, 10_000)
	sess, _ := heldSession(t, store, s, user)
	first, err := store.Pay(t.Context(), sess.ID)
	require.NoError(t, err)

	again, err := store.Pay(t.Context(), sess.ID)

	require.NoError(t, err)
	assert.Equal(t, first.PaymentID, again.PaymentID)
	assert.Equal(t, first.Amount, again.Amount)
	assert.Equal(t, first.Balance, again.Balance)
	assert.Equal(t, int64(7_000), balance(t, store, user))
	assert.Equal(t, balance(t, store, user), ledgerSum(t, store, user))
	assert.Equal(t, 1, count(t, store, `SELECT count(*) FROM payments`))
}

func TestPayWithShortBalanceChangesNothingAndKeepsTheHold(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	s := newShow(t, store, 1, 2, 3_000)
	user := newUser(t, store, 1_000)
	sess, r := heldSession(t, store, s, user)
	seatBefore := seat(t, store, s, 1)

	_, err := store.Pay(t.Context(), sess.ID)

	require.ErrorIs(t, err, db.ErrInsufficientBalance)
	var short *db.InsufficientBalanceError
	require.ErrorAs(t, err, &short)
	assert.Equal(t, int64(1_000), short.Balance)
	assert.Equal(t, int64(3_000), short.Price)
	assert.Equal(t, int64(1_000), balance(t, store, user))
	assert.Len(t, ledger(t, store, user), 1, "only the top-up")
	assert.Zero(t, count(t, store, `SELECT count(*) FROM payments`))
	assert.Equal(t, seatBefore, seat(t, store, s, 1), "the hold remains")
	assert.Equal(t, statusHeld, status(t, store, sess.ID))

	// The hold is still good: after a top-up the same session pays.
	_, err = store.TopUp(t.Context(), user, 2_000)
	require.NoError(t, err)
	p, err := store.Pay(t.Context(), sess.ID)
	require.NoError(t, err)
	assert.Equal(t, r.ReservationID, p.ReservationID)
	assert.Zero(t, p.Balance)
	assert.Zero(t, ledgerSum(t, store, user))
}

func TestPayErrors(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	tests := []struct {
		name string
		// arrange returns the session to pay for.
		arrange func(t *testing.T, s show, user string) string
		want    error
	}{
		{name: "lapsed hold is never sold", want: db.ErrHoldExpired,
			arrange: func(t *testing.T, s show, user string) string {
				sess, _ := heldSession(t, store, s, user)
				lapseHold(t, store, sess.ID)
				return sess.ID
			}},
		{name: "admitted session without a hold", want: db.ErrNoSeatHeld,
			arrange: func(t *testing.T, s show, user string) string { return admitted(t, store, s.code, user).ID }},
		{name: "unknown session", want: db.ErrNoSeatHeld,
			arrange: func(*testing.T, show, string) string { return uuid.NewString() }},
		{name: "released session", want: db.ErrNoSeatHeld,
			arrange: func(t *testing.T, s show, user string) string {
				sess, _ := heldSession(t, store, s, user)
				require.NoError(t, store.Release(t.Context(), sess.ID, statusExpired))
				return sess.ID
			}},
		{name: "lapsed hold another session took over", want: db.ErrHoldExpired, // 410: the hold lapsed; not 409 "no seat held"
			arrange: func(t *testing.T, s show, user string) string {
				sess, _ := heldSession(t, store, s, user)
				lapseHold(t, store, sess.ID)
				hold(t, store, s, admitted(t, store, s.code, newUser(t, store, 0)).ID, 1)
				require.Equal(t, statusHeld, status(t, store, sess.ID), "the lapsed session is not ended yet")
				return sess.ID
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newShow(t, store, 2, 1, 3_000)
			user := newUser(t, store, 10_000)
			id := tt.arrange(t, s, user)
			seatBefore := seat(t, store, s, 1)

			_, err := store.Pay(t.Context(), id)

			require.ErrorIs(t, err, tt.want)
			assert.Equal(t, int64(10_000), balance(t, store, user), "nothing was charged")
			assert.Equal(t, int64(10_000), ledgerSum(t, store, user))
			assert.Zero(t, count(t, store, `SELECT count(*) FROM payments WHERE user_uuid = $1`, user))
			assert.Equal(t, seatBefore, seat(t, store, s, 1), "the seat is not sold")
			assert.NotEqual(t, seatSold, seatBefore.Status)
		})
	}
}

func TestConcurrentPaysForOneSessionChargeOnceAndReturnOnePayment(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	s := newShow(t, store, 1, 2, 3_000)
	user := newUser(t, store, 10_000)
	sess, _ := heldSession(t, store, s, user)
	const calls = 20

	got := make([]booking.Payment, calls)
	errs := make([]error, calls)
	together(calls, func(i int) { got[i], errs[i] = store.Pay(t.Context(), sess.ID) })

	for i := range calls {
		require.NoError(t, errs[i], "call %d: a concurrent retry gets the payment, not an error", i)
		assert.Equal(t, got[0].PaymentID, got[i].PaymentID, "call %d", i)
	}
	assert.Equal(t, int64(7_000), balance(t, store, user))
	assert.Equal(t, balance(t, store, user), ledgerSum(t, store, user))
	assert.Equal(t, 1, count(t, store, `SELECT count(*) FROM payments`))
	assert.Equal(t, 1, count(t, store, `SELECT count(*) FROM ledger WHERE kind = 'PAYMENT'`))
	assert.Equal(t, statusPaid, status(t, store, sess.ID))
}
