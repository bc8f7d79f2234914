package api

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateLimit is a token bucket: Rate requests per second on average, Burst at once. A zero Rate means no limit.
type RateLimit struct {
	Rate  float64
	Burst int
}

// Default rate limits of token issue and balance top-up.
var (
	DefaultUserRateLimit    = RateLimit{Rate: 5, Burst: 10}
	DefaultAddressRateLimit = RateLimit{Rate: 20, Burst: 40}
)

// limiter keeps one token bucket per key (a user or a client address) and forgets idle ones.
type limiter struct {
	limit   RateLimit
	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// idleBucket is how long a bucket may go unused before it is forgotten (it would be full again by then).
const idleBucket = 5 * time.Minute

func newLimiter(l RateLimit) *limiter {
	if l.Rate <= 0 {
		return nil
	}
	return &limiter{limit: l, buckets: map[string]*bucket{}}
}

// allow takes a token for key, or says how long until one is available.
func (l *limiter) allow(key string, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > idleBucket {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > idleBucket {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(rate.Limit(l.limit.Rate), max(l.limit.Burst, 1))}
		l.buckets[key] = b
	}
	b.seen = now
	res := b.lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// limited is a 429 problem with how long to wait.
type limited struct {
	*Problem
	retryAfter time.Duration
}

func (h *Handler) check(l *limiter, key, what string) *limited {
	ok, wait := l.allow(key, time.Now())
	if ok {
		return nil
	}
	return &limited{
		Problem:    problem(http.StatusTooManyRequests, "rate-limited", "too many requests from this "+what+"; retry after the Retry-After seconds"),
		retryAfter: wait,
	}
}

// limitAddress applies the per-client-address limit. The address is the connection's peer: behind a proxy,
// put the limit in the proxy, or every client shares the proxy's bucket.
func (h *Handler) limitAddress(r *http.Request) *limited {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return h.check(h.byAddress, host, "address")
}

// limitUser applies the per-user limit.
func (h *Handler) limitUser(userID string) *limited { return h.check(h.byUser, userID, "user") }

func writeLimited(w http.ResponseWriter, r *http.Request, l *limited) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(l.retryAfter.Seconds()))))
	writeProblem(w, r, l.Problem)
}
