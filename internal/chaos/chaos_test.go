//go:build unix

package chaos

import (
	"context"
	"flag"
	"fmt"
	"github.com/ticketing/concert/workflows"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/ticketing/concert/db/dbtest"
)

var longForm = flag.Bool("chaos.long", false, "run the long form of the chaos test (also CONCERT_CHAOS_LONG=1)")

// Settings of the stack under test. The windows are short so that abandoned holds and idle admissions
// lapse within the test, and the admission tick is the test stack's.
const (
	adminToken      = "chaos-admin-token"
	tokenSecret     = "chaos-token-secret-0123456789"
	holdWindow      = 4 * time.Second
	admissionWindow = 8 * time.Second
	admissionTick   = 200 * time.Millisecond
	concertCode     = "CHAOS"
	price           = 100_000
	// holdGrace is how far past its held_until a seat may still show HELD: the release runs when the
	// session's timer fires, which a worker that was just killed may deliver a little late.
	holdGrace = 30 * time.Second
	// burstCode is the concert of the crash-window burst: a slot for each of its fans, so each is admitted
	// at the join and its workflow is left to the API's starter.
	burstCode = "CHAOS-BURST"
	// openingCode is the concert whose sale opens at a time: its fans all come before the opening and
	// pre-queue, and the worker dies at its draw.
	openingCode = "CHAOS-OPENING"
	// seatsPerOrder is maxSeatsPerOrder of the on-sale and of the opening: a third of their users want an
	// order of two or more seats, which they hold in one request or one by one, and pay for at once.
	seatsPerOrder = 3
)

// concertDates are the performances on sale; users pick one at random.
var concertDates = []string{"2026-12-24T19:00:00", "2026-12-25T19:00:00"}

// plan sizes one run.
type plan struct {
	Form        string
	Sessions    int           // simulated users, one session each
	Seats       int           // seats over all dates; fewer than the buyers, so the concert sells out
	MaxActive   int           // admission slots
	Arrival     time.Duration // users arrive spread over this long
	Chaos       time.Duration // the worker is killed for at least this long
	MinKills    int           // and at least this many times
	UserTimeout time.Duration // a user gives up after this long
	Settle      time.Duration // after the load, how long every session gets to end
	Burst       int           // fans of the burst on the second concert, whose tokens the API dies issuing
	Opening     int           // fans of the third concert, who all come before its sale opens
	OpensIn     time.Duration // the third concert's sale opens this long after the load starts
	Seed        uint64
}

func planFromEnv(t *testing.T) plan {
	t.Helper()
	p := plan{
		Form: "short", Sessions: 150, MaxActive: 20, Arrival: 20 * time.Second, Chaos: 30 * time.Second,
		MinKills: 5, UserTimeout: 150 * time.Second, Settle: 150 * time.Second,
	}
	if *longForm || os.Getenv("CONCERT_CHAOS_LONG") == "1" {
		p = plan{
			Form: "long", Sessions: 600, MaxActive: 40, Arrival: 150 * time.Second, Chaos: 180 * time.Second,
			MinKills: 40, UserTimeout: 6 * time.Minute, Settle: 5 * time.Minute,
		}
	}
	if v := os.Getenv("CONCERT_CHAOS_SESSIONS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 10 {
			t.Fatalf("CONCERT_CHAOS_SESSIONS=%q: want an integer >= 10", v)
		}
		p.Sessions = n
	}
	p.Seats = max(len(concertDates), p.Sessions*2/5/len(concertDates)*len(concertDates))
	p.Burst = min(max(p.Sessions/6, 8), 60)
	p.Opening = min(max(p.Sessions/5, 10), 120)
	// The opening comes when the first worker kill is due, well before the burst: the worker dies at its draw.
	p.OpensIn = 3 * time.Second
	p.Seed = rand.Uint64()
	if v := os.Getenv("CONCERT_CHAOS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("CONCERT_CHAOS_SEED=%q: %v", v, err)
		}
		p.Seed = s
	}
	return p
}

// stack is the service under test, one OS process per role.
type stack struct {
	bin          string
	dir          string
	dbURL        string
	dbName       string
	temporalAddr string
	apiURL       string
	gate         *gate // the API's way to Temporal, which the chaos holds and cuts
	temporal     *proc
	worker       *proc
	api          *proc
}

// startStack starts Temporal (file-backed, in dir), migrates the database, and starts one worker and one
// API. Every process is stopped when the test ends.
func startStack(t *testing.T, bin, dir, dbURL string) *stack {
	t.Helper()
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	s := &stack{
		bin: bin, dir: dir, dbURL: dbURL, dbName: strings.TrimPrefix(u.Path, "/"),
		temporalAddr: "127.0.0.1:" + strconv.Itoa(freePort(t)),
		apiURL:       "http://127.0.0.1:" + strconv.Itoa(freePort(t)),
	}
	dataDir := filepath.Join(dir, "temporal-data")
	require.NoError(t, os.MkdirAll(dataDir, 0o755))
	common := []string{
		"DATABASE_URL=" + dbURL, "TEMPORAL_ADDRESS=" + s.temporalAddr, "TEMPORAL_NAMESPACE=default",
		"CONCERT_LOG_LEVEL=info", "CONCERT_RATE_LIMIT=off",
	}
	s.gate = newGate(t, s.temporalAddr)
	_, port, _ := strings.Cut(s.temporalAddr, ":")
	s.temporal = &proc{
		name: "temporal", bin: bin, logDir: dir, env: common,
		args: []string{"dev", "--temporal-only", "--data-dir", dataDir, "--temporal-port", port, "--temporal-ui-port=-1"},
		isReady: func(_ context.Context, inc *incarnation) bool {
			return logContains(inc.stdout, "Temporal "+s.temporalAddr)
		},
	}
	s.worker = &proc{
		name: "worker", bin: bin, logDir: dir, env: common, restartOnCrash: true,
		// An empty CONCERT_METRICS_ADDR means the default port, so the flag switches the listener off.
		args: []string{"worker", "--metrics-addr="},
		isReady: func(_ context.Context, inc *incarnation) bool {
			return logContains(inc.stderr, `"msg":"Worker running"`)
		},
	}
	_, apiAddr, _ := strings.Cut(s.apiURL, "://")
	s.api = &proc{
		name: "api", bin: bin, logDir: dir, args: []string{"api"},
		env: append(append([]string(nil), common...), "TEMPORAL_ADDRESS="+s.gate.addr(), "CONCERT_HTTP_ADDR="+apiAddr, "CONCERT_ADMIN_TOKEN="+adminToken, "CONCERT_TOKEN_SECRET="+tokenSecret,
			"CONCERT_HOLD_WINDOW="+holdWindow.String(), "CONCERT_ADMISSION_WINDOW="+admissionWindow.String(),
			"CONCERT_ADMISSION_TICK="+admissionTick.String()),
		isReady: func(ctx context.Context, _ *incarnation) bool {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.apiURL+"/readyz", nil)
			resp, err := (&http.Client{Timeout: time.Second}).Do(req)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		},
	}
	t.Cleanup(func() {
		for _, p := range []*proc{s.api, s.worker, s.temporal} {
			if p.current() != nil {
				p.stop()
			}
		}
	})
	for _, p := range []*proc{s.temporal, s.worker, s.api} {
		if p == s.worker {
			out, err := runCommand(bin, []string{"migrate"}, common)
			require.NoError(t, err, "concert migrate:\n%s", out)
		}
		_, err := p.start()
		require.NoError(t, err)
		require.NoError(t, p.waitReady(2*time.Minute))
	}
	return s
}

func runCommand(bin string, args, env []string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// chaosStats is what the chaos did.
type chaosStats struct {
	WorkerKills          int
	WorkerStartFailures  []string
	TemporalRestarts     int
	TemporalSignal       string
	TemporalDowntime     time.Duration
	DBDrops              int
	DBBackendsTerminated int
	Duration             time.Duration
	Events               []string
	Window               windowStats  // the API crash between tokens' commits and their workflows' starts
	Opening              openingStats // the worker crash at the on-sale's draw
}

func (c *chaosStats) event(start time.Time, format string, args ...any) {
	c.Events = append(c.Events, fmt.Sprintf("%7.1fs  ", time.Since(start).Seconds())+fmt.Sprintf(format, args...))
}

// runChaos SIGKILLs and restarts the worker every 2-3 s for at least p.Chaos and p.MinKills kills, the first
// time at the opening of the sale of opening.Code, as soon as its draw has committed (see crashWorkerAtDraw);
// at 20% of the way it SIGKILLs the API amid the burst's token requests and starts it again on the same port
// (see crashAPIInWindow), at 40% it SIGKILLs Temporal and starts it again on the same port and data
// directory, and at 70% it terminates every PostgreSQL connection of the database. It returns when done or
// when ctx ends.
func (s *stack) runChaos(ctx context.Context, t *testing.T, p plan, rng *rand.Rand, w *crashWindow, opening openingStats) chaosStats {
	st := chaosStats{Opening: opening}
	start := time.Now()
	restarted, dropped, apiCrashed, opened := false, false, false, false
	for ctx.Err() == nil {
		el := time.Since(start)
		if el >= p.Chaos && st.WorkerKills >= p.MinKills && restarted && dropped && apiCrashed && opened {
			break
		}
		if el >= 3*p.Chaos {
			st.event(start, "stopping: %d kills in 3x the planned time", st.WorkerKills)
			break
		}
		pause := 2*time.Second + time.Duration(rng.Int64N(int64(time.Second)))
		if !opened {
			// Nothing dies before the opening: a worker killed then would take the waiting room's timer with it
			// (Temporal hands the task to another worker only seconds later), and the draw would come late,
			// not under the kill that follows it.
			pause = time.Until(opening.OpensAt)
		}
		if !sleep(ctx, max(pause, 0)) {
			break
		}
		el = time.Since(start)
		switch {
		case !opened:
			opened = true
			s.crashWorkerAtDraw(ctx, t, &st, start)
		case !apiCrashed && el >= p.Chaos/5:
			apiCrashed = true
			s.crashAPIInWindow(ctx, t, &st, start, w)
		case !restarted && el >= p.Chaos*2/5:
			restarted = true
			s.restartTemporal(t, &st, start)
		case !dropped && el >= p.Chaos*7/10:
			dropped = true
			s.dropConnections(t, &st, start)
		default:
			if err := s.worker.kill(); err != nil {
				t.Errorf("kill worker: %v", err)
				continue
			}
			st.WorkerKills++
			s.startWorker(t, &st)
		}
	}
	st.Duration = time.Since(start)
	st.event(start, "chaos over: %d worker kills, %d API kills, %d Temporal restarts, %d connection drops", st.WorkerKills, st.Window.Crashes, st.TemporalRestarts, st.DBDrops)
	return st
}

// startWorker starts the worker again after a SIGKILL, as a process supervisor would, and waits until it
// runs; a slow start is reported, not failed.
func (s *stack) startWorker(t *testing.T, st *chaosStats) {
	if _, err := s.worker.start(); err != nil {
		t.Errorf("start worker: %v", err)
		return
	}
	if err := s.worker.waitReady(45 * time.Second); err != nil {
		st.WorkerStartFailures = append(st.WorkerStartFailures, err.Error())
	}
}

// restartTemporal SIGKILLs the Temporal server and starts it again on the same port and data directory.
func (s *stack) restartTemporal(t *testing.T, st *chaosStats, start time.Time) {
	down := time.Now()
	if err := s.temporal.kill(); err != nil {
		t.Errorf("kill Temporal: %v", err)
		return
	}
	st.TemporalSignal = "SIGKILL"
	st.event(start, "Temporal SIGKILLed")
	time.Sleep(time.Second)
	if _, err := s.temporal.start(); err != nil {
		t.Errorf("start Temporal again: %v", err)
		return
	}
	if err := s.temporal.waitReady(2 * time.Minute); err != nil {
		t.Errorf("Temporal did not come back on its data directory: %v\n%s", err, tail(s.temporal.current().stderr, 40))
		return
	}
	st.TemporalRestarts++
	st.TemporalDowntime = time.Since(down)
	st.event(start, "Temporal serving again after %s", st.TemporalDowntime.Round(time.Millisecond))
}

// dropConnections terminates every PostgreSQL backend connected to the database, from a connection to
// another database of the server.
func (s *stack) dropConnections(t *testing.T, st *chaosStats, start time.Time) {
	admin, err := sqlx.Open("postgres", dbtest.ServerURL())
	if err != nil {
		t.Errorf("open %s: %v", dbtest.ServerURL(), err)
		return
	}
	defer admin.Close()
	var n int
	err = admin.Get(&n, `SELECT count(*) FROM (
    SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()) AS x`, s.dbName)
	if err != nil {
		t.Errorf("terminate connections: %v", err)
		return
	}
	st.DBDrops++
	st.DBBackendsTerminated += n
	st.event(start, "terminated %d PostgreSQL connections", n)
}

// dumpLogs shows the end of the latest logs of every process.
func (s *stack) dumpLogs(t *testing.T) {
	for _, p := range []*proc{s.temporal, s.worker, s.api} {
		inc := p.current()
		if inc == nil {
			continue
		}
		t.Logf("---- %s incarnation %d, %s (last lines) ----\n%s", p.name, inc.n, inc.stderr, tail(inc.stderr, 40))
		if out := tail(inc.stdout, 10); out != "" {
			t.Logf("---- %s stdout ----\n%s", p.name, out)
		}
	}
}

// workDir is a directory for the binary, the logs and Temporal's data. It is removed after a passing run
// unless CONCERT_CHAOS_KEEP is set or *keep is set by the test, and kept (and named) after a failing one.
func workDir(t *testing.T) (dir string, keep *bool) {
	t.Helper()
	dir, err := os.MkdirTemp("", "concert-chaos-")
	require.NoError(t, err)
	keep = new(bool)
	t.Cleanup(func() {
		if t.Failed() || *keep || os.Getenv("CONCERT_CHAOS_KEEP") != "" {
			t.Logf("logs, binary, histories and Temporal data kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return dir, keep
}

// saveHistories writes the event histories of sessions a client lost something in, next to the logs, for
// the diagnosis.
func saveHistories(ctx context.Context, t *testing.T, tc client.Client, store *sqlx.DB, dir string, losses map[string][]string) {
	seen := map[string]bool{}
	for _, sessions := range losses {
		for _, id := range sessions {
			if seen[id] || len(seen) >= 10 {
				continue
			}
			seen[id] = true
			var wfID string
			if err := store.GetContext(ctx, &wfID, `SELECT workflow_id FROM sessions WHERE id = $1`, id); err != nil {
				continue
			}
			var b strings.Builder
			it := tc.GetWorkflowHistory(ctx, wfID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT) // the latest run
			for it.HasNext() {
				e, err := it.Next()
				if err != nil {
					fmt.Fprintf(&b, "error: %v\n", err)
					break
				}
				text := e.String()
				if len(text) > 2000 {
					text = text[:2000] + " …"
				}
				fmt.Fprintf(&b, "%3d %s %s\n    %s\n", e.GetEventId(), e.GetEventTime().AsTime().Format("15:04:05.000"), e.GetEventType(), text)
			}
			path := filepath.Join(dir, "history-"+id+".txt")
			if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
				t.Errorf("write history: %v", err)
			}
		}
	}
}

// TestChaosOnSale runs an on-sale of orders of up to three seats, and a sale that opens at a time, against
// the real stack while the worker is SIGKILLed again and again (first at the opening's draw), the API once
// amid a burst of tokens, Temporal is SIGKILLed and restarted once and the database connections are dropped
// once, and then proves that nothing was lost: every session ended, no seat was sold twice, no hold outlived
// its window, money is conserved, every payment a client was told about exists with every seat it named,
// nobody was admitted before the opening and the pre-queue was drawn once. See the package documentation.
func TestChaosOnSale(t *testing.T) {
	p := planFromEnv(t)
	began := time.Now()
	rep := &report{Plan: p}
	dir, keep := workDir(t)
	rep.Strict = os.Getenv("CONCERT_CHAOS_STRICT") == "1"
	dbURL := dbtest.NewURL(t) // fails, never skips, without PostgreSQL

	phase := time.Now()
	bin := os.Getenv("CONCERT_CHAOS_BIN") // a binary built elsewhere, for example a release candidate
	if bin == "" {
		bin = buildConcert(t, dir)
	}
	rep.BuildTime = time.Since(phase)

	phase = time.Now()
	s := startStack(t, bin, dir, dbURL)
	rep.StartTime = time.Since(phase)
	t.Cleanup(func() {
		if t.Failed() {
			s.dumpLogs(t)
		}
	})
	t.Logf("%s form: %d sessions, %d seats, maxActive %d, a burst of %d, %d fans for the opening, seed %d; stack up in %s (build %s); logs in %s",
		p.Form, p.Sessions, p.Seats, p.MaxActive, p.Burst, p.Opening, p.Seed, rep.StartTime.Round(time.Millisecond), rep.BuildTime.Round(time.Millisecond), dir)

	stats := newClientStats()
	c := &apiClient{base: s.apiURL, http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 200}}, stats: stats}
	ctx := context.Background()
	createConcert(t, c, concertCode, "Chaos on-sale", p.MaxActive, p.Seats, map[string]any{"maxSeatsPerOrder": seatsPerOrder})
	users := createUsers(t, c, p, concertCode, p.Sessions, 2, seatsPerOrder)
	// The burst: a concert with a slot and a seat for each of its fans; every third takes its token and leaves,
	// so only the waiting room can start its workflow if the API died before it did.
	createConcert(t, c, burstCode, "Chaos crash window", p.Burst, p.Burst, nil)
	burst := createUsers(t, c, p, burstCode, p.Burst, 1<<32, 1)
	for i, u := range burst {
		u.leave = i%3 == 2
	}
	// The opening: a concert created last, so that its sale opens p.OpensIn into the load; its fans all come
	// before and pre-queue.
	opening := createUsers(t, c, p, openingCode, p.Opening, 1<<33, seatsPerOrder)
	opensAt := time.Now().Add(p.OpensIn).UTC().Truncate(time.Millisecond)
	createConcert(t, c, openingCode, "Chaos opening", max(p.MaxActive/2, 1), max(p.Opening*2/5, len(concertDates)),
		map[string]any{"opensAt": opensAt.Format(time.RFC3339Nano), "maxSeatsPerOrder": seatsPerOrder})
	for _, u := range opening {
		u.opensAt = opensAt
	}

	// The on-sale and the chaos, side by side.
	phase = time.Now()
	loadCtx, cancelLoad := context.WithTimeout(ctx, p.Arrival+p.UserTimeout+time.Minute)
	defer cancelLoad()
	var wg sync.WaitGroup
	// arrive lets a group of users come one after the other, evenly over the given time.
	arrive := func(group []*user, over time.Duration) {
		for i, u := range group {
			at := phase.Add(over * time.Duration(i) / time.Duration(len(group)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				if !sleep(loadCtx, time.Until(at)) {
					return
				}
				uctx, cancel := context.WithTimeout(loadCtx, p.UserTimeout)
				defer cancel()
				u.run(uctx)
			}()
		}
	}
	arrive(users, p.Arrival)
	arrive(opening, p.OpensIn*2/3)
	var chaos chaosStats
	chaosDone := make(chan struct{})
	window := &crashWindow{ctx: loadCtx, userTimeout: p.UserTimeout, users: burst}
	go func() {
		defer close(chaosDone)
		chaos = s.runChaos(loadCtx, t, p, rand.New(rand.NewPCG(p.Seed, 1)), window, openingStats{Code: openingCode, OpensAt: opensAt})
	}()
	wg.Wait()
	<-chaosDone
	window.wg.Wait()
	rep.LoadTime = time.Since(phase)
	rep.Chaos = chaos
	users = append(append(users, burst...), opening...)
	require.NoError(t, s.worker.waitReady(time.Minute), "a worker must run after the chaos")

	// After the chaos and the windows: every session ends, in PostgreSQL and in Temporal.
	phase = time.Now()
	store, err := sqlx.Open("postgres", dbURL)
	require.NoError(t, err)
	defer store.Close()
	tc, err := client.Dial(client.Options{
		HostPort: s.temporalAddr, Namespace: "default",
		Logger: sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	})
	require.NoError(t, err)
	defer tc.Close()
	settled := assert.EventuallyWithT(t, func(c *assert.CollectT) {
		counts, err := sessionStatuses(ctx, store)
		if !assert.NoError(c, err) {
			return
		}
		for status, n := range counts {
			assert.True(c, terminalStatuses[status], "%d sessions still %s", n, status)
		}
		open, err := runningSessionWorkflows(ctx, tc)
		if assert.NoError(c, err) {
			assert.Zero(c, open, "BookingSession workflows still running")
		}
	}, p.Settle, time.Second, "every session ends after the chaos and the windows")
	rep.SettleTime = time.Since(phase)
	if !settled {
		logStuck(t, ctx, store)
	}

	verify(t, ctx, rep, s, store, tc, users, stats)
	if len(rep.Losses) > 0 {
		*keep = true
		saveHistories(ctx, t, tc, store, dir, rep.Losses)
		for k, v := range rep.Losses {
			msg := fmt.Sprintf("LOSS: %s (%d times, e.g. session %s; its history is in %s)", k, len(v), v[0], dir)
			if rep.Strict {
				t.Error(msg)
			} else {
				t.Log(msg)
			}
		}
	}
	if rep.Strict && rep.GaveUp > 0 {
		t.Errorf("%d users gave up: %v", rep.GaveUp, rep.GaveUpErrors)
	}
	rep.Total = time.Since(began)
	rep.publish(t, dir)
	for _, e := range append(s.temporal.unaskedExits(), s.api.unaskedExits()...) {
		t.Errorf("unexpected exit: %s", e)
	}
}

// createConcert puts a concert on sale, its seats spread over concertDates; extra adds members to the
// request (an opening, seats per order).
func createConcert(t *testing.T, c *apiClient, code, title string, maxActive, seats int, extra map[string]any) {
	t.Helper()
	var dates []map[string]any
	for _, d := range concertDates {
		dates = append(dates, map[string]any{"concertDate": d, "seats": max(1, seats/len(concertDates)), "price": price})
	}
	body := map[string]any{"concertCode": code, "title": title, "maxActive": maxActive, "dates": dates}
	maps.Copy(body, extra)
	r, err := c.call(context.Background(), "admin", http.MethodPost, "/api/v1/admin/concerts", adminToken, "", body)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, r.status, r.String())
}

// createUsers registers n buyers of the concert code; about one in five will abandon its hold, one in ten
// tops up too little at first, and, if an order may hold maxSeats > 1 seats, one in three wants two or more,
// half of those holding the first alone and adding the rest. User i draws its choices from the stream
// stream+i of the plan's seed.
func createUsers(t *testing.T, c *apiClient, p plan, code string, n int, stream uint64, maxSeats int) []*user {
	t.Helper()
	users := make([]*user, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range users {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			r, err := c.call(context.Background(), "create user", http.MethodPost, "/api/v1/users", "", "", map[string]any{})
			if err != nil || r.status != http.StatusCreated {
				t.Errorf("create user: %v %v", err, r)
				return
			}
			rng := rand.New(rand.NewPCG(p.Seed, stream+uint64(i)))
			u := &user{
				id: r.str("UUID"), concert: code, dates: concertDates, price: price, c: c, rng: rng,
				abandon: rng.IntN(5) == 0, split: rng.IntN(10) == 0, want: 1,
			}
			if maxSeats > 1 && rng.IntN(3) == 0 {
				u.want, u.addLater = 2+rng.IntN(maxSeats-1), rng.IntN(2) == 0
			}
			mu.Lock()
			users[i] = u
			mu.Unlock()
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return users
}

// logStuck lists the sessions that did not end, for the diagnosis.
func logStuck(t *testing.T, ctx context.Context, store *sqlx.DB) {
	var rows []string
	err := store.SelectContext(ctx, &rows, `
SELECT id || ' ' || workflow_id || ' ' || status || ' since ' || status_since || ' active_until ' || COALESCE(active_until::text, '-') ||
       ' held_until ' || COALESCE(held_until::text, '-') || ' notified ' || notified
FROM sessions WHERE status NOT IN ('PAID', 'EXPIRED', 'CANCELLED', 'SOLD_OUT') ORDER BY seq LIMIT 50`)
	t.Logf("sessions that did not end (%v):\n%s", err, strings.Join(rows, "\n"))
}

// verify checks what the chaos must not have broken and fills the report.
func verify(t *testing.T, ctx context.Context, rep *report, s *stack, store *sqlx.DB, tc client.Client, users []*user, stats *clientStats) {
	t.Helper()
	var err error
	rep.Statuses, err = sessionStatuses(ctx, store)
	require.NoError(t, err)

	// The store of record keeps its promises.
	violations, err := checkStore(ctx, store, holdGrace)
	require.NoError(t, err)
	for _, v := range violations {
		t.Errorf("invariant broken: %s", v)
	}
	rep.InlineChecks = len(storeInvariants)
	rep.InlineViolations = len(violations)
	available, out, err := concertCheck(ctx, s.bin, s.dbURL)
	switch {
	case !available:
		rep.ConcertCheck = "not in this build (`concert check` is being added); the inline SQL checks stood in"
	case err != nil:
		rep.ConcertCheck = "FAILED: " + err.Error()
		t.Errorf("concert check: %v\n%s", err, out)
	default:
		rep.ConcertCheck = "passed"
	}
	rep.ConcertCheckOutput = strings.TrimSpace(out)

	// What the clients were told agrees with the store: every seat a payment's 201 named is SOLD, to the
	// session that paid and by that payment, and the seats SOLD are as many as the payments sold.
	type payRow struct {
		ID        string `db:"id"`
		SessionID string `db:"session_id"`
		Concert   string `db:"concert_code"`
		Date      string `db:"concert_date"`
		Seat      int    `db:"seat_number"`
		Amount    int64  `db:"amount"`
	}
	var payments []payRow
	require.NoError(t, store.SelectContext(ctx, &payments,
		`SELECT id::text, session_id, concert_code, to_char(concert_date, 'YYYY-MM-DD"T"HH24:MI:SS') AS concert_date, seat_number, amount FROM payments`))
	byID := map[string]payRow{}
	for _, p := range payments {
		byID[p.ID] = p
	}
	var soldRows []struct {
		Concert   string `db:"concert_code"`
		Date      string `db:"concert_date"`
		Seat      int    `db:"seat_number"`
		SessionID string `db:"session_id"`
		PaymentID string `db:"payment_id"`
	}
	require.NoError(t, store.SelectContext(ctx, &soldRows, `
SELECT s.concert_code, to_char(s.concert_date, 'YYYY-MM-DD"T"HH24:MI:SS') AS concert_date, s.seat_number,
       COALESCE(s.session_id, '') AS session_id, COALESCE(ps.payment_id::text, '') AS payment_id
FROM seats s LEFT JOIN payment_seats ps USING (concert_code, concert_date, seat_number) WHERE s.status = 'SOLD'`))
	require.NoError(t, store.GetContext(ctx, &rep.PaymentSeats, `SELECT count(*) FROM payment_seats`))
	type sale struct{ session, payment string }
	sold := map[string]sale{}          // "<concert> <date> #<number>" → who bought it, by which payment
	seatsOfPayment := map[string]int{} // payment → SOLD seats it sold
	for _, r := range soldRows {
		sold[r.Concert+" "+seatRef{Date: r.Date, Number: r.Seat}.String()] = sale{r.SessionID, r.PaymentID}
		seatsOfPayment[r.PaymentID]++
	}
	rep.SeatsSold = len(soldRows)
	if rep.SeatsSold != rep.PaymentSeats {
		t.Errorf("%d seats are SOLD but the payments sold %d", rep.SeatsSold, rep.PaymentSeats)
	}
	rep.OrderSizes = map[string]int{}
	for _, p := range payments {
		rep.OrderSizes[fmt.Sprintf("%d-seat", seatsOfPayment[p.ID])]++
	}
	var sessionRows []struct {
		ID     string `db:"id"`
		Status string `db:"status"`
	}
	require.NoError(t, store.SelectContext(ctx, &sessionRows, `SELECT id, status FROM sessions`))
	dbStatus := map[string]string{}
	for _, r := range sessionRows {
		dbStatus[r.ID] = r.Status
	}
	soldTo := map[string][]string{} // "<concert> <date> #<number>" → sessions told they bought it
	askedToPay := map[string]bool{}
	for _, u := range users {
		rep.count(u)
		for _, id := range u.sessions {
			if _, ok := dbStatus[id]; !ok {
				t.Errorf("session %s of user %s was given a token but has no row in the database", id, u.id)
			}
		}
		if u.payCalled {
			askedToPay[u.session()] = true
		}
		if u.payment == "" {
			continue
		}
		p, ok := byID[u.payment]
		switch {
		case !ok:
			t.Errorf("payment %s confirmed to user %s (session %s, seats %v) is not in the database", u.payment, u.id, u.session(), u.paidSeats)
		case len(u.paidSeats) == 0:
			t.Errorf("payment %s was confirmed to session %s without its seats", u.payment, u.session())
		case p.SessionID != u.session() || p.Concert != u.concert || p.Date != u.paidSeats[0].Date ||
			p.Seat != slices.MinFunc(u.paidSeats, func(a, b seatRef) int { return a.Number - b.Number }).Number || p.Amount != u.paidAmount:
			t.Errorf("payment %s confirmed to session %s for %s %v (%d won) is recorded for session %s, %s %s #%d (%d won)",
				u.payment, u.session(), u.concert, u.paidSeats, u.paidAmount, p.SessionID, p.Concert, p.Date, p.Seat, p.Amount)
		case seatsOfPayment[u.payment] != len(u.paidSeats):
			t.Errorf("payment %s sold %d seats, its 201 named %d: %v", u.payment, seatsOfPayment[u.payment], len(u.paidSeats), u.paidSeats)
		}
		for _, seat := range u.paidSeats {
			key := u.concert + " " + seat.String()
			soldTo[key] = append(soldTo[key], u.session())
			if got, ok := sold[key]; !ok || got != (sale{u.session(), u.payment}) {
				t.Errorf("seat %s, bought by session %s with payment %s, is not SOLD to it by that payment (SOLD: %t, to session %q by payment %q)",
					key, u.session(), u.payment, ok, got.session, got.payment)
			}
		}
		if st := dbStatus[u.session()]; st != "PAID" {
			t.Errorf("session %s was told its payment succeeded but ended %s", u.session(), st)
		}
	}
	for seat, sessions := range soldTo {
		if len(sessions) > 1 {
			t.Errorf("seat %s was sold to %d sessions: %v", seat, len(sessions), sessions)
		}
	}
	for _, p := range payments {
		if !askedToPay[p.SessionID] {
			t.Errorf("payment %s of session %s was never asked for", p.ID, p.SessionID)
		}
	}
	rep.Payments = len(payments)
	// Nobody was admitted before the sale opened, and the pre-queue was drawn once and ended.
	verifyOpening(ctx, t, &rep.Chaos.Opening, store, users, dbStatus)

	// Temporal agrees: every session run completed, with the status the database has.
	runs, err := sessionWorkflows(ctx, tc)
	require.NoError(t, err)
	rep.Workflows = len(runs)
	seen := map[string]workflowRun{}
	for _, r := range runs {
		id := r.RunID // sessions from before service-chosen IDs
		if sid, ok := workflows.SessionIDFromWorkflowID(r.WorkflowID); ok {
			id = sid
		}
		seen[id] = r
		st, ok := dbStatus[id]
		switch {
		case !ok:
			t.Errorf("workflow %s run %s (%s) has no session row", r.WorkflowID, r.RunID, r.Status)
		case r.Status != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
			t.Errorf("workflow %s run %s closed %s (session %s)", r.WorkflowID, r.RunID, r.Status, st)
		case r.BookingStatus != st:
			t.Errorf("workflow %s run %s ended with BookingStatus %s, the database says %s", r.WorkflowID, r.RunID, r.BookingStatus, st)
		}
	}
	for id, st := range dbStatus {
		// A fan who arrives after the sell-out ends at the join and never costs a workflow.
		if _, ok := seen[id]; !ok && st != "SOLD_OUT" {
			t.Errorf("session %s (%s) has no BookingSession workflow run", id, st)
		}
	}
	// The sessions the API crash caught between their commit and their workflow's start ended too.
	verifyWindow(ctx, t, &rep.Chaos.Window, tc, dbStatus, seen)
	rep.Retries = stats.totalRetries()
	rep.RetryReasons = sortedCounts(stats.retries)
	rep.Answers = sortedCounts(stats.answers)
	rep.Anomalies, rep.Losses = map[string][]string{}, map[string][]string{}
	for k, v := range stats.anomalies {
		rep.Anomalies[k] = v
		t.Errorf("a client got an answer the contract does not allow: %s (%d times, e.g. %s)", k, len(v), v[0])
	}
	for k, v := range stats.losses {
		rep.Losses[k] = v
	}
	rep.WorkerIncarnations = s.worker.incarnations()
	rep.WorkerSelfExits = s.worker.unaskedExits()
}

// report is the summary of one run.
type report struct {
	Plan                                               plan
	BuildTime, StartTime, LoadTime, SettleTime, Total  time.Duration
	Chaos                                              chaosStats
	WorkerIncarnations                                 int
	WorkerSelfExits                                    []string
	Statuses                                           map[string]int
	Workflows, Payments                                int
	SeatsSold, PaymentSeats                            int            // SOLD seats; seats the payments sold
	OrderSizes                                         map[string]int // payments by the seats they sold
	Users, Paid, PaidLate, Abandoned, GaveUp, HeldOnce int
	Several, AddedWhileHeld                            int // users who wanted several seats; who added some to a held order
	Final                                              map[string]int
	GaveUpErrors                                       []string
	Retries                                            int
	RetryReasons, Answers                              []string
	Anomalies, Losses                                  map[string][]string
	Strict                                             bool
	InlineChecks, InlineViolations                     int
	ConcertCheck, ConcertCheckOutput                   string
}

func (r *report) count(u *user) {
	if r.Final == nil {
		r.Final = map[string]int{}
	}
	r.Users++
	r.Final[u.final]++
	switch {
	case u.payment != "":
		r.Paid++
	case u.paidLate:
		r.PaidLate++
	}
	if u.abandon && len(u.held) > 0 {
		r.Abandoned++
	}
	if len(u.held) > 0 {
		r.HeldOnce++
	}
	if u.want > 1 {
		r.Several++
	}
	if u.added {
		r.AddedWhileHeld++
	}
	if u.err != nil {
		r.GaveUp++
		if len(r.GaveUpErrors) < 10 {
			r.GaveUpErrors = append(r.GaveUpErrors, "user "+u.id+": "+u.err.Error())
		}
	}
}

func (r *report) String() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p := r.Plan
	w("concert chaos on-sale — %s form, seed %d", p.Form, p.Seed)
	w("  plan        %d sessions, %d seats on %d dates, maxActive %d, up to %d seats per order, hold %s, admission %s, tick %s; a burst of %d on %s; %d fans for %s, which opens %s into the on-sale",
		p.Sessions, p.Seats, len(concertDates), p.MaxActive, seatsPerOrder, holdWindow, admissionWindow, admissionTick, p.Burst, burstCode, p.Opening, openingCode, p.OpensIn)
	w("  durations   total %s: build %s, start %s, on-sale %s, chaos %s, settle %s",
		rd(r.Total), rd(r.BuildTime), rd(r.StartTime), rd(r.LoadTime), rd(r.Chaos.Duration), rd(r.SettleTime))
	w("  survived    %d worker SIGKILLs (%d worker processes, %d exited by themselves), %d Temporal restarts (%s, down %s), %d database connection drops (%d backends terminated)",
		r.Chaos.WorkerKills, r.WorkerIncarnations, len(r.WorkerSelfExits), r.Chaos.TemporalRestarts, r.Chaos.TemporalSignal,
		rd(r.Chaos.TemporalDowntime), r.Chaos.DBDrops, r.Chaos.DBBackendsTerminated)
	for i, l := range r.Chaos.Window.lines() {
		if i == 0 {
			w("  API crash   %s", l)
		} else {
			w("    %s", l)
		}
	}
	for i, l := range r.Chaos.Opening.lines() {
		if i == 0 {
			w("  opening     %s", l)
		} else {
			w("    %s", l)
		}
	}
	w("  sessions    %d in PostgreSQL %s, %d BookingSession workflow runs, %d payments", sum(r.Statuses), fmtCounts(r.Statuses), r.Workflows, r.Payments)
	w("  orders      %d seats SOLD, %d sold by payments; payments %s; %d users wanted several seats, %d added some to a held order",
		r.SeatsSold, r.PaymentSeats, fmtCounts(r.OrderSizes), r.Several, r.AddedWhileHeld)
	w("  clients     %d users: %d paid (201), %d paid but learnt it late, %d held a seat, %d walked away from a hold, %d gave up; last status seen %s",
		r.Users, r.Paid, r.PaidLate, r.HeldOnce, r.Abandoned, r.GaveUp, fmtCounts(r.Final))
	w("  retries     %d client retries", r.Retries)
	for _, s := range r.RetryReasons {
		w("    %s", s)
	}
	w("  checks      %d inline SQL invariants, %d violations; concert check: %s", r.InlineChecks, r.InlineViolations, r.ConcertCheck)
	if r.ConcertCheckOutput != "" {
		w("    %s", strings.ReplaceAll(r.ConcertCheckOutput, "\n", "\n    "))
	}
	w("  anomalies   %d kinds of answers the contract does not allow", len(r.Anomalies))
	listKinds(w, r.Anomalies)
	mode := "reported only; CONCERT_CHAOS_STRICT=1 fails on them"
	if r.Strict {
		mode = "strict mode: each fails the test"
	}
	w("  losses      %d kinds of results reached but lost to the client (%s)", len(r.Losses), mode)
	listKinds(w, r.Losses)
	for _, e := range r.WorkerSelfExits {
		w("  worker exit %s", e)
	}
	for _, e := range r.Chaos.WorkerStartFailures {
		w("  slow start  %s", e)
	}
	for _, e := range r.GaveUpErrors {
		w("  gave up     %s", e)
	}
	w("  answers")
	for _, s := range r.Answers {
		w("    %s", s)
	}
	w("  chaos log")
	for _, e := range r.Chaos.Events {
		w("    %s", e)
	}
	return b.String()
}

func listKinds(w func(string, ...any), m map[string][]string) {
	kinds := make([]string, 0, len(m))
	for k := range m {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		ex := m[k]
		w("    %4d  %s, e.g. %s", len(ex), k, strings.Join(ex[:min(3, len(ex))], ", "))
	}
}

// publish logs the report and writes it to $CONCERT_CHAOS_REPORT (default: concert-chaos-report.txt in the
// temporary directory) and to the work directory.
func (r *report) publish(t *testing.T, dir string) {
	text := r.String()
	t.Log("\n" + text)
	path := os.Getenv("CONCERT_CHAOS_REPORT")
	if path == "" {
		path = filepath.Join(os.TempDir(), "concert-chaos-report.txt")
	}
	for _, p := range []string{path, filepath.Join(dir, "report.txt")} {
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Errorf("write report: %v", err)
		}
	}
	t.Logf("report written to %s", path)
}

func rd(d time.Duration) string { return d.Round(100 * time.Millisecond).String() }

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func fmtCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		name := k
		if name == "" {
			name = "(none)"
		}
		parts[i] = fmt.Sprintf("%s %d", name, m[k])
	}
	return "(" + strings.Join(parts, ", ") + ")"
}
