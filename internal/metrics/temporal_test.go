package metrics_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"

	"github.com/ticketing/concert/internal/metrics"
)

func TestTemporalHandlerCountersAddUpPerTagSet(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	h := metrics.NewTemporalHandler(reg)
	start := h.WithTags(map[string]string{"namespace": "default", "operation": "StartWorkflowExecution"})
	query := h.WithTags(map[string]string{"namespace": "default", "operation": "QueryWorkflow"})

	start.Counter("temporal_request").Inc(1)
	start.Counter("temporal_request").Inc(2)
	query.Counter("temporal_request").Inc(5)

	assert.Equal(t, 3.0, mustFind(t, reg, "temporal_request_total",
		map[string]string{"namespace": "default", "operation": "StartWorkflowExecution"}).Value)
	assert.Equal(t, 5.0, mustFind(t, reg, "temporal_request_total",
		map[string]string{"namespace": "default", "operation": "QueryWorkflow"}).Value)
	assert.Equal(t, 2, seriesOf(t, reg, "temporal_request_total"))
	text := scrape(t, reg)
	assert.Contains(t, text, "# TYPE temporal_request_total counter\n")
	assert.Contains(t, text, `temporal_request_total{namespace="default",operation="StartWorkflowExecution"} 3`+"\n")
}

func TestTemporalHandlerWithTagsNestsAndOverridesWithoutChangingTheParent(t *testing.T) {
	reg := prometheus.NewRegistry()
	root := metrics.NewTemporalHandler(reg)
	parent := root.WithTags(map[string]string{"namespace": "default", "task_queue": "none", "worker_type": "none"})
	child := parent.WithTags(map[string]string{"task_queue": "booking", "workflow_type": "Session"})

	child.Counter("temporal_workflow_completed").Inc(1)
	parent.Counter("temporal_workflow_completed").Inc(1)
	root.Counter("temporal_workflow_completed").Inc(1)

	assert.Equal(t, 1.0, mustFind(t, reg, "temporal_workflow_completed_total", map[string]string{
		"namespace": "default", "task_queue": "booking", "worker_type": "none", "workflow_type": "Session",
	}).Value)
	assert.Equal(t, 1.0, mustFind(t, reg, "temporal_workflow_completed_total", map[string]string{
		"namespace": "default", "task_queue": "none", "worker_type": "none",
	}).Value)
	assert.Equal(t, 1.0, mustFind(t, reg, "temporal_workflow_completed_total", map[string]string{}).Value)
	assert.Equal(t, 3, seriesOf(t, reg, "temporal_workflow_completed_total"))
}

func TestTemporalHandlerExposesOneNameWithDifferentTagSetsSideBySide(t *testing.T) {
	// The SDK adds status_code to request failures unless fail codes are disabled, and workflow code
	// may tag its own metrics as it likes; a registry of one vector per name would refuse the second set.
	reg := prometheus.NewRegistry()
	h := metrics.NewTemporalHandler(reg)

	rpc := h.WithTags(map[string]string{"namespace": "default", "operation": "StartWorkflowExecution"})
	rpc.Counter("temporal_request_failure").Inc(1)
	rpc.WithTags(map[string]string{"status_code": "UNAVAILABLE"}).Counter("temporal_request_failure").Inc(2)

	assert.Equal(t, 1.0, mustFind(t, reg, "temporal_request_failure_total",
		map[string]string{"namespace": "default", "operation": "StartWorkflowExecution"}).Value)
	assert.Equal(t, 2.0, mustFind(t, reg, "temporal_request_failure_total",
		map[string]string{"namespace": "default", "operation": "StartWorkflowExecution", "status_code": "UNAVAILABLE"}).Value)
	assert.Equal(t, 2, seriesOf(t, reg, "temporal_request_failure_total"))
}

func TestTemporalHandlerGaugesKeepTheLastValue(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := metrics.NewTemporalHandler(reg).WithTags(map[string]string{"worker_type": "ActivityWorker"})

	h.Gauge("temporal_worker_task_slots_available").Update(1000)
	h.Gauge("temporal_worker_task_slots_available").Update(997)

	assert.Equal(t, 997.0, mustFind(t, reg, "temporal_worker_task_slots_available",
		map[string]string{"worker_type": "ActivityWorker"}).Value)
	assert.Equal(t, 1, seriesOf(t, reg, "temporal_worker_task_slots_available"))
	assert.Contains(t, scrape(t, reg), "# TYPE temporal_worker_task_slots_available gauge\n")
}

func TestTemporalHandlerTimersObserveSecondsInHistograms(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := metrics.NewTemporalHandler(reg).WithTags(map[string]string{"workflow_type": "Session"})
	timer := h.Timer("temporal_workflow_task_execution_latency")

	timer.Record(1500 * time.Millisecond)
	timer.Record(3 * time.Millisecond)

	got := mustFind(t, reg, "temporal_workflow_task_execution_latency_seconds", map[string]string{"workflow_type": "Session"})
	assert.Equal(t, uint64(2), got.Count)
	assert.InDelta(t, 1.503, got.Sum, 1e-9)
	assert.Equal(t, uint64(0), got.Buckets[0.0025])
	assert.Equal(t, uint64(1), got.Buckets[0.005])
	assert.Equal(t, uint64(1), got.Buckets[1])
	assert.Equal(t, uint64(2), got.Buckets[2.5])
	assert.Equal(t, uint64(2), got.Buckets[3600], "buckets reach an hour for end-to-end latencies")
}

func TestTemporalHandlerSanitizesNamesAndLabels(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	h := metrics.NewTemporalHandler(reg).WithTags(map[string]string{
		"task-queue": "booking", "9lives": "x", "le": "y", "__name": "z", "ok_label": "w",
	})

	h.Counter("temporal.request-count").Inc(1)
	h.Counter("already_total").Inc(1)
	h.Timer("rpc.latency").Record(time.Second)
	h.Timer("took_seconds").Record(time.Second)
	h.Gauge("7up").Update(1)

	labels := map[string]string{"task_queue": "booking", "_9lives": "x", "tag_le": "y", "tag___name": "z", "ok_label": "w"}
	assert.Equal(t, 1.0, mustFind(t, reg, "temporal_request_count_total", labels).Value)
	assert.Equal(t, 1.0, mustFind(t, reg, "already_total", labels).Value)
	assert.Equal(t, uint64(1), mustFind(t, reg, "rpc_latency_seconds", labels).Count)
	assert.Equal(t, uint64(1), mustFind(t, reg, "took_seconds", labels).Count)
	assert.Equal(t, 1.0, mustFind(t, reg, "_7up", labels).Value)
	assertClassicNames(t, reg)
}

func TestTemporalHandlerRefusesAKindConflictWithoutBreakingTheScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := metrics.NewTemporalHandler(reg)

	h.Gauge("temporal_x_total").Update(7)
	h.Counter("temporal_x").Inc(1) // would be the same Prometheus name as a counter: recorded nowhere
	h.Counter("temporal_y").Inc(1)

	assert.Equal(t, 7.0, mustFind(t, reg, "temporal_x_total", map[string]string{}).Value)
	assert.Equal(t, 1.0, mustFind(t, reg, "temporal_y_total", map[string]string{}).Value)
	assert.Equal(t, 1, seriesOf(t, reg, "temporal_x_total"))
}

func TestTemporalHandlerDropsNegativeCounterIncrements(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := metrics.NewTemporalHandler(reg).Counter("temporal_request")

	c.Inc(4)
	assert.NotPanics(t, func() { c.Inc(-1) })
	c.Inc(0)

	assert.Equal(t, 4.0, mustFind(t, reg, "temporal_request_total", map[string]string{}).Value)
}

func TestTemporalHandlerIsSafeForConcurrentUseWhileScraped(t *testing.T) {
	const goroutines, rounds = 16, 200
	reg := prometheus.NewRegistry()
	h := metrics.NewTemporalHandler(reg)
	stop := make(chan struct{})
	var scrapes sync.WaitGroup
	scrapes.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				_, err := reg.Gather()
				assert.NoError(t, err)
			}
		}
	})

	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range rounds {
				tagged := h.WithTags(map[string]string{"task_queue": fmt.Sprintf("q%d", i%4)})
				if g%2 == 0 {
					tagged = tagged.WithTags(map[string]string{"workflow_type": "Session"})
				}
				tagged.Counter("temporal_request").Inc(1)
				tagged.Gauge("temporal_num_pollers").Update(float64(i))
				tagged.Timer("temporal_request_latency").Record(time.Millisecond)
			}
		})
	}
	wg.Wait()
	close(stop)
	scrapes.Wait()

	var total float64
	var observed uint64
	for q := range 4 {
		for _, labels := range []map[string]string{
			{"task_queue": fmt.Sprintf("q%d", q)},
			{"task_queue": fmt.Sprintf("q%d", q), "workflow_type": "Session"},
		} {
			total += mustFind(t, reg, "temporal_request_total", labels).Value
			observed += mustFind(t, reg, "temporal_request_latency_seconds", labels).Count
		}
	}
	assert.Equal(t, float64(goroutines*rounds), total)
	assert.Equal(t, uint64(goroutines*rounds), observed)
	assert.Equal(t, 8, seriesOf(t, reg, "temporal_num_pollers"))
}
