package db_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ticketing/concert/db"
	"github.com/ticketing/concert/db/dbtest"
)

// holdGrace is the grace the invariant tests check with, as `concert check` does by default.
const holdGrace = time.Minute

// Subjects as CheckInvariants names them.
func userSubject(user string) string        { return "user " + user }
func sessionSubject(id string) string       { return "session " + id }
func paymentSubject(id string) string       { return "payment " + id }
func ledgerSubject(id int64) string         { return fmt.Sprintf("ledger row %d", id) }
func userConcertSubject(u, c string) string { return "user " + u + " concert " + c }
func seatSubject(s show, n int) string {
	return fmt.Sprintf("seat %s %s #%d", s.code, s.date.Format("2006-01-02T15:04:05"), n)
}

// requireViolations checks the database with grace and requires exactly the violations wanted: the same
// invariants on the same subjects, each with a detail that contains the wanted detail.
func requireViolations(t *testing.T, store *db.Store, grace time.Duration, want []db.Violation) {
	t.Helper()
	got, err := store.CheckInvariants(t.Context(), grace)
	require.NoError(t, err)
	type key struct{ invariant, subject string }
	details := map[key]string{}
	var gotKeys, wantKeys []key
	for _, v := range got {
		k := key{v.Invariant, v.Subject}
		gotKeys = append(gotKeys, k)
		details[k] = v.Detail
	}
	for _, v := range want {
		wantKeys = append(wantKeys, key{v.Invariant, v.Subject})
	}
	require.ElementsMatch(t, wantKeys, gotKeys, "violations reported: %v", got)
	for _, v := range want {
		assert.Contains(t, details[key{v.Invariant, v.Subject}], v.Detail, "detail of %s %s", v.Invariant, v.Subject)
	}
}

// booked is a small on-sale in a consistent state, built through the store: one seat sold to each of two
// users, one seat held by a third, a fourth admitted and choosing, and seat 4 free.
type booked struct {
	show                       show
	paidA, paidD, held, idle   string // users
	sessA, sessD, sessB, sessC string // their sessions
	payA, payD                 string // the payments of A (seat 1) and D (seat 3)
}

func newBooked(t *testing.T, store *db.Store) booked {
	t.Helper()
	var b booked
	b.show = newShow(t, store, 10, 4, 3_000)
	pay := func(user string, seatNumber int) (session, payment string) {
		sess := admitted(t, store, b.show.code, user)
		hold(t, store, b.show, sess.ID, seatNumber)
		p, err := store.Pay(t.Context(), sess.ID)
		require.NoError(t, err)
		return sess.ID, p.PaymentID
	}
	b.paidA = newUser(t, store, 10_000)
	b.sessA, b.payA = pay(b.paidA, 1)
	b.paidD = newUser(t, store, 3_000)
	b.sessD, b.payD = pay(b.paidD, 3)
	b.held = newUser(t, store, 5_000)
	b.sessB = admitted(t, store, b.show.code, b.held).ID
	hold(t, store, b.show, b.sessB, 2)
	b.idle = newUser(t, store, 0)
	b.sessC = admitted(t, store, b.show.code, b.idle).ID
	return b
}

// insertLedger writes a ledger row directly and returns its ID.
func insertLedger(t *testing.T, store *db.Store, user string, delta int64, kind string, paymentID *string) int64 {
	t.Helper()
	var id int64
	require.NoError(t, store.SQL().GetContext(t.Context(), &id,
		`INSERT INTO ledger (user_uuid, delta, kind, payment_id) VALUES ($1, $2, $3, $4) RETURNING id`,
		user, delta, kind, paymentID))
	return id
}

// requireUniqueViolation runs one statement directly and requires PostgreSQL to refuse it with a
// unique_violation of the named constraint or unique index.
func requireUniqueViolation(t *testing.T, store *db.Store, constraint, q string, args ...any) {
	t.Helper()
	_, err := store.SQL().ExecContext(t.Context(), q, args...)
	var pqErr *pq.Error
	require.ErrorAs(t, err, &pqErr, "the database must refuse: %s", q)
	assert.Equal(t, "unique_violation", pqErr.Code.Name(), "error %v", err)
	assert.Equal(t, constraint, pqErr.Constraint, "error %v", err)
}

// lapseHoldBy moves a session's hold deadline (seat and session) to ago before now.
func lapseHoldBy(t *testing.T, store *db.Store, sessionID string, ago time.Duration) {
	t.Helper()
	exec(t, store, `UPDATE seats SET held_until = now() - $2 * interval '1 microsecond' WHERE session_id = $1 AND status = 'HELD'`,
		sessionID, ago.Microseconds())
	exec(t, store, `UPDATE sessions SET held_until = now() - $2 * interval '1 microsecond' WHERE id = $1`,
		sessionID, ago.Microseconds())
}

func TestCheckInvariantsFindNothingWrongInAnOnSaleBuiltThroughTheStore(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := dbtest.New(t)
	s := newShow(t, store, 2, 4, 3_000)
	free := newShow(t, store, 5, 1, 0)

	// A buys seat 1.
	a := newUser(t, store, 10_000)
	sa := admitted(t, store, s.code, a)
	hold(t, store, s, sa.ID, 1)
	_, err := store.Pay(ctx, sa.ID)
	require.NoError(t, err)
	// B holds seat 2 but cannot afford it.
	b := newUser(t, store, 2_000)
	sb := admitted(t, store, s.code, b)
	hold(t, store, s, sb.ID, 2)
	_, err = store.Pay(ctx, sb.ID)
	require.ErrorIs(t, err, db.ErrInsufficientBalance)
	// D fills the last slot, so C waits; support cancels D and the waiting room admits C.
	d := newUser(t, store, 0)
	sd := admitted(t, store, s.code, d)
	c := newUser(t, store, 4_000)
	sc := join(t, store, s.code, c)
	require.Equal(t, statusWaiting, sc.Status)
	require.NoError(t, store.Release(ctx, sd.ID, statusCancelled))
	res, err := store.AdmitNext(ctx, s.code, window)
	require.NoError(t, err)
	require.Equal(t, 1, res.Admitted)
	// B's hold lapses; C takes seat 2 over before B's workflow releases it and pays; B's late release then
	// ends B's session and leaves C's seat alone.
	lapseHold(t, store, sb.ID)
	hold(t, store, s, sc.ID, 2)
	_, err = store.Pay(ctx, sc.ID)
	require.NoError(t, err)
	require.NoError(t, store.Release(ctx, sb.ID, statusExpired))
	require.Equal(t, seatSold, seat(t, store, s, 2).Status)
	// B comes back with a new session, the only live one of B's.
	admitted(t, store, s.code, b)
	// E gets a free seat: a payment of 0 has no ledger row.
	e := newUser(t, store, 0)
	se := admitted(t, store, free.code, e)
	hold(t, store, free, se.ID, 1)
	_, err = store.Pay(ctx, se.ID)
	require.NoError(t, err)
	// F only tops up, twice.
	f := newUser(t, store, 1_000)
	_, err = store.TopUp(ctx, f, 500)
	require.NoError(t, err)
	// G's hold of seat 3 lapsed a second ago and its workflow has not released it yet.
	g := newUser(t, store, 0)
	sg := admitted(t, store, s.code, g)
	hold(t, store, s, sg.ID, 3)
	lapseHold(t, store, sg.ID)

	requireViolations(t, store, holdGrace, nil)

	sum, err := store.InvariantSummary(ctx)
	require.NoError(t, err)
	assert.Equal(t, db.InvariantSummary{
		Users: 7, Sessions: 7, SeatsSold: 3, SeatsHeld: 1, Payments: 3, LedgerRows: 7,
		Balances: 7_000 + 2_000 + 1_000 + 1_500, LedgerSum: 7_000 + 2_000 + 1_000 + 1_500, Paid: 6_000,
	}, sum)
	assert.True(t, sum.LedgerBalanced())

	// Without a grace, G's lapsed hold is already stale.
	requireViolations(t, store, 0, []db.Violation{
		{Invariant: db.InvariantHoldNotStale, Subject: seatSubject(s, 3), Detail: "HELD for session " + sg.ID},
		{Invariant: db.InvariantSessionNotStale, Subject: sessionSubject(sg.ID), Detail: "HELD until"},
	})
}

func TestCheckInvariantsReportEachBrokenInvariantOnItsSubject(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// noGrace checks without a grace instead of holdGrace.
		noGrace bool
		// breakIt damages the booked database and returns the violations that must be reported.
		breakIt func(t *testing.T, store *db.Store, b booked) []db.Violation
	}{
		{
			name: "balance raised without a ledger row",
			breakIt: func(t *testing.T, store *db.Store, b booked) []db.Violation {
				exec(t, store, `UPDATE users SET balance = balance + 100 WHERE uuid = $1`, b.paidA)
				return []db.Violation{{Invariant: db.InvariantBalanceEqualsLedger, Subject: userSubject(b.paidA),
					Detail: "balance 7100 != ledger sum 7000"}}
			},
		},
		{
			name: "top-up ledger row lost",
			breakIt: func(t *testing.T, store *db.Store, b booked) []db.Violation {
				exec(t, store, `DELETE FROM ledger WHERE user_uuid = $1`, b.held)
				return []db.Violation{{Invariant: db.InvariantBalanceEqualsLedger, Subject: userSubject(b.held),
					Detail: "balance 5000 != ledger sum 0"}}
			},
		},
		{
			name: "negative balance",
			breakIt: func(t *testing.T, store *db.Store, b booked) []db.Violation {
				exec(t, store, `ALTER TABLE users DROP CONSTRAINT users_balance_check`)
				exec(t, store, `UPDATE users SET balance = -100 WHERE uuid = $1`, b.idle)
				return []db.Violation{
					{Invariant: db.InvariantBalanceNotNegative, Subject: userSubject(b.idle), Detail: "balance -100 is negative"},
					{Invariant: db.InvariantBalanceEqualsLedger, Subject: userSubject(b.idle), Detail: "balance -100 != ledger sum 0"},
				}
			},
		},
		{
			name: "top-up that debits",
			breakIt: func(t *testing.T, store *db.Store, b booked) []db.Violation {
				id := insertLedger(t, store, b.held, -500, "TOPUP", nil)
				exec(t, store, `UPDATE users SET balance = balance - 500 WHERE uuid = $1`, b.held)
				return []db.Violation{{Invariant: db.InvariantLedgerRowWellFormed, Subject: ledgerSubject(id),
					Detail: "TOPUP of -500 for user " + b.held + " is not a credit"}}
			},
		},
		{
			name: "top-up that names a payment",
			breakIt: func(t *testing.T, store *db.Store, b booked) []db.Violation {
				id := insertLedger(t, store, b.paidA, 500, "TOPUP", &b.payA)
				exec(t, store, `UPDATE users SET balance = balance + 500 WHERE uuid = $1`, b.paidA)
				return []db.Violation{{Invariant: db.InvariantLedgerRowWellFormed, Subject: ledgerSubject(id),
					Detail: "names payment " + b.payA}}
			},
		},
		{
			name: "debit that names no payment",
			breakIt: func(t *testing.T, store *db.Store, b booked) []db.Violation {
				id := insertLedger(t, store, b.paidA, -500, "PAYMENT", nil)
				exec(t, store, `UPDATE users SET balance = balance - 500 WHERE uuid = $1`, b.paidA)
				return []db.Violation{{Invariant: db.InvariantLedgerRowWellFormed, Subject: ledgerSubject(id),
					Detail: "PAYMENT of -500 for user " + b.paidA + " names no payment"}}
			},
		},
		{
			name: "debit for a payment that does not exist",
			breakIt: func(t *testing.T, store *db.Store, b booked) []db.Violation {
				ghost := uuid.NewString()
				id := insertLedger(t, store, b.paidA, -500, "PAYMENT", &ghost)
				exec(t, store, `UPDATE users SET balance = balance - 500 WHERE uuid = $1`, b.paidA)
				return []db.Violation{{Invariant: db.InvariantLedgerRowWellFormed, Subject: ledgerSubject(id),
					Detail: "names payment " + ghost + ", which does not exist"}}
			},
		},
		{
			name: "payment debited twice",
			breakIt: func(t *testing.T, store *db.Store, b booked) []db.Violation {
				insertLedger(t, store, b.paidA, -3_000, "PAYMENT", &b.payA)
				exec(t, store, `UPDATE users SET balance = balance - 3000 WHERE uuid = $1`, b.paidA)
				return []db.Violation{{Invariant: db.InvariantPaymentAmountMatchesLedger, Subject: paymentSubject(b.payA),
					Detail: "expected one PAYMENT ledger row of -3000 for user " + b.paidA}}
			},
		},
		{
			name: "payment debited less than its amount",
			breakIt: func(t *testing.T, store *db.Store, b booked) []db.Violation {
				exec(t, store, `UPDATE ledger SET delta = -2900 WHERE payment_id = $1`, b.payA)
				exec(t, store, `UPDATE users SET balance = balance + 100 WHERE uuid = $1`, b.paidA)
				return []db.Violation{{Invariant: db.InvariantPaymentAmountMatchesLedger, Subject: paymentSubject(b.payA),
					Detail: "of -2900 for user " + b.paidA}}
			},
		},
		{
			name: "payment debited from another user",
			breakIt: func(t *testing.T, store *db.Store, b booked) []db.Violation {
				exec(t, store, `UPDATE ledger SET user_uuid = $2 WHERE payment_id = $1`, b.payA, b.held)
				exec(t, store, `UPDATE users SET balance = balance + 3000 WHERE uuid = $1`, b.paidA)
				exec(t, store, `UPDATE users SET balance = balance - 3000 WHERE uuid = $1`, b.held)
				return []db.Violation{{Invariant: db.InvariantPaymentAmountMatchesLedger, Subject: paymentSubject(b.payA),
					Detail: "of -3000 for user " + b.held}}
			},
		},
		{
			name: "payment never debited",
			breakIt: func(t *testing.T, store *db.Store, b booked) []db.Violation {
				exec(t, store, `DELETE FROM ledger WHERE payment_id = $1`, b.payA)
				exec(t, store, `UPDATE users SET balance = balance + 3000 WHERE uuid = $1`, b.paidA)
				return []db.Violation{{Invariant: db.InvariantPaymentAmountMatchesLedger, Subject: paymentSubject(b.payA),
					Detail: "found none"}}
			},
		},
		{
			name: "seat sold without a payment",
			breakIt: func(t *testing.T, store *db.Store, b booked) []db.Violation {
				exec(t, store, `UPDATE seats SET status = 'SOLD', held_until = NULL WHERE session_id = $1`, b.sessB)
				exec(t, store, `UPDATE sessions SET status = 'PAID' WHERE id = $1`, b.sessB)
				return []db.Violation{{Invariant: db.InvariantSoldSeatHasOnePayment, Subject: seatSubject(b.show, 2),
					Detail: "SOLD to session " + b.sessB + " with 0 payments"}}
			},
		},
		{
			name: "seat sold twice",
			breakIt: func(t *testing.T, store *db.Store, b booked) []db.Violation {
				exec(t, store, `ALTER TABLE payments DROP CONSTRAINT payments_concert_code_concert_date_seat_number_key`)
				exec(t, store, `ALTER TABLE payment_seats DROP CONSTRAINT payment_seats_pkey`)
				second := uuid.NewString()
				exec(t, store, `
INSERT INTO payments (id, session_id, reservation_id, user_uuid, concert_code, concert_date, seat_number, amount)
VALUES ($1, $2, $3, $4, $5, $6, 1, 3000)`, second, b.sessB, uuid.NewString(), b.held, b.show.code, b.show.date)
				exec(t, store, `INSERT INTO payment_seats (payment_id, concert_code, concert_date, seat_number, price)
VALUES ($1, $2, $3, 1, 3000)`, second, b.show.code, b.show.date)
				return []db.Violation{
					{Invariant: db.InvariantSoldSeatHasOnePayment, Subject: seatSubject(b.show, 1), Detail: "with 2 payments"},
					{Invariant: db.InvariantPaymentHasSoldSeat, Subject: paymentSubject(second),
						Detail: "is SOLD to session " + b.sessA + ", not to the payment's session " + b.sessB},
					{Invariant: db.InvariantPaymentAmountMatchesLedger, Subject: paymentSubject(second), Detail: "found none"},
				}
			},
		},
		{
			name: "paid seat made available again",
			breakIt: func(t *testing.T, store *db.Store, b booked) []db.Violation {
				exec(t, store, `UPDATE seats SET status = 'AVAILABLE', session_id = NULL, reservation_id = NULL WHERE session_id = $1`, b.sessA)
				return []db.Violation{
					{Invariant: db.InvariantPaymentHasSoldSeat, Subject: paymentSubject(b.payA),
						Detail: seatSubject(b.show, 1) + " is AVAILABLE, not SOLD"},
					{Invariant: db.InvariantSessionStatusMatchesSeat, Subject: sessionSubject(b.sessA), Detail: "PAID but owns no SOLD seat"},
				}
			},
		},
		{
			name: "seats of two payments swapped",
			breakIt: func(t *testing.T, store *db.Store, b booked) []db.Violation {
				exec(t, store, `UPDATE seats SET session_id = 'swapping' WHERE session_id = $1`, b.sessA)
				exec(t, store, `UPDATE seats SET session_id = $2 WHERE session_id = $1`, b.sessD, b.sessA)
				exec(t, store, `UPDATE seats SET session_id = $1 WHERE session_id = 'swapping'`, b.sessD)
				return []db.Violation{
					{Invariant: db.InvariantPaymentHasSoldSeat, Subject: paymentSubject(b.payA), Detail: "is SOLD to session " + b.sessD},
					{Invariant: db.InvariantPaymentHasSoldSeat, Subject: paymentSubject(b.payD), Detail: "is SOLD to session " + b.sessA},
					{Invariant: db.InvariantSoldSeatHasOnePayment, Subject: seatSubject(b.show, 1),
						Detail: "SOLD to session " + b.sessD + " with 1 payments: " + b.payA + " of session " + b.sessA},
					{Invariant: db.InvariantSoldSeatHasOnePayment, Subject: seatSubject(b.show, 3),
						Detail: "SOLD to session " + b.sessA + " with 1 payments: " + b.payD + " of session " + b.sessD},
				}
			},
		},
		{
			name: "payment of another amount than the seat's price",
			breakIt: func(t *testing.T, store *db.Store, b booked) []db.Violation {
				exec(t, store, `UPDATE payments SET amount = 2900 WHERE id = $1`, b.payA)
				exec(t, store, `UPDATE ledger SET delta = -2900 WHERE payment_id = $1`, b.payA)
				exec(t, store, `UPDATE users SET balance = balance + 100 WHERE uuid = $1`, b.paidA)
				return []db.Violation{{Invariant: db.InvariantPaymentMatchesBooking, Subject: paymentSubject(b.payA),
					Detail: "amount 2900 but the seat costs 3000"}}
			},
		},
		{
			name: "payment by another user than its session's",
			breakIt: func(t *testing.T, store *db.Store, b booked) []db.Violation {
				exec(t, store, `UPDATE payments SET user_uuid = $2 WHERE id = $1`, b.payA, b.held)
				exec(t, store, `UPDATE ledger SET user_uuid = $2 WHERE payment_id = $1`, b.payA, b.held)
				exec(t, store, `UPDATE users SET balance = balance + 3000 WHERE uuid = $1`, b.paidA)
				exec(t, store, `UPDATE users SET balance = balance - 3000 WHERE uuid = $1`, b.held)
				return []db.Violation{{Invariant: db.InvariantPaymentMatchesBooking, Subject: paymentSubject(b.payA),
					Detail: "paid by user " + b.held + " but session " + b.sessA + " is user " + b.paidA + "'s"}}
			},
		},
		{
			name: "payment under another reservation than the seat's",
			breakIt: func(t *testing.T, store *db.Store, b booked) []db.Violation {
				other := uuid.NewString()
				exec(t, store, `UPDATE payments SET reservation_id = $2 WHERE id = $1`, b.payA, other)
				return []db.Violation{{Invariant: db.InvariantPaymentMatchesBooking, Subject: paymentSubject(b.payA),
					Detail: "reservation " + other + " but the seat records"}}
			},
		},
		{
			// What Release leaves if it runs while a HoldSeat of the same session is committing.
			name: "held seat of a session that has ended",
			breakIt: func(t *testing.T, store *db.Store, b booked) []db.Violation {
				exec(t, store, `UPDATE sessions SET status = 'CANCELLED' WHERE id = $1`, b.sessB)
				return []db.Violation{{Invariant: db.InvariantSessionStatusMatchesSeat, Subject: seatSubject(b.show, 2),
					Detail: "HELD for session " + b.sessB + ", which is CANCELLED"}}
			},
		},
		{
			name: "held seat of a session that does not exist",
			breakIt: func(t *testing.T, store *db.Store, b booked) []db.Violation {
				exec(t, store, `UPDATE seats SET status = 'HELD', session_id = 'ghost', held_until = now() + interval '1 minute'
				                WHERE concert_code = $1 AND seat_number = 4`, b.show.code)
				return []db.Violation{{Invariant: db.InvariantSessionStatusMatchesSeat, Subject: seatSubject(b.show, 4),
					Detail: "HELD for session ghost, which is missing"}}
			},
		},
		{
			name: "sold seat of a session that is not paid",
			breakIt: func(t *testing.T, store *db.Store, b booked) []db.Violation {
				exec(t, store, `UPDATE sessions SET status = 'EXPIRED' WHERE id = $1`, b.sessA)
				return []db.Violation{{Invariant: db.InvariantSessionStatusMatchesSeat, Subject: seatSubject(b.show, 1),
					Detail: "SOLD to session " + b.sessA + ", which is EXPIRED"}}
			},
		},
		{
			name: "held session that lost its seat within its window",
			breakIt: func(t *testing.T, store *db.Store, b booked) []db.Violation {
				exec(t, store, `UPDATE seats SET status = 'AVAILABLE', session_id = NULL, reservation_id = NULL, held_until = NULL
				                WHERE session_id = $1`, b.sessB)
				return []db.Violation{{Invariant: db.InvariantSessionStatusMatchesSeat, Subject: sessionSubject(b.sessB),
					Detail: "owns no HELD seat"}}
			},
		},
		{
			// The database refuses it (the unique index sessions_one_live_per_user); the check stays as a
			// second line of defence, which still reports the state on a database without the index.
			name: "two live sessions of one user for one concert",
			breakIt: func(t *testing.T, store *db.Store, b booked) []db.Violation {
				const insert = `INSERT INTO sessions (id, workflow_id, concert_code, user_uuid, status, active_until)
				                VALUES ($1, 'session-' || $1, $2, $3, $4, now() + interval '1 minute')`
				second, ended := uuid.NewString(), uuid.NewString()
				requireUniqueViolation(t, store, "sessions_one_live_per_user", insert, second, b.show.code, b.idle, statusActive)
				exec(t, store, insert, ended, b.show.code, b.idle, statusCancelled) // ended sessions do not count
				requireUniqueViolation(t, store, "sessions_one_live_per_user",
					`UPDATE sessions SET status = 'WAITING' WHERE id = $1`, ended)

				exec(t, store, `DROP INDEX sessions_one_live_per_user`)
				exec(t, store, insert, second, b.show.code, b.idle, statusActive)
				return []db.Violation{{Invariant: db.InvariantOneLiveSessionPerUserAndConcert,
					Subject: userConcertSubject(b.idle, b.show.code),
					Detail:  "2 live sessions: " + b.sessC + " ACTIVE, " + second + " ACTIVE"}}
			},
		},
		{
			name: "hold never released",
			breakIt: func(t *testing.T, store *db.Store, b booked) []db.Violation {
				lapseHoldBy(t, store, b.sessB, 2*holdGrace)
				return []db.Violation{
					{Invariant: db.InvariantHoldNotStale, Subject: seatSubject(b.show, 2), Detail: "HELD for session " + b.sessB},
					{Invariant: db.InvariantSessionNotStale, Subject: sessionSubject(b.sessB), Detail: "HELD until"},
				}
			},
		},
		{
			name: "hold lapsed within the grace",
			breakIt: func(t *testing.T, store *db.Store, b booked) []db.Violation {
				lapseHoldBy(t, store, b.sessB, holdGrace/2)
				return nil
			},
		},
		{
			name:    "hold lapsed with no grace",
			noGrace: true,
			breakIt: func(t *testing.T, store *db.Store, b booked) []db.Violation {
				lapseHoldBy(t, store, b.sessB, time.Second)
				return []db.Violation{
					{Invariant: db.InvariantHoldNotStale, Subject: seatSubject(b.show, 2), Detail: "HELD for session " + b.sessB},
					{Invariant: db.InvariantSessionNotStale, Subject: sessionSubject(b.sessB), Detail: "HELD until"},
				}
			},
		},
		{
			name: "lapsed hold taken over by another session",
			breakIt: func(t *testing.T, store *db.Store, b booked) []db.Violation {
				lapseHoldBy(t, store, b.sessB, time.Second)
				hold(t, store, b.show, b.sessC, 2)
				return nil
			},
		},
		{
			name: "admission window never closed",
			breakIt: func(t *testing.T, store *db.Store, b booked) []db.Violation {
				exec(t, store, `UPDATE sessions SET active_until = now() - interval '2 minutes' WHERE id = $1`, b.sessC)
				return []db.Violation{{Invariant: db.InvariantSessionNotStale, Subject: sessionSubject(b.sessC),
					Detail: "ACTIVE until"}}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store := dbtest.New(t)
			b := newBooked(t, store)
			requireViolations(t, store, holdGrace, nil)

			want := tc.breakIt(t, store, b)

			grace := holdGrace
			if tc.noGrace {
				grace = 0
			}
			requireViolations(t, store, grace, want)
		})
	}
}

func TestCheckInvariantsRefusesANegativeGrace(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	_, err := store.CheckInvariants(t.Context(), -time.Second)
	require.Error(t, err)
}

func TestInvariantCheckSeesPendingMigrationsWithoutApplyingThem(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store, err := db.Open(ctx, dbtest.NewURL(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })

	before, err := store.PendingMigrations(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, before)
	again, err := store.PendingMigrations(ctx)
	require.NoError(t, err)
	assert.Equal(t, before, again, "looking must not apply anything")
	_, err = store.CheckInvariants(ctx, holdGrace)
	require.Error(t, err, "an unmigrated database has nothing to check")

	applied, err := store.Migrate(ctx)
	require.NoError(t, err)
	assert.Equal(t, applied, before, "pending lists what Migrate applies, in order")
	after, err := store.PendingMigrations(ctx)
	require.NoError(t, err)
	assert.Empty(t, after)
	violations, err := store.CheckInvariants(ctx, holdGrace)
	require.NoError(t, err)
	assert.Empty(t, violations)
}
