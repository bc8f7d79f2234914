package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ticketing/concert/internal/teststack"
)

// TestAFanCanLeaveTheLineOrGiveTheSeatBack proves DELETE on the token: a waiting fan leaves and everyone
// behind moves up; a fan holding a seat gives it back at once (the seat is free in the next read) and the
// slot goes to the next fan now, not when the windows run out; a second leave answers 410.
func TestAFanCanLeaveTheLineOrGiveTheSeatBack(t *testing.T) {
	t.Parallel()
	s := teststack.Start(t, teststack.Options{}) // 5-minute holds, 10-minute admission windows
	s.CreateConcert("BYE", 1, teststack.ConcertDate{Date: eve, Seats: 2, Price: price})
	holder, quitter, patient := s.CreateUser(0), s.CreateUser(0), s.CreateUser(0)
	h := s.Token("BYE", holder)
	require.Equal(t, "ACTIVE", h.Str("status"))
	q := s.Token("BYE", quitter)
	p := s.Token("BYE", patient)
	require.Equal(t, "WAITING", q.Str("status"))
	require.EqualValues(t, 2, p.Int("position"))

	r := s.Do(http.MethodDelete, "/api/v1/concerts/BYE/token", q.Str("token"), nil)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	assert.Equal(t, "CANCELLED", r.Str("status"))
	assert.Equal(t, "CANCELLED", s.Do(http.MethodGet, "/api/v1/concerts/BYE/token", q.Str("token"), nil).Str("status"))
	assert.EqualValues(t, 1, s.Do(http.MethodGet, "/api/v1/concerts/BYE/token", p.Str("token"), nil).Int("position"),
		"the fan behind moved up")

	require.Equal(t, http.StatusOK, s.Do(http.MethodPatch, "/api/v1/concerts/BYE", h.Str("token"), reserveBody(holder, eve, 1)).Status)
	require.Equal(t, "HELD", seatNow(t, s, "BYE", h.Str("token"), eve, 1))
	start := time.Now()
	r = s.Do(http.MethodDelete, "/api/v1/concerts/BYE/token", h.Str("token"), nil)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	assert.Equal(t, "CANCELLED", r.Str("status"))
	list := s.Do(http.MethodGet, "/api/v1/concerts", "", nil)
	require.Equal(t, http.StatusOK, list.Status)
	assert.EqualValues(t, 2, list.Body["concerts"].([]any)[0].(map[string]any)["seatsLeft"], "the seat is free in the next read")
	waitForStatus(t, s, "BYE", p.Str("token"), "ACTIVE")
	assert.Less(t, time.Since(start), time.Minute, "the slot went to the next fan at once, not after the windows")
	assert.Equal(t, "AVAILABLE", seatNow(t, s, "BYE", p.Str("token"), eve, 1))

	again := s.Do(http.MethodDelete, "/api/v1/concerts/BYE/token", h.Str("token"), nil)
	assert.Equal(t, http.StatusGone, again.Status)
	assert.Equal(t, "/problems/session-ended", again.ProblemType())
	assert.Equal(t, http.StatusUnauthorized, s.Do(http.MethodDelete, "/api/v1/concerts/BYE/token", "", nil).Status)
	trail, err := s.Store.AuditTrail(t.Context(), s.BookingID("BYE", holder))
	require.NoError(t, err)
	assert.Empty(t, trail, "a fan's own leave is not an admin action")
}
