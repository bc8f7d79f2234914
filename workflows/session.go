package workflows

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/ticketing/concert/activities"
	"github.com/ticketing/concert/booking"
)

// acts lets workflow code name activity methods; the worker registers the real *activities.Activities.
var acts *activities.Activities

// BookingSession is one user's visit to one concert's on-sale: it joins the waiting room, waits (at no cost)
// until admitted, lets the user hold one seat within the admission window, waits for payment within the
// hold window, and ends PAID, EXPIRED, CANCELLED or SOLD_OUT. A seat it held and did not pay for is always
// released, also when the workflow is cancelled by support staff.
func BookingSession(ctx workflow.Context, in SessionInput) (SessionResult, error) {
	s, err := newSession(ctx, in)
	if err != nil {
		return SessionResult{}, err
	}
	return s.run(ctx)
}

// session is the state of one BookingSession run. Only the workflow's own coroutines touch it, one at a
// time, so it needs no locks.
type session struct {
	in     SessionInput
	id     string // the run ID: the session ID the database and the token know
	wfID   string
	logger log.Logger

	// lean is set for sessions whose token PostgreSQL issued (SessionInput.SessionID): the workflow attaches
	// to the session's row instead of joining the queue itself, and writes only the search attributes that
	// change. Sessions started before keep the old path, so their histories replay.
	lean       bool
	holdWindow time.Duration
	// seatsPerOrder is how many seats the session's order may hold, as its attachment said; 0 or 1 is one
	// seat, as for every session attached before orders could hold more (their recorded attachments do not
	// say), so those take the one-seat path on replay.
	seatsPerOrder int

	status      booking.Status
	joined      bool
	joins       int
	activeUntil time.Time
	reservation *booking.Reservation
	payment     *booking.Payment
	// busy is set while a reserve or pay update runs its activity; timeouts wait for it, so a payment that
	// reached the database before the hold lapsed is never undone by a release.
	busy bool
	// admission is the waiting room's last notice, which may arrive before the session has joined.
	admission *booking.AdmissionNotice
}

func newSession(ctx workflow.Context, in SessionInput) (*session, error) {
	switch {
	case !booking.ValidConcertCode(in.ConcertCode):
		return nil, temporal.NewNonRetryableApplicationError("invalid concert code", string(booking.ErrInvalidRequest), nil)
	case in.UserUUID == "":
		return nil, temporal.NewNonRetryableApplicationError("missing user", string(booking.ErrInvalidRequest), nil)
	case in.SessionID == "" && (in.HoldWindow <= 0 || in.AdmissionWindow <= 0):
		return nil, temporal.NewNonRetryableApplicationError("hold and admission windows must be positive", string(booking.ErrInvalidRequest), nil)
	}
	info := workflow.GetInfo(ctx)
	s := &session{
		in:         in,
		id:         info.WorkflowExecution.RunID,
		wfID:       info.WorkflowExecution.ID,
		logger:     log.With(workflow.GetLogger(ctx), "ConcertCode", in.ConcertCode),
		status:     booking.StatusWaiting,
		holdWindow: in.HoldWindow,
	}
	if in.SessionID != "" {
		s.id, s.lean = in.SessionID, true
	}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, s.view); err != nil {
		return nil, err
	}
	updates := []struct {
		name      string
		handler   any
		validator any
	}{
		{UpdateJoin, s.join, s.validateJoin},
		{UpdateReserve, s.reserve, s.validateReserve},
		{UpdatePay, s.pay, s.validatePay},
		{UpdateLeave, s.leave, s.validateLeave},
	}
	for _, u := range updates {
		if err := workflow.SetUpdateHandlerWithOptions(ctx, u.name, u.handler, workflow.UpdateHandlerOptions{Validator: u.validator}); err != nil {
			return nil, err
		}
	}
	admissions := workflow.GetSignalChannel(ctx, booking.SignalAdmission)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var n booking.AdmissionNotice
			if !admissions.Receive(ctx, &n) {
				return
			}
			s.admission = &n
		}
	})
	return s, nil
}

func (s *session) run(ctx workflow.Context) (res SessionResult, err error) {
	defer func() {
		if !temporal.IsCanceledError(err) || s.status.Terminal() {
			return
		}
		// Cancelled by support staff: give the seat back on a context that the cancellation cannot reach.
		dctx, cancel := workflow.NewDisconnectedContext(ctx)
		defer cancel()
		if cerr := s.end(dctx, booking.StatusCancelled); cerr != nil {
			s.logger.Error("Compensation after cancellation failed", "Error", cerr)
			err = errors.Join(err, cerr)
			return
		}
		s.logger.Info("Session cancelled; its seat, if any, is released")
		res = s.result()
	}()

	if s.lean {
		if err := s.attach(ctx); err != nil {
			return SessionResult{}, err
		}
	} else if err := s.joinQueue(ctx); err != nil {
		return SessionResult{}, err
	}

	for !s.status.Terminal() {
		var err error
		switch s.status {
		case booking.StatusWaiting:
			err = s.waitForAdmission(ctx)
		case booking.StatusActive:
			err = s.waitForReservation(ctx)
		case booking.StatusHeld:
			err = s.waitForPayment(ctx)
		default:
			err = fmt.Errorf("session in unexpected status %s", s.status)
		}
		if err != nil {
			return SessionResult{}, err
		}
	}
	// Let a running update (a join from a retrying client, say) answer before the run closes.
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return SessionResult{}, err
	}
	s.logger.Info("Session ended", "Status", s.status)
	return s.result(), nil
}

// attach reads the session's row, which the token request wrote, and takes up the session where the row
// says it stands: waiting, admitted (at the join, or by the waiting room before this workflow started),
// holding a seat, or already ended.
func (s *session) attach(ctx workflow.Context) error {
	var a booking.Attachment
	if err := workflow.ExecuteLocalActivity(durableDB(ctx), acts.Attach, s.id).Get(ctx, &a); err != nil {
		return fmt.Errorf("attach to session %s: %w", s.id, err)
	}
	s.joined = true
	s.holdWindow = a.HoldWindow
	s.seatsPerOrder = a.SeatsPerOrder
	if s.holdWindow <= 0 {
		s.holdWindow = defaultHoldWindow
	}
	switch {
	case a.Status == booking.StatusActive:
		s.admit(ctx, a.ActiveUntil)
	case a.Status == booking.StatusHeld && a.Reservation != nil:
		s.reservation = a.Reservation
		s.setStatus(ctx, booking.StatusHeld)
	case a.Status == booking.StatusHeld:
		// A HELD row without a seat cannot be paid for: end it like a lapsed hold.
		return s.end(ctx, booking.StatusExpired)
	default:
		s.setStatus(ctx, a.Status)
	}
	return nil
}

// defaultHoldWindow is the hold window of a session whose row does not record one.
const defaultHoldWindow = 5 * time.Minute

// joinQueue is how sessions started before PostgreSQL issued tokens entered the waiting room.
func (s *session) joinQueue(ctx workflow.Context) error {
	var joined activities.JoinResult
	if err := workflow.ExecuteLocalActivity(durableDB(ctx), acts.JoinQueue, activities.JoinInput{
		SessionID: s.id, WorkflowID: s.wfID, ConcertCode: s.in.ConcertCode, UserUUID: s.in.UserUUID,
		AdmissionWindow: s.in.AdmissionWindow,
	}).Get(ctx, &joined); err != nil {
		return fmt.Errorf("join the waiting room: %w", err)
	}
	s.joined = true
	switch joined.Status {
	case booking.StatusActive:
		s.admit(ctx, joined.ActiveUntil)
	case booking.StatusSoldOut:
		s.setStatus(ctx, booking.StatusSoldOut)
	default:
		s.publish(ctx)
	}
	return nil
}

// waitForAdmission sleeps until the waiting room admits the session or the concert sells out; the admission
// workflow's signal wakes it, nothing polls.
func (s *session) waitForAdmission(ctx workflow.Context) error {
	if err := workflow.Await(ctx, func() bool { return s.admission != nil || s.status.Terminal() }); err != nil {
		return err
	}
	if s.status.Terminal() { // the fan left the line
		return nil
	}
	switch s.admission.Status {
	case booking.StatusActive:
		s.admit(ctx, s.admission.ActiveUntil)
	case booking.StatusSoldOut:
		s.setStatus(ctx, booking.StatusSoldOut)
	case booking.StatusClosed: // the sale closed before the session's turn came
		s.setStatus(ctx, booking.StatusClosed)
	default:
		s.admission = nil // not a notice this status acts on
	}
	return nil
}

// waitForReservation gives the admitted user the admission window to hold a seat.
func (s *session) waitForReservation(ctx workflow.Context) error {
	soldOut := func() bool { return s.admission != nil && s.admission.Status == booking.StatusSoldOut }
	ok, err := s.awaitUntil(ctx, s.activeUntil, "ACTIVE: admission window until "+s.activeUntil.UTC().Format(time.RFC3339),
		func() bool { return s.status != booking.StatusActive || (soldOut() && !s.busy) })
	if err != nil || s.status != booking.StatusActive {
		return err
	}
	if ok { // sold out while the user was choosing; the waiting room already recorded it
		s.setStatus(ctx, booking.StatusSoldOut)
		return nil
	}
	return s.expireWhenIdle(ctx)
}

// waitForPayment gives the user the hold window to pay.
func (s *session) waitForPayment(ctx workflow.Context) error {
	r := s.reservation
	summary := fmt.Sprintf("HELD: seat %d on %s (venue time), hold window until %s",
		r.SeatNumber, booking.FormatDate(r.ConcertDate), r.HeldUntil.UTC().Format(time.RFC3339))
	_, err := s.awaitUntil(ctx, r.HeldUntil, summary, func() bool { return s.status != booking.StatusHeld })
	if err != nil || s.status != booking.StatusHeld {
		return err
	}
	return s.expireWhenIdle(ctx)
}

// expireWhenIdle ends the session EXPIRED once no reserve or pay is in flight, unless that request moved it
// on meanwhile.
func (s *session) expireWhenIdle(ctx workflow.Context) error {
	before := s.status
	if err := workflow.Await(ctx, func() bool { return !s.busy }); err != nil {
		return err
	}
	if s.status != before {
		return nil
	}
	return s.end(ctx, booking.StatusExpired)
}

// end releases whatever the session holds and ends it with status (EXPIRED or CANCELLED), adopting the
// status the database reports when it differs (a payment that completed although its reply was lost).
func (s *session) end(ctx workflow.Context, status booking.Status) error {
	return s.release(ctx, activities.ReleaseInput{SessionID: s.id, Status: status})
}

// release runs the Release activity and takes up the status the store ends the session with.
func (s *session) release(ctx workflow.Context, in activities.ReleaseInput) error {
	status := in.Status
	var final booking.Status
	if err := workflow.ExecuteLocalActivity(durableDB(ctx), acts.Release, in).Get(ctx, &final); err != nil {
		return fmt.Errorf("release session: %w", err)
	}
	if !final.Terminal() {
		final = status
	}
	s.setStatus(ctx, final)
	return nil
}

func (s *session) admit(ctx workflow.Context, activeUntil time.Time) {
	s.activeUntil = activeUntil
	s.setStatus(ctx, booking.StatusActive)
}

// setStatus is the one place a session changes status; it republishes the search attributes.
func (s *session) setStatus(ctx workflow.Context, st booking.Status) {
	if s.status != st {
		s.logger.Info("Session status", "From", s.status, "To", st)
	}
	s.status = st
	s.publish(ctx)
}

func (s *session) result() SessionResult {
	return SessionResult{Status: s.status, Reservation: s.reservation, Payment: s.payment}
}

func (s *session) view() (StatusView, error) {
	return StatusView{
		ConcertCode: s.in.ConcertCode, Status: s.status, ActiveUntil: s.activeUntil,
		Reservation: s.reservation, Payment: s.payment,
	}, nil
}

func (s *session) validateJoin(_ workflow.Context, req JoinRequest) error {
	if req.UserUUID != s.in.UserUUID {
		return rejection(booking.ErrWrongUser, "the session belongs to another user")
	}
	if s.status.Terminal() {
		return rejection(booking.ErrSessionEnded, "the session has ended")
	}
	return nil
}

// join answers the token request of the user: the session's ID, and whether this request started it.
func (s *session) join(ctx workflow.Context, _ JoinRequest) (JoinResponse, error) {
	s.joins++
	created := s.joins == 1
	if err := workflow.Await(ctx, func() bool { return s.joined }); err != nil {
		return JoinResponse{}, err
	}
	return JoinResponse{SessionID: s.id, Created: created}, nil
}

func (s *session) validateReserve(_ workflow.Context, req booking.Hold) error {
	switch {
	case req.UserUUID != s.in.UserUUID:
		return rejection(booking.ErrWrongUser, "the session belongs to another user")
	case req.SeatNumber < 1:
		return rejection(booking.ErrInvalidRequest, "seatNumber must be a positive integer")
	case req.ConcertDate.IsZero():
		return rejection(booking.ErrInvalidRequest, "concertDate is required")
	case s.status.Terminal():
		return rejection(booking.ErrSessionEnded, "the session has ended")
	case (s.status == booking.StatusHeld || s.reservation != nil) && !s.ordersSeveral():
		return rejection(booking.ErrAlreadyHolding, "this session already holds a seat; pay for it or let the hold expire")
	case s.busy:
		return rejection(booking.ErrBusy, "another request of this session is in progress")
	}
	return nil
}

// ordersSeveral reports whether the session's order may hold more than one seat.
func (s *session) ordersSeveral() bool { return s.seatsPerOrder > 1 }

// admissionGrace is how long a reserve that overtook its own admission signal waits for it.
const admissionGrace = 10 * time.Second

// reserve holds a seat. The database decides whether the seat is free; the workflow only makes sure a
// session asks for one seat at a time.
func (s *session) reserve(ctx workflow.Context, req booking.Hold) (booking.Reservation, error) {
	// A reserve that started the workflow (Update-with-Start) runs before the session has attached.
	if err := workflow.Await(ctx, func() bool { return s.joined }); err != nil {
		return booking.Reservation{}, err
	}
	if s.status == booking.StatusWaiting {
		// The API saw the session admitted in the database; the signal is on its way.
		admitted := func() bool { return s.status != booking.StatusWaiting }
		var err error
		if !s.lean && workflow.GetVersion(ctx, cancelStaleTimers, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
			_, err = workflow.AwaitWithTimeout(ctx, admissionGrace, admitted)
		} else {
			_, err = s.awaitUntil(ctx, workflow.Now(ctx).Add(admissionGrace), "admission signal grace", admitted)
		}
		if err != nil {
			return booking.Reservation{}, err
		}
	}
	if err := s.validateReserve(ctx, req); err != nil {
		return booking.Reservation{}, err
	}
	adding := s.status == booking.StatusHeld // a further seat of an order that holds some
	if s.status != booking.StatusActive && !adding {
		return booking.Reservation{}, rejection(booking.ErrNotAdmitted, "the session is not admitted yet")
	}
	s.busy = true
	defer func() { s.busy = false }()

	reservationID, err := s.reservationID(ctx)
	if err != nil {
		return booking.Reservation{}, err
	}
	// The fan's request goes on to the store with what only the workflow knows filled in.
	hold := req
	hold.SessionID, hold.ConcertCode, hold.ReservationID, hold.Window = s.id, s.in.ConcertCode, reservationID, s.holdWindow
	var r booking.Reservation
	err = workflow.ExecuteLocalActivity(shortDB(ctx), acts.HoldSeat, hold).Get(ctx, &r)
	if isBusiness(err, booking.ErrHoldExpired) {
		// This update's own hold lapsed before its answer was recorded (a worker crash that outlasted the
		// hold window): the session ends as its timer would have ended it. HoldSeat never answered so
		// before, so no recorded run takes this branch.
		if rerr := s.end(ctx, booking.StatusExpired); rerr != nil {
			return booking.Reservation{}, errors.Join(err, rerr)
		}
	}
	if err != nil {
		return booking.Reservation{}, err
	}
	if adding {
		// The order's window is its first seat's; the store kept it, and the payment timer stands.
		return r, nil
	}
	s.reservation = &r
	s.setStatus(ctx, booking.StatusHeld)
	return r, nil
}

// Change IDs of the session workflow's versioned changes (see README, "Changing workflow code safely").
const (
	// reservationFromUpdate derives the reservation ID from the update: a SideEffect is recorded only when the
	// workflow task completes, so an update redelivered after a worker crash drew a new ID and failed to
	// recognise the hold its first attempt had committed.
	reservationFromUpdate = "reservation-id-from-update"
	// cancelStaleTimers cancels the admission and hold timers once their wait is over, so a timer cannot fire
	// into the workflow task that completes the session (the server then rejects the completion and the
	// payment's update fails although it went through).
	cancelStaleTimers = "cancel-stale-timers"
)

// reservationNamespace scopes the reservation IDs derived from session and update IDs.
var reservationNamespace = uuid.MustParse("2f7a3c1e-5b8d-4e6f-9a0b-1c2d3e4f5a6b")

// reservationID names the hold a reserve update asks for. It is the same on every delivery of the update,
// so a retried hold finds its own earlier success.
func (s *session) reservationID(ctx workflow.Context) (string, error) {
	// Sessions on the lean path never ran the old code: they take the current behaviour without a version
	// marker (each marker is one more visibility write).
	if s.lean || workflow.GetVersion(ctx, reservationFromUpdate, workflow.DefaultVersion, 1) == 1 {
		update := workflow.GetCurrentUpdateInfo(ctx)
		return uuid.NewSHA1(reservationNamespace, []byte(s.id+"/"+update.ID)).String(), nil
	}
	var id string
	err := workflow.SideEffect(ctx, func(workflow.Context) any { return uuid.NewString() }).Get(&id)
	return id, err
}

// awaitUntil waits until cond holds or the deadline passes (false), and from version cancelStaleTimers on
// cancels its timer when cond comes first.
func (s *session) awaitUntil(ctx workflow.Context, deadline time.Time, summary string, cond func() bool) (bool, error) {
	if !s.lean && workflow.GetVersion(ctx, cancelStaleTimers, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
			Timeout: until(ctx, deadline), TimerOptions: workflow.TimerOptions{Summary: summary},
		}, cond)
	}
	timerCtx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	timer := workflow.NewTimerWithOptions(timerCtx, until(ctx, deadline), workflow.TimerOptions{Summary: summary})
	if err := workflow.Await(ctx, func() bool { return cond() || timer.IsReady() }); err != nil {
		return false, err
	}
	return cond(), nil
}

func (s *session) validatePay(_ workflow.Context, req PayRequest) error {
	switch {
	case req.UserUUID != s.in.UserUUID:
		return rejection(booking.ErrWrongUser, "the session belongs to another user")
	case s.status.Terminal():
		return rejection(booking.ErrSessionEnded, "the session has ended")
	case s.status != booking.StatusHeld:
		return rejection(booking.ErrNoSeatHeld, "this session holds no seat; reserve one first")
	case s.busy:
		return rejection(booking.ErrBusy, "another request of this session is in progress")
	}
	return nil
}

// pay sells the held seat. A short balance leaves the hold in place so the user can top up and retry.
func (s *session) pay(ctx workflow.Context, req PayRequest) (booking.Payment, error) {
	if err := s.validatePay(ctx, req); err != nil {
		return booking.Payment{}, err
	}
	s.busy = true
	defer func() { s.busy = false }()
	var p booking.Payment
	if err := workflow.ExecuteLocalActivity(shortDB(ctx), acts.Pay, s.id).Get(ctx, &p); err != nil {
		return booking.Payment{}, err
	}
	s.payment = &p
	s.setStatus(ctx, booking.StatusPaid)
	return p, nil
}

func (s *session) validateLeave(_ workflow.Context, req LeaveRequest) error {
	switch {
	case req.UserUUID != s.in.UserUUID:
		return rejection(booking.ErrWrongUser, "the session belongs to another user")
	case s.status.Terminal():
		return rejection(booking.ErrSessionEnded, "the session has ended")
	case s.busy:
		return rejection(booking.ErrBusy, "another request of this session is in progress")
	}
	return nil
}

// leave ends the session at the fan's request, CANCELLED: out of the line, or with its seat given back, so
// the slot and the seat go to the next fan now rather than when the window runs out.
func (s *session) leave(ctx workflow.Context, req LeaveRequest) (booking.Status, error) {
	// A leave that reached the workflow before it attached waits for the attach, as a reserve does.
	if err := workflow.Await(ctx, func() bool { return s.joined }); err != nil {
		return "", err
	}
	if err := s.validateLeave(ctx, req); err != nil {
		return "", err
	}
	s.busy = true
	defer func() { s.busy = false }()
	if err := s.release(ctx, activities.ReleaseInput{SessionID: s.id, Status: booking.StatusCancelled, Left: true}); err != nil {
		return "", err
	}
	return s.status, nil
}

// isBusiness reports whether err is the business failure t (raised by an activity or the workflow).
func isBusiness(err error, t booking.ErrorType) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == string(t)
}

// rejection is a business error raised by the workflow itself, typed like the activities' errors.
func rejection(t booking.ErrorType, msg string) error {
	return temporal.NewNonRetryableApplicationError(msg, string(t), nil)
}

// until is the timer duration to a deadline set by the database, at least a second so a deadline that has
// just passed still fires through a timer.
func until(ctx workflow.Context, deadline time.Time) time.Duration {
	return max(deadline.Sub(workflow.Now(ctx)), time.Second)
}

// shortDB is for database steps a user waits on: retried briefly, then reported.
func shortDB(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		ScheduleToCloseTimeout: 30 * time.Second,
		StartToCloseTimeout:    10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 100 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 2 * time.Second,
		},
	})
}

// durableDB is for steps the session cannot go on without (joining, releasing), which must happen however
// long the database is away.
func durableDB(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		ScheduleToCloseTimeout: 7 * 24 * time.Hour,
		StartToCloseTimeout:    10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: time.Minute,
		},
	})
}
