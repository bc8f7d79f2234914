package metrics_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/ticketing/concert/internal/devserver"
	"github.com/ticketing/concert/internal/metrics"
)

// sumWhere adds up the series of a family whose labels include every label of subset: the values of
// counters and gauges, the observation counts of histograms. It also reports how many series matched.
func sumWhere(t *testing.T, g prometheus.Gatherer, name string, subset map[string]string) (sum float64, series int) {
	t.Helper()
	families, err := g.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range subset {
				if labels[k] != v {
					continue metric
				}
			}
			series++
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum, series
}

const sdkTestQueue = "metrics-test"

func greetWorkflow(ctx workflow.Context, name string) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	var out string
	err := workflow.ExecuteActivity(ctx, "Shout", name).Get(ctx, &out)
	return out, err
}

func shoutActivity(_ context.Context, s string) (string, error) { return strings.ToUpper(s), nil }

func TestTemporalHandlerRecordsTheMetricsOfARealClientAndWorker(t *testing.T) {
	srv, err := devserver.Start(t.Context(), devserver.Options{UIPort: devserver.NoUI})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, srv.Stop()) })
	reg := metrics.NewRegistry()
	c, err := client.Dial(client.Options{
		HostPort: srv.FrontendAddress(), Namespace: srv.Namespace(),
		MetricsHandler: metrics.NewTemporalHandler(reg),
		Logger:         sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	w := worker.New(c, sdkTestQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(greetWorkflow, workflow.RegisterOptions{Name: "Greet"})
	w.RegisterActivityWithOptions(shoutActivity, activity.RegisterOptions{Name: "Shout"})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "greet-1", TaskQueue: sdkTestQueue}, "Greet", "hi")
	require.NoError(t, err)
	var out string
	require.NoError(t, run.Get(ctx, &out))
	require.Equal(t, "HI", out)

	ns := srv.Namespace()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		completed, _ := sumWhere(t, reg, "temporal_workflow_completed_total",
			map[string]string{"namespace": ns, "task_queue": sdkTestQueue, "workflow_type": "Greet"})
		assert.Equal(c, 1.0, completed)
		executed, _ := sumWhere(t, reg, "temporal_activity_execution_latency_seconds",
			map[string]string{"namespace": ns, "task_queue": sdkTestQueue, "activity_type": "Shout"})
		assert.Equal(c, 1.0, executed)
	}, 10*time.Second, 50*time.Millisecond)
	started, _ := sumWhere(t, reg, "temporal_request_total", map[string]string{"namespace": ns, "operation": "StartWorkflowExecution"})
	assert.Equal(t, 1.0, started)
	polls, _ := sumWhere(t, reg, "temporal_long_request_total", map[string]string{"namespace": ns, "operation": "PollWorkflowTaskQueue"})
	assert.Positive(t, polls)
	_, pollers := sumWhere(t, reg, "temporal_num_pollers", map[string]string{"namespace": ns, "task_queue": sdkTestQueue})
	assert.Positive(t, pollers)

	rec := httptest.NewRecorder()
	metrics.Handler(reg).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	body, err := io.ReadAll(rec.Body)
	require.NoError(t, err)
	assert.Contains(t, string(body), `temporal_workflow_completed_total{`)
	assert.Contains(t, string(body), `temporal_workflow_endtoend_latency_seconds_bucket{`)
	assert.Contains(t, string(body), `go_goroutines `)
	assert.NotContains(t, string(body), "promhttp_metric_handler_errors_total{cause=\"gathering\"} 1")
}
