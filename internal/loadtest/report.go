package loadtest

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ticketing/concert/db"
)

// Report is what a run measured. The JSON names are the interface of `concert loadtest --json`; the README
// of the performance work and its scripts read them.
//
// Definitions:
//   - bookingsPerSecond: paid bookings divided by bookingSeconds, the time from the moment the first token
//     request was sent to the moment the last successful payment answer arrived.
//   - <op>P50Ms / <op>P99Ms: nearest-rank percentiles of the response time of every answered request of
//     that operation (any status, so a reserve that lost its seat with 409 counts too); requests that got
//     no answer are not timed and are counted under errors["transport"].
//   - admissionLagP99Ms: for each user that waited in the queue, the time from its admission to the status
//     poll whose answer first showed it ACTIVE. The admission instant is activeUntil minus the admission
//     window (the service sets both from one database clock reading when it admits), so it includes the
//     admission step's own delay and the client's poll interval (PollMax bounds it). Users ACTIVE in their
//     token answer have a lag of 0 by definition and are left out of the percentiles (they are counted in
//     admittedImmediately).
//   - errors: every answer outside 2xx by status code, and "transport" for requests that got no answer;
//     errorsByRequest splits them by "<operation> <status> <problem slug>". seatConflicts is the part that
//     is the expected outcome of a race (reserve 409 seat-taken); unexpectedErrors is the rest.
//   - soldSeats: seats SOLD at the end, from the database when a database URL was given, else from the
//     seat maps read with a token still holding a seat, else the distinct seats users paid for
//     (soldSeatsSource says which).
//   - doubleSold: seats that more than one party bought: seats two users were told they paid for, plus,
//     from the database, seats with more than one payment row; without a database, paid bookings beyond the
//     seats the seat maps show SOLD.
//   - invariantsOk: doubleSold is 0, soldSeats equals paid, and (with a database) every invariant check
//     passed (violations lists those that did not).
//   - ratio (with --baseline): bookingsPerSecond / baselineSessionsPerSecond, against the same-shape
//     baseline: sessions that make a paid booking's Temporal calls (start, admission signal for the share
//     that waited, reserve and pay updates, two or three search-attribute upserts) without its logic
//     (baseline.shape says which). It is the share of Temporal's own rate the booking logic keeps.
type Report struct {
	ConcertCode  string  `json:"concertCode"`
	Users        int     `json:"users"`
	Seats        int     `json:"seats"`
	Dates        int     `json:"dates"`
	MaxActive    int     `json:"maxActive"`
	Concurrency  int     `json:"concurrency"`
	AbandonShare float64 `json:"abandonShare"`
	RampSeconds  float64 `json:"rampSeconds"`
	Seed         uint64  `json:"seed"`

	SetupSeconds   float64 `json:"setupSeconds"`
	ElapsedSeconds float64 `json:"elapsedSeconds"`
	BookingSeconds float64 `json:"bookingSeconds"`

	BookingsPerSecond float64 `json:"bookingsPerSecond"`
	RequestsPerSecond float64 `json:"requestsPerSecond"`
	Requests          int     `json:"requests"`

	Outcomes   map[string]int `json:"outcomes"`
	UsersEnded int            `json:"usersEnded"`
	Paid       int            `json:"paid"`
	// PaidSeats counts the seats the paid users bought (more than Paid when orders hold several).
	PaidSeats int `json:"paidSeats"`
	Abandoned int `json:"abandoned"`
	// Left counts users who held a seat and gave it back by leaving.
	Left int `json:"left"`
	// PreQueued counts users who asked before the sale opened (--opens-in) and waited for the draw.
	PreQueued int `json:"preQueued"`

	TokenP50Ms float64 `json:"tokenP50Ms"`
	TokenP99Ms float64 `json:"tokenP99Ms"`
	TokenMaxMs float64 `json:"tokenMaxMs"`
	// TokensIssued and TokensPerSecond: tokens answered 2xx, divided by the time from the first token
	// request to the last token answer.
	TokensIssued    int     `json:"tokensIssued"`
	TokensPerSecond float64 `json:"tokensPerSecond"`
	PollP99Ms       float64 `json:"pollP99Ms"`
	DatesP99Ms      float64 `json:"datesP99Ms"`
	SeatsP50Ms      float64 `json:"seatsP50Ms"`
	SeatsP99Ms      float64 `json:"seatsP99Ms"`
	ReserveP50Ms    float64 `json:"reserveP50Ms"`
	ReserveP99Ms    float64 `json:"reserveP99Ms"`
	TopUpP99Ms      float64 `json:"topUpP99Ms"`
	PayP50Ms        float64 `json:"payP50Ms"`
	PayP99Ms        float64 `json:"payP99Ms"`

	AdmissionLagP50Ms   float64 `json:"admissionLagP50Ms"`
	AdmissionLagP99Ms   float64 `json:"admissionLagP99Ms"`
	AdmissionLagMaxMs   float64 `json:"admissionLagMaxMs"`
	AdmittedImmediately int     `json:"admittedImmediately"`
	AdmittedAfterWait   int     `json:"admittedAfterWait"`
	// AdmissionLagWarning is set when a lag came out clearly negative: the admission window given to the
	// load generator is not the service's.
	AdmissionLagWarning string `json:"admissionLagWarning,omitempty"`

	Latency          map[string]Latency `json:"latency"`
	Errors           map[string]int     `json:"errors"`
	ErrorsByRequest  map[string]int     `json:"errorsByRequest"`
	SeatConflicts    int                `json:"seatConflicts"`
	UnexpectedErrors int                `json:"unexpectedErrors"`
	// FailureSamples shows a few of the failed users' last answers, to start an investigation from.
	FailureSamples []string `json:"failureSamples,omitempty"`

	SoldSeats         int         `json:"soldSeats"`
	SoldSeatsSource   string      `json:"soldSeatsSource"`
	DoubleSold        int         `json:"doubleSold"`
	InvariantsOK      bool        `json:"invariantsOk"`
	InvariantsChecked string      `json:"invariantsChecked"`
	Violations        []Violation `json:"violations"`

	Baseline *BaselineResult `json:"baseline,omitempty"`
	// BaselineSessionsPerSecond and Ratio (bookingsPerSecond / baselineSessionsPerSecond, against the
	// same-shape baseline) are set with --baseline.
	BaselineSessionsPerSecond float64 `json:"baselineSessionsPerSecond,omitempty"`
	Ratio                     float64 `json:"ratio,omitempty"`

	// Entrance is the entrance baseline (Config.EntranceBaseline): plain inserts of session-like rows;
	// EntranceRatio is tokensPerSecond / its insertsPerSecond.
	Entrance      *db.EntranceResult `json:"entrance,omitempty"`
	EntranceRatio float64            `json:"entranceRatio,omitempty"`
}

// Violation is one broken promise the checks found.
type Violation struct {
	Check  string `json:"check"`
	Detail string `json:"detail"`
}

// report builds the report of the booking run; the checks fill in the rest.
func (r *runner) report(setup time.Duration, start, end time.Time) *Report {
	lat, errs, byReq := r.rec.summary()
	requests, failures, conflicts := r.rec.counts()
	rep := &Report{
		ConcertCode: r.cfg.ConcertCode, Users: r.cfg.Users, Seats: r.cfg.Seats * r.cfg.Dates, Dates: r.cfg.Dates,
		MaxActive: r.cfg.MaxActive, Concurrency: r.cfg.Concurrency, AbandonShare: r.cfg.Abandon,
		RampSeconds: r.cfg.Ramp.Seconds(), Seed: r.cfg.Seed,
		SetupSeconds: round(setup.Seconds(), 3), ElapsedSeconds: round(end.Sub(start).Seconds(), 3),
		Outcomes: map[string]int{}, Latency: lat, Errors: errs, ErrorsByRequest: byReq,
		SeatConflicts: conflicts, Violations: []Violation{},
	}
	// Setup requests are not part of the on-sale's request rate.
	for _, op := range []string{opCreateConcert, opCreateUser, opSetupTopUp} {
		requests -= lat[op].Count
	}
	rep.Requests = requests
	rep.UnexpectedErrors = failures - conflicts
	if s := end.Sub(start).Seconds(); s > 0 {
		rep.RequestsPerSecond = round(float64(requests)/s, 1)
	}
	rep.TokenP50Ms, rep.TokenP99Ms, rep.TokenMaxMs = lat[opToken].P50Ms, lat[opToken].P99Ms, lat[opToken].MaxMs
	rep.TokensIssued = int(r.tokens.Load())
	if first, last := r.firstToken.Load(), r.lastToken.Load(); first > 0 && last > first {
		rep.TokensPerSecond = round(float64(rep.TokensIssued)/time.Duration(last-first).Seconds(), 1)
	}
	rep.PollP99Ms, rep.DatesP99Ms = lat[opPoll].P99Ms, lat[opDates].P99Ms
	rep.SeatsP50Ms, rep.SeatsP99Ms = lat[opSeats].P50Ms, lat[opSeats].P99Ms
	rep.ReserveP50Ms, rep.ReserveP99Ms = lat[opReserve].P50Ms, lat[opReserve].P99Ms
	rep.TopUpP99Ms = lat[opTopUp].P99Ms
	rep.PayP50Ms, rep.PayP99Ms = lat[opPay].P50Ms, lat[opPay].P99Ms

	var lags []time.Duration
	minLag := time.Duration(math.MaxInt64)
	for _, u := range r.users {
		rep.Outcomes[string(u.outcome)]++
		if u.outcome != OutcomeUnfinished && u.outcome != "" {
			rep.UsersEnded++
		}
		switch u.outcome {
		case OutcomePaid:
			rep.Paid++
			rep.PaidSeats += len(u.seats)
		case OutcomeAbandoned:
			rep.Abandoned++
		case OutcomeLeft:
			rep.Left++
		case OutcomeFailed:
			if len(rep.FailureSamples) < 5 {
				rep.FailureSamples = append(rep.FailureSamples, u.detail)
			}
		}
		if u.immediate {
			rep.AdmittedImmediately++
		}
		if u.preQueued {
			rep.PreQueued++
		}
		if u.lagValid {
			rep.AdmittedAfterWait++
			minLag = min(minLag, u.admittedLag)
			lags = append(lags, max(u.admittedLag, 0))
		}
	}
	if len(lags) > 0 {
		s := summarise(lags)
		rep.AdmissionLagP50Ms, rep.AdmissionLagP99Ms, rep.AdmissionLagMaxMs = s.P50Ms, s.P99Ms, s.MaxMs
		if minLag < -time.Second {
			rep.AdmissionLagWarning = fmt.Sprintf("a lag of %s is negative: is --admission-window %s the service's CONCERT_ADMISSION_WINDOW?",
				minLag.Round(time.Millisecond), r.cfg.AdmissionWindow)
		}
	}
	if first, last := r.firstToken.Load(), r.lastPay.Load(); first > 0 && last > first {
		d := time.Duration(last - first)
		rep.BookingSeconds = round(d.Seconds(), 3)
		rep.BookingsPerSecond = round(float64(rep.Paid)/d.Seconds(), 2)
	}
	return rep
}

// setBaseline adds a baseline measurement and the ratio to it.
func (rep *Report) setBaseline(b BaselineResult) {
	rep.Baseline = &b
	rep.BaselineSessionsPerSecond = b.SessionsPerSecond
	if b.SessionsPerSecond > 0 {
		rep.Ratio = round(rep.BookingsPerSecond/b.SessionsPerSecond, 3)
	}
}

func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}

// WriteTable prints the report for people.
func (rep *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k string, format string, args ...any) {
		fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...))
	}
	row("concert", "%s: %d users, %d performance(s) x %d seats, maxActive %d, concurrency %d, abandon %.2f, ramp %gs, seed %d",
		rep.ConcertCode, rep.Users, rep.Dates, rep.Seats/max(rep.Dates, 1), rep.MaxActive, rep.Concurrency, rep.AbandonShare, rep.RampSeconds, rep.Seed)
	row("time", "setup %.1fs, run %.1fs, first token to last payment %.1fs", rep.SetupSeconds, rep.ElapsedSeconds, rep.BookingSeconds)
	row("bookings/s", "%.2f", rep.BookingsPerSecond)
	row("tokens", "%d issued, %.1f/s; p50 %.1f ms, p99 %.1f ms, max %.1f ms", rep.TokensIssued, rep.TokensPerSecond,
		rep.TokenP50Ms, rep.TokenP99Ms, rep.TokenMaxMs)
	if e := rep.Entrance; e != nil {
		row("entrance", "%.0f plain inserts/s (%d through %d connections); tokens/s ratio %.3f",
			e.InsertsPerSecond, e.Inserts, e.Workers, rep.EntranceRatio)
	}
	if rep.Baseline != nil {
		row("baseline sessions/s", "%.2f (%d sessions, %d concurrent, p50 %.1f ms, p99 %.1f ms)", rep.BaselineSessionsPerSecond,
			rep.Baseline.Sessions, rep.Baseline.Concurrency, rep.Baseline.P50Ms, rep.Baseline.P99Ms)
		row("baseline shape", "%s, no database", rep.Baseline.Shape)
		row("ratio", "%.3f bookings/s per same-shape baseline session/s", rep.Ratio)
	}
	row("requests", "%d (%.1f/s)", rep.Requests, rep.RequestsPerSecond)
	outs := make([]string, 0, len(rep.Outcomes))
	for _, k := range sortedKeys(rep.Outcomes) {
		outs = append(outs, fmt.Sprintf("%s %d", k, rep.Outcomes[k]))
	}
	row("users", "%d/%d ended: %s", rep.UsersEnded, rep.Users, strings.Join(outs, ", "))
	if rep.PreQueued > 0 {
		row("pre-queue", "%d users asked before the opening and were drawn at it", rep.PreQueued)
	}
	row("admission lag", "p50 %.1f ms, p99 %.1f ms, max %.1f ms over %d users who waited (%d admitted at once)",
		rep.AdmissionLagP50Ms, rep.AdmissionLagP99Ms, rep.AdmissionLagMaxMs, rep.AdmittedAfterWait, rep.AdmittedImmediately)
	if rep.AdmissionLagWarning != "" {
		row("", "warning: %s", rep.AdmissionLagWarning)
	}
	row("sold seats", "%d (%s), paid %d in %d orders, double sold %d", rep.SoldSeats, rep.SoldSeatsSource, rep.PaidSeats, rep.Paid, rep.DoubleSold)
	row("invariants", "ok=%t (%s)", rep.InvariantsOK, rep.InvariantsChecked)
	for _, v := range rep.Violations {
		row("", "%s: %s", v.Check, v.Detail)
	}
	errs := make([]string, 0, len(rep.Errors))
	for _, k := range sortedKeys(rep.Errors) {
		errs = append(errs, fmt.Sprintf("%s: %d", k, rep.Errors[k]))
	}
	if len(errs) == 0 {
		errs = append(errs, "none")
	}
	row("errors", "%s (seat conflicts %d, unexpected %d)", strings.Join(errs, ", "), rep.SeatConflicts, rep.UnexpectedErrors)
	for _, k := range sortedKeys(rep.ErrorsByRequest) {
		row("", "%s: %d", k, rep.ErrorsByRequest[k])
	}
	for _, s := range rep.FailureSamples {
		row("failure", "%s", s)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	ops := []string{opToken, opPoll, opDates, opSeats, opReserve, opTopUp, opPay, opCreateConcert, opCreateUser, opSetupTopUp}
	for _, op := range sortedKeys(rep.Latency) {
		if !slices.Contains(ops, op) {
			ops = append(ops, op)
		}
	}
	fmt.Fprintf(w, "%-14s %7s %9s %9s %9s %9s\n", "request", "count", "p50 ms", "p90 ms", "p99 ms", "max ms")
	for _, op := range ops {
		if l, ok := rep.Latency[op]; ok {
			fmt.Fprintf(w, "%-14s %7d %9.1f %9.1f %9.1f %9.1f\n", op, l.Count, l.P50Ms, l.P90Ms, l.P99Ms, l.MaxMs)
		}
	}
	return nil
}
