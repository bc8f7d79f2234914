package loadtest

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/ticketing/concert/booking"
	"github.com/ticketing/concert/db"
)

// check counts the sold seats, looks for seats sold twice and, with a database, checks the invariants, and
// records all of it in rep.
func (r *runner) check(ctx context.Context, rep *Report) error {
	// What the users were told: the seats they paid for.
	paidSeats := map[seatKey]int{}
	for _, u := range r.users {
		if u.outcome == OutcomePaid {
			for _, k := range u.seats {
				paidSeats[k]++
			}
		}
	}
	doubleByClients := 0
	for k, n := range paidSeats {
		if n > 1 {
			doubleByClients++
			rep.Violations = append(rep.Violations, Violation{Check: "seat paid by two users",
				Detail: fmt.Sprintf("%d users were told they bought seat %d on %s", n, k.Number, k.Date)})
		}
	}

	if r.cfg.DatabaseURL != "" {
		store, err := db.Open(ctx, r.cfg.DatabaseURL)
		if err != nil {
			return err
		}
		defer func() { _ = store.Close() }()
		return r.checkDatabase(ctx, store, rep, doubleByClients)
	}
	return r.checkAPI(ctx, rep, paidSeats, doubleByClients)
}

// checkDatabase counts sold seats in the database and checks the invariants there: the store's own checks
// (db.(*Store).CheckInvariants, over the whole database) and the run's concert's admission checks.
func (r *runner) checkDatabase(ctx context.Context, store *db.Store, rep *Report, doubleByClients int) error {
	rep.SoldSeatsSource = "database"
	rep.InvariantsChecked = "database (db.CheckInvariants over the whole database, and this concert's admission)"
	outcome, err := store.ConcertOutcome(ctx, r.cfg.ConcertCode)
	if err != nil {
		return err
	}
	rep.SoldSeats = outcome.SoldSeats
	rep.DoubleSold = doubleByClients + outcome.SeatsPaidTwice
	// Every payment a user was told about is the payment of record of its seat.
	for _, u := range r.users {
		if u.outcome == OutcomePaid && u.paymentID != "" && !outcome.PaymentIDs[u.paymentID] {
			rep.Violations = append(rep.Violations, Violation{Check: "payment lost",
				Detail: fmt.Sprintf("user %s was told payment %s bought seats %v; the database has no such payment", u.id, u.paymentID, u.seats)})
		}
	}

	found, err := store.CheckInvariants(ctx, r.cfg.InvariantGrace)
	if err != nil {
		return err
	}
	for _, v := range found {
		rep.Violations = append(rep.Violations, Violation{Check: v.Invariant, Detail: v.Subject + ": " + v.Detail})
	}
	admission, err := store.CheckAdmission(ctx, r.cfg.ConcertCode)
	if err != nil {
		return err
	}
	for _, v := range admission {
		rep.Violations = append(rep.Violations, Violation{Check: v.Invariant, Detail: v.Subject + ": " + v.Detail})
	}
	if rep.SoldSeats != rep.PaidSeats {
		rep.Violations = append(rep.Violations, Violation{Check: "sold seats match payments",
			Detail: fmt.Sprintf("%d seats are SOLD but users paid for %d", rep.SoldSeats, rep.PaidSeats)})
	}
	rep.InvariantsOK = len(rep.Violations) == 0 && rep.DoubleSold == 0
	return nil
}

// checkAPI counts sold seats from the seat maps, read with the token of a session that still holds a seat
// (an abandoning user's): an ended session's token no longer opens seat maps. Without such a token only the
// users' own payments can be counted.
func (r *runner) checkAPI(ctx context.Context, rep *Report, paidSeats map[seatKey]int, doubleByClients int) error {
	rep.InvariantsChecked = "api (seat maps against payments; give --database-url for the database invariants)"
	var holder *user
	for _, u := range r.users {
		if u.outcome == OutcomeAbandoned && u.token != "" {
			holder = u
			break
		}
	}
	// The API may serve a seat map up to a second stale (a read cache), so a map that does not yet show
	// every payment is read again after that second, a few times, before it counts as a violation.
	var sold map[seatKey]bool
	mapsRead := holder != nil
	for attempt := 0; mapsRead && attempt < staleReads; attempt++ {
		if attempt > 0 && !sleep(ctx, seatMapStaleness) {
			break
		}
		if sold, mapsRead = r.finalSeatMaps(ctx, holder); mapsRead && consistent(sold, paidSeats) {
			break
		}
	}
	if !mapsRead {
		rep.SoldSeatsSource = "payments (no token could read the final seat maps)"
		rep.SoldSeats = len(paidSeats)
		rep.DoubleSold = doubleByClients + max(rep.PaidSeats-rep.SoldSeats, 0)
		rep.InvariantsOK = rep.DoubleSold == 0 && len(rep.Violations) == 0
		return nil
	}
	rep.SoldSeatsSource = "seat map"
	rep.SoldSeats = len(sold)
	rep.DoubleSold = doubleByClients + max(rep.PaidSeats-rep.SoldSeats, 0)
	var missing []string
	for k := range paidSeats {
		if !sold[k] {
			missing = append(missing, fmt.Sprintf("%s #%d", k.Date, k.Number))
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		rep.Violations = append(rep.Violations, Violation{Check: "paid seats are SOLD",
			Detail: fmt.Sprintf("%d paid seats are not SOLD in the seat map: %s", len(missing), strings.Join(first(missing, 10), ", "))})
	}
	if rep.SoldSeats != rep.PaidSeats {
		rep.Violations = append(rep.Violations, Violation{Check: "sold seats match payments",
			Detail: fmt.Sprintf("the seat maps show %d SOLD seats but users paid for %d", rep.SoldSeats, rep.PaidSeats)})
	}
	rep.InvariantsOK = rep.DoubleSold == 0 && len(rep.Violations) == 0
	return nil
}

// How the final seat maps are read: at most staleReads times, seatMapStaleness apart (the API's seat-map
// cache may be up to a second stale).
const (
	staleReads       = 4
	seatMapStaleness = 1200 * time.Millisecond
)

// finalSeatMaps reads the seat map of every performance with holder's token and returns the SOLD seats;
// false if a map could not be read (the hold may have run out meanwhile).
func (r *runner) finalSeatMaps(ctx context.Context, holder *user) (map[seatKey]bool, bool) {
	sold := map[seatKey]bool{}
	for _, date := range r.dates {
		var resp struct {
			Seats []struct {
				SeatNumber int    `json:"seatNumber"`
				Status     string `json:"status"`
			} `json:"seats"`
		}
		res := r.send(ctx, holder.rng, r.userCall(holder, opFinalSeats, http.MethodGet, r.concertPath("/seats?concertDate="+date), nil), &resp)
		if !res.ok() {
			return nil, false
		}
		for _, s := range resp.Seats {
			if s.Status == string(booking.SeatSold) {
				sold[seatKey{Date: date, Number: s.SeatNumber}] = true
			}
		}
	}
	return sold, true
}

// consistent reports whether the seat maps show exactly the seats users paid for as SOLD.
func consistent(sold map[seatKey]bool, paid map[seatKey]int) bool {
	if len(sold) != len(paid) {
		return false
	}
	for k := range paid {
		if !sold[k] {
			return false
		}
	}
	return true
}

func first(s []string, n int) []string { return s[:min(len(s), n)] }

// entrance measures the entrance baseline on the service's database and sets the entrance ratio.
func (r *runner) entrance(ctx context.Context, rep *Report) error {
	store, err := db.Open(ctx, r.cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer func() { _ = store.Close() }()
	pool := r.cfg.EntrancePool
	if pool <= 0 {
		pool = 32
	}
	store.SetMaxConns(pool)
	e, err := store.EntranceBaseline(ctx, max(r.cfg.Users, 1000), pool)
	if err != nil {
		return err
	}
	e.InsertsPerSecond = round(e.InsertsPerSecond, 1)
	e.Seconds = round(e.Seconds, 3)
	rep.Entrance = &e
	if e.InsertsPerSecond > 0 {
		rep.EntranceRatio = round(rep.TokensPerSecond/e.InsertsPerSecond, 3)
	}
	return nil
}
