package workflows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/google/uuid"

	"github.com/ticketing/concert/booking"
)

// This file is the client side of the workflows: the one door through which the API and the worker's
// activities reach Temporal for booking sessions and waiting rooms. Nothing here runs inside a workflow.

// SessionWorkflowID is the workflow ID of one booking session: "booking-<concertCode>-<sessionID>". No two
// sessions share it, so everything that names it (the Temporal UI, support's cancel) reaches exactly one
// session. Sessions started before tokens were issued by PostgreSQL have "booking-<concertCode>-<userUUID>"
// and are told apart by their session ID, which is then the run ID (see SessionRef).
func SessionWorkflowID(concertCode, sessionID string) string {
	return "booking-" + concertCode + "-" + sessionID
}

// SessionIDFromWorkflowID is the inverse of SessionWorkflowID: the session ID at the end of a booking
// workflow ID, if it ends with one.
func SessionIDFromWorkflowID(workflowID string) (string, bool) {
	if !strings.HasPrefix(workflowID, "booking-") || len(workflowID) < len("booking-")+36 {
		return "", false
	}
	tail := workflowID[len(workflowID)-36:]
	if _, err := uuid.Parse(tail); err != nil {
		return "", false
	}
	return tail, true
}

// ConcertCodeFromWorkflowID is the concert of a booking workflow ID, if it is one.
func ConcertCodeFromWorkflowID(workflowID string) (string, bool) {
	if _, ok := SessionIDFromWorkflowID(workflowID); !ok || len(workflowID) < len("booking-")+1+37 {
		return "", false
	}
	return workflowID[len("booking-") : len(workflowID)-37], true
}

// NewSessionID returns the ID of a new session: a time-ordered UUID, chosen by the service before the
// session's row or workflow exists.
func NewSessionID() string { return uuid.Must(uuid.NewV7()).String() }

// SessionRef names one session for Temporal: its ID, its workflow, and what its workflow is started with.
// Status and Deadline, when known, seed the search attributes so a freshly started session is findable
// with the right status at once.
type SessionRef struct {
	ID          string
	WorkflowID  string
	ConcertCode string
	UserUUID    string
	Status      booking.Status
	Deadline    time.Time
}

// legacy reports whether the session predates service-chosen session IDs: its ID is then its run ID, and its
// workflow ID is shared with the user's other sessions of the concert, so calls must name the run.
func (r SessionRef) legacy() bool { return !strings.HasSuffix(r.WorkflowID, r.ID) }

func (r SessionRef) runID() string {
	if r.legacy() {
		return r.ID
	}
	return ""
}

// Door is the typed way to Temporal for the booking service. It holds the client and the waiting room's
// settings, which it starts admission workflows with.
type Door struct {
	c         client.Client
	admission AdmissionInput
	records   Records
}

// NewDoor returns a door over c. admission carries the settings a waiting room is started with (its
// ConcertCode is filled in per call), and records is the store of record, which Pay, FindBooking and Cancel
// consult; a door used only by the worker's activities may leave both zero.
func NewDoor(c client.Client, admission AdmissionInput, records Records) *Door {
	return &Door{c: c, admission: admission, records: records}
}

// startOptions are the options every start of a session's workflow uses: one workflow ID per session that
// is never reused, so a late start, signal or update of an ended session fails instead of reviving it.
func (d *Door) startOptions(ref SessionRef) client.StartWorkflowOptions {
	status := ref.Status
	if status == "" {
		status = booking.StatusWaiting
	}
	return client.StartWorkflowOptions{
		ID:                       ref.WorkflowID,
		TaskQueue:                TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		TypedSearchAttributes:    StartSearchAttributes(ref.ConcertCode, status, time.Now(), ref.Deadline),
		StaticSummary:            "Booking session " + ref.ID + " of concert " + ref.ConcertCode,
		StaticDetails:            staticDetails(ref),
	}
}

func inputOf(ref SessionRef) SessionInput {
	return SessionInput{SessionID: ref.ID, ConcertCode: ref.ConcertCode, UserUUID: ref.UserUUID}
}

// StartSession starts the session's workflow. A workflow that runs already, or ran and ended, is left as it
// is: StartSession then reports nothing. It returns once Temporal has recorded the start; it does not wait
// for the workflow to run.
func (d *Door) StartSession(ctx context.Context, ref SessionRef) error {
	_, err := d.c.ExecuteWorkflow(ctx, d.startOptions(ref), BookingSession, inputOf(ref))
	if SessionGone(err) {
		return nil
	}
	return err
}

// Reserve sends the reserve update to the session, starting its workflow first if it has none yet (the API
// that issued the token may not have got round to it, or died before it did). A non-empty updateID makes a
// repeated request return the first one's outcome.
func (d *Door) Reserve(ctx context.Context, ref SessionRef, updateID string, req booking.Hold) (booking.Reservation, error) {
	var out booking.Reservation
	upd := client.UpdateWorkflowOptions{
		UpdateName: UpdateReserve, UpdateID: updateID, Args: []any{req}, WaitForStage: client.WorkflowUpdateStageCompleted,
	}
	if ref.legacy() {
		return out, d.update(ctx, ref, upd, &out)
	}
	handle, err := d.c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: d.c.NewWithStartWorkflowOperation(d.startOptions(ref), BookingSession, inputOf(ref)),
		UpdateOptions:          upd,
	})
	if err != nil {
		return out, err
	}
	return out, handle.Get(ctx, &out)
}

// Pay sends the pay update to the session. Only a session that holds a seat can pay, and holding one went
// through its workflow, so there is nothing to start. An update that fails without an answer may still
// have paid: the store of record is asked before the failure is returned.
func (d *Door) Pay(ctx context.Context, ref SessionRef, updateID string, req PayRequest) (booking.Payment, error) {
	var out booking.Payment
	err := d.update(ctx, ref, client.UpdateWorkflowOptions{
		UpdateName: UpdatePay, UpdateID: updateID, Args: []any{req}, WaitForStage: client.WorkflowUpdateStageCompleted,
	}, &out)
	if err != nil {
		return d.paid(ctx, ref.ID, err)
	}
	return out, nil
}

func (d *Door) update(ctx context.Context, ref SessionRef, opts client.UpdateWorkflowOptions, out any) error {
	opts.WorkflowID, opts.RunID = ref.WorkflowID, ref.runID()
	handle, err := d.c.UpdateWorkflow(ctx, opts)
	if err != nil {
		return err
	}
	return handle.Get(ctx, out)
}

// NotifySession tells a session that the waiting room moved it on (admitted, sold out, closed). An admission
// starts its workflow with the notice if it has none: a fan who waited without a workflow gets one the
// moment it matters. An ending only reaches a workflow that runs. A session whose workflow has ended (or,
// for an ending, never started) needs no notice; that is not an error.
func (d *Door) NotifySession(ctx context.Context, sessionID, workflowID, concertCode, userUUID string, notice booking.AdmissionNotice) error {
	ref := SessionRef{ID: sessionID, WorkflowID: workflowID, ConcertCode: concertCode, UserUUID: userUUID,
		Status: notice.Status, Deadline: notice.ActiveUntil}
	var err error
	if ref.legacy() || notice.Status.Terminal() {
		// An ending (sold out, closed) is recorded in the session's row already: a session without a
		// workflow needs none to end, so thousands of fans still waiting at a sell-out or a closing cost
		// no workflow starts.
		err = d.c.SignalWorkflow(ctx, workflowID, ref.runID(), booking.SignalAdmission, notice)
	} else {
		_, err = d.c.SignalWithStartWorkflow(ctx, workflowID, booking.SignalAdmission, notice, d.startOptions(ref),
			BookingSession, inputOf(ref))
	}
	if SessionGone(err) {
		return nil
	}
	return err
}

// WakeAdmission signals the concert's waiting room to take a step now, starting it if it is not running.
func (d *Door) WakeAdmission(ctx context.Context, concertCode string) error {
	in := d.admission
	in.ConcertCode = concertCode
	id := AdmissionWorkflowID(concertCode)
	_, err := d.c.SignalWithStartWorkflow(ctx, id, SignalWake, nil, client.StartWorkflowOptions{
		ID: id, TaskQueue: TaskQueue, WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, Admission, in)
	return err
}

// NudgeAdmission signals the concert's waiting room, if it runs, to take a step now. Unlike WakeAdmission it
// never starts one: activities call it when a slot frees, and a waiting room that is not running has nobody
// to admit.
func (d *Door) NudgeAdmission(ctx context.Context, concertCode string) error {
	err := d.c.SignalWorkflow(ctx, AdmissionWorkflowID(concertCode), "", SignalWake, nil)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return nil
	}
	return err
}

// SessionGone reports whether err, from a call through the door, says the workflow addressed has closed
// (or, for a start, exists already): the session can do nothing more, and the API answers 410.
func SessionGone(err error) bool {
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	var notFound *serviceerror.NotFound
	return err != nil && (errors.As(err, &started) || errors.As(err, &notFound) ||
		temporal.IsWorkflowExecutionAlreadyStartedError(err))
}

// staticDetails is what an operator reads on the session's page in the Temporal UI before any tab: whose
// session it is, where its live state is, and how support ends it.
func staticDetails(ref SessionRef) string {
	return fmt.Sprintf(`Session **%s** of user `+"`%s`"+` for concert `+"`%s`"+`.

Its state now: the search attributes BookingStatus, BookingDeadline, SeatNumber and ConcertDateLocal (the venue's
local time); the timer on this page while it is ACTIVE or HELD; *Current details* on the User Metadata tab; the
`+"`status`"+` query.

Support: `+"`concert admin bookings cancel %s --reason ...`"+` (audited; the seat is released). "Request
Cancellation" here does the same and is audited with actor `+"`temporal`"+`. Terminate skips the release: the
service repairs a terminated session within a few minutes of its deadline.`, ref.ID, ref.UserUUID, ref.ConcertCode, ref.WorkflowID)
}

// Ready checks that Temporal answers, for readiness probes.
func (d *Door) Ready(ctx context.Context) error {
	_, err := d.c.CheckHealth(ctx, &client.CheckHealthRequest{})
	return err
}
