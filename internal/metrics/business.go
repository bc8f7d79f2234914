package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ticketing/concert/db"
)

var (
	sessionsDesc = prometheus.NewDesc("concert_sessions",
		"Booking sessions of a concert by stored status (WAITING, ACTIVE, HELD, PAID, EXPIRED, CANCELLED, SOLD_OUT, CLOSED).",
		[]string{"concert", "status"}, nil)
	seatsDesc = prometheus.NewDesc("concert_seats",
		"Seats of a concert by status as users see them (AVAILABLE, HELD, SOLD); a lapsed hold counts as AVAILABLE.",
		[]string{"concert", "status"}, nil)
	admissionsDesc = prometheus.NewDesc("concert_admissions_total",
		"Sessions the waiting room of a concert has admitted so far; rate() of it is admissions per second.",
		[]string{"concert"}, nil)
	statsUpDesc = prometheus.NewDesc("concert_stats_up",
		"1 if the last scrape read the business figures from the database, 0 if the query failed or timed out.",
		nil, nil)
	statsDurationDesc = prometheus.NewDesc("concert_stats_scrape_duration_seconds",
		"Time the last scrape spent reading the business figures from the database.",
		nil, nil)
)

// businessCollector reads per-concert figures when Prometheus scrapes.
type businessCollector struct {
	stats   func(context.Context) ([]db.ConcertStats, error)
	timeout time.Duration
}

// NewBusinessCollector returns a collector of per-concert business figures, read by calling stats (normally
// (*db.Store).ConcertStats) at each scrape, so the figures are those of the store of record at that moment
// and nothing has to keep them up to date between scrapes. Register it in one process only (the API), or
// every process would query the database and expose the same figures.
//
// It exposes:
//   - concert_sessions{concert,status}, a gauge per session status, zeros included;
//   - concert_seats{concert,status}, a gauge per seat status, where only live holds count as HELD;
//   - concert_admissions_total{concert}, a counter of sessions ever admitted. It counts rows whose
//     admitted_at is set, which are never deleted nor cleared, so it only grows, and
//     rate(concert_admissions_total[1m]) is the admission rate per second;
//   - concert_stats_up, 1 when the query succeeded and 0 when it failed or took longer than timeout. A
//     failed query drops the per-concert series from that scrape rather than failing the scrape, so the
//     failure shows as a value that can be alerted on while the other metrics of the process keep coming;
//   - concert_stats_scrape_duration_seconds, how long the query took, to watch its cost as tables grow.
//
// timeout bounds each query; keep it below Prometheus's scrape timeout. A non-positive timeout means 5s.
func NewBusinessCollector(stats func(context.Context) ([]db.ConcertStats, error), timeout time.Duration) prometheus.Collector {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &businessCollector{stats: stats, timeout: timeout}
}

// Describe sends the fixed descriptors of the business metrics.
func (c *businessCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{sessionsDesc, seatsDesc, admissionsDesc, statsUpDesc, statsDurationDesc} {
		ch <- d
	}
}

// Collect queries the figures and sends them. The registry gives Collect no context, so the query runs on
// a fresh one bounded by the collector's timeout.
func (c *businessCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	start := time.Now()
	stats, err := c.stats(ctx)
	send(ch, statsDurationDesc, prometheus.GaugeValue, time.Since(start).Seconds())
	if err != nil {
		send(ch, statsUpDesc, prometheus.GaugeValue, 0)
		return
	}
	send(ch, statsUpDesc, prometheus.GaugeValue, 1)
	for _, s := range stats {
		for status, n := range s.Sessions.ByStatus() {
			send(ch, sessionsDesc, prometheus.GaugeValue, float64(n), s.ConcertCode, status)
		}
		for status, n := range s.Seats.ByStatus() {
			send(ch, seatsDesc, prometheus.GaugeValue, float64(n), s.ConcertCode, status)
		}
		send(ch, admissionsDesc, prometheus.CounterValue, float64(s.Admitted), s.ConcertCode)
	}
}

// send sends one metric, or, if a label value is not valid UTF-8, an invalid metric that the scrape reports
// as an error for that series alone (Handler continues on errors), rather than a panic.
func send(ch chan<- prometheus.Metric, desc *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
	m, err := prometheus.NewConstMetric(desc, t, v, labels...)
	if err != nil {
		m = prometheus.NewInvalidMetric(desc, err)
	}
	ch <- m
}
