package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/ticketing/concert/internal/loadtest"
)

// runLoadtest is `concert loadtest`: it drives an on-sale against a running stack and prints the report, a
// table or (--json) the JSON document. Progress goes to stderr. It fails when the run could not be set up
// or when the invariant checks found a broken promise (after printing the report).
func runLoadtest(ctx context.Context, args []string, out, progress io.Writer) error {
	cfg := loadtest.DefaultConfig()
	baseline := loadtest.BaselineConfig{
		TemporalAddress: env(envTemporalAddress, defaultTemporalHost),
		Namespace:       env(envTemporalNamespace, defaultNamespace),
	}
	fs := flag.NewFlagSet("concert loadtest", flag.ContinueOnError)
	fs.SetOutput(progress)
	fs.StringVar(&cfg.Target, "target", env(envAPIURL, defaultAPIURL), "API base URL ("+envAPIURL+")")
	fs.StringVar(&cfg.AdminToken, "admin-token", os.Getenv(envAdminToken), "admin token, to create the run's concert ("+envAdminToken+")")
	fs.IntVar(&cfg.Users, "users", cfg.Users, "users taking part")
	fs.IntVar(&cfg.Seats, "seats", cfg.Seats, "seats of each performance")
	fs.IntVar(&cfg.Dates, "dates", cfg.Dates, "performances of the concert")
	fs.IntVar(&cfg.MaxActive, "max-active", cfg.MaxActive, "users admitted at once (the concert's maxActive)")
	fs.DurationVar(&cfg.Ramp, "ramp", cfg.Ramp, "time over which users arrive, evenly spaced (0: all at once)")
	fs.Float64Var(&cfg.Abandon, "abandon", cfg.Abandon, "share of users (0..1) who hold a seat and never pay")
	fs.DurationVar(&cfg.ClosesIn, "closes-in", cfg.ClosesIn, "close the sale this long after creating the concert: users still waiting then end CLOSED (0: never)")
	fs.IntVar(&cfg.SeatsPerOrder, "seats-per-order", cfg.SeatsPerOrder, "let one order hold up to this many seats: each user wants 1 to this many, holds them in one request (all or none) and pays once")
	fs.DurationVar(&cfg.OpensIn, "opens-in", cfg.OpensIn, "open the sale this long after creating the concert: earlier arrivals join the pre-queue and are drawn at the opening (0: open at once)")
	fs.Float64Var(&cfg.Leave, "leave", cfg.Leave, "share of users (0..1) who hold a seat, then leave (DELETE on the token) and give it back at once")
	fs.IntVar(&cfg.Concurrency, "concurrency", 0, "users in flight at most (0: every user)")
	fs.Int64Var(&cfg.Price, "price", cfg.Price, "ticket price in won")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	fs.StringVar(&cfg.DatabaseURL, "database-url", "", "the service's PostgreSQL URL: count sold seats there and check the invariants after the run")
	fs.DurationVar(&cfg.AdmissionWindow, "admission-window", cfg.AdmissionWindow, "the service's admission window ("+envAdmissionWindow+"), to date admissions")
	fs.DurationVar(&cfg.PollMin, "poll-min", cfg.PollMin, "shortest pause between two status polls of a waiting user")
	fs.DurationVar(&cfg.PollMax, "poll-max", cfg.PollMax, "longest pause between two status polls (estimatedWaitSeconds is honoured up to this)")
	fs.DurationVar(&cfg.MaxWait, "max-wait", cfg.MaxWait, "how long a user waits in the queue before leaving")
	fs.DurationVar(&cfg.InvariantGrace, "invariant-grace", cfg.InvariantGrace, "how far past its deadline a live session may be before it counts as stuck")
	fs.StringVar(&cfg.ConcertCode, "concert-code", "", "code of the concert to create (default: a unique LOAD-... code)")
	fs.BoolVar(&cfg.IdempotencyKeys, "idempotency-keys", cfg.IdempotencyKeys, "send an Idempotency-Key with every top-up, reserve and payment")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed of the users' choices (0: from the clock; the report prints it)")
	timeout := fs.Duration("timeout", 15*time.Minute, "stop the booking run after this long (the report is still printed)")
	withBaseline := fs.Bool("baseline", false, "also measure Temporal's ceiling on the same server: sessions of a paid booking's shape (start, admission signal if waited, reserve and pay updates, 2 or 3 search-attribute upserts) without database or activities")
	fs.StringVar(&baseline.TemporalAddress, "temporal-address", baseline.TemporalAddress, "Temporal frontend host:port for --baseline ("+envTemporalAddress+")")
	fs.StringVar(&baseline.Namespace, "temporal-namespace", baseline.Namespace, "Temporal namespace for --baseline ("+envTemporalNamespace+")")
	fs.IntVar(&baseline.Sessions, "baseline-sessions", 0, "baseline sessions to run (0: as many as --users)")
	fs.IntVar(&baseline.Concurrency, "baseline-concurrency", 0, "baseline sessions in flight (0: the booking run's, min(--concurrency, --max-active))")
	fs.Float64Var(&baseline.Waited, "baseline-waited", -1, "share (0..1) of baseline sessions shaped like a fan who waited: one more signal and upsert (negative: the booking run's own share)")
	fs.BoolVar(&cfg.Stampede, "stampede", false, "users arrive signed up and topped up with the whole price; with --ramp 0 all ask for a token at the same instant")
	fs.BoolVar(&cfg.EntranceBaseline, "entrance-baseline", false, "with --database-url: after the run, time as many plain inserts of a session-like row through the API's pool size, and report tokens/s against them")
	reads := fs.Duration("reads", 0, "after the run, measure /healthz, the seat map and the date list for this long each and compare their request rates (0: skip)")
	readClients := fs.Int("read-clients", 32, "clients of the --reads benchmark")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if baseline.Waited > 1 || math.IsNaN(baseline.Waited) {
		return fmt.Errorf("baseline-waited must be between 0 and 1 (or negative for the booking run's share), not %g", baseline.Waited)
	}
	if *withBaseline {
		cfg.Baseline = &baseline
	}
	cfg.Progress = progress

	runCtx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	rep, err := loadtest.Run(runCtx, cfg)
	if rep == nil {
		return err
	}
	var readRes *loadtest.ReadsResult
	if *reads > 0 && ctx.Err() == nil {
		r, rerr := loadtest.RunReads(ctx, loadtest.ReadsConfig{Target: cfg.Target, AdminToken: cfg.AdminToken, Duration: *reads, Concurrency: *readClients})
		if rerr != nil {
			return fmt.Errorf("read benchmark: %w", rerr)
		}
		readRes = &r
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		doc := any(rep)
		if readRes != nil {
			doc = struct {
				*loadtest.Report
				Reads *loadtest.ReadsResult `json:"reads"`
			}{rep, readRes}
		}
		if perr := enc.Encode(doc); perr != nil {
			return perr
		}
	} else {
		if perr := rep.WriteTable(out); perr != nil {
			return perr
		}
		if readRes != nil {
			fmt.Fprintf(out, "\nreads (%d clients, %s each):\n  /healthz    %8.0f req/s  p99 %6.1f ms\n  seat map    %8.0f req/s  p99 %6.1f ms  (%.2f x healthz)\n  date list   %8.0f req/s  p99 %6.1f ms  (%.2f x healthz)\n",
				*readClients, *reads, readRes.Healthz.RequestsPerSecond, readRes.Healthz.P99Ms,
				readRes.Seats.RequestsPerSecond, readRes.Seats.P99Ms, readRes.SeatsRatio,
				readRes.Dates.RequestsPerSecond, readRes.Dates.P99Ms, readRes.DatesRatio)
		}
	}
	return err
}
