package api

import (
	"context"
	"errors"
	"math"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/ticketing/concert/booking"
	"github.com/ticketing/concert/db"
	"github.com/ticketing/concert/workflows"
)

// sessionView is a session with its place in the waiting room, as a status poll reports it.
type sessionView struct {
	booking.Session
	// Position is 1 for the next session to be admitted and 0 once admitted.
	Position int64
	// EstimatedWait is how long the session will probably wait, from the recent admission rate.
	EstimatedWait time.Duration
	// OpensAt is set for a session in the pre-queue: the sale opens then, and the draw gives it its place.
	OpensAt time.Time
}

// tokenResponse is the answer to a token request.
type tokenResponse struct {
	Token                string `json:"token"`
	Status               string `json:"status"`
	Position             int64  `json:"position"`
	EstimatedWaitSeconds int64  `json:"estimatedWaitSeconds"`
	// OpensAt is when the sale opens, for a fan in the pre-queue (who has no place in line until then).
	OpensAt *time.Time `json:"opensAt,omitempty"`
}

// tokenStatusResponse is the answer to a status poll.
type tokenStatusResponse struct {
	Status               string     `json:"status"`
	Position             int64      `json:"position"`
	EstimatedWaitSeconds int64      `json:"estimatedWaitSeconds"`
	ActiveUntil          *time.Time `json:"activeUntil"`
	HeldUntil            *time.Time `json:"heldUntil"`
	OpensAt              *time.Time `json:"opensAt,omitempty"`
}

// issueToken takes the fan's place in the concert's waiting room: one PostgreSQL transaction decides it
// (the fan's open session if there is one, else a new session admitted at once, waiting, or sold out), and
// the answer goes out right after the commit, with the fan's position. Nothing here waits for Temporal: the
// session's workflow is started in the background (see starter).
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
	if !booking.ValidConcertCode(code) {
		writeProblem(w, r, problem(http.StatusNotFound, "concert-not-found", "no concert has code "+code))
		return
	}
	id := workflows.NewSessionID()
	// The concert's queue snapshot, if this process has one (never waiting for one): the join counts the
	// waiting sessions ahead of the fan that the snapshot may not have seen, and the snapshot the rest.
	snap, haveSnap := h.queues.peek(ctx, code, h.loadQueue(code))
	from := int64(0)
	if haveSnap {
		from = snap.Fresh()
	}
	j, err := h.store.Join(ctx, db.NewSession{
		SessionID: id, WorkflowID: workflows.SessionWorkflowID(code, id), ConcertCode: code, UserUUID: userID,
		AdmissionWindow: h.cfg.AdmissionWindow, HoldWindow: h.cfg.HoldWindow, StaleAfter: h.cfg.StuckGrace,
		CountFrom: from,
	})
	sess, created := j.Session, j.Created
	switch {
	case errors.Is(err, db.ErrUnknownConcert):
		writeProblem(w, r, problem(http.StatusNotFound, "concert-not-found", "no concert has code "+code))
		return
	case errors.Is(err, db.ErrUnknownUser):
		writeProblem(w, r, problem(http.StatusNotFound, "user-not-found", "no user has UUID "+userID))
		return
	case err != nil:
		writeProblem(w, r, h.storeProblem(ctx, err, "", ""))
		return
	}
	status := booking.Status(sess.Status)
	if created && (status == booking.StatusActive || status == booking.StatusWaiting) {
		h.starter.enqueue(sessionRef(sess), status == booking.StatusActive)
	}
	view := sessionView{Session: sess}
	switch {
	case status != booking.StatusWaiting:
	case h.preQueued(ctx, &view):
	case created:
		// Counted in the join's own statement: no other query, so a stampede's tokens wait for nothing else.
		if haveSnap {
			view.Position = snap.PositionWith(sess.Seq, j.Ahead)
		} else {
			// No snapshot yet: the join counted everyone ahead, and the estimate assumes the slowest
			// admission (every slot used for its whole window) until the waiting room has a measured rate.
			view.Position = j.Ahead + 1
			snap = db.QueueSnapshot{MaxActive: j.MaxActive}
		}
		view.EstimatedWait = snap.EstimatedWait(view.Position, h.cfg.AdmissionWindow)
		if view.Position <= j.FreeSlots {
			// A slot is free for this fan: the join only found the concert's lock taken (a stampede's first
			// moments), and the waiting room's next step admits it.
			view.EstimatedWait = h.cfg.AdmissionTick
		}
	default:
		if view, err = h.place(ctx, sess); err != nil {
			writeProblem(w, r, h.storeProblem(ctx, err, "", ""))
			return
		}
	}
	if created && status == booking.StatusWaiting && (view.Position == 1 || (!view.OpensAt.IsZero() && !time.Now().Before(view.OpensAt))) {
		// The queue was empty, or the sale has opened and its pre-queue is not drawn yet (the step that draws
		// it is due now): make sure the waiting room is awake. The answer does not wait for the signal.
		h.wakeAdmissionAsync(ctx, code)
	}
	code201 := http.StatusOK
	if created {
		code201 = http.StatusCreated
	}
	writeJSON(w, code201, tokenResponse{
		Token: h.tokens.Sign(sess.ID), Status: string(view.Status), Position: view.Position,
		EstimatedWaitSeconds: seconds(view.EstimatedWait), OpensAt: opensAt(view),
	})
}

// preQueued fills in the place of a waiting session whose concert's sale has not opened (or whose pre-queue
// is not drawn yet): no position, since the draw at opening gives it one, and a wait until the opening. It
// reports whether the session is in the pre-queue. The opening is read at most once per ReadCacheTTL.
func (h *Handler) preQueued(ctx context.Context, v *sessionView) bool {
	at, err := h.openings.get(ctx, v.ConcertCode, func(ctx context.Context) (time.Time, error) {
		return h.store.PendingOpening(ctx, v.ConcertCode)
	})
	if err != nil || at.IsZero() {
		return false // a failed read shows the usual place; the next poll tries again
	}
	v.Position, v.OpensAt = 0, at
	v.EstimatedWait = max(time.Until(at), h.cfg.AdmissionTick)
	return true
}

// opensAt is the opening of a pre-queued session's concert, for the answers; nil for everyone else.
func opensAt(v sessionView) *time.Time { return optionalTime(v.OpensAt) }

// sessionRef names a session's workflow for the door to Temporal.
func sessionRef(s booking.Session) workflows.SessionRef {
	return workflows.SessionRef{ID: s.ID, WorkflowID: s.WorkflowID, ConcertCode: s.ConcertCode, UserUUID: s.UserUUID,
		Status: s.Status, Deadline: s.Deadline()}
}

// wakeTimeout bounds a wake signal sent after the request that caused it has been answered.
const wakeTimeout = 10 * time.Second

// wakeAdmissionAsync wakes the concert's waiting room without holding up the request.
func (h *Handler) wakeAdmissionAsync(ctx context.Context, code string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), wakeTimeout)
	go func() {
		defer cancel()
		if err := h.door.WakeAdmission(ctx, code); err != nil {
			logFrom(ctx, h.log).Warn("Could not wake the waiting room", "concertCode", code, "error", err)
		}
	}()
}

// tokenStatus answers a waiting client's poll from the database, without asking Temporal.
func (h *Handler) tokenStatus(w http.ResponseWriter, r *http.Request) {
	s, p := h.session(r, sessionCheck{allowWaiting: true, allowEnded: true})
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	resp := tokenStatusResponse{Status: string(s.Status), Position: s.Position, EstimatedWaitSeconds: seconds(s.EstimatedWait),
		OpensAt: opensAt(s)}
	switch s.Status {
	case booking.StatusActive:
		resp.ActiveUntil = timePtr(s.ActiveUntil)
	case booking.StatusHeld:
		resp.HeldUntil = timePtr(s.HeldUntil)
	}
	writeJSON(w, http.StatusOK, resp)
}

// reservationResponse is the answer to a successful hold: the seats it held (seatNumber is the lowest) and
// their total price.
type reservationResponse struct {
	ReservationID string    `json:"reservationId"`
	ConcertDate   string    `json:"concertDate"`
	SeatNumber    int       `json:"seatNumber"`
	SeatNumbers   []int     `json:"seatNumbers"`
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
		seats, p := b.seatNumbers()
		if p != nil {
			writeProblem(w, r, p)
			return
		}
		// A seat another fan holds or bought is answered from PostgreSQL, without a workflow update: in an
		// on-sale most reserve attempts lose such a race, and each would cost Temporal a workflow task. (A
		// session that holds a seat already is left to its workflow, which says so.)
		if booking.Status(s.Status) == booking.StatusActive {
			taken, err := h.store.SeatTakenByOther(r.Context(), s.ConcertCode, date, seats, s.ID)
			if err != nil {
				writeProblem(w, r, h.storeProblem(r.Context(), err, "", ""))
				return
			}
			if taken != 0 {
				h.seatsChanged(s.ConcertCode, date) // the fan's seat map showed it free: the next one must not
				writeProblem(w, r, problem(http.StatusConflict, "seat-taken", takenDetail(taken, len(seats))))
				return
			}
		}
		hold := booking.Hold{UserUUID: s.UserUUID, ConcertDate: date, SeatNumber: seats[0]}
		if len(seats) > 1 {
			hold.SeatNumbers = seats
		}
		out, err := h.door.Reserve(r.Context(), sessionRef(s.Session), updateID, hold)
		h.readSessions.forget(s.ID) // the hold changed the session: this process's next read of it sees that
		h.seatsChanged(s.ConcertCode, date)
		if err != nil {
			writeProblem(w, r, h.workflowProblem(r.Context(), err))
			return
		}
		writeJSON(w, http.StatusOK, reservationResponse{
			ReservationID: out.ReservationID, ConcertDate: booking.FormatDate(out.ConcertDate), SeatNumber: out.SeatNumber,
			SeatNumbers: out.Seats(), Price: out.Price, HeldUntil: out.HeldUntil.UTC(),
		})
	})
}

// takenDetail says which seat of a hold another fan holds or bought.
func takenDetail(seat, asked int) string {
	if asked == 1 {
		return "the seat is held or sold"
	}
	return booking.SeatTakenOfSeveral(seat)
}

// seatsChanged is called after this process changed (or found changed) a seat of a performance: the next
// seat map and date list it serves read PostgreSQL again, so the fan who acted sees it at once (other API
// processes show it within ReadCacheTTL).
func (h *Handler) seatsChanged(code string, date time.Time) {
	h.seatMaps.forget(code + "|" + booking.FormatDate(date))
	h.dateLists.forget(code)
	h.concertList.forget("")
}

// concertSeatsChanged is seatsChanged for a change whose performance is not known here: every seat map of
// the concert is read again.
func (h *Handler) concertSeatsChanged(code string) {
	h.seatMaps.forgetPrefix(code + "|")
	h.dateLists.forget(code)
	h.concertList.forget("")
}

// leaveResponse is the answer to a fan leaving: how the session ended.
type leaveResponse struct {
	Status string `json:"status"`
}

// leave ends the token's session at the fan's request: out of the line, or with the held seat given back at
// once, so the slot and the seat go to the next fan now. The session ends CANCELLED; its token then answers
// 410 everywhere but the status poll.
func (h *Handler) leave(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s, p := h.session(r, sessionCheck{allowWaiting: true})
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	status, err := h.door.Leave(ctx, sessionRef(s.Session), workflows.LeaveRequest{UserUUID: s.UserUUID})
	h.readSessions.forget(s.ID)
	if s.Status == booking.StatusHeld {
		h.concertSeatsChanged(s.ConcertCode)
	}
	if err != nil {
		writeProblem(w, r, h.doorProblem(ctx, err))
		return
	}
	if status != booking.StatusCancelled {
		// It ended another way first (paid, expired, sold out) while the request was on its way.
		writeProblem(w, r, problem(http.StatusGone, "session-ended", "the booking session has ended ("+string(status)+")").
			with("sessionStatus", status))
		return
	}
	if s.Status != booking.StatusWaiting {
		h.wakeAdmissionAsync(ctx, s.ConcertCode) // a slot came free
	}
	writeJSON(w, http.StatusOK, leaveResponse{Status: string(status)})
}

// paymentResponse is the answer to a successful payment: every seat it sold (seatNumber is the lowest) and
// their total.
type paymentResponse struct {
	PaymentID     string `json:"paymentId"`
	ReservationID string `json:"reservationId"`
	ConcertDate   string `json:"concertDate"`
	SeatNumber    int    `json:"seatNumber"`
	SeatNumbers   []int  `json:"seatNumbers"`
	Amount        int64  `json:"amount"`
	Balance       int64  `json:"balance"`
}

func paymentAnswer(p booking.Payment) paymentResponse {
	return paymentResponse{
		PaymentID: p.PaymentID, ReservationID: p.ReservationID, ConcertDate: booking.FormatDate(p.ConcertDate),
		SeatNumber: p.SeatNumber, SeatNumbers: p.Seats(), Amount: p.Amount, Balance: p.Balance,
	}
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
		if updateID != "" && s.Status == booking.StatusPaid {
			// A keyed retry of a payment that went through although its answer was lost (a 5xx, a dropped
			// connection): the payment is the session's, so answer it again.
			h.replayPayment(w, r, s)
			return
		}
		if _, p := actingBody(w, r, s, true); p != nil {
			writeProblem(w, r, p)
			return
		}
		out, err := h.door.Pay(r.Context(), sessionRef(s.Session), updateID, workflows.PayRequest{UserUUID: s.UserUUID})
		h.readSessions.forget(s.ID)
		if err != nil {
			// A failed payment sold nothing (the door has already asked the store about an unanswered one).
			writeProblem(w, r, h.workflowProblem(r.Context(), err))
			return
		}
		h.seatsChanged(s.ConcertCode, out.ConcertDate)
		writeJSON(w, http.StatusCreated, paymentAnswer(out))
	})
}

// replayPayment answers a keyed payment retry of a session that has paid with that payment.
func (h *Handler) replayPayment(w http.ResponseWriter, r *http.Request, s sessionView) {
	if _, p := actingBody(w, r, s, false); p != nil {
		writeProblem(w, r, p)
		return
	}
	pay, err := h.store.PaymentOfSession(r.Context(), s.ID)
	if err != nil {
		writeProblem(w, r, h.storeProblem(r.Context(), err, "session-ended", "the booking session has ended"))
		return
	}
	writeJSON(w, http.StatusCreated, paymentAnswer(pay))
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
func (h *Handler) session(r *http.Request, check sessionCheck) (sessionView, *Problem) {
	s, p := h.authenticateFor(r, check)
	if p != nil {
		return s, p
	}
	return s, check.apply(s)
}

// authenticate checks the queue token of r and returns its session: 401 for a missing, forged or unknown
// token, 403 for another concert's token or a UUID parameter of another user. The session's status is not
// judged here (see sessionCheck.apply).
func (h *Handler) authenticate(r *http.Request) (sessionView, *Problem) {
	return h.authenticateFor(r, sessionCheck{})
}

// authenticateFor is authenticate for a request of the given kind.
func (h *Handler) authenticateFor(r *http.Request, check sessionCheck) (sessionView, *Problem) {
	token := bearer(r.Header.Get("Authorization"))
	if token == "" {
		return sessionView{}, problem(http.StatusUnauthorized, "missing-token", "send Authorization: Bearer <queue token>")
	}
	id, err := h.tokens.Verify(token)
	if err != nil {
		return sessionView{}, problem(http.StatusUnauthorized, "invalid-token", "the token is malformed or its signature does not match")
	}
	s, err := h.view(r.Context(), id, check.reads)
	if err != nil {
		return sessionView{}, h.storeProblem(r.Context(), err, "invalid-token", "the token names no session")
	}
	if code, ok := mux.Vars(r)["concertCode"]; ok && code != s.ConcertCode {
		return sessionView{}, problem(http.StatusForbidden, "wrong-concert", "the token was issued for another concert")
	}
	if uid := r.URL.Query().Get("UUID"); uid != "" {
		if id, err := booking.ParseUserID(uid); err != nil || id != s.UserUUID {
			return sessionView{}, problem(http.StatusForbidden, "wrong-user", "the token belongs to another user")
		}
	}
	return s, nil
}

// apply judges the session's status: 410 for an ended session, 403 with its position for a waiting one,
// unless the check allows them.
func (check sessionCheck) apply(s sessionView) *Problem {
	status := s.Status
	switch {
	case status.Terminal() && !check.allowEnded:
		return problem(http.StatusGone, "session-ended", "the booking session has ended ("+string(s.Status)+"); ask for a new token").
			with("sessionStatus", s.Status)
	case status == booking.StatusWaiting && !check.allowWaiting:
		return problem(http.StatusForbidden, "not-admitted", "the session is waiting in the queue; poll the token status").
			with("position", s.Position).with("estimatedWaitSeconds", seconds(s.EstimatedWait))
	}
	return nil
}

// actingBody reads the body of a request by which a session acts (reserve, pay): the session must still be
// able to act (unless judging its status is not wanted) and the body's UUID must be the token's user.
func actingBody(w http.ResponseWriter, r *http.Request, s sessionView, judgeStatus bool) (body, *Problem) {
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
func sameUser(b body, s sessionView) *Problem {
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

// optionalTime is timePtr for a time that may be unset: nil (JSON null) for the zero time.
func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return timePtr(t)
}

// view returns a session with its place in the waiting room; the place comes from the concert's queue
// snapshot (at most ReadCacheTTL old), so a poll costs a primary-key read and a binary search however long
// the queue. The session row is read fresh, except for reads (seat maps, date lists), which take it from a
// cache of at most ReadCacheTTL: there a read costs no query at all. This API process forgets a session's
// cached row as soon as it changes the session (reserve, pay, cancel), so its own ended tokens stop working
// at once; another API process may honour one for the TTL, for reads only.
func (h *Handler) view(ctx context.Context, id string, reads bool) (sessionView, error) {
	load := func(ctx context.Context) (booking.Session, error) { return h.store.GetSession(ctx, id) }
	var (
		s   booking.Session
		err error
	)
	if reads {
		s, err = h.readSessions.get(ctx, id, load)
	} else {
		s, err = load(ctx)
	}
	if err != nil {
		return sessionView{}, err
	}
	return h.place(ctx, s)
}

// loadQueue loads the concert's queue snapshot for the read cache.
func (h *Handler) loadQueue(code string) func(context.Context) (db.QueueSnapshot, error) {
	return func(ctx context.Context) (db.QueueSnapshot, error) { return h.store.Queue(ctx, code) }
}

// place adds a session's place in the waiting room: the position counted from the concert's queue snapshot
// (at most ReadCacheTTL old, a binary search however long the queue), plus the sessions the snapshot may not
// have seen that wait ahead of this one (an index range: ReadCacheTTL of arrivals and the joins that were
// committing when the snapshot was taken), so even a token issued in a stampede learns its place in line.
func (h *Handler) place(ctx context.Context, s booking.Session) (sessionView, error) {
	v := sessionView{Session: s}
	if s.Status != booking.StatusWaiting || h.preQueued(ctx, &v) {
		return v, nil
	}
	q, err := h.queues.get(ctx, s.ConcertCode, h.loadQueue(s.ConcertCode))
	if err != nil {
		return sessionView{}, err
	}
	later, err := h.store.WaitingBetween(ctx, s.ConcertCode, q.Fresh(), s.Seq)
	if err != nil {
		return sessionView{}, err
	}
	v.Position = q.PositionWith(s.Seq, later)
	v.EstimatedWait = q.EstimatedWait(v.Position, h.cfg.AdmissionWindow)
	return v, nil
}
