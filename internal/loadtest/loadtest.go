// Package loadtest drives an on-sale against a running booking service through its public REST API, the
// way many people arriving at once would, and measures it: throughput of paid bookings, latency of every
// request, how long admitted users took to notice their admission, errors by status, and whether the
// database still keeps its promises afterwards (no seat sold twice, money adds up). It can also measure
// what Temporal alone costs a booking: sessions of a paid booking's shape (the same start, signal, updates
// and search-attribute upserts) without its logic, so a run says how close the booking logic comes to that
// ceiling on the same machine.
//
// It is a client: it never reaches into the service's process. The only things it touches besides the
// HTTP API are the database (read only, for the invariant checks, when given its URL) and the Temporal
// server (a baseline workflow of its own on its own task queue). Targets are local: point it only at a
// stack you run yourself.
package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/ticketing/concert/booking"
)

// Config describes one run. Zero values take the defaults of DefaultConfig where noted.
type Config struct {
	// Target is the API's base URL, like http://127.0.0.1:8080.
	Target string
	// AdminToken authorises creating the run's concert.
	AdminToken string
	// Users is how many users take part.
	Users int
	// Seats is the number of seats of each performance; Dates is the number of performances.
	Seats, Dates int
	// MaxActive is the concert's waiting-room size: how many users may be admitted at once.
	MaxActive int
	// Ramp is the time over which users arrive, evenly spaced; 0 sends them all at once.
	Ramp time.Duration
	// Abandon is the share of users (0..1) who hold a seat and never pay, so their holds run out.
	Abandon float64
	// Leave is the share of users (0..1) who hold a seat and then leave (DELETE on the token), giving the
	// seat and the slot back at once. Abandon + Leave is at most 1.
	Leave float64
	// OpensIn, when positive, opens the concert's sale that long after it is created: users who arrive
	// before join the pre-queue, and the waiting room draws their order at the opening.
	OpensIn time.Duration
	// ClosesIn, when positive, closes the sale that long after the concert is created: users still waiting
	// then end CLOSED, and users who arrive after it are turned away.
	ClosesIn time.Duration
	// SeatsPerOrder, above 1, lets one order hold that many seats (the concert's maxSeatsPerOrder): each
	// user wants between 1 and that many, holds them with one request (seatNumbers, all or none) and pays
	// for them at once. 0 is 1.
	SeatsPerOrder int
	// Concurrency bounds the users in flight at once; a user past the bound arrives when one finishes.
	// 0 means every user (nobody is held back).
	Concurrency int
	// Price is the ticket price in won.
	Price int64
	// AdmissionWindow must be the service's admission window (CONCERT_ADMISSION_WINDOW): the admission
	// lag is computed from it. Default 10m.
	AdmissionWindow time.Duration
	// PollMin and PollMax bound the pause between two status polls of a waiting user, which otherwise
	// follows the service's estimatedWaitSeconds. Defaults 100ms and 1s.
	PollMin, PollMax time.Duration
	// MaxWait is how long a user waits in the queue before leaving it. Default 5m.
	MaxWait time.Duration
	// DatabaseURL, if set, is the service's PostgreSQL database: sold seats are counted there and the
	// invariants are checked there after the run.
	DatabaseURL string
	// InvariantGrace is how far past its deadline a live session may be before it counts as stuck.
	// Default 1m.
	InvariantGrace time.Duration
	// ConcertCode names the run's concert; empty generates a unique one.
	ConcertCode string
	// Seed makes the users' choices (who abandons, which seat) repeatable; 0 picks one from the clock.
	Seed uint64
	// Progress receives a progress line every ProgressEvery (default 1s); nil shows none.
	Progress      io.Writer
	ProgressEvery time.Duration
	// IdempotencyKeys sends an Idempotency-Key with every top-up, reserve and payment, as a careful client
	// does, so a repeated request cannot act twice. Default true.
	IdempotencyKeys bool
	// HTTP is the client to use; nil builds one sized for Concurrency.
	HTTP *http.Client
	// Baseline, if set, also measures Temporal's ceiling for sessions of a booking's shape (see
	// BaselineConfig and RunBaseline) after the booking run.
	Baseline *BaselineConfig
	// Stampede makes every user arrive signed up and topped up with the whole price (no top-up during the
	// visit), as fans do who prepared for an on-sale. With Ramp 0 every user asks for a token at the same
	// instant (they are all released from one barrier).
	Stampede bool
	// EntranceBaseline, with DatabaseURL, also measures the entrance's physical limit after the run: as many
	// plain inserts of a session-like row as there were users, through a pool of EntrancePool connections
	// (default 32, the API's pool), so tokens/s can be read against inserts/s.
	EntranceBaseline bool
	EntrancePool     int
}

// DefaultConfig returns the defaults the concert loadtest command starts from.
func DefaultConfig() Config {
	return Config{
		Users: 100, Seats: 100, Dates: 1, MaxActive: 50, Ramp: 10 * time.Second, Abandon: 0.1, Price: 110_000,
		AdmissionWindow: 10 * time.Minute, PollMin: 100 * time.Millisecond, PollMax: time.Second,
		MaxWait: 5 * time.Minute, InvariantGrace: time.Minute, ProgressEvery: time.Second, IdempotencyKeys: true,
	}
}

// Limits the service's admin API puts on a concert, checked here so a bad flag fails before any request.
const (
	maxSeatsPerDate = 100_000
	maxDates        = 100
	maxMaxActive    = 100_000
	maxPrice        = 100_000_000
	maxTopUp        = 10_000_000
)

func (c *Config) fill() error {
	d := DefaultConfig()
	if c.AdmissionWindow <= 0 {
		c.AdmissionWindow = d.AdmissionWindow
	}
	if c.PollMin <= 0 {
		c.PollMin = d.PollMin
	}
	if c.PollMax <= 0 {
		c.PollMax = d.PollMax
	}
	if c.MaxWait <= 0 {
		c.MaxWait = d.MaxWait
	}
	if c.InvariantGrace <= 0 {
		c.InvariantGrace = d.InvariantGrace
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = d.ProgressEvery
	}
	if c.Concurrency <= 0 || c.Concurrency > c.Users {
		c.Concurrency = c.Users
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	switch {
	case c.Target == "":
		return errors.New("a target URL is required")
	case c.AdminToken == "":
		return errors.New("an admin token is required to create the run's concert")
	case c.Users < 1:
		return errors.New("users must be at least 1")
	case c.Seats < 1 || c.Seats > maxSeatsPerDate:
		return fmt.Errorf("seats must be between 1 and %d", maxSeatsPerDate)
	case c.Dates < 1 || c.Dates > maxDates:
		return fmt.Errorf("dates must be between 1 and %d", maxDates)
	case c.MaxActive < 1 || c.MaxActive > maxMaxActive:
		return fmt.Errorf("max-active must be between 1 and %d", maxMaxActive)
	case c.Ramp < 0:
		return errors.New("ramp must not be negative")
	case c.Abandon < 0 || c.Abandon > 1 || math.IsNaN(c.Abandon):
		return errors.New("abandon must be a share between 0 and 1")
	case c.Leave < 0 || c.Abandon+c.Leave > 1 || math.IsNaN(c.Leave):
		return errors.New("leave must be a share between 0 and 1, and abandon + leave at most 1")
	case c.ClosesIn < 0 || (c.ClosesIn > 0 && c.ClosesIn <= c.OpensIn):
		return errors.New("closes-in must be after opens-in")
	case c.SeatsPerOrder < 0 || c.SeatsPerOrder > booking.MaxSeatsPerOrder:
		return fmt.Errorf("seats-per-order must be between 1 and %d", booking.MaxSeatsPerOrder)
	case c.Price < 0 || c.Price > maxPrice || c.Price > 2*maxTopUp:
		return fmt.Errorf("price must be between 0 and %d won", min(maxPrice, 2*maxTopUp))
	case c.PollMin > c.PollMax:
		return errors.New("poll-min must not exceed poll-max")
	}
	c.Target = strings.TrimRight(c.Target, "/")
	if c.ConcertCode == "" {
		c.ConcertCode = fmt.Sprintf("LOAD-%s-%04x", time.Now().UTC().Format("20060102-150405"), rand.Uint32()&0xffff)
	}
	if c.HTTP == nil {
		c.HTTP = &http.Client{
			Timeout: 2 * time.Minute,
			Transport: &http.Transport{
				MaxIdleConns: c.Concurrency + 16, MaxIdleConnsPerHost: c.Concurrency + 16,
				IdleConnTimeout: 90 * time.Second, DisableCompression: true,
			},
		}
	}
	return nil
}

// Outcome is how one user's visit ended.
type Outcome string

// The outcomes a user can reach.
const (
	// OutcomePaid: held a seat and paid for it.
	OutcomePaid Outcome = "paid"
	// OutcomeAbandoned: held a seat and left without paying, as configured.
	OutcomeAbandoned Outcome = "abandoned"
	// OutcomeLeft: held a seat and gave it back by leaving (DELETE on the token), as configured.
	OutcomeLeft Outcome = "left"
	// OutcomeSoldOut: the service ended the session SOLD_OUT.
	OutcomeSoldOut Outcome = "soldOut"
	// OutcomeClosed: the sale closed (--closes-in) before the user's turn, or before it asked.
	OutcomeClosed Outcome = "closed"
	// OutcomeNoSeat: admitted, but every seat it could see was held or sold.
	OutcomeNoSeat Outcome = "noSeat"
	// OutcomeGaveUp: left the queue, after MaxWait or after another user found every seat gone.
	OutcomeGaveUp Outcome = "gaveUp"
	// OutcomeExpired: the session ended (EXPIRED, CANCELLED) before the user finished.
	OutcomeExpired Outcome = "expired"
	// OutcomeFailed: an answer the user could not go on from (an unexpected status, the service away).
	OutcomeFailed Outcome = "failed"
	// OutcomeUnfinished: the run was stopped (timeout, Ctrl+C) while the user was still going.
	OutcomeUnfinished Outcome = "unfinished"
)

// Operation names, used as keys of the latency and error tables.
const (
	opCreateConcert = "createConcert"
	opCreateUser    = "createUser"
	opSetupTopUp    = "setupTopUp"
	opToken         = "token"
	opPoll          = "poll"
	opDates         = "dates"
	opSeats         = "seats"
	opReserve       = "reserve"
	opTopUp         = "topUp"
	opPay           = "pay"
	opLeave         = "leave"
	opFinalSeats    = "finalSeats"
)

// seatKey names one seat of one performance.
type seatKey struct {
	Date   string
	Number int
}

// seatKeys names the seats of one performance.
func seatKeys(date string, numbers []int) []seatKey {
	out := make([]seatKey, len(numbers))
	for i, n := range numbers {
		out[i] = seatKey{Date: date, Number: n}
	}
	return out
}

// user is one simulated user and what happened to it.
type user struct {
	id      string
	abandon bool
	leave   bool
	rng     *rand.Rand

	token       string
	outcome     Outcome
	detail      string
	want        int       // how many seats the user wants in its order
	seats       []seatKey // the seats it holds, then the seats it paid for
	paymentID   string
	paidAt      time.Time
	immediate   bool          // ACTIVE in the token answer itself
	preQueued   bool          // the token answer said the sale had not opened yet
	admittedLag time.Duration // for users that waited: admission to the poll that saw ACTIVE
	lagValid    bool
}

// runner is the state of one run.
type runner struct {
	cfg   Config
	rec   *recorder
	dates []string
	users []*user

	firstToken atomic.Int64 // unix nanos of the first token request
	lastToken  atomic.Int64 // unix nanos of the last token answer
	tokens     atomic.Int64 // tokens issued
	lastPay    atomic.Int64 // unix nanos of the last successful payment answer
	// exhausted is set once a user saw no available seat on any performance: the sale is over for
	// everybody still waiting (held seats may come back when abandoned holds run out, but a run does not
	// wait for that).
	exhausted atomic.Bool

	started, finished, joining, waiting, admitted, paid atomic.Int64
}

// Run drives one on-sale and returns its report. The report is returned (with an error) also when the
// invariant checks fail; an error without a report means the run could not be set up.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.fill(); err != nil {
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	r := &runner{cfg: cfg, rec: newRecorder()}
	setupStart := time.Now()
	if err := r.setup(ctx); err != nil {
		return nil, fmt.Errorf("loadtest: set up: %w", err)
	}
	setupTook := time.Since(setupStart)

	runStart := time.Now()
	stopProgress := r.progress(runStart)
	r.drive(ctx)
	runEnd := time.Now()
	stopProgress()

	rep := r.report(setupTook, runStart, runEnd)
	// The checks and the baseline run even when ctx has ended (a timeout still deserves its report).
	checkCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	if err := r.check(checkCtx, rep); err != nil {
		return rep, fmt.Errorf("loadtest: checks: %w", err)
	}
	if cfg.EntranceBaseline && cfg.DatabaseURL != "" && ctx.Err() == nil {
		if err := r.entrance(ctx, rep); err != nil {
			return rep, fmt.Errorf("loadtest: entrance baseline: %w", err)
		}
	}
	if cfg.Baseline != nil && ctx.Err() == nil {
		bc := baselineFor(cfg, rep)
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "baseline: %d booking-shaped sessions (%.0f%% waited), %d concurrent, against %s\n",
				bc.Sessions, 100*bc.Waited, bc.Concurrency, bc.TemporalAddress)
		}
		b, err := RunBaseline(ctx, bc)
		if err != nil {
			return rep, fmt.Errorf("loadtest: baseline: %w", err)
		}
		rep.setBaseline(b)
	}
	if !rep.InvariantsOK {
		return rep, fmt.Errorf("loadtest: invariants violated (%d), double sold %d", len(rep.Violations), rep.DoubleSold)
	}
	return rep, nil
}

// baselineFor is cfg.Baseline with its defaults taken from the booking run: as many sessions as users, its
// concurrency bounded by maxActive, and its share of admitted users who waited in the queue (rep's
// AdmittedAfterWait among AdmittedImmediately + AdmittedAfterWait; 0 when nobody was admitted).
func baselineFor(cfg Config, rep *Report) BaselineConfig {
	bc := *cfg.Baseline
	if bc.Concurrency <= 0 {
		bc.Concurrency = min(cfg.Concurrency, cfg.MaxActive)
	}
	if bc.Sessions <= 0 {
		bc.Sessions = cfg.Users
	}
	if bc.Waited < 0 {
		bc.Waited = 0
		if admitted := rep.AdmittedImmediately + rep.AdmittedAfterWait; admitted > 0 {
			bc.Waited = float64(rep.AdmittedAfterWait) / float64(admitted)
		}
	}
	return bc
}

// setup creates the run's concert and users (with half the price on their balance; the rest is topped up
// during the visit, so a payment needs both top-ups to have landed).
func (r *runner) setup(ctx context.Context) error {
	dates := make([]map[string]any, r.cfg.Dates)
	first := time.Date(2027, 1, 1, 19, 0, 0, 0, time.UTC)
	for i := range dates {
		d := first.AddDate(0, 0, i).Format("2006-01-02T15:04:05")
		r.dates = append(r.dates, d)
		dates[i] = map[string]any{"concertDate": d, "seats": r.cfg.Seats, "price": r.cfg.Price}
	}
	res := r.do(ctx, call{op: opCreateConcert, method: http.MethodPost, path: "/api/v1/admin/concerts", token: r.cfg.AdminToken,
		body: r.concertBody(dates)}, nil)
	if res.status != http.StatusCreated {
		return fmt.Errorf("create concert %s: %s", r.cfg.ConcertCode, res.describe())
	}

	rng := rand.New(rand.NewPCG(r.cfg.Seed, 0x10ad7e57))
	abandoners := int(math.Round(r.cfg.Abandon * float64(r.cfg.Users)))
	order := rng.Perm(r.cfg.Users)
	r.users = make([]*user, r.cfg.Users)
	for i := range r.users {
		u := &user{rng: rand.New(rand.NewPCG(r.cfg.Seed, uint64(i)+1))}
		u.want = 1 + u.rng.IntN(max(r.cfg.SeatsPerOrder, 1))
		r.users[i] = u
	}
	for _, i := range order[:abandoners] {
		r.users[i].abandon = true
	}
	leavers := min(int(math.Round(r.cfg.Leave*float64(r.cfg.Users))), r.cfg.Users-abandoners)
	for _, i := range order[abandoners : abandoners+leavers] {
		r.users[i].leave = true
	}

	// Users are created with a few requests in flight: this is preparation, not the on-sale.
	const setupWorkers = 16
	work := make(chan *user)
	errc := make(chan error, setupWorkers)
	var wg sync.WaitGroup
	for range setupWorkers {
		wg.Go(func() {
			for u := range work {
				if err := r.createUser(ctx, u); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	var err error
feed:
	for _, u := range r.users {
		select {
		case work <- u:
		case err = <-errc:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	return err
}

func (r *runner) createUser(ctx context.Context, u *user) error {
	var created struct {
		UUID string `json:"UUID"`
	}
	res := r.send(ctx, u.rng, call{op: opCreateUser, method: http.MethodPost, path: "/api/v1/users", body: map[string]any{}}, &created)
	if res.status != http.StatusCreated || created.UUID == "" {
		return fmt.Errorf("create user: %s", res.describe())
	}
	u.id = created.UUID
	first := r.cfg.Price / 2
	if r.cfg.Stampede {
		first = r.cfg.Price
	}
	if first > 0 {
		if res := r.topUp(ctx, u, opSetupTopUp, first); !res.ok() {
			return fmt.Errorf("top up user %s: %s", u.id, res.describe())
		}
	}
	return nil
}

// drive lets the users arrive over the ramp, at most Concurrency of them in flight, and waits for all.
func (r *runner) drive(ctx context.Context) {
	if r.cfg.Ramp == 0 && r.cfg.Concurrency >= len(r.users) {
		r.driveAtOnce(ctx)
		return
	}
	sem := make(chan struct{}, r.cfg.Concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	n := len(r.users)
	for i, u := range r.users {
		if r.cfg.Ramp > 0 && n > 1 {
			at := start.Add(time.Duration(float64(r.cfg.Ramp) * float64(i) / float64(n-1)))
			if !sleep(ctx, time.Until(at)) {
				r.markUnfinished(r.users[i:])
				break
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			r.markUnfinished(r.users[i:])
			break
		}
		r.started.Add(1)
		wg.Go(func() {
			defer func() { <-sem }()
			r.visit(ctx, u)
			r.finished.Add(1)
		})
	}
	wg.Wait()
}

// driveAtOnce releases every user from one barrier, so all token requests leave at the same instant.
func (r *runner) driveAtOnce(ctx context.Context) {
	var ready, wg sync.WaitGroup
	gate := make(chan struct{})
	for _, u := range r.users {
		ready.Add(1)
		wg.Go(func() {
			ready.Done()
			select {
			case <-gate:
			case <-ctx.Done():
				r.markUnfinished([]*user{u})
				return
			}
			r.started.Add(1)
			r.visit(ctx, u)
			r.finished.Add(1)
		})
	}
	ready.Wait()
	close(gate)
	wg.Wait()
}

func (r *runner) markUnfinished(users []*user) {
	for _, u := range users {
		if u.outcome == "" {
			u.outcome, u.detail = OutcomeUnfinished, "the run ended before this user arrived"
		}
	}
}

// visit is one user's whole visit: token, queue, seat, top-up, payment.
func (r *runner) visit(ctx context.Context, u *user) {
	end := func(o Outcome, format string, args ...any) {
		if ctx.Err() != nil && o != OutcomePaid && o != OutcomeAbandoned && o != OutcomeLeft {
			o = OutcomeUnfinished
		}
		u.outcome, u.detail = o, fmt.Sprintf(format, args...)
	}
	status, ok := r.join(ctx, u)
	if !ok {
		end(OutcomeFailed, "no token: %s", status)
		return
	}
	if status == statusWaiting {
		status = r.wait(ctx, u)
	}
	switch status {
	case statusActive:
	case statusSoldOut:
		end(OutcomeSoldOut, "session ended SOLD_OUT")
		return
	case statusClosed:
		end(OutcomeClosed, "the sale closed before the user's turn")
		return
	case outcomeGaveUp:
		end(OutcomeGaveUp, "left the queue")
		return
	case "":
		end(OutcomeFailed, "could not follow the queue")
		return
	default:
		end(OutcomeExpired, "session ended %s while waiting", status)
		return
	}
	r.admitted.Add(1)
	defer r.admitted.Add(-1)

	outcome, detail := r.hold(ctx, u)
	if outcome != "" {
		end(outcome, "%s", detail)
		return
	}
	if u.abandon {
		end(OutcomeAbandoned, "held %v and left", u.seats)
		return
	}
	if u.leave {
		res := r.send(ctx, u.rng, r.userCall(u, opLeave, http.MethodDelete, "/api/v1/concerts/"+r.cfg.ConcertCode+"/token", nil), nil)
		if !res.ok() {
			end(OutcomeFailed, "leave: %s", res.describe())
			return
		}
		end(OutcomeLeft, "held %v and gave it back", u.seats)
		return
	}
	outcome, detail = r.pay(ctx, u)
	end(outcome, "%s", detail)
}

// Session statuses as the API reports them (booking's, as JSON strings), and one pseudo-status for a user
// who left the queue.
const (
	statusWaiting = string(booking.StatusWaiting)
	statusActive  = string(booking.StatusActive)
	statusHeld    = string(booking.StatusHeld)
	statusPaid    = string(booking.StatusPaid)
	statusSoldOut = string(booking.StatusSoldOut)
	statusClosed  = string(booking.StatusClosed)
	outcomeGaveUp = "gave up"
)

// join asks for a token. It returns the session's status.
// concertBody is the admin request that puts the run's concert on sale.
func (r *runner) concertBody(dates []map[string]any) map[string]any {
	body := map[string]any{
		"concertCode": r.cfg.ConcertCode, "title": "Load test " + r.cfg.ConcertCode, "maxActive": r.cfg.MaxActive, "dates": dates,
	}
	if r.cfg.SeatsPerOrder > 1 {
		body["maxSeatsPerOrder"] = r.cfg.SeatsPerOrder
	}
	if r.cfg.ClosesIn > 0 {
		body["closesAt"] = time.Now().Add(r.cfg.ClosesIn).UTC().Format(time.RFC3339Nano)
	}
	if r.cfg.OpensIn > 0 {
		body["opensAt"] = time.Now().Add(r.cfg.OpensIn).UTC().Format(time.RFC3339Nano)
	}
	return body
}

func (r *runner) join(ctx context.Context, u *user) (string, bool) {
	var tok struct {
		Token   string `json:"token"`
		Status  string `json:"status"`
		OpensAt string `json:"opensAt"`
	}
	r.firstToken.CompareAndSwap(0, time.Now().UnixNano())
	r.joining.Add(1)
	defer r.joining.Add(-1)
	res := r.send(ctx, u.rng, call{op: opToken, method: http.MethodPost, path: r.concertPath("/token"),
		body: map[string]any{"UUID": u.id}}, &tok)
	if !res.ok() || tok.Token == "" {
		return res.describe(), false
	}
	r.tokens.Add(1)
	for now := time.Now().UnixNano(); ; {
		last := r.lastToken.Load()
		if now <= last || r.lastToken.CompareAndSwap(last, now) {
			break
		}
	}
	u.token = tok.Token
	u.immediate = tok.Status == statusActive
	u.preQueued = tok.OpensAt != ""
	return tok.Status, true
}

// wait polls the session's status until it leaves WAITING, honouring estimatedWaitSeconds within
// [PollMin, PollMax]. It returns the new status, outcomeGaveUp, or "" when the polls kept failing.
func (r *runner) wait(ctx context.Context, u *user) string {
	r.waiting.Add(1)
	defer r.waiting.Add(-1)
	deadline := time.Now().Add(r.cfg.MaxWait)
	pause := r.cfg.PollMin
	for {
		if r.exhausted.Load() || time.Now().After(deadline) {
			return outcomeGaveUp
		}
		if !sleep(ctx, pause) {
			return ""
		}
		var st struct {
			Status               string     `json:"status"`
			EstimatedWaitSeconds int64      `json:"estimatedWaitSeconds"`
			ActiveUntil          *time.Time `json:"activeUntil"`
		}
		res := r.send(ctx, u.rng, r.userCall(u, opPoll, http.MethodGet, r.concertPath("/token"), nil), &st)
		seen := time.Now()
		if !res.ok() {
			return ""
		}
		switch st.Status {
		case statusWaiting:
			pause = min(max(time.Duration(st.EstimatedWaitSeconds)*time.Second, r.cfg.PollMin), r.cfg.PollMax)
			continue
		case statusActive:
			if st.ActiveUntil != nil {
				admittedAt := st.ActiveUntil.Add(-r.cfg.AdmissionWindow)
				u.admittedLag, u.lagValid = seen.Sub(admittedAt), true
			}
		}
		return st.Status
	}
}

// hold reads the dates and a seat map and holds a random available seat, trying others (and other maps)
// when it loses a race. It returns an outcome only when the visit ends here.
func (r *runner) hold(ctx context.Context, u *user) (Outcome, string) {
	const maxMaps, maxAttempts = 5, 100
	// mapRefresh is how long a user looks at a map whose seats were all gone before reading it again: the
	// service's seat maps and date lists are up to a second old (a lost race is answered at once, so without
	// a pause a user would read the same stale map five times within it).
	const mapRefresh = 400 * time.Millisecond
	attempts := 0
	for m := range maxMaps {
		if m > 0 && !sleep(ctx, mapRefresh) {
			return OutcomeUnfinished, "stopped"
		}
		date, outcome, detail := r.pickDate(ctx, u)
		if outcome != "" {
			return outcome, detail
		}
		seats, outcome, detail := r.seatMap(ctx, u, date)
		if outcome != "" {
			return outcome, detail
		}
		u.rng.Shuffle(len(seats), func(i, j int) { seats[i], seats[j] = seats[j], seats[i] })
		for i := 0; i < len(seats); i++ {
			if attempts++; attempts > maxAttempts {
				return OutcomeNoSeat, fmt.Sprintf("made %d attempts at a seat", maxAttempts)
			}
			var held struct {
				ConcertDate string `json:"concertDate"`
				SeatNumbers []int  `json:"seatNumbers"`
			}
			body := map[string]any{"UUID": u.id, "concertDate": date, "seatNumber": seats[i]}
			if want := min(u.want, len(seats)-i); want > 1 { // several seats in one request, all or none
				body = map[string]any{"UUID": u.id, "concertDate": date, "seatNumbers": seats[i : i+want]}
			}
			res := r.send(ctx, u.rng, r.userCall(u, opReserve, http.MethodPatch, r.concertPath(""), body), &held)
			switch {
			case res.ok():
				u.seats = seatKeys(held.ConcertDate, held.SeatNumbers)
				return "", ""
			case res.status == http.StatusConflict && res.slug == slugSeatTaken:
				i += min(u.want, len(seats)-i) - 1 // the next seats of the shuffled map
				continue
			case res.status == http.StatusConflict && res.slug == slugAlreadyHolding:
				return "", "" // an earlier attempt that got no answer did hold a seat; the payment names it
			case (res.status == http.StatusConflict && res.slug == slugInProgress) ||
				(res.status == http.StatusForbidden && res.slug == slugNotAdmitted):
				// The session is busy, or its admission has not reached the workflow yet: the same seat
				// again (under a new Idempotency-Key: the old one keeps this answer).
				i--
				if !sleep(ctx, backoff(u.rng, res)) {
					return OutcomeUnfinished, "stopped"
				}
				continue
			case res.status == http.StatusGone:
				switch st := r.status(ctx, u); st {
				case statusHeld:
					return "", ""
				case statusSoldOut:
					return OutcomeSoldOut, "sold out while choosing a seat"
				case "", statusActive:
					return OutcomeFailed, "reserve: " + res.describe()
				default:
					return OutcomeExpired, "session ended " + st + " while choosing a seat"
				}
			default:
				return OutcomeFailed, "reserve: " + res.describe()
			}
		}
	}
	return OutcomeNoSeat, fmt.Sprintf("read %d seat maps without getting a seat", maxMaps)
}

// pickDate reads the dates and picks a random one with available seats. No date with any seat left means
// the sale is over for every user still waiting.
func (r *runner) pickDate(ctx context.Context, u *user) (string, Outcome, string) {
	var resp struct {
		Dates []struct {
			ConcertDate    string `json:"concertDate"`
			AvailableSeats int    `json:"availableSeats"`
		} `json:"dates"`
	}
	res := r.send(ctx, u.rng, r.userCall(u, opDates, http.MethodGet, r.concertPath(""), nil), &resp)
	if !res.ok() {
		return "", r.endedOr(ctx, u, res), "dates: " + res.describe()
	}
	var open []string
	for _, d := range resp.Dates {
		if d.AvailableSeats > 0 {
			open = append(open, d.ConcertDate)
		}
	}
	if len(open) == 0 {
		r.exhausted.Store(true)
		return "", OutcomeNoSeat, "every performance shows 0 available seats"
	}
	return open[u.rng.IntN(len(open))], "", ""
}

// seatMap returns the numbers of the AVAILABLE seats of one performance.
func (r *runner) seatMap(ctx context.Context, u *user, date string) ([]int, Outcome, string) {
	var resp struct {
		Seats []struct {
			SeatNumber int    `json:"seatNumber"`
			Status     string `json:"status"`
		} `json:"seats"`
	}
	res := r.send(ctx, u.rng, r.userCall(u, opSeats, http.MethodGet, r.concertPath("/seats?concertDate="+date), nil), &resp)
	if !res.ok() {
		return nil, r.endedOr(ctx, u, res), "seats: " + res.describe()
	}
	var free []int
	for _, s := range resp.Seats {
		if s.Status == string(booking.SeatAvailable) {
			free = append(free, s.SeatNumber)
		}
	}
	return free, "", ""
}

// pay tops the balance up to the price and pays. A payment whose session has ended meanwhile (410) is
// looked up through the session's status: a payment that went through with its answer lost shows PAID.
func (r *runner) pay(ctx context.Context, u *user) (Outcome, string) {
	// The setup topped up half of one seat's price (all of it in a stampede); an order of several seats
	// needs the rest of all of them.
	rest := r.cfg.Price - r.cfg.Price/2 + r.cfg.Price*int64(max(len(u.seats), 1)-1)
	if r.cfg.Stampede {
		rest = r.cfg.Price * int64(max(len(u.seats), 1)-1)
	}
	if rest > 0 {
		if res := r.topUp(ctx, u, opTopUp, rest); !res.ok() {
			return OutcomeFailed, "top up: " + res.describe()
		}
	}
	toppedUpAgain := false
	for range retries {
		var p struct {
			PaymentID   string `json:"paymentId"`
			ConcertDate string `json:"concertDate"`
			SeatNumbers []int  `json:"seatNumbers"`
		}
		res := r.send(ctx, u.rng, r.userCall(u, opPay, http.MethodPost, "/api/v1/payments", map[string]any{"UUID": u.id}), &p)
		switch {
		case res.ok():
			u.seats = seatKeys(p.ConcertDate, p.SeatNumbers)
			u.paymentID = p.PaymentID
			r.paidNow(u)
			return OutcomePaid, "paid " + p.PaymentID
		case res.status == http.StatusPaymentRequired && !toppedUpAgain:
			// Both top-ups should have covered the price: the answer is counted as an error; top up once
			// more and go on.
			toppedUpAgain = true
			if r.topUp(ctx, u, opTopUp, max(r.cfg.Price, 1)).ok() {
				continue
			}
			return OutcomeFailed, "pay: " + res.describe()
		case res.status == http.StatusConflict && res.slug == slugInProgress:
			if !sleep(ctx, backoff(u.rng, res)) {
				return OutcomeUnfinished, "stopped"
			}
			continue
		case res.status == http.StatusGone:
			switch st := r.status(ctx, u); st {
			case statusPaid:
				r.paidNow(u) // the payment went through; its answer was lost
				return OutcomePaid, "paid (answer lost: " + res.describe() + ")"
			case "":
				return OutcomeFailed, "pay: " + res.describe()
			default:
				return OutcomeExpired, "session ended " + st + " before the payment"
			}
		default:
			return OutcomeFailed, "pay: " + res.describe()
		}
	}
	return OutcomeFailed, "pay: no payment after retries"
}

// topUp adds amount to the user's balance.
func (r *runner) topUp(ctx context.Context, u *user, op string, amount int64) result {
	return r.send(ctx, u.rng, r.userCall(u, op, http.MethodPatch, "/api/v1/users/"+u.id+"/balance", map[string]any{"amount": amount}), nil)
}

func (r *runner) paidNow(u *user) {
	u.paidAt = time.Now()
	r.paid.Add(1)
	for {
		last := r.lastPay.Load()
		if u.paidAt.UnixNano() <= last || r.lastPay.CompareAndSwap(last, u.paidAt.UnixNano()) {
			return
		}
	}
}

// status reads the session's status once; "" if it cannot be read.
func (r *runner) status(ctx context.Context, u *user) string {
	var st struct {
		Status string `json:"status"`
	}
	if res := r.send(ctx, u.rng, r.userCall(u, opPoll, http.MethodGet, r.concertPath("/token"), nil), &st); !res.ok() {
		return ""
	}
	return st.Status
}

// endedOr turns a failed read into the user's outcome: the session's end if it has ended, else failed.
func (r *runner) endedOr(ctx context.Context, u *user, res result) Outcome {
	if res.status != http.StatusGone {
		return OutcomeFailed
	}
	if r.status(ctx, u) == statusSoldOut {
		return OutcomeSoldOut
	}
	return OutcomeExpired
}

// concertPath is the path of the run's concert, followed by rest.
func (r *runner) concertPath(rest string) string {
	return "/api/v1/concerts/" + r.cfg.ConcertCode + rest
}

// userCall is a request of u: with its token, and for a write with a fresh Idempotency-Key (one per
// logical request; send repeats it under the same key) unless IdempotencyKeys is off.
func (r *runner) userCall(u *user, op, method, path string, body any) call {
	c := call{op: op, method: method, path: path, token: u.token, body: body}
	if r.cfg.IdempotencyKeys && method != http.MethodGet {
		c.key = uuid.NewString()
	}
	return c
}

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// progress prints a progress line every ProgressEvery until the returned function is called.
func (r *runner) progress(start time.Time) (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(r.cfg.ProgressEvery)
		defer t.Stop()
		lastReq, _, _ := r.rec.counts() // setup requests are not the on-sale's
		lastAt := start
		line := func(now time.Time) {
			req, failures, conflicts := r.rec.counts()
			rps := 0.0
			if d := now.Sub(lastAt).Seconds(); d > 0 {
				rps = float64(req-lastReq) / d
			}
			lastReq, lastAt = req, now
			fmt.Fprintf(r.cfg.Progress, "[%5.1fs] arrived %d  done %d/%d  getting a token %d  waiting %d  admitted %d  paid %d  %.0f req/s  errors %d (seat conflicts %d)\n",
				now.Sub(start).Seconds(), r.started.Load(), r.finished.Load(), len(r.users), r.joining.Load(), r.waiting.Load(), r.admitted.Load(),
				r.paid.Load(), rps, failures, conflicts)
		}
		for {
			select {
			case <-done:
				line(time.Now()) // the final state
				return
			case now := <-t.C:
				line(now)
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
