package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// Concert is an event on sale, with its waiting-room settings.
type Concert struct {
	Code            string    `db:"code"`
	Title           string    `db:"title"`
	MaxActive       int       `db:"max_active"`
	AdmissionPaused bool      `db:"admission_paused"`
	CreatedAt       time.Time `db:"created_at"`
	// ClosesAt is when the sale closes; nil for never.
	ClosesAt *time.Time `db:"closes_at"`
}

// NewConcert describes a concert to put on sale. Seats of each date are numbered 1..Seats.
type NewConcert struct {
	Code      string
	Title     string
	MaxActive int
	// MaxTicketsPerUser limits the seats one fan holds and buys for the concert; 0 is no limit.
	MaxTicketsPerUser int
	// MaxSeatsPerOrder is how many seats of one performance one session may hold and pay for at once; 0 is 1.
	MaxSeatsPerOrder int
	// OpensAt is when the sale opens (see migration 0008); zero opens it at once. ClosesAt is when it closes
	// (migration 0010), after OpensAt; zero never closes it.
	OpensAt  time.Time
	ClosesAt time.Time
	Dates    []NewConcertDate
}

// NewConcertDate is one performance of a new concert.
type NewConcertDate struct {
	Date  time.Time
	Seats int
	Price int64
}

// DateAvailability is one performance with the number of seats a user could hold now.
type DateAvailability struct {
	Date           time.Time `db:"concert_date"`
	AvailableSeats int       `db:"available_seats"`
}

// Seat is one seat of the seat map as a user sees it: a lapsed hold shows as AVAILABLE.
type Seat struct {
	Number int    `db:"seat_number"`
	Price  int64  `db:"price"`
	Status string `db:"status"`
}

// CreateConcert stores a concert with its dates and seats in one transaction; ErrDuplicate if the code or a
// date is taken.
func (s *Store) CreateConcert(ctx context.Context, c NewConcert) error {
	const insConcert = `
INSERT INTO concerts (code, title, max_active, max_tickets_per_user, opens_at, max_seats_per_order, closes_at)
VALUES ($1, $2, $3, NULLIF($4, 0), $5, GREATEST($6, 1), $7)`
	const insDate = `INSERT INTO concert_dates (concert_code, concert_date) VALUES ($1, $2)`
	const insSeats = `
INSERT INTO seats (concert_code, concert_date, seat_number, price)
SELECT $1, $2, n, $4 FROM generate_series(1, $3::int) AS n`
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, insConcert, c.Code, c.Title, c.MaxActive, c.MaxTicketsPerUser, nullTime(c.OpensAt),
			c.MaxSeatsPerOrder, nullTime(c.ClosesAt)); err != nil {
			return err
		}
		for _, d := range c.Dates {
			if _, err := tx.ExecContext(ctx, insDate, c.Code, d.Date); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, insSeats, c.Code, d.Date, d.Seats, d.Price); err != nil {
				return err
			}
		}
		return nil
	})
	if isUniqueViolation(err, "") {
		return fmt.Errorf("concert %s: %w", c.Code, ErrDuplicate)
	}
	if isCheckViolation(err, closesAfterOpening) {
		return fmt.Errorf("concert %s: %w", c.Code, ErrClosesBeforeOpening)
	}
	if err != nil {
		return fmt.Errorf("create concert %s: %w", c.Code, err)
	}
	return nil
}

// GetConcert returns a concert; ErrNotFound if the code is unknown.
func (s *Store) GetConcert(ctx context.Context, code string) (Concert, error) {
	const q = `SELECT code, title, max_active, admission_paused, created_at, closes_at FROM concerts WHERE code = $1`
	var c Concert
	if err := s.db.GetContext(ctx, &c, q, code); err != nil {
		return Concert{}, noRows(err, "concert "+code)
	}
	return c, nil
}

// ConcertDates lists a concert's performances in date order with the seats a user could hold now.
func (s *Store) ConcertDates(ctx context.Context, code string) ([]DateAvailability, error) {
	const q = `
SELECT d.concert_date,
       count(*) FILTER (WHERE s.status = 'AVAILABLE' OR (s.status = 'HELD' AND s.held_until <= now())) AS available_seats
FROM concert_dates d
JOIN seats s ON s.concert_code = d.concert_code AND s.concert_date = d.concert_date
WHERE d.concert_code = $1
GROUP BY d.concert_date
ORDER BY d.concert_date`
	dates := []DateAvailability{}
	if err := s.db.SelectContext(ctx, &dates, q, code); err != nil {
		return nil, fmt.Errorf("dates of %s: %w", code, err)
	}
	return dates, nil
}

// Seats returns the seat map of one performance in seat order; ErrNotFound if the concert has no such date.
func (s *Store) Seats(ctx context.Context, code string, date time.Time) ([]Seat, error) {
	const q = `
SELECT seat_number, price,
       CASE WHEN status = 'HELD' AND held_until <= now() THEN 'AVAILABLE' ELSE status END AS status
FROM seats
WHERE concert_code = $1 AND concert_date = $2
ORDER BY seat_number`
	seats := []Seat{}
	if err := s.db.SelectContext(ctx, &seats, q, code, date); err != nil {
		return nil, fmt.Errorf("seats of %s: %w", code, err)
	}
	if len(seats) == 0 {
		return nil, fmt.Errorf("concert %s on %s: %w", code, date.Format(time.DateTime), ErrNotFound)
	}
	return seats, nil
}

// SetAdmission changes a concert's waiting-room settings; a nil field is left as it is.
func (s *Store) SetAdmission(ctx context.Context, code string, paused *bool, maxActive *int) (Concert, error) {
	const q = `
UPDATE concerts SET admission_paused = COALESCE($2, admission_paused), max_active = COALESCE($3, max_active)
WHERE code = $1
RETURNING code, title, max_active, admission_paused, created_at, closes_at`
	var c Concert
	if err := s.db.GetContext(ctx, &c, q, code, paused, maxActive); err != nil {
		return Concert{}, noRows(err, "concert "+code)
	}
	return c, nil
}

// PendingOpening is when the concert's sale opens, while its pre-queue has not been drawn yet (the waiting
// room draws it at its first step after the opening); zero once drawn, or for a concert without an opening
// time. ErrNotFound for an unknown concert.
func (s *Store) PendingOpening(ctx context.Context, code string) (time.Time, error) {
	var at sql.NullTime
	const q = `SELECT CASE WHEN drawn_at IS NULL THEN opens_at END FROM concerts WHERE code = $1`
	if err := s.db.GetContext(ctx, &at, q, code); err != nil {
		return time.Time{}, noRows(err, "concert "+code)
	}
	return at.Time, nil
}

// nullTime is t for a nullable column: NULL when zero.
func nullTime(t time.Time) sql.NullTime { return sql.NullTime{Time: t, Valid: !t.IsZero()} }

// closesAfterOpening is the constraint that a concert's sale closes after it opens (migration 0010).
const closesAfterOpening = "concerts_closes_after_opening"

// ErrClosesBeforeOpening means a closing time was not after the opening time.
var ErrClosesBeforeOpening = errors.New("the sale must close after it opens")

// ErrSaleClosed means the concert's sale has closed: its closing can no longer move.
var ErrSaleClosed = errors.New("the sale has closed")

// ErrSaleOpened means the concert's sale has opened already (or, without an opening time, has sessions): its
// opening can no longer move.
var ErrSaleOpened = errors.New("the sale has opened")

// SetSaleTimes moves the opening and the closing of a concert's sale, either or both, in one change, so
// they never cross on the way. The opening moves while the sale has not opened: its opening is still
// ahead, or it has none and nobody has joined yet (ErrSaleOpened otherwise). The closing moves while the
// sale has not closed (ErrSaleClosed otherwise); a time already past closes it now, so the admissions
// before stay within the sale. ErrClosesBeforeOpening when the closing would not be after the opening,
// ErrNotFound for an unknown concert. The waiting room must be woken, to act at the new times.
func (s *Store) SetSaleTimes(ctx context.Context, code string, opens, closes *time.Time) error {
	const lock = `
SELECT drawn_at IS NULL AND COALESCE(opens_at > now(), NOT EXISTS (SELECT 1 FROM sessions x WHERE x.concert_code = c.code)) AS unopened,
       closes_at IS NULL OR closes_at > now() AS unclosed
FROM concerts c WHERE code = $1 FOR UPDATE`
	const set = `
UPDATE concerts SET opens_at = CASE WHEN $2 THEN $3 ELSE opens_at END,
                    closes_at = CASE WHEN $4 THEN GREATEST($5, now()) ELSE closes_at END
WHERE code = $1`
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var st struct {
			Unopened bool `db:"unopened"`
			Unclosed bool `db:"unclosed"`
		}
		if err := tx.GetContext(ctx, &st, lock, code); err != nil {
			return noRows(err, "concert "+code)
		}
		switch {
		case opens != nil && !st.Unopened:
			return ErrSaleOpened
		case closes != nil && !st.Unclosed:
			return ErrSaleClosed
		}
		var o, c time.Time
		if opens != nil {
			o = *opens
		}
		if closes != nil {
			c = *closes
		}
		_, err := tx.ExecContext(ctx, set, code, opens != nil, nullTime(o), closes != nil, nullTime(c))
		if isCheckViolation(err, closesAfterOpening) {
			return ErrClosesBeforeOpening
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("move the sale times of %s: %w", code, err)
	}
	return nil
}
