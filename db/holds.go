package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

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

func (r reservationRow) reservation() booking.Reservation { return booking.Reservation(r) }

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
}

func (r paymentRow) payment() booking.Payment {
	return booking.Payment{
		PaymentID: r.PaymentID, ReservationID: r.ReservationID, ConcertDate: r.ConcertDate, SeatNumber: r.SeatNumber,
		Amount: r.Amount, Balance: r.Balance, UserUUID: r.UserUUID, ConcertCode: r.ConcertCode, CreatedAt: r.CreatedAt,
	}
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

// HoldSeat gives a seat to an admitted session until now + Window, deciding ownership with one conditional
// UPDATE: the seat must be AVAILABLE, or HELD by a hold that has lapsed. The session must be ACTIVE within
// its admission window and may own only one seat. Calling it again with the same ReservationID returns the
// same reservation.
func (s *Store) HoldSeat(ctx context.Context, p booking.Hold) (booking.Reservation, error) {
	const mine = `
SELECT reservation_id, concert_code, concert_date, seat_number, price, COALESCE(held_until, now()) AS held_until
FROM seats WHERE session_id = $1`
	const markSession = `
UPDATE sessions SET status = 'HELD', held_until = now() + $2 * interval '1 microsecond', status_since = now()
WHERE id = $1 AND status = 'ACTIVE' AND active_until > now()
RETURNING held_until, (SELECT max_tickets_per_user FROM concerts WHERE code = sessions.concert_code) AS ticket_limit`
	const take = `
UPDATE seats SET status = 'HELD', session_id = $4, reservation_id = $5, held_until = $6
WHERE concert_code = $1 AND concert_date = $2 AND seat_number = $3
  AND (status = 'AVAILABLE' OR (status = 'HELD' AND held_until <= now()))
RETURNING reservation_id, concert_code, concert_date, seat_number, price, held_until`
	const dateExists = `SELECT EXISTS (SELECT 1 FROM concert_dates WHERE concert_code = $1 AND concert_date = $2)`
	const seatExists = `SELECT EXISTS (SELECT 1 FROM seats WHERE concert_code = $1 AND concert_date = $2 AND seat_number = $3)`
	var r reservationRow
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var prev reservationRow
		switch err := tx.GetContext(ctx, &prev, mine, p.SessionID); {
		case err == nil && prev.ReservationID == p.ReservationID:
			r = prev
			return nil
		case err == nil:
			return ErrAlreadyHolding
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		var marked struct {
			HeldUntil time.Time     `db:"held_until"`
			Limit     sql.NullInt64 `db:"ticket_limit"`
		}
		if err := tx.GetContext(ctx, &marked, markSession, p.SessionID, micros(p.Window)); err != nil {
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			// A concurrent call for this session may have held a seat while this one waited for the
			// session's row; this statement sees its commit, so a retry still gets its reservation.
			switch err := tx.GetContext(ctx, &prev, mine, p.SessionID); {
			case err == nil && prev.ReservationID == p.ReservationID:
				r = prev
				return nil
			case err == nil:
				return ErrAlreadyHolding
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
			return ErrNotActive
		}
		if marked.Limit.Valid { // only a concert with a limit pays for the fan's lock and the count
			if err := withinTicketLimit(ctx, tx, p.SessionID, p.ConcertCode, marked.Limit.Int64); err != nil {
				return err
			}
		}
		err := tx.GetContext(ctx, &r, take, p.ConcertCode, p.ConcertDate, p.SeatNumber, p.SessionID, p.ReservationID, marked.HeldUntil)
		if err == nil {
			return nil
		}
		if isUniqueViolation(err, "seats_one_per_session") {
			return ErrAlreadyHolding
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var exists bool
		if err := tx.GetContext(ctx, &exists, dateExists, p.ConcertCode, p.ConcertDate); err != nil {
			return err
		}
		if !exists {
			return ErrDateNotFound
		}
		if err := tx.GetContext(ctx, &exists, seatExists, p.ConcertCode, p.ConcertDate, p.SeatNumber); err != nil {
			return err
		}
		if !exists {
			return ErrSeatNotFound
		}
		return ErrSeatTaken
	})
	if err != nil {
		return booking.Reservation{}, fmt.Errorf("hold seat %d of %s for session %s: %w", p.SeatNumber, p.ConcertCode, p.SessionID, err)
	}
	return r.reservation(), nil
}

// withinTicketLimit returns ErrTicketLimit when the session's fan holds or has bought limit tickets of the
// concert already. It locks the fan's row first, so two holds of one fan (one per session, say) are counted
// one after the other and cannot both pass.
func withinTicketLimit(ctx context.Context, tx *sqlx.Tx, sessionID, concertCode string, limit int64) error {
	const q = `
WITH fan AS (
    SELECT u.uuid FROM users u JOIN sessions x ON x.user_uuid = u.uuid WHERE x.id = $1 FOR UPDATE OF u
)
SELECT (SELECT count(*) FROM payments p WHERE p.user_uuid = fan.uuid AND p.concert_code = $2)
     + (SELECT count(*) FROM seats st JOIN sessions x ON x.id = st.session_id
        WHERE x.user_uuid = fan.uuid AND st.concert_code = $2 AND st.status = 'HELD' AND st.held_until > now())
FROM fan`
	var tickets int64
	if err := tx.GetContext(ctx, &tickets, q, sessionID, concertCode); err != nil {
		return err
	}
	if tickets >= limit {
		return ErrTicketLimit
	}
	return nil
}

// Pay sells the seat a session holds: it debits the balance, records the payment and its ledger row, marks
// the seat SOLD and the session PAID, all in one transaction. A lapsed hold is never sold (ErrHoldExpired). A
// session that has paid already gets its payment back, so a retried call charges nothing twice.
func (s *Store) Pay(ctx context.Context, sessionID string) (booking.Payment, error) {
	const held = `
SELECT s.reservation_id, s.concert_code, s.concert_date, s.seat_number, s.price, s.held_until > now() AS live, x.user_uuid
FROM seats s JOIN sessions x ON x.id = s.session_id
WHERE s.session_id = $1 AND s.status = 'HELD'
FOR UPDATE OF s`
	const debit = `UPDATE users SET balance = balance - $2 WHERE uuid = $1 AND balance >= $2 RETURNING balance`
	const balance = `SELECT balance FROM users WHERE uuid = $1`
	const record = `
INSERT INTO payments (id, session_id, reservation_id, user_uuid, concert_code, concert_date, seat_number, amount)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING created_at`
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
		var h struct {
			reservationRow
			Live     bool   `db:"live"`
			UserUUID string `db:"user_uuid"`
			// held_until is selected as live; the embedded field stays zero.
		}
		if err := tx.GetContext(ctx, &h, held, sessionID); err != nil {
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			// A concurrent call may have sold the seat while this one waited for its lock; this statement
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
		if !h.Live {
			return ErrHoldExpired
		}
		p = paymentRow{
			PaymentID: uuid.NewString(), ReservationID: h.ReservationID, UserUUID: h.UserUUID,
			ConcertCode: h.ConcertCode, ConcertDate: h.ConcertDate, SeatNumber: h.SeatNumber, Amount: h.Price,
		}
		if err := tx.GetContext(ctx, &p.Balance, debit, h.UserUUID, h.Price); err != nil {
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			var have int64
			if err := tx.GetContext(ctx, &have, balance, h.UserUUID); err != nil {
				return err
			}
			return &InsufficientBalanceError{Balance: have, Price: h.Price}
		}
		if err := tx.GetContext(ctx, &p.CreatedAt, record, p.PaymentID, sessionID, p.ReservationID, p.UserUUID,
			p.ConcertCode, p.ConcertDate, p.SeatNumber, p.Amount); err != nil {
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
SELECT p.id, p.reservation_id, p.user_uuid, p.concert_code, p.concert_date, p.seat_number, p.amount, p.created_at, u.balance
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

// SeatTakenByOther reports whether the seat is sold, or held within its window by another session: a hold
// asked for it now would fail. It is a read, for answering a lost race without asking the session's workflow;
// HoldSeat's conditional UPDATE still decides every hold. A seat that does not exist is not taken.
func (s *Store) SeatTakenByOther(ctx context.Context, code string, date time.Time, seat int, sessionID string) (bool, error) {
	const q = `
SELECT EXISTS (SELECT 1 FROM seats
               WHERE concert_code = $1 AND concert_date = $2 AND seat_number = $3
                 AND (status = 'SOLD' OR (status = 'HELD' AND held_until > now() AND session_id <> $4)))`
	stmt, err := s.prepared(ctx, q)
	if err != nil {
		return false, err
	}
	var taken bool
	if err := stmt.GetContext(ctx, &taken, code, date, seat, sessionID); err != nil {
		return false, fmt.Errorf("seat %d of %s: %w", seat, code, err)
	}
	return taken, nil
}
