package metrics_test

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ticketing/concert/internal/metrics"
)

// sample is one gathered series: the value of a counter or gauge, or the count, sum and cumulative bucket
// counts (by upper bound) of a histogram.
type sample struct {
	Value   float64
	Count   uint64
	Sum     float64
	Buckets map[float64]uint64
}

// find gathers g and returns the series name with exactly these labels, and whether it exists. Gathering
// must succeed: a registry that cannot be scraped fails the test.
func find(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) (sample, bool) {
	t.Helper()
	families, err := g.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if !maps.Equal(got, labels) {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				return sample{Value: m.GetCounter().GetValue()}, true
			case m.GetGauge() != nil:
				return sample{Value: m.GetGauge().GetValue()}, true
			case m.GetHistogram() != nil:
				h := m.GetHistogram()
				s := sample{Count: h.GetSampleCount(), Sum: h.GetSampleSum(), Buckets: map[float64]uint64{}}
				for _, b := range h.GetBucket() {
					s.Buckets[b.GetUpperBound()] = b.GetCumulativeCount()
				}
				return s, true
			}
		}
	}
	return sample{}, false
}

// mustFind is find for a series the test requires to exist.
func mustFind(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) sample {
	t.Helper()
	s, ok := find(t, g, name, labels)
	require.Truef(t, ok, "series %s%v not gathered", name, labels)
	return s
}

// seriesOf counts the series of one family.
func seriesOf(t *testing.T, g prometheus.Gatherer, name string) int {
	t.Helper()
	families, err := g.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == name {
			return len(f.GetMetric())
		}
	}
	return 0
}

// scrape serves reg through metrics.Handler and returns the text the scraper gets.
func scrape(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	metrics.Handler(reg).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	return rec.Body.String()
}

// classicName is a metric or label name under Prometheus's classic rules, which every scraper and query
// language version accepts (colons left to recording rules).
var classicName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// assertClassicNames checks every gathered metric and label name against classicName.
func assertClassicNames(t *testing.T, g prometheus.Gatherer) {
	t.Helper()
	families, err := g.Gather()
	require.NoError(t, err)
	for _, f := range families {
		assert.Regexp(t, classicName, f.GetName())
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				assert.Regexp(t, classicName, l.GetName(), "label of %s", f.GetName())
				assert.False(t, strings.HasPrefix(l.GetName(), "__"), "reserved label %s of %s", l.GetName(), f.GetName())
			}
		}
	}
}

// assertLintClean runs promlint, the linter behind `promtool check metrics`, over everything g gathers.
func assertLintClean(t *testing.T, g prometheus.Gatherer) {
	t.Helper()
	families, err := g.Gather()
	require.NoError(t, err)
	problems, err := promlint.NewWithMetricFamilies(families).Lint()
	require.NoError(t, err)
	assert.Empty(t, problems)
}
