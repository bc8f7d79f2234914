package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ticketing/concert/api"
	"github.com/ticketing/concert/internal/teststack"
)

// rawResponse is a response with its exact body, to compare replays byte for byte.
type rawResponse struct {
	status   int
	body     string
	replayed bool
	retry    string
}

func send(t *testing.T, s *teststack.Stack, method, path, token, key string, body any) rawResponse {
	t.Helper()
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequest(method, s.URL+path, bytes.NewReader(raw))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := s.HTTP.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return rawResponse{resp.StatusCode, string(b), resp.Header.Get("Idempotent-Replayed") == "true", resp.Header.Get("Retry-After")}
}

// concurrently sends n identical requests at once.
func concurrently(t *testing.T, n int, do func() rawResponse) []rawResponse {
	out := make([]rawResponse, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = do()
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// assertOneOutcome checks that concurrent retries with one key produced one outcome: every answer is the
// original success (first or replayed) or a 409 "still running".
func assertOneOutcome(t *testing.T, rs []rawResponse, success int) string {
	t.Helper()
	var body string
	for _, r := range rs {
		switch r.status {
		case success:
			if body == "" {
				body = r.body
			}
			assert.JSONEq(t, body, r.body, "every success is the same response")
		case http.StatusConflict:
			assert.Contains(t, r.body, "/problems/idempotency-key-in-progress")
			assert.Equal(t, "1", r.retry)
		default:
			t.Errorf("unexpected %d %s", r.status, r.body)
		}
	}
	require.NotEmpty(t, body, "one request succeeded")
	return body
}

func count(t *testing.T, s *teststack.Stack, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, s.SQL.Get(&n, query, args...))
	return n
}

// TestRetriedTopUpsCreditOnce proves the Idempotency-Key contract of PATCH balance: the same key and body
// return the first response and credit once, sequentially and concurrently; another body gets 422.
func TestRetriedTopUpsCreditOnce(t *testing.T) {
	t.Parallel()
	s := teststack.Start(t, teststack.Options{})
	u := s.CreateUser(0)
	path := "/api/v1/users/" + u + "/balance"

	first := send(t, s, http.MethodPatch, path, "", "topup-1", map[string]any{"amount": 5000})
	require.Equal(t, http.StatusOK, first.status, first.body)
	again := send(t, s, http.MethodPatch, path, "", "topup-1", map[string]any{"amount": 5000})
	assert.Equal(t, http.StatusOK, again.status)
	assert.Equal(t, first.body, again.body)
	assert.True(t, again.replayed)
	other := send(t, s, http.MethodPatch, path, "", "topup-1", map[string]any{"amount": 7000})
	assert.Equal(t, http.StatusUnprocessableEntity, other.status)
	assert.Contains(t, other.body, "/problems/idempotency-key-reused")

	rs := concurrently(t, 12, func() rawResponse {
		return send(t, s, http.MethodPatch, path, "", "topup-2", map[string]any{"amount": 1000})
	})
	assertOneOutcome(t, rs, http.StatusOK)
	assert.EqualValues(t, 6000, s.Do(http.MethodGet, path, "", nil).Int("balance"), "two keys, two credits")
	assert.Equal(t, 2, count(t, s, `SELECT count(*) FROM ledger WHERE user_uuid = $1`, u))

	bad := send(t, s, http.MethodPatch, path, "", "has space", map[string]any{"amount": 1})
	assert.Equal(t, http.StatusBadRequest, bad.status)
}

// TestRetriedReservationsHoldOnce proves the contract for PATCH reserve, where the key is also the Workflow
// Update ID: retries return the same reservation, concurrent ones too, and another body gets 422.
func TestRetriedReservationsHoldOnce(t *testing.T) {
	t.Parallel()
	s := teststack.Start(t, teststack.Options{})
	s.CreateConcert("IDEM", 5, teststack.ConcertDate{Date: eve, Seats: 5, Price: price})
	a, b := s.CreateUser(0), s.CreateUser(0)
	ta, tb := s.Token("IDEM", a).Str("token"), s.Token("IDEM", b).Str("token")

	first := send(t, s, http.MethodPatch, "/api/v1/concerts/IDEM", ta, "hold-a", reserveBody(a, eve, 1))
	require.Equal(t, http.StatusOK, first.status, first.body)
	again := send(t, s, http.MethodPatch, "/api/v1/concerts/IDEM", ta, "hold-a", reserveBody(a, eve, 1))
	assert.Equal(t, first.body, again.body)
	other := send(t, s, http.MethodPatch, "/api/v1/concerts/IDEM", ta, "hold-a", reserveBody(a, eve, 2))
	assert.Equal(t, http.StatusUnprocessableEntity, other.status)

	rs := concurrently(t, 10, func() rawResponse {
		return send(t, s, http.MethodPatch, "/api/v1/concerts/IDEM", tb, "hold-b", reserveBody(b, eve, 3))
	})
	assertOneOutcome(t, rs, http.StatusOK)
	assert.Equal(t, 2, count(t, s, `SELECT count(*) FROM seats WHERE concert_code = 'IDEM' AND status = 'HELD'`))
}

// TestRetriedPaymentsChargeOnce proves the contract for POST payments: one charge for any number of
// retries, and a retry after the session has ended still gets the original 201.
func TestRetriedPaymentsChargeOnce(t *testing.T) {
	t.Parallel()
	s := teststack.Start(t, teststack.Options{})
	s.CreateConcert("PAYI", 5, teststack.ConcertDate{Date: eve, Seats: 5, Price: price})
	a, b := s.CreateUser(2*price), s.CreateUser(2*price)
	ta, tb := s.Token("PAYI", a).Str("token"), s.Token("PAYI", b).Str("token")
	require.Equal(t, http.StatusOK, s.Do(http.MethodPatch, "/api/v1/concerts/PAYI", ta, reserveBody(a, eve, 1)).Status)
	require.Equal(t, http.StatusOK, s.Do(http.MethodPatch, "/api/v1/concerts/PAYI", tb, reserveBody(b, eve, 2)).Status)

	first := send(t, s, http.MethodPost, "/api/v1/payments", ta, "pay-a", map[string]any{"UUID": a})
	require.Equal(t, http.StatusCreated, first.status, first.body)
	// The session has ended: without the key the token is dead, with it the lost answer comes back.
	assert.Equal(t, http.StatusGone, send(t, s, http.MethodPost, "/api/v1/payments", ta, "", map[string]any{"UUID": a}).status)
	retry := send(t, s, http.MethodPost, "/api/v1/payments", ta, "pay-a", map[string]any{"UUID": a})
	assert.Equal(t, http.StatusCreated, retry.status)
	assert.Equal(t, first.body, retry.body)
	assert.True(t, retry.replayed)
	// A keyed retry whose first answer was a 5xx (which frees the key) still learns the payment went through.
	lost := send(t, s, http.MethodPost, "/api/v1/payments", ta, "pay-a-after-503", map[string]any{"UUID": a})
	assert.Equal(t, http.StatusCreated, lost.status, lost.body)
	assert.JSONEq(t, first.body, lost.body)

	rs := concurrently(t, 10, func() rawResponse {
		return send(t, s, http.MethodPost, "/api/v1/payments", tb, "pay-b", map[string]any{"UUID": b})
	})
	assertOneOutcome(t, rs, http.StatusCreated)
	for _, u := range []string{a, b} {
		assert.EqualValues(t, price, s.Do(http.MethodGet, "/api/v1/users/"+u+"/balance", "", nil).Int("balance"), "charged once")
		assert.Equal(t, 1, count(t, s, `SELECT count(*) FROM payments WHERE user_uuid = $1`, u))
	}
}

// TestRateLimitsAnswer429WithRetryAfter proves the per-user and per-address limits of token issue and
// top-up.
func TestRateLimitsAnswer429WithRetryAfter(t *testing.T) {
	t.Parallel()
	s := teststack.Start(t, teststack.Options{
		UserRateLimit: api.RateLimit{Rate: 1, Burst: 2}, AddressRateLimit: api.RateLimit{Rate: 1, Burst: 5},
	})
	s.CreateConcert("RATE", 10, teststack.ConcertDate{Date: eve, Seats: 5, Price: price})
	u, v := s.CreateUser(0), s.CreateUser(0)
	path := "/api/v1/users/" + u + "/balance"
	statuses := []int{}
	var last rawResponse
	for range 3 {
		last = send(t, s, http.MethodPatch, path, "", "", map[string]any{"amount": 1})
		statuses = append(statuses, last.status)
	}
	assert.Equal(t, []int{200, 200, 429}, statuses, "the burst of 2 per user, then 429")
	assert.Contains(t, last.body, "/problems/rate-limited")
	retry, err := strconv.Atoi(last.retry)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, retry, 1)
	assert.Equal(t, http.StatusOK, send(t, s, http.MethodPatch, "/api/v1/users/"+v+"/balance", "", "", map[string]any{"amount": 1}).status,
		"another user has a bucket of their own")

	// The address bucket (burst 5) is shared by every user asking from this address.
	users := []string{}
	for range 8 {
		users = append(users, s.CreateUser(0))
	}
	refused := 0
	for _, id := range users {
		r := send(t, s, http.MethodPost, "/api/v1/concerts/RATE/token", "", "", map[string]any{"UUID": id})
		if r.status == http.StatusTooManyRequests {
			refused++
			assert.Contains(t, r.body, "address")
		}
	}
	assert.Positive(t, refused, "requests for new users from one address are limited too")
}

// TestReadyzFailsWhenTheDatabaseLacksTheSchema proves that an API whose database answers but cannot serve it
// (re-created empty, wiped, or behind the binary) leaves the load balancer's rotation instead of answering
// every request 503 while /readyz says ready.
func TestReadyzFailsWhenTheDatabaseLacksTheSchema(t *testing.T) {
	t.Parallel()
	s := teststack.Start(t, teststack.Options{})
	r := s.Do(http.MethodGet, "/readyz", "", nil)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))

	var last string
	require.NoError(t, s.SQL.Get(&last, `DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations) RETURNING version`))
	r = s.Do(http.MethodGet, "/readyz", "", nil)
	assert.Equal(t, http.StatusServiceUnavailable, r.Status, string(r.Raw))
	assert.Equal(t, "/problems/service-unavailable", r.ProblemType())
	checks, _ := r.Body["checks"].(map[string]any)
	assert.Contains(t, checks["postgres"], last, "the probe says which migration is missing")
	assert.Equal(t, "ok", checks["temporal"])
}
