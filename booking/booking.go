// Package booking holds the vocabulary every layer of the booking service shares: session statuses, seat
// statuses, the business error types that travel from activities through workflows to HTTP, and the input
// rules (concert codes, user IDs, dates, money) that the API checks before anything else runs.
//
// It does no I/O and imports nothing of the project, so workflows, activities, the store and the API can all
// depend on it without depending on each other.
package booking

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/google/uuid"
)

// Status is where a user's booking session stands. The session workflow moves it forward and the database
// mirrors it, so the API can answer status polls without asking Temporal.
type Status string

// The session statuses, in the order a successful session passes through them, then the other endings.
const (
	StatusWaiting   Status = "WAITING"
	StatusActive    Status = "ACTIVE"
	StatusHeld      Status = "HELD"
	StatusPaid      Status = "PAID"
	StatusExpired   Status = "EXPIRED"
	StatusCancelled Status = "CANCELLED"
	StatusSoldOut   Status = "SOLD_OUT"
	// StatusClosed ends a session that was still waiting when the concert's sale closed (closesAt), or that
	// asked for a token after it.
	StatusClosed Status = "CLOSED"
)

// Terminal reports whether a session in this status has ended; its token then no longer opens anything.
func (s Status) Terminal() bool {
	switch s {
	case StatusPaid, StatusExpired, StatusCancelled, StatusSoldOut, StatusClosed:
		return true
	}
	return false
}

// Valid reports whether s is one of the statuses above, so filters given by operators can be checked.
func (s Status) Valid() bool {
	switch s {
	case StatusWaiting, StatusActive, StatusHeld, StatusPaid, StatusExpired, StatusCancelled, StatusSoldOut, StatusClosed:
		return true
	}
	return false
}

// SeatStatus is what the seat map shows for one seat. A hold whose held_until has passed shows as available
// even before the release activity has run, because the database will let another session take it.
type SeatStatus string

// The seat statuses.
const (
	SeatAvailable SeatStatus = "AVAILABLE"
	SeatHeld      SeatStatus = "HELD"
	SeatSold      SeatStatus = "SOLD"
)

// ErrorType names a business failure. Activities raise them as non-retryable application errors, workflows
// pass them on unchanged, and the API maps each to one HTTP status and problem type in one table.
type ErrorType string

// The business failures of the booking flow.
const (
	ErrSeatTaken           ErrorType = "SeatTaken"
	ErrSeatNotFound        ErrorType = "SeatNotFound"
	ErrDateNotFound        ErrorType = "DateNotFound"
	ErrAlreadyHolding      ErrorType = "AlreadyHolding"
	ErrNoSeatHeld          ErrorType = "NoSeatHeld"
	ErrInsufficientBalance ErrorType = "InsufficientBalance"
	ErrHoldExpired         ErrorType = "HoldExpired"
	ErrTicketLimit         ErrorType = "TicketLimitReached"
	ErrOrderFull           ErrorType = "OrderFull"
	ErrOtherDate           ErrorType = "OtherDate"
	ErrNotAdmitted         ErrorType = "NotAdmitted"
	ErrSessionEnded        ErrorType = "SessionEnded"
	ErrWrongUser           ErrorType = "WrongUser"
	ErrBusy                ErrorType = "Busy"
	ErrInvalidRequest      ErrorType = "InvalidRequest"
)

// SeatTakenOfSeveral says which seat of a hold of several another fan holds or bought. The API's read of
// PostgreSQL and the hold itself answer a lost race with it alike.
func SeatTakenOfSeveral(seat int) string {
	return fmt.Sprintf("seat %d is held or sold; none of the seats was held", seat)
}

// Valid reports whether t is one of the business failures above.
func (t ErrorType) Valid() bool {
	switch t {
	case ErrSeatTaken, ErrSeatNotFound, ErrDateNotFound, ErrAlreadyHolding, ErrNoSeatHeld, ErrInsufficientBalance,
		ErrHoldExpired, ErrTicketLimit, ErrOrderFull, ErrOtherDate, ErrNotAdmitted, ErrSessionEnded, ErrWrongUser,
		ErrBusy, ErrInvalidRequest:
		return true
	}
	return false
}

// ErrNotFound means a session, payment or other record asked for does not exist. The store returns it
// (wrapped), and code that reaches the store through an interface tells it with errors.Is.
var ErrNotFound = errors.New("not found")

// MaxTopUp is the largest amount, in won, that one balance top-up may add. It bounds the damage of a typo
// or a stolen session and keeps every balance far from integer overflow.
const MaxTopUp int64 = 10_000_000

// MaxSeatsPerDate bounds the seats one concert date may have, so a bad admin request cannot create
// millions of rows.
const MaxSeatsPerDate = 100_000

// DateLayout is how concert dates travel in JSON and query strings: an ISO-8601 local date-time without
// zone, the LocalDateTime of the product's specification. Dates are local to the venue.
const DateLayout = "2006-01-02T15:04:05"

// ParseDate reads a concert date in DateLayout. A trailing zone is refused: a concert date is a venue's
// local time, and silently shifting it would book the wrong night.
func ParseDate(s string) (time.Time, error) {
	t, err := time.Parse(DateLayout, s)
	if err != nil || len(s) != len(DateLayout) { // time.Parse would also take fractional seconds
		return time.Time{}, fmt.Errorf("concertDate %q is not a local date-time like 2026-12-24T19:00:00", s)
	}
	return t, nil
}

// FormatDate writes a concert date in DateLayout.
func FormatDate(t time.Time) string { return t.Format(DateLayout) }

var concertCodeRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// ValidConcertCode reports whether code can name a concert: letters, digits, '-' and '_', at most 64
// characters. Codes appear in workflow IDs and URLs, so nothing else is allowed.
func ValidConcertCode(code string) bool { return concertCodeRE.MatchString(code) }

// ParseUserID reads a user UUID in its canonical 36-character form and returns it in lower case. Other
// spellings that uuid.Parse would accept (braces, urn: prefix) are refused so one user has one spelling.
func ParseUserID(s string) (string, error) {
	if len(s) != 36 {
		return "", fmt.Errorf("UUID %q is not a canonical UUID like 3f2a6c1e-8d4b-4c8e-9a51-2b7f0e9d4c11", s)
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return "", fmt.Errorf("UUID %q is not a canonical UUID like 3f2a6c1e-8d4b-4c8e-9a51-2b7f0e9d4c11", s)
	}
	return id.String(), nil
}

// SignalAdmission is the signal the waiting room sends a session workflow when it moves the session on.
// Activities send it and the session workflow receives it, so its name and payload live here.
const SignalAdmission = "admission"

// AdmissionNotice is the payload of SignalAdmission: the session's new status (ACTIVE or SOLD_OUT) and, when
// admitted, the end of its admission window as the database recorded it.
type AdmissionNotice struct {
	Status      Status
	ActiveUntil time.Time
}
