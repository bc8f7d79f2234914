package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// call is one API request.
type call struct {
	op     string // the operation it is timed and counted under
	method string
	path   string
	token  string // bearer token, "" for none
	key    string // Idempotency-Key, "" for none
	body   any    // sent as JSON unless nil
}

// result is what one request got: its status (0 when no answer came), for a problem answer the problem's
// slug and detail, and the Retry-After the service asked for.
type result struct {
	status     int
	slug       string
	detail     string
	retryAfter time.Duration
	err        error
}

func (r result) ok() bool { return r.err == nil && r.status >= 200 && r.status < 300 }

// broken reports whether the service gave no usable answer (none at all, or a 5xx): repeating may help.
func (r result) broken() bool { return r.status == 0 || r.status >= 500 }

// throttled reports whether the service asked to come back later: rate limited (429), or the same
// Idempotency-Key still running (409).
func (r result) throttled() bool {
	return r.status == http.StatusTooManyRequests || (r.status == http.StatusConflict && r.slug == slugKeyInProgress)
}

func (r result) describe() string {
	switch {
	case r.status == 0 && r.err != nil:
		return "no answer: " + r.err.Error()
	case r.err != nil:
		return fmt.Sprintf("%d: %v", r.status, r.err)
	case r.slug != "":
		return fmt.Sprintf("%d %s: %s", r.status, r.slug, r.detail)
	}
	return strconv.Itoa(r.status)
}

// Problem slugs the users react to.
const (
	problemTypeBase    = "/problems/"
	slugSeatTaken      = "seat-taken"
	slugAlreadyHolding = "already-holding"
	slugInProgress     = "request-in-progress"
	slugNotAdmitted    = "not-admitted"
	slugKeyInProgress  = "idempotency-key-in-progress"
)

// Patience of a user with a service that does not answer usably.
const (
	// retries bounds how often a request is repeated after no answer or a 5xx.
	retries = 3
	// throttledFor bounds how long a user keeps honouring Retry-After before giving up on a request.
	throttledFor = 2 * time.Minute
)

// send sends c, repeating it under the same Idempotency-Key while repeating may help: up to retries times
// after no answer or a 5xx, and for up to throttledFor while the service answers 429 (or 409 for a key
// still in progress), each time after the Retry-After it asked for.
func (r *runner) send(ctx context.Context, rng *rand.Rand, c call, out any) result {
	broken := 0
	giveUp := time.Now().Add(throttledFor)
	for {
		res := r.do(ctx, c, out)
		switch {
		case res.broken():
			if broken++; broken > retries {
				return res
			}
		case res.throttled():
			if time.Now().After(giveUp) {
				return res
			}
		default:
			return res
		}
		if !sleep(ctx, backoff(rng, res)) {
			return res
		}
	}
}

// backoff is the pause before a request is repeated: the Retry-After the service asked for, or a short
// random pause.
func backoff(rng *rand.Rand, res result) time.Duration {
	jitter := time.Duration(rng.Int64N(int64(150 * time.Millisecond)))
	if res.retryAfter > 0 {
		return res.retryAfter + jitter
	}
	return 50*time.Millisecond + jitter
}

// do sends one request, records its latency and status under c.op, and decodes a 2xx answer into out.
func (r *runner) do(ctx context.Context, c call, out any) result {
	var rd io.Reader
	if c.body != nil {
		raw, err := json.Marshal(c.body)
		if err != nil {
			return result{err: err}
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, r.cfg.Target+c.path, rd)
	if err != nil {
		return result{err: err}
	}
	if c.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.key != "" {
		req.Header.Set("Idempotency-Key", c.key)
	}
	start := time.Now()
	resp, err := r.cfg.HTTP.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			r.rec.transportError(c.op)
		}
		return result{err: err}
	}
	raw, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	took := time.Since(start)
	if err != nil {
		if ctx.Err() == nil {
			r.rec.transportError(c.op)
		}
		return result{err: fmt.Errorf("read answer: %w", err)}
	}
	res := result{status: resp.StatusCode}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		res.retryAfter = time.Duration(secs) * time.Second
	}
	if res.status >= 300 {
		var p struct {
			Type   string `json:"type"`
			Detail string `json:"detail"`
		}
		if json.Unmarshal(raw, &p) == nil {
			res.slug, res.detail = strings.TrimPrefix(p.Type, problemTypeBase), p.Detail
		}
	}
	r.rec.observe(c.op, res.status, res.slug, took)
	if res.ok() && out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			res.err = fmt.Errorf("decode answer of %s %s: %w", c.method, c.path, err)
		}
	}
	return res
}
