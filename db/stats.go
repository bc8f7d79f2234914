package db

import (
	"context"
	"fmt"
)

// ConcertStats is one concert's figures at one moment, as operators watch them during an on-sale: where its
// sessions stand, what is left to sell and how many sessions the waiting room has let in so far.
type ConcertStats struct {
	ConcertCode string
	Sessions    SessionCounts
	Seats       SeatCounts
	// Admitted counts the sessions ever admitted (admitted_at set). Rows are never deleted and admitted_at is
	// never cleared, so the figure only grows and its rate is the admission rate.
	Admitted int64
}

// SessionCounts counts a concert's sessions by their stored status. A session whose window has lapsed
// stays ACTIVE or HELD here until its workflow ends it, so a count that keeps growing there is a sign that
// workers are not making progress.
type SessionCounts struct {
	Waiting   int64
	Active    int64
	Held      int64
	Paid      int64
	Expired   int64
	Cancelled int64
	SoldOut   int64
	Closed    int64
}

// ByStatus returns the counts keyed by status as the sessions table spells it, every status present, so a
// caller can report zeros instead of leaving gaps.
func (c SessionCounts) ByStatus() map[string]int64 {
	return map[string]int64{
		"WAITING": c.Waiting, "ACTIVE": c.Active, "HELD": c.Held, "PAID": c.Paid,
		"EXPIRED": c.Expired, "CANCELLED": c.Cancelled, "SOLD_OUT": c.SoldOut, "CLOSED": c.Closed,
	}
}

// SeatCounts counts a concert's seats (over all its dates) as a user would see them now: a hold whose
// held_until has passed counts as available, because HoldSeat lets another session take it.
type SeatCounts struct {
	Available int64
	Held      int64
	Sold      int64
}

// ByStatus returns the counts keyed by status as the seats table spells it, every status present.
func (c SeatCounts) ByStatus() map[string]int64 {
	return map[string]int64{"AVAILABLE": c.Available, "HELD": c.Held, "SOLD": c.Sold}
}

// concertStatsRow is one row of the ConcertStats query.
type concertStatsRow struct {
	ConcertCode    string `db:"concert_code"`
	Waiting        int64  `db:"waiting"`
	Active         int64  `db:"active"`
	Held           int64  `db:"held"`
	Paid           int64  `db:"paid"`
	Expired        int64  `db:"expired"`
	Cancelled      int64  `db:"cancelled"`
	SoldOut        int64  `db:"sold_out"`
	Closed         int64  `db:"closed"`
	Admitted       int64  `db:"admitted"`
	SeatsAvailable int64  `db:"seats_available"`
	SeatsHeld      int64  `db:"seats_held"`
	SeatsSold      int64  `db:"seats_sold"`
}

// concertStatsQuery aggregates sessions and seats once each, per concert, and joins the two to the concerts
// table, so a concert with no sessions yet still appears with zeros. It reads every session and seat row:
// one scan per table whatever the number of concerts, which the caller bounds with a context deadline.
const concertStatsQuery = `
SELECT c.code AS concert_code,
       COALESCE(x.waiting, 0)   AS waiting,
       COALESCE(x.active, 0)    AS active,
       COALESCE(x.held, 0)      AS held,
       COALESCE(x.paid, 0)      AS paid,
       COALESCE(x.expired, 0)   AS expired,
       COALESCE(x.cancelled, 0) AS cancelled,
       COALESCE(x.sold_out, 0)  AS sold_out,
       COALESCE(x.closed, 0)    AS closed,
       COALESCE(x.admitted, 0)  AS admitted,
       COALESCE(y.available, 0) AS seats_available,
       COALESCE(y.held, 0)      AS seats_held,
       COALESCE(y.sold, 0)      AS seats_sold
FROM concerts c
LEFT JOIN (
    SELECT concert_code,
           count(*) FILTER (WHERE status = 'WAITING')   AS waiting,
           count(*) FILTER (WHERE status = 'ACTIVE')    AS active,
           count(*) FILTER (WHERE status = 'HELD')      AS held,
           count(*) FILTER (WHERE status = 'PAID')      AS paid,
           count(*) FILTER (WHERE status = 'EXPIRED')   AS expired,
           count(*) FILTER (WHERE status = 'CANCELLED') AS cancelled,
           count(*) FILTER (WHERE status = 'SOLD_OUT')  AS sold_out,
           count(*) FILTER (WHERE status = 'CLOSED')    AS closed,
           count(admitted_at)                           AS admitted
    FROM sessions GROUP BY concert_code
) x ON x.concert_code = c.code
LEFT JOIN (
    SELECT concert_code,
           count(*) FILTER (WHERE status = 'AVAILABLE' OR (status = 'HELD' AND held_until <= now())) AS available,
           count(*) FILTER (WHERE status = 'HELD' AND held_until > now())                          AS held,
           count(*) FILTER (WHERE status = 'SOLD')                                                 AS sold
    FROM seats GROUP BY concert_code
) y ON y.concert_code = c.code
ORDER BY c.code`

// ConcertStats returns the figures of every concert, in code order, from one query, so a metrics scrape
// costs the same whether there is one concert on sale or twenty.
func (s *Store) ConcertStats(ctx context.Context) ([]ConcertStats, error) {
	var rows []concertStatsRow
	if err := s.db.SelectContext(ctx, &rows, concertStatsQuery); err != nil {
		return nil, fmt.Errorf("concert stats: %w", err)
	}
	stats := make([]ConcertStats, 0, len(rows))
	for _, r := range rows {
		stats = append(stats, ConcertStats{
			ConcertCode: r.ConcertCode,
			Sessions: SessionCounts{
				Waiting: r.Waiting, Active: r.Active, Held: r.Held, Paid: r.Paid,
				Expired: r.Expired, Cancelled: r.Cancelled, SoldOut: r.SoldOut, Closed: r.Closed,
			},
			Seats:    SeatCounts{Available: r.SeatsAvailable, Held: r.SeatsHeld, Sold: r.SeatsSold},
			Admitted: r.Admitted,
		})
	}
	return stats, nil
}
