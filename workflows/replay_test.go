package workflows_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/ticketing/concert/booking"
	"github.com/ticketing/concert/workflows"
)

// historyDir holds histories captured from real runs of the whole stack by package internal/histories.
// Regenerate them (after adding a path, or after a versioned change retired the old code) with:
//
//	go test -tags capture ./internal/histories/ -count=1 -v
const historyDir = "testdata/histories"

// capturedPath is one path a workflow can take and what its captured history must show, so that no path's
// history can silently disappear or be replaced by another path's.
type capturedPath struct {
	file         string // in historyDir, without .json
	workflowType string
	last         enumspb.EventType // how the run closed
	status       booking.Status    // the SessionResult's status; "" for runs that return none
	// messages is every update (with its failure type, if it failed), signal and cancel request the run
	// received, in order of arrival.
	messages []string
	// ran are local activities the run must have recorded, in any order.
	ran []string
}

var (
	completed = enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
	cancelled = enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED
)

// capturedPaths is every path of a booking session and a waiting room that has admitted sessions and closed.
// A new path gets a row here (in laterSessionPaths, if it is a session's: it has no v3- history) and a flow in
// internal/histories. The v1- histories are of sessions started before PostgreSQL issued tokens (their
// workflow joined the queue itself through the join update); they stay, because such sessions may still be
// running when the new code is deployed.
//
// A session that finds the concert sold out at its join has no path here on the current code: its row is
// written SOLD_OUT and nothing ever starts its workflow (the capture checks that). v1-session-sold-out-at-join
// is that path from when the workflow joined the queue itself.
var capturedPaths = slices.Concat(sessionPaths, laterSessionPaths, earlier("v3-", sessionPaths), admissionPaths, olderPaths)

// sessionPaths are the paths of a session on the current code. The v3- histories are the same paths from
// before ConcertDateLocal (they wrote the Datetime ConcertDate; the commands are the same).
var sessionPaths = []capturedPath{
	{"session-paid", "BookingSession", completed, booking.StatusPaid,
		[]string{signal(booking.SignalAdmission), update(workflows.UpdateReserve),
			failedUpdate(workflows.UpdatePay, booking.ErrInsufficientBalance), update(workflows.UpdatePay)},
		[]string{"Attach", "HoldSeat", "Pay"}},
	{"session-hold-expired", "BookingSession", completed, booking.StatusExpired,
		[]string{update(workflows.UpdateReserve)},
		[]string{"Attach", "HoldSeat", "Release"}},
	{"session-admission-expired", "BookingSession", completed, booking.StatusExpired,
		nil,
		[]string{"Attach", "Release"}},
	{"session-sold-out-while-waiting", "BookingSession", completed, booking.StatusSoldOut,
		[]string{signal(booking.SignalAdmission)},
		[]string{"Attach"}},
	// The lost race for a held seat is answered by the API from PostgreSQL and never reaches the workflow.
	{"session-seat-taken-then-held", "BookingSession", completed, booking.StatusPaid,
		[]string{update(workflows.UpdateReserve), update(workflows.UpdatePay)},
		[]string{"Attach", "HoldSeat", "Pay"}},
	{"session-cancelled-while-held", "BookingSession", cancelled, "",
		[]string{update(workflows.UpdateReserve), cancelRequest},
		[]string{"Attach", "HoldSeat", "Release"}},
	{"session-cancelled-while-waiting", "BookingSession", cancelled, "",
		[]string{cancelRequest},
		[]string{"Attach", "Release"}},
}

// laterSessionPaths are paths of a session on the current code first captured after the v3- histories were.
var laterSessionPaths = []capturedPath{
	// Admitted at once at the join: no admission signal reaches the workflow.
	{"session-admitted-at-once-paid", "BookingSession", completed, booking.StatusPaid,
		[]string{update(workflows.UpdateReserve), update(workflows.UpdatePay)},
		[]string{"Attach", "HoldSeat", "Pay"}},
	{"session-cancelled-while-active", "BookingSession", cancelled, "",
		[]string{cancelRequest},
		[]string{"Attach", "Release"}},
	// The fan left while holding a seat (DELETE on the token): the leave update released it at once.
	{"session-left-while-held", "BookingSession", completed, booking.StatusCancelled,
		[]string{update(workflows.UpdateReserve), update(workflows.UpdateLeave)},
		[]string{"Attach", "HoldSeat", "Release"}},
	// An order of three seats (the concert's maxSeatsPerOrder): one seat, then two in one request while
	// HELD, then one payment for all.
	{"session-order-of-three-seats-paid", "BookingSession", completed, booking.StatusPaid,
		[]string{update(workflows.UpdateReserve), update(workflows.UpdateReserve), update(workflows.UpdatePay)},
		[]string{"Attach", "HoldSeat", "HoldSeat", "Pay"}},
	// Waited until the sale closed: the waiting room's CLOSED notice ended it, with nothing to release.
	{"session-closed-while-waiting", "BookingSession", completed, booking.StatusClosed,
		[]string{signal(booking.SignalAdmission)},
		[]string{"Attach"}},
}

var admissionPaths = []capturedPath{
	// A concert whose sale opened a few seconds after its creation: the room slept until the opening (one
	// version marker), then drew the pre-queue and admitted both fans.
	{"admission-opened-with-a-draw", "Admission", cancelled, "",
		[]string{signal(workflows.SignalWake), cancelRequest},
		[]string{"AdmitNext", "NotifyAdmissions"}},
	// A concert whose sale closed a few seconds after its creation, its one slot taken: woken at creation and
	// by the first waiter, the room then woke at the closing by its own timer and ended the waiter CLOSED.
	{"admission-closed", "Admission", cancelled, "",
		[]string{signal(workflows.SignalWake), signal(workflows.SignalWake), cancelRequest},
		[]string{"AdmitNext", "NotifyAdmissions"}},
	// Woken by the first two waiters, then by each payment that freed the one slot while someone waited.
	{"admission-sold-out", "Admission", cancelled, "",
		[]string{signal(workflows.SignalWake), signal(workflows.SignalWake), signal(workflows.SignalWake),
			signal(workflows.SignalWake), cancelRequest},
		[]string{"AdmitNext", "NotifyAdmissions"}},
}

var olderPaths = []capturedPath{
	{"v1-session-paid", "BookingSession", completed, booking.StatusPaid,
		[]string{update(workflows.UpdateJoin), signal(booking.SignalAdmission), update(workflows.UpdateReserve),
			failedUpdate(workflows.UpdatePay, booking.ErrInsufficientBalance), update(workflows.UpdatePay)},
		[]string{"JoinQueue", "HoldSeat", "Pay"}},
	{"v1-session-hold-expired", "BookingSession", completed, booking.StatusExpired,
		[]string{update(workflows.UpdateJoin), update(workflows.UpdateReserve)},
		[]string{"HoldSeat", "Release"}},
	{"v1-session-admission-expired", "BookingSession", completed, booking.StatusExpired,
		[]string{update(workflows.UpdateJoin)},
		[]string{"JoinQueue", "Release"}},
	{"v1-session-sold-out-while-waiting", "BookingSession", completed, booking.StatusSoldOut,
		[]string{update(workflows.UpdateJoin), signal(booking.SignalAdmission)},
		[]string{"JoinQueue"}},
	{"v1-session-sold-out-at-join", "BookingSession", completed, booking.StatusSoldOut,
		[]string{update(workflows.UpdateJoin)},
		[]string{"JoinQueue"}},
	{"v1-session-seat-taken-then-held", "BookingSession", completed, booking.StatusPaid,
		[]string{update(workflows.UpdateJoin), failedUpdate(workflows.UpdateReserve, booking.ErrSeatTaken),
			update(workflows.UpdateReserve), update(workflows.UpdatePay)},
		[]string{"HoldSeat", "Pay"}},
	{"v1-session-cancelled-while-held", "BookingSession", cancelled, "",
		[]string{update(workflows.UpdateJoin), update(workflows.UpdateReserve), cancelRequest},
		[]string{"HoldSeat", "Release"}},
	{"v1-session-cancelled-while-waiting", "BookingSession", cancelled, "",
		[]string{update(workflows.UpdateJoin), cancelRequest},
		[]string{"JoinQueue", "Release"}},
	{"v1-session-repeated-join", "BookingSession", completed, booking.StatusPaid,
		[]string{update(workflows.UpdateJoin), update(workflows.UpdateJoin), update(workflows.UpdateReserve), update(workflows.UpdatePay)},
		[]string{"HoldSeat", "Pay"}},
	// The v2- waiting room stepped every tick while every slot was taken (before sleeps-while-full).
	{"v2-admission-sold-out", "Admission", cancelled, "",
		[]string{signal(workflows.SignalWake), signal(workflows.SignalWake), cancelRequest},
		[]string{"AdmitNext", "NotifyAdmissions"}},
	{"v1-admission-sold-out", "Admission", completed, "",
		[]string{signal(workflows.SignalWake), signal(workflows.SignalWake)},
		[]string{"AdmitNext", "NotifyAdmissions"}},
}

// earlier names the histories of paths, captured from an earlier version of the code, with prefix.
func earlier(prefix string, paths []capturedPath) []capturedPath {
	out := make([]capturedPath, len(paths))
	for i, p := range paths {
		p.file = prefix + p.file
		out[i] = p
	}
	return out
}

func update(name string) string { return "update " + name }

func failedUpdate(name string, t booking.ErrorType) string {
	return "update " + name + " failed " + string(t)
}

func signal(name string) string { return "signal " + name }

const cancelRequest = "cancel requested"

// localActivityMarker names the markers in which the SDK records a local activity's type and result.
const localActivityMarker = "LocalActivity"

// TestReplay_EveryCapturedHistory_ReplaysWithoutNondeterminism replays each committed history against the
// current workflow code, registered under the names worker.New uses. A change that would break a running
// workflow (a timer, local activity, search attribute upsert or completion added, removed, renamed or
// reordered outside workflow.GetVersion) fails here before it is deployed.
func TestReplay_EveryCapturedHistory_ReplaysWithoutNondeterminism(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(historyDir, "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no histories in %s", historyDir)
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			t.Parallel()
			// Local activities need no registration: replay takes their results from the history's markers
			// (and checks each marker's activity type against the code). WorkflowReplayer registers
			// workflows only.
			replayer := worker.NewWorkflowReplayer()
			replayer.RegisterWorkflowWithOptions(workflows.BookingSession, workflow.RegisterOptions{Name: "BookingSession"})
			replayer.RegisterWorkflowWithOptions(workflows.Admission, workflow.RegisterOptions{Name: "Admission"})
			logger := sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
			require.NoError(t, replayer.ReplayWorkflowHistoryFromJSONFile(logger, file))
		})
	}
}

// TestReplay_CapturedHistories_CoverEveryPath proves the committed histories are exactly the paths listed in
// capturedPaths and that each file really is its path: the workflow type, how it closed, the session's final
// status, the messages it received and the local activities it ran.
func TestReplay_CapturedHistories_CoverEveryPath(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(historyDir, "*.json"))
	require.NoError(t, err)
	var have, want []string
	for _, f := range files {
		have = append(have, strings.TrimSuffix(filepath.Base(f), ".json"))
	}
	for _, p := range capturedPaths {
		want = append(want, p.file)
	}
	assert.ElementsMatch(t, want, have, "histories in %s must be exactly the captured paths", historyDir)

	for _, p := range capturedPaths {
		t.Run(p.file, func(t *testing.T) {
			h := readHistory(t, filepath.Join(historyDir, p.file+".json"))
			first, last := h.Events[0], h.Events[len(h.Events)-1]
			assert.Equal(t, p.workflowType, first.GetWorkflowExecutionStartedEventAttributes().GetWorkflowType().GetName())
			require.Equal(t, p.last, last.GetEventType())
			if p.status != "" {
				var res workflows.SessionResult
				require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(
					last.GetWorkflowExecutionCompletedEventAttributes().GetResult(), &res))
				assert.Equal(t, p.status, res.Status)
			}
			messages, ran := trace(t, h)
			assert.Equal(t, p.messages, messages)
			for _, a := range p.ran {
				assert.Contains(t, ran, a, "local activities recorded")
			}
		})
	}
}

func readHistory(t *testing.T, path string) *historypb.History {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(h.Events), 3, "%s is too short to be a history", path)
	return h
}

// trace lists what a history received (updates in order of acceptance with their failure type, signals,
// cancel requests) and the local activities whose markers it recorded.
func trace(t *testing.T, h *historypb.History) (messages, activities []string) {
	t.Helper()
	updateAt := map[int64]int{} // accepted event ID -> index in messages
	for _, e := range h.Events {
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
			updateAt[e.GetEventId()] = len(messages)
			messages = append(messages, update(e.GetWorkflowExecutionUpdateAcceptedEventAttributes().GetAcceptedRequest().GetInput().GetName()))
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
			a := e.GetWorkflowExecutionUpdateCompletedEventAttributes()
			i, ok := updateAt[a.GetAcceptedEventId()]
			require.True(t, ok, "update completed in event %d was never accepted", e.GetEventId())
			if f := a.GetOutcome().GetFailure(); f != nil {
				messages[i] += " failed " + f.GetApplicationFailureInfo().GetType()
			}
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
			messages = append(messages, signal(e.GetWorkflowExecutionSignaledEventAttributes().GetSignalName()))
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED:
			messages = append(messages, cancelRequest)
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			a := e.GetMarkerRecordedEventAttributes()
			if a.GetMarkerName() != localActivityMarker {
				continue // side effects and versions
			}
			var marker struct{ ActivityType string }
			require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(a.GetDetails()["data"], &marker))
			if !slices.Contains(activities, marker.ActivityType) {
				activities = append(activities, marker.ActivityType)
			}
		}
	}
	return messages, activities
}

// temporalBudget is what a path may cost Temporal at most, counted from its captured history: workflow tasks
// completed, history events, search-attribute upserts (each one a visibility write) and timers. The counts of
// today's histories are the budget; a change that makes a booking dearer fails here and must say why.
type temporalBudget struct {
	tasks, events, upserts, timers int
}

var temporalBudgets = map[string]temporalBudget{
	// Waited, admitted by the waiting room's signal, held, one payment refused for a short balance, paid.
	"session-paid": {tasks: 5, events: 35, upserts: 3, timers: 2},
	// Admitted at once, one seat lost to another fan (answered by the API), another held, paid: one task to
	// attach, one per update.
	"session-seat-taken-then-held": {tasks: 3, events: 25, upserts: 2, timers: 2},
	// Admitted at once, attached, then held and paid: one task to attach, one per update.
	"session-admitted-at-once-paid": {tasks: 3, events: 24, upserts: 2, timers: 2},
	// A hold's first task attaches and holds when the reserve's Update-with-Start started the workflow; they
	// are two tasks when the API's starter came first. The budget allows the second.
	"session-hold-expired":            {tasks: 3, events: 22, upserts: 2, timers: 2},
	"session-admission-expired":       {tasks: 2, events: 13, upserts: 1, timers: 1},
	"session-cancelled-while-held":    {tasks: 3, events: 24, upserts: 2, timers: 2},
	"session-cancelled-while-waiting": {tasks: 2, events: 12, upserts: 1, timers: 0},
	"session-cancelled-while-active":  {tasks: 2, events: 15, upserts: 1, timers: 1},
	"session-left-while-held":         {tasks: 3, events: 24, upserts: 2, timers: 2},
	// A further seat costs one task and no upsert: the order's status and window do not change.
	"session-order-of-three-seats-paid": {tasks: 4, events: 30, upserts: 2, timers: 2},
	"session-closed-while-waiting":      {tasks: 2, events: 11, upserts: 1, timers: 0},
	"session-sold-out-while-waiting":    {tasks: 2, events: 11, upserts: 1, timers: 0},
}

func TestCapturedHistories_StayWithinTheirTemporalBudget(t *testing.T) {
	for file, budget := range temporalBudgets {
		t.Run(file, func(t *testing.T) {
			h := readHistory(t, filepath.Join(historyDir, file+".json"))
			var got temporalBudget
			got.events = len(h.Events)
			for _, e := range h.Events {
				switch e.GetEventType() {
				case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
					got.tasks++
				case enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
					got.upserts++
				case enumspb.EVENT_TYPE_TIMER_STARTED:
					got.timers++
				}
			}
			assert.LessOrEqual(t, got.tasks, budget.tasks, "workflow tasks")
			assert.LessOrEqual(t, got.events, budget.events, "history events")
			assert.LessOrEqual(t, got.upserts, budget.upserts, "search-attribute upserts")
			assert.LessOrEqual(t, got.timers, budget.timers, "timers")
		})
	}
}
