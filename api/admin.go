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
	ConcertCode string     `json:"concertCode"`
	Paused      bool       `json:"paused"`
	MaxActive   int        `json:"maxActive"`
	OpensAt     *time.Time `json:"opensAt"`
	ClosesAt    *time.Time `json:"closesAt"`
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
	if b.given("paused") {
		switch raw := string(b["paused"]); raw {
		case "true", "false":
			v := raw == "true"
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
	opensAt, p := b.instant("opensAt")
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	closesAt, p := b.instant("closesAt")
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	if paused == nil && maxActive == nil && opensAt == nil && closesAt == nil {
		writeProblem(w, r, invalid("give paused, maxActive, opensAt, closesAt or several"))
		return
	}
	if closesAt != nil && opensAt != nil && !closesAt.After(*opensAt) {
		writeProblem(w, r, invalid("closesAt must be after opensAt"))
		return
	}
	if opensAt != nil || closesAt != nil {
		switch err := h.store.SetSaleTimes(ctx, code, opensAt, closesAt); {
		case errors.Is(err, db.ErrSaleOpened):
			writeProblem(w, r, problem(http.StatusConflict, "sale-opened", "the sale of "+code+" has opened; its opening can no longer move"))
			return
		case errors.Is(err, db.ErrSaleClosed):
			writeProblem(w, r, problem(http.StatusConflict, "sale-closed", "the sale of "+code+" has closed; its closing can no longer move"))
			return
		case errors.Is(err, db.ErrClosesBeforeOpening):
			writeProblem(w, r, invalid("the sale must close after it opens"))
			return
		case err != nil:
			writeProblem(w, r, h.storeProblem(ctx, err, "concert-not-found", "no concert has code "+code))
			return
		}
	}
	c, err := h.store.SetAdmission(r.Context(), code, paused, maxActive)
	if err != nil {
		writeProblem(w, r, h.storeProblem(ctx, err, "concert-not-found", "no concert has code "+code))
		return
	}
	opening, err := h.store.PendingOpening(ctx, code)
	if err != nil {
		writeProblem(w, r, h.storeProblem(ctx, err, "concert-not-found", "no concert has code "+code))
		return
	}
	h.openings.forget(code)
	reason := fmt.Sprintf("paused=%t maxActive=%d", c.AdmissionPaused, c.MaxActive)
	if opensAt != nil {
		reason += " opensAt=" + opensAt.UTC().Format(time.RFC3339)
	}
	if closesAt != nil {
		reason += " closesAt=" + closesAt.UTC().Format(time.RFC3339)
	}
	if _, err := h.store.RecordAudit(r.Context(), db.AuditEntry{
		Action: "admission", Target: code, Actor: actor(r, nil), Reason: reason, Outcome: "applied",
	}); err != nil {
		logFrom(ctx, h.log).Error("Could not audit an admission change", "concertCode", code, "error", err)
	}
	if err := h.door.WakeAdmission(r.Context(), code); err != nil {
		logFrom(ctx, h.log).Warn("Could not wake the waiting room", "concertCode", code, "error", err)
	}
	logFrom(ctx, h.log).Info("Admission changed", "concertCode", code, "paused", c.AdmissionPaused, "maxActive", c.MaxActive)
	writeJSON(w, http.StatusOK, admissionResponse{ConcertCode: c.Code, Paused: c.AdmissionPaused, MaxActive: c.MaxActive,
		OpensAt: optionalTime(opening), ClosesAt: utcPtr(c.ClosesAt)})
}

// utcPtr is timePtr for an optional time held as a pointer.
func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	return timePtr(*t)
}

// bookingView is one session as support staff see it.
type bookingView struct {
	BookingID   string  `json:"bookingId"`
	SessionID   string  `json:"sessionId"`
	RunID       string  `json:"runId"`
	ConcertCode string  `json:"concertCode"`
	UUID        string  `json:"UUID"`
	Status      string  `json:"status"`
	ConcertDate *string `json:"concertDate"`
	SeatNumber  *int64  `json:"seatNumber"`
	// SeatNumbers lists every seat of the order; seatNumber is the one operators can search for.
	SeatNumbers []int      `json:"seatNumbers,omitempty"`
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
	filter := workflows.SessionFilter{ConcertCode: q.Get("concertCode"), Status: booking.Status(q.Get("status"))}
	if filter.ConcertCode != "" && !booking.ValidConcertCode(filter.ConcertCode) {
		writeProblem(w, r, invalid("concertCode %q is not a valid concert code", filter.ConcertCode))
		return
	}
	if filter.Status != "" && !filter.Status.Valid() {
		writeProblem(w, r, invalid("status must be one of WAITING, ACTIVE, HELD, PAID, EXPIRED, CANCELLED, SOLD_OUT, CLOSED"))
		return
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
	limit, p := pageLimit(q, 100, maxListLimit)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	if stuckOnly {
		if q.Get("pageToken") != "" {
			writeProblem(w, r, invalid("stuckOnly lists one page, oldest deadline first; it takes no pageToken"))
			return
		}
		h.listStuck(w, r, filter.ConcertCode, filter.Status, limit, now)
		return
	}
	if s := q.Get("pageToken"); s != "" {
		t, err := base64.RawURLEncoding.DecodeString(s)
		// Temporal's page tokens are JSON documents; anything else it cannot decode (and the SDK would retry).
		if err != nil || !json.Valid(t) || (len(t) > 0 && t[0] != '{') {
			writeProblem(w, r, invalid("pageToken is not a token this API returned"))
			return
		}
		filter.PageToken = t
	}
	filter.PageSize = limit
	listed, next, err := h.door.ListSessions(ctx, filter)
	switch {
	case errors.Is(err, workflows.ErrBadPageToken):
		writeProblem(w, r, invalid("pageToken is not a token this API returned"))
		return
	case err != nil:
		writeProblem(w, r, h.workflowProblem(ctx, err))
		return
	}
	out := make([]bookingView, 0, len(listed))
	sessionIDs := make([]string, 0, len(listed))
	for _, l := range listed {
		out = append(out, viewOf(l, now, h.cfg.StuckGrace))
		sessionIDs = append(sessionIDs, l.SessionID)
	}
	// Visibility holds no personal data: the users come from the store of record.
	owners, err := h.store.SessionOwners(ctx, sessionIDs)
	if err != nil {
		writeProblem(w, r, h.storeProblem(ctx, err, "", ""))
		return
	}
	for i := range out {
		if o, ok := owners[out[i].SessionID]; ok {
			out[i].UUID = o.UserUUID
			if out[i].SeatNumber != nil && len(o.Seats) > 0 {
				out[i].SeatNumbers = o.Seats // the seat visibility shows is one of them
			}
		}
	}
	body := map[string]any{"bookings": out, "stuckGraceSeconds": h.cfg.StuckGrace.Seconds()}
	if len(next) > 0 {
		body["nextPageToken"] = base64.RawURLEncoding.EncodeToString(next)
	}
	writeJSON(w, http.StatusOK, body)
}

// listStuck lists the sessions that are stuck: live in PostgreSQL, the store of record, more than the grace
// period past their deadline. Visibility cannot find them all: a terminated workflow is no longer running,
// and one that never started is not there at all. Each gets what its workflow shows and what to do.
func (h *Handler) listStuck(w http.ResponseWriter, r *http.Request, code string, status booking.Status, limit int, now time.Time) {
	ctx := r.Context()
	if status != "" && status != booking.StatusActive && status != booking.StatusHeld {
		writeJSON(w, http.StatusOK, map[string]any{"bookings": []bookingView{}, "stuckGraceSeconds": h.cfg.StuckGrace.Seconds()})
		return
	}
	rows, err := h.store.OverdueSessions(ctx, code, string(status), now.Add(-h.cfg.StuckGrace), limit)
	if err != nil {
		writeProblem(w, r, h.storeProblem(ctx, err, "", ""))
		return
	}
	sessions := make(map[string]string, len(rows))
	for _, row := range rows {
		sessions[row.WorkflowID] = row.ID
	}
	runs, err := h.door.SessionRuns(ctx, sessions)
	if err != nil {
		writeProblem(w, r, h.workflowProblem(ctx, err))
		return
	}
	out := make([]bookingView, 0, len(rows))
	for _, row := range rows {
		deadline, since := row.Deadline.UTC(), row.StatusSince.UTC()
		run := runs[row.WorkflowID]
		v := bookingView{
			BookingID: row.WorkflowID, SessionID: row.ID, RunID: run.RunID, Running: run.Running,
			ConcertCode: row.ConcertCode, UUID: row.UserUUID, Status: string(row.Status),
			Since: &since, Deadline: &deadline, Stuck: true,
		}
		if !row.ConcertDate.IsZero() {
			d, n := booking.FormatDate(row.ConcertDate), int64(row.SeatNumber)
			v.ConcertDate, v.SeatNumber = &d, &n
		}
		switch {
		case run.Running:
			v.StuckReason = "its workflow is running but has not ended it: are the workers, or their database, down?"
		case now.Before(row.RepairBy):
			v.StuckReason = fmt.Sprintf("its workflow is %s; the waiting room will end it by %s", run.State,
				row.RepairBy.UTC().Format(time.RFC3339))
		default:
			v.StuckReason = fmt.Sprintf("its workflow is %s and the waiting room has not ended it (is admission-%s running?): cancel it",
				run.State, row.ConcertCode)
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"bookings": out, "stuckGraceSeconds": h.cfg.StuckGrace.Seconds()})
}

// viewOf is a session listed from visibility as support sees it; a live one whose deadline passed more
// than grace ago while its workflow runs is stuck.
func viewOf(l workflows.SessionListing, now time.Time, grace time.Duration) bookingView {
	v := bookingView{
		BookingID: l.WorkflowID, SessionID: l.SessionID, RunID: l.RunID, Running: l.Running,
		ConcertCode: l.ConcertCode, Status: string(l.Status),
	}
	if len(l.WorkflowID) > 36 {
		v.UUID = l.WorkflowID[len(l.WorkflowID)-36:] // replaced from the store of record when it knows the session
	}
	if l.ConcertDate != "" {
		v.ConcertDate = &l.ConcertDate
	}
	if l.SeatNumber > 0 {
		v.SeatNumber = &l.SeatNumber
	}
	if !l.Since.IsZero() {
		v.Since = &l.Since
	}
	if !l.Deadline.IsZero() {
		v.Deadline = &l.Deadline
		v.Stuck = l.Running && (l.Status == booking.StatusActive || l.Status == booking.StatusHeld) && l.Deadline.Before(now.Add(-grace))
	}
	return v
}

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
	bk, err := h.door.FindBooking(ctx, id)
	switch {
	case errors.Is(err, workflows.ErrBookingNotFound):
		writeProblem(w, r, problem(http.StatusNotFound, "booking-not-found", "no booking has ID "+id))
		return
	case err != nil:
		writeProblem(w, r, h.doorProblem(ctx, err))
		return
	}

	// Recorded before the workflow is asked, so that its compensation, which audits cancellations that came
	// by way of Temporal alone, finds this one recorded and adds no second row.
	audit, err := h.store.RecordAudit(ctx, db.AuditEntry{
		Action: "cancel", Target: id, SessionID: &bk.SessionID, Actor: who, Reason: reason, Outcome: workflows.CancelPending,
	})
	if err != nil {
		logFrom(ctx, h.log).Error("Could not audit a cancellation", "bookingId", id, "error", err)
		writeProblem(w, r, h.storeProblem(ctx, err, "", ""))
		return
	}
	outcome, status, err := h.door.Cancel(ctx, bk, cancelWait)
	h.readSessions.forget(bk.SessionID)
	h.concertSeatsChanged(bk.ConcertCode) // a released seat shows free in this process's next seat map
	var p2 *Problem
	switch {
	case errors.Is(err, workflows.ErrBookingPaid):
		p2 = problem(http.StatusConflict, "booking-paid", "the booking is paid; cancelling it would need a refund")
	case err != nil:
		p2 = h.doorProblem(ctx, err)
	}
	if err := h.store.SetAuditOutcome(context.WithoutCancel(ctx), audit.ID, outcome); err != nil {
		logFrom(ctx, h.log).Error("Could not record the outcome of a cancellation", "bookingId", id, "error", err)
		if p2 == nil {
			p2 = h.storeProblem(ctx, err, "", "")
		}
	}
	if p2 != nil {
		writeProblem(w, r, p2)
		return
	}
	logFrom(ctx, h.log).Info("Booking cancelled by support", "bookingId", id, "actor", who, "outcome", outcome)
	code := http.StatusOK
	if outcome == workflows.CancelPending {
		code = http.StatusAccepted // the workers are behind; the cancellation stands and completes when they catch up
	}
	writeJSON(w, code, map[string]any{"bookingId": id, "sessionId": bk.SessionID, "runId": bk.RunID, "status": status, "outcome": outcome})
}

// doorProblem maps a failure of a support call through the door: the store of record's to the database's
// 503, Temporal's to the booking engine's.
func (h *Handler) doorProblem(ctx context.Context, err error) *Problem {
	if errors.Is(err, workflows.ErrRecords) {
		return h.storeProblem(ctx, err, "", "")
	}
	return h.workflowProblem(ctx, err)
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
