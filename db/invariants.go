package db

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
)

// Names of the invariants CheckInvariants verifies. They are stable: scripts, alerts and tests match on them.
const (
	// InvariantBalanceEqualsLedger: a user's balance equals the sum of the deltas of their ledger rows (0 for a
	// user without rows). Every balance change is a ledger row written in the same transaction, so a
	// difference means money moved without a record, or a record without money.
	InvariantBalanceEqualsLedger = "balance-equals-ledger"
	// InvariantBalanceNotNegative: no balance is below zero. Pay debits only when the balance covers the price.
	InvariantBalanceNotNegative = "balance-not-negative"
	// InvariantLedgerRowWellFormed: a TOPUP row is a credit (delta > 0) that names no payment; a PAYMENT row
	// names a payment that exists. (Whether a PAYMENT row has the right amount is checked per payment.)
	InvariantLedgerRowWellFormed = "ledger-row-well-formed"
	// InvariantSoldSeatHasOnePayment: a SOLD seat was sold by exactly one payment (payment_seats), and that
	// payment is its session's.
	InvariantSoldSeatHasOnePayment = "sold-seat-has-one-payment"
	// InvariantPaymentHasSoldSeat: every seat a payment sold is SOLD, and SOLD to the payment's session; a
	// payment sold at least one seat, among them the one its row names.
	InvariantPaymentHasSoldSeat = "payment-has-sold-seat"
	// InvariantPaymentMatchesBooking: a payment is for the user and concert of its session, charged the sum
	// of its seats' prices, each seat at its price, under the reservation its first seat records (when that
	// seat is sold to the session).
	InvariantPaymentMatchesBooking = "payment-matches-booking"
	// InvariantPaymentAmountMatchesLedger: a payment of amount > 0 has exactly one PAYMENT ledger row naming
	// it, of delta -amount, on the payment's user; a payment of amount 0 (a free seat) has none.
	InvariantPaymentAmountMatchesLedger = "payment-amount-matches-ledger"
	// InvariantSessionStatusMatchesSeat: a HELD seat's session is HELD; a SOLD seat's session is PAID; a PAID
	// session owns a SOLD seat (which, by the payment invariants, has its one payment); a HELD session whose
	// held_until has not passed owns a HELD seat. HoldSeat, Pay and Release each change the seat and the
	// session in one transaction, so no other combination is ever committed. A HELD session past its
	// held_until may have lost its seat to another session (HoldSeat takes lapsed holds) and owns none.
	InvariantSessionStatusMatchesSeat = "session-status-matches-seat"
	// InvariantOneLiveSessionPerUserAndConcert: a user has at most one session per concert in WAITING, ACTIVE
	// or HELD. The session workflow ID (one open run per user and concert) keeps it, and the partial unique
	// index sessions_one_live_per_user enforces it; the check stays as a second line of defence.
	InvariantOneLiveSessionPerUserAndConcert = "one-live-session-per-user-and-concert"
	// InvariantHoldNotStale: no seat is HELD with a held_until more than the grace before the check. A lapsed
	// hold is normal for as long as its session workflow takes to release it; one that outlives the grace
	// was never released.
	InvariantHoldNotStale = "hold-not-stale"
	// InvariantSessionNotStale: no session is ACTIVE past its active_until, or HELD past its held_until, by
	// more than the grace: its workflow should have ended it (EXPIRED) when the window closed.
	InvariantSessionNotStale = "session-not-stale"
	// InvariantFanWithinTicketLimit: no fan has bought more seats of a concert than its maxTicketsPerUser.
	// HoldSeat counts the fan's held and bought seats under the fan's row lock before it takes another.
	InvariantFanWithinTicketLimit = "fan-within-ticket-limit"
	// InvariantOrderWithinSeatsPerOrder: no session holds or bought more seats than its concert's
	// max_seats_per_order, and all of a session's seats are of one performance. HoldSeat counts the order's
	// seats under the session's row lock before it takes another.
	InvariantOrderWithinSeatsPerOrder = "order-within-seats-per-order"
	// InvariantAdmittedWithinTheSale: no session was admitted before its concert's sale opened (opens_at)
	// or after it closed (closes_at). Every admission decides under the concert's row with the same clock
	// it records admitted_at with.
	InvariantAdmittedWithinTheSale = "admitted-within-the-sale"
	// InvariantDrawIsAPermutation: the draw at opening dealt out exactly the places the pre-queue held
	// (the drawn sessions' places before the draw, drawn_from, are their places after it, in some order),
	// and only to sessions that joined before the opening. Draws before migration 0010 recorded no
	// drawn_from and are not checked.
	InvariantDrawIsAPermutation = "draw-is-a-permutation"
)

// maxViolationsPerInvariant bounds what one invariant lists, so a badly broken database gives a report a
// person can read rather than millions of lines.
const maxViolationsPerInvariant = 1000

// Violation is one broken invariant on one subject, as CheckInvariants reports it.
type Violation struct {
	// Invariant is one of the Invariant* names.
	Invariant string
	// Subject names the row at fault: "user <uuid>", "seat <code> <date> #<n>", "payment <uuid>",
	// "session <id>", "ledger row <id>" or "user <uuid> concert <code>".
	Subject string
	// Detail says what is wrong, with the values seen.
	Detail string
}

// String formats the violation on one line, as `concert check` prints it.
func (v Violation) String() string { return v.Invariant + " " + v.Subject + ": " + v.Detail }

// invariantCheck is one set-based query that returns a (subject, detail) row per violation of one invariant.
type invariantCheck struct {
	name  string
	query string
	// asOf says the query compares deadlines with $1, the moment of the check; graced says it also reads
	// $2, the grace in microseconds.
	asOf, graced bool
}

// seatOfS names the seat aliased s as Violation.Subject spells it; the queries below that report a seat
// share it. Deadlines are reported in UTC, to the second.
const seatOfS = `format('seat %s %s #%s', s.concert_code, to_char(s.concert_date, 'YYYY-MM-DD"T"HH24:MI:SS'), s.seat_number)`

const balanceEqualsLedgerQuery = `
SELECT 'user ' || u.uuid AS subject,
       format('balance %s != ledger sum %s', u.balance, COALESCE(l.total, 0)) AS detail
FROM users u
LEFT JOIN (SELECT user_uuid, sum(delta) AS total FROM ledger GROUP BY user_uuid) l ON l.user_uuid = u.uuid
WHERE u.balance <> COALESCE(l.total, 0)`

const balanceNotNegativeQuery = `
SELECT 'user ' || uuid AS subject, format('balance %s is negative', balance) AS detail
FROM users WHERE balance < 0`

const ledgerRowWellFormedQuery = `
SELECT 'ledger row ' || l.id AS subject,
       CASE
           WHEN l.kind = 'TOPUP' AND l.payment_id IS NOT NULL
               THEN format('TOPUP of %s for user %s names payment %s', l.delta, l.user_uuid, l.payment_id)
           WHEN l.kind = 'TOPUP'
               THEN format('TOPUP of %s for user %s is not a credit', l.delta, l.user_uuid)
           WHEN l.payment_id IS NULL
               THEN format('PAYMENT of %s for user %s names no payment', l.delta, l.user_uuid)
           ELSE format('PAYMENT of %s for user %s names payment %s, which does not exist', l.delta, l.user_uuid, l.payment_id)
       END AS detail
FROM ledger l
LEFT JOIN payments p ON p.id = l.payment_id
WHERE (l.kind = 'TOPUP' AND (l.payment_id IS NOT NULL OR l.delta <= 0))
   OR (l.kind = 'PAYMENT' AND p.id IS NULL)`

const soldSeatHasOnePaymentQuery = `
SELECT ` + seatOfS + ` AS subject,
       format('SOLD to session %s with %s payments%s', s.session_id, count(p.id),
              COALESCE(': ' || string_agg(p.id || ' of session ' || p.session_id, ', ' ORDER BY p.id), '')) AS detail
FROM seats s
LEFT JOIN payment_seats ps
       ON ps.concert_code = s.concert_code AND ps.concert_date = s.concert_date AND ps.seat_number = s.seat_number
LEFT JOIN payments p ON p.id = ps.payment_id
WHERE s.status = 'SOLD'
GROUP BY s.concert_code, s.concert_date, s.seat_number, s.session_id
HAVING count(p.id) <> 1 OR bool_or(p.session_id IS DISTINCT FROM s.session_id)`

const paymentHasSoldSeatQuery = `
SELECT 'payment ' || p.id AS subject,
       CASE
           WHEN s.status IS NULL THEN format('seat %s #%s of %s does not exist', ps.concert_date, ps.seat_number, ps.concert_code)
           WHEN s.status <> 'SOLD' THEN format('%s is %s, not SOLD', ` + seatOfS + `, s.status)
           ELSE format('%s is SOLD to session %s, not to the payment''s session %s', ` + seatOfS + `, s.session_id, p.session_id)
       END AS detail
FROM payments p
JOIN payment_seats ps ON ps.payment_id = p.id
LEFT JOIN seats s
       ON s.concert_code = ps.concert_code AND s.concert_date = ps.concert_date AND s.seat_number = ps.seat_number
WHERE s.status IS DISTINCT FROM 'SOLD' OR s.session_id IS DISTINCT FROM p.session_id
UNION ALL
SELECT 'payment ' || p.id, format('sold no seat #%s of %s %s, which its row names', p.seat_number, p.concert_code, p.concert_date)
FROM payments p
WHERE NOT EXISTS (SELECT 1 FROM payment_seats ps
                  WHERE ps.payment_id = p.id AND ps.concert_code = p.concert_code
                    AND ps.concert_date = p.concert_date AND ps.seat_number = p.seat_number)`

const paymentMatchesBookingQuery = `
SELECT 'payment ' || p.id AS subject,
       concat_ws('; ',
           CASE WHEN x.id IS NULL THEN format('session %s does not exist', p.session_id) END,
           CASE WHEN p.user_uuid IS DISTINCT FROM x.user_uuid
                THEN format('paid by user %s but session %s is user %s''s', p.user_uuid, p.session_id, x.user_uuid) END,
           CASE WHEN p.concert_code IS DISTINCT FROM x.concert_code
                THEN format('for concert %s but session %s is for %s', p.concert_code, p.session_id, x.concert_code) END,
           CASE WHEN t.seats = 1 AND p.amount IS DISTINCT FROM t.total
                THEN format('amount %s but the seat costs %s', p.amount, t.total)
                WHEN t.seats > 1 AND p.amount IS DISTINCT FROM t.total
                THEN format('amount %s but its %s seats cost %s', p.amount, t.seats, t.total) END,
           CASE WHEN t.mispriced IS NOT NULL
                THEN format('sold %s below or above the price', t.mispriced) END,
           CASE WHEN s.session_id = p.session_id AND p.reservation_id IS DISTINCT FROM s.reservation_id
                THEN format('reservation %s but the seat records %s', p.reservation_id, s.reservation_id) END
       ) AS detail
FROM payments p
LEFT JOIN sessions x ON x.id = p.session_id
LEFT JOIN seats s
       ON s.concert_code = p.concert_code AND s.concert_date = p.concert_date AND s.seat_number = p.seat_number
LEFT JOIN LATERAL (
    SELECT count(*) AS seats, sum(ps.price) AS total,
           string_agg(format('seat #%s at %s (price %s)', ps.seat_number, ps.price, st.price), ', ' ORDER BY ps.seat_number)
               FILTER (WHERE st.price IS DISTINCT FROM ps.price) AS mispriced
    FROM payment_seats ps
    LEFT JOIN seats st
           ON st.concert_code = ps.concert_code AND st.concert_date = ps.concert_date AND st.seat_number = ps.seat_number
    WHERE ps.payment_id = p.id
    HAVING count(*) > 0
) t ON true
WHERE x.id IS NULL
   OR p.user_uuid IS DISTINCT FROM x.user_uuid
   OR p.concert_code IS DISTINCT FROM x.concert_code
   OR (t.seats IS NOT NULL AND p.amount <> t.total)
   OR t.mispriced IS NOT NULL
   OR (s.session_id = p.session_id AND p.reservation_id IS DISTINCT FROM s.reservation_id)`

const paymentAmountMatchesLedgerQuery = `
SELECT 'payment ' || p.id AS subject,
       format('amount %s: expected %s, found %s', p.amount,
              CASE WHEN p.amount > 0 THEN format('one PAYMENT ledger row of %s for user %s', -p.amount, p.user_uuid)
                   ELSE 'no PAYMENT ledger row' END,
              CASE WHEN count(l.id) = 0 THEN 'none'
                   ELSE string_agg(format('row %s of %s for user %s', l.id, l.delta, l.user_uuid), ', ' ORDER BY l.id) END
       ) AS detail
FROM payments p
LEFT JOIN ledger l ON l.payment_id = p.id AND l.kind = 'PAYMENT'
GROUP BY p.id, p.amount, p.user_uuid
HAVING NOT ((p.amount > 0 AND count(l.id) = 1 AND bool_and(l.delta = -p.amount AND l.user_uuid = p.user_uuid))
            OR (p.amount = 0 AND count(l.id) = 0))`

const sessionStatusMatchesSeatQuery = `
SELECT ` + seatOfS + ` AS subject,
       format('HELD for session %s, which is %s', s.session_id, COALESCE(x.status, 'missing')) AS detail
FROM seats s LEFT JOIN sessions x ON x.id = s.session_id
WHERE s.status = 'HELD' AND x.status IS DISTINCT FROM 'HELD'
UNION ALL
SELECT ` + seatOfS + `,
       format('SOLD to session %s, which is %s', s.session_id, COALESCE(x.status, 'missing'))
FROM seats s LEFT JOIN sessions x ON x.id = s.session_id
WHERE s.status = 'SOLD' AND x.status IS DISTINCT FROM 'PAID'
UNION ALL
SELECT 'session ' || x.id, 'PAID but owns no SOLD seat'
FROM sessions x
WHERE x.status = 'PAID' AND NOT EXISTS (SELECT 1 FROM seats s WHERE s.session_id = x.id AND s.status = 'SOLD')
UNION ALL
SELECT 'session ' || x.id, format('HELD until %s but owns no HELD seat', to_char(x.held_until AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
FROM sessions x
WHERE x.status = 'HELD' AND x.held_until > $1::timestamptz
  AND NOT EXISTS (SELECT 1 FROM seats s WHERE s.session_id = x.id AND s.status = 'HELD')`

const oneLiveSessionQuery = `
SELECT format('user %s concert %s', user_uuid, concert_code) AS subject,
       format('%s live sessions: %s', count(*), string_agg(id || ' ' || status, ', ' ORDER BY seq)) AS detail
FROM sessions
WHERE status IN ('WAITING', 'ACTIVE', 'HELD')
GROUP BY concert_code, user_uuid
HAVING count(*) > 1`

const holdNotStaleQuery = `
SELECT ` + seatOfS + ` AS subject,
       format('HELD for session %s until %s, %s before the check', s.session_id, to_char(s.held_until AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
              date_trunc('second', $1::timestamptz - s.held_until)) AS detail
FROM seats s
WHERE s.status = 'HELD' AND s.held_until < $1::timestamptz - $2 * interval '1 microsecond'`

const sessionNotStaleQuery = `
SELECT 'session ' || x.id AS subject,
       format('%s until %s, %s before the check', x.status, to_char(w.deadline AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
              date_trunc('second', $1::timestamptz - w.deadline)) AS detail
FROM sessions x
CROSS JOIN LATERAL (SELECT CASE x.status WHEN 'ACTIVE' THEN x.active_until ELSE x.held_until END AS deadline) w
WHERE x.status IN ('ACTIVE', 'HELD') AND w.deadline < $1::timestamptz - $2 * interval '1 microsecond'`

const fanWithinTicketLimitQuery = `
SELECT 'user ' || t.user_uuid || ' concert ' || t.concert_code AS subject,
       format('bought %s tickets, the limit is %s', t.n, c.max_tickets_per_user) AS detail
FROM (SELECT p.user_uuid, p.concert_code, count(*) AS n
      FROM payments p JOIN payment_seats ps ON ps.payment_id = p.id
      GROUP BY p.user_uuid, p.concert_code) t
JOIN concerts c ON c.code = t.concert_code
WHERE c.max_tickets_per_user IS NOT NULL AND t.n > c.max_tickets_per_user`

const orderWithinSeatsPerOrderQuery = `
SELECT 'session ' || s.session_id AS subject,
       format('holds or bought %s seats of %s performances, one order may hold %s of one: %s',
              count(*), count(DISTINCT s.concert_date), c.max_seats_per_order,
              string_agg(to_char(s.concert_date, 'YYYY-MM-DD"T"HH24:MI:SS') || ' #' || s.seat_number, ', '
                         ORDER BY s.concert_date, s.seat_number)) AS detail
FROM seats s JOIN concerts c ON c.code = s.concert_code
WHERE s.session_id IS NOT NULL
GROUP BY s.session_id, c.max_seats_per_order
HAVING count(*) > c.max_seats_per_order OR count(DISTINCT s.concert_date) > 1`

const admittedWithinTheSaleQuery = `
SELECT 'session ' || x.id AS subject,
       CASE WHEN x.admitted_at < c.opens_at
            THEN format('admitted at %s, before the sale opened at %s', to_char(x.admitted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                        to_char(c.opens_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
            ELSE format('admitted at %s, after the sale closed at %s', to_char(x.admitted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                        to_char(c.closes_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
       END AS detail
FROM sessions x JOIN concerts c ON c.code = x.concert_code
WHERE x.admitted_at < c.opens_at OR x.admitted_at >= c.closes_at`

const drawIsAPermutationQuery = `
SELECT 'concert ' || c.code AS subject,
       concat_ws('; ',
           CASE WHEN d.dealt IS DISTINCT FROM d.held
                THEN format('the draw dealt places %s but the pre-queue held %s', d.dealt, d.held) END,
           CASE WHEN d.late > 0 THEN format('%s drawn sessions joined after the opening', d.late) END) AS detail
FROM concerts c
CROSS JOIN LATERAL (
    SELECT array_agg(x.seq ORDER BY x.seq) AS dealt, array_agg(x.drawn_from ORDER BY x.drawn_from) AS held,
           count(*) FILTER (WHERE x.created_at >= c.opens_at) AS late
    FROM sessions x WHERE x.concert_code = c.code AND x.drawn_from IS NOT NULL
) d
WHERE c.drawn_at IS NOT NULL AND (d.dealt IS DISTINCT FROM d.held OR d.late > 0)`

// invariantChecks lists the checks in the order the report shows them: money first.
var invariantChecks = []invariantCheck{
	{name: InvariantBalanceEqualsLedger, query: balanceEqualsLedgerQuery},
	{name: InvariantBalanceNotNegative, query: balanceNotNegativeQuery},
	{name: InvariantLedgerRowWellFormed, query: ledgerRowWellFormedQuery},
	{name: InvariantPaymentAmountMatchesLedger, query: paymentAmountMatchesLedgerQuery},
	{name: InvariantSoldSeatHasOnePayment, query: soldSeatHasOnePaymentQuery},
	{name: InvariantPaymentHasSoldSeat, query: paymentHasSoldSeatQuery},
	{name: InvariantPaymentMatchesBooking, query: paymentMatchesBookingQuery},
	{name: InvariantSessionStatusMatchesSeat, query: sessionStatusMatchesSeatQuery, asOf: true},
	{name: InvariantOneLiveSessionPerUserAndConcert, query: oneLiveSessionQuery},
	{name: InvariantHoldNotStale, query: holdNotStaleQuery, asOf: true, graced: true},
	{name: InvariantSessionNotStale, query: sessionNotStaleQuery, asOf: true, graced: true},
	{name: InvariantFanWithinTicketLimit, query: fanWithinTicketLimitQuery},
	{name: InvariantOrderWithinSeatsPerOrder, query: orderWithinSeatsPerOrderQuery},
	{name: InvariantAdmittedWithinTheSale, query: admittedWithinTheSaleQuery},
	{name: InvariantDrawIsAPermutation, query: drawIsAPermutationQuery},
}

// violationRow is one row of an invariant query.
type violationRow struct {
	Subject string `db:"subject"`
	Detail  string `db:"detail"`
}

// CheckInvariants verifies the promises the store keeps about money, seats and sessions (the Invariant*
// constants) and returns every violation found, in the order of the checks and then by subject; none means
// the database is consistent. A lapsed hold or session window counts as stale only holdGrace after its
// deadline, the time its workflow is given to end it.
//
// The checks read one snapshot (a REPEATABLE READ, READ ONLY transaction), so a database in use gives no
// false alarm from a booking that commits between two of them; the moment they compare deadlines with is
// taken after the snapshot. Each check is one set-based query; at most 1000 violations are listed per
// invariant. CheckInvariants changes nothing.
func (s *Store) CheckInvariants(ctx context.Context, holdGrace time.Duration) ([]Violation, error) {
	if holdGrace < 0 {
		return nil, fmt.Errorf("check invariants: negative hold grace %s", holdGrace)
	}
	violations := []Violation{}
	err := s.inSnapshot(ctx, func(tx *sqlx.Tx) error {
		// clock_timestamp() is read after the snapshot is taken, so any hold that another session could
		// have taken over in a transaction visible here has a held_until before asOf.
		var asOf time.Time
		if err := tx.GetContext(ctx, &asOf, `SELECT clock_timestamp()`); err != nil {
			return err
		}
		for _, c := range invariantChecks {
			q := `SELECT subject, detail FROM (` + c.query + `) AS v ORDER BY subject, detail LIMIT ` +
				strconv.Itoa(maxViolationsPerInvariant)
			var args []any
			if c.asOf {
				args = append(args, asOf)
			}
			if c.graced {
				args = append(args, micros(holdGrace))
			}
			var rows []violationRow
			if err := tx.SelectContext(ctx, &rows, q, args...); err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			for _, r := range rows {
				violations = append(violations, Violation{Invariant: c.name, Subject: r.Subject, Detail: r.Detail})
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("check invariants: %w", err)
	}
	return violations, nil
}

// InvariantSummary is the size of what CheckInvariants looked at, for the header of its report: a clean
// check of an empty database and of a busy one should not read the same.
type InvariantSummary struct {
	Users      int64 `db:"users"`
	Sessions   int64 `db:"sessions"`
	SeatsSold  int64 `db:"seats_sold"`
	SeatsHeld  int64 `db:"seats_held"`
	Payments   int64 `db:"payments"`
	LedgerRows int64 `db:"ledger_rows"`
	// Balances is the sum of all balances and LedgerSum that of all ledger deltas; they are equal when every
	// user's balance equals their ledger.
	Balances  int64 `db:"balances"`
	LedgerSum int64 `db:"ledger_sum"`
	// Paid is the sum of all payments.
	Paid int64 `db:"paid"`
}

// LedgerBalanced reports whether the balances add up to the ledger as a whole.
func (s InvariantSummary) LedgerBalanced() bool { return s.Balances == s.LedgerSum }

const invariantSummaryQuery = `
SELECT (SELECT count(*) FROM users)                                  AS users,
       (SELECT COALESCE(sum(balance), 0)::bigint FROM users)         AS balances,
       (SELECT count(*) FROM sessions)                               AS sessions,
       (SELECT count(*) FROM seats WHERE status = 'SOLD')            AS seats_sold,
       (SELECT count(*) FROM seats WHERE status = 'HELD')            AS seats_held,
       (SELECT count(*) FROM payments)                               AS payments,
       (SELECT COALESCE(sum(amount), 0)::bigint FROM payments)       AS paid,
       (SELECT count(*) FROM ledger)                                 AS ledger_rows,
       (SELECT COALESCE(sum(delta), 0)::bigint FROM ledger)          AS ledger_sum`

// InvariantSummary counts users, sessions, sold and held seats, payments and ledger rows, and adds up
// balances, ledger and payments, from one query (one snapshot). It changes nothing.
func (s *Store) InvariantSummary(ctx context.Context) (InvariantSummary, error) {
	var sum InvariantSummary
	if err := s.db.GetContext(ctx, &sum, invariantSummaryQuery); err != nil {
		return InvariantSummary{}, fmt.Errorf("invariant summary: %w", err)
	}
	return sum, nil
}

// inSnapshot runs fn in a REPEATABLE READ, READ ONLY transaction: every statement sees the same snapshot
// and none can write.
func (s *Store) inSnapshot(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin snapshot: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit snapshot: %w", err)
	}
	return nil
}
