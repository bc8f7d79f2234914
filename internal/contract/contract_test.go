package contract

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ticketing/concert/api"
)

func exchange(method, target, reqBody string, status int, contentType, body string) Exchange {
	req := httptest.NewRequest(method, target, strings.NewReader(reqBody))
	if reqBody != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	h := http.Header{}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	return Exchange{Request: req, RequestBody: []byte(reqBody), Status: status, Header: h, Body: []byte(body)}
}

// TestCheckerJudgesExchangesByTheDocument proves the checker loads the API's document and tells a
// documented exchange from a drifted one: a wrong member type, an undocumented status, a wrong content type,
// a request the server should not have accepted.
func TestCheckerJudgesExchangesByTheDocument(t *testing.T) {
	c, err := New(api.OpenAPI())
	require.NoError(t, err)
	ctx := t.Context()
	const user = `{"UUID":"11111111-1111-4111-8111-111111111111"}`
	ok := []Exchange{
		exchange(http.MethodGet, "/healthz", "", 200, "application/json", `{"status":"ok"}`),
		exchange(http.MethodPost, "/api/v1/concerts/DEMO/token", user, 201, "application/json",
			`{"token":"t.s","status":"WAITING","position":3,"estimatedWaitSeconds":12}`),
		exchange(http.MethodPost, "/api/v1/concerts/DEMO/token", `{"UUID":"nope"}`, 400, "application/problem+json",
			`{"type":"/problems/invalid-request","title":"The request is invalid","status":400,"detail":"d","instance":"/api/v1/concerts/DEMO/token"}`),
		exchange(http.MethodGet, "/no/such/path", "", 404, "application/problem+json", `{"type":"/problems/not-found"}`),
		exchange(http.MethodHead, "/healthz", "", 200, "application/json", ``),
	}
	for _, x := range ok {
		assert.NoError(t, c.Check(ctx, x), "%s %s %d", x.Request.Method, x.Request.URL, x.Status)
	}
	drifted := map[string]Exchange{
		"a member of the wrong type": exchange(http.MethodPost, "/api/v1/concerts/DEMO/token", user, 201, "application/json",
			`{"token":"t.s","status":"WAITING","position":"third","estimatedWaitSeconds":12}`),
		"an undocumented status": exchange(http.MethodGet, "/healthz", "", 418, "application/json", `{"status":"ok"}`),
		"a wrong content type":   exchange(http.MethodGet, "/healthz", "", 200, "text/plain", `ok`),
		"an accepted bad request": exchange(http.MethodPost, "/api/v1/concerts/DEMO/token", `{"UUID":"nope"}`, 201,
			"application/json", `{"token":"t.s","status":"ACTIVE","position":0,"estimatedWaitSeconds":0}`),
		"an unknown path answered": exchange(http.MethodGet, "/no/such/path", "", 200, "application/json", `{}`),
		"an escaped slash routed": exchange(http.MethodGet, "/api/v1/users%2F11111111-1111-4111-8111-111111111111%2Fbalance",
			"", 200, "application/json", `{"UUID":"11111111-1111-4111-8111-111111111111","balance":0}`),
		"a 404 that is not the router's": exchange(http.MethodGet, "/healthz", "", 404, "application/problem+json",
			`{"type":"/problems/user-not-found"}`),
	}
	for name, x := range drifted {
		assert.Error(t, c.Check(ctx, x), name)
	}
}
