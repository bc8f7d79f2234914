package loadtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/ticketing/concert/booking"
	"github.com/ticketing/concert/workflows"
)

// BaselineConfig describes a measurement of what Temporal alone costs a booking: sessions of the same shape
// as a paid booking, with none of its logic (no database, no activities, no timers), run Sessions times with
// Concurrency in flight by a worker and a client inside this process, on a task queue of its own.
//
// A baseline session makes the calls the API makes for a paid booking, through Temporal only:
//
//   - admitted at once: start the workflow (search attribute BookingStatus=ACTIVE), the reserve Update (sent
//     as Update-with-Start, as the API does), the pay Update; the workflow upserts BookingStatus twice (HELD,
//     PAID) and completes;
//   - waited: start (BookingStatus=WAITING), the admission Signal, then the same two Updates; the workflow
//     upserts three times (ACTIVE, HELD, PAID).
//
// So the ratio of bookings/s to baseline sessions/s measures the cost of the booking logic, not of the
// Temporal calls every booking makes anyway.
type BaselineConfig struct {
	// TemporalAddress and Namespace locate the Temporal server the booking service uses.
	TemporalAddress string
	Namespace       string
	// Sessions is how many sessions to run; 0 means as many as the booking run had users.
	Sessions int
	// Concurrency is how many sessions are in flight at once; 0 means the booking run's users in flight,
	// bounded by its maxActive (the users that can be talking to Temporal at once).
	Concurrency int
	// Waited is the share (0..1) of sessions that take the shape of a fan who waited in the queue (one
	// signal and one upsert more). RunBaseline spreads them evenly over the run. A negative value means the
	// booking run's own share (Run sets it from the report: users admitted after a wait among all admitted
	// users); RunBaseline itself refuses it.
	Waited float64
	// Client, if set, is used instead of dialling TemporalAddress (tests).
	Client client.Client
}

// BaselineResult is what the baseline measured. SessionsPerSecond is Sessions divided by the time from the
// first session's start to the last one's completion; the latencies are per session, from the start
// request to the workflow's result.
type BaselineResult struct {
	Sessions    int `json:"sessions"`
	Concurrency int `json:"concurrency"`
	// Waited is how many of the sessions took the waited shape (signal and one more upsert).
	Waited int `json:"waited"`
	// Shape is what one session cost Temporal, in the calls and upserts of a paid booking.
	Shape             string  `json:"shape"`
	Failed            int     `json:"failed"`
	Seconds           float64 `json:"seconds"`
	SessionsPerSecond float64 `json:"sessionsPerSecond"`
	P50Ms             float64 `json:"p50Ms"`
	P99Ms             float64 `json:"p99Ms"`
	MaxMs             float64 `json:"maxMs"`
	// Run names the sessions: their workflow IDs are loadtest-baseline-<run>-<n>, n from 0 to Sessions-1.
	Run string `json:"run"`
	// FirstError is the error of the first failed session, if any.
	FirstError string `json:"firstError,omitempty"`
}

// Names of the baseline workflow and its messages. The workflow is registered only by the load
// generator's own worker, under a name no booking worker knows; the messages mirror the booking session's
// (booking.SignalAdmission, workflows.UpdateReserve, workflows.UpdatePay) without sharing their types.
const (
	baselineWorkflowName  = "LoadtestBaselineSession"
	baselineSignalAdmit   = "admit"
	baselineUpdateReserve = "reserve"
	baselineUpdatePay     = "pay"
	// baselineWarmUp sessions run before the measurement, so worker start-up and first connections are
	// not counted. They alternate between the two shapes.
	baselineWarmUp = 5
)

// baselineStatusKey is the booking sessions' own status attribute, which the booking worker registers in
// the namespace when it starts. Baseline sessions are told apart from bookings by their workflow type and
// task queue; the admin API lists only BookingSession workflows.
var baselineStatusKey = workflows.BookingStatusKey

// Statuses a baseline session goes through: the booking's.
const (
	baselineWaiting = string(booking.StatusWaiting)
	baselineActive  = string(booking.StatusActive)
	baselineHeld    = string(booking.StatusHeld)
	baselinePaid    = string(booking.StatusPaid)
)

// baselineShape describes the sessions of a run of sessions of which waited took the waited shape.
func baselineShape(waited, sessions int) string {
	const once = "start + 2 updates (reserve, pay) + 2 upserts"
	switch {
	case waited <= 0:
		return once
	case waited >= sessions:
		return "start + signal + 2 updates (reserve, pay) + 3 upserts"
	default:
		return fmt.Sprintf("%s; %d of %d also signal + 1 upsert (waited)", once, waited, sessions)
	}
}

// baselineWaits reports whether session i of n takes the waited shape when waited of them do: the waited
// sessions are spread evenly over the run, exactly waited of them.
func baselineWaits(i, n, waited int) bool {
	return (i+1)*waited/n > i*waited/n
}

// baselineSession has the shape of a paid booking session and none of its logic. Started WAITING (waited)
// it waits for the admission signal and upserts ACTIVE; the reserve update (once ACTIVE) upserts HELD and
// returns the seat; the pay update (once HELD) upserts PAID; then it completes.
func baselineSession(ctx workflow.Context, waited bool) (string, error) {
	status := baselineActive
	if waited {
		status = baselineWaiting
	}
	set := func(st string) error {
		status = st
		return workflow.UpsertTypedSearchAttributes(ctx, baselineStatusKey.ValueSet(st))
	}
	if err := workflow.SetUpdateHandler(ctx, baselineUpdateReserve, func(ctx workflow.Context, seat int) (int, error) {
		// Like the booking's reserve, one that overtook the admission waits for it.
		if err := workflow.Await(ctx, func() bool { return status != baselineWaiting }); err != nil {
			return 0, err
		}
		if status != baselineActive {
			return 0, fmt.Errorf("cannot reserve in status %s", status)
		}
		return seat, set(baselineHeld)
	}); err != nil {
		return "", err
	}
	if err := workflow.SetUpdateHandler(ctx, baselineUpdatePay, func(workflow.Context) (string, error) {
		if status != baselineHeld {
			return "", fmt.Errorf("cannot pay in status %s", status)
		}
		return "paid", set(baselinePaid)
	}); err != nil {
		return "", err
	}
	if waited {
		workflow.GetSignalChannel(ctx, baselineSignalAdmit).Receive(ctx, nil)
		if err := set(baselineActive); err != nil {
			return "", err
		}
	}
	if err := workflow.Await(ctx, func() bool { return status == baselinePaid && workflow.AllHandlersFinished(ctx) }); err != nil {
		return "", err
	}
	return status, nil
}

// checkBaselineAttribute fails early when the namespace lacks the status attribute: a workflow that upserts
// an unregistered attribute fails its tasks until it times out.
func checkBaselineAttribute(ctx context.Context, c client.Client, namespace string) error {
	have, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes of namespace %s: %w", namespace, err)
	}
	name := baselineStatusKey.GetName()
	if typ, ok := have.GetCustomAttributes()[name]; !ok || typ != enumspb.INDEXED_VALUE_TYPE_KEYWORD {
		return fmt.Errorf("the baseline upserts the Keyword search attribute %s, which namespace %s lacks: start the booking worker once against it, or register it with `temporal operator search-attribute create --name %s --type Keyword`",
			name, namespace, name)
	}
	return nil
}

// RunBaseline measures the baseline: it starts a worker for the baseline workflow on a fresh task queue,
// runs a few sessions to warm up, then runs and times cfg.Sessions sessions.
func RunBaseline(ctx context.Context, cfg BaselineConfig) (BaselineResult, error) {
	switch {
	case cfg.Sessions < 1 || cfg.Concurrency < 1:
		return BaselineResult{}, errors.New("baseline sessions and concurrency must be at least 1")
	case !(cfg.Waited >= 0 && cfg.Waited <= 1): // also refuses NaN
		return BaselineResult{}, fmt.Errorf("baseline waited share must be between 0 and 1, not %g", cfg.Waited)
	}
	c := cfg.Client
	if c == nil {
		dialCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		var err error
		c, err = client.DialContext(dialCtx, client.Options{
			HostPort: cfg.TemporalAddress, Namespace: cfg.Namespace,
			Logger: sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))),
		})
		if err != nil {
			return BaselineResult{}, fmt.Errorf("connect to Temporal at %s (namespace %s): %w", cfg.TemporalAddress, cfg.Namespace, err)
		}
		defer c.Close()
	}
	namespace := cfg.Namespace
	if namespace == "" {
		namespace = client.DefaultNamespace
	}
	if err := checkBaselineAttribute(ctx, c, namespace); err != nil {
		return BaselineResult{}, err
	}
	run := fmt.Sprintf("%s-%04x", time.Now().UTC().Format("20060102-150405"), rand.Uint32()&0xffff)
	taskQueue := "concert-loadtest-baseline-" + run
	// The booking worker runs with the SDK's default options; so does this one.
	w := worker.New(c, taskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(baselineSession, workflow.RegisterOptions{Name: baselineWorkflowName})
	if err := w.Start(); err != nil {
		return BaselineResult{}, fmt.Errorf("start baseline worker: %w", err)
	}
	defer w.Stop()

	// session makes the API's calls for one paid booking (see BaselineConfig), each waited for as the API
	// waits for it, and then waits for the workflow to complete.
	session := func(id string, waited bool) (time.Duration, error) {
		start := time.Now()
		status := baselineActive
		if waited {
			status = baselineWaiting
		}
		// As workflows.Door starts a session: an ID never reused, a start that finds the workflow running
		// leaves it be, and the status is findable from the first moment.
		opts := client.StartWorkflowOptions{
			ID: id, TaskQueue: taskQueue,
			WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
			WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
			WorkflowExecutionTimeout: 5 * time.Minute,
			TypedSearchAttributes:    temporal.NewSearchAttributes(baselineStatusKey.ValueSet(status)),
		}
		wf, err := c.ExecuteWorkflow(ctx, opts, baselineWorkflowName, waited)
		if err != nil {
			return 0, fmt.Errorf("start: %w", err)
		}
		if waited {
			if err := c.SignalWorkflow(ctx, id, "", baselineSignalAdmit, nil); err != nil {
				return 0, fmt.Errorf("signal: %w", err)
			}
		}
		// The API sends the reserve as Update-with-Start (the workflow may not have been started yet).
		reserve, err := c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
			StartWorkflowOperation: c.NewWithStartWorkflowOperation(opts, baselineWorkflowName, waited),
			UpdateOptions: client.UpdateWorkflowOptions{
				UpdateName: baselineUpdateReserve, Args: []any{1}, WaitForStage: client.WorkflowUpdateStageCompleted,
			},
		})
		if err != nil {
			return 0, fmt.Errorf("reserve: %w", err)
		}
		var seat int
		if err := reserve.Get(ctx, &seat); err != nil {
			return 0, fmt.Errorf("reserve: %w", err)
		}
		pay, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID: id, UpdateName: baselineUpdatePay, WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		if err != nil {
			return 0, fmt.Errorf("pay: %w", err)
		}
		var paid string
		if err := pay.Get(ctx, &paid); err != nil {
			return 0, fmt.Errorf("pay: %w", err)
		}
		if err := wf.Get(ctx, nil); err != nil {
			return 0, fmt.Errorf("result: %w", err)
		}
		return time.Since(start), nil
	}
	for i := range baselineWarmUp {
		if _, err := session(fmt.Sprintf("loadtest-baseline-%s-warmup-%d", run, i), i%2 == 1); err != nil {
			return BaselineResult{}, fmt.Errorf("baseline warm-up session: %w", err)
		}
	}

	waitedSessions := int(math.Round(cfg.Waited * float64(cfg.Sessions)))
	var (
		next     atomic.Int64
		failed   atomic.Int64
		mu       sync.Mutex
		took     []time.Duration
		firstErr error
		wg       sync.WaitGroup
	)
	start := time.Now()
	for range min(cfg.Concurrency, cfg.Sessions) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= cfg.Sessions || ctx.Err() != nil {
					return
				}
				d, err := session(fmt.Sprintf("loadtest-baseline-%s-%d", run, i), baselineWaits(i, cfg.Sessions, waitedSessions))
				mu.Lock()
				if err != nil {
					failed.Add(1)
					if firstErr == nil {
						firstErr = err
					}
				} else {
					took = append(took, d)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return BaselineResult{}, err
	}
	s := summarise(took)
	res := BaselineResult{
		Sessions: cfg.Sessions, Concurrency: cfg.Concurrency, Waited: waitedSessions, Shape: baselineShape(waitedSessions, cfg.Sessions),
		Failed: int(failed.Load()), Seconds: round(elapsed.Seconds(), 3), P50Ms: s.P50Ms, P99Ms: s.P99Ms, MaxMs: s.MaxMs,
		SessionsPerSecond: round(float64(len(took))/elapsed.Seconds(), 2), Run: run,
	}
	if firstErr != nil {
		res.FirstError = firstErr.Error()
	}
	if res.Failed > res.Sessions/100 {
		return res, fmt.Errorf("%d of %d baseline sessions failed, the first with: %w", res.Failed, res.Sessions, firstErr)
	}
	return res, nil
}
