package api_test

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"

	"github.com/ticketing/concert/booking"
	"github.com/ticketing/concert/db"
	"github.com/ticketing/concert/internal/teststack"
	"github.com/ticketing/concert/workflows"
)

func listBookings(t *testing.T, s *teststack.Stack, query string) []map[string]any {
	t.Helper()
	r := s.Do(http.MethodGet, "/api/v1/admin/bookings?"+query, teststack.AdminToken, nil)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	var out []map[string]any
	for _, b := range r.Body["bookings"].([]any) {
		out = append(out, b.(map[string]any))
	}
	return out
}

func bookingIDs(bs []map[string]any) []string {
	ids := []string{}
	for _, b := range bs {
		ids = append(ids, b["bookingId"].(string))
	}
	return ids
}

// TestSearchAttributesFindSessionsByConcertAndStatus proves that operators can filter sessions in Temporal
// visibility by ConcertCode, BookingStatus, ConcertDate and SeatNumber, through the admin API and with the
// very filter they type in the Temporal UI.
func TestSearchAttributesFindSessionsByConcertAndStatus(t *testing.T) {
	t.Parallel()
	// Waiting sessions are in Temporal before their admission only when the API starts them early.
	s := teststack.Start(t, teststack.Options{StartWaitingQueue: 100, WebUI: true})
	s.CreateConcert("OPS", 2, teststack.ConcertDate{Date: eve, Seats: 5, Price: price})
	s.CreateConcert("ELSE", 3, teststack.ConcertDate{Date: eve, Seats: 5, Price: price})
	held, active, paid, waiting, elsewhere := s.CreateUser(0), s.CreateUser(0), s.CreateUser(price), s.CreateUser(0), s.CreateUser(0)
	h := s.Token("OPS", held)
	require.Equal(t, http.StatusOK, s.Do(http.MethodPatch, "/api/v1/concerts/OPS", h.Str("token"), reserveBody(held, eve, 3)).Status)
	p := s.Token("OPS", paid)
	require.Equal(t, http.StatusOK, s.Do(http.MethodPatch, "/api/v1/concerts/OPS", p.Str("token"), reserveBody(paid, eve, 4)).Status)
	require.Equal(t, http.StatusCreated, s.Do(http.MethodPost, "/api/v1/payments", p.Str("token"), map[string]any{"UUID": paid}).Status)
	require.Equal(t, "ACTIVE", s.Token("OPS", active).Str("status"))
	require.Equal(t, "WAITING", s.Token("OPS", waiting).Str("status"))
	s.Token("ELSE", elsewhere)

	id := func(user string) string { return s.BookingID("OPS", user) }
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, []string{id(held)}, bookingIDs(listBookings(t, s, "concertCode=OPS&status=HELD")))
		assert.Equal(c, []string{id(active)}, bookingIDs(listBookings(t, s, "concertCode=OPS&status=ACTIVE")))
		assert.Equal(c, []string{id(paid)}, bookingIDs(listBookings(t, s, "concertCode=OPS&status=PAID")))
		assert.Equal(c, []string{id(waiting)}, bookingIDs(listBookings(t, s, "concertCode=OPS&status=WAITING")))
		assert.Len(c, listBookings(t, s, "concertCode=OPS"), 4)
		assert.Len(c, listBookings(t, s, "concertCode=ELSE"), 1)
	}, 30*time.Second, 200*time.Millisecond)

	b := listBookings(t, s, "concertCode=OPS&status=HELD")[0]
	assert.Equal(t, "OPS", b["concertCode"])
	assert.Equal(t, held, b["UUID"])
	assert.Equal(t, eve, b["concertDate"])
	assert.EqualValues(t, 3, b["seatNumber"])
	assert.NotEmpty(t, b["since"])
	assert.NotEmpty(t, b["deadline"])
	assert.Equal(t, false, b["stuck"])

	// The filters an operator types in the UI's search box, through the UI server's own HTTP API.
	count := func(query string) int { return len(s.ListInUI(query)) }
	assert.Equal(t, 1, count(`ConcertCode="OPS" AND BookingStatus="HELD"`))
	assert.Equal(t, 1, count(`ConcertCode="OPS" AND SeatNumber=4`))
	// The performance is the venue's local time, exactly as the API writes it, so equality works.
	assert.Equal(t, 2, count(`ConcertCode="OPS" AND ConcertDateLocal="`+eve+`"`))
	assert.Equal(t, 2, count(`ConcertCode="OPS" AND ConcertDateLocal STARTS_WITH "`+eve[:10]+`"`))
	assert.Equal(t, 0, count(`ConcertCode="OPS" AND ConcertDateLocal STARTS_WITH "2026-12-25"`))
	assert.Equal(t, 0, count(`ConcertCode="OPS" AND ConcertDate IS NOT NULL`), "the Datetime labelled UTC is no longer written")
	assert.Equal(t, 1, count(`ConcertCode="OPS" AND BookingStatus="PAID" AND SeatNumber=4`))

	// A seat given up leaves no trace in the filters: SeatNumber=3 finds nobody once its holder is cancelled.
	r := s.Do(http.MethodPost, "/api/v1/admin/bookings/"+id(held)+"/cancel", teststack.AdminToken,
		map[string]any{"reason": "test", "actor": "ops-test"})
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, 1, count(`ConcertCode="OPS" AND BookingStatus="CANCELLED"`))
	}, 30*time.Second, 200*time.Millisecond)
	assert.Equal(t, 0, count(`ConcertCode="OPS" AND SeatNumber=3`))
	assert.Equal(t, 1, count(`ConcertCode="OPS" AND ConcertDateLocal="`+eve+`"`), "only the buyer's session names the date")

	// The page an operator lands on names the session, its user and how support ends it.
	desc, err := s.Temporal.DescribeWorkflowExecution(context.Background(), id(paid), "")
	require.NoError(t, err)
	var summary, details string
	dc := converter.GetDefaultDataConverter()
	require.NoError(t, dc.FromPayload(desc.GetExecutionConfig().GetUserMetadata().GetSummary(), &summary))
	require.NoError(t, dc.FromPayload(desc.GetExecutionConfig().GetUserMetadata().GetDetails(), &details))
	sessionID, ok := workflows.SessionIDFromWorkflowID(id(paid))
	require.True(t, ok)
	assert.Contains(t, summary, sessionID)
	assert.Contains(t, details, paid)
	assert.Contains(t, details, "concert admin bookings cancel "+id(paid))
}

// TestOperatorsPauseResumeAndResizeAdmission proves that pausing holds new sessions in the queue even with
// free slots, resuming admits them within seconds, and raising maxActive admits more at once.
func TestOperatorsPauseResumeAndResizeAdmission(t *testing.T) {
	t.Parallel()
	s := teststack.Start(t, teststack.Options{})
	s.CreateConcert("GATE", 1, teststack.ConcertDate{Date: eve, Seats: 5, Price: price})
	first, second := s.CreateUser(0), s.CreateUser(0)
	admission := func(body map[string]any) teststack.Response {
		return s.Do(http.MethodPost, "/api/v1/admin/concerts/GATE/admission", teststack.AdminToken, body)
	}

	r := admission(map[string]any{"paused": true})
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	assert.Equal(t, true, r.Body["paused"])
	assert.EqualValues(t, 1, r.Int("maxActive"))
	a := s.Token("GATE", first)
	assert.Equal(t, "WAITING", a.Str("status"), "a paused concert admits nobody, even with a free slot")

	r = admission(map[string]any{"paused": false})
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	waitForStatus(t, s, "GATE", a.Str("token"), "ACTIVE")

	b := s.Token("GATE", second)
	assert.Equal(t, "WAITING", b.Str("status"), "maxActive 1 is taken")
	r = admission(map[string]any{"maxActive": 2})
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	assert.Equal(t, false, r.Body["paused"])
	waitForStatus(t, s, "GATE", b.Str("token"), "ACTIVE")

	for _, bad := range []map[string]any{{}, {"maxActive": 0}, {"paused": "yes"}, {"maxActive": 1.5}} {
		r := admission(bad)
		assert.Equal(t, http.StatusBadRequest, r.Status, "%v", bad)
	}
	assert.Equal(t, http.StatusNotFound, s.Do(http.MethodPost, "/api/v1/admin/concerts/NOPE/admission", teststack.AdminToken, map[string]any{"paused": true}).Status)
	assert.Equal(t, http.StatusUnauthorized, s.Do(http.MethodPost, "/api/v1/admin/concerts/GATE/admission", "", map[string]any{"paused": true}).Status)
	trail, err := s.Store.AuditTrail(context.Background(), "GATE")
	require.NoError(t, err)
	assert.Len(t, trail, 3, "every applied change is audited")
}

// TestSupportCancelReleasesTheSeatOnce proves that support staff can cancel a stuck booking: the workflow's
// compensation releases the seat, the session ends CANCELLED, its token stops working, the action is audited,
// a second cancel is harmless and a paid booking cannot be cancelled.
func TestSupportCancelReleasesTheSeatOnce(t *testing.T) {
	t.Parallel()
	s := teststack.Start(t, teststack.Options{})
	s.CreateConcert("HELP", 5, teststack.ConcertDate{Date: eve, Seats: 5, Price: price})
	stuck, buyer, watcher := s.CreateUser(0), s.CreateUser(price), s.CreateUser(0)
	a := s.Token("HELP", stuck)
	require.Equal(t, http.StatusOK, s.Do(http.MethodPatch, "/api/v1/concerts/HELP", a.Str("token"), reserveBody(stuck, eve, 2)).Status)
	w := s.Token("HELP", watcher)
	assertSeat(t, s, "HELP", w.Str("token"), eve, 2, "HELD")

	id := s.BookingID("HELP", stuck)
	cancel := func(bookingID string) teststack.Response {
		req := map[string]any{"reason": "customer called: payment page froze", "actor": "agent-7"}
		return s.Do(http.MethodPost, "/api/v1/admin/bookings/"+bookingID+"/cancel", teststack.AdminToken, req)
	}
	r := cancel(id)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	assert.Equal(t, "CANCELLED", r.Str("status"))
	assertSeat(t, s, "HELP", w.Str("token"), eve, 2, "AVAILABLE", "the compensation released the seat")
	assert.Equal(t, http.StatusGone, s.Do(http.MethodGet, "/api/v1/concerts/HELP", a.Str("token"), nil).Status)
	assert.Equal(t, "CANCELLED", s.Do(http.MethodGet, "/api/v1/concerts/HELP/token", a.Str("token"), nil).Str("status"))

	again := cancel(id)
	assert.Equal(t, http.StatusOK, again.Status, string(again.Raw))
	assert.Equal(t, "CANCELLED", again.Str("status"))
	assert.Equal(t, "already ended", again.Str("outcome"))

	trail, err := s.Store.AuditTrail(context.Background(), id)
	require.NoError(t, err)
	require.Len(t, trail, 2)
	assert.Equal(t, "agent-7", trail[0].Actor)
	assert.Equal(t, "customer called: payment page froze", trail[0].Reason)
	assert.Equal(t, "cancelled", trail[0].Outcome)
	assert.Equal(t, "already ended", trail[1].Outcome)

	b := s.Token("HELP", buyer)
	require.Equal(t, http.StatusOK, s.Do(http.MethodPatch, "/api/v1/concerts/HELP", b.Str("token"), reserveBody(buyer, eve, 2)).Status)
	require.Equal(t, http.StatusCreated, s.Do(http.MethodPost, "/api/v1/payments", b.Str("token"), map[string]any{"UUID": buyer}).Status)
	r = cancel(s.BookingID("HELP", buyer))
	assert.Equal(t, http.StatusConflict, r.Status)
	assert.Equal(t, "/problems/booking-paid", r.ProblemType())
	assertSeat(t, s, "HELP", w.Str("token"), eve, 2, "SOLD")

	r = cancel("booking-HELP-00000000-0000-4000-8000-000000000000")
	assert.Equal(t, http.StatusNotFound, r.Status)
	r = s.Do(http.MethodPost, "/api/v1/admin/bookings/"+id+"/cancel", teststack.AdminToken, map[string]any{})
	assert.Equal(t, http.StatusBadRequest, r.Status, "a reason is required")
}

// TestStuckSessionsAreListed proves the stuck filter: a HELD session whose hold window has passed by more
// than the grace period while no worker runs is listed as stuck; a healthy one is not.
func TestStuckSessionsAreListed(t *testing.T) {
	t.Parallel()
	s := teststack.Start(t, teststack.Options{HoldWindow: time.Second, StuckGrace: time.Second})
	s.CreateConcert("STUCK", 5, teststack.ConcertDate{Date: eve, Seats: 5, Price: price})
	u := s.CreateUser(0)
	a := s.Token("STUCK", u)
	require.Equal(t, http.StatusOK, s.Do(http.MethodPatch, "/api/v1/concerts/STUCK", a.Str("token"), reserveBody(u, eve, 1)).Status)
	assert.Empty(t, listBookings(t, s, "concertCode=STUCK&stuckOnly=true"), "a fresh hold is not stuck")
	s.StopWorker() // nothing will expire the hold now
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		stuck := listBookings(t, s, "concertCode=STUCK&stuckOnly=true")
		if assert.Len(c, stuck, 1) {
			assert.Equal(c, s.BookingID("STUCK", u), stuck[0]["bookingId"])
			assert.Equal(c, true, stuck[0]["stuck"])
			assert.Equal(c, true, stuck[0]["running"])
			assert.Contains(c, stuck[0]["stuckReason"], "workers")
			assert.EqualValues(c, 1, stuck[0]["seatNumber"])
		}
	}, 30*time.Second, 250*time.Millisecond)
	r := s.Do(http.MethodGet, "/api/v1/admin/bookings?status=NOPE", teststack.AdminToken, nil)
	assert.Equal(t, http.StatusBadRequest, r.Status)
}

// TestMetricsExposeHTTPTemporalAndBusinessFigures proves /metrics serves request counts by route template,
// the Temporal SDK's own metrics and the per-concert business figures.
func TestMetricsExposeHTTPTemporalAndBusinessFigures(t *testing.T) {
	t.Parallel()
	s := teststack.Start(t, teststack.Options{})
	s.CreateConcert("METRIC", 1, teststack.ConcertDate{Date: eve, Seats: 2, Price: price})
	buyer, waiter := s.CreateUser(price), s.CreateUser(0)
	b := s.Token("METRIC", buyer)
	require.Equal(t, http.StatusOK, s.Do(http.MethodPatch, "/api/v1/concerts/METRIC", b.Str("token"), reserveBody(buyer, eve, 1)).Status)
	require.Equal(t, http.StatusCreated, s.Do(http.MethodPost, "/api/v1/payments", b.Str("token"), map[string]any{"UUID": buyer}).Status)
	w := s.Token("METRIC", waiter)
	waitForStatus(t, s, "METRIC", w.Str("token"), "ACTIVE")
	s.Do(http.MethodGet, "/api/v1/no-such-thing", "", nil)

	req, err := http.NewRequest(http.MethodGet, s.URL+"/metrics", nil)
	require.NoError(t, err)
	resp, err := s.HTTP.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	text := string(raw)
	for _, want := range []string{
		`concert_http_requests_total{method="POST",route="/api/v1/payments",status="201"} 1`,
		`concert_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`concert_http_request_duration_seconds_bucket{method="PATCH",route="/api/v1/concerts/{concertCode}"`,
		`concert_sessions{concert="METRIC",status="PAID"} 1`,
		`concert_sessions{concert="METRIC",status="ACTIVE"} 1`,
		`concert_seats{concert="METRIC",status="SOLD"} 1`,
		`concert_admissions_total{concert="METRIC"} 2`,
		`temporal_request_total{`,
		`temporal_workflow_task_execution_latency_seconds_bucket{`,
	} {
		assert.Contains(t, text, want)
	}
	assert.NotContains(t, text, "/api/v1/no-such-thing", "raw paths never become labels")
}

// A cancellation from the Temporal UI ("Request Cancellation", clicked through the UI server's own HTTP API,
// which sends the RequestCancelWorkflowExecution any Temporal client sends) runs the session's compensation and leaves one audit row saying where it came from;
// one through the admin API leaves one row with support's actor and reason, not a second from the workflow.
func TestEveryCancelRoadLeavesOneAuditRow(t *testing.T) {
	t.Parallel()
	s := teststack.Start(t, teststack.Options{WebUI: true})
	s.CreateConcert("ROAD", 5, teststack.ConcertDate{Date: eve, Seats: 5, Price: price})
	fromUI, fromSupport, watcher := s.CreateUser(0), s.CreateUser(0), s.CreateUser(0)
	w := s.Token("ROAD", watcher)
	hold := func(user string, seat int) string {
		tok := s.Token("ROAD", user).Str("token")
		require.Equal(t, http.StatusOK, s.Do(http.MethodPatch, "/api/v1/concerts/ROAD", tok, reserveBody(user, eve, seat)).Status)
		return s.BookingID("ROAD", user)
	}
	uiID, supportID := hold(fromUI, 1), hold(fromSupport, 2)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.ClickInUI(uiID, "cancel", map[string]any{})           // "Request Cancellation": no reason, no identity
	_ = s.Temporal.GetWorkflow(ctx, uiID, "").Get(ctx, nil) // closes once the compensation ran
	assertSeat(t, s, "ROAD", w.Str("token"), eve, 1, "AVAILABLE", "the compensation released the seat")
	trail, err := s.Store.AuditTrail(context.Background(), uiID)
	require.NoError(t, err)
	require.Len(t, trail, 1, "one row for the cancellation from the UI")
	assert.Equal(t, "cancel", trail[0].Action)
	assert.Equal(t, db.TemporalCancelActor, trail[0].Actor)
	assert.Equal(t, db.TemporalCancelReason, trail[0].Reason)
	assert.Equal(t, "cancelled", trail[0].Outcome)
	require.NotNil(t, trail[0].SessionID)
	sid, ok := workflows.SessionIDFromWorkflowID(uiID)
	require.True(t, ok)
	assert.Equal(t, sid, *trail[0].SessionID)

	r := s.Do(http.MethodPost, "/api/v1/admin/bookings/"+supportID+"/cancel", teststack.AdminToken,
		map[string]any{"reason": "duplicate order", "actor": "agent-3"})
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	_ = s.Temporal.GetWorkflow(ctx, supportID, "").Get(ctx, nil)
	trail, err = s.Store.AuditTrail(context.Background(), supportID)
	require.NoError(t, err)
	require.Len(t, trail, 1, "the workflow's compensation adds no second row to support's")
	assert.Equal(t, "agent-3", trail[0].Actor)
	assert.Equal(t, "duplicate order", trail[0].Reason)
	assert.Equal(t, "cancelled", trail[0].Outcome)
}

// "Terminate" in the Temporal UI (clicked through the UI server's HTTP API) skips the session's compensation, so its seat
// stays held and its row live. The service repairs it by itself: once the session is past its window by the
// repair grace, the next waiting-room step ends it EXPIRED, frees the seat and records why, and `concert
// check` is clean again.
func TestATerminatedSessionIsRepairedByTheService(t *testing.T) {
	t.Parallel()
	s := teststack.Start(t, teststack.Options{StuckGrace: time.Second, WebUI: true})
	s.Store.SetRepairAfter(time.Hour) // until the test has seen the stuck list
	s.CreateConcert("TERM", 5, teststack.ConcertDate{Date: eve, Seats: 5, Price: price})
	fan, watcher := s.CreateUser(0), s.CreateUser(0)
	tok := s.Token("TERM", fan).Str("token")
	require.Equal(t, http.StatusOK, s.Do(http.MethodPatch, "/api/v1/concerts/TERM", tok, reserveBody(fan, eve, 3)).Status)
	id := s.BookingID("TERM", fan)
	sid, ok := workflows.SessionIDFromWorkflowID(id)
	require.True(t, ok)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.ClickInUI(id, "terminate", map[string]any{"reason": "clicked Terminate in the UI"})
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		d, err := s.Temporal.DescribeWorkflowExecution(ctx, id, "")
		if assert.NoError(c, err) {
			assert.Equal(c, enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, d.GetWorkflowExecutionInfo().GetStatus())
		}
	}, 10*time.Second, 100*time.Millisecond)
	// The hold window passes (moved into the past rather than waited for): nothing ends the session now.
	_, err := s.SQL.ExecContext(ctx, `UPDATE sessions SET held_until = now() - interval '5 seconds' WHERE id = $1`, sid)
	require.NoError(t, err)
	_, err = s.SQL.ExecContext(ctx, `UPDATE seats SET held_until = now() - interval '5 seconds' WHERE session_id = $1`, sid)
	require.NoError(t, err)
	violations, err := s.Store.CheckInvariants(ctx, time.Second)
	require.NoError(t, err)
	require.NotEmpty(t, violations, "the stale hold is what concert check reports")

	// Support sees it in the stuck list although its workflow no longer runs, with what will happen.
	stuck := listBookings(t, s, "concertCode=TERM&stuckOnly=true")
	require.Len(t, stuck, 1)
	assert.Equal(t, id, stuck[0]["bookingId"])
	assert.Equal(t, false, stuck[0]["running"])
	assert.Contains(t, stuck[0]["stuckReason"], "terminated")
	assert.Contains(t, stuck[0]["stuckReason"], "will end it by")
	s.Store.SetRepairAfter(time.Second)
	stuck = listBookings(t, s, "concertCode=TERM&stuckOnly=true&status=HELD")
	require.Len(t, stuck, 1)
	assert.Contains(t, stuck[0]["stuckReason"], "cancel it", "past its repair time, it needs a human")
	assert.Empty(t, listBookings(t, s, "concertCode=TERM&stuckOnly=true&status=ACTIVE"))

	// Any step of the waiting room repairs it; a settings change wakes it now rather than at its idle minute.
	r := s.Do(http.MethodPost, "/api/v1/admin/concerts/TERM/admission", teststack.AdminToken, map[string]any{"maxActive": 5})
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		sess, err := s.Store.GetSession(ctx, sid)
		if assert.NoError(c, err) {
			assert.Equal(c, booking.StatusExpired, sess.Status)
		}
	}, 20*time.Second, 100*time.Millisecond)
	w := s.Token("TERM", watcher)
	assertSeat(t, s, "TERM", w.Str("token"), eve, 3, "AVAILABLE", "the repair released the seat")
	violations, err = s.Store.CheckInvariants(ctx, time.Second)
	require.NoError(t, err)
	assert.Empty(t, violations)
	trail, err := s.Store.AuditTrail(ctx, id)
	require.NoError(t, err)
	require.Len(t, trail, 1)
	assert.Equal(t, "expire", trail[0].Action)
	assert.Equal(t, db.RepairActor, trail[0].Actor)
	assert.Equal(t, "expired, seat released", trail[0].Outcome)
	assert.Empty(t, listBookings(t, s, "concertCode=TERM&stuckOnly=true"), "repaired, nothing is stuck")
}
