// Package metrics is the booking service's Prometheus instrumentation: a registry with the Go runtime and
// process collectors, the /metrics handler, HTTP request metrics keyed by gorilla/mux route template, a
// Temporal SDK metrics handler backed by client_golang, and a collector of per-concert business figures read
// from the store at scrape time.
//
// It only observes. It holds no booking state, writes nothing, contains no SQL (business figures come from a
// function the caller passes in, normally (*db.Store).ConcertStats) and never fails a request or an SDK call
// because of a metric.
package metrics

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// latencyBuckets (seconds) cover request latencies from 1ms to 10s: the API's fast reads sit in the first
// buckets, workflow Updates that wait for an activity in the middle, and timeouts at the end.
var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// NewRegistry returns a registry with the Go runtime and process collectors, so every process of the
// service exposes memory, goroutines, GC, CPU and file descriptors next to its own metrics. A registry of our
// own, rather than prometheus.DefaultRegisterer, keeps what a process exposes to what it registers and lets
// tests start from an empty one.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// Handler serves reg in the Prometheus exposition format, for GET /metrics. A collector that fails does not
// fail the scrape: the other metrics are still served, the error is logged through slog's default logger and
// counted in promhttp_metric_handler_errors_total, and scrapes themselves are counted in
// promhttp_metric_handler_requests_total. Calling it twice for one registry is safe.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(slog.Default().Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      reg,
	}))
}
