package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ticketing/concert/internal/teststack"
)

// TestAFanBuysSeveralSeatsInOneOrder proves maxSeatsPerOrder end to end: set at creation and listed; a fan
// adds seats one request at a time or several at once (all or none, the taken one named), within the
// window of the first seat, on one date and up to the limit; one payment buys them all, and the seat map
// and the fan's bookings show every seat.
func TestAFanBuysSeveralSeatsInOneOrder(t *testing.T) {
	t.Parallel()
	s := teststack.Start(t, teststack.Options{})
	create := func(perOrder any) teststack.Response {
		return s.Do(http.MethodPost, "/api/v1/admin/concerts", teststack.AdminToken, map[string]any{
			"concertCode": "FAMILY", "title": "Family day", "maxActive": 5, "maxSeatsPerOrder": perOrder,
			"dates": []map[string]any{{"concertDate": eve, "seats": 6, "price": price}, {"concertDate": xmas, "seats": 6, "price": price}},
		})
	}
	assert.Equal(t, http.StatusBadRequest, create(11).Status)
	assert.Equal(t, http.StatusBadRequest, create(0).Status)
	c := create(3)
	require.Equal(t, http.StatusCreated, c.Status, string(c.Raw))
	assert.EqualValues(t, 3, c.Body["maxSeatsPerOrder"])
	listed := s.Do(http.MethodGet, "/api/v1/concerts", "", nil).Body["concerts"].([]any)[0].(map[string]any)
	assert.EqualValues(t, 3, listed["maxSeatsPerOrder"])

	fan, rival := s.CreateUser(3*price), s.CreateUser(price)
	r := s.Token("FAMILY", rival).Str("token")
	require.Equal(t, http.StatusOK, s.Do(http.MethodPatch, "/api/v1/concerts/FAMILY", r, reserveBody(rival, eve, 3)).Status)

	tok := s.Token("FAMILY", fan).Str("token")
	patch := func(body map[string]any) teststack.Response {
		return s.Do(http.MethodPatch, "/api/v1/concerts/FAMILY", tok, body)
	}
	seats := func(list ...int) map[string]any {
		return map[string]any{"UUID": fan, "concertDate": eve, "seatNumbers": list}
	}
	first := patch(reserveBody(fan, eve, 1))
	require.Equal(t, http.StatusOK, first.Status, string(first.Raw))
	assert.Equal(t, []any{1.0}, first.Body["seatNumbers"])

	taken := patch(seats(2, 3))
	assert.Equal(t, http.StatusConflict, taken.Status, string(taken.Raw))
	assert.Equal(t, "/problems/seat-taken", taken.ProblemType())
	assert.Contains(t, taken.Str("detail"), "seat 3")
	for _, bad := range []map[string]any{
		seats(2, 2), seats(), {"UUID": fan, "concertDate": eve, "seatNumber": 2, "seatNumbers": []int{4}},
		{"UUID": fan, "concertDate": eve, "seatNumbers": []any{2, "4"}},
	} {
		resp := patch(bad)
		assert.Equal(t, http.StatusBadRequest, resp.Status, "%v: %s", bad, resp.Raw)
	}
	other := patch(reserveBody(fan, xmas, 1))
	assert.Equal(t, http.StatusConflict, other.Status, string(other.Raw))
	assert.Equal(t, "/problems/one-date-per-order", other.ProblemType())

	more := patch(seats(4, 2))
	require.Equal(t, http.StatusOK, more.Status, string(more.Raw))
	assert.Equal(t, []any{2.0, 4.0}, more.Body["seatNumbers"])
	assert.EqualValues(t, 2*price, more.Body["price"])
	assert.Equal(t, first.Str("heldUntil"), more.Str("heldUntil"), "later seats share the first seat's window")
	again := patch(reserveBody(fan, eve, 2))
	assert.Equal(t, http.StatusConflict, again.Status, string(again.Raw))
	assert.Equal(t, "/problems/already-holding", again.ProblemType())
	assert.Contains(t, again.Str("detail"), "holds seat 2 already")
	full := patch(reserveBody(fan, eve, 5))
	assert.Equal(t, http.StatusConflict, full.Status, string(full.Raw))
	assert.Equal(t, "/problems/order-full", full.ProblemType())
	assert.Contains(t, full.Str("detail"), "may hold 3 seats; this one holds 3 and asks for 1 more")

	statuses := func() map[float64]string {
		m := s.Do(http.MethodGet, "/api/v1/concerts/FAMILY/seats?concertDate="+eve, tok, nil)
		require.Equal(t, http.StatusOK, m.Status, string(m.Raw))
		out := map[float64]string{}
		for _, st := range m.Body["seats"].([]any) {
			seat := st.(map[string]any)
			out[seat["seatNumber"].(float64)] = seat["status"].(string)
		}
		return out
	}
	assert.Equal(t, map[float64]string{1: "HELD", 2: "HELD", 3: "HELD", 4: "HELD", 5: "AVAILABLE", 6: "AVAILABLE"}, statuses())

	paid := s.Do(http.MethodPost, "/api/v1/payments", tok, map[string]any{"UUID": fan})
	require.Equal(t, http.StatusCreated, paid.Status, string(paid.Raw))
	assert.Equal(t, []any{1.0, 2.0, 4.0}, paid.Body["seatNumbers"])
	assert.EqualValues(t, 3*price, paid.Body["amount"])
	assert.EqualValues(t, 0, paid.Body["balance"])
	assert.Equal(t, first.Str("reservationId"), paid.Str("reservationId"))

	mine := s.Do(http.MethodGet, "/api/v1/users/"+fan+"/bookings", "", nil).Body["bookings"].([]any)
	require.Len(t, mine, 1)
	assert.Equal(t, []any{1.0, 2.0, 4.0}, mine[0].(map[string]any)["seatNumbers"])
	assert.EqualValues(t, 3*price, mine[0].(map[string]any)["amount"])

	var support []any
	require.Eventually(t, func() bool {
		r := s.Do(http.MethodGet, "/api/v1/admin/bookings?concertCode=FAMILY&status=PAID", teststack.AdminToken, nil)
		support, _ = r.Body["bookings"].([]any)
		return len(support) == 1
	}, 10*time.Second, 100*time.Millisecond)
	assert.Equal(t, []any{1.0, 2.0, 4.0}, support[0].(map[string]any)["seatNumbers"], "support sees every seat of the order")

	violations, err := s.Store.CheckInvariants(t.Context(), time.Second)
	require.NoError(t, err)
	assert.Empty(t, violations)
}
