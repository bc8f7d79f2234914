package metrics_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"

	"github.com/ticketing/concert/internal/metrics"
)

func TestMetricsRegistryExposesGoRuntimeAndProcessMetrics(t *testing.T) {
	reg := metrics.NewRegistry()

	text := scrape(t, reg)

	assert.Contains(t, text, "\ngo_goroutines ")
	assert.Contains(t, text, "\ngo_memstats_heap_alloc_bytes ")
	assert.Contains(t, text, "\nprocess_resident_memory_bytes ")
	assert.Contains(t, text, "\nprocess_open_fds ")
}

func TestMetricsHandlerCountsScrapesAndCanBeBuiltTwiceForOneRegistry(t *testing.T) {
	reg := metrics.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "concert_test_things_total", Help: "Things."})
	reg.MustRegister(c)
	c.Add(3)

	scrape(t, reg)
	assert.NotPanics(t, func() { metrics.Handler(reg) })
	text := scrape(t, reg)

	assert.Contains(t, text, "\nconcert_test_things_total 3\n")
	assert.Contains(t, text, `promhttp_metric_handler_requests_total{code="200"} 1`, "the first scrape is counted by the second")
}
