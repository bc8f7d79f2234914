// Package activities holds the side effects of the booking flow: every step that touches PostgreSQL or
// signals another workflow. Workflows call them by method on a nil *Activities; the worker registers one
// *Activities built with its dependencies.
//
// Every activity is idempotent, keyed on the session (the workflow run ID), because Temporal runs an
// activity at least once. Business failures leave as non-retryable application errors whose type is a
// booking.ErrorType; anything else is retried. No HTTP here, and no workflow logic.
package activities

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/ticketing/concert/booking"
	"github.com/ticketing/concert/db"
)

// Activities carries the dependencies of the booking activities.
type Activities struct {
	Store *db.Store
	// Sessions tells session workflows that the waiting room admitted them (or that the concert sold out).
	Sessions SessionNotifier
}

// SessionNotifier delivers the waiting room's notices to session workflows, starting a session's workflow
// with its notice when it has none yet. A session whose workflow has ended is not an error.
// workflows.Door implements it.
type SessionNotifier interface {
	NotifySession(ctx context.Context, sessionID, workflowID, concertCode, userUUID string, notice booking.AdmissionNotice) error
	// NudgeAdmission asks the concert's running waiting room to take a step now; a waiting room that is not
	// running is not an error.
	NudgeAdmission(ctx context.Context, concertCode string) error
}

// Attach reads the session a workflow was started for and marks it notified of its status (see
// db.Store.Attach). A session that does not exist cannot be run: that is not retried.
func (a *Activities) Attach(ctx context.Context, sessionID string) (booking.Attachment, error) {
	at, err := a.Store.Attach(ctx, sessionID)
	if errors.Is(err, db.ErrNotFound) {
		return booking.Attachment{}, business(booking.ErrInvalidRequest, "the session does not exist", err)
	}
	if err != nil {
		return booking.Attachment{}, classify(err)
	}
	return at, nil
}

// JoinInput puts a session in its concert's waiting room.
type JoinInput struct {
	SessionID       string
	WorkflowID      string
	ConcertCode     string
	UserUUID        string
	AdmissionWindow time.Duration
}

// JoinResult is the session as the waiting room placed it.
type JoinResult struct {
	Status      booking.Status
	ActiveUntil time.Time
}

// JoinQueue enters the session into the waiting room (or finds it there) and says whether it was admitted
// at once, must wait, or finds the concert sold out.
func (a *Activities) JoinQueue(ctx context.Context, in JoinInput) (JoinResult, error) {
	s, _, err := a.Store.JoinQueue(ctx, db.JoinParams{
		SessionID: in.SessionID, WorkflowID: in.WorkflowID, ConcertCode: in.ConcertCode,
		UserUUID: in.UserUUID, AdmissionWindow: in.AdmissionWindow,
	})
	if errors.Is(err, db.ErrNotFound) {
		// The concert is gone (or never existed): retrying cannot help.
		return JoinResult{}, business(booking.ErrInvalidRequest, "the concert does not exist", err)
	}
	if err != nil {
		return JoinResult{}, classify(err)
	}
	return JoinResult{Status: s.Status, ActiveUntil: s.ActiveUntil}, nil
}

// HoldSeat holds the seat for the session for the hold window, if the database gives it.
func (a *Activities) HoldSeat(ctx context.Context, in booking.Hold) (booking.Reservation, error) {
	r, err := a.Store.HoldSeat(ctx, in)
	if err != nil {
		return booking.Reservation{}, classify(err)
	}
	return r, nil
}

// Pay sells the session's held seat, debiting the user's balance; a second call returns the first payment.
func (a *Activities) Pay(ctx context.Context, sessionID string) (booking.Payment, error) {
	p, err := a.Store.Pay(ctx, sessionID)
	if err != nil {
		return booking.Payment{}, classify(err)
	}
	a.slotFreed(ctx, sessionID)
	return p, nil
}

// ReleaseInput ends an unpaid session.
type ReleaseInput struct {
	SessionID string
	Status    booking.Status
	// Left says the fan ended the session (CANCELLED) themselves: nothing for the audit trail, which records
	// what support and Temporal's own cancel requests do.
	Left bool `json:",omitempty"`
}

// Release frees the session's seat, if it holds one, and ends the session with the given status. It returns
// the status the database finally records, which differs when the session had ended already (for example a
// payment whose reply was lost).
func (a *Activities) Release(ctx context.Context, in ReleaseInput) (booking.Status, error) {
	if err := a.Store.Release(ctx, in.SessionID, in.Status); err != nil {
		return "", classify(err)
	}
	s, err := a.Store.GetSession(ctx, in.SessionID)
	if errors.Is(err, db.ErrNotFound) {
		return in.Status, nil // the session never reached the database: nothing was held
	}
	if err != nil {
		return "", classify(err)
	}
	if in.Status == booking.StatusCancelled && !in.Left {
		// The compensation of a cancel request: audited here unless the admin API, which records its own
		// cancellations before asking Temporal, already did (a cancel from the Temporal UI, tctl, ...).
		outcome := "cancelled"
		if s.Status != booking.StatusCancelled {
			outcome = "already ended"
		}
		if err := a.Store.AuditTemporalCancel(ctx, in.SessionID, outcome); err != nil {
			return "", classify(err)
		}
	}
	// A window that ran out freed its slot at its deadline, and the waiting room sleeps until then; any
	// other end came early and frees the slot now.
	if in.Status != booking.StatusExpired {
		a.slotFreed(ctx, in.SessionID)
	}
	return s.Status, nil
}

// nudgeTimeout bounds a nudge of the waiting room, which is sent after the activity has returned.
const nudgeTimeout = 10 * time.Second

// slotFreed tells the waiting room of the session's concert, if anyone waits there, that a slot came free
// before its window ended. The signal goes out without holding up the activity (a payment's answer does not
// wait for it), and it is best effort: a nudge that is lost costs the next fan the time until the waiting
// room's next own step (at the latest a minute, see workflows.Admission), never a place in line.
func (a *Activities) slotFreed(ctx context.Context, sessionID string) {
	log := activity.GetLogger(ctx)
	code, waiting, err := a.Store.WaitersOf(ctx, sessionID)
	if err != nil {
		log.Warn("Could not nudge the waiting room", "sessionId", sessionID, "error", err)
		return
	}
	if !waiting {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), nudgeTimeout)
	go func() {
		defer cancel()
		if err := a.Sessions.NudgeAdmission(ctx, code); err != nil {
			log.Warn("Could not nudge the waiting room", "concertCode", code, "error", err)
		}
	}()
}

// AdmitInput names the concert whose waiting room takes a step.
type AdmitInput struct {
	ConcertCode     string
	AdmissionWindow time.Duration
}

// AdmitNext admits waiting sessions into free slots in FIFO order (or ends them SOLD_OUT) and returns the
// sessions whose workflows still have to be told.
func (a *Activities) AdmitNext(ctx context.Context, in AdmitInput) (booking.AdmissionStep, error) {
	r, err := a.Store.AdmitNext(ctx, in.ConcertCode, in.AdmissionWindow)
	if err != nil {
		return booking.AdmissionStep{}, classify(err)
	}
	if r.Repaired > 0 {
		activity.GetLogger(ctx).Warn("Ended sessions their workflows had left live past their windows",
			"concertCode", in.ConcertCode, "count", r.Repaired)
	}
	return r, nil
}

// notifyParallelism bounds the signals one NotifyAdmissions sends at once.
const notifyParallelism = 16

// NotifyAdmissions signals each session workflow that it was admitted (or sold out), starting the workflows
// of sessions that have none yet, then records that they were told. A workflow that has ended meanwhile
// needs no signal. Retrying it signals again; the session workflow ignores a repeated admission.
func (a *Activities) NotifyAdmissions(ctx context.Context, admissions []booking.Admission) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, notifyParallelism)
	)
	for _, adm := range admissions {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := a.Sessions.NotifySession(ctx, adm.SessionID, adm.WorkflowID, adm.ConcertCode, adm.UserUUID, adm.Notice)
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("signal %s: %w", adm.WorkflowID, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	ids := make([]string, len(admissions))
	for i, adm := range admissions {
		ids[i] = adm.SessionID
	}
	return a.Store.MarkNotified(ctx, ids)
}

// classify turns the store's business errors into non-retryable application errors typed for the API, and
// leaves every other error retryable.
func classify(err error) error {
	var short *db.InsufficientBalanceError
	var seat *db.SeatError
	var limit *db.LimitError
	switch {
	case errors.As(err, &limit) && errors.Is(err, db.ErrOrderFull):
		return business(booking.ErrOrderFull, fmt.Sprintf("one order of this concert may hold %d seats; this one holds %d and asks for %d more",
			limit.Limit, limit.Have, limit.Asked), err)
	case errors.As(err, &limit) && errors.Is(err, db.ErrTicketLimit):
		return business(booking.ErrTicketLimit, fmt.Sprintf("one fan may hold and buy %d tickets of this concert; you have %d and ask for %d more",
			limit.Limit, limit.Have, limit.Asked), err)
	case errors.As(err, &seat) && errors.Is(err, db.ErrSeatTaken):
		return business(booking.ErrSeatTaken, booking.SeatTakenOfSeveral(seat.Seat), err)
	case errors.As(err, &seat) && errors.Is(err, db.ErrAlreadyHolding):
		return business(booking.ErrAlreadyHolding, fmt.Sprintf("this order holds seat %d already", seat.Seat), err)
	case errors.As(err, &seat) && errors.Is(err, db.ErrSeatNotFound):
		return business(booking.ErrSeatNotFound, fmt.Sprintf("the performance has no seat %d; none of the seats was held", seat.Seat), err)
	case errors.As(err, &short):
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("balance %d won is below the price %d won; top up and pay again before the hold expires", short.Balance, short.Price),
			string(booking.ErrInsufficientBalance), err, short.Balance, short.Price)
	case errors.Is(err, db.ErrSeatTaken):
		return business(booking.ErrSeatTaken, "the seat is held or sold", err)
	case errors.Is(err, db.ErrDateNotFound):
		return business(booking.ErrDateNotFound, "the concert has no performance on that date", err)
	case errors.Is(err, db.ErrSeatNotFound):
		return business(booking.ErrSeatNotFound, "the performance has no seat with that number", err)
	case errors.Is(err, db.ErrAlreadyHolding):
		return business(booking.ErrAlreadyHolding, "this session already holds a seat", err)
	case errors.Is(err, db.ErrNotActive):
		return business(booking.ErrNotAdmitted, "the session is not admitted, or its admission window has passed", err)
	case errors.Is(err, db.ErrNoSeatHeld):
		return business(booking.ErrNoSeatHeld, "this session holds no seat", err)
	case errors.Is(err, db.ErrOrderFull):
		return business(booking.ErrOrderFull, "this order holds as many seats as one order of this concert may", err)
	case errors.Is(err, db.ErrOtherDate):
		return business(booking.ErrOtherDate, "this order holds seats of another date; one order is for one date", err)
	case errors.Is(err, db.ErrTicketLimit):
		return business(booking.ErrTicketLimit, "you hold or have bought as many tickets of this concert as it allows", err)
	case errors.Is(err, db.ErrHoldExpired):
		return business(booking.ErrHoldExpired, "the hold has expired; the seat is no longer yours", err)
	}
	return err
}

func business(t booking.ErrorType, msg string, cause error) error {
	return temporal.NewNonRetryableApplicationError(msg, string(t), cause)
}
