package metrics

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
)

// temporalBuckets (seconds) cover what the SDK times: RPCs and task executions from 1ms, schedule-to-start
// latencies of a backlogged queue, and workflow end-to-end latencies as long as an on-sale (an hour).
var temporalBuckets = []float64{
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600,
}

// NewTemporalHandler returns a Temporal SDK metrics handler that records into reg, for
// client.Options.MetricsHandler. One handler per registry: share it between the clients of a process (a
// worker uses its client's handler), because two handlers on one registry would expose the same series twice.
//
// The SDK names its metrics ("temporal_request", "temporal_workflow_task_execution_latency") and tags them
// (namespace, task_queue, workflow_type, activity_type, operation, ...) at each call site. Its root tags
// default every common key to "none", but nothing makes one name keep one tag set: request failure counters
// gain status_code unless that is turned off, and workflow code may emit metrics of its own through
// workflow.GetMetricsHandler with any tags. A Prometheus registry refuses a second registration of a name
// with other label names, and the SDK's call sites have no way to receive that error, so the handler does
// not register a collector per metric. It registers one collector with reg and creates, on first use, one
// CounterVec, GaugeVec or HistogramVec per (name, set of tag keys), which that collector gathers; series of
// one name with different label sets then sit side by side in one family.
//
// Names follow Prometheus conventions: characters outside [a-zA-Z0-9_] become "_", counters end in
// "_total" and timers become histograms in seconds ending in "_seconds" (temporal_request_total,
// temporal_workflow_task_execution_latency_seconds), as Temporal's OpenTelemetry-based dashboards expect. A
// name already taken by a metric of another kind records nothing rather than break the scrape. Negative
// counter increments are dropped, since a Prometheus counter panics on them.
func NewTemporalHandler(reg prometheus.Registerer) client.MetricsHandler {
	c := &temporalCollector{vecs: map[vecKey]prometheus.Collector{}, kinds: map[string]metricKind{}}
	reg.MustRegister(c)
	return newTemporalHandler(c, nil)
}

// metricKind is what a Temporal metric is recorded as.
type metricKind int

const (
	counterKind metricKind = iota
	gaugeKind
	timerKind
)

// vecKey identifies one vector: the SDK's metric name as given, its kind, and its label names.
type vecKey struct {
	kind   metricKind
	name   string
	labels string // sorted Prometheus label names joined by ","
}

// temporalCollector holds the vectors the handlers created and gathers them at scrape time. It is
// unchecked (it describes nothing up front) because its metrics are only known once the SDK emits them.
type temporalCollector struct {
	mu   sync.RWMutex
	vecs map[vecKey]prometheus.Collector // nil for a name refused because another kind has it
	// kinds maps each Prometheus name in use to its kind, so one family never mixes types.
	kinds map[string]metricKind
}

// Describe sends nothing, which makes the collector unchecked: its families appear as the SDK emits them.
func (c *temporalCollector) Describe(chan<- *prometheus.Desc) {}

// Collect gathers every vector created so far.
func (c *temporalCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.RLock()
	vecs := make([]prometheus.Collector, 0, len(c.vecs))
	for _, v := range c.vecs {
		if v != nil {
			vecs = append(vecs, v)
		}
	}
	c.mu.RUnlock()
	for _, v := range vecs {
		v.Collect(ch)
	}
}

// vec returns the vector for a metric of kind named name with these label names, creating it on first
// use; nil if the Prometheus name belongs to a metric of another kind.
func (c *temporalCollector) vec(kind metricKind, name string, labels []string, sig string) prometheus.Collector {
	key := vecKey{kind: kind, name: name, labels: sig}
	c.mu.RLock()
	v, ok := c.vecs[key]
	c.mu.RUnlock()
	if ok {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.vecs[key]; ok {
		return v
	}
	promName := prometheusName(kind, name)
	if k, taken := c.kinds[promName]; taken && k != kind {
		c.vecs[key] = nil
		return nil
	}
	c.kinds[promName] = kind
	help := "Temporal Go SDK metric " + promName + "."
	switch kind {
	case counterKind:
		v = prometheus.NewCounterVec(prometheus.CounterOpts{Name: promName, Help: help}, labels)
	case gaugeKind:
		v = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: promName, Help: help}, labels)
	default:
		v = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: promName, Help: help, Buckets: temporalBuckets}, labels)
	}
	c.vecs[key] = v
	return v
}

// temporalHandler is one set of tags over the shared collector. It is immutable, so the SDK may use it from
// any goroutine.
type temporalHandler struct {
	c    *temporalCollector
	tags map[string]string
	// labels and values are tags as Prometheus labels, sorted by label name; sig is labels joined by ",".
	labels, values []string
	sig            string
}

func newTemporalHandler(c *temporalCollector, tags map[string]string) *temporalHandler {
	h := &temporalHandler{c: c, tags: tags}
	byLabel := make(map[string]string, len(tags))
	// Tags are visited in key order so that two keys that sanitise to one label resolve the same way on
	// every call: the later key wins.
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		byLabel[labelName(k)] = tags[k]
	}
	h.labels = slices.Sorted(maps.Keys(byLabel))
	h.values = make([]string, len(h.labels))
	for i, l := range h.labels {
		h.values[i] = byLabel[l]
	}
	h.sig = strings.Join(h.labels, ",")
	return h
}

// WithTags returns a handler with these tags added to the handler's own; a key present in both takes the
// new value.
func (h *temporalHandler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := make(map[string]string, len(h.tags)+len(tags))
	maps.Copy(merged, h.tags)
	maps.Copy(merged, tags)
	return newTemporalHandler(h.c, merged)
}

// Counter returns the counter name with this handler's tags.
func (h *temporalHandler) Counter(name string) client.MetricsCounter {
	v, ok := h.c.vec(counterKind, name, h.labels, h.sig).(*prometheus.CounterVec)
	if !ok {
		return client.MetricsNopHandler.Counter(name)
	}
	return counter{v.WithLabelValues(h.values...)}
}

// Gauge returns the gauge name with this handler's tags.
func (h *temporalHandler) Gauge(name string) client.MetricsGauge {
	v, ok := h.c.vec(gaugeKind, name, h.labels, h.sig).(*prometheus.GaugeVec)
	if !ok {
		return client.MetricsNopHandler.Gauge(name)
	}
	return gauge{v.WithLabelValues(h.values...)}
}

// Timer returns the timer name with this handler's tags, recorded as a histogram in seconds.
func (h *temporalHandler) Timer(name string) client.MetricsTimer {
	v, ok := h.c.vec(timerKind, name, h.labels, h.sig).(*prometheus.HistogramVec)
	if !ok {
		return client.MetricsNopHandler.Timer(name)
	}
	return timer{v.WithLabelValues(h.values...)}
}

type counter struct{ c prometheus.Counter }

func (c counter) Inc(d int64) {
	if d > 0 {
		c.c.Add(float64(d))
	}
}

type gauge struct{ g prometheus.Gauge }

func (g gauge) Update(v float64) { g.g.Set(v) }

type timer struct{ o prometheus.Observer }

func (t timer) Record(d time.Duration) { t.o.Observe(d.Seconds()) }

// prometheusName turns an SDK metric name into a valid Prometheus name with the suffix its kind calls for.
func prometheusName(kind metricKind, name string) string {
	n := sanitize(name)
	switch {
	case kind == counterKind && !strings.HasSuffix(n, "_total"):
		n += "_total"
	case kind == timerKind && !strings.HasSuffix(n, "_seconds"):
		n += "_seconds"
	}
	return n
}

// labelName turns a tag key into a valid Prometheus label name. Names starting with "__" are reserved for
// Prometheus itself and "le" for histogram buckets, so those get a "tag_" prefix.
func labelName(key string) string {
	n := sanitize(key)
	if n == "le" || strings.HasPrefix(n, "__") {
		n = "tag_" + n
	}
	return n
}

// sanitize replaces every character outside [a-zA-Z0-9_] with "_" and prefixes a leading digit with "_",
// which gives a name valid under Prometheus's classic rules (colons are left to recording rules).
func sanitize(s string) string {
	if s == "" {
		return "_"
	}
	var b strings.Builder
	b.Grow(len(s) + 1)
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_':
			b.WriteRune(r)
		case r >= '0' && r <= '9':
			if i == 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}
