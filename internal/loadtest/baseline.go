package loadtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// BaselineConfig describes a measurement of the Temporal server's ceiling: the smallest possible session
// (start a workflow, one Update waited to completion, the workflow completes), run Sessions times with
// Concurrency in flight by a worker and a client inside this process, on a task queue of its own.
type BaselineConfig struct {
	// TemporalAddress and Namespace locate the Temporal server the booking service uses.
	TemporalAddress string
	Namespace       string
	// Sessions is how many sessions to run; 0 means as many as the booking run had users.
	Sessions int
	// Concurrency is how many sessions are in flight at once; 0 means the booking run's users in flight,
	// bounded by its maxActive (the users that can be talking to Temporal at once).
	Concurrency int
	// Client, if set, is used instead of dialling TemporalAddress (tests).
	Client client.Client
}

// BaselineResult is what the baseline measured. SessionsPerSecond is Sessions divided by the time from the
// first session's start to the last one's completion; the latencies are per session, from the
// Update-with-Start request to the workflow's result.
type BaselineResult struct {
	Sessions          int     `json:"sessions"`
	Concurrency       int     `json:"concurrency"`
	Failed            int     `json:"failed"`
	Seconds           float64 `json:"seconds"`
	SessionsPerSecond float64 `json:"sessionsPerSecond"`
	P50Ms             float64 `json:"p50Ms"`
	P99Ms             float64 `json:"p99Ms"`
	MaxMs             float64 `json:"maxMs"`
	// FirstError is the error of the first failed session, if any.
	FirstError string `json:"firstError,omitempty"`
}

// Names of the baseline workflow and its one update. The workflow is registered only by the load
// generator's own worker, under a name no booking worker knows.
const (
	baselineWorkflowName = "LoadtestBaselineSession"
	baselineUpdateName   = "finish"
	// baselineWarmUp sessions run before the measurement, so worker start-up and first connections are
	// not counted.
	baselineWarmUp = 5
)

// baselineSession is the smallest session there is: it waits for one update and completes. Sent with
// Update-with-Start, the whole run is a single workflow task.
func baselineSession(ctx workflow.Context) error {
	done := false
	if err := workflow.SetUpdateHandler(ctx, baselineUpdateName, func(workflow.Context) error {
		done = true
		return nil
	}); err != nil {
		return err
	}
	return workflow.Await(ctx, func() bool { return done })
}

// RunBaseline measures the baseline: it starts a worker for the baseline workflow on a fresh task queue,
// runs a few sessions to warm up, then runs and times cfg.Sessions sessions.
func RunBaseline(ctx context.Context, cfg BaselineConfig) (BaselineResult, error) {
	if cfg.Sessions < 1 || cfg.Concurrency < 1 {
		return BaselineResult{}, errors.New("baseline sessions and concurrency must be at least 1")
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
	run := fmt.Sprintf("%s-%04x", time.Now().UTC().Format("20060102-150405"), rand.Uint32()&0xffff)
	taskQueue := "concert-loadtest-baseline-" + run
	// The booking worker runs with the SDK's default options; so does this one.
	w := worker.New(c, taskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(baselineSession, workflow.RegisterOptions{Name: baselineWorkflowName})
	if err := w.Start(); err != nil {
		return BaselineResult{}, fmt.Errorf("start baseline worker: %w", err)
	}
	defer w.Stop()

	session := func(id string) (time.Duration, error) {
		start := time.Now()
		op := c.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
			ID: id, TaskQueue: taskQueue, WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
			WorkflowExecutionTimeout: 5 * time.Minute,
		}, baselineWorkflowName)
		h, err := c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
			StartWorkflowOperation: op,
			UpdateOptions: client.UpdateWorkflowOptions{
				UpdateName: baselineUpdateName, WaitForStage: client.WorkflowUpdateStageCompleted,
			},
		})
		if err != nil {
			return 0, err
		}
		if err := h.Get(ctx, nil); err != nil {
			return 0, err
		}
		if err := c.GetWorkflow(ctx, id, h.RunID()).Get(ctx, nil); err != nil {
			return 0, err
		}
		return time.Since(start), nil
	}
	for i := range baselineWarmUp {
		if _, err := session(fmt.Sprintf("loadtest-baseline-%s-warmup-%d", run, i)); err != nil {
			return BaselineResult{}, fmt.Errorf("baseline warm-up session: %w", err)
		}
	}

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
				i := next.Add(1) - 1
				if i >= int64(cfg.Sessions) || ctx.Err() != nil {
					return
				}
				d, err := session(fmt.Sprintf("loadtest-baseline-%s-%d", run, i))
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
		Sessions: cfg.Sessions, Concurrency: cfg.Concurrency, Failed: int(failed.Load()),
		Seconds: round(elapsed.Seconds(), 3), P50Ms: s.P50Ms, P99Ms: s.P99Ms, MaxMs: s.MaxMs,
		SessionsPerSecond: round(float64(len(took))/elapsed.Seconds(), 2),
	}
	if firstErr != nil {
		res.FirstError = firstErr.Error()
	}
	if res.Failed > res.Sessions/100 {
		return res, fmt.Errorf("%d of %d baseline sessions failed, the first with: %w", res.Failed, res.Sessions, firstErr)
	}
	return res, nil
}
