package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/ticketing/concert/booking"
	"github.com/ticketing/concert/db"
	"github.com/ticketing/concert/workflows"
)

// DefaultStuckGrace is how far past its deadline (the end of its admission or hold window) a live session
// must be before support tooling calls it stuck. A session that far past its deadline means the workers are
// not making progress: its timer should have ended it long ago.
const DefaultStuckGrace = time.Minute

// admissionResponse reports a concert's waiting-room settings.
type admissionResponse struct {
	ConcertCode string `json:"concertCode"`
	Paused      bool   `json:"paused"`
	MaxActive   int    `json:"maxActive"`
}

// setAdmission pauses or resumes a concert's admission and changes maxActive; the waiting room is woken so
// the change takes effect at once. Lowering maxActive admits nobody new until enough sessions have left;
// nobody admitted is turned away.
func (h *Handler) setAdmission(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	code := mux.Vars(r)["concertCode"]
	if p := h.concertExists(r.Context(), code); p != nil {
		writeProblem(w, r, p)
		return
	}
	b, p := readBody(w, r, false)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	var paused *bool
	if raw, ok := b["paused"]; ok && string(raw) != "null" {
		switch string(raw) {
		case "true", "false":
			v := string(raw) == "true"
			paused = &v
		default:
			writeProblem(w, r, invalid("paused must be true or false"))
			return
		}
	}
	var maxActive *int
	if _, ok := b["maxActive"]; ok {
		n, p := b.integer("maxActive")
		if p != nil {
			writeProblem(w, r, p)
			return
		}
		if n < 1 || n > maxMaxActive {
			writeProblem(w, r, invalid("maxActive must be between 1 and %d", maxMaxActive))
			return
		}
		v := int(n)
		maxActive = &v
	}
	if paused == nil && maxActive == nil {
		writeProblem(w, r, invalid("give paused, maxActive or both"))
		return
	}
	c, err := h.store.SetAdmission(r.Context(), code, paused, maxActive)
	if err != nil {
		writeProblem(w, r, h.storeProblem(ctx, err, "concert-not-found", "no concert has code "+code))
		return
	}
	reason := fmt.Sprintf("paused=%t maxActive=%d", c.AdmissionPaused, c.MaxActive)
	if _, err := h.store.RecordAudit(r.Context(), db.AuditEntry{
		Action: "admission", Target: code, Actor: actor(r, nil), Reason: reason, Outcome: "applied",
	}); err != nil {
		logFrom(ctx, h.log).Error("Could not audit an admission change", "concertCode", code, "error", err)
	}
	if err := h.door.WakeAdmission(r.Context(), code); err != nil {
		logFrom(ctx, h.log).Warn("Could not wake the waiting room", "concertCode", code, "error", err)
	}
	logFrom(ctx, h.log).Info("Admission changed", "concertCode", code, "paused", c.AdmissionPaused, "maxActive", c.MaxActive)
	writeJSON(w, http.StatusOK, admissionResponse{ConcertCode: c.Code, Paused: c.AdmissionPaused, MaxActive: c.MaxActive})
}

// bookingView is one session as support staff see it.
type bookingView struct {
	BookingID   string     `json:"bookingId"`
	SessionID   string     `json:"sessionId"`
	RunID       string     `json:"runId"`
	ConcertCode string     `json:"concertCode"`
	UUID        string     `json:"UUID"`
	Status      string     `json:"status"`
	ConcertDate *string    `json:"concertDate"`
	SeatNumber  *int64     `json:"seatNumber"`
	Since       *time.Time `json:"since"`
	Deadline    *time.Time `json:"deadline"`
	Stuck       bool       `json:"stuck"`
	Running     bool       `json:"running"`
	// StuckReason says, for a stuck session, what its workflow shows and what support should do.
	StuckReason string `json:"stuckReason,omitempty"`
}

// maxListLimit bounds one page of the bookings list.
const maxListLimit = 1000

// listBookings lists sessions from Temporal visibility, filtered by concert, status and stuckness.
func (h *Handler) listBookings(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	clauses := []string{"WorkflowType = 'BookingSession'"}
	if code := q.Get("concertCode"); code != "" {
		if !booking.ValidConcertCode(code) {
			writeProblem(w, r, invalid("concertCode %q is not a valid concert code", code))
			return
		}
		clauses = append(clauses, fmt.Sprintf("%s = '%s'", workflows.ConcertCodeKey.GetName(), code))
	}
	if st := q.Get("status"); st != "" {
		if !booking.Status(st).Valid() {
			writeProblem(w, r, invalid("status must be one of WAITING, ACTIVE, HELD, PAID, EXPIRED, CANCELLED, SOLD_OUT"))
			return
		}
		clauses = append(clauses, fmt.Sprintf("%s = '%s'", workflows.BookingStatusKey.GetName(), st))
	}
	now := time.Now()
	stuckOnly := false
	if s := q.Get("stuckOnly"); s != "" {
		v, err := strconv.ParseBool(s)
		if err != nil {
			writeProblem(w, r, invalid("stuckOnly must be true or false"))
			return
		}
		stuckOnly = v
	}
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxListLimit {
			writeProblem(w, r, invalid("limit must be between 1 and %d", maxListLimit))
			return
		}
		limit = n
	}
	if stuckOnly {
		if q.Get("pageToken") != "" {
			writeProblem(w, r, invalid("stuckOnly lists one page, oldest deadline first; it takes no pageToken"))
			return
		}
		h.listStuck(w, r, q.Get("concertCode"), q.Get("status"), limit, now)
		return
	}
	var pageToken []byte
	if s := q.Get("pageToken"); s != "" {
		t, err := base64.RawURLEncoding.DecodeString(s)
		// Temporal's page tokens are JSON documents; anything else it cannot decode (and the SDK would retry).
		if err != nil || !json.Valid(t) || (len(t) > 0 && t[0] != '{') {
			writeProblem(w, r, invalid("pageToken is not a token this API returned"))
			return
		}
		pageToken = t
	}
	resp, err := h.temporal.ListWorkflow(r.Context(), &workflowservice.ListWorkflowExecutionsRequest{
		PageSize: int32(limit), NextPageToken: pageToken, Query: strings.Join(clauses, " AND "),
	})
	if err != nil {
		var invalidArg *serviceerror.InvalidArgument
		if errors.As(err, &invalidArg) {
			writeProblem(w, r, invalid("pageToken is not a token this API returned"))
			return
		}
		writeProblem(w, r, h.workflowProblem(ctx, err))
		return
	}
	out := make([]bookingView, 0, len(resp.Executions))
	var sessionIDs []string
	for _, ex := range resp.Executions {
		v := toBookingView(ex.GetExecution().GetWorkflowId(), ex.GetExecution().GetRunId(),
			ex.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, ex.GetSearchAttributes(), now, h.cfg.StuckGrace)
		out = append(out, v)
		sessionIDs = append(sessionIDs, v.SessionID)
	}
	// Visibility holds no personal data: the users come from the store of record.
	users, err := h.store.SessionUsers(ctx, sessionIDs)
	if err != nil {
		writeProblem(w, r, h.storeProblem(ctx, err, "", ""))
		return
	}
	for i := range out {
		if u, ok := users[out[i].SessionID]; ok {
			out[i].UUID = u
		}
	}
	body := map[string]any{"bookings": out, "stuckGraceSeconds": h.cfg.StuckGrace.Seconds()}
	if len(resp.NextPageToken) > 0 {
		body["nextPageToken"] = base64.RawURLEncoding.EncodeToString(resp.NextPageToken)
	}
	writeJSON(w, http.StatusOK, body)
}

// listStuck lists the sessions that are stuck: live in PostgreSQL, the store of record, more than the grace
// period past their deadline. Visibility cannot find them all: a terminated workflow is no longer running,
// and one that never started is not there at all. Each gets what its workflow shows and what to do.
func (h *Handler) listStuck(w http.ResponseWriter, r *http.Request, code, status string, limit int, now time.Time) {
	ctx := r.Context()
	if status != "" && status != string(booking.StatusActive) && status != string(booking.StatusHeld) {
		writeJSON(w, http.StatusOK, map[string]any{"bookings": []bookingView{}, "stuckGraceSeconds": h.cfg.StuckGrace.Seconds()})
		return
	}
	rows, err := h.store.OverdueSessions(ctx, code, status, now.Add(-h.cfg.StuckGrace), limit)
	if err != nil {
		writeProblem(w, r, h.storeProblem(ctx, err, "", ""))
		return
	}
	runs, err := h.workflowRuns(ctx, rows)
	if err != nil {
		writeProblem(w, r, h.workflowProblem(ctx, err))
		return
	}
	out := make([]bookingView, 0, len(rows))
	for _, row := range rows {
		deadline, since := row.Deadline.UTC(), row.StatusSince.UTC()
		v := bookingView{
			BookingID: row.WorkflowID, SessionID: row.ID, ConcertCode: row.ConcertCode, UUID: row.UserUUID,
			Status: string(row.Status), Since: &since, Deadline: &deadline, Stuck: true,
		}
		if !row.ConcertDate.IsZero() {
			d, n := booking.FormatDate(row.ConcertDate), int64(row.SeatNumber)
			v.ConcertDate, v.SeatNumber = &d, &n
		}
		run, found := runs[row.WorkflowID]
		v.RunID, v.Running = run.GetExecution().GetRunId(), found && run.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
		switch {
		case v.Running:
			v.StuckReason = "its workflow is running but has not ended it: are the workers, or their database, down?"
		case now.Before(row.RepairBy):
			v.StuckReason = fmt.Sprintf("its workflow is %s; the waiting room will end it by %s", workflowState(run, found),
				row.RepairBy.UTC().Format(time.RFC3339))
		default:
			v.StuckReason = fmt.Sprintf("its workflow is %s and the waiting room has not ended it (is admission-%s running?): cancel it",
				workflowState(run, found), row.ConcertCode)
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"bookings": out, "stuckGraceSeconds": h.cfg.StuckGrace.Seconds()})
}

// workflowRuns finds, in one visibility query, the workflow of each session: the run that is the session
// (sessions from before service-chosen IDs shared a workflow ID, and their session ID is the run ID), else
// the newest run of the ID.
func (h *Handler) workflowRuns(ctx context.Context, rows []db.OverdueSession) (map[string]*workflowpb.WorkflowExecutionInfo, error) {
	out := make(map[string]*workflowpb.WorkflowExecutionInfo, len(rows))
	if len(rows) == 0 {
		return out, nil
	}
	ids, sessions := make([]string, 0, len(rows)), make(map[string]string, len(rows))
	for _, row := range rows {
		ids = append(ids, "'"+row.WorkflowID+"'") // IDs are built from a checked concert code and a UUID
		sessions[row.WorkflowID] = row.ID
	}
	query := "WorkflowId IN (" + strings.Join(ids, ", ") + ")"
	var token []byte
	for {
		resp, err := h.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: query, NextPageToken: token, PageSize: int32(2 * len(rows)),
		})
		if err != nil {
			return nil, err
		}
		for _, ex := range resp.Executions {
			id := ex.GetExecution().GetWorkflowId()
			if _, seen := out[id]; !seen || ex.GetExecution().GetRunId() == sessions[id] {
				out[id] = ex
			}
		}
		if token = resp.NextPageToken; len(token) == 0 {
			return out, nil
		}
	}
}

// workflowState names what Temporal shows of a session's workflow, for the stuck reason.
func workflowState(run *workflowpb.WorkflowExecutionInfo, found bool) string {
	if !found {
		return "not in Temporal (never started, or past retention)"
	}
	return strings.ToLower(strings.TrimPrefix(run.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_"))
}

// toBookingView reads a session's search attributes. Its session ID is the tail of the workflow ID (for
// sessions from before service-chosen IDs, the run ID, and the tail is the user's UUID).
func toBookingView(workflowID, runID string, running bool, sa *commonpb.SearchAttributes, now time.Time, grace time.Duration) bookingView {
	v := bookingView{BookingID: workflowID, RunID: runID, Running: running, SessionID: runID}
	if len(workflowID) > 36 {
		v.UUID = workflowID[len(workflowID)-36:]
	}
	if id, ok := workflows.SessionIDFromWorkflowID(workflowID); ok {
		v.SessionID = id
	}
	dc := converter.GetDefaultDataConverter()
	fields := sa.GetIndexedFields()
	decode := func(name string, into any) bool {
		p, ok := fields[name]
		return ok && dc.FromPayload(p, into) == nil
	}
	decode(workflows.ConcertCodeKey.GetName(), &v.ConcertCode)
	decode(workflows.BookingStatusKey.GetName(), &v.Status)
	var t time.Time
	var d string
	switch {
	case decode(workflows.ConcertDateLocalKey.GetName(), &d):
		v.ConcertDate = &d
	case decode(workflows.ConcertDateKey.GetName(), &t): // written by sessions before ConcertDateLocal
		d = booking.FormatDate(t)
		v.ConcertDate = &d
	}
	var n int64
	if decode(workflows.SeatNumberKey.GetName(), &n) {
		v.SeatNumber = &n
	}
	if decode(workflows.BookingStatusSinceKey.GetName(), &t) {
		u := t.UTC()
		v.Since = &u
	}
	if decode(workflows.BookingDeadlineKey.GetName(), &t) {
		u := t.UTC()
		v.Deadline = &u
		st := booking.Status(v.Status)
		v.Stuck = running && (st == booking.StatusActive || st == booking.StatusHeld) && u.Before(now.Add(-grace))
	}
	return v
}

// outcomePending is the audit outcome of a cancellation that was requested but had not completed when the
// request stopped waiting.
const outcomePending = "cancel requested"

// cancelWait bounds how long a cancel request waits for the session's compensation to finish.
const cancelWait = 20 * time.Second

// cancelBooking cancels a session that has not paid: the workflow's own compensation releases its seat and
// ends it CANCELLED, and the action is audited. Cancelling an ended session changes nothing; a paid one
// answers 409.
func (h *Handler) cancelBooking(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := mux.Vars(r)["bookingId"]
	if !strings.HasPrefix(id, "booking-") || len(id) > 200 || !printable(id) {
		writeProblem(w, r, problem(http.StatusNotFound, "booking-not-found", "no booking has ID "+id))
		return
	}
	b, p := readBody(w, r, false)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	reason, p := b.str("reason")
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	if reason = strings.TrimSpace(reason); reason == "" || utf8.RuneCountInString(reason) > 500 {
		writeProblem(w, r, invalid("reason must be 1-500 characters"))
		return
	}
	if _, ok := b["actor"]; ok {
		if _, p := b.str("actor"); p != nil {
			writeProblem(w, r, p)
			return
		}
	}
	who := actor(r, b)
	// A booking ID ends with its session's ID; a session whose workflow has not started yet (it waits, and
	// its workflow starts with its admission) is still a booking support can cancel.
	sessionID, known := "", false
	if sid, ok := workflows.SessionIDFromWorkflowID(id); ok {
		if s, err := h.store.GetSession(ctx, sid); err == nil && s.WorkflowID == id {
			sessionID, known = sid, true
		} else if err != nil && !errors.Is(err, db.ErrNotFound) {
			writeProblem(w, r, h.storeProblem(ctx, err, "", ""))
			return
		}
	}
	runID, running := "", false
	desc, err := h.temporal.DescribeWorkflowExecution(ctx, id, "")
	var notFound *serviceerror.NotFound
	switch {
	case err == nil:
		info := desc.GetWorkflowExecutionInfo()
		runID = info.GetExecution().GetRunId()
		running = info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
	case errors.As(err, &notFound) && known:
	case errors.As(err, &notFound):
		writeProblem(w, r, problem(http.StatusNotFound, "booking-not-found", "no booking has ID "+id))
		return
	default:
		writeProblem(w, r, h.workflowProblem(ctx, err))
		return
	}
	if !known {
		sessionID = runID // a session from before service-chosen IDs: its ID is its run ID
	}

	// Recorded before the workflow is asked, so that its compensation, which audits cancellations that came
	// by way of Temporal alone, finds this one recorded and adds no second row.
	audit, err := h.store.RecordAudit(ctx, db.AuditEntry{
		Action: "cancel", Target: id, SessionID: &sessionID, Actor: who, Reason: reason, Outcome: outcomePending,
	})
	if err != nil {
		logFrom(ctx, h.log).Error("Could not audit a cancellation", "bookingId", id, "error", err)
		writeProblem(w, r, h.storeProblem(ctx, err, "", ""))
		return
	}
	outcome, status, p := h.cancelSession(ctx, id, sessionID, runID, running)
	h.readSessions.forget(sessionID)
	if err := h.store.SetAuditOutcome(context.WithoutCancel(ctx), audit.ID, outcome); err != nil {
		logFrom(ctx, h.log).Error("Could not record the outcome of a cancellation", "bookingId", id, "error", err)
		if p == nil {
			p = h.storeProblem(ctx, err, "", "")
		}
	}
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	logFrom(ctx, h.log).Info("Booking cancelled by support", "bookingId", id, "actor", who, "outcome", outcome)
	code := http.StatusOK
	if outcome == outcomePending {
		code = http.StatusAccepted // the workers are behind; the cancellation stands and completes when they catch up
	}
	writeJSON(w, code, map[string]any{"bookingId": id, "sessionId": sessionID, "runId": runID, "status": status, "outcome": outcome})
}

// cancelSession does the cancellation and says what came of it: the outcome for the audit, the session's
// status, or the problem to answer with.
func (h *Handler) cancelSession(ctx context.Context, workflowID, sessionID, runID string, running bool) (string, booking.Status, *Problem) {
	s, err := h.store.GetSession(ctx, sessionID)
	if err != nil && !errors.Is(err, db.ErrNotFound) {
		return "failed", "", h.storeProblem(ctx, err, "", "")
	}
	switch {
	case err == nil && s.Status == booking.StatusPaid:
		return "refused: paid", s.Status, problem(http.StatusConflict, "booking-paid", "the booking is paid; cancelling it would need a refund")
	case err == nil && s.Status.Terminal():
		return "already ended", s.Status, nil
	case !running:
		// The workflow is gone (terminated), or never started, but the database still calls the session live:
		// release it here, since no compensation will run.
		if err := h.store.Release(ctx, sessionID, booking.StatusCancelled); err != nil {
			return "failed", "", h.storeProblem(ctx, err, "", "")
		}
		return "released without workflow", booking.StatusCancelled, nil
	}
	if err := h.temporal.CancelWorkflow(ctx, workflowID, runID); err != nil {
		var notFound *serviceerror.NotFound
		if !errors.As(err, &notFound) {
			return "failed", "", h.workflowProblem(ctx, err)
		}
	}
	// Wait for the compensation: the run closes once the seat is released.
	wctx, cancel := context.WithTimeout(ctx, cancelWait)
	defer cancel()
	_ = h.temporal.GetWorkflow(wctx, workflowID, runID).Get(wctx, nil)
	s, err = h.store.GetSession(ctx, sessionID)
	switch {
	case err != nil && errors.Is(err, db.ErrNotFound):
		return "cancelled", booking.StatusCancelled, nil
	case err != nil:
		return "failed", "", h.storeProblem(ctx, err, "", "")
	case s.Status == booking.StatusPaid:
		return "refused: paid", s.Status, problem(http.StatusConflict, "booking-paid", "the booking was paid before the cancellation took effect")
	case !s.Status.Terminal():
		return outcomePending, s.Status, nil
	}
	return "cancelled", s.Status, nil
}

// actor names who did an admin action: the body's "actor", else the X-Actor header, else "admin". The admin
// token is shared, so this is what the caller says, recorded for the audit trail.
func actor(r *http.Request, b body) string {
	usable := func(s string) bool {
		return s != "" && utf8.ValidString(s) && !strings.ContainsRune(s, 0) && utf8.RuneCountInString(s) <= 100
	}
	if b != nil {
		if _, ok := b["actor"]; ok {
			if s, p := b.str("actor"); p == nil && usable(strings.TrimSpace(s)) {
				return strings.TrimSpace(s)
			}
		}
	}
	if s := strings.TrimSpace(r.Header.Get("X-Actor")); usable(s) {
		return s
	}
	return "admin"
}
