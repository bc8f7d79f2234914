package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/ticketing/concert/booking"
)

// Errors of HoldSeat that name what is missing, so the API can say which.
var (
	// ErrDateNotFound means the concert has no performance on that date.
	ErrDateNotFound = fmt.Errorf("concert date: %w", ErrNotFound)
	// ErrSeatNotFound means the performance has no seat with that number.
	ErrSeatNotFound = fmt.Errorf("seat: %w", ErrNotFound)
)

// reservationRow is a held seat as the seats table has it; callers get a booking.Reservation.
type reservationRow struct {
	ReservationID string    `db:"reservation_id"`
	ConcertCode   string    `db:"concert_code"`
	ConcertDate   time.Time `db:"concert_date"`
	SeatNumber    int       `db:"seat_number"`
	Price         int64     `db:"price"`
	HeldUntil     time.Time `db:"held_until"`
}

func (r reservationRow) reservation() booking.Reservation {
	return booking.Reservation{
		ReservationID: r.ReservationID, ConcertCode: r.ConcertCode, ConcertDate: r.ConcertDate,
		SeatNumber: r.SeatNumber, Price: r.Price, HeldUntil: r.HeldUntil,
	}
}

// paymentRow is a payment with the buyer's balance now; callers get a booking.Payment.
type paymentRow struct {
	PaymentID     string    `db:"id"`
	ReservationID string    `db:"reservation_id"`
	UserUUID      string    `db:"user_uuid"`
	ConcertCode   string    `db:"concert_code"`
	ConcertDate   time.Time `db:"concert_date"`
	SeatNumber    int       `db:"seat_number"`
	Amount        int64     `db:"amount"`
	Balance       int64     `db:"balance"`
	CreatedAt     time.Time `db:"created_at"`
	// SeatNumbers lists every seat the payment sold; read back only when it sold several.
	SeatNumbers pq.Int64Array `db:"seat_numbers"`
}

func (r paymentRow) payment() booking.Payment {
	p := booking.Payment{
		PaymentID: r.PaymentID, ReservationID: r.ReservationID, ConcertDate: r.ConcertDate, SeatNumber: r.SeatNumber,
		Amount: r.Amount, Balance: r.Balance, UserUUID: r.UserUUID, ConcertCode: r.ConcertCode, CreatedAt: r.CreatedAt,
	}
	if len(r.SeatNumbers) > 1 {
		for _, n := range r.SeatNumbers {
			p.SeatNumbers = append(p.SeatNumbers, int(n))
		}
	}
	return p
}

// InsufficientBalanceError says by how much a payment fell short; it matches ErrInsufficientBalance.
type InsufficientBalanceError struct {
	Balance, Price int64
}

func (e *InsufficientBalanceError) Error() string {
	return fmt.Sprintf("balance %d is below the price %d", e.Balance, e.Price)
}

// Is makes errors.Is(err, ErrInsufficientBalance) true.
func (e *InsufficientBalanceError) Is(target error) bool { return target == ErrInsufficientBalance }

// HoldSeat gives seats to an admitted session until the end of its hold window, deciding ownership with one
// conditional UPDATE: each seat must be AVAILABLE, or HELD by a hold that has lapsed. A hold of several seats
// (p.SeatNumbers) takes all of them or none. The session must be ACTIVE within its admission window, or HELD
// within its hold window when its concert lets one order hold more than one seat; the hold window starts
// with the order's first seat and later seats share it. An order holds seats of one performance only, at
// most the concert's max_seats_per_order. Calling it again with the same ReservationID returns the same
// reservation.
func (s *Store) HoldSeat(ctx context.Context, p booking.Hold) (booking.Reservation, error) {
	const mine = `
SELECT reservation_id, concert_code, concert_date, seat_number, price, COALESCE(held_until, now()) AS held_until,
       status = 'SOLD' OR held_until > now() AS live
FROM seats WHERE session_id = $1 ORDER BY seat_number`
	const markSession = `
UPDATE sessions x SET status = 'HELD',
    held_until   = CASE WHEN x.status = 'HELD' THEN x.held_until ELSE now() + $2 * interval '1 microsecond' END,
    status_since = CASE WHEN x.status = 'HELD' THEN x.status_since ELSE now() END
FROM concerts c
WHERE x.id = $1 AND c.code = x.concert_code
  AND ((x.status = 'ACTIVE' AND x.active_until > now())
       OR (x.status = 'HELD' AND x.held_until > now() AND c.max_seats_per_order > 1))
RETURNING x.held_until, c.max_tickets_per_user AS ticket_limit, c.max_seats_per_order AS seats_per_order`
	// Several seats are locked in seat order first, so two orders that want some of the same seats queue
	// one behind the other instead of deadlocking.
	const lockInOrder = `
SELECT seat_number FROM seats WHERE concert_code = $1 AND concert_date = $2 AND seat_number = ANY($3)
ORDER BY seat_number FOR UPDATE`
	const take = `
UPDATE seats SET status = 'HELD', session_id = $4, reservation_id = $5, held_until = $6
WHERE concert_code = $1 AND concert_date = $2 AND seat_number = ANY($3)
  AND (status = 'AVAILABLE' OR (status = 'HELD' AND held_until <= now()))
RETURNING reservation_id, concert_code, concert_date, seat_number, price, held_until`
	seats := p.Seats()
	var r booking.Reservation
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var prev []heldRow
		if err := tx.SelectContext(ctx, &prev, mine, p.SessionID); err != nil {
			return err
		}
		if done, ok, err := earlier(prev, p.ReservationID, len(seats)); ok || err != nil {
			r = done
			return err
		}
		var marked struct {
			HeldUntil     time.Time     `db:"held_until"`
			Limit         sql.NullInt64 `db:"ticket_limit"`
			SeatsPerOrder int           `db:"seats_per_order"`
		}
		if err := tx.GetContext(ctx, &marked, markSession, p.SessionID, micros(p.Window)); err != nil {
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			// A concurrent call for this session may have held a seat while this one waited for the
			// session's row; this statement sees its commit, so a retry still gets its reservation.
			if err := tx.SelectContext(ctx, &prev, mine, p.SessionID); err != nil {
				return err
			}
			if done, ok, err := earlier(prev, p.ReservationID, len(seats)); ok || err != nil {
				r = done
				return err
			}
			if len(prev) > 0 {
				return ErrAlreadyHolding
			}
			return ErrNotActive
		}
		// The session's row is locked now, and every hold of the session locks it first: this read sees
		// all of the order's seats, including those of a call that committed while this one waited.
		if err := tx.SelectContext(ctx, &prev, mine, p.SessionID); err != nil {
			return err
		}
		if done, ok, err := earlier(prev, p.ReservationID, len(seats)); ok || err != nil {
			r = done
			return err
		}
		switch {
		case len(prev) > 0 && marked.SeatsPerOrder <= 1:
			return ErrAlreadyHolding
		case len(prev) > 0 && !prev[0].ConcertDate.Equal(p.ConcertDate):
			return fmt.Errorf("%w: it holds seats of %s", ErrOtherDate, booking.FormatDate(prev[0].ConcertDate))
		}
		for _, n := range seats {
			if slices.ContainsFunc(prev, func(r heldRow) bool { return r.SeatNumber == n }) {
				return &SeatError{Seat: n, Err: ErrAlreadyHolding}
			}
		}
		if len(prev)+len(seats) > marked.SeatsPerOrder {
			return &LimitError{Err: ErrOrderFull, Have: len(prev), Asked: len(seats), Limit: marked.SeatsPerOrder}
		}
		if marked.Limit.Valid { // only a concert with a limit pays for the fan's lock and the count
			if err := withinTicketLimit(ctx, tx, p.SessionID, p.ConcertCode, len(seats), marked.Limit.Int64); err != nil {
				return err
			}
		}
		if len(seats) > 1 {
			if _, err := tx.ExecContext(ctx, lockInOrder, p.ConcertCode, p.ConcertDate, pq.Array(seats)); err != nil {
				return err
			}
		}
		var taken []reservationRow
		if err := tx.SelectContext(ctx, &taken, take, p.ConcertCode, p.ConcertDate, pq.Array(seats),
			p.SessionID, p.ReservationID, marked.HeldUntil); err != nil {
			return err
		}
		if len(taken) == len(seats) {
			r, _ = reservationOf(taken, p.ReservationID)
			return nil
		}
		// Not every seat could be taken: the transaction rolls back whole, and the answer names the first
		// seat that is missing.
		return whyNotTaken(ctx, tx, p, seats, taken)
	})
	if err != nil {
		return booking.Reservation{}, fmt.Errorf("hold seats %v of %s for session %s: %w", seats, p.ConcertCode, p.SessionID, err)
	}
	return r, nil
}

// heldRow is a seat a session holds or bought, and whether it is still its (sold, or held within its window).
type heldRow struct {
	reservationRow
	Live bool `db:"live"`
}

// earlier answers a hold asked for again (a retried update) with what its first attempt held. ok is false
// when nothing is held under reservationID. A hold that has lapsed since, or lost some of its seats to other
// fans after that, is no longer the fan's: ErrHoldExpired, never part of the seats or a past window.
func earlier(rows []heldRow, reservationID string, asked int) (booking.Reservation, bool, error) {
	var mine []reservationRow
	for _, row := range rows {
		if row.ReservationID != reservationID {
			continue
		}
		if !row.Live {
			return booking.Reservation{}, false, fmt.Errorf("the hold asked for again has lapsed: %w", ErrHoldExpired)
		}
		mine = append(mine, row.reservationRow)
	}
	if len(mine) > 0 && len(mine) != asked {
		return booking.Reservation{}, false, fmt.Errorf("the hold asked for again lost %d of its seats: %w", asked-len(mine), ErrHoldExpired)
	}
	r, ok := reservationOf(mine, reservationID)
	return r, ok, nil
}

// reservationOf is the reservation made of the seats of rows held under reservationID, if there are any.
func reservationOf(rows []reservationRow, reservationID string) (booking.Reservation, bool) {
	var r booking.Reservation
	for _, row := range rows {
		if row.ReservationID != reservationID {
			continue
		}
		if r.ReservationID == "" {
			r = row.reservation()
			r.Price = 0
		}
		r.SeatNumber = min(r.SeatNumber, row.SeatNumber)
		r.SeatNumbers = append(r.SeatNumbers, row.SeatNumber)
		r.Price += row.Price
	}
	if len(r.SeatNumbers) == 1 {
		r.SeatNumbers = nil // a one-seat reservation is recorded as before there were several
	}
	slices.Sort(r.SeatNumbers)
	return r, r.ReservationID != ""
}

// whyNotTaken names the first seat of a hold that could not be taken: the date or the seat does not exist,
// or it is held or sold.
func whyNotTaken(ctx context.Context, tx *sqlx.Tx, p booking.Hold, seats []int, taken []reservationRow) error {
	const dateExists = `SELECT EXISTS (SELECT 1 FROM concert_dates WHERE concert_code = $1 AND concert_date = $2)`
	const existing = `SELECT seat_number FROM seats WHERE concert_code = $1 AND concert_date = $2 AND seat_number = ANY($3)`
	var exists bool
	if err := tx.GetContext(ctx, &exists, dateExists, p.ConcertCode, p.ConcertDate); err != nil {
		return err
	}
	if !exists {
		return ErrDateNotFound
	}
	var have []int
	if err := tx.SelectContext(ctx, &have, existing, p.ConcertCode, p.ConcertDate, pq.Array(seats)); err != nil {
		return err
	}
	for _, n := range seats {
		if !slices.Contains(have, n) {
			return seatError(n, len(seats), ErrSeatNotFound)
		}
	}
	for _, n := range seats {
		if !slices.ContainsFunc(taken, func(t reservationRow) bool { return t.SeatNumber == n }) {
			return seatError(n, len(seats), ErrSeatTaken)
		}
	}
	return ErrSeatTaken
}

// LimitError says by how much a hold would pass a limit: the seats of the order (ErrOrderFull) or the
// tickets of the fan (ErrTicketLimit). It matches its Err.
type LimitError struct {
	Err                error
	Have, Asked, Limit int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%v: has %d, asks for %d more, limit %d", e.Err, e.Have, e.Asked, e.Limit)
}
func (e *LimitError) Unwrap() error { return e.Err }

// SeatError names the seat of a hold that failed: missing or taken, of several asked for (ErrSeatNotFound,
// ErrSeatTaken), or in the order already (ErrAlreadyHolding).
type SeatError struct {
	Seat int
	Err  error
}

func (e *SeatError) Error() string { return fmt.Sprintf("seat %d: %v", e.Seat, e.Err) }
func (e *SeatError) Unwrap() error { return e.Err }

// seatError is err, naming the seat when the hold asked for several.
func seatError(seat, asked int, err error) error {
	if asked == 1 {
		return err
	}
	return &SeatError{Seat: seat, Err: err}
}

// withinTicketLimit returns ErrTicketLimit when the session's fan, who holds or has bought some tickets of
// the concert already, would with n more have more than limit. It locks the fan's row first, so two holds of
// one fan (one per session, say) are counted one after the other and cannot both pass.
func withinTicketLimit(ctx context.Context, tx *sqlx.Tx, sessionID, concertCode string, n int, limit int64) error {
	const q = `
WITH fan AS (
    SELECT u.uuid FROM users u JOIN sessions x ON x.user_uuid = u.uuid WHERE x.id = $1 FOR UPDATE OF u
)
SELECT (SELECT count(*) FROM payments p JOIN payment_seats ps ON ps.payment_id = p.id
        WHERE p.user_uuid = fan.uuid AND p.concert_code = $2)
     + (SELECT count(*) FROM seats st JOIN sessions x ON x.id = st.session_id
        WHERE x.user_uuid = fan.uuid AND st.concert_code = $2 AND st.status = 'HELD' AND st.held_until > now())
FROM fan`
	var tickets int64
	if err := tx.GetContext(ctx, &tickets, q, sessionID, concertCode); err != nil {
		return err
	}
	if tickets+int64(n) > limit {
		return &LimitError{Err: ErrTicketLimit, Have: int(tickets), Asked: n, Limit: int(limit)}
	}
	return nil
}

// Pay sells the seats a session holds: it debits their total from the balance, records one payment (with
// every seat it sold) and its ledger row, marks the seats SOLD and the session PAID, all in one transaction.
// A lapsed hold is never sold (ErrHoldExpired). A session that has paid already gets its payment back, so a
// retried call charges nothing twice.
func (s *Store) Pay(ctx context.Context, sessionID string) (booking.Payment, error) {
	const held = `
SELECT s.reservation_id, s.concert_code, s.concert_date, s.seat_number, s.price, s.held_until > now() AS live, x.user_uuid
FROM seats s JOIN sessions x ON x.id = s.session_id
WHERE s.session_id = $1 AND s.status = 'HELD'
ORDER BY s.seat_number
FOR UPDATE OF s`
	const debit = `UPDATE users SET balance = balance - $2 WHERE uuid = $1 AND balance >= $2 RETURNING balance`
	const balance = `SELECT balance FROM users WHERE uuid = $1`
	const record = `
INSERT INTO payments (id, session_id, reservation_id, user_uuid, concert_code, concert_date, seat_number, amount)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING created_at`
	const recordSeats = `
INSERT INTO payment_seats (payment_id, concert_code, concert_date, seat_number, price)
SELECT $1, concert_code, concert_date, seat_number, price FROM seats WHERE session_id = $2 AND status = 'HELD'`
	const ledger = `INSERT INTO ledger (user_uuid, delta, kind, payment_id) VALUES ($1, $2, 'PAYMENT', $3)`
	const sell = `UPDATE seats SET status = 'SOLD', held_until = NULL WHERE session_id = $1`
	const paid = `UPDATE sessions SET status = 'PAID', status_since = now() WHERE id = $1`
	var p paymentRow
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		switch err := tx.GetContext(ctx, &p, paymentOfSession, sessionID); {
		case err == nil:
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		var holds []struct {
			reservationRow
			Live     bool   `db:"live"`
			UserUUID string `db:"user_uuid"`
			// held_until is selected as live; the embedded field stays zero.
		}
		if err := tx.SelectContext(ctx, &holds, held, sessionID); err != nil {
			return err
		}
		if len(holds) == 0 {
			// A concurrent call may have sold the seats while this one waited for its lock; this statement
			// sees that commit, so a retry gets the payment instead of an error.
			switch err := tx.GetContext(ctx, &p, paymentOfSession, sessionID); {
			case err == nil:
				return nil
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
			// A session still HELD without a seat had its hold lapse and another session take the seat.
			// A database failure here is not an answer: it is returned (and retried), not taken for "no seat".
			var status string
			switch err := tx.GetContext(ctx, &status, `SELECT status FROM sessions WHERE id = $1`, sessionID); {
			case err == nil && status == "HELD":
				return ErrHoldExpired
			case err != nil && !errors.Is(err, sql.ErrNoRows):
				return err
			}
			return ErrNoSeatHeld
		}
		// The seats of an order share the session's hold window: one lapsed means all have.
		first := holds[0]
		p = paymentRow{
			PaymentID: uuid.NewString(), ReservationID: first.ReservationID, UserUUID: first.UserUUID,
			ConcertCode: first.ConcertCode, ConcertDate: first.ConcertDate, SeatNumber: first.SeatNumber,
		}
		for _, h := range holds {
			if !h.Live {
				return ErrHoldExpired
			}
			p.Amount += h.Price
		}
		if err := tx.GetContext(ctx, &p.Balance, debit, p.UserUUID, p.Amount); err != nil {
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			var have int64
			if err := tx.GetContext(ctx, &have, balance, p.UserUUID); err != nil {
				return err
			}
			return &InsufficientBalanceError{Balance: have, Price: p.Amount}
		}
		if err := tx.GetContext(ctx, &p.CreatedAt, record, p.PaymentID, sessionID, p.ReservationID, p.UserUUID,
			p.ConcertCode, p.ConcertDate, p.SeatNumber, p.Amount); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, recordSeats, p.PaymentID, sessionID); err != nil {
			return err
		}
		if p.Amount > 0 {
			if _, err := tx.ExecContext(ctx, ledger, p.UserUUID, -p.Amount, p.PaymentID); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, sell, sessionID); err != nil {
			return err
		}
		if len(holds) > 1 {
			for _, h := range holds {
				p.SeatNumbers = append(p.SeatNumbers, int64(h.SeatNumber))
			}
		}
		_, err := tx.ExecContext(ctx, paid, sessionID)
		return err
	})
	if err != nil {
		return booking.Payment{}, fmt.Errorf("pay for session %s: %w", sessionID, err)
	}
	return p.payment(), nil
}

// paymentOfSession reads the payment of a session with the user's balance now.
const paymentOfSession = `
SELECT p.id, p.reservation_id, p.user_uuid, p.concert_code, p.concert_date, p.seat_number, p.amount, p.created_at, u.balance,
       (SELECT array_agg(ps.seat_number ORDER BY ps.seat_number) FROM payment_seats ps WHERE ps.payment_id = p.id) AS seat_numbers
FROM payments p JOIN users u ON u.uuid = p.user_uuid WHERE p.session_id = $1`

// PaymentOfSession returns the payment a session made; ErrNotFound if it made none. A client whose payment
// answer was lost gets it again from here.
func (s *Store) PaymentOfSession(ctx context.Context, sessionID string) (booking.Payment, error) {
	var p paymentRow
	if err := s.db.GetContext(ctx, &p, paymentOfSession, sessionID); err != nil {
		return booking.Payment{}, noRows(err, "payment of session "+sessionID)
	}
	return p.payment(), nil
}

// Release ends a session that did not pay, with status EXPIRED or CANCELLED, and frees the seat it holds.
// A session that has ended already is left as it is, so a retried or late release changes nothing; a seat
// another session has taken over meanwhile is not touched.
func (s *Store) Release(ctx context.Context, sessionID string, status booking.Status) error {
	const free = `
UPDATE seats SET status = 'AVAILABLE', session_id = NULL, reservation_id = NULL, held_until = NULL
WHERE session_id = $1 AND status = 'HELD'`
	const end = `
UPDATE sessions SET status = $2, status_since = now()
WHERE id = $1 AND status IN ('WAITING', 'ACTIVE', 'HELD')`
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, free, sessionID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, end, sessionID, string(status)); err != nil {
			return err
		}
		// A HoldSeat of this session may have been committing while the first free ran: it held the
		// session row, which end waited for. Free again, now that its seat is visible.
		_, err := tx.ExecContext(ctx, free, sessionID)
		return err
	})
	if err != nil {
		return fmt.Errorf("release session %s: %w", sessionID, err)
	}
	return nil
}

// SeatTakenByOther returns the lowest of seats that is sold, or held within its window by another session
// (a hold asked for it now would fail), or 0 when none is. It is a read, for answering a lost race without
// asking the session's workflow; HoldSeat's conditional UPDATE still decides every hold. A seat that does
// not exist is not taken.
func (s *Store) SeatTakenByOther(ctx context.Context, code string, date time.Time, seats []int, sessionID string) (int, error) {
	const q = `
SELECT COALESCE(min(seat_number), 0) FROM seats
WHERE concert_code = $1 AND concert_date = $2 AND seat_number = ANY($3)
  AND (status = 'SOLD' OR (status = 'HELD' AND held_until > now() AND session_id <> $4))`
	stmt, err := s.prepared(ctx, q)
	if err != nil {
		return 0, err
	}
	var taken int
	if err := stmt.GetContext(ctx, &taken, code, date, pq.Array(seats), sessionID); err != nil {
		return 0, fmt.Errorf("seats %v of %s: %w", seats, code, err)
	}
	return taken, nil
}
