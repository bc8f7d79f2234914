package metrics

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
)

// Route labels of requests that have no route template.
const (
	// RouteUnmatched labels requests no route matched: 404s and 405s.
	RouteUnmatched = "unmatched"
	// RouteUntemplated labels requests of a route that has neither a path template nor a name (a route
	// matched only by host, header or a custom matcher).
	RouteUntemplated = "untemplated"
)

// HTTPMiddleware returns middleware that counts requests in concert_http_requests_total{route,method,status}
// and times them in concert_http_request_duration_seconds{route,method}, registering both with reg (or
// reusing them if reg has them already, so it may be called more than once).
//
// The route label is the gorilla/mux path template of the matched route ("/api/v1/concerts/{concertCode}"),
// never the raw path, which would give every concert code and user ID a series of its own. mux makes the
// matched route known only inside the router, so attach the middleware with router.Use, and wrap the
// router's NotFoundHandler and MethodNotAllowedHandler with the same middleware: mux runs Use middleware only
// for matched routes, and those two handlers are how unmatched requests (route="unmatched") get counted.
//
//	mw := metrics.HTTPMiddleware(reg)
//	r.Use(mw)
//	r.NotFoundHandler = mw(notFound)
//	r.MethodNotAllowedHandler = mw(notAllowed)
//
// Wrapping the whole router instead would label every request "unmatched". Redirects mux answers itself
// for unclean paths ("//x", "/a/../b") reach no handler and are not counted. Methods outside the standard
// ones are labelled "OTHER", so a client cannot mint label values. A handler that panics before writing a
// status is counted as 500, which is what the API's recoverer answers; the panic is passed on untouched.
func HTTPMiddleware(reg prometheus.Registerer) func(next http.Handler) http.Handler {
	m := &httpMetrics{
		requests: registerOnce(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "concert_http_requests_total",
			Help: "HTTP requests answered by the booking API, by mux route template, method and status code.",
		}, []string{"route", "method", "status"})),
		duration: registerOnce(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "concert_http_request_duration_seconds",
			Help:    "Time the booking API took to answer HTTP requests, by mux route template and method.",
			Buckets: latencyBuckets,
		}, []string{"route", "method"})),
	}
	return m.middleware
}

// httpMetrics holds the collectors HTTPMiddleware records into.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func (m *httpMetrics) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route, method := routeLabel(r), methodLabel(r.Method)
		rec := &statusWriter{ResponseWriter: w}
		start := time.Now()
		returned := false
		defer func() {
			status := rec.status
			switch {
			case status == 0 && returned:
				status = http.StatusOK // what net/http sends for a handler that wrote nothing
			case status == 0:
				status = http.StatusInternalServerError
			}
			m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
			m.duration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(rec, r)
		returned = true
	})
}

// routeLabel is the path template of the route mux matched for r.
func routeLabel(r *http.Request) string {
	route := mux.CurrentRoute(r) // nil, or a nil *Route for the NotFound and MethodNotAllowed handlers
	if route == nil {
		return RouteUnmatched
	}
	if tpl, err := route.GetPathTemplate(); err == nil {
		return tpl
	}
	if name := route.GetName(); name != "" {
		return name
	}
	return RouteUntemplated
}

// methodLabel bounds the method label to the standard methods.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	}
	return "OTHER"
}

// statusWriter remembers the final status a handler sent.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	// 1xx headers other than 101 are informational: the final status follows.
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush lets handlers that stream flush through the middleware.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer, for deadlines and hijacking.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// registerOnce registers c with reg, or returns the equal collector reg has already. Any other error is a
// programming error (a name taken by a different metric) and panics, as prometheus.MustRegister does.
func registerOnce[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	panic(fmt.Errorf("metrics: register collector: %w", err))
}
