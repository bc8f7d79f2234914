package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ticketing/concert/internal/teststack"
)

// TestEveryEndpointRejectsBadRequestsWithProblemDetails walks the error cases of every endpoint and checks
// the status code, the problem type and the problem+json content type of each.
func TestEveryEndpointRejectsBadRequestsWithProblemDetails(t *testing.T) {
	t.Parallel()
	s := teststack.Start(t, teststack.Options{})
	s.CreateConcert("ERR", 1, teststack.ConcertDate{Date: eve, Seats: 3, Price: price})
	s.CreateConcert("OTHER", 5, teststack.ConcertDate{Date: eve, Seats: 3, Price: price})
	active, waiting, stranger := s.CreateUser(0), s.CreateUser(0), s.CreateUser(0)
	tok := s.Token("ERR", active).Str("token")
	waitTok := s.Token("ERR", waiting).Str("token")
	require.Equal(t, "WAITING", s.Do(http.MethodGet, "/api/v1/concerts/ERR/token", waitTok, nil).Str("status"))
	otherTok := s.Token("OTHER", stranger).Str("token")
	tampered := tok[:len(tok)-2] + "xx"
	unknownUser := "00000000-0000-4000-8000-000000000000"
	big := `{"UUID":"` + strings.Repeat("a", 70_000) + `"}`

	cases := []struct {
		name, method, path, token string
		body                      any
		status                    int
		problem                   string
	}{
		// POST token
		{"token for unknown concert", "POST", "/api/v1/concerts/NOPE/token", "", map[string]any{"UUID": active}, 404, "concert-not-found"},
		{"token for malformed concert code", "POST", "/api/v1/concerts/bad%20code/token", "", map[string]any{"UUID": active}, 404, "concert-not-found"},
		{"token for unknown user", "POST", "/api/v1/concerts/ERR/token", "", map[string]any{"UUID": unknownUser}, 404, "user-not-found"},
		{"token with malformed UUID", "POST", "/api/v1/concerts/ERR/token", "", map[string]any{"UUID": "not-a-uuid"}, 400, "invalid-request"},
		{"token with numeric UUID", "POST", "/api/v1/concerts/ERR/token", "", map[string]any{"UUID": 42}, 400, "invalid-request"},
		{"token without UUID", "POST", "/api/v1/concerts/ERR/token", "", map[string]any{}, 400, "invalid-request"},
		{"token with non-JSON body", "POST", "/api/v1/concerts/ERR/token", "", "UUID=x", 400, "invalid-json"},
		{"token with JSON array body", "POST", "/api/v1/concerts/ERR/token", "", "[1,2]", 400, "invalid-json"},
		{"token with trailing data", "POST", "/api/v1/concerts/ERR/token", "", `{"UUID":"` + active + `"} {}`, 400, "invalid-json"},
		{"token with empty body", "POST", "/api/v1/concerts/ERR/token", "", nil, 400, "invalid-json"},
		{"token with oversized body", "POST", "/api/v1/concerts/ERR/token", "", big, 413, "payload-too-large"},
		// GET token status
		{"status without token", "GET", "/api/v1/concerts/ERR/token", "", nil, 401, "missing-token"},
		{"status with garbage token", "GET", "/api/v1/concerts/ERR/token", "garbage", nil, 401, "invalid-token"},
		{"status with tampered token", "GET", "/api/v1/concerts/ERR/token", tampered, nil, 401, "invalid-token"},
		{"status with another concert's token", "GET", "/api/v1/concerts/ERR/token", otherTok, nil, 403, "wrong-concert"},
		// GET dates
		{"dates without token", "GET", "/api/v1/concerts/ERR", "", nil, 401, "missing-token"},
		{"dates with waiting token", "GET", "/api/v1/concerts/ERR", waitTok, nil, 403, "not-admitted"},
		{"dates with another concert's token", "GET", "/api/v1/concerts/ERR", otherTok, nil, 403, "wrong-concert"},
		{"dates for another user", "GET", "/api/v1/concerts/ERR?UUID=" + stranger, tok, nil, 403, "wrong-user"},
		// GET seats
		{"seats without date", "GET", "/api/v1/concerts/ERR/seats", tok, nil, 400, "invalid-request"},
		{"seats with malformed date", "GET", "/api/v1/concerts/ERR/seats?concertDate=24-12-2026", tok, nil, 400, "invalid-request"},
		{"seats with zoned date", "GET", "/api/v1/concerts/ERR/seats?concertDate=2026-12-24T19:00:00Z", tok, nil, 400, "invalid-request"},
		{"seats for unknown date", "GET", "/api/v1/concerts/ERR/seats?concertDate=2027-01-01T19:00:00", tok, nil, 404, "date-not-found"},
		{"seats with waiting token", "GET", "/api/v1/concerts/ERR/seats?concertDate=" + eve, waitTok, nil, 403, "not-admitted"},
		{"seats with tampered token", "GET", "/api/v1/concerts/ERR/seats?concertDate=" + eve, tampered, nil, 401, "invalid-token"},
		// PATCH reserve
		{"reserve without token", "PATCH", "/api/v1/concerts/ERR", "", reserveBody(active, eve, 1), 401, "missing-token"},
		{"reserve with waiting token", "PATCH", "/api/v1/concerts/ERR", waitTok, reserveBody(waiting, eve, 1), 403, "not-admitted"},
		{"reserve with another concert's token", "PATCH", "/api/v1/concerts/ERR", otherTok, reserveBody(stranger, eve, 1), 403, "wrong-concert"},
		{"reserve for another user", "PATCH", "/api/v1/concerts/ERR", tok, reserveBody(stranger, eve, 1), 403, "wrong-user"},
		{"reserve seat zero", "PATCH", "/api/v1/concerts/ERR", tok, reserveBody(active, eve, 0), 400, "invalid-request"},
		{"reserve seat as string", "PATCH", "/api/v1/concerts/ERR", tok, map[string]any{"UUID": active, "concertDate": eve, "seatNumber": "1"}, 400, "invalid-request"},
		{"reserve fractional seat", "PATCH", "/api/v1/concerts/ERR", tok, map[string]any{"UUID": active, "concertDate": eve, "seatNumber": 1.5}, 400, "invalid-request"},
		{"reserve without seat", "PATCH", "/api/v1/concerts/ERR", tok, map[string]any{"UUID": active, "concertDate": eve}, 400, "invalid-request"},
		{"reserve with malformed date", "PATCH", "/api/v1/concerts/ERR", tok, reserveBody(active, "tomorrow", 1), 400, "invalid-request"},
		{"reserve unknown date", "PATCH", "/api/v1/concerts/ERR", tok, reserveBody(active, "2027-01-01T19:00:00", 1), 404, "date-not-found"},
		{"reserve unknown seat", "PATCH", "/api/v1/concerts/ERR", tok, reserveBody(active, eve, 999), 404, "seat-not-found"},
		// POST payments
		{"pay without token", "POST", "/api/v1/payments", "", map[string]any{"UUID": active}, 401, "missing-token"},
		{"pay with garbage token", "POST", "/api/v1/payments", "garbage", map[string]any{"UUID": active}, 401, "invalid-token"},
		{"pay with waiting token", "POST", "/api/v1/payments", waitTok, map[string]any{"UUID": waiting}, 403, "not-admitted"},
		{"pay for another user", "POST", "/api/v1/payments", tok, map[string]any{"UUID": stranger}, 403, "wrong-user"},
		{"pay without UUID", "POST", "/api/v1/payments", tok, map[string]any{}, 400, "invalid-request"},
		{"pay with no seat held", "POST", "/api/v1/payments", tok, map[string]any{"UUID": active}, 409, "no-seat-held"},
		// balance
		{"balance of unknown user", "GET", "/api/v1/users/" + unknownUser + "/balance", "", nil, 404, "user-not-found"},
		{"balance of malformed UUID", "GET", "/api/v1/users/xyz/balance", "", nil, 400, "invalid-request"},
		{"top up unknown user", "PATCH", "/api/v1/users/" + unknownUser + "/balance", "", map[string]any{"amount": 10}, 404, "user-not-found"},
		{"top up malformed UUID", "PATCH", "/api/v1/users/xyz/balance", "", map[string]any{"amount": 10}, 400, "invalid-request"},
		{"top up zero", "PATCH", "/api/v1/users/" + active + "/balance", "", map[string]any{"amount": 0}, 400, "invalid-request"},
		{"top up negative", "PATCH", "/api/v1/users/" + active + "/balance", "", map[string]any{"amount": -5}, 400, "invalid-request"},
		{"top up fraction", "PATCH", "/api/v1/users/" + active + "/balance", "", map[string]any{"amount": 10.5}, 400, "invalid-request"},
		{"top up string", "PATCH", "/api/v1/users/" + active + "/balance", "", map[string]any{"amount": "10"}, 400, "invalid-request"},
		{"top up over maximum", "PATCH", "/api/v1/users/" + active + "/balance", "", map[string]any{"amount": 10_000_001}, 400, "invalid-request"},
		{"top up beyond int64", "PATCH", "/api/v1/users/" + active + "/balance", "", `{"amount": 99999999999999999999}`, 400, "invalid-request"},
		{"top up without amount", "PATCH", "/api/v1/users/" + active + "/balance", "", map[string]any{}, 400, "invalid-request"},
		// admin
		{"create concert without admin token", "POST", "/api/v1/admin/concerts", "", map[string]any{}, 401, "admin-token-required"},
		{"create concert with wrong admin token", "POST", "/api/v1/admin/concerts", "nope", map[string]any{}, 401, "admin-token-required"},
		{"create duplicate concert", "POST", "/api/v1/admin/concerts", teststack.AdminToken, concertBody("ERR", 1, 3), 409, "duplicate-concert"},
		{"create concert with zero maxActive", "POST", "/api/v1/admin/concerts", teststack.AdminToken, concertBody("NEW1", 0, 3), 400, "invalid-request"},
		{"create concert with zero seats", "POST", "/api/v1/admin/concerts", teststack.AdminToken, concertBody("NEW2", 1, 0), 400, "invalid-request"},
		{"create concert with bad code", "POST", "/api/v1/admin/concerts", teststack.AdminToken, concertBody("no spaces", 1, 3), 400, "invalid-request"},
		{"create concert without dates", "POST", "/api/v1/admin/concerts", teststack.AdminToken, map[string]any{"concertCode": "NEW3", "title": "t", "maxActive": 1, "dates": []any{}}, 400, "invalid-request"},
		// routing
		{"unknown path", "GET", "/api/v1/nothing-here", "", nil, 404, "not-found"},
		{"wrong method", "DELETE", "/api/v1/payments", "", nil, 405, "method-not-allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := s.Do(c.method, c.path, c.token, c.body)
			assert.Equal(t, c.status, r.Status, string(r.Raw))
			assert.Equal(t, "/problems/"+c.problem, r.ProblemType(), string(r.Raw))
			assert.Equal(t, "application/problem+json", r.Header.Get("Content-Type"))
			assert.EqualValues(t, c.status, r.Int("status"), "the body repeats the status")
		})
	}
	// Nothing above changed a balance or a seat.
	r := s.Do(http.MethodGet, "/api/v1/users/"+active+"/balance", "", nil)
	assert.EqualValues(t, 0, r.Int("balance"))
	assertSeat(t, s, "ERR", tok, eve, 1, "AVAILABLE")
}

func concertBody(code string, maxActive, seats int) map[string]any {
	return map[string]any{"concertCode": code, "title": "Concert", "maxActive": maxActive,
		"dates": []any{map[string]any{"concertDate": eve, "seats": seats, "price": price}}}
}
