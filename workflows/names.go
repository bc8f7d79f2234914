// Package workflows orchestrates the booking flow: one session workflow per user and concert, and one
// admission workflow per concert that runs the waiting room. The code here is deterministic: no I/O, no
// clocks, no randomness but workflow.SideEffect; every side effect is an activity of package activities.
//
// The API talks to these workflows only through the names, IDs and message types declared in this file.
package workflows

import (
	"time"

	"github.com/ticketing/concert/activities"
	"github.com/ticketing/concert/booking"
)

// TaskQueue is the task queue the booking worker polls and the API starts workflows on.
const TaskQueue = "concert-booking"

// Names of the messages the workflows handle. Each is declared once and used by sender and handler.
const (
	// UpdateJoin returns the session to the user asking for a token; the API sends it with Update-with-Start.
	UpdateJoin = "join"
	// UpdateReserve holds a seat for the session.
	UpdateReserve = "reserve"
	// UpdatePay pays for the held seat.
	UpdatePay = "pay"
	// QueryStatus returns a session's StatusView, or an admission workflow's AdmissionView.
	QueryStatus = "status"
	// SignalWake asks the admission workflow to take a step now, for example after its settings changed.
	SignalWake = "wake"
)

// SessionWorkflowID is the workflow ID of a user's booking session for a concert: "booking-<concertCode>-
// <userUUID>". A user has at most one open session per concert; a new one may start after the last ended.
// Support staff use this ID as the bookingId.
func SessionWorkflowID(concertCode, userUUID string) string {
	return "booking-" + concertCode + "-" + userUUID
}

// AdmissionWorkflowID is the workflow ID of a concert's waiting room: "admission-<concertCode>".
func AdmissionWorkflowID(concertCode string) string { return "admission-" + concertCode }

// SessionInput starts a booking session. The windows travel in the input so a run keeps the settings it was
// started with, whatever the configuration says later.
type SessionInput struct {
	ConcertCode     string
	UserUUID        string
	HoldWindow      time.Duration
	AdmissionWindow time.Duration
}

// SessionResult is how a session ended.
type SessionResult struct {
	Status      booking.Status
	Reservation *activities.Reservation `json:",omitempty"`
	Payment     *activities.Payment     `json:",omitempty"`
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

// ReserveRequest asks to hold one seat.
type ReserveRequest struct {
	UserUUID    string
	ConcertDate time.Time
	SeatNumber  int
}

// PayRequest asks to pay for the held seat.
type PayRequest struct {
	UserUUID string
}

// StatusView is what the status query of a session returns.
type StatusView struct {
	ConcertCode string
	Status      booking.Status
	ActiveUntil time.Time               `json:",omitempty"`
	Reservation *activities.Reservation `json:",omitempty"`
	Payment     *activities.Payment     `json:",omitempty"`
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
}
