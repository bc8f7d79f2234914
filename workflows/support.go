package workflows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/ticketing/concert/booking"
)

// This file is the support side of the door: what the API's admin endpoints ask of Temporal (find a
// booking, cancel it, list sessions from visibility) and what the door reads from the store of record when
// Temporal cannot answer for a session. Nothing here runs inside a workflow.

// Records is the store of record as the door needs it: a payment whose update failed without an answer may
// have gone through, and a session whose workflow is gone is released by the door itself. db.Store
// implements it.
type Records interface {
	GetSession(ctx context.Context, id string) (booking.Session, error)
	PaymentOfSession(ctx context.Context, sessionID string) (booking.Payment, error)
	Release(ctx context.Context, sessionID string, status booking.Status) error
}

// Errors of the support calls, for the API to map.
var (
	// ErrBookingNotFound means no session has the booking ID.
	ErrBookingNotFound = errors.New("no booking has this ID")
	// ErrBookingPaid means the booking is paid: cancelling it would need a refund.
	ErrBookingPaid = errors.New("the booking is paid")
	// ErrBadPageToken means a visibility page token is not one Temporal issued.
	ErrBadPageToken = errors.New("the page token is not one this service returned")
	// ErrRecords marks a failure of the store of record (as opposed to Temporal's).
	ErrRecords = errors.New("store of record")
)

// The outcomes of a cancellation, as the audit trail records them.
const (
	CancelDone        = "cancelled"
	CancelPending     = "cancel requested" // the workers are behind; the compensation runs when they catch up
	CancelEnded       = "already ended"
	CancelRefusedPaid = "refused: paid"
	CancelFailed      = "failed"
	// CancelReleased is a session whose workflow was gone (terminated, or never started) but which the store
	// still had live: the door released it, since no compensation would run.
	CancelReleased = "released without workflow"
)

// Booking is a session as support addresses it: by its booking ID (its workflow ID), with the run that is
// the session and whether that run is still going.
type Booking struct {
	WorkflowID  string
	SessionID   string
	ConcertCode string
	RunID       string
	Running     bool
}

// FindBooking resolves a booking ID. A session that waits without a workflow yet is a booking too; a
// session from before service-chosen IDs is its workflow's latest run. ErrBookingNotFound if none.
func (d *Door) FindBooking(ctx context.Context, workflowID string) (Booking, error) {
	b := Booking{WorkflowID: workflowID}
	code, ok := ConcertCodeFromWorkflowID(workflowID)
	if !ok || len(workflowID) > 200 {
		return b, ErrBookingNotFound
	}
	b.ConcertCode = code
	known := false
	if sid, ok := SessionIDFromWorkflowID(workflowID); ok {
		s, err := d.records.GetSession(ctx, sid)
		switch {
		case err == nil && s.WorkflowID == workflowID:
			b.SessionID, known = sid, true
		case err != nil && !isNotFound(err):
			return b, fmt.Errorf("%w: %w", ErrRecords, err)
		}
	}
	desc, err := d.c.DescribeWorkflowExecution(ctx, workflowID, "")
	var notFound *serviceerror.NotFound
	switch {
	case err == nil:
		info := desc.GetWorkflowExecutionInfo()
		b.RunID = info.GetExecution().GetRunId()
		b.Running = info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
	case errors.As(err, &notFound) && known:
	case errors.As(err, &notFound):
		return b, ErrBookingNotFound
	default:
		return b, err
	}
	if !known {
		b.SessionID = b.RunID // a session from before service-chosen IDs: its ID is its run ID
	}
	return b, nil
}

// Cancel cancels a booking that has not paid and says what came of it (one of the Cancel* outcomes) with
// the session's status. A running session is cancelled through Temporal: its own compensation releases the
// seat, and Cancel waits up to wait for it. A session whose workflow is gone is released here. ErrBookingPaid
// for a paid one (the outcome is then CancelRefusedPaid).
func (d *Door) Cancel(ctx context.Context, b Booking, wait time.Duration) (string, booking.Status, error) {
	s, err := d.records.GetSession(ctx, b.SessionID)
	if err != nil && !isNotFound(err) {
		return CancelFailed, "", fmt.Errorf("%w: %w", ErrRecords, err)
	}
	switch {
	case err == nil && s.Status == booking.StatusPaid:
		return CancelRefusedPaid, s.Status, ErrBookingPaid
	case err == nil && s.Status.Terminal():
		return CancelEnded, s.Status, nil
	case !b.Running:
		if err := d.records.Release(ctx, b.SessionID, booking.StatusCancelled); err != nil {
			return CancelFailed, "", fmt.Errorf("%w: %w", ErrRecords, err)
		}
		return CancelReleased, booking.StatusCancelled, nil
	}
	if err := d.c.CancelWorkflow(ctx, b.WorkflowID, b.RunID); err != nil {
		var notFound *serviceerror.NotFound
		if !errors.As(err, &notFound) {
			return CancelFailed, "", err
		}
	}
	// Wait for the compensation: the run closes once the seat is released.
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	_ = d.c.GetWorkflow(wctx, b.WorkflowID, b.RunID).Get(wctx, nil)
	s, err = d.records.GetSession(ctx, b.SessionID)
	switch {
	case err != nil && isNotFound(err):
		return CancelDone, booking.StatusCancelled, nil
	case err != nil:
		return CancelFailed, "", fmt.Errorf("%w: %w", ErrRecords, err)
	case s.Status == booking.StatusPaid:
		return CancelRefusedPaid, s.Status, ErrBookingPaid
	case !s.Status.Terminal():
		return CancelPending, s.Status, nil
	}
	return CancelDone, s.Status, nil
}

// isNotFound reports whether a store error says the record does not exist.
func isNotFound(err error) bool { return errors.Is(err, booking.ErrNotFound) }

// SessionFilter narrows a listing of sessions from visibility.
type SessionFilter struct {
	ConcertCode string
	Status      booking.Status
	PageSize    int
	PageToken   []byte
}

// SessionListing is one session as Temporal visibility shows it: its workflow run and its search
// attributes. Attributes the session has not written are zero.
type SessionListing struct {
	WorkflowID  string
	RunID       string
	Running     bool
	SessionID   string
	ConcertCode string
	Status      booking.Status
	ConcertDate string // the venue's local date-time, as the API writes it
	SeatNumber  int64
	Since       time.Time
	Deadline    time.Time
}

// ListSessions lists booking sessions from visibility, newest first, one page at a time. The concert code
// must be valid (booking.ValidConcertCode) and the status one of booking's.
func (d *Door) ListSessions(ctx context.Context, f SessionFilter) ([]SessionListing, []byte, error) {
	clauses := []string{"WorkflowType = 'BookingSession'"}
	if f.ConcertCode != "" {
		if !booking.ValidConcertCode(f.ConcertCode) {
			return nil, nil, fmt.Errorf("concert code %q is not valid", f.ConcertCode)
		}
		clauses = append(clauses, fmt.Sprintf("%s = '%s'", ConcertCodeKey.GetName(), f.ConcertCode))
	}
	if f.Status != "" {
		if !f.Status.Valid() {
			return nil, nil, fmt.Errorf("status %q is not valid", f.Status)
		}
		clauses = append(clauses, fmt.Sprintf("%s = '%s'", BookingStatusKey.GetName(), f.Status))
	}
	resp, err := d.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		PageSize: int32(f.PageSize), NextPageToken: f.PageToken, Query: strings.Join(clauses, " AND "),
	})
	var invalidArg *serviceerror.InvalidArgument
	switch {
	case errors.As(err, &invalidArg):
		return nil, nil, ErrBadPageToken
	case err != nil:
		return nil, nil, err
	}
	out := make([]SessionListing, 0, len(resp.Executions))
	for _, ex := range resp.Executions {
		out = append(out, listing(ex))
	}
	return out, resp.NextPageToken, nil
}

// listing reads a session's visibility record. Its session ID is the tail of the workflow ID (for sessions
// from before service-chosen IDs, the run ID).
func listing(ex *workflowpb.WorkflowExecutionInfo) SessionListing {
	l := SessionListing{
		WorkflowID: ex.GetExecution().GetWorkflowId(), RunID: ex.GetExecution().GetRunId(),
		Running: ex.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING,
	}
	l.SessionID = l.RunID
	if id, ok := SessionIDFromWorkflowID(l.WorkflowID); ok {
		l.SessionID = id
	}
	dc := converter.GetDefaultDataConverter()
	fields := ex.GetSearchAttributes().GetIndexedFields()
	decode := func(key temporal.SearchAttributeKey, into any) bool {
		p, ok := fields[key.GetName()]
		return ok && dc.FromPayload(p, into) == nil
	}
	decode(ConcertCodeKey, &l.ConcertCode)
	var status string
	if decode(BookingStatusKey, &status) {
		l.Status = booking.Status(status)
	}
	var t time.Time
	switch {
	case decode(ConcertDateLocalKey, &l.ConcertDate):
	case decode(ConcertDateKey, &t): // written by sessions before ConcertDateLocal
		l.ConcertDate = booking.FormatDate(t)
	}
	decode(SeatNumberKey, &l.SeatNumber)
	if decode(BookingStatusSinceKey, &t) {
		l.Since = t.UTC()
	}
	if decode(BookingDeadlineKey, &t) {
		l.Deadline = t.UTC()
	}
	return l
}

// SessionRun is what Temporal shows of one session's workflow: its run, whether it runs, and its state in
// words (running, terminated, ..., or "not in Temporal").
type SessionRun struct {
	RunID   string
	Running bool
	State   string
}

// SessionRuns finds, in one visibility query, the workflow run of each session named by workflow ID and
// session ID: the run that is the session (sessions from before service-chosen IDs shared a workflow ID,
// and their session ID is the run ID), else the newest run of the ID. A session with none is "not in
// Temporal".
func (d *Door) SessionRuns(ctx context.Context, sessions map[string]string) (map[string]SessionRun, error) {
	out := make(map[string]SessionRun, len(sessions))
	if len(sessions) == 0 {
		return out, nil
	}
	ids := make([]string, 0, len(sessions))
	for id := range sessions {
		if !strings.HasPrefix(id, "booking-") || strings.ContainsAny(id, `'"\`) {
			return nil, fmt.Errorf("%q is not a booking ID", id)
		}
		ids = append(ids, "'"+id+"'")
	}
	query := "WorkflowId IN (" + strings.Join(ids, ", ") + ")"
	var token []byte
	for {
		resp, err := d.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: query, NextPageToken: token, PageSize: int32(2 * len(sessions)),
		})
		if err != nil {
			return nil, err
		}
		for _, ex := range resp.Executions {
			id, run := ex.GetExecution().GetWorkflowId(), ex.GetExecution().GetRunId()
			if _, seen := out[id]; !seen || run == sessions[id] {
				out[id] = SessionRun{
					RunID: run, Running: ex.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING,
					State: strings.ToLower(strings.TrimPrefix(ex.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_")),
				}
			}
		}
		if token = resp.NextPageToken; len(token) == 0 {
			break
		}
	}
	for id := range sessions {
		if _, ok := out[id]; !ok {
			out[id] = SessionRun{State: "not in Temporal (never started, or past retention)"}
		}
	}
	return out, nil
}

// Leave ends a session at its fan's request (CANCELLED) and returns the status it ended with: through its
// workflow when one runs, which gives the seat back at once; in the store when none does (a fan waiting
// before their workflow starts, or one whose start is on its way: a workflow that starts later attaches to
// the ended row and closes). A session that had ended already keeps its ending, which is returned.
func (d *Door) Leave(ctx context.Context, ref SessionRef, req LeaveRequest) (booking.Status, error) {
	var status booking.Status
	err := d.update(ctx, ref, client.UpdateWorkflowOptions{
		UpdateName: UpdateLeave, Args: []any{req}, WaitForStage: client.WorkflowUpdateStageCompleted,
	}, &status)
	var notFound *serviceerror.NotFound
	if !errors.As(err, &notFound) || d.records == nil {
		return status, err
	}
	if err := d.records.Release(ctx, ref.ID, booking.StatusCancelled); err != nil {
		return "", fmt.Errorf("%w: %w", ErrRecords, err)
	}
	s, err := d.records.GetSession(ctx, ref.ID)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrRecords, err)
	}
	return s.Status, nil
}

// paid finds the payment of a session whose pay update failed without an answer (a timer or a signal raced
// the completion, a worker died after the commit): it may have gone through, and the store knows. It returns
// the update's error when the failure was an answer (a business rejection, an ended session) or no payment
// is recorded.
func (d *Door) paid(ctx context.Context, sessionID string, err error) (booking.Payment, error) {
	var appErr *temporal.ApplicationError
	if d.records == nil || (errors.As(err, &appErr) && booking.ErrorType(appErr.Type()).Valid()) || SessionGone(err) {
		return booking.Payment{}, err
	}
	if pay, perr := d.records.PaymentOfSession(ctx, sessionID); perr == nil {
		return pay, nil
	}
	return booking.Payment{}, err
}
