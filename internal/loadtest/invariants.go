package loadtest

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// admissionCheck is one promise of the waiting room about one concert ($1), as a query that returns one
// line per breach. db.(*Store).CheckInvariants covers money, seats and sessions for the whole database; it
// does not (yet) look at admission, so the load generator checks that itself.
type admissionCheck struct {
	name  string
	query string
}

// admissionChecks are the waiting room's promises that a run can check after the fact.
var admissionChecks = []admissionCheck{
	{name: "admission-keeps-to-max-active", query: `
SELECT count(*) || ' live sessions, maxActive ' || c.max_active
FROM sessions x JOIN concerts c ON c.code = x.concert_code
WHERE x.concert_code = $1
  AND ((x.status = 'ACTIVE' AND x.active_until > now()) OR (x.status = 'HELD' AND x.held_until > now()))
GROUP BY c.max_active HAVING count(*) > c.max_active`},
	{name: "admission-is-fifo", query: `
SELECT 'session ' || w.id || ' (seq ' || w.seq || ') still waits behind ' || count(*) || ' admitted later arrivals'
FROM sessions w JOIN sessions a ON a.concert_code = w.concert_code AND a.seq > w.seq AND a.admitted_at IS NOT NULL
WHERE w.concert_code = $1 AND w.status = 'WAITING'
GROUP BY w.id, w.seq`},
}

// maxDetails bounds the lines a violation lists.
const maxDetails = 10

// checkAdmission runs the admission checks for one concert and returns the breached ones.
func checkAdmission(ctx context.Context, db *sql.DB, concertCode string) ([]Violation, error) {
	var out []Violation
	for _, c := range admissionChecks {
		rows, err := db.QueryContext(ctx, c.query, concertCode)
		if err != nil {
			return nil, fmt.Errorf("check %s: %w", c.name, err)
		}
		var lines []string
		n := 0
		for rows.Next() {
			var line sql.NullString
			if err := rows.Scan(&line); err != nil {
				rows.Close()
				return nil, fmt.Errorf("check %s: %w", c.name, err)
			}
			if n++; len(lines) < maxDetails {
				lines = append(lines, line.String)
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("check %s: %w", c.name, err)
		}
		if n > 0 {
			detail := strings.Join(lines, "; ")
			if n > len(lines) {
				detail += fmt.Sprintf("; and %d more", n-len(lines))
			}
			out = append(out, Violation{Check: c.name, Detail: detail})
		}
	}
	return out, nil
}
