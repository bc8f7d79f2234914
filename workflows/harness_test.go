package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/ticketing/concert/activities"
	"github.com/ticketing/concert/booking"
)

// The tests drive the workflows on a mocked clock that starts at t0, so every deadline below is exact.
var (
	t0          = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	concertDate = time.Date(2026, 12, 24, 19, 0, 0, 0, time.UTC)
)

const (
	testConcert = "IU-2026"
	testUser    = "3f2a6c1e-8d4b-4c8e-9a51-2b7f0e9d4c11"
	otherUser   = "9b1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f"
)

// laCall is one local activity the workflow started, as the test environment saw it.
type laCall struct {
	Name  string
	At    time.Time // workflow time at the start
	RunID string    // the run that started it, from the activity info, not from workflow code
	Args  []any     // the arguments after the context
}

// harness wraps a TestWorkflowEnvironment with a record of every local activity started and every timer
// scheduled, so a test can assert what did not happen as well as what did.
type harness struct {
	t      *testing.T
	env    *testsuite.TestWorkflowEnvironment
	calls  []laCall
	timers []time.Duration
}

func newHarness(t *testing.T, workflowID string) *harness {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(testLogger{t})
	env := suite.NewTestWorkflowEnvironment()
	env.SetStartTime(t0)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflowID, TaskQueue: TaskQueue})
	env.SetTestTimeout(15 * time.Second)           // real time; a hang fails the test instead of the whole run
	env.RegisterActivity(&activities.Activities{}) // as the worker does; the mocks below replace each method
	h := &harness{t: t, env: env}
	env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, args []any) {
		h.calls = append(h.calls, laCall{
			Name: info.ActivityType.Name, At: env.Now().UTC(), RunID: info.WorkflowExecution.RunID, Args: args,
		})
	})
	env.SetOnTimerScheduledListener(func(_ string, d time.Duration) { h.timers = append(h.timers, d) })
	return h
}

func newSessionHarness(t *testing.T) *harness {
	return newHarness(t, SessionWorkflowID(testConcert, testUser))
}

// forbidOthers makes any activity call that no earlier expectation matches fail the test at once (instead
// of running the real activity on a nil store). Call it after the test's own expectations.
func (h *harness) forbidOthers() {
	t := h.t
	unexpected := func(name string, arg any) error {
		t.Errorf("unexpected call %s(%+v)", name, arg)
		return temporal.NewNonRetryableApplicationError("unexpected call to "+name, "UnexpectedCall", nil)
	}
	h.env.OnActivity(acts.JoinQueue, mock.Anything, mock.Anything).Maybe().Return(
		func(_ context.Context, in activities.JoinInput) (activities.JoinResult, error) {
			return activities.JoinResult{}, unexpected("JoinQueue", in)
		})
	h.env.OnActivity(acts.Attach, mock.Anything, mock.Anything).Maybe().Return(
		func(_ context.Context, in string) (booking.Attachment, error) {
			return booking.Attachment{}, unexpected("Attach", in)
		})
	h.env.OnActivity(acts.HoldSeat, mock.Anything, mock.Anything).Maybe().Return(
		func(_ context.Context, in booking.Hold) (booking.Reservation, error) {
			return booking.Reservation{}, unexpected("HoldSeat", in)
		})
	h.env.OnActivity(acts.Pay, mock.Anything, mock.Anything).Maybe().Return(
		func(_ context.Context, in string) (booking.Payment, error) {
			return booking.Payment{}, unexpected("Pay", in)
		})
	h.env.OnActivity(acts.Release, mock.Anything, mock.Anything).Maybe().Return(
		func(_ context.Context, in activities.ReleaseInput) (booking.Status, error) {
			return "", unexpected("Release", in)
		})
	h.env.OnActivity(acts.AdmitNext, mock.Anything, mock.Anything).Maybe().Return(
		func(_ context.Context, in activities.AdmitInput) (booking.AdmissionStep, error) {
			return booking.AdmissionStep{}, unexpected("AdmitNext", in)
		})
	h.env.OnActivity(acts.NotifyAdmissions, mock.Anything, mock.Anything).Maybe().Return(
		func(_ context.Context, in []booking.Admission) error {
			return unexpected("NotifyAdmissions", in)
		})
}

// names lists the local activities started, in order.
func (h *harness) names() []string {
	out := make([]string, len(h.calls))
	for i, c := range h.calls {
		out[i] = c.Name
	}
	return out
}

// callsTo returns the recorded calls of one activity.
func (h *harness) callsTo(name string) []laCall {
	var out []laCall
	for _, c := range h.calls {
		if c.Name == name {
			out = append(out, c)
		}
	}
	return out
}

// call returns the n-th recorded call of one activity, failing the test (not panicking) if there is none.
func (h *harness) call(name string, n int) laCall {
	h.t.Helper()
	calls := h.callsTo(name)
	require.Greater(h.t, len(calls), n, "%s called at least %d times; calls: %v", name, n+1, h.names())
	return calls[n]
}

// updateOutcome is what the update callbacks reported.
type updateOutcome struct {
	Accepted, Rejected, Completed bool
	RejectErr                     error
	Result                        any
	Err                           error
	CompletedAt                   time.Time // workflow time of the answer
}

// update sends an update after the given workflow time and records its outcome.
func (h *harness) update(after time.Duration, name, id string, arg any) *updateOutcome {
	out := &updateOutcome{}
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(name, id, &testsuite.TestUpdateCallback{
			OnAccept: func() { out.Accepted = true },
			OnReject: func(err error) { out.Rejected = true; out.RejectErr = err },
			OnComplete: func(r any, err error) {
				out.Completed = true
				out.CompletedAt = h.env.Now().UTC()
				out.Result = r
				out.Err = err
			},
		}, arg)
	}, after)
	return out
}

// signal sends a signal after the given workflow time.
func (h *harness) signal(after time.Duration, name string, arg any) {
	h.env.RegisterDelayedCallback(func() { h.env.SignalWorkflow(name, arg) }, after)
}

// query runs the status query after the given workflow time; the value is filled in when it ran.
func query[V any](h *harness, after time.Duration) *V {
	v := new(V)
	h.env.RegisterDelayedCallback(func() {
		ev, err := h.env.QueryWorkflow(QueryStatus)
		if assert.NoError(h.t, err, "status query") {
			assert.NoError(h.t, ev.Get(v))
		}
	}, after)
	return v
}

// errorType is the application error type in err's chain, or "" if there is none.
func errorType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return ""
}

// testLogger sends workflow logs (but not debug logs) to the test's log, shown only when a test fails.
type testLogger struct{ t *testing.T }

func (l testLogger) Debug(string, ...any) {}
func (l testLogger) Info(msg string, keyvals ...any) {
	l.t.Log(append([]any{"INFO", msg}, keyvals...)...)
}
func (l testLogger) Warn(msg string, keyvals ...any) {
	l.t.Log(append([]any{"WARN", msg}, keyvals...)...)
}
func (l testLogger) Error(msg string, keyvals ...any) {
	l.t.Log(append([]any{"ERROR", msg}, keyvals...)...)
}
