//go:build unix

package chaos

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
)

// terminalStatuses are the statuses a session ends in.
var terminalStatuses = map[string]bool{"PAID": true, "EXPIRED": true, "CANCELLED": true, "SOLD_OUT": true}

// sessionStatuses counts the sessions of the database by status.
func sessionStatuses(ctx context.Context, db *sqlx.DB) (map[string]int, error) {
	var rows []struct {
		Status string `db:"status"`
		N      int    `db:"n"`
	}
	if err := db.SelectContext(ctx, &rows, `SELECT status, count(*) AS n FROM sessions GROUP BY status`); err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, r := range rows {
		out[r.Status] = r.N
	}
	return out, nil
}

// invariant is one promise of the store of record, as a query that lists what breaks it.
type invariant struct {
	name  string
	query string // returns one text column describing each violation; $1 is the grace period in seconds
}

// storeInvariants are the checks of `concert check` (issue 4, promise 2) and of this test, run after every
// session has ended. A violation is a row.
var storeInvariants = []invariant{
	{"a balance differs from the sum of its ledger", `
SELECT u.uuid::text || ': balance ' || u.balance || ', ledger sum ' || COALESCE(l.total, 0)
FROM users u LEFT JOIN (SELECT user_uuid, sum(delta) AS total FROM ledger GROUP BY user_uuid) l ON l.user_uuid = u.uuid
WHERE u.balance <> COALESCE(l.total, 0)`},
	{"a SOLD seat was not sold by exactly one payment", `
SELECT s.concert_code || ' ' || s.concert_date || ' #' || s.seat_number || ': ' || count(ps.payment_id) || ' payments'
FROM seats s LEFT JOIN payment_seats ps USING (concert_code, concert_date, seat_number)
WHERE s.status = 'SOLD' GROUP BY s.concert_code, s.concert_date, s.seat_number HAVING count(ps.payment_id) <> 1`},
	{"a seat a payment sold is not SOLD to the payment's session", `
SELECT p.id::text || ': seat ' || s.concert_date || ' #' || s.seat_number || ' is ' || s.status || ' to ' || COALESCE(s.session_id, 'nobody')
FROM payments p JOIN payment_seats ps ON ps.payment_id = p.id
JOIN seats s ON (s.concert_code, s.concert_date, s.seat_number) = (ps.concert_code, ps.concert_date, ps.seat_number)
WHERE s.status <> 'SOLD' OR s.session_id IS DISTINCT FROM p.session_id`},
	{"a payment's row does not name the lowest of the seats it sold", `
SELECT p.id::text || ': names ' || p.concert_date || ' #' || p.seat_number || ', sold ' || string_agg(ps.concert_date || ' #' || ps.seat_number, ', ')
FROM payments p LEFT JOIN payment_seats ps ON ps.payment_id = p.id
GROUP BY p.id HAVING count(ps.seat_number) = 0
    OR NOT bool_and(ps.concert_code = p.concert_code AND ps.concert_date = p.concert_date) OR min(ps.seat_number) <> p.seat_number`},
	{"a payment's amount is not the total of its seats' prices", `
SELECT p.id::text || ': paid ' || p.amount || ' for ' || count(*) || ' seats of ' || sum(s.price)
FROM payments p JOIN payment_seats ps ON ps.payment_id = p.id
JOIN seats s ON (s.concert_code, s.concert_date, s.seat_number) = (ps.concert_code, ps.concert_date, ps.seat_number)
GROUP BY p.id, p.amount HAVING p.amount <> sum(s.price) OR bool_or(ps.price <> s.price)`},
	{"a payment does not have exactly one ledger debit of its amount", `
SELECT p.id::text || ': ' || (SELECT count(*) FROM ledger l WHERE l.payment_id = p.id) || ' ledger rows'
FROM payments p
WHERE p.amount > 0 AND ((SELECT count(*) FROM ledger l WHERE l.payment_id = p.id) <> 1
   OR NOT EXISTS (SELECT 1 FROM ledger l WHERE l.payment_id = p.id AND l.kind = 'PAYMENT' AND l.delta = -p.amount AND l.user_uuid = p.user_uuid))`},
	{"a PAYMENT ledger row has no payment", `
SELECT l.id::text || ': payment ' || COALESCE(l.payment_id::text, 'NULL')
FROM ledger l WHERE l.kind = 'PAYMENT' AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.id = l.payment_id)`},
	{"a PAID session does not have exactly one payment", `
SELECT s.id || ': ' || (SELECT count(*) FROM payments p WHERE p.session_id = s.id) || ' payments'
FROM sessions s WHERE s.status = 'PAID' AND (SELECT count(*) FROM payments p WHERE p.session_id = s.id) <> 1`},
	{"a payment belongs to a session that is not PAID, or to another user", `
SELECT p.id::text || ': session ' || s.id || ' is ' || s.status
FROM payments p JOIN sessions s ON s.id = p.session_id WHERE s.status <> 'PAID' OR s.user_uuid <> p.user_uuid`},
	{"a seat is HELD past its window plus the grace period", `
SELECT concert_code || ' ' || concert_date || ' #' || seat_number || ': held until ' || held_until || ' by ' || session_id
FROM seats WHERE status = 'HELD' AND held_until < now() - $1 * interval '1 second'`},
	{"a seat is HELD by a session that has ended", `
SELECT s.concert_code || ' ' || s.concert_date || ' #' || s.seat_number || ': held until ' || s.held_until || ' by ' || x.id || ' (' || x.status || ')'
FROM seats s JOIN sessions x ON x.id = s.session_id
WHERE s.status = 'HELD' AND x.status IN ('PAID', 'EXPIRED', 'CANCELLED', 'SOLD_OUT')`},
	{"a seat is owned by a session that does not exist", `
SELECT s.concert_code || ' ' || s.concert_date || ' #' || s.seat_number || ': ' || s.session_id
FROM seats s WHERE s.session_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM sessions x WHERE x.id = s.session_id)`},
	{"a user has more than one payment for one concert session", `
SELECT session_id || ': ' || count(*) FROM payments GROUP BY session_id HAVING count(*) > 1`},
	{"an order holds or bought more seats than its concert allows, or seats of two dates", `
SELECT s.session_id || ': ' || count(*) || ' seats of ' || count(DISTINCT s.concert_date) || ' dates, ' || c.max_seats_per_order || ' allowed'
FROM seats s JOIN concerts c ON c.code = s.concert_code WHERE s.session_id IS NOT NULL
GROUP BY s.session_id, c.max_seats_per_order HAVING count(*) > c.max_seats_per_order OR count(DISTINCT s.concert_date) > 1`},
	{"a session was admitted before its concert's sale opened", `
SELECT x.id || ': admitted ' || x.admitted_at || ', the sale opened ' || c.opens_at
FROM sessions x JOIN concerts c ON c.code = x.concert_code WHERE x.admitted_at < c.opens_at`},
	{"a sale's pre-queue was drawn before its opening, or not within the grace period after it", `
SELECT code || ': opens ' || opens_at || ', drawn ' || COALESCE(drawn_at::text, 'never')
FROM concerts WHERE drawn_at < opens_at OR (drawn_at IS NULL AND opens_at < now() - $1 * interval '1 second')`},
}

// checkStore runs every invariant and returns the violations, "<invariant>: <row>", at most 20 per
// invariant.
func checkStore(ctx context.Context, db *sqlx.DB, grace time.Duration) ([]string, error) {
	var out []string
	for _, inv := range storeInvariants {
		var rows []string
		q := inv.query
		args := []any{}
		if strings.Contains(q, "$1") {
			args = append(args, grace.Seconds())
		}
		if err := db.SelectContext(ctx, &rows, q+" LIMIT 20", args...); err != nil {
			return nil, fmt.Errorf("%s: %w", inv.name, err)
		}
		for _, r := range rows {
			out = append(out, inv.name+": "+r)
		}
	}
	return out, nil
}

// concertCheck runs `concert check` against the database. available is false when the binary has no
// check command yet (it is being added by another change), so the caller can say which checks stood in.
func concertCheck(ctx context.Context, bin, dbURL string) (available bool, output string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "check", "--database-url", dbURL)
	cmd.Env = append(cmd.Environ(), "DATABASE_URL="+dbURL)
	out, err := cmd.CombinedOutput()
	if err != nil && strings.Contains(string(out), `unknown command "check"`) {
		return false, string(out), nil
	}
	return true, string(out), err
}

// workflowRun is one BookingSession run as Temporal's visibility store lists it.
type workflowRun struct {
	WorkflowID, RunID string
	Status            enumspb.WorkflowExecutionStatus
	BookingStatus     string // the BookingStatus search attribute
}

const sessionWorkflowQuery = "WorkflowType = 'BookingSession'"

// runningSessionWorkflows counts the BookingSession runs that are still open.
func runningSessionWorkflows(ctx context.Context, c client.Client) (int64, error) {
	resp, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
		Query: sessionWorkflowQuery + " AND ExecutionStatus = 'Running'",
	})
	if err != nil {
		return 0, err
	}
	return resp.GetCount(), nil
}

// sessionWorkflows lists every BookingSession run.
func sessionWorkflows(ctx context.Context, c client.Client) ([]workflowRun, error) {
	var out []workflowRun
	var next []byte
	dc := converter.GetDefaultDataConverter()
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: sessionWorkflowQuery, PageSize: 1000, NextPageToken: next,
		})
		if err != nil {
			return nil, err
		}
		for _, e := range resp.GetExecutions() {
			r := workflowRun{WorkflowID: e.GetExecution().GetWorkflowId(), RunID: e.GetExecution().GetRunId(), Status: e.GetStatus()}
			if p, ok := e.GetSearchAttributes().GetIndexedFields()["BookingStatus"]; ok {
				_ = dc.FromPayload(p, &r.BookingStatus)
			}
			out = append(out, r)
		}
		if next = resp.GetNextPageToken(); len(next) == 0 {
			return out, nil
		}
	}
}
