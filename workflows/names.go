// Package workflows orchestrates the booking flow: one session workflow per user and concert, and one
// admission workflow per concert that runs the waiting room. The code here is deterministic: no I/O, no
// clocks, no randomness but workflow.SideEffect; every side effect is an activity of package activities.
//
// The API talks to these workflows only through the names, IDs and message types declared in this file.
package workflows

import (
	"time"

	"github.com/ticketing/concert/booking"
)

// TaskQueue is the task queue the booking worker polls and the API starts workflows on.
const TaskQueue = "concert-booking"

// Names of the messages the workflows handle. Each is declared once and used by sender and handler.
const (
	// UpdateJoin returned the session to the user asking for a token, when tokens were Update-with-Start
	// calls; sessions started since then never receive it, but its handler stays for the ones that did.
	UpdateJoin = "join"
	// UpdateReserve holds a seat for the session.
	UpdateReserve = "reserve"
	// UpdatePay pays for the held seat.
	UpdatePay = "pay"
	// UpdateLeave ends the session at the fan's request: it leaves the line, or gives its seat back, at once.
	UpdateLeave = "leave"
	// QueryStatus returns a session's StatusView, or an admission workflow's AdmissionView.
	QueryStatus = "status"
	// SignalWake asks the admission workflow to take a step now, for example after its settings changed.
	SignalWake = "wake"
)

// AdmissionWorkflowID is the workflow ID of a concert's waiting room: "admission-<concertCode>".
func AdmissionWorkflowID(concertCode string) string { return "admission-" + concertCode }

// SessionInput starts a booking session. A session whose token PostgreSQL issued has SessionID, and its
// workflow reads everything else it needs (status, windows) from the session's row when it attaches. Sessions
// started before that (SessionID empty) carried their windows here and were placed in the queue by their
// workflow; they keep doing so until the last of them has ended.
type SessionInput struct {
	SessionID       string `json:",omitempty"`
	ConcertCode     string
	UserUUID        string
	HoldWindow      time.Duration `json:",omitempty"`
	AdmissionWindow time.Duration `json:",omitempty"`
}

// SessionResult is how a session ended.
type SessionResult struct {
	Status      booking.Status
	Reservation *booking.Reservation `json:",omitempty"`
	Payment     *booking.Payment     `json:",omitempty"`
}

// JoinRequest asks for the session of a user.
type JoinRequest struct {
	UserUUID string
}

// JoinResponse identifies the session. Created is true only for the request that started it.
type JoinResponse struct {
	SessionID string
	Created   bool
}

// PayRequest asks to pay for the held seat.
type PayRequest struct {
	UserUUID string
}

// LeaveRequest asks to end the session: the fan leaves the line or gives the held seat back.
type LeaveRequest struct {
	UserUUID string
}

// StatusView is what the status query of a session returns.
type StatusView struct {
	ConcertCode string
	Status      booking.Status
	ActiveUntil time.Time            `json:",omitempty"`
	Reservation *booking.Reservation `json:",omitempty"`
	Payment     *booking.Payment     `json:",omitempty"`
}

// AdmissionInput starts (or continues) a concert's waiting room.
type AdmissionInput struct {
	ConcertCode     string
	AdmissionWindow time.Duration
	// Tick is how often the waiting room looks for free slots while sessions wait.
	Tick time.Duration
}

// AdmissionView is what the status query of an admission workflow returns: its last step.
type AdmissionView struct {
	ConcertCode string
	Steps       int
	Admitted    int
	Waiting     int
	Live        int
	MaxActive   int
	Paused      bool
	SoldOut     bool
	Closed      bool `json:",omitempty"`
}
