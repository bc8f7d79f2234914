package metrics_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ticketing/concert/db"
	"github.com/ticketing/concert/internal/metrics"
)

// fixedStats is a stats function that always answers with these figures.
func fixedStats(stats ...db.ConcertStats) func(context.Context) ([]db.ConcertStats, error) {
	return func(context.Context) ([]db.ConcertStats, error) { return stats, nil }
}

var rock = db.ConcertStats{
	ConcertCode: "ROCK-1",
	Sessions:    db.SessionCounts{Waiting: 120, Active: 10, Held: 4, Paid: 30, Expired: 3, Cancelled: 2},
	Seats:       db.SeatCounts{Available: 66, Held: 4, Sold: 30},
	Admitted:    49,
}

var jazz = db.ConcertStats{
	ConcertCode: "JAZZ-2",
	Sessions:    db.SessionCounts{Paid: 50, SoldOut: 7},
	Seats:       db.SeatCounts{Sold: 50},
	Admitted:    50,
}

func TestBusinessCollectorExposesEveryStatusOfEveryConcert(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(metrics.NewBusinessCollector(fixedStats(rock, jazz), time.Second))

	sessions := func(concert, status string) float64 {
		return mustFind(t, reg, "concert_sessions", map[string]string{"concert": concert, "status": status}).Value
	}
	seats := func(concert, status string) float64 {
		return mustFind(t, reg, "concert_seats", map[string]string{"concert": concert, "status": status}).Value
	}
	assert.Equal(t, 120.0, sessions("ROCK-1", "WAITING"))
	assert.Equal(t, 10.0, sessions("ROCK-1", "ACTIVE"))
	assert.Equal(t, 4.0, sessions("ROCK-1", "HELD"))
	assert.Equal(t, 30.0, sessions("ROCK-1", "PAID"))
	assert.Equal(t, 3.0, sessions("ROCK-1", "EXPIRED"))
	assert.Equal(t, 2.0, sessions("ROCK-1", "CANCELLED"))
	assert.Equal(t, 0.0, sessions("ROCK-1", "SOLD_OUT"), "a zero is reported, not left out")
	assert.Equal(t, 7.0, sessions("JAZZ-2", "SOLD_OUT"))
	assert.Equal(t, 0.0, sessions("JAZZ-2", "WAITING"))
	assert.Equal(t, 0.0, sessions("JAZZ-2", "CLOSED"))
	assert.Equal(t, 16, seriesOf(t, reg, "concert_sessions"), "8 statuses x 2 concerts")
	assert.Equal(t, 66.0, seats("ROCK-1", "AVAILABLE"))
	assert.Equal(t, 4.0, seats("ROCK-1", "HELD"))
	assert.Equal(t, 30.0, seats("ROCK-1", "SOLD"))
	assert.Equal(t, 0.0, seats("JAZZ-2", "AVAILABLE"))
	assert.Equal(t, 6, seriesOf(t, reg, "concert_seats"), "3 statuses x 2 concerts")
	assert.Equal(t, 49.0, mustFind(t, reg, "concert_admissions_total", map[string]string{"concert": "ROCK-1"}).Value)
	assert.Equal(t, 50.0, mustFind(t, reg, "concert_admissions_total", map[string]string{"concert": "JAZZ-2"}).Value)
	assert.Equal(t, 1.0, mustFind(t, reg, "concert_stats_up", map[string]string{}).Value)

	text := scrape(t, reg)
	assert.Contains(t, text, "# TYPE concert_admissions_total counter\n", "rate() needs a counter")
	assert.Contains(t, text, "# TYPE concert_sessions gauge\n")
	assert.Contains(t, text, "# TYPE concert_seats gauge\n")
}

func TestBusinessCollectorQueriesAtEveryScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	admitted := int64(0)
	reg.MustRegister(metrics.NewBusinessCollector(func(context.Context) ([]db.ConcertStats, error) {
		admitted += 25
		return []db.ConcertStats{{ConcertCode: "ROCK-1", Admitted: admitted}}, nil
	}, time.Second))

	first := mustFind(t, reg, "concert_admissions_total", map[string]string{"concert": "ROCK-1"}).Value
	second := mustFind(t, reg, "concert_admissions_total", map[string]string{"concert": "ROCK-1"}).Value

	assert.Equal(t, 25.0, first)
	assert.Equal(t, 50.0, second)
}

func TestBusinessCollectorReportsAFailedQueryAsStatsDownNotAsAScrapeError(t *testing.T) {
	reg := metrics.NewRegistry()
	reg.MustRegister(metrics.NewBusinessCollector(func(context.Context) ([]db.ConcertStats, error) {
		return nil, errors.New("connection refused")
	}, time.Second))

	families, err := reg.Gather()

	require.NoError(t, err, "a failing query must not fail the scrape")
	assert.NotEmpty(t, families)
	assert.Equal(t, 0.0, mustFind(t, reg, "concert_stats_up", map[string]string{}).Value)
	assert.Zero(t, seriesOf(t, reg, "concert_sessions"), "no stale or made-up figures")
	assert.Zero(t, seriesOf(t, reg, "concert_admissions_total"))
	text := scrape(t, reg)
	assert.Contains(t, text, "concert_stats_up 0\n")
	assert.Contains(t, text, "go_goroutines ")
}

func TestBusinessCollectorBoundsTheQueryWithItsTimeout(t *testing.T) {
	reg := prometheus.NewRegistry()
	var deadline time.Time
	reg.MustRegister(metrics.NewBusinessCollector(func(ctx context.Context) ([]db.ConcertStats, error) {
		deadline, _ = ctx.Deadline()
		<-ctx.Done() // a query that would never end by itself
		return nil, ctx.Err()
	}, 50*time.Millisecond))

	start := time.Now()
	up := mustFind(t, reg, "concert_stats_up", map[string]string{}).Value
	took := time.Since(start)

	assert.Equal(t, 0.0, up)
	assert.False(t, deadline.Before(start.Add(50*time.Millisecond)), "deadline %s is less than the timeout after the scrape began", deadline)
	assert.True(t, deadline.Before(start.Add(50*time.Millisecond+took)), "deadline %s is later than the timeout after the query began", deadline)
	assert.Less(t, took, 2*time.Second)
	duration := mustFind(t, reg, "concert_stats_scrape_duration_seconds", map[string]string{}).Value
	assert.GreaterOrEqual(t, duration, 0.05)
}

func TestBusinessCollectorSkipsAnUnexposableConcertAndServesTheRest(t *testing.T) {
	reg := prometheus.NewRegistry()
	bad := db.ConcertStats{ConcertCode: "BAD-\xff"} // not UTF-8: cannot be a label value
	reg.MustRegister(metrics.NewBusinessCollector(fixedStats(bad, rock), time.Second))

	_, err := reg.Gather()
	require.Error(t, err, "the bad series is reported as a gathering error")

	text := scrape(t, reg)
	assert.Contains(t, text, `concert_admissions_total{concert="ROCK-1"} 49`)
	assert.Contains(t, text, "concert_stats_up 1\n")
}

func TestMetricNamesOfTheServiceFollowPrometheusConventions(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewBusinessCollector(fixedStats(rock), time.Second))
	h, _ := newRouter(reg)
	serve(h, "GET", "/api/v1/concerts/ROCK-1")
	metrics.NewTemporalHandler(reg).WithTags(map[string]string{"namespace": "default"}).Timer("temporal_request_latency").Record(time.Millisecond)

	assertClassicNames(t, reg)
	assertLintClean(t, reg)
}
