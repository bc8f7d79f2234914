package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"go.temporal.io/sdk/temporal"

	"github.com/ticketing/concert/booking"
	"github.com/ticketing/concert/workflows"
)

// ProblemTypeBase prefixes every problem type; a type is ProblemTypeBase + a slug like "seat-taken". The
// slugs are stable: clients may switch on them.
const ProblemTypeBase = "/problems/"

// Problem is an RFC 9457 problem detail. Extensions carry machine-readable context, such as the queue
// position of a session that is still waiting.
type Problem struct {
	Type       string
	Title      string
	Status     int
	Detail     string
	Extensions map[string]any
}

func (p *Problem) Error() string { return p.Title + ": " + p.Detail }

// problem builds a Problem for one of the slugs in problemTitles.
func problem(status int, slug, detail string) *Problem {
	return &Problem{Type: ProblemTypeBase + slug, Title: problemTitles[slug], Status: status, Detail: detail}
}

// with adds an extension member.
func (p *Problem) with(key string, value any) *Problem {
	if p.Extensions == nil {
		p.Extensions = map[string]any{}
	}
	p.Extensions[key] = value
	return p
}

// problemTitles are the human titles of every problem type the API returns, one per slug.
var problemTitles = map[string]string{
	"invalid-request":             "The request is not valid",
	"invalid-json":                "The request body is not a valid JSON object",
	"payload-too-large":           "The request body is too large",
	"missing-token":               "A queue token is required",
	"invalid-token":               "The queue token is not valid",
	"admin-token-required":        "An admin token is required",
	"wrong-concert":               "The token is for another concert",
	"wrong-user":                  "The token belongs to another user",
	"not-admitted":                "The session is still waiting in the queue",
	"session-ended":               "The booking session has ended",
	"concert-not-found":           "No concert has this code",
	"user-not-found":              "No user has this UUID",
	"date-not-found":              "The concert has no performance on this date",
	"seat-not-found":              "The performance has no seat with this number",
	"not-found":                   "No such resource",
	"method-not-allowed":          "The method is not allowed on this resource",
	"seat-taken":                  "The seat is held or sold",
	"ticket-limit-reached":        "The ticket limit per fan is reached",
	"order-full":                  "The order holds as many seats as it may",
	"one-date-per-order":          "An order is for one performance",
	"sale-opened":                 "The sale has opened",
	"sale-closed":                 "The sale has closed",
	"already-holding":             "This session already holds a seat",
	"no-seat-held":                "This session holds no seat",
	"request-in-progress":         "Another request of this session is in progress",
	"duplicate-concert":           "A concert with this code exists already",
	"insufficient-balance":        "The balance is too low",
	"hold-expired":                "The hold has expired",
	"service-unavailable":         "The service is temporarily unavailable",
	"internal-error":              "Internal error",
	"idempotency-key-reused":      "The Idempotency-Key was used for another request",
	"idempotency-key-in-progress": "A request with this Idempotency-Key is still running",
	"rate-limited":                "Too many requests",
	"booking-not-found":           "No booking has this ID",
	"booking-paid":                "The booking is paid",
}

// businessProblems maps each business error type raised by workflows and activities to its HTTP form: the
// one place where booking failures become status codes.
var businessProblems = map[booking.ErrorType]struct {
	status int
	slug   string
}{
	booking.ErrSeatTaken:           {http.StatusConflict, "seat-taken"},
	booking.ErrSeatNotFound:        {http.StatusNotFound, "seat-not-found"},
	booking.ErrDateNotFound:        {http.StatusNotFound, "date-not-found"},
	booking.ErrAlreadyHolding:      {http.StatusConflict, "already-holding"},
	booking.ErrNoSeatHeld:          {http.StatusConflict, "no-seat-held"},
	booking.ErrInsufficientBalance: {http.StatusPaymentRequired, "insufficient-balance"},
	booking.ErrHoldExpired:         {http.StatusGone, "hold-expired"},
	booking.ErrTicketLimit:         {http.StatusConflict, "ticket-limit-reached"},
	booking.ErrOrderFull:           {http.StatusConflict, "order-full"},
	booking.ErrOtherDate:           {http.StatusConflict, "one-date-per-order"},
	booking.ErrNotAdmitted:         {http.StatusForbidden, "not-admitted"},
	booking.ErrSessionEnded:        {http.StatusGone, "session-ended"},
	booking.ErrWrongUser:           {http.StatusForbidden, "wrong-user"},
	booking.ErrBusy:                {http.StatusConflict, "request-in-progress"},
	booking.ErrInvalidRequest:      {http.StatusBadRequest, "invalid-request"},
}

// workflowProblem turns the error of a workflow update into a Problem: business errors by their type, a
// session whose workflow has closed as 410, and anything else as 503 (the error is logged, not shown).
func (h *Handler) workflowProblem(ctx context.Context, err error) *Problem {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		if bp, ok := businessProblems[booking.ErrorType(appErr.Type())]; ok {
			p := problem(bp.status, bp.slug, appErr.Message())
			if booking.ErrorType(appErr.Type()) == booking.ErrInsufficientBalance {
				var balance, price int64
				if appErr.Details(&balance, &price) == nil {
					p = p.with("balance", balance).with("price", price)
				}
			}
			return p
		}
	}
	if workflows.SessionGone(err) {
		return problem(http.StatusGone, "session-ended", "the booking session has ended")
	}
	logFrom(ctx, h.log).Error("Workflow request failed", "error", err)
	return problem(http.StatusServiceUnavailable, "service-unavailable", "the booking engine did not answer; try again")
}

// writeProblem sends p as application/problem+json.
func writeProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	body := map[string]any{}
	for k, v := range p.Extensions {
		body[k] = v
	}
	body["type"], body["title"], body["status"] = p.Type, p.Title, p.Status
	if p.Detail != "" {
		body["detail"] = p.Detail
	}
	body["instance"] = r.URL.Path
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="concert"`)
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(body)
}

// writeJSON sends v as application/json with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
