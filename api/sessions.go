package api

import (
	"context"
	"errors"
	"math"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/ticketing/concert/activities"
	"github.com/ticketing/concert/booking"
	"github.com/ticketing/concert/db"
	"github.com/ticketing/concert/workflows"
)

// tokenResponse is the answer to a token request.
type tokenResponse struct {
	Token                string `json:"token"`
	Status               string `json:"status"`
	Position             int64  `json:"position"`
	EstimatedWaitSeconds int64  `json:"estimatedWaitSeconds"`
}

// tokenStatusResponse is the answer to a status poll.
type tokenStatusResponse struct {
	Status               string     `json:"status"`
	Position             int64      `json:"position"`
	EstimatedWaitSeconds int64      `json:"estimatedWaitSeconds"`
	ActiveUntil          *time.Time `json:"activeUntil"`
	HeldUntil            *time.Time `json:"heldUntil"`
}

// closingRetries bounds how often a token request waits for a user's previous session of the same concert
// to finish closing before it starts a new one.
const closingRetries = 20

// issueToken starts the user's booking session for the concert, or returns the open one, with
// Update-with-Start: the join update answers synchronously while the workflow goes on waiting.
func (h *Handler) issueToken(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if p := h.limitAddress(r); p != nil {
		writeLimited(w, r, p)
		return
	}
	code := mux.Vars(r)["concertCode"]
	b, p := readBody(w, r, false)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	userID, p := b.userID()
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	if p := h.limitUser(userID); p != nil {
		writeLimited(w, r, p)
		return
	}
	if p := h.concertExists(ctx, code); p != nil {
		writeProblem(w, r, p)
		return
	}
	if _, err := h.store.GetUser(ctx, userID); err != nil {
		writeProblem(w, r, h.storeProblem(ctx, err, "user-not-found", "no user has UUID "+userID))
		return
	}

	var joined workflows.JoinResponse
	for attempt := 0; ; attempt++ {
		err := h.joinSession(ctx, code, userID, &joined)
		if err == nil {
			break
		}
		var appErr *temporal.ApplicationError
		ending := errors.As(err, &appErr) && appErr.Type() == string(booking.ErrSessionEnded)
		if !ending || attempt == closingRetries {
			writeProblem(w, r, h.workflowProblem(ctx, err))
			return
		}
		// The user's previous session has ended and its workflow is closing; a new one can start in a moment.
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(50*(attempt+1)) * time.Millisecond):
		}
	}
	view, err := h.view(ctx, joined.SessionID, false)
	if err != nil {
		writeProblem(w, r, h.storeProblem(ctx, err, "", ""))
		return
	}
	if view.Status == string(booking.StatusWaiting) && view.Position == 1 {
		// The queue was empty: make sure the waiting room is awake to admit this session.
		if err := h.wakeAdmission(ctx, code); err != nil {
			logFrom(ctx, h.log).Warn("Could not wake the waiting room", "concertCode", code, "error", err)
		}
	}
	status := http.StatusOK
	if joined.Created {
		status = http.StatusCreated
	}
	writeJSON(w, status, tokenResponse{
		Token: h.tokens.Sign(joined.SessionID), Status: view.Status, Position: view.Position,
		EstimatedWaitSeconds: seconds(view.EstimatedWait),
	})
}

// joinSession sends the join update to the user's session workflow, starting the workflow if none is open.
func (h *Handler) joinSession(ctx context.Context, code, userID string, out *workflows.JoinResponse) error {
	start := h.temporal.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       workflows.SessionWorkflowID(code, userID),
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes:    workflows.StartSearchAttributes(code, time.Now()),
		StaticSummary:            "Booking session of one user for concert " + code,
	}, workflows.BookingSession, workflows.SessionInput{
		ConcertCode: code, UserUUID: userID, HoldWindow: h.cfg.HoldWindow, AdmissionWindow: h.cfg.AdmissionWindow,
	})
	handle, err := h.temporal.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateName:   workflows.UpdateJoin,
			Args:         []any{workflows.JoinRequest{UserUUID: userID}},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	if err != nil {
		return err
	}
	return handle.Get(ctx, out)
}

// wakeAdmission signals the concert's admission workflow, starting it if it is not running.
func (h *Handler) wakeAdmission(ctx context.Context, code string) error {
	_, err := h.temporal.SignalWithStartWorkflow(ctx, workflows.AdmissionWorkflowID(code), workflows.SignalWake, nil,
		client.StartWorkflowOptions{
			ID:                    workflows.AdmissionWorkflowID(code),
			TaskQueue:             workflows.TaskQueue,
			WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		},
		workflows.Admission, workflows.AdmissionInput{
			ConcertCode: code, AdmissionWindow: h.cfg.AdmissionWindow, Tick: h.cfg.AdmissionTick,
		})
	return err
}

// tokenStatus answers a waiting client's poll from the database, without asking Temporal.
func (h *Handler) tokenStatus(w http.ResponseWriter, r *http.Request) {
	s, p := h.session(r, sessionCheck{allowWaiting: true, allowEnded: true})
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	resp := tokenStatusResponse{Status: s.Status, Position: s.Position, EstimatedWaitSeconds: seconds(s.EstimatedWait)}
	switch booking.Status(s.Status) {
	case booking.StatusActive:
		resp.ActiveUntil = timePtr(s.ActiveUntil.Time)
	case booking.StatusHeld:
		resp.HeldUntil = timePtr(s.HeldUntil.Time)
	}
	writeJSON(w, http.StatusOK, resp)
}

// reservationResponse is the answer to a successful hold.
type reservationResponse struct {
	ReservationID string    `json:"reservationId"`
	ConcertDate   string    `json:"concertDate"`
	SeatNumber    int       `json:"seatNumber"`
	Price         int64     `json:"price"`
	HeldUntil     time.Time `json:"heldUntil"`
}

// reserve holds a seat for the session through the reserve update. With an Idempotency-Key the key is also
// the update's ID, so Temporal itself answers a retry with the first result.
func (h *Handler) reserve(w http.ResponseWriter, r *http.Request) {
	s, p := h.authenticate(r)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	h.idempotent(w, r, "reserve:"+s.ID, func(w http.ResponseWriter, r *http.Request, updateID string) {
		b, p := actingBody(w, r, s, true)
		if p != nil {
			writeProblem(w, r, p)
			return
		}
		date, p := b.date("concertDate")
		if p != nil {
			writeProblem(w, r, p)
			return
		}
		seat, p := b.integer("seatNumber")
		if p != nil {
			writeProblem(w, r, p)
			return
		}
		if seat < 1 || seat > math.MaxInt32 {
			writeProblem(w, r, invalid("seatNumber must be a positive integer"))
			return
		}
		var out activities.Reservation
		if err := h.update(r.Context(), s.Session, workflows.UpdateReserve, updateID, workflows.ReserveRequest{
			UserUUID: s.UserUUID, ConcertDate: date, SeatNumber: int(seat),
		}, &out); err != nil {
			writeProblem(w, r, h.workflowProblem(r.Context(), err))
			return
		}
		writeJSON(w, http.StatusOK, reservationResponse{
			ReservationID: out.ReservationID, ConcertDate: booking.FormatDate(out.ConcertDate), SeatNumber: out.SeatNumber,
			Price: out.Price, HeldUntil: out.HeldUntil.UTC(),
		})
	})
}

// paymentResponse is the answer to a successful payment.
type paymentResponse struct {
	PaymentID     string `json:"paymentId"`
	ReservationID string `json:"reservationId"`
	ConcertDate   string `json:"concertDate"`
	SeatNumber    int    `json:"seatNumber"`
	Amount        int64  `json:"amount"`
	Balance       int64  `json:"balance"`
}

// pay pays for the held seat through the pay update; the session then ends and its token stops working. A
// retry with the Idempotency-Key of a payment that succeeded gets the original 201, although the session has
// ended since: that is the retry a client makes when the first answer was lost.
func (h *Handler) pay(w http.ResponseWriter, r *http.Request) {
	s, p := h.authenticate(r)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	h.idempotent(w, r, "pay:"+s.ID, func(w http.ResponseWriter, r *http.Request, updateID string) {
		if updateID != "" && s.Status == string(booking.StatusPaid) {
			// A keyed retry of a payment that went through although its answer was lost (a 5xx, a dropped
			// connection): the payment is the session's, so answer it again.
			h.replayPayment(w, r, s)
			return
		}
		if _, p := actingBody(w, r, s, true); p != nil {
			writeProblem(w, r, p)
			return
		}
		var out activities.Payment
		if err := h.update(r.Context(), s.Session, workflows.UpdatePay, updateID, workflows.PayRequest{UserUUID: s.UserUUID}, &out); err != nil {
			p := h.workflowProblem(r.Context(), err)
			if p.Status >= 500 {
				// The update failed without a business answer, but the payment may have gone through (a timer
				// or signal raced the completion, a worker died after the commit): the database knows.
				if pay, perr := h.store.PaymentOfSession(r.Context(), s.ID); perr == nil {
					out = activities.Payment{PaymentID: pay.PaymentID, ReservationID: pay.ReservationID,
						ConcertDate: pay.Date, SeatNumber: pay.SeatNumber, Amount: pay.Amount, Balance: pay.Balance}
					p = nil
				}
			}
			if p != nil {
				writeProblem(w, r, p)
				return
			}
		}
		writeJSON(w, http.StatusCreated, paymentResponse{
			PaymentID: out.PaymentID, ReservationID: out.ReservationID, ConcertDate: booking.FormatDate(out.ConcertDate),
			SeatNumber: out.SeatNumber, Amount: out.Amount, Balance: out.Balance,
		})
	})
}

// replayPayment answers a keyed payment retry of a session that has paid with that payment.
func (h *Handler) replayPayment(w http.ResponseWriter, r *http.Request, s db.SessionView) {
	if _, p := actingBody(w, r, s, false); p != nil {
		writeProblem(w, r, p)
		return
	}
	pay, err := h.store.PaymentOfSession(r.Context(), s.ID)
	if err != nil {
		writeProblem(w, r, h.storeProblem(r.Context(), err, "session-ended", "the booking session has ended"))
		return
	}
	writeJSON(w, http.StatusCreated, paymentResponse{
		PaymentID: pay.PaymentID, ReservationID: pay.ReservationID, ConcertDate: booking.FormatDate(pay.Date),
		SeatNumber: pay.SeatNumber, Amount: pay.Amount, Balance: pay.Balance,
	})
}

// update sends a Workflow Update to the session's run and waits for its result. A non-empty updateID makes a
// repeated update return the first one's outcome.
func (h *Handler) update(ctx context.Context, s db.Session, name, updateID string, arg, out any) error {
	defer h.readSessions.forget(s.ID) // the update may change the session: its next read sees it
	handle, err := h.temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: s.WorkflowID, RunID: s.ID, UpdateName: name, UpdateID: updateID, Args: []any{arg},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return err
	}
	return handle.Get(ctx, out)
}

// sessionCheck says which sessions a request accepts.
type sessionCheck struct {
	allowWaiting bool // status polls answer waiting sessions
	allowEnded   bool // status polls report how a session ended
	reads        bool // seat maps and date lists: the session row may come from the read cache
}

// session authenticates the queue token of r and returns its session, or the problem that stops the
// request: 401 for a missing, forged or unknown token, 403 for another concert's token or a session that is
// still waiting (with its position), 410 for an ended session.
func (h *Handler) session(r *http.Request, check sessionCheck) (db.SessionView, *Problem) {
	s, p := h.authenticateFor(r, check)
	if p != nil {
		return s, p
	}
	return s, check.apply(s)
}

// authenticate checks the queue token of r and returns its session: 401 for a missing, forged or unknown
// token, 403 for another concert's token or a UUID parameter of another user. The session's status is not
// judged here (see sessionCheck.apply).
func (h *Handler) authenticate(r *http.Request) (db.SessionView, *Problem) {
	return h.authenticateFor(r, sessionCheck{})
}

// authenticateFor is authenticate for a request of the given kind.
func (h *Handler) authenticateFor(r *http.Request, check sessionCheck) (db.SessionView, *Problem) {
	token := bearer(r.Header.Get("Authorization"))
	if token == "" {
		return db.SessionView{}, problem(http.StatusUnauthorized, "missing-token", "send Authorization: Bearer <queue token>")
	}
	id, err := h.tokens.Verify(token)
	if err != nil {
		return db.SessionView{}, problem(http.StatusUnauthorized, "invalid-token", "the token is malformed or its signature does not match")
	}
	s, err := h.view(r.Context(), id, check.reads)
	if err != nil {
		return db.SessionView{}, h.storeProblem(r.Context(), err, "invalid-token", "the token names no session")
	}
	if code, ok := mux.Vars(r)["concertCode"]; ok && code != s.ConcertCode {
		return db.SessionView{}, problem(http.StatusForbidden, "wrong-concert", "the token was issued for another concert")
	}
	if uid := r.URL.Query().Get("UUID"); uid != "" {
		if id, err := booking.ParseUserID(uid); err != nil || id != s.UserUUID {
			return db.SessionView{}, problem(http.StatusForbidden, "wrong-user", "the token belongs to another user")
		}
	}
	return s, nil
}

// apply judges the session's status: 410 for an ended session, 403 with its position for a waiting one,
// unless the check allows them.
func (check sessionCheck) apply(s db.SessionView) *Problem {
	status := booking.Status(s.Status)
	switch {
	case status.Terminal() && !check.allowEnded:
		return problem(http.StatusGone, "session-ended", "the booking session has ended ("+s.Status+"); ask for a new token").
			with("sessionStatus", s.Status)
	case status == booking.StatusWaiting && !check.allowWaiting:
		return problem(http.StatusForbidden, "not-admitted", "the session is waiting in the queue; poll the token status").
			with("position", s.Position).with("estimatedWaitSeconds", seconds(s.EstimatedWait))
	}
	return nil
}

// actingBody reads the body of a request by which a session acts (reserve, pay): the session must still be
// able to act (unless judging its status is not wanted) and the body's UUID must be the token's user.
func actingBody(w http.ResponseWriter, r *http.Request, s db.SessionView, judgeStatus bool) (body, *Problem) {
	if judgeStatus {
		if p := (sessionCheck{}).apply(s); p != nil {
			return nil, p
		}
	}
	b, p := readBody(w, r, false)
	if p != nil {
		return nil, p
	}
	if p := sameUser(b, s); p != nil {
		return nil, p
	}
	return b, nil
}

// sameUser checks that the body's UUID is the token's user.
func sameUser(b body, s db.SessionView) *Problem {
	id, p := b.userID()
	if p != nil {
		return p
	}
	if id != s.UserUUID {
		return problem(http.StatusForbidden, "wrong-user", "the token belongs to another user")
	}
	return nil
}

func seconds(d time.Duration) int64 { return int64(math.Ceil(d.Seconds())) }

func timePtr(t time.Time) *time.Time {
	u := t.UTC()
	return &u
}

// view returns a session with its place in the waiting room; the place comes from the concert's queue
// snapshot (at most ReadCacheTTL old), so a poll costs a primary-key read and a binary search however long
// the queue. The session row is read fresh, except for reads (seat maps, date lists), which take it from a
// cache of at most ReadCacheTTL: there a read costs no query at all. This API process forgets a session's
// cached row as soon as it changes the session (reserve, pay, cancel), so its own ended tokens stop working
// at once; another API process may honour one for the TTL, for reads only.
func (h *Handler) view(ctx context.Context, id string, reads bool) (db.SessionView, error) {
	load := func(ctx context.Context) (db.Session, error) { return h.store.GetSession(ctx, id) }
	var (
		s   db.Session
		err error
	)
	if reads {
		s, err = h.readSessions.get(ctx, id, load)
	} else {
		s, err = load(ctx)
	}
	if err != nil {
		return db.SessionView{}, err
	}
	v := db.SessionView{Session: s}
	if booking.Status(s.Status) != booking.StatusWaiting {
		return v, nil
	}
	q, err := h.queues.get(ctx, s.ConcertCode, func(ctx context.Context) (db.QueueSnapshot, error) {
		return h.store.Queue(ctx, s.ConcertCode)
	})
	if err != nil {
		return db.SessionView{}, err
	}
	v.Position = q.Position(s.Seq)
	v.EstimatedWait = q.EstimatedWait(v.Position, h.cfg.AdmissionWindow)
	return v, nil
}
