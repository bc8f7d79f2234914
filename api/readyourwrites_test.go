package api_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ticketing/concert/internal/teststack"
)

// seatNow reads one seat's status from a single seat-map read: no retry, so a stale cache shows.
func seatNow(t *testing.T, s *teststack.Stack, code, token, date string, seat int) string {
	t.Helper()
	r := s.Do(http.MethodGet, "/api/v1/concerts/"+code+"/seats?concertDate="+date, token, nil)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	for _, x := range r.Body["seats"].([]any) {
		m := x.(map[string]any)
		if int(m["seatNumber"].(float64)) == seat {
			return m["status"].(string)
		}
	}
	t.Fatalf("seat %d is not in the map", seat)
	return ""
}

// availableNow reads a performance's available seats from a single date-list read.
func availableNow(t *testing.T, s *teststack.Stack, code, token, date string) int {
	t.Helper()
	r := s.Do(http.MethodGet, "/api/v1/concerts/"+code, token, nil)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	for _, x := range r.Body["dates"].([]any) {
		m := x.(map[string]any)
		if m["concertDate"] == date {
			return int(m["availableSeats"].(float64))
		}
	}
	t.Fatalf("date %s is not in the list", date)
	return -1
}

// TestAFanSeesTheirOwnWritesInTheVeryNextRead proves read-your-writes through the API process that served
// the write: right after a hold, a payment, a lost seat race or a support cancel answers, the next seat map
// and date list show it, although both were just read (and cached) before the write.
func TestAFanSeesTheirOwnWritesInTheVeryNextRead(t *testing.T) {
	t.Parallel()
	s := teststack.Start(t, teststack.Options{})
	s.CreateConcert("RYW", 5, teststack.ConcertDate{Date: eve, Seats: 3, Price: price})
	fan, rival, watcher := s.CreateUser(price), s.CreateUser(0), s.CreateUser(0)
	f := s.Token("RYW", fan).Str("token")
	w := s.Token("RYW", watcher).Str("token")

	require.Equal(t, "AVAILABLE", seatNow(t, s, "RYW", f, eve, 1)) // cached now
	require.Equal(t, 3, availableNow(t, s, "RYW", f, eve))
	require.Equal(t, http.StatusOK, s.Do(http.MethodPatch, "/api/v1/concerts/RYW", f, reserveBody(fan, eve, 1)).Status)
	assert.Equal(t, "HELD", seatNow(t, s, "RYW", f, eve, 1), "the hold shows in the fan's next seat map")
	assert.Equal(t, 2, availableNow(t, s, "RYW", f, eve), "and in the next date list")

	require.Equal(t, http.StatusCreated, s.Do(http.MethodPost, "/api/v1/payments", f, map[string]any{"UUID": fan}).Status)
	assert.Equal(t, "SOLD", seatNow(t, s, "RYW", w, eve, 1), "the payment shows in the next seat map")

	r := s.Token("RYW", rival).Str("token")
	require.Equal(t, http.StatusOK, s.Do(http.MethodPatch, "/api/v1/concerts/RYW", r, reserveBody(rival, eve, 2)).Status)
	require.Equal(t, "HELD", seatNow(t, s, "RYW", w, eve, 2)) // cached now
	cancel := s.Do(http.MethodPost, "/api/v1/admin/bookings/"+s.BookingID("RYW", rival)+"/cancel", teststack.AdminToken,
		map[string]any{"reason": "fan asked", "actor": "support"})
	require.Equal(t, http.StatusOK, cancel.Status, string(cancel.Raw))
	assert.Equal(t, "AVAILABLE", seatNow(t, s, "RYW", w, eve, 2), "a support cancel shows in the next seat map")
	assert.Equal(t, 2, availableNow(t, s, "RYW", w, eve))
}
