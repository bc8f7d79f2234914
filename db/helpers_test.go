package db_test

import (
	"database/sql"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ticketing/concert/booking"
	"github.com/ticketing/concert/db"
)

// Statuses as the store writes them. The tests spell them once, here.
const (
	statusWaiting   = booking.StatusWaiting
	statusActive    = booking.StatusActive
	statusHeld      = booking.StatusHeld
	statusPaid      = booking.StatusPaid
	statusExpired   = booking.StatusExpired
	statusCancelled = booking.StatusCancelled
	statusSoldOut   = booking.StatusSoldOut

	seatAvailable = "AVAILABLE"
	seatHeld      = "HELD"
	seatSold      = "SOLD"
)

// window is the admission and hold window of every fixture: long enough never to lapse by itself during a
// test, so a lapse only ever happens when a test moves a deadline into the past with SQL.
const window = time.Minute

// clockSkew bounds the difference between a deadline the database computed and one the test computes.
const clockSkew = 5 * time.Second

// showDate is the performance every fixture concert has. It is UTC because concert dates are stored as
// TIMESTAMP without zone.
var showDate = time.Date(2026, 12, 24, 19, 0, 0, 0, time.UTC)

// show is one concert with one performance on showDate.
type show struct {
	code string
	date time.Time
}

// newShow puts a concert on sale with seats 1..seats at price, under a fresh code so that parallel subtests
// may share one database.
func newShow(t *testing.T, store *db.Store, maxActive, seats int, price int64) show {
	t.Helper()
	s := show{code: "C-" + uuid.NewString()[:8], date: showDate}
	require.NoError(t, store.CreateConcert(t.Context(), db.NewConcert{
		Code: s.code, Title: "Fixture", MaxActive: maxActive,
		Dates: []db.NewConcertDate{{Date: s.date, Seats: seats, Price: price}},
	}))
	return s
}

// newUser registers a user and tops the balance up to balance (if positive).
func newUser(t *testing.T, store *db.Store, balance int64) string {
	t.Helper()
	u, err := store.CreateUser(t.Context())
	require.NoError(t, err)
	if balance > 0 {
		_, err = store.TopUp(t.Context(), u.UUID, balance)
		require.NoError(t, err)
	}
	return u.UUID
}

// newUsers registers n users without balance: one for each session a test keeps live in one concert at the
// same time, since the store lets a user have only one live session per concert.
func newUsers(t *testing.T, store *db.Store, n int) []string {
	t.Helper()
	users := make([]string, n)
	for i := range users {
		users[i] = newUser(t, store, 0)
	}
	return users
}

// joinParams describes a new session of user for the concert code.
func joinParams(code, user string) db.JoinParams {
	id := uuid.NewString()
	return db.JoinParams{SessionID: id, WorkflowID: "session-" + id, ConcertCode: code, UserUUID: user, AdmissionWindow: window}
}

// join puts a new session in the waiting room and requires that the call created it.
func join(t *testing.T, store *db.Store, code, user string) booking.Session {
	t.Helper()
	s, created, err := store.JoinQueue(t.Context(), joinParams(code, user))
	require.NoError(t, err)
	require.True(t, created)
	return s
}

// admitted joins a session and requires that it was admitted at once.
func admitted(t *testing.T, store *db.Store, code, user string) booking.Session {
	t.Helper()
	s := join(t, store, code, user)
	require.Equal(t, statusActive, s.Status, "fixture session should be admitted at once")
	return s
}

// holdParams asks for seat n of the show for a session, under a fresh reservation ID.
func holdParams(s show, sessionID string, n int) booking.Hold {
	return booking.Hold{
		SessionID: sessionID, ConcertCode: s.code, ConcertDate: s.date, SeatNumber: n,
		ReservationID: uuid.NewString(), Window: window,
	}
}

// hold holds seat n of the show for a session and requires success.
func hold(t *testing.T, store *db.Store, s show, sessionID string, n int) booking.Reservation {
	t.Helper()
	r, err := store.HoldSeat(t.Context(), holdParams(s, sessionID, n))
	require.NoError(t, err)
	return r
}

// exec runs one statement directly against the database, to set up or simulate what the store API cannot.
func exec(t *testing.T, store *db.Store, q string, args ...any) {
	t.Helper()
	_, err := store.SQL().ExecContext(t.Context(), q, args...)
	require.NoError(t, err)
}

// lapseHold moves a session's hold deadline (seat and session) into the past, as if its window had passed.
func lapseHold(t *testing.T, store *db.Store, sessionID string) {
	t.Helper()
	exec(t, store, `UPDATE seats SET held_until = now() - interval '1 second' WHERE session_id = $1 AND status = 'HELD'`, sessionID)
	exec(t, store, `UPDATE sessions SET held_until = now() - interval '1 second' WHERE id = $1`, sessionID)
}

// lapseAdmission moves a session's admission deadline into the past.
func lapseAdmission(t *testing.T, store *db.Store, sessionID string) {
	t.Helper()
	exec(t, store, `UPDATE sessions SET active_until = now() - interval '1 second' WHERE id = $1`, sessionID)
}

// seatRow is a seat as stored, lapsed or not.
type seatRow struct {
	Status        string         `db:"status"`
	SessionID     sql.NullString `db:"session_id"`
	ReservationID sql.NullString `db:"reservation_id"`
	HeldUntil     sql.NullTime   `db:"held_until"`
}

// seat reads seat n of the show as stored.
func seat(t *testing.T, store *db.Store, s show, n int) seatRow {
	t.Helper()
	var r seatRow
	require.NoError(t, store.SQL().GetContext(t.Context(), &r,
		`SELECT status, session_id, reservation_id, held_until FROM seats
		 WHERE concert_code = $1 AND concert_date = $2 AND seat_number = $3`, s.code, s.date, n))
	return r
}

// status reads a session's status.
func status(t *testing.T, store *db.Store, sessionID string) booking.Status {
	t.Helper()
	s, err := store.GetSession(t.Context(), sessionID)
	require.NoError(t, err)
	return s.Status
}

// count runs a SELECT count(*) query.
func count(t *testing.T, store *db.Store, q string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, store.SQL().GetContext(t.Context(), &n, q, args...))
	return n
}

// balance reads a user's balance.
func balance(t *testing.T, store *db.Store, user string) int64 {
	t.Helper()
	u, err := store.GetUser(t.Context(), user)
	require.NoError(t, err)
	return u.Balance
}

// ledgerSum adds up a user's ledger rows; the store promises it always equals the balance.
func ledgerSum(t *testing.T, store *db.Store, user string) int64 {
	t.Helper()
	var sum int64
	require.NoError(t, store.SQL().GetContext(t.Context(), &sum,
		`SELECT COALESCE(sum(delta), 0) FROM ledger WHERE user_uuid = $1`, user))
	return sum
}

// together runs fn(i) for i in 0..n-1 on n goroutines released at the same moment, and waits for them all.
// fn must not call t.FailNow; it records what it saw for the test to check afterwards.
func together(n int, fn func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}
