package db

import (
	"context"
	"fmt"
)

// ConcertOutcome is what an on-sale of one concert left in the store of record, for the load generator's
// report: how many seats were sold, how many were paid twice (never, if the unique index holds) and the
// payment IDs of record.
type ConcertOutcome struct {
	SoldSeats      int
	SeatsPaidTwice int
	PaymentIDs     map[string]bool
}

// ConcertOutcome reads the outcome of a concert's on-sale.
func (s *Store) ConcertOutcome(ctx context.Context, concertCode string) (ConcertOutcome, error) {
	out := ConcertOutcome{PaymentIDs: map[string]bool{}}
	const sold = `SELECT count(*) FROM seats WHERE concert_code = $1 AND status = 'SOLD'`
	if err := s.db.GetContext(ctx, &out.SoldSeats, sold, concertCode); err != nil {
		return out, fmt.Errorf("count sold seats: %w", err)
	}
	const twice = `
SELECT count(*) FROM (
    SELECT 1 FROM payment_seats WHERE concert_code = $1 GROUP BY concert_date, seat_number HAVING count(*) > 1
) AS t`
	if err := s.db.GetContext(ctx, &out.SeatsPaidTwice, twice, concertCode); err != nil {
		return out, fmt.Errorf("count seats paid twice: %w", err)
	}
	var ids []string
	if err := s.db.SelectContext(ctx, &ids, `SELECT id FROM payments WHERE concert_code = $1`, concertCode); err != nil {
		return out, fmt.Errorf("read payments: %w", err)
	}
	for _, id := range ids {
		out.PaymentIDs[id] = true
	}
	return out, nil
}

// The waiting room's promises about one concert, checked after an on-sale by CheckAdmission.
const (
	InvariantAdmissionKeepsToMaxActive = "admission-keeps-to-max-active"
	InvariantAdmissionIsFIFO           = "admission-is-fifo"
)

// admissionChecks are the waiting room's promises about one concert ($1), each a query that returns a
// (subject, detail) row per breach. They hold at any moment of a run, so they need no snapshot.
var admissionChecks = []invariantCheck{
	{name: InvariantAdmissionKeepsToMaxActive, query: `
SELECT 'concert ' || c.code AS subject, count(*) || ' live sessions, maxActive ' || c.max_active AS detail
FROM sessions x JOIN concerts c ON c.code = x.concert_code
WHERE x.concert_code = $1
  AND ((x.status = 'ACTIVE' AND x.active_until > now()) OR (x.status = 'HELD' AND x.held_until > now()))
GROUP BY c.code, c.max_active HAVING count(*) > c.max_active`},
	{name: InvariantAdmissionIsFIFO, query: `
SELECT 'session ' || w.id AS subject, 'seq ' || w.seq || ' still waits behind ' || count(*) || ' admitted later arrivals' AS detail
FROM sessions w JOIN sessions a ON a.concert_code = w.concert_code AND a.seq > w.seq AND a.admitted_at IS NOT NULL
WHERE w.concert_code = $1 AND w.status = 'WAITING'
GROUP BY w.id, w.seq`},
}

// CheckAdmission checks the waiting room's promises for one concert: never more live sessions than
// maxActive, and nobody left waiting behind a later arrival who was admitted. It returns the breaches, at
// most maxViolationsPerInvariant per promise.
func (s *Store) CheckAdmission(ctx context.Context, concertCode string) ([]Violation, error) {
	out := []Violation{}
	for _, c := range admissionChecks {
		var rows []violationRow
		if err := s.db.SelectContext(ctx, &rows, c.query+fmt.Sprintf(" LIMIT %d", maxViolationsPerInvariant), concertCode); err != nil {
			return nil, fmt.Errorf("check %s: %w", c.name, err)
		}
		for _, r := range rows {
			out = append(out, Violation{Invariant: c.name, Subject: r.Subject, Detail: r.Detail})
		}
	}
	return out, nil
}
