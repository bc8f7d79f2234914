package db

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/lib/pq"

	"github.com/ticketing/concert/booking"
)

// ConcertsOnSale lists the concerts that have a seat left unsold, by code, each with its performances and the
// seats free now. Sold-out concerts are left out.
func (s *Store) ConcertsOnSale(ctx context.Context) ([]booking.OnSale, error) {
	const q = `
SELECT c.code, c.title, c.opens_at, c.closes_at, c.max_seats_per_order, c.max_tickets_per_user, d.concert_date,
       count(*) FILTER (WHERE st.status = 'AVAILABLE' OR (st.status = 'HELD' AND st.held_until <= now())) AS available,
       count(*) FILTER (WHERE st.status <> 'SOLD') AS unsold
FROM concerts c
JOIN concert_dates d ON d.concert_code = c.code
JOIN seats st ON st.concert_code = d.concert_code AND st.concert_date = d.concert_date
WHERE c.closes_at IS NULL OR c.closes_at > now()
GROUP BY c.code, c.title, c.opens_at, c.closes_at, c.max_seats_per_order, c.max_tickets_per_user, d.concert_date
ORDER BY c.code, d.concert_date`
	var rows []struct {
		Code      string        `db:"code"`
		Title     string        `db:"title"`
		OpensAt   sql.NullTime  `db:"opens_at"`
		ClosesAt  sql.NullTime  `db:"closes_at"`
		PerOrder  int           `db:"max_seats_per_order"`
		PerFan    sql.NullInt64 `db:"max_tickets_per_user"`
		Date      time.Time     `db:"concert_date"`
		Available int           `db:"available"`
		Unsold    int           `db:"unsold"`
	}
	if err := s.db.SelectContext(ctx, &rows, q); err != nil {
		return nil, fmt.Errorf("concerts on sale: %w", err)
	}
	out := []booking.OnSale{}
	unsold := 0
	for i, r := range rows {
		if i == 0 || rows[i-1].Code != r.Code {
			out = append(out, booking.OnSale{Code: r.Code, Title: r.Title, OpensAt: r.OpensAt.Time, ClosesAt: r.ClosesAt.Time,
				MaxSeatsPerOrder: r.PerOrder, MaxTicketsPerUser: int(r.PerFan.Int64)})
			unsold = 0
		}
		c := &out[len(out)-1]
		c.Dates = append(c.Dates, booking.DateSeats{Date: r.Date, Available: r.Available, Unsold: r.Unsold})
		unsold += r.Unsold
		if last := i == len(rows)-1 || rows[i+1].Code != r.Code; last && unsold == 0 {
			out = out[:len(out)-1] // sold out
		}
	}
	return out, nil
}

// FanBookings lists a fan's bookings, newest first: every paid session with its seat and payment, and the
// live one (waiting, admitted, holding) if any. before, when positive, is the Seq below which to list (the
// next page); at most limit are returned.
func (s *Store) FanBookings(ctx context.Context, userUUID string, before int64, limit int) ([]booking.FanBooking, error) {
	const q = `
SELECT x.id, x.concert_code, x.status, x.seq, x.status_since,
       COALESCE(p.concert_date, st.concert_date) AS concert_date,
       COALESCE(ps.seats, st.seats) AS seat_numbers,
       st.held_until, p.id AS payment_id, p.amount, p.created_at AS paid_at
FROM sessions x
LEFT JOIN payments p ON p.session_id = x.id
LEFT JOIN LATERAL (SELECT array_agg(seat_number ORDER BY seat_number) AS seats
                   FROM payment_seats WHERE payment_id = p.id) ps ON p.id IS NOT NULL
LEFT JOIN LATERAL (SELECT min(concert_date) AS concert_date, min(held_until) AS held_until,
                          array_agg(seat_number ORDER BY seat_number) AS seats
                   FROM seats WHERE session_id = x.id AND status = 'HELD') st ON x.status = 'HELD'
WHERE x.user_uuid = $1 AND x.status IN ('PAID', 'WAITING', 'ACTIVE', 'HELD') AND ($2 <= 0 OR x.seq < $2)
ORDER BY x.seq DESC
LIMIT $3`
	var rows []struct {
		ID          string         `db:"id"`
		ConcertCode string         `db:"concert_code"`
		Status      string         `db:"status"`
		Seq         int64          `db:"seq"`
		Since       time.Time      `db:"status_since"`
		ConcertDate sql.NullTime   `db:"concert_date"`
		SeatNumbers pq.Int64Array  `db:"seat_numbers"`
		HeldUntil   sql.NullTime   `db:"held_until"`
		PaymentID   sql.NullString `db:"payment_id"`
		Amount      sql.NullInt64  `db:"amount"`
		PaidAt      sql.NullTime   `db:"paid_at"`
	}
	if err := s.db.SelectContext(ctx, &rows, q, userUUID, before, limit); err != nil {
		return nil, fmt.Errorf("bookings of %s: %w", userUUID, err)
	}
	out := make([]booking.FanBooking, len(rows))
	for i, r := range rows {
		out[i] = booking.FanBooking{
			SessionID: r.ID, ConcertCode: r.ConcertCode, Status: booking.Status(r.Status), Seq: r.Seq, Since: r.Since,
			ConcertDate: r.ConcertDate.Time, HeldUntil: r.HeldUntil.Time,
			PaymentID: r.PaymentID.String, Amount: r.Amount.Int64, PaidAt: r.PaidAt.Time,
		}
		for _, n := range r.SeatNumbers {
			out[i].SeatNumbers = append(out[i].SeatNumbers, int(n))
		}
		if len(r.SeatNumbers) > 0 {
			out[i].SeatNumber = out[i].SeatNumbers[0]
		}
	}
	return out, nil
}
