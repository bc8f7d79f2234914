//go:build capture

package histories

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/temporalproto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/ticketing/concert/booking"
	"github.com/ticketing/concert/internal/teststack"
	"github.com/ticketing/concert/workflows"
)

const (
	eve   = "2026-12-24T19:00:00"
	price = 110_000
	// window is the hold and admission window of every captured run: short, so the expiring paths end within
	// seconds, yet long enough for the paying paths to make their few HTTP calls inside it.
	window = 4 * time.Second
	// anonymousIdentity replaces the pid@hostname identities of the capturing worker and client.
	anonymousIdentity = "history-capture"
)

// outDir is where workflows/replay_test.go reads the histories, relative to this package.
var outDir = filepath.Join("..", "..", "workflows", "testdata", "histories")

// TestCaptureHistories regenerates workflows/testdata/histories from real runs: every path of a booking
// session, driven through the HTTP API against PostgreSQL and an embedded Temporal server, and one closed run
// of a concert's waiting room. The file names are the paths workflows/replay_test.go requires.
func TestCaptureHistories(t *testing.T) {
	// Waiting sessions get their workflows before admission here, so the waiting paths have histories to
	// capture (by default they start with the admission, by Signal-with-Start).
	c := &capturer{t: t, s: teststack.Start(t, teststack.Options{HoldWindow: window, AdmissionWindow: window, StartWaitingQueue: 100})}
	// The paths that end when a window lapses go first, so their timers run while the others are driven.
	c.admissionExpired()
	c.holdExpiredAndSeatTaken()
	c.cancelledBySupport()
	c.admittedAtOncePaid()
	c.cancelledWhileActive()
	c.leftWhileHeld()
	c.orderOfThreeSeatsPaid()
	c.openedWithADraw()
	c.closedWhileWaiting()
	c.paidThenSoldOut()
	c.writeAll()
}

// run is one workflow run whose history is written once it has closed.
type run struct {
	file       string // base name in outDir, without .json
	workflowID string
	runID      string
	closed     enumspb.WorkflowExecutionStatus
}

// capturer drives the flows through the API and remembers the runs whose histories it writes.
type capturer struct {
	t    *testing.T
	s    *teststack.Stack
	runs []run
	// none are the booking IDs of sessions that must never get a workflow, so have no history.
	none []string
}

// admissionExpired: admitted at once, the user never holds a seat and the admission window lapses.
func (c *capturer) admissionExpired() {
	s := c.s
	s.CreateConcert("IDLE", 10, teststack.ConcertDate{Date: eve, Seats: 2, Price: price})
	u := s.CreateUser(0)
	require.Equal(c.t, "ACTIVE", s.Token("IDLE", u).Str("status"))
	c.capture("session-admission-expired", c.started("IDLE", u), enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED)
}

// holdExpiredAndSeatTaken: one user holds seat 1 and lets the hold lapse; another finds seat 1 taken, holds
// seat 2 instead and pays.
func (c *capturer) holdExpiredAndSeatTaken() {
	s := c.s
	s.CreateConcert("HOLD", 10, teststack.ConcertDate{Date: eve, Seats: 2, Price: price})
	slow, other := s.CreateUser(0), s.CreateUser(price)
	a, b := s.Token("HOLD", slow).Str("token"), s.Token("HOLD", other).Str("token")
	c.expect(c.reserve("HOLD", a, slow, 1), http.StatusOK, "")
	c.expect(c.reserve("HOLD", b, other, 1), http.StatusConflict, "/problems/seat-taken")
	c.expect(c.reserve("HOLD", b, other, 2), http.StatusOK, "")
	c.expect(c.pay(b, other), http.StatusCreated, "")
	c.capture("session-hold-expired", s.BookingID("HOLD", slow), enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED)
	c.capture("session-seat-taken-then-held", s.BookingID("HOLD", other), enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED)
}

// cancelledBySupport: support staff cancel one session while it waits and another while it holds a seat; the
// only slot of the concert is the holder's, so the waiter cannot be admitted meanwhile.
func (c *capturer) cancelledBySupport() {
	s := c.s
	s.CreateConcert("HELP", 1, teststack.ConcertDate{Date: eve, Seats: 2, Price: price})
	holder, waiter := s.CreateUser(0), s.CreateUser(0)
	h := s.Token("HELP", holder)
	require.Equal(c.t, "ACTIVE", h.Str("status"))
	require.Equal(c.t, "WAITING", s.Token("HELP", waiter).Str("status"))
	c.expect(c.reserve("HELP", h.Str("token"), holder, 1), http.StatusOK, "")
	waiting, holding := c.started("HELP", waiter), s.BookingID("HELP", holder)
	c.cancel(waiting)
	c.cancel(holding)
	c.capture("session-cancelled-while-waiting", waiting, enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED)
	c.capture("session-cancelled-while-held", holding, enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED)
}

// admittedAtOncePaid: a fan admitted at once at the join (no admission signal) holds a seat and pays. The
// reserve waits until the workflow has attached, so the captured history is the same on every run.
func (c *capturer) admittedAtOncePaid() {
	s := c.s
	s.CreateConcert("SOON", 10, teststack.ConcertDate{Date: eve, Seats: 2, Price: price})
	buyer := s.CreateUser(price)
	b := s.Token("SOON", buyer)
	require.Equal(c.t, "ACTIVE", b.Str("status"))
	id := c.started("SOON", buyer)
	c.reached(id, booking.StatusActive)
	c.expect(c.reserve("SOON", b.Str("token"), buyer, 1), http.StatusOK, "")
	c.expect(c.pay(b.Str("token"), buyer), http.StatusCreated, "")
	c.capture("session-admitted-at-once-paid", id, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED)
}

// cancelledWhileActive: support staff cancel a session admitted at once before it holds a seat, once its
// workflow has attached (so the cancel request never meets the attach in one workflow task).
func (c *capturer) cancelledWhileActive() {
	s := c.s
	s.CreateConcert("STOP", 10, teststack.ConcertDate{Date: eve, Seats: 2, Price: price})
	u := s.CreateUser(0)
	require.Equal(c.t, "ACTIVE", s.Token("STOP", u).Str("status"))
	id := c.started("STOP", u)
	c.reached(id, booking.StatusActive)
	c.cancel(id)
	c.capture("session-cancelled-while-active", id, enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED)
}

// leftWhileHeld: a fan admitted at once holds a seat, then leaves (DELETE on the token): the leave update
// gives the seat back at once and the session ends CANCELLED.
func (c *capturer) leftWhileHeld() {
	s := c.s
	s.CreateConcert("QUIT", 10, teststack.ConcertDate{Date: eve, Seats: 2, Price: price})
	u := s.CreateUser(0)
	tok := s.Token("QUIT", u)
	require.Equal(c.t, "ACTIVE", tok.Str("status"))
	id := c.started("QUIT", u)
	c.reached(id, booking.StatusActive)
	c.expect(c.reserve("QUIT", tok.Str("token"), u, 1), http.StatusOK, "")
	c.expect(s.Do(http.MethodDelete, "/api/v1/concerts/QUIT/token", tok.Str("token"), nil), http.StatusOK, "")
	c.capture("session-left-while-held", id, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED)
}

// orderOfThreeSeatsPaid: a fan admitted at once to a concert whose orders may hold three seats holds one
// seat, then two more in one request, and pays for the three at once.
func (c *capturer) orderOfThreeSeatsPaid() {
	s := c.s
	r := s.Do(http.MethodPost, "/api/v1/admin/concerts", teststack.AdminToken, map[string]any{
		"concertCode": "TRIO", "title": "Three of us", "maxActive": 5, "maxSeatsPerOrder": 3,
		"dates": []map[string]any{{"concertDate": eve, "seats": 4, "price": price}},
	})
	c.expect(r, http.StatusCreated, "")
	u := s.CreateUser(3 * price)
	tok := s.Token("TRIO", u)
	require.Equal(c.t, "ACTIVE", tok.Str("status"))
	id := c.started("TRIO", u)
	c.reached(id, booking.StatusActive)
	c.expect(c.reserve("TRIO", tok.Str("token"), u, 1), http.StatusOK, "")
	c.expect(s.Do(http.MethodPatch, "/api/v1/concerts/TRIO", tok.Str("token"),
		map[string]any{"UUID": u, "concertDate": eve, "seatNumbers": []int{2, 3}}), http.StatusOK, "")
	c.expect(c.pay(tok.Str("token"), u), http.StatusCreated, "")
	c.capture("session-order-of-three-seats-paid", id, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED)
}

// openedWithADraw: a concert whose sale opens a few seconds after it is created. Two fans ask before the
// opening and wait with slots free; the waiting room sleeps until the opening, draws their order and admits
// both. The waiting room's run is captured (closed by a cancel request, as operators close it).
func (c *capturer) openedWithADraw() {
	s := c.s
	opens := time.Now().Add(3 * time.Second).UTC()
	r := s.Do(http.MethodPost, "/api/v1/admin/concerts", teststack.AdminToken, map[string]any{
		"concertCode": "DOOR", "title": "Doors open", "maxActive": 5, "opensAt": opens.Format(time.RFC3339Nano),
		"dates": []map[string]any{{"concertDate": eve, "seats": 4, "price": price}},
	})
	c.expect(r, http.StatusCreated, "")
	a, b := s.CreateUser(0), s.CreateUser(0)
	ta, tb := s.Token("DOOR", a), s.Token("DOOR", b)
	require.Equal(c.t, "WAITING", ta.Str("status"))
	require.Equal(c.t, "WAITING", tb.Str("status"))
	for _, tok := range []teststack.Response{ta, tb} {
		require.EventuallyWithT(c.t, func(ct *assert.CollectT) {
			assert.Equal(ct, "ACTIVE", s.Do(http.MethodGet, "/api/v1/concerts/DOOR/token", tok.Str("token"), nil).Str("status"))
		}, 30*time.Second, 100*time.Millisecond)
	}
	c.admissionRun("admission-opened-with-a-draw", "DOOR")
}

// closedWhileWaiting: a concert of one slot whose sale closes a few seconds after its creation. One fan is
// admitted at once and lets the admission window lapse; the fan behind waits (with a workflow, as every
// waiter has here) until the waiting room wakes at the closing and ends it CLOSED. Both the waiter's run and
// the room's are captured.
func (c *capturer) closedWhileWaiting() {
	s := c.s
	closes := time.Now().Add(3 * time.Second).UTC()
	r := s.Do(http.MethodPost, "/api/v1/admin/concerts", teststack.AdminToken, map[string]any{
		"concertCode": "SHUT", "title": "Last call", "maxActive": 1, "closesAt": closes.Format(time.RFC3339Nano),
		"dates": []map[string]any{{"concertDate": eve, "seats": 4, "price": price}},
	})
	c.expect(r, http.StatusCreated, "")
	in, out := s.CreateUser(0), s.CreateUser(0)
	require.Equal(c.t, "ACTIVE", s.Token("SHUT", in).Str("status"))
	wait := s.Token("SHUT", out)
	require.Equal(c.t, "WAITING", wait.Str("status"))
	waiting := c.started("SHUT", out)
	c.capture("session-closed-while-waiting", waiting, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED)
	require.EventuallyWithT(c.t, func(ct *assert.CollectT) {
		assert.Equal(ct, "CLOSED", s.Do(http.MethodGet, "/api/v1/concerts/SHUT/token", wait.Str("token"), nil).Str("status"))
	}, 30*time.Second, 100*time.Millisecond)
	c.admissionRun("admission-closed", "SHUT")
}

// paidThenSoldOut: a concert of two seats that admits one session at a time. The first user buys at once;
// the waiting room then admits the buyer, who holds the last seat, is short of money, tops up and pays; the
// waiter behind ends SOLD_OUT, the waiting room closes, and a late user finds the concert sold out at the door:
// that session is born ended (its row says SOLD_OUT, and nothing will ever tell it anything), so it never
// gets a workflow and has no history to capture.
func (c *capturer) paidThenSoldOut() {
	t, s := c.t, c.s
	s.CreateConcert("LAST", 1, teststack.ConcertDate{Date: eve, Seats: 2, Price: price})
	first, buyer, waiter, late := s.CreateUser(price), s.CreateUser(0), s.CreateUser(0), s.CreateUser(0)
	f := s.Token("LAST", first)
	require.Equal(t, "ACTIVE", f.Str("status"))
	b := s.Token("LAST", buyer)
	require.Equal(t, "WAITING", b.Str("status"))
	w := s.Token("LAST", waiter)
	require.Equal(t, "WAITING", w.Str("status"))
	c.expect(c.reserve("LAST", f.Str("token"), first, 1), http.StatusOK, "")
	c.expect(c.pay(f.Str("token"), first), http.StatusCreated, "")

	// Wait until the workflow itself has the admission signal, not just the database, so the reserve below
	// never overtakes the signal and the captured history is the same on every run.
	buyerID := c.started("LAST", buyer)
	waiterID := c.started("LAST", waiter)
	c.reached(buyerID, booking.StatusActive)
	c.expect(c.reserve("LAST", b.Str("token"), buyer, 2), http.StatusOK, "")
	c.expect(c.pay(b.Str("token"), buyer), http.StatusPaymentRequired, "/problems/insufficient-balance")
	c.expect(s.Do(http.MethodPatch, "/api/v1/users/"+buyer+"/balance", "", map[string]any{"amount": price}), http.StatusOK, "")
	c.expect(c.pay(b.Str("token"), buyer), http.StatusCreated, "")

	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		r := s.Do(http.MethodGet, "/api/v1/concerts/LAST/token", w.Str("token"), nil)
		assert.Equal(ct, "SOLD_OUT", r.Str("status"))
	}, 30*time.Second, 100*time.Millisecond)
	require.Equal(t, "SOLD_OUT", s.Token("LAST", late).Str("status"))
	c.none = append(c.none, s.BookingID("LAST", late))

	c.capture("session-paid", buyerID, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED)
	c.capture("session-sold-out-while-waiting", waiterID, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED)
	c.admissionRun("admission-sold-out", "LAST")
}

// started waits until the API's starter has started the workflow of the user's newest session for the
// concert, and returns its booking ID.
func (c *capturer) started(code, user string) string {
	c.t.Helper()
	id := c.s.BookingID(code, user)
	require.EventuallyWithT(c.t, func(ct *assert.CollectT) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := c.s.Temporal.DescribeWorkflowExecution(ctx, id, "")
		assert.NoError(ct, err)
	}, 30*time.Second, 50*time.Millisecond, "the workflow of %s was not started", id)
	return id
}

// reached waits until the workflow itself reports the status (its query answers from workflow state, so
// the status has been recorded in its history, not just in the database).
func (c *capturer) reached(workflowID string, status booking.Status) {
	c.t.Helper()
	require.EventuallyWithT(c.t, func(ct *assert.CollectT) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		v, err := c.s.Temporal.QueryWorkflow(ctx, workflowID, "", workflows.QueryStatus)
		if !assert.NoError(ct, err) {
			return
		}
		var view workflows.StatusView
		if assert.NoError(ct, v.Get(&view)) {
			assert.Equal(ct, status, view.Status)
		}
	}, 30*time.Second, 100*time.Millisecond, "%s did not reach %s", workflowID, status)
}

// admissionRun captures the concert's waiting room. Since it keeps watch after a sell-out (stepping every
// idle minute), the capture closes it the way an operator can: a cancellation request from the Temporal UI.
func (c *capturer) admissionRun(file, code string) {
	c.t.Helper()
	id := workflows.AdmissionWorkflowID(code)
	c.capture(file, id, enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(c.t, c.s.Temporal.CancelWorkflow(ctx, id, ""))
}

func (c *capturer) reserve(code, token, user string, seat int) teststack.Response {
	c.t.Helper()
	return c.s.Do(http.MethodPatch, "/api/v1/concerts/"+code, token, map[string]any{"UUID": user, "concertDate": eve, "seatNumber": seat})
}

func (c *capturer) pay(token, user string) teststack.Response {
	c.t.Helper()
	return c.s.Do(http.MethodPost, "/api/v1/payments", token, map[string]any{"UUID": user})
}

// cancel cancels a booking as support staff do, and waits for the answer that the compensation has run.
func (c *capturer) cancel(bookingID string) {
	c.t.Helper()
	r := c.s.Do(http.MethodPost, "/api/v1/admin/bookings/"+bookingID+"/cancel", teststack.AdminToken,
		map[string]any{"reason": "customer asked on the phone", "actor": anonymousIdentity})
	c.expect(r, http.StatusOK, "")
	require.Equal(c.t, string(booking.StatusCancelled), r.Str("status"))
}

// expect fails the capture unless the response has the status and, if given, the problem type.
func (c *capturer) expect(r teststack.Response, status int, problemType string) {
	c.t.Helper()
	require.Equal(c.t, status, r.Status, string(r.Raw))
	if problemType != "" {
		require.Equal(c.t, problemType, r.ProblemType())
	}
}

// capture remembers the current run of a workflow, to be written once it closes as it should.
func (c *capturer) capture(file, workflowID string, closed enumspb.WorkflowExecutionStatus) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := c.s.Temporal.DescribeWorkflowExecution(ctx, workflowID, "")
	require.NoError(c.t, err, "describe %s", workflowID)
	c.runs = append(c.runs, run{file: file, workflowID: workflowID, runID: d.GetWorkflowExecutionInfo().GetExecution().GetRunId(), closed: closed})
}

// retired names the histories of earlier workflow code, which a capture never replaces.
var retired = regexp.MustCompile(`^v[0-9]+-`)

// writeAll waits for every captured run to close, then replaces the JSON files in outDir with their
// histories. Nothing is removed unless every run closed as expected.
func (c *capturer) writeAll() {
	t := c.t
	files := map[string][]byte{}
	for _, r := range c.runs {
		require.NotContains(t, files, r.file, "two runs captured as %s", r.file)
		c.waitClosed(r)
		files[r.file] = c.history(r)
	}
	// By now every other run has closed, seconds after these sessions ended: had anything started their
	// workflows, Temporal would know them.
	for _, id := range c.none {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.s.Temporal.DescribeWorkflowExecution(ctx, id, "")
		cancel()
		var notFound *serviceerror.NotFound
		require.ErrorAs(t, err, &notFound, "%s got a workflow", id)
	}
	stale, err := filepath.Glob(filepath.Join(outDir, "*.json"))
	require.NoError(t, err)
	for _, f := range stale {
		if retired.MatchString(filepath.Base(f)) {
			continue // runs of earlier code (v1-, v2-, ...): kept, since such runs may still be open after a deploy
		}
		require.NoError(t, os.Remove(f))
	}
	require.NoError(t, os.MkdirAll(outDir, 0o755))
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		path := filepath.Join(outDir, name+".json")
		require.NoError(t, os.WriteFile(path, files[name], 0o644))
		t.Logf("wrote %s (%d bytes)", path, len(files[name]))
	}
}

// waitClosed waits until the run has closed and checks that it closed the way its path ends.
func (c *capturer) waitClosed(r run) {
	t := c.t
	t.Helper()
	var status enumspb.WorkflowExecutionStatus
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d, err := c.s.Temporal.DescribeWorkflowExecution(ctx, r.workflowID, r.runID)
		if assert.NoError(ct, err) {
			status = d.GetWorkflowExecutionInfo().GetStatus()
			assert.NotEqual(ct, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, status)
		}
	}, 30*time.Second, 100*time.Millisecond, "%s (%s) did not close", r.file, r.workflowID)
	require.Equal(t, r.closed, status, "%s (%s) closed unexpectedly", r.file, r.workflowID)
}

// history fetches every event of the run and renders it as `temporal workflow show --output json` does:
// protobuf JSON with payloads in their full (not shorthand) form, which ReplayWorkflowHistoryFromJSONFile reads.
func (c *capturer) history(r run) []byte {
	t := c.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	it := c.s.Temporal.GetWorkflowHistory(ctx, r.workflowID, r.runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		e, err := it.Next()
		require.NoError(t, err, "history of %s", r.workflowID)
		h.Events = append(h.Events, e)
	}
	anonymize(h)
	raw, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(h)
	require.NoError(t, err)
	return append(raw, '\n')
}

// anonymize replaces every identity (pid@hostname of the worker or client that caused an event) and the name
// of the worker's sticky task queue (hostname:uuid), so the committed files do not name the capturing machine
// and a regeneration changes only what the runs did. Replay reads neither.
func anonymize(h *historypb.History) {
	clearIdentities(h.ProtoReflect())
	for _, e := range h.Events {
		if q := e.GetWorkflowTaskScheduledEventAttributes().GetTaskQueue(); q.GetKind() == enumspb.TASK_QUEUE_KIND_STICKY {
			q.Name = anonymousIdentity + ":sticky"
		}
	}
}

// clearIdentities replaces the value of every field named identity in m and the messages it holds.
func clearIdentities(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Kind() == protoreflect.StringKind && fd.Name() == "identity" && !fd.IsList() && !fd.IsMap():
			m.Set(fd, protoreflect.ValueOfString(anonymousIdentity))
		case fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind:
		case fd.IsList():
			for i, l := 0, v.List(); i < l.Len(); i++ {
				clearIdentities(l.Get(i).Message())
			}
		case fd.IsMap():
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					clearIdentities(mv.Message())
					return true
				})
			}
		default:
			clearIdentities(v.Message())
		}
		return true
	})
}
