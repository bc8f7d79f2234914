package loadtest

import (
	"math"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Latency summarises the response times of one kind of request, in milliseconds.
type Latency struct {
	Count int     `json:"count"`
	P50Ms float64 `json:"p50Ms"`
	P90Ms float64 `json:"p90Ms"`
	P99Ms float64 `json:"p99Ms"`
	MaxMs float64 `json:"maxMs"`
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of sorted samples; 0 for none.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// ms converts a duration to milliseconds rounded to 0.1 ms, the precision the report prints.
func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Millisecond)*10) / 10
}

// summarise sorts samples in place and returns their summary.
func summarise(samples []time.Duration) Latency {
	slices.Sort(samples)
	if len(samples) == 0 {
		return Latency{}
	}
	return Latency{
		Count: len(samples),
		P50Ms: ms(percentile(samples, 50)),
		P90Ms: ms(percentile(samples, 90)),
		P99Ms: ms(percentile(samples, 99)),
		MaxMs: ms(samples[len(samples)-1]),
	}
}

// recorder collects what every request of a run did: its latency by operation, and each failed response by
// status code and by operation. It is safe for concurrent use.
type recorder struct {
	mu        sync.Mutex
	latencies map[string][]time.Duration
	// errors counts non-2xx responses by status code, and transport failures as "transport".
	errors map[string]int
	// errorsByRequest counts the same by "<operation> <status> <problem slug>".
	errorsByRequest map[string]int
	requests        int
	failures        int
	conflicts       int
}

func newRecorder() *recorder {
	return &recorder{latencies: map[string][]time.Duration{}, errors: map[string]int{}, errorsByRequest: map[string]int{}}
}

// observe records one answered request.
func (r *recorder) observe(op string, status int, slug string, took time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	r.latencies[op] = append(r.latencies[op], took)
	if status >= 200 && status < 300 {
		return
	}
	r.failures++
	code := strconv.Itoa(status)
	r.errors[code]++
	key := op + " " + code
	if slug != "" {
		key += " " + slug
	}
	r.errorsByRequest[key]++
	if op == opReserve && slug == slugSeatTaken {
		r.conflicts++
	}
}

// transportError records a request that got no answer.
func (r *recorder) transportError(op string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	r.failures++
	r.errors["transport"]++
	r.errorsByRequest[op+" transport"]++
}

// counts returns the number of requests and of failed ones so far, and how many failures were seat
// conflicts (a reserve that lost the race for a seat).
func (r *recorder) counts() (requests, failures, conflicts int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests, r.failures, r.conflicts
}

// summary returns the latency summary of every operation, and copies of the error counts.
func (r *recorder) summary() (map[string]Latency, map[string]int, map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	lat := make(map[string]Latency, len(r.latencies))
	for op, s := range r.latencies {
		lat[op] = summarise(slices.Clone(s))
	}
	errs := make(map[string]int, len(r.errors))
	for k, v := range r.errors {
		errs[k] = v
	}
	by := make(map[string]int, len(r.errorsByRequest))
	for k, v := range r.errorsByRequest {
		by[k] = v
	}
	return lat, errs, by
}

// sortedKeys returns the keys of m in order, for stable tables.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
