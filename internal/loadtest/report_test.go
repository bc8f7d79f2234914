package loadtest

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPercentileIsNearestRank(t *testing.T) {
	samples := make([]time.Duration, 100)
	for i := range samples {
		samples[i] = time.Duration(i+1) * time.Millisecond
	}
	assert.Equal(t, 50*time.Millisecond, percentile(samples, 50))
	assert.Equal(t, 99*time.Millisecond, percentile(samples, 99))
	assert.Equal(t, 100*time.Millisecond, percentile(samples, 100))
	assert.Equal(t, 7*time.Millisecond, percentile([]time.Duration{7 * time.Millisecond}, 99), "one sample is every percentile")
	assert.Zero(t, percentile(nil, 99))

	s := summarise([]time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond})
	assert.Equal(t, Latency{Count: 3, P50Ms: 2, P90Ms: 3, P99Ms: 3, MaxMs: 3}, s, "samples are sorted first")
}

// TestReportMeasuresBookingsFromFirstTokenToLastPayment builds a report from users whose visits are known
// and checks each derived figure against its definition.
func TestReportMeasuresBookingsFromFirstTokenToLastPayment(t *testing.T) {
	r := &runner{cfg: Config{ConcertCode: "X", Users: 5, Seats: 10, Dates: 1, AdmissionWindow: 10 * time.Minute}, rec: newRecorder()}
	t0 := time.Now()
	r.firstToken.Store(t0.UnixNano())
	r.lastPay.Store(t0.Add(2 * time.Second).UnixNano())
	r.users = []*user{
		{outcome: OutcomePaid, immediate: true},
		{outcome: OutcomePaid, lagValid: true, admittedLag: 300 * time.Millisecond},
		{outcome: OutcomePaid, lagValid: true, admittedLag: 900 * time.Millisecond},
		{outcome: OutcomeAbandoned, immediate: true},
		{outcome: OutcomeFailed, detail: "pay: 503"},
	}
	r.rec.observe(opToken, http.StatusCreated, "", 10*time.Millisecond)
	r.rec.observe(opReserve, http.StatusConflict, slugSeatTaken, 20*time.Millisecond)
	r.rec.observe(opReserve, http.StatusOK, "", 40*time.Millisecond)
	r.rec.observe(opPay, http.StatusServiceUnavailable, "service-unavailable", 30*time.Millisecond)
	r.rec.transportError(opPay)
	r.rec.observe(opCreateUser, http.StatusCreated, "", time.Millisecond)

	rep := r.report(time.Second, t0, t0.Add(4*time.Second))
	assert.Equal(t, 1.5, rep.BookingsPerSecond, "3 paid in the 2 s from the first token to the last payment")
	assert.Equal(t, 2.0, rep.BookingSeconds)
	assert.Equal(t, 5, rep.UsersEnded)
	assert.Equal(t, map[string]int{"paid": 3, "abandoned": 1, "failed": 1}, rep.Outcomes)
	assert.Equal(t, []string{"pay: 503"}, rep.FailureSamples)
	assert.Equal(t, 2, rep.AdmittedImmediately)
	assert.Equal(t, 2, rep.AdmittedAfterWait, "only users whose admission was seen in a poll have a lag")
	assert.Equal(t, 300.0, rep.AdmissionLagP50Ms)
	assert.Equal(t, 900.0, rep.AdmissionLagP99Ms)
	assert.Equal(t, 40.0, rep.ReserveP99Ms)
	assert.Equal(t, 20.0, rep.ReserveP50Ms)
	assert.Equal(t, map[string]int{"409": 1, "503": 1, "transport": 1}, rep.Errors)
	assert.Equal(t, map[string]int{"reserve 409 seat-taken": 1, "pay 503 service-unavailable": 1, "pay transport": 1}, rep.ErrorsByRequest)
	assert.Equal(t, 1, rep.SeatConflicts)
	assert.Equal(t, 2, rep.UnexpectedErrors)
	assert.Equal(t, 5, rep.Requests, "setup requests are not the on-sale's")
	assert.Empty(t, rep.AdmissionLagWarning)

	rep.setBaseline(BaselineResult{Sessions: 10, Concurrency: 2, SessionsPerSecond: 3, Shape: baselineShape(4, 10)})
	assert.Equal(t, 0.5, rep.Ratio)

	var table bytes.Buffer
	require.NoError(t, rep.WriteTable(&table))
	assert.Contains(t, table.String(), "bookings/s")
	assert.Regexp(t, `baseline shape +start \+ 2 updates \(reserve, pay\) \+ 2 upserts; 4 of 10 also signal \+ 1 upsert \(waited\), no database`, table.String())
	assert.Regexp(t, `ratio +0\.500 bookings/s per same-shape baseline session/s`, table.String())
	assert.Contains(t, table.String(), "reserve 409 seat-taken: 1")
}

// TestReportWarnsWhenTheAdmissionWindowIsNotTheServices: a lag far below zero can only come from dating
// admissions with the wrong window.
func TestReportWarnsWhenTheAdmissionWindowIsNotTheServices(t *testing.T) {
	r := &runner{cfg: Config{Users: 1, Seats: 1, Dates: 1, AdmissionWindow: 10 * time.Minute}, rec: newRecorder()}
	r.users = []*user{{outcome: OutcomePaid, lagValid: true, admittedLag: -5 * time.Minute}}
	rep := r.report(0, time.Now(), time.Now())
	assert.Contains(t, rep.AdmissionLagWarning, "--admission-window")
	assert.Zero(t, rep.AdmissionLagP99Ms, "a negative lag counts as 0")
}

func TestConfigRefusesWhatTheAdminAPIWouldRefuse(t *testing.T) {
	base := func() Config {
		c := DefaultConfig()
		c.Target, c.AdminToken = "http://127.0.0.1:1/", "t"
		return c
	}
	c := base()
	require.NoError(t, c.fill())
	assert.Equal(t, "http://127.0.0.1:1", c.Target, "a trailing slash is dropped")
	assert.Equal(t, c.Users, c.Concurrency, "0 concurrency means every user")
	assert.NotZero(t, c.Seed)
	assert.Regexp(t, `^LOAD-\d{8}-\d{6}-[0-9a-f]{4}$`, c.ConcertCode)

	for name, mutate := range map[string]func(*Config){
		"max-active above the API's limit": func(c *Config) { c.MaxActive = 100_001 },
		"too many dates":                   func(c *Config) { c.Dates = 101 },
		"negative price":                   func(c *Config) { c.Price = -1 },
		"negative ramp":                    func(c *Config) { c.Ramp = -time.Second },
		"no target":                        func(c *Config) { c.Target = "" },
	} {
		c := base()
		mutate(&c)
		assert.Error(t, c.fill(), name)
	}
}
