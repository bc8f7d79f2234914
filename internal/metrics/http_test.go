package metrics_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ticketing/concert/internal/metrics"
)

const concertRoute = "/api/v1/concerts/{concertCode}"

// newRouter builds a router the way the API's route table should be wired: the middleware attached with
// Use, the NotFound and MethodNotAllowed handlers wrapped with it, and a recoverer outside the router that
// answers 500 for panics. panicked reports whether the recoverer caught one.
func newRouter(reg prometheus.Registerer) (h http.Handler, panicked *bool) {
	mw := metrics.HTTPMiddleware(reg)
	r := mux.NewRouter()
	r.HandleFunc(concertRoute, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}).Methods(http.MethodGet)
	r.HandleFunc("/api/v1/users", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusCreated)
	}).Methods(http.MethodPost)
	r.HandleFunc("/api/v1/silent", func(http.ResponseWriter, *http.Request) {}).Methods(http.MethodGet)
	r.HandleFunc("/api/v1/stream", func(w http.ResponseWriter, _ *http.Request) {
		w.(http.Flusher).Flush()
	}).Methods(http.MethodGet)
	r.HandleFunc("/api/v1/panic", func(http.ResponseWriter, *http.Request) { panic("boom") }).Methods(http.MethodGet)
	r.HandleFunc("/api/v1/slow", func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(30 * time.Millisecond)
		w.WriteHeader(http.StatusAccepted)
	}).Methods(http.MethodGet)
	admin := r.PathPrefix("/api/v1/admin").Subrouter()
	admin.HandleFunc("/bookings/{bookingId}/cancel", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusConflict)
	}).Methods(http.MethodPost)
	r.Use(mw)
	r.NotFoundHandler = mw(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNotFound)
	}))
	r.MethodNotAllowedHandler = mw(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusMethodNotAllowed)
	}))
	panicked = new(bool)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		defer func() {
			if recover() != nil {
				*panicked = true
				w.WriteHeader(http.StatusInternalServerError)
			}
		}()
		r.ServeHTTP(w, req)
	}), panicked
}

// serve sends one request through h and returns the recorded response.
func serve(h http.Handler, method, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

// requests reads concert_http_requests_total for one route, method and status.
func requests(t *testing.T, g prometheus.Gatherer, route, method, status string) float64 {
	t.Helper()
	return mustFind(t, g, "concert_http_requests_total",
		map[string]string{"route": route, "method": method, "status": status}).Value
}

func TestHTTPMiddlewareLabelsRequestsByRouteTemplateNeverByPath(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	h, _ := newRouter(reg)

	for _, code := range []string{"ROCK-1", "JAZZ-2", "POP-3"} {
		require.Equal(t, http.StatusOK, serve(h, http.MethodGet, "/api/v1/concerts/"+code).Code)
	}

	assert.Equal(t, 3.0, requests(t, reg, concertRoute, "GET", "200"))
	assert.Equal(t, 1, seriesOf(t, reg, "concert_http_requests_total"))
	latency := mustFind(t, reg, "concert_http_request_duration_seconds", map[string]string{"route": concertRoute, "method": "GET"})
	assert.Equal(t, uint64(3), latency.Count)
	assert.Equal(t, 1, seriesOf(t, reg, "concert_http_request_duration_seconds"))
	assert.NotContains(t, scrape(t, reg), "ROCK-1")
}

func TestHTTPMiddlewareOnASubrouterRouteUsesTheFullTemplate(t *testing.T) {
	reg := prometheus.NewRegistry()
	h, _ := newRouter(reg)

	require.Equal(t, http.StatusConflict, serve(h, http.MethodPost, "/api/v1/admin/bookings/session-42/cancel").Code)

	assert.Equal(t, 1.0, requests(t, reg, "/api/v1/admin/bookings/{bookingId}/cancel", "POST", "409"))
}

func TestHTTPMiddlewareLabelsRequestsNoRouteMatchedUnmatched(t *testing.T) {
	reg := prometheus.NewRegistry()
	h, _ := newRouter(reg)

	require.Equal(t, http.StatusNotFound, serve(h, http.MethodGet, "/no/such/path/1").Code)
	require.Equal(t, http.StatusNotFound, serve(h, http.MethodGet, "/no/such/path/2").Code)
	require.Equal(t, http.StatusMethodNotAllowed, serve(h, http.MethodDelete, "/api/v1/concerts/ROCK-1").Code)
	require.Equal(t, http.StatusNotFound, serve(h, "BREW", "/coffee").Code)

	assert.Equal(t, 2.0, requests(t, reg, metrics.RouteUnmatched, "GET", "404"))
	assert.Equal(t, 1.0, requests(t, reg, metrics.RouteUnmatched, "DELETE", "405"))
	assert.Equal(t, 1.0, requests(t, reg, metrics.RouteUnmatched, "OTHER", "404"), "unknown methods must not mint label values")
	assert.Equal(t, 3, seriesOf(t, reg, "concert_http_requests_total"), "each request is counted once")
}

func TestHTTPMiddlewareRecordsTheStatusTheHandlerSent(t *testing.T) {
	tests := []struct {
		name, method, path, route, status string
	}{
		{"explicit WriteHeader", http.MethodPost, "/api/v1/users", "/api/v1/users", "201"},
		{"body without WriteHeader", http.MethodGet, "/api/v1/concerts/ROCK-1", concertRoute, "200"},
		{"nothing written", http.MethodGet, "/api/v1/silent", "/api/v1/silent", "200"},
		{"flushed through the middleware", http.MethodGet, "/api/v1/stream", "/api/v1/stream", "200"},
		{"panic answered by the recoverer", http.MethodGet, "/api/v1/panic", "/api/v1/panic", "500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			h, _ := newRouter(reg)

			rec := serve(h, tt.method, tt.path)

			assert.Equal(t, tt.status, strconv.Itoa(rec.Code), "response status")
			assert.Equal(t, 1.0, requests(t, reg, tt.route, tt.method, tt.status))
			assert.Equal(t, 1, seriesOf(t, reg, "concert_http_requests_total"))
		})
	}
}

func TestHTTPMiddlewarePassesPanicsOnAndKeepsTheFlusher(t *testing.T) {
	reg := prometheus.NewRegistry()
	h, panicked := newRouter(reg)

	serve(h, http.MethodGet, "/api/v1/panic")
	assert.True(t, *panicked, "the recoverer outside the router must see the panic")

	rec := serve(h, http.MethodGet, "/api/v1/stream")
	assert.True(t, rec.Flushed, "http.Flusher must reach the underlying writer")
}

func TestHTTPMiddlewareTimesRequestsInSeconds(t *testing.T) {
	reg := prometheus.NewRegistry()
	h, _ := newRouter(reg)

	require.Equal(t, http.StatusAccepted, serve(h, http.MethodGet, "/api/v1/slow").Code)

	got := mustFind(t, reg, "concert_http_request_duration_seconds", map[string]string{"route": "/api/v1/slow", "method": "GET"})
	assert.Equal(t, uint64(1), got.Count)
	assert.GreaterOrEqual(t, got.Sum, 0.030)
	assert.Less(t, got.Sum, 5.0)
	assert.Equal(t, uint64(0), got.Buckets[0.025], "a 30ms request is above the 25ms bucket")
	assert.Equal(t, uint64(1), got.Buckets[10])
	assert.Len(t, got.Buckets, 13, "buckets from 1ms to 10s")
	assert.Contains(t, got.Buckets, 0.001)
}

func TestHTTPMiddlewareCreatedTwiceOnOneRegistrySharesItsSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	first, _ := newRouter(reg)
	second, _ := newRouter(reg)

	serve(first, http.MethodGet, "/api/v1/silent")
	serve(second, http.MethodGet, "/api/v1/silent")

	assert.Equal(t, 2.0, requests(t, reg, "/api/v1/silent", "GET", "200"))
}

func TestHTTPMiddlewareLabelsARouteWithoutPathByNameOrUntemplated(t *testing.T) {
	reg := prometheus.NewRegistry()
	mw := metrics.HTTPMiddleware(reg)
	r := mux.NewRouter()
	ok := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }
	r.Headers("X-Probe", "named").HandlerFunc(ok).Name("probe")
	r.Headers("X-Probe", "anonymous").HandlerFunc(ok)
	r.Use(mw)

	req := httptest.NewRequest(http.MethodGet, "/anything/at/all", nil)
	req.Header.Set("X-Probe", "named")
	r.ServeHTTP(httptest.NewRecorder(), req)
	req = httptest.NewRequest(http.MethodGet, "/something/else", nil)
	req.Header.Set("X-Probe", "anonymous")
	r.ServeHTTP(httptest.NewRecorder(), req)

	assert.Equal(t, 1.0, requests(t, reg, "probe", "GET", "204"))
	assert.Equal(t, 1.0, requests(t, reg, metrics.RouteUntemplated, "GET", "204"))
}
