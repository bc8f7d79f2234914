package booking

import "time"

// The domain types below are what every layer speaks: the store returns them, activities pass them to
// workflows unchanged (they are recorded in histories as JSON, so their field names are part of every
// recorded history and must not change), and the API answers from them.

// Session is one fan's booking session for one concert, as the store of record holds it.
type Session struct {
	ID          string
	WorkflowID  string
	ConcertCode string
	UserUUID    string
	// Seq is the session's place in arrival order among all sessions: the waiting room admits by it.
	Seq    int64
	Status Status
	// ActiveUntil is the end of the admission window once admitted; HeldUntil the end of the hold while a
	// seat is held. Zero when the session never had one.
	ActiveUntil time.Time
	HeldUntil   time.Time
	StatusSince time.Time
}

// Deadline is when the session's current status must end by (the end of its admission window while ACTIVE,
// of its hold while HELD), or zero when the status has none.
func (s Session) Deadline() time.Time {
	switch s.Status {
	case StatusActive:
		return s.ActiveUntil
	case StatusHeld:
		return s.HeldUntil
	}
	return time.Time{}
}

// Hold asks for seats for one session for Window: the one request type of the seat-hold path. The API
// fills in the fan and the seats (the reserve update's argument, recorded in histories with the first three
// fields), the session's workflow the rest: its session, its concert, a ReservationID chosen before the first
// attempt (so a retried hold recognises its own earlier success) and the hold window; the store decides.
//
// A hold is for SeatNumber, or, when SeatNumbers is set, for all of SeatNumbers or none of them (SeatNumber is
// then their lowest). Holds recorded before SeatNumbers existed decode it as nil.
type Hold struct {
	UserUUID      string `json:",omitempty"`
	ConcertDate   time.Time
	SeatNumber    int
	SeatNumbers   []int         `json:",omitempty"`
	SessionID     string        `json:",omitempty"`
	ConcertCode   string        `json:",omitempty"`
	ReservationID string        `json:",omitempty"`
	Window        time.Duration `json:",omitempty"`
}

// Seats lists the seat numbers the hold asks for.
func (h Hold) Seats() []int {
	if len(h.SeatNumbers) > 0 {
		return h.SeatNumbers
	}
	return []int{h.SeatNumber}
}

// MaxSeatsPerOrder bounds a concert's seats per order (migration 0009 checks it too).
const MaxSeatsPerOrder = 10

// Reservation is what one hold gave a session until HeldUntil: SeatNumber, or every seat of SeatNumbers when
// the hold asked for several (SeatNumber is then their lowest), for Price in total. Reservations recorded
// before SeatNumbers existed are of one seat and decode it as nil.
type Reservation struct {
	ReservationID string
	ConcertCode   string
	ConcertDate   time.Time
	SeatNumber    int
	Price         int64
	HeldUntil     time.Time
	SeatNumbers   []int `json:",omitempty"`
}

// Seats lists the seat numbers the reservation holds.
func (r Reservation) Seats() []int {
	if len(r.SeatNumbers) > 0 {
		return r.SeatNumbers
	}
	return []int{r.SeatNumber}
}

// Payment is an order's sold seats, paid from the fan's balance: SeatNumber, or every seat of SeatNumbers
// when the order had several (SeatNumber is then their lowest), for Amount in total.
type Payment struct {
	PaymentID     string
	ReservationID string
	ConcertDate   time.Time
	SeatNumber    int
	SeatNumbers   []int `json:",omitempty"`
	Amount        int64
	// Balance is the fan's balance after the payment (now, for a payment looked up again).
	Balance int64
	// Who bought which concert's seat, and when; not recorded by histories from before they were here.
	UserUUID    string    `json:",omitempty"`
	ConcertCode string    `json:",omitempty"`
	CreatedAt   time.Time `json:",omitzero"`
}

// Seats lists the seat numbers the payment sold.
func (p Payment) Seats() []int {
	if len(p.SeatNumbers) > 0 {
		return p.SeatNumbers
	}
	return []int{p.SeatNumber}
}

// Attachment is a session as its workflow finds it when it starts: its status, the end of its admission
// window, the hold window the fan joined with, the seats it holds, if any, and how many one order of its
// concert may hold. Attachments recorded before SeatsPerOrder existed decode it as 0: one seat.
type Attachment struct {
	Status        Status
	ActiveUntil   time.Time
	HoldWindow    time.Duration
	Reservation   *Reservation `json:",omitempty"`
	SeatsPerOrder int          `json:",omitempty"`
}

// Admission is one session to tell of its admission or sold-out end, as a waiting-room step found it.
type Admission struct {
	SessionID   string
	WorkflowID  string
	ConcertCode string `json:",omitempty"`
	UserUUID    string `json:",omitempty"`
	Notice      AdmissionNotice
}

// AdmissionStep is what one step of a concert's waiting room did and saw.
type AdmissionStep struct {
	// Notify lists the sessions whose workflows have not yet been told of their admission or sold-out end,
	// including ones admitted by an earlier step whose notice did not arrive.
	Notify []Admission
	// Admitted is how many sessions this step admitted; Waiting how many still wait; Live how many are
	// ACTIVE or HELD within their windows after it.
	Admitted  int
	Waiting   int
	Live      int
	MaxActive int
	Paused    bool
	SoldOut   bool
	// NextFree is when the first live session's window ends, freeing its slot even if nothing ends the
	// session (zero when none is live). Untold counts sessions admitted or ended SOLD_OUT a moment ago whose
	// workflows have not confirmed the notice: a later step must look at them again. Steps recorded before
	// they existed decode them as zero.
	NextFree time.Time `json:",omitzero"`
	Untold   int       `json:",omitempty"`
	// Repaired is how many sessions this step ended because they were far past their windows and their
	// workflows had not ended them (terminated, or never ran).
	Repaired int `json:",omitempty"`
	// OpensAt is when the concert's sale opens, while it has not: nobody is admitted before, and the first
	// step after it draws the pre-queue's order.
	OpensAt time.Time `json:",omitzero"`
	// ClosesAt is when the concert's sale closes, while it has not: the room steps then, to end everyone
	// still waiting CLOSED. Closed says it has closed. Steps recorded before they existed decode them as
	// zero.
	ClosesAt time.Time `json:",omitzero"`
	Closed   bool      `json:",omitempty"`
}

// OnSale is a concert a fan can still buy for: its performances with the seats free now.
type OnSale struct {
	Code  string
	Title string
	// OpensAt is when the sale opens, if it has an opening time; fans who ask before it join the pre-queue.
	// ClosesAt is when it closes, if it has a closing time.
	OpensAt  time.Time
	ClosesAt time.Time
	// MaxSeatsPerOrder is how many seats one order may hold; MaxTicketsPerUser how many one fan may buy
	// (0: no limit).
	MaxSeatsPerOrder  int
	MaxTicketsPerUser int
	Dates             []DateSeats
}

// DateSeats is one performance and how many of its seats a fan could hold now (a lapsed hold counts as free).
type DateSeats struct {
	Date      time.Time
	Available int
	// Unsold counts the seats not sold yet, held ones included: while any is unsold the concert is on sale.
	Unsold int
}

// FanBooking is one of a fan's bookings as the fan lists them: a paid seat, or the session that is live.
type FanBooking struct {
	SessionID   string
	ConcertCode string
	Status      Status
	// Seq orders a fan's sessions, newest last; listings page by it.
	Seq         int64
	Since       time.Time
	ConcertDate time.Time // zero before a seat is held
	SeatNumber  int       // 0 before a seat is held; the lowest of SeatNumbers
	SeatNumbers []int     // every seat held or bought
	HeldUntil   time.Time // while HELD
	PaymentID   string    // once PAID
	Amount      int64
	PaidAt      time.Time
}
