package loadtest

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"

	"github.com/ticketing/concert/internal/devserver"
)

// TestBaselineSessionsHaveTheShapeOfAPaidBooking runs the baseline against an embedded Temporal server with
// half the sessions waiting, and reads every session's history back: each must make exactly a paid
// booking's Temporal calls (start, the admission signal when it waited, the reserve and pay updates) and
// upserts (ACTIVE when it waited, then HELD and PAID), and complete.
func TestBaselineSessionsHaveTheShapeOfAPaidBooking(t *testing.T) {
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{UIPort: devserver.NoUI, Logger: log,
		SearchAttributes: map[string]enumspb.IndexedValueType{baselineStatusKey.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop() })
	c, err := client.DialContext(ctx, client.Options{HostPort: srv.FrontendAddress(), Namespace: srv.Namespace(),
		Logger: sdklog.NewStructuredLogger(log)})
	require.NoError(t, err)
	t.Cleanup(c.Close)

	const sessions = 6
	res, err := RunBaseline(ctx, BaselineConfig{Namespace: srv.Namespace(), Client: c, Sessions: sessions, Concurrency: 2, Waited: 0.5})
	require.NoError(t, err)
	t.Logf("baseline: %+v", res)
	assert.Equal(t, sessions, res.Sessions)
	assert.Equal(t, 3, res.Waited)
	assert.Zero(t, res.Failed, res.FirstError)
	assert.Positive(t, res.SessionsPerSecond)
	assert.Equal(t, "start + 2 updates (reserve, pay) + 2 upserts; 3 of 6 also signal + 1 upsert (waited)", res.Shape)

	// Per kind of step, in order. Across kinds the order may vary: an update that arrives in the same
	// workflow task as the signal is accepted before the signal's upsert is recorded.
	admittedAtOnce := map[string][]string{
		"start": {"ACTIVE"}, "message": {"update reserve", "update pay"}, "upsert": {"HELD", "PAID"},
		"updated": {"ok", "ok"}, "completed": {""},
	}
	waited := map[string][]string{
		"start": {"WAITING"}, "message": {"signal admit", "update reserve", "update pay"}, "upsert": {"ACTIVE", "HELD", "PAID"},
		"updated": {"ok", "ok"}, "completed": {""},
	}
	shapes := map[string]int{}
	for i := range sessions {
		id := fmt.Sprintf("loadtest-baseline-%s-%d", res.Run, i)
		got := baselineTrace(ctx, t, c, id)
		switch {
		case baselineWaits(i, sessions, res.Waited):
			assert.Equal(t, waited, got, "session %s waited", id)
			shapes["waited"]++
		default:
			assert.Equal(t, admittedAtOnce, got, "session %s was admitted at once", id)
			shapes["at once"]++
		}
	}
	assert.Equal(t, map[string]int{"waited": 3, "at once": 3}, shapes)
}

// baselineTrace reads a session's history as the steps a booking's shape is made of, by kind, each kind in
// the order of the history: the status it started with, signals and updates received by name, outcomes of
// completed updates, the statuses it upserted, its completion, and any other event (there must be none).
// Workflow tasks are left out.
func baselineTrace(ctx context.Context, t *testing.T, c client.Client, id string) map[string][]string {
	t.Helper()
	status := func(fields map[string]*commonpb.Payload) string {
		var s string
		p, ok := fields[baselineStatusKey.GetName()]
		require.True(t, ok, "session %s: event without %s", id, baselineStatusKey.GetName())
		require.NoError(t, converter.GetDefaultDataConverter().FromPayload(p, &s))
		return s
	}
	trace := map[string][]string{}
	add := func(kind, v string) { trace[kind] = append(trace[kind], v) }
	it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		require.NoError(t, err)
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			add("start", status(e.GetWorkflowExecutionStartedEventAttributes().GetSearchAttributes().GetIndexedFields()))
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
			add("message", "signal "+e.GetWorkflowExecutionSignaledEventAttributes().GetSignalName())
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
			add("message", "update "+e.GetWorkflowExecutionUpdateAcceptedEventAttributes().GetAcceptedRequest().GetInput().GetName())
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
			outcome := "ok"
			if f := e.GetWorkflowExecutionUpdateCompletedEventAttributes().GetOutcome().GetFailure(); f != nil {
				outcome = "failed: " + f.GetMessage()
			}
			add("updated", outcome)
		case enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
			add("upsert", status(e.GetUpsertWorkflowSearchAttributesEventAttributes().GetSearchAttributes().GetIndexedFields()))
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
			add("completed", "")
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED,
			enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
		default:
			add("unexpected", e.GetEventType().String())
		}
	}
	return trace
}

func TestBaselineRefusesAWaitedShareOutsideZeroToOne(t *testing.T) {
	for _, w := range []float64{-0.1, 1.01, math.NaN()} {
		_, err := RunBaseline(t.Context(), BaselineConfig{Sessions: 1, Concurrency: 1, Waited: w, TemporalAddress: "127.0.0.1:1"})
		require.Error(t, err, "waited %g", w)
		assert.Contains(t, err.Error(), "waited share", "refused before dialling, waited %g", w)
	}
}

// TestBaselineSpreadsExactlyTheWaitedSessions: of n sessions, exactly k wait, spread over the run (never
// two in a row while fewer than half wait).
func TestBaselineSpreadsExactlyTheWaitedSessions(t *testing.T) {
	for n := 1; n <= 40; n++ {
		for k := 0; k <= n; k++ {
			count, prev := 0, false
			for i := range n {
				w := baselineWaits(i, n, k)
				if w {
					count++
				}
				if 2*k <= n {
					assert.False(t, w && prev, "n %d k %d: sessions %d and %d both wait", n, k, i-1, i)
				}
				prev = w
			}
			assert.Equal(t, k, count, "n %d k %d", n, k)
		}
	}
}

// TestBaselineTakesItsDefaultsFromTheBookingRun: unset knobs follow the booking run, set ones are kept.
func TestBaselineTakesItsDefaultsFromTheBookingRun(t *testing.T) {
	cfg := Config{Users: 40, Concurrency: 20, MaxActive: 5, Baseline: &BaselineConfig{Waited: -1}}
	rep := &Report{AdmittedImmediately: 5, AdmittedAfterWait: 15}
	bc := baselineFor(cfg, rep)
	assert.Equal(t, 40, bc.Sessions)
	assert.Equal(t, 5, bc.Concurrency)
	assert.Equal(t, 0.75, bc.Waited, "15 of the 20 admitted users waited")

	assert.Zero(t, baselineFor(cfg, &Report{}).Waited, "nobody admitted: nobody waited")

	cfg.Baseline = &BaselineConfig{Sessions: 7, Concurrency: 3, Waited: 0.25}
	bc = baselineFor(cfg, rep)
	assert.Equal(t, BaselineConfig{Sessions: 7, Concurrency: 3, Waited: 0.25}, bc)
}
