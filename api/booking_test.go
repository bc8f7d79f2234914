package api_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ticketing/concert/internal/teststack"
)

const (
	eve   = "2026-12-24T19:00:00"
	xmas  = "2026-12-25T19:00:00"
	price = 110_000
)

func reserveBody(user, date string, seat int) map[string]any {
	return map[string]any{"UUID": user, "concertDate": date, "seatNumber": seat}
}

// waitForStatus polls the token status until it reports want.
func waitForStatus(t *testing.T, s *teststack.Stack, code, token, want string) teststack.Response {
	t.Helper()
	var last teststack.Response
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		last = s.Do(http.MethodGet, "/api/v1/concerts/"+code+"/token", token, nil)
		assert.Equal(c, http.StatusOK, last.Status)
		assert.Equal(c, want, last.Str("status"))
	}, 30*time.Second, 100*time.Millisecond)
	return last
}

// assertSeat checks that the seat map shows the seat in status want within a second (seat maps are served
// from a cache that is never more than a second stale).
func assertSeat(t *testing.T, s *teststack.Stack, code, token, date string, seat int, want string, msgAndArgs ...any) {
	t.Helper()
	assert.EventuallyWithT(t, func(c *assert.CollectT) {
		r := s.Do(http.MethodGet, "/api/v1/concerts/"+code+"/seats?concertDate="+date, token, nil)
		if !assert.Equal(c, http.StatusOK, r.Status, string(r.Raw)) {
			return
		}
		got := ""
		for _, x := range r.Body["seats"].([]any) {
			m := x.(map[string]any)
			if int(m["seatNumber"].(float64)) == seat {
				got = m["status"].(string)
			}
		}
		assert.Equal(c, want, got, msgAndArgs...)
	}, time.Second+500*time.Millisecond, 50*time.Millisecond)
}

// TestThreeUsersBookThroughTheWaitingRoom drives the whole flow through the HTTP API: two users are admitted
// at once and the third waits until a slot frees; seats are held, a short balance is topped up, and every
// payment ends its session.
func TestThreeUsersBookThroughTheWaitingRoom(t *testing.T) {
	t.Parallel()
	s := teststack.Start(t, teststack.Options{})
	s.CreateConcert("FLOW", 2, teststack.ConcertDate{Date: eve, Seats: 5, Price: price}, teststack.ConcertDate{Date: xmas, Seats: 5, Price: price})
	alice, bob, carol := s.CreateUser(price), s.CreateUser(0), s.CreateUser(2*price)

	a := s.Token("FLOW", alice)
	require.Equal(t, http.StatusCreated, a.Status)
	assert.Equal(t, "ACTIVE", a.Str("status"))
	assert.EqualValues(t, 0, a.Int("position"))
	again := s.Token("FLOW", alice)
	assert.Equal(t, http.StatusOK, again.Status, "a second token request returns the open session")
	assert.Equal(t, a.Str("token"), again.Str("token"))

	b := s.Token("FLOW", bob)
	assert.Equal(t, "ACTIVE", b.Str("status"))
	c := s.Token("FLOW", carol)
	require.Equal(t, http.StatusCreated, c.Status)
	assert.Equal(t, "WAITING", c.Str("status"))
	assert.EqualValues(t, 1, c.Int("position"))
	assert.Positive(t, c.Int("estimatedWaitSeconds"))

	// A waiting token opens nothing but its status, and says where it stands.
	r := s.Do(http.MethodGet, "/api/v1/concerts/FLOW", c.Str("token"), nil)
	assert.Equal(t, http.StatusForbidden, r.Status)
	assert.Equal(t, "/problems/not-admitted", r.ProblemType())
	assert.EqualValues(t, 1, r.Int("position"))

	// Dates and seats.
	r = s.Do(http.MethodGet, "/api/v1/concerts/FLOW", a.Str("token"), nil)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	assert.Equal(t, "FLOW", r.Str("concertCode"))
	dates := r.Body["dates"].([]any)
	require.Len(t, dates, 2)
	assert.Equal(t, eve, dates[0].(map[string]any)["concertDate"])
	assert.EqualValues(t, 5, dates[0].(map[string]any)["availableSeats"])

	// Alice holds seat 1 and pays.
	r = s.Do(http.MethodPatch, "/api/v1/concerts/FLOW", a.Str("token"), reserveBody(alice, eve, 1))
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	assert.Equal(t, eve, r.Str("concertDate"))
	assert.EqualValues(t, 1, r.Int("seatNumber"))
	assert.EqualValues(t, price, r.Int("price"))
	assert.NotEmpty(t, r.Str("reservationId"))
	heldUntil, err := time.Parse(time.RFC3339Nano, r.Str("heldUntil"))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(5*time.Minute), heldUntil, 30*time.Second)
	assertSeat(t, s, "FLOW", a.Str("token"), eve, 1, "HELD")
	st := s.Do(http.MethodGet, "/api/v1/concerts/FLOW/token", a.Str("token"), nil)
	assert.Equal(t, "HELD", st.Str("status"))
	assert.NotNil(t, st.Body["heldUntil"])

	// Bob cannot take Alice's seat.
	r = s.Do(http.MethodPatch, "/api/v1/concerts/FLOW", b.Str("token"), reserveBody(bob, eve, 1))
	assert.Equal(t, http.StatusConflict, r.Status)
	assert.Equal(t, "/problems/seat-taken", r.ProblemType())

	pay := s.Do(http.MethodPost, "/api/v1/payments", a.Str("token"), map[string]any{"UUID": alice})
	require.Equal(t, http.StatusCreated, pay.Status, string(pay.Raw))
	assert.EqualValues(t, price, pay.Int("amount"))
	assert.EqualValues(t, 0, pay.Int("balance"))
	assert.EqualValues(t, 1, pay.Int("seatNumber"))
	assert.Equal(t, eve, pay.Str("concertDate"))
	assert.NotEmpty(t, pay.Str("paymentId"))
	r = s.Do(http.MethodGet, "/api/v1/concerts/FLOW", a.Str("token"), nil)
	assert.Equal(t, http.StatusGone, r.Status, "a paid session's token no longer works")
	waitForStatus(t, s, "FLOW", a.Str("token"), "PAID")

	// Alice's slot goes to Carol.
	waitForStatus(t, s, "FLOW", c.Str("token"), "ACTIVE")

	// Bob holds seat 2 but has no money; he tops up and pays.
	r = s.Do(http.MethodPatch, "/api/v1/concerts/FLOW", b.Str("token"), reserveBody(bob, eve, 2))
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	r = s.Do(http.MethodPost, "/api/v1/payments", b.Str("token"), map[string]any{"UUID": bob})
	assert.Equal(t, http.StatusPaymentRequired, r.Status)
	assert.Equal(t, "/problems/insufficient-balance", r.ProblemType())
	assert.EqualValues(t, price, r.Int("price"))
	r = s.Do(http.MethodPatch, "/api/v1/users/"+bob+"/balance", "", map[string]any{"amount": price})
	require.Equal(t, http.StatusOK, r.Status)
	r = s.Do(http.MethodPost, "/api/v1/payments", b.Str("token"), map[string]any{"UUID": bob})
	require.Equal(t, http.StatusCreated, r.Status, string(r.Raw))

	// Carol books on the second night.
	r = s.Do(http.MethodPatch, "/api/v1/concerts/FLOW", c.Str("token"), reserveBody(carol, xmas, 5))
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	r = s.Do(http.MethodPost, "/api/v1/payments", c.Str("token"), map[string]any{"UUID": carol})
	require.Equal(t, http.StatusCreated, r.Status, string(r.Raw))
	assert.EqualValues(t, price, r.Int("balance"))

	for _, u := range []struct {
		id      string
		balance int64
	}{{alice, 0}, {bob, 0}, {carol, price}} {
		r := s.Do(http.MethodGet, "/api/v1/users/"+u.id+"/balance", "", nil)
		assert.EqualValues(t, u.balance, r.Int("balance"))
	}
	var sold int
	require.NoError(t, s.SQL.Get(&sold, `SELECT count(*) FROM seats WHERE concert_code = 'FLOW' AND status = 'SOLD'`))
	assert.Equal(t, 3, sold)
	var mismatched int
	require.NoError(t, s.SQL.Get(&mismatched, `
SELECT count(*) FROM users u WHERE u.balance <> (SELECT COALESCE(sum(delta), 0) FROM ledger l WHERE l.user_uuid = u.uuid)`))
	assert.Zero(t, mismatched, "every balance equals the sum of its ledger")

	// A user whose session ended may start a new one.
	n := s.Token("FLOW", alice)
	assert.Equal(t, http.StatusCreated, n.Status)
	assert.NotEqual(t, a.Str("token"), n.Str("token"))
}

// TestUnpaidHoldExpiresAndFreesTheSeat proves that a hold lapses after the hold window: the session ends
// EXPIRED, the seat is AVAILABLE again and another user can buy it.
func TestUnpaidHoldExpiresAndFreesTheSeat(t *testing.T) {
	t.Parallel()
	s := teststack.Start(t, teststack.Options{HoldWindow: 2 * time.Second})
	s.CreateConcert("HOLD", 10, teststack.ConcertDate{Date: eve, Seats: 3, Price: price})
	slow, fast := s.CreateUser(price), s.CreateUser(price)
	a := s.Token("HOLD", slow)
	r := s.Do(http.MethodPatch, "/api/v1/concerts/HOLD", a.Str("token"), reserveBody(slow, eve, 2))
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))

	b := s.Token("HOLD", fast)
	waitForStatus(t, s, "HOLD", a.Str("token"), "EXPIRED")
	assertSeat(t, s, "HOLD", b.Str("token"), eve, 2, "AVAILABLE")
	r = s.Do(http.MethodPost, "/api/v1/payments", a.Str("token"), map[string]any{"UUID": slow})
	assert.Equal(t, http.StatusGone, r.Status, "an expired session cannot pay")

	r = s.Do(http.MethodPatch, "/api/v1/concerts/HOLD", b.Str("token"), reserveBody(fast, eve, 2))
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	r = s.Do(http.MethodPost, "/api/v1/payments", b.Str("token"), map[string]any{"UUID": fast})
	require.Equal(t, http.StatusCreated, r.Status, string(r.Raw))
	r = s.Do(http.MethodGet, "/api/v1/users/"+slow+"/balance", "", nil)
	assert.EqualValues(t, price, r.Int("balance"), "the expired user was not charged")
}

// TestAdmittedSessionThatHoldsNothingExpires proves the admission window: an admitted user who holds no seat
// in time loses the slot, and the next waiting user gets it.
func TestAdmittedSessionThatHoldsNothingExpires(t *testing.T) {
	t.Parallel()
	s := teststack.Start(t, teststack.Options{AdmissionWindow: 2 * time.Second})
	s.CreateConcert("IDLE", 1, teststack.ConcertDate{Date: eve, Seats: 3, Price: price})
	idle, next := s.CreateUser(0), s.CreateUser(0)
	a := s.Token("IDLE", idle)
	require.Equal(t, "ACTIVE", a.Str("status"))
	b := s.Token("IDLE", next)
	require.Equal(t, "WAITING", b.Str("status"))
	waitForStatus(t, s, "IDLE", a.Str("token"), "EXPIRED")
	waitForStatus(t, s, "IDLE", b.Str("token"), "ACTIVE")
}

// TestLastSeatSoldEndsWaitingSessionsSoldOut proves that once every seat is sold, waiting sessions end
// SOLD_OUT and new token requests are told so at once.
func TestLastSeatSoldEndsWaitingSessionsSoldOut(t *testing.T) {
	t.Parallel()
	s := teststack.Start(t, teststack.Options{})
	s.CreateConcert("LAST", 1, teststack.ConcertDate{Date: eve, Seats: 1, Price: price})
	buyer, waiter, late := s.CreateUser(price), s.CreateUser(price), s.CreateUser(price)
	a := s.Token("LAST", buyer)
	w := s.Token("LAST", waiter)
	require.Equal(t, "WAITING", w.Str("status"))
	r := s.Do(http.MethodPatch, "/api/v1/concerts/LAST", a.Str("token"), reserveBody(buyer, eve, 1))
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	r = s.Do(http.MethodPost, "/api/v1/payments", a.Str("token"), map[string]any{"UUID": buyer})
	require.Equal(t, http.StatusCreated, r.Status, string(r.Raw))
	waitForStatus(t, s, "LAST", w.Str("token"), "SOLD_OUT")
	l := s.Token("LAST", late)
	assert.Equal(t, "SOLD_OUT", l.Str("status"))
}

// TestHundredSessionsRaceForOneSeat proves the database is the single judge of a seat: 100 admitted
// sessions ask for the same seat at once, exactly one gets it and the rest get 409.
func TestHundredSessionsRaceForOneSeat(t *testing.T) {
	t.Parallel()
	const n = 100
	s := teststack.Start(t, teststack.Options{})
	s.CreateConcert("RACE", n, teststack.ConcertDate{Date: eve, Seats: 10, Price: price})
	users := make([]string, n)
	tokens := make([]string, n)
	for i := range users {
		users[i] = s.CreateUser(0)
		r := s.Token("RACE", users[i])
		require.Equal(t, "ACTIVE", r.Str("status"))
		tokens[i] = r.Str("token")
	}
	statuses := make([]int, n)
	types := make([]string, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r := s.Do(http.MethodPatch, "/api/v1/concerts/RACE", tokens[i], reserveBody(users[i], eve, 7))
			statuses[i], types[i] = r.Status, r.ProblemType()
		}()
	}
	close(start)
	wg.Wait()
	var ok, conflict int
	for i, st := range statuses {
		switch st {
		case http.StatusOK:
			ok++
		case http.StatusConflict:
			conflict++
			assert.Equal(t, "/problems/seat-taken", types[i])
		default:
			t.Errorf("request %d: unexpected status %d (%s)", i, st, types[i])
		}
	}
	assert.Equal(t, 1, ok, "exactly one session gets the seat")
	assert.Equal(t, n-1, conflict)
	var holders int
	require.NoError(t, s.SQL.Get(&holders, `
SELECT count(DISTINCT session_id) FROM seats WHERE concert_code = 'RACE' AND seat_number = 7 AND status = 'HELD'`))
	assert.Equal(t, 1, holders)
	var heldSessions int
	require.NoError(t, s.SQL.Get(&heldSessions, `SELECT count(*) FROM sessions WHERE concert_code = 'RACE' AND status = 'HELD'`))
	assert.Equal(t, 1, heldSessions, "the losers stay ACTIVE")
}
