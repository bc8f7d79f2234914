package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"

	"github.com/ticketing/concert/internal/teststack"
)

// TestTheSaleClosesAtItsClosingTime proves closesAt end to end: set at creation and listed; when it comes
// the waiting room wakes by itself and ends the fan still waiting CLOSED; the fan admitted before it still
// buys; a fan who asks after it is CLOSED at once; the closed sale leaves the list and its closing can no
// longer move. Bad closing times are refused.
func TestTheSaleClosesAtItsClosingTime(t *testing.T) {
	t.Parallel()
	s := teststack.Start(t, teststack.Options{})
	create := func(code string, extra map[string]any) teststack.Response {
		body := map[string]any{
			"concertCode": code, "title": "Last call", "maxActive": 1,
			"dates": []map[string]any{{"concertDate": eve, "seats": 4, "price": price}},
		}
		for k, v := range extra {
			body[k] = v
		}
		return s.Do(http.MethodPost, "/api/v1/admin/concerts", teststack.AdminToken, body)
	}
	now := time.Now().UTC()
	assert.Equal(t, http.StatusBadRequest, create("PAST", map[string]any{"closesAt": now.Add(-time.Minute).Format(time.RFC3339)}).Status)
	assert.Equal(t, http.StatusBadRequest, create("CROSSED", map[string]any{
		"opensAt": now.Add(time.Hour).Format(time.RFC3339), "closesAt": now.Add(time.Minute).Format(time.RFC3339)}).Status)
	closes := now.Add(4 * time.Second)
	c := create("LAST", map[string]any{"closesAt": closes.Format(time.RFC3339Nano)})
	require.Equal(t, http.StatusCreated, c.Status, string(c.Raw))
	assert.NotNil(t, c.Body["closesAt"])
	listed := s.Do(http.MethodGet, "/api/v1/concerts", "", nil).Body["concerts"].([]any)
	require.Len(t, listed, 1)
	assert.NotNil(t, listed[0].(map[string]any)["closesAt"])

	early, late := s.CreateUser(price), s.CreateUser(price)
	in := s.Token("LAST", early)
	require.Equal(t, "ACTIVE", in.Str("status"))
	wait := s.Token("LAST", late)
	require.Equal(t, "WAITING", wait.Str("status"), "the one slot is taken")

	var st teststack.Response
	require.Eventually(t, func() bool {
		st = s.Do(http.MethodGet, "/api/v1/concerts/LAST/token", wait.Str("token"), nil)
		return st.Str("status") == "CLOSED"
	}, 20*time.Second, 200*time.Millisecond, "the waiting fan ends CLOSED when the sale closes: %s", st.Raw)
	assert.False(t, time.Now().Before(closes), "not before the closing")
	_, described := s.Temporal.DescribeWorkflowExecution(t.Context(), s.BookingID("LAST", late), "")
	var notFound *serviceerror.NotFound
	assert.ErrorAs(t, described, &notFound, "a fan who waited without a workflow gets none to be told the sale closed")

	tok := in.Str("token")
	require.Equal(t, http.StatusOK, s.Do(http.MethodPatch, "/api/v1/concerts/LAST", tok, reserveBody(early, eve, 1)).Status,
		"a fan admitted before the closing still buys")
	require.Equal(t, http.StatusCreated, s.Do(http.MethodPost, "/api/v1/payments", tok, map[string]any{"UUID": early}).Status)

	after := s.Token("LAST", s.CreateUser(0))
	assert.Equal(t, "CLOSED", after.Str("status"), "a fan who asks after the closing is turned away: %s", after.Raw)
	assert.Empty(t, s.Do(http.MethodGet, "/api/v1/concerts", "", nil).Body["concerts"], "a closed sale leaves the list")
	move := s.Do(http.MethodPost, "/api/v1/admin/concerts/LAST/admission", teststack.AdminToken,
		map[string]any{"closesAt": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	assert.Equal(t, http.StatusConflict, move.Status, string(move.Raw))
	assert.Equal(t, "/problems/sale-closed", move.ProblemType())

	violations, err := s.Store.CheckInvariants(t.Context(), time.Second)
	require.NoError(t, err)
	assert.Empty(t, violations)
}

// TestSupportClosesASaleNow proves that an admin can close a sale at once (a closing time already past):
// the fan still waiting ends CLOSED without waiting for a timer.
func TestSupportClosesASaleNow(t *testing.T) {
	t.Parallel()
	s := teststack.Start(t, teststack.Options{})
	s.CreateConcert("STOPNOW", 1, teststack.ConcertDate{Date: eve, Seats: 4, Price: price})
	require.Equal(t, "ACTIVE", s.Token("STOPNOW", s.CreateUser(0)).Str("status"))
	wait := s.Token("STOPNOW", s.CreateUser(0))
	require.Equal(t, "WAITING", wait.Str("status"))

	r := s.Do(http.MethodPost, "/api/v1/admin/concerts/STOPNOW/admission", teststack.AdminToken,
		map[string]any{"closesAt": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)})
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	require.NotNil(t, r.Body["closesAt"])
	require.Eventually(t, func() bool {
		return s.Do(http.MethodGet, "/api/v1/concerts/STOPNOW/token", wait.Str("token"), nil).Str("status") == "CLOSED"
	}, 10*time.Second, 100*time.Millisecond)
}
