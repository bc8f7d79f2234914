package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ticketing/concert/internal/loadtest"
	"github.com/ticketing/concert/internal/teststack"
)

// TestLoadtestBooksEverySeatOnceThroughTheWaitingRoom runs `concert loadtest --json --baseline` with 20
// users against a whole stack: more users than admission slots, so most wait in the queue; some abandon
// their holds, some leave (DELETE on the token) after holding. Every user must end, every paid booking must be one SOLD seat and nothing else, the database
// invariants must hold, and the baseline must have run against the same Temporal server.
//
// The 20 arrive at one instant (--ramp 0s): spread over a second, each finds a free slot now that fans book
// without seat-map retries (read-your-writes), and nobody would wait.
func TestLoadtestBooksEverySeatOnceThroughTheWaitingRoom(t *testing.T) {
	s := teststack.Start(t, teststack.Options{})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var out, progress bytes.Buffer
	err := runLoadtest(ctx, []string{
		"--target", s.URL, "--admin-token", teststack.AdminToken,
		"--users", "20", "--seats", "12", "--dates", "2", "--max-active", "5", "--ramp", "0s", "--abandon", "0.1", "--leave", "0.1",
		"--price", "5001", "--poll-max", "300ms", "--seed", "7", "--json",
		"--database-url", s.DatabaseURL,
		"--baseline", "--temporal-address", s.Server.FrontendAddress(), "--temporal-namespace", s.Server.Namespace(),
		"--baseline-sessions", "40",
	}, &out, &progress)
	require.NoError(t, err, "progress:\n%s\nreport:\n%s", progress.String(), out.String())

	var rep loadtest.Report
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep), out.String())
	t.Logf("report:\n%s", out.String())
	assert.Equal(t, 20, rep.UsersEnded, "every user ended: %v", rep.Outcomes)
	assert.Equal(t, 2, rep.Abandoned)
	assert.Equal(t, 2, rep.Left, "leavers held a seat and gave it back: %v", rep.Outcomes)
	assert.Equal(t, 16, rep.Paid, "24 seats are enough for everybody who pays: %v", rep.Outcomes)
	assert.Equal(t, rep.Paid, rep.SoldSeats)
	assert.Equal(t, rep.Paid, rep.PaidSeats, "one seat per order by default")
	assert.Equal(t, "database", rep.SoldSeatsSource)
	assert.Zero(t, rep.DoubleSold)
	assert.True(t, rep.InvariantsOK, "violations: %v", rep.Violations)
	assert.Empty(t, rep.Violations)
	assert.Zero(t, rep.UnexpectedErrors, "errors: %v", rep.ErrorsByRequest)
	assert.Positive(t, rep.AdmittedAfterWait, "with 5 slots for 20 users somebody waited")
	assert.Equal(t, 20, rep.AdmittedImmediately+rep.AdmittedAfterWait)
	for name, v := range map[string]float64{
		"bookingsPerSecond": rep.BookingsPerSecond, "tokenP99Ms": rep.TokenP99Ms, "seatsP99Ms": rep.SeatsP99Ms,
		"reserveP50Ms": rep.ReserveP50Ms, "reserveP99Ms": rep.ReserveP99Ms, "payP99Ms": rep.PayP99Ms,
		"admissionLagP99Ms": rep.AdmissionLagP99Ms, "baselineSessionsPerSecond": rep.BaselineSessionsPerSecond,
		"ratio": rep.Ratio,
	} {
		assert.Positive(t, v, name)
	}
	assert.Empty(t, rep.AdmissionLagWarning)
	require.NotNil(t, rep.Baseline)
	assert.Equal(t, 40, rep.Baseline.Sessions)
	assert.Equal(t, 5, rep.Baseline.Concurrency, "the booking run's concurrency: min(users in flight, maxActive)")
	assert.Zero(t, rep.Baseline.Failed)
	// The baseline takes the booking run's shape: as many of its sessions wait (signal, one more upsert) as
	// admitted users did.
	wantWaited := int(math.Round(40 * float64(rep.AdmittedAfterWait) / float64(rep.AdmittedImmediately+rep.AdmittedAfterWait)))
	assert.Equal(t, wantWaited, rep.Baseline.Waited)
	assert.Contains(t, rep.Baseline.Shape, "2 updates (reserve, pay)")
	assert.Contains(t, rep.Baseline.Shape, "signal", "somebody waited")
	assert.Contains(t, progress.String(), "done 20/20", "progress is shown while it runs")
}

// TestLoadtestWithoutDatabaseCountsSoldSeatsFromTheSeatMap runs the load generator without a database URL:
// sold seats then come from the seat maps, read with an abandoning user's token, and are checked against
// the payments. The table is printed for people.
func TestLoadtestWithoutDatabaseCountsSoldSeatsFromTheSeatMap(t *testing.T) {
	s := teststack.Start(t, teststack.Options{})
	var out, progress bytes.Buffer
	err := runLoadtest(t.Context(), []string{
		"--target", s.URL, "--admin-token", teststack.AdminToken,
		"--users", "8", "--seats", "10", "--max-active", "3", "--ramp", "0", "--abandon", "0.25", "--poll-max", "300ms",
	}, &out, &progress)
	require.NoError(t, err, "progress:\n%s\nreport:\n%s", progress.String(), out.String())
	table := out.String()
	t.Logf("report:\n%s", table)
	assert.Regexp(t, `sold seats +6 \(seat map\), paid 6 in 6 orders, double sold 0`, table)
	assert.Regexp(t, `invariants +ok=true \(api`, table)
	assert.Contains(t, table, "8/8 ended: abandoned 2, paid 6")
	for _, op := range []string{"token", "seats", "reserve", "pay"} {
		assert.Contains(t, table, "\n"+op+" ", "latency row of %s", op)
	}
}

// TestLoadtestRefusesBadFlags checks, through the command's entry point, that bad flags fail before any
// request is sent (the target does not listen).
func TestLoadtestRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"abandon above one", []string{"--abandon", "1.5"}, "abandon"},
		{"no users", []string{"--users", "0"}, "users"},
		{"too many seats", []string{"--seats", "100001"}, "seats"},
		{"too many seats per order", []string{"--seats-per-order", "11"}, "seats-per-order"},
		{"closing before the opening", []string{"--opens-in", "10s", "--closes-in", "5s"}, "closes-in"},
		{"poll bounds reversed", []string{"--poll-min", "2s", "--poll-max", "1s"}, "poll-min"},
		{"no admin token", []string{"--admin-token", ""}, "admin token"},
		{"stray argument", []string{"now"}, "unexpected arguments"},
		{"baseline waited above one", []string{"--baseline", "--baseline-waited", "1.5"}, "baseline-waited"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"loadtest", "--target", "http://127.0.0.1:1", "--admin-token", "x"}, tc.args...)
			var out bytes.Buffer
			err := run(t.Context(), args, &out)
			require.Error(t, err)
			assert.True(t, strings.Contains(err.Error(), tc.want), "%q should mention %q", err.Error(), tc.want)
		})
	}
}

// TestLoadtestReadBenchmarkComparesSeatMapsWithHealthz runs the --reads benchmark briefly against a stack:
// every phase answers without errors and the ratios are computed from the same run.
func TestLoadtestReadBenchmarkComparesSeatMapsWithHealthz(t *testing.T) {
	s := teststack.Start(t, teststack.Options{})
	res, err := loadtest.RunReads(t.Context(), loadtest.ReadsConfig{
		Target: s.URL, AdminToken: teststack.AdminToken, Duration: 300 * time.Millisecond, Concurrency: 4,
	})
	require.NoError(t, err)
	for name, r := range map[string]loadtest.ReadRate{"healthz": res.Healthz, "seats": res.Seats, "dates": res.Dates} {
		assert.Positive(t, r.Requests, name)
		assert.Zero(t, r.Errors, name)
		assert.Positive(t, r.P99Ms, name)
	}
	assert.InDelta(t, res.Seats.RequestsPerSecond/res.Healthz.RequestsPerSecond, res.SeatsRatio, 1e-9)
}

// runOnSale runs `concert loadtest --json` with args against a stack of its own, on a concert of 30 seats
// at 1,000 won with every arrival at once, and returns the report.
func runOnSale(t *testing.T, args ...string) loadtest.Report {
	t.Helper()
	s := teststack.Start(t, teststack.Options{})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var out, progress bytes.Buffer
	err := runLoadtest(ctx, append([]string{
		"--target", s.URL, "--admin-token", teststack.AdminToken, "--database-url", s.DatabaseURL, "--json",
		"--seats", "30", "--price", "1000", "--ramp", "0s", "--poll-min", "100ms", "--poll-max", "300ms",
	}, args...), &out, &progress)
	require.NoError(t, err, "progress:\n%s\nreport:\n%s", progress.String(), out.String())
	var rep loadtest.Report
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep), out.String())
	return rep
}

// TestLoadtestRunsAnOnSaleThatClosesAtATime runs `concert loadtest --closes-in`: abandoners keep the two
// slots held past the closing, so the users still waiting then end CLOSED; nobody fails, every invariant
// holds (nobody admitted after the closing among them).
func TestLoadtestRunsAnOnSaleThatClosesAtATime(t *testing.T) {
	rep := runOnSale(t, "--users", "12", "--max-active", "2", "--abandon", "0.5", "--closes-in", "3s", "--seed", "5")
	assert.Equal(t, 12, rep.UsersEnded, "%v", rep.Outcomes)
	assert.Positive(t, rep.Outcomes["closed"], "users still waiting at the closing end CLOSED: %v", rep.Outcomes)
	assert.Zero(t, rep.Outcomes["failed"], "%v", rep.FailureSamples)
	assert.True(t, rep.InvariantsOK, "violations: %v", rep.Violations)
	assert.Zero(t, rep.UnexpectedErrors, "errors: %v", rep.ErrorsByRequest)
}

// TestLoadtestRunsAnOnSaleThatOpensAtATime runs `concert loadtest --opens-in --seats-per-order --leave`:
// every user arrives before the opening and waits in the pre-queue; at the opening the waiting room draws
// and admits them; users buy orders of one to three seats and some leave holding theirs; every invariant
// holds (orders within their seat count among them).
func TestLoadtestRunsAnOnSaleThatOpensAtATime(t *testing.T) {
	rep := runOnSale(t, "--users", "10", "--max-active", "3", "--abandon", "0", "--opens-in", "2s",
		"--seats-per-order", "3", "--leave", "0.2", "--seed", "3")
	assert.Equal(t, 10, rep.PreQueued, "everybody came before the opening")
	assert.Zero(t, rep.AdmittedImmediately, "nobody is admitted before the opening")
	assert.Equal(t, 8, rep.Paid, "%v", rep.Outcomes)
	assert.Equal(t, 2, rep.Left, "%v", rep.Outcomes)
	assert.Greater(t, rep.PaidSeats, rep.Paid, "some orders bought several seats")
	assert.Equal(t, rep.PaidSeats, rep.SoldSeats)
	assert.True(t, rep.InvariantsOK, "violations: %v", rep.Violations)
	assert.Zero(t, rep.UnexpectedErrors, "errors: %v", rep.ErrorsByRequest)
}
