//go:build unix

package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// requestTimeout bounds one HTTP request. A Workflow Update waits for a worker; after a SIGKILL the next
// worker picks the workflow task up only when the dead one's task times out (10 s), so this is generous.
const requestTimeout = 25 * time.Second

// apiClient calls the booking API the way a careful real client does: it retries transport errors, 5xx, 429
// and "still in progress" conflicts with backoff, sending the same Idempotency-Key again, and treats every
// other 4xx by the contract. It counts what it had to retry and every answer it got.
type apiClient struct {
	base  string
	http  *http.Client
	stats *clientStats
}

// clientStats is what every simulated user saw, shared by all of them.
type clientStats struct {
	mu        sync.Mutex
	retries   map[string]int      // why a request was sent again
	answers   map[string]int      // "reserve 409 seat-taken" → count
	anomalies map[string][]string // kind → sessions (or users): answers the contract does not allow
	losses    map[string][]string // kind → sessions: a result the system reached but the client lost
}

func newClientStats() *clientStats {
	return &clientStats{retries: map[string]int{}, answers: map[string]int{}, anomalies: map[string][]string{}, losses: map[string][]string{}}
}

func (s *clientStats) retry(why string) {
	s.mu.Lock()
	s.retries[why]++
	s.mu.Unlock()
}

func (s *clientStats) answer(op string, r reply) {
	key := fmt.Sprintf("%s %d", op, r.status)
	if p := r.problem(); p != "" {
		key += " " + p
	}
	s.mu.Lock()
	s.answers[key]++
	s.mu.Unlock()
}

// anomaly records something a correct system should not do to a client, with who it happened to.
func (s *clientStats) anomaly(kind, who string) {
	s.mu.Lock()
	s.anomalies[kind] = append(s.anomalies[kind], who)
	s.mu.Unlock()
}

// loss records a result the system reached (a hold, a payment) that the client was not given, or could
// not use, because of a crash: "crashes lose nothing" is broken for this client although the store of
// record is consistent.
func (s *clientStats) loss(kind, who string) {
	s.mu.Lock()
	s.losses[kind] = append(s.losses[kind], who)
	s.mu.Unlock()
}

func (s *clientStats) totalRetries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.retries {
		n += v
	}
	return n
}

// reply is one decoded answer.
type reply struct {
	status int
	body   map[string]any
	raw    []byte
	header http.Header
}

func (r reply) str(k string) string {
	s, _ := r.body[k].(string)
	return s
}

func (r reply) num(k string) int64 {
	f, _ := r.body[k].(float64)
	return int64(f)
}

// problem is the slug of a problem+json answer ("seat-taken"), or "".
func (r reply) problem() string {
	if r.status < 400 {
		return ""
	}
	return strings.TrimPrefix(r.str("type"), "/problems/")
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.raw)) }

// once sends one request.
func (c *apiClient) once(ctx context.Context, method, path, token, key string, body any) (reply, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return reply{}, err
		}
		rd = bytes.NewReader(raw)
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return reply{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	r := reply{status: resp.StatusCode, raw: raw, header: resp.Header}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &r.body)
	}
	return r, nil
}

// call sends a request until it gets an answer that is not worth retrying, or ctx ends. op names the
// operation in the statistics.
func (c *apiClient) call(ctx context.Context, op, method, path, token, key string, body any) (reply, error) {
	for attempt := 0; ; attempt++ {
		r, err := c.once(ctx, method, path, token, key, body)
		var why string
		wait := backoff(attempt)
		switch {
		case ctx.Err() != nil:
			return reply{}, fmt.Errorf("%s: gave up: %w (last error: %v, last answer: %v)", op, ctx.Err(), err, r)
		case err != nil:
			why = "transport error"
			if errors.Is(err, context.DeadlineExceeded) {
				why = "request timeout"
			}
		case r.status >= 500:
			why = fmt.Sprintf("%d %s", r.status, r.problem())
		case r.status == http.StatusTooManyRequests:
			why = "429"
			if s, err := strconv.Atoi(r.header.Get("Retry-After")); err == nil {
				wait = time.Duration(s) * time.Second
			}
		case r.status == http.StatusConflict && (r.problem() == "idempotency-key-in-progress" || r.problem() == "request-in-progress"):
			why = "409 " + r.problem()
			wait = max(wait, 300*time.Millisecond)
		default:
			c.stats.answer(op, r)
			return r, nil
		}
		c.stats.retry(op + ": " + why)
		if !sleep(ctx, wait) {
			return reply{}, fmt.Errorf("%s: gave up: %w (last: %s)", op, ctx.Err(), why)
		}
	}
}

// backoff is the pause before retry attempt+1: 100 ms doubling to 2 s, with jitter.
func backoff(attempt int) time.Duration {
	d := 100 * time.Millisecond << min(attempt, 5)
	d = min(d, 2*time.Second)
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until ctx ends; it reports whether the full d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// seatRef is one seat of the concert.
type seatRef struct {
	Date   string
	Number int
}

func (s seatRef) String() string { return fmt.Sprintf("%s #%d", s.Date, s.Number) }

// seatsOf reads the seats of a hold's or a payment's answer: concertDate and every number of seatNumbers.
func seatsOf(r reply) []seatRef {
	nums, _ := r.body["seatNumbers"].([]any)
	out := make([]seatRef, 0, len(nums))
	for _, n := range nums {
		f, _ := n.(float64)
		out = append(out, seatRef{Date: r.str("concertDate"), Number: int(f)})
	}
	return out
}

// sameSeats reports whether a and b name the same seats, in any order.
func sameSeats(a, b []seatRef) bool {
	return len(a) == len(b) && len(missingSeats(a, b)) == 0
}

// missingSeats lists the seats of want that got lacks.
func missingSeats(want, got []seatRef) []seatRef {
	var out []seatRef
	for _, s := range want {
		if !slices.Contains(got, s) {
			out = append(out, s)
		}
	}
	return out
}

// user is one simulated buyer: it takes a token, waits its turn, picks random free seats, holds them, and
// then either pays (topping up first) or walks away and lets the hold lapse. A user whose order is of
// several seats holds them in one request, or holds one and adds the rest to its held order.
type user struct {
	id       string
	concert  string
	dates    []string
	price    int64
	opensAt  time.Time // the concert's opening, if its sale opens at a time
	want     int       // seats in the order: 1, or up to the concert's maxSeatsPerOrder
	addLater bool      // holds the first seat of a larger order alone, then adds the rest while HELD
	abandon  bool      // walks away after holding a seat
	split    bool      // tops up half the price first, to be refused once with 402
	leave    bool      // walks away as soon as it has its token, leaving its admission to lapse
	rng      *rand.Rand
	c        *apiClient
	onToken  func() // if set, called once the token is answered (the chaos times a crash by it)

	// Results, read after run returns.
	sessions    []string  // every session the user was given
	toldOpensAt bool      // an answer told the user to wait for the sale's opening (WAITING with opensAt)
	held        []seatRef // every seat a hold confirmed with 200
	added       bool      // a hold added seats to the held order
	heldUntil   time.Time
	payment     string    // payment ID confirmed with 201 (or found after a lost answer)
	paidSeats   []seatRef // every seat the 201 said was bought
	paidAmount  int64
	paidLate    bool   // the payment was learnt from the status after a lost answer, not from a 201
	payCalled   bool   // the user asked to pay at least once
	final       string // the last status the user saw
	err         error  // why the user stopped early
}

// session is the user's current session ID: the part of the token before the signature.
func (u *user) session() string {
	if len(u.sessions) == 0 {
		return "user " + u.id
	}
	return u.sessions[len(u.sessions)-1]
}

func (u *user) key(op string) string {
	return fmt.Sprintf("chaos-%s-%s-%d", op, u.id[:8], u.rng.Uint64())
}

// run plays the user's visit until the session ends, the user walks away, or ctx ends.
func (u *user) run(ctx context.Context) {
	u.err = u.visit(ctx)
}

func (u *user) visit(ctx context.Context) error {
	token, err := u.token(ctx)
	if err != nil {
		return err
	}
	if u.leave {
		return nil
	}
	for {
		st, err := u.status(ctx, token)
		if err != nil {
			return err
		}
		switch st.str("status") {
		case "WAITING":
			wait := time.Duration(st.num("estimatedWaitSeconds")) * time.Second
			sleep(ctx, min(max(wait, 200*time.Millisecond), time.Second))
		case "ACTIVE":
			if err := u.hold(ctx, token); err != nil {
				return err
			}
		case "HELD":
			if len(u.held) == 0 {
				// The database says the session holds a seat, but no reserve answered 200.
				u.c.stats.loss("HELD without a confirmed hold", u.session())
			}
			if u.abandon {
				return nil
			}
			if len(u.held) > 0 && len(u.held) < u.want {
				// The rest of the order; whatever it gets, the user pays for what it holds.
				if err := u.hold(ctx, token); err != nil {
					return err
				}
			}
			return u.payHeld(ctx, token)
		default: // ended
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// token asks for a queue token.
func (u *user) token(ctx context.Context) (string, error) {
	r, err := u.c.call(ctx, "token", http.MethodPost, "/api/v1/concerts/"+u.concert+"/token", "", "", map[string]any{"UUID": u.id})
	if err != nil {
		return "", err
	}
	if r.status != http.StatusCreated && r.status != http.StatusOK {
		u.c.stats.anomaly("token refused", "user "+u.id)
		return "", fmt.Errorf("token: %v", r)
	}
	token := r.str("token")
	id, _, ok := strings.Cut(token, ".")
	if !ok {
		return "", fmt.Errorf("token %q has no session ID", token)
	}
	u.sessions = append(u.sessions, id)
	u.final = r.str("status")
	u.checkOpening(r)
	if u.onToken != nil {
		u.onToken()
	}
	return token, nil
}

// checkOpening judges a token or status answer by the concert's opening: only a waiting session is told
// when the sale opens, and it is told the opening the admin set; nobody is admitted before it. The answer
// was sent after PostgreSQL admitted the session, and both read the same clock.
func (u *user) checkOpening(r reply) {
	status := r.str("status")
	if raw := r.str("opensAt"); raw != "" {
		at, err := time.Parse(time.RFC3339Nano, raw)
		switch {
		case status != "WAITING":
			u.c.stats.anomaly("opensAt told to a session that is "+status, u.session())
		case err != nil || !at.Equal(u.opensAt):
			u.c.stats.anomaly("opensAt told is not the concert's opening", u.session())
		default:
			u.toldOpensAt = true
		}
	}
	if (status == "ACTIVE" || status == "HELD") && time.Now().Before(u.opensAt) {
		u.c.stats.anomaly("admitted before the sale opened", u.session())
	}
}

// status polls the session.
func (u *user) status(ctx context.Context, token string) (reply, error) {
	r, err := u.c.call(ctx, "status", http.MethodGet, "/api/v1/concerts/"+u.concert+"/token", token, "", nil)
	if err != nil {
		return r, err
	}
	if r.status != http.StatusOK {
		u.c.stats.anomaly("status poll refused", u.session())
		return r, fmt.Errorf("status: %v", r)
	}
	u.final = r.str("status")
	u.checkOpening(r)
	return r, nil
}

// hold tries to hold the seats the user still wants: from ACTIVE its order (or, adding later, the order's
// first seat) on a date with free seats, from HELD the rest of its order on the held date. It returns nil
// when the caller should go on: after a hold, after the session moved on, or when no seat was free for now.
func (u *user) hold(ctx context.Context, token string) error {
	adding := len(u.held) > 0
	dates, n := u.dates, u.want-len(u.held)
	switch {
	case adding:
		dates = []string{u.held[0].Date} // an order is for one performance
	case u.addLater:
		n = 1
	}
	for try := 0; try < 6; try++ {
		free, r, err := u.freeSeats(ctx, token, dates)
		if err != nil {
			return err
		}
		if r.status != http.StatusOK {
			return nil // 403 (not admitted after all) or 410 (ended): the status says which
		}
		if len(free) == 0 {
			if !adding {
				sleep(ctx, 500*time.Millisecond) // every seat is held or sold; a hold may lapse
			}
			return nil
		}
		u.rng.Shuffle(len(free), func(i, j int) { free[i], free[j] = free[j], free[i] })
		want := free[:min(n, len(free))]
		body := map[string]any{"UUID": u.id, "concertDate": want[0].Date}
		if len(want) == 1 {
			body["seatNumber"] = want[0].Number
		} else {
			nums := make([]int, len(want))
			for i, s := range want {
				nums[i] = s.Number
			}
			body["seatNumbers"] = nums
		}
		r, err = u.c.call(ctx, "reserve", http.MethodPatch, "/api/v1/concerts/"+u.concert, token, u.key("reserve"), body)
		if err != nil {
			return err
		}
		switch {
		case r.status == http.StatusOK:
			got := seatsOf(r)
			until, _ := time.Parse(time.RFC3339Nano, r.str("heldUntil"))
			lapsed := time.Now().After(until)
			switch {
			case lapsed && !sameSeats(got, want):
				// A worker died after the store held the seats, and the reserve's retry, after the window,
				// got back what other sessions had left of the lapsed hold.
				u.c.stats.loss("reserve 200 for part of the seats asked, of a hold that had lapsed", u.session())
			case lapsed:
				u.c.stats.loss("reserve 200 for a hold that had lapsed", u.session())
			case !sameSeats(got, want):
				u.c.stats.anomaly("hold answered with other seats", u.session())
			}
			if r.num("price") != int64(len(got))*u.price {
				u.c.stats.anomaly("hold priced otherwise than its seats", u.session())
			}
			u.held = append(u.held, got...)
			if adding {
				u.added = true
			} else {
				u.heldUntil = until
			}
			return nil
		case r.status == http.StatusConflict && r.problem() == "seat-taken":
			continue
		case r.status == http.StatusConflict && r.problem() == "already-holding" && !adding:
			// No earlier reserve of this session answered 200, yet the session holds a seat.
			u.c.stats.loss("reserve 409 already-holding without a confirmed hold", u.session())
			return nil
		case r.status == http.StatusConflict && r.problem() == "already-holding":
			// An order that may hold more takes further seats until its window ends.
			if time.Now().Before(u.heldUntil) {
				u.c.stats.anomaly("reserve 409 already-holding while adding within the order's window", u.session())
			}
			return nil
		case r.status == http.StatusConflict && r.problem() == "order-full":
			// The order holds more than the holds confirmed to the client.
			u.c.stats.loss("reserve 409 order-full beyond the confirmed holds", u.session())
			return nil
		case r.status == http.StatusForbidden && r.problem() == "not-admitted",
			r.status == http.StatusGone,
			r.status == http.StatusConflict && r.problem() == "request-in-progress":
			return nil
		default:
			u.c.stats.anomaly("reserve: unexpected answer "+strconv.Itoa(r.status)+" "+r.problem(), u.session())
			return fmt.Errorf("reserve %v: %v", want, r)
		}
	}
	return nil
}

// freeSeats reads the seat map of a random one of dates, then of the others, and returns the available
// seats of the first date that has any.
func (u *user) freeSeats(ctx context.Context, token string, dates []string) ([]seatRef, reply, error) {
	first := u.rng.IntN(len(dates))
	var r reply
	for i := range dates {
		date := dates[(first+i)%len(dates)]
		var err error
		r, err = u.c.call(ctx, "seats", http.MethodGet, "/api/v1/concerts/"+u.concert+"/seats?concertDate="+url.QueryEscape(date), token, "", nil)
		if err != nil {
			return nil, r, err
		}
		if r.status != http.StatusOK {
			if r.status != http.StatusForbidden && r.status != http.StatusGone {
				u.c.stats.anomaly("seat map: unexpected answer "+strconv.Itoa(r.status), u.session())
			}
			return nil, r, nil
		}
		var free []seatRef
		seats, _ := r.body["seats"].([]any)
		for _, x := range seats {
			m, _ := x.(map[string]any)
			if m["status"] == "AVAILABLE" {
				n, _ := m["seatNumber"].(float64)
				free = append(free, seatRef{Date: date, Number: int(n)})
			}
		}
		if len(free) > 0 {
			return free, r, nil
		}
	}
	return nil, r, nil
}

// topUp adds amount to the user's balance.
func (u *user) topUp(ctx context.Context, amount int64) error {
	r, err := u.c.call(ctx, "top-up", http.MethodPatch, "/api/v1/users/"+u.id+"/balance", "", u.key("topup"), map[string]any{"amount": amount})
	if err != nil {
		return err
	}
	if r.status != http.StatusOK {
		u.c.stats.anomaly("top-up refused", "user "+u.id)
		return fmt.Errorf("top-up: %v", r)
	}
	return nil
}

// payHeld tops up the total of the held seats and pays for all of them.
func (u *user) payHeld(ctx context.Context, token string) error {
	total := u.price * int64(max(len(u.held), 1))
	first := total
	if u.split {
		first = total / 2
	}
	if err := u.topUp(ctx, first); err != nil {
		return err
	}
	noSeat := 0
	for try := 0; try < 20; try++ {
		u.payCalled = true
		r, err := u.c.call(ctx, "pay", http.MethodPost, "/api/v1/payments", token, u.key("pay"), map[string]any{"UUID": u.id})
		if err != nil {
			return err
		}
		switch {
		case r.status == http.StatusCreated:
			u.paid(r)
			return nil
		case r.status == http.StatusPaymentRequired:
			// The answer says what the order costs: more than the client knows if a hold's answer was lost.
			need := r.num("price")
			if need == 0 {
				need = total
			}
			if short := need - r.num("balance"); short > 0 {
				if err := u.topUp(ctx, short); err != nil {
					return err
				}
			}
		case r.status == http.StatusConflict && r.problem() == "no-seat-held":
			st, err := u.status(ctx, token)
			if err != nil {
				return err
			}
			switch st.str("status") {
			case "PAID":
				u.paidLate = true
				u.c.stats.loss("pay 409 no-seat-held but the session is PAID", u.session())
				return nil
			case "HELD":
				// The database holds the seat for this session, the workflow says it holds none.
				if noSeat++; noSeat == 1 {
					u.c.stats.loss("pay 409 no-seat-held while the session is HELD", u.session())
				}
				if noSeat == 4 {
					return nil // it will not change: the user walks away
				}
				sleep(ctx, 500*time.Millisecond)
			default:
				// After the hold lapsed, another session may take the seat before this session's release
				// runs; a payment processed then finds no seat. Before that, the workflow forgot its hold.
				if len(u.held) > 0 && time.Now().Before(u.heldUntil) {
					u.c.stats.loss("pay 409 no-seat-held within a confirmed hold, then "+st.str("status"), u.session())
				}
				return nil
			}
		case r.status == http.StatusGone:
			st, err := u.status(ctx, token)
			if err != nil {
				return err
			}
			if st.str("status") == "PAID" {
				u.paidLate = true // a lost 201: the idempotent retry should have returned it
				u.c.stats.loss("pay 410 but the session is PAID", u.session())
			}
			return nil
		case r.status == http.StatusConflict && r.problem() == "request-in-progress":
			sleep(ctx, 300*time.Millisecond)
		default:
			u.c.stats.anomaly("pay: unexpected answer "+strconv.Itoa(r.status)+" "+r.problem(), u.session())
			return fmt.Errorf("pay: %v", r)
		}
	}
	return errors.New("pay: no answer settled it after 20 tries")
}

// paid records a payment's 201 and judges it: one payment buys every seat the order held, for their total.
func (u *user) paid(r reply) {
	u.payment, u.paidSeats, u.paidAmount = r.str("paymentId"), seatsOf(r), r.num("amount")
	u.final = "PAID"
	if u.paidAmount != int64(len(u.paidSeats))*u.price {
		u.c.stats.anomaly("payment amount is not the total of its seats", u.session())
	}
	if len(missingSeats(u.held, u.paidSeats)) > 0 {
		u.c.stats.anomaly("payment left out a seat the order held", u.session())
	}
	if len(u.held) > 0 && len(missingSeats(u.paidSeats, u.held)) > 0 {
		// A seat was held for the order but no hold of it answered 200.
		u.c.stats.loss("pay 201 for a seat without a confirmed hold", u.session())
	}
}

// sortedCounts formats a count map, largest first.
func sortedCounts(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = fmt.Sprintf("%6d  %s", m[k], k)
	}
	return out
}
