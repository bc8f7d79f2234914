package db

import (
	"context"
	"fmt"
	"time"
)

// AuditEntry is one admin action, as recorded.
type AuditEntry struct {
	ID        int64     `db:"id"`
	Action    string    `db:"action"`
	Target    string    `db:"target"`
	SessionID *string   `db:"session_id"`
	Actor     string    `db:"actor"`
	Reason    string    `db:"reason"`
	Outcome   string    `db:"outcome"`
	CreatedAt time.Time `db:"created_at"`
}

// RecordAudit appends an admin action to the audit table.
func (s *Store) RecordAudit(ctx context.Context, e AuditEntry) (AuditEntry, error) {
	const q = `
INSERT INTO admin_audit (action, target, session_id, actor, reason, outcome)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id, action, target, session_id, actor, reason, outcome, created_at`
	var out AuditEntry
	if err := s.db.GetContext(ctx, &out, q, e.Action, e.Target, e.SessionID, e.Actor, e.Reason, e.Outcome); err != nil {
		return AuditEntry{}, fmt.Errorf("record audit: %w", err)
	}
	return out, nil
}

// AuditTrail returns the recorded actions on one target, oldest first.
func (s *Store) AuditTrail(ctx context.Context, target string) ([]AuditEntry, error) {
	const q = `
SELECT id, action, target, session_id, actor, reason, outcome, created_at
FROM admin_audit WHERE target = $1 ORDER BY id`
	entries := []AuditEntry{}
	if err := s.db.SelectContext(ctx, &entries, q, target); err != nil {
		return nil, fmt.Errorf("audit trail of %s: %w", target, err)
	}
	return entries, nil
}

// SetAuditOutcome records what came of an audited action that was recorded before it was carried out.
func (s *Store) SetAuditOutcome(ctx context.Context, id int64, outcome string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE admin_audit SET outcome = $2 WHERE id = $1`, id, outcome); err != nil {
		return fmt.Errorf("audit outcome of %d: %w", id, err)
	}
	return nil
}

// Who and why of a cancellation that reached a session's workflow without passing through the admin API: the
// Temporal UI's "Request Cancellation", tctl, or any other Temporal client.
const (
	TemporalCancelActor  = "temporal"
	TemporalCancelReason = "Temporal cancel request"
)

// AuditTemporalCancel records the cancellation of a session that no admin action has recorded: one that came
// by way of Temporal alone. The admin API records its cancellations before it asks Temporal to cancel, so
// each cancellation leaves exactly one row whatever road it took; calling this again adds nothing.
func (s *Store) AuditTemporalCancel(ctx context.Context, sessionID, outcome string) error {
	const q = `
INSERT INTO admin_audit (action, target, session_id, actor, reason, outcome)
SELECT 'cancel', s.workflow_id, s.id, $3, $4, $2
FROM sessions s
WHERE s.id = $1 AND NOT EXISTS (SELECT 1 FROM admin_audit a WHERE a.session_id = s.id AND a.action = 'cancel')`
	if _, err := s.db.ExecContext(ctx, q, sessionID, outcome, TemporalCancelActor, TemporalCancelReason); err != nil {
		return fmt.Errorf("audit cancellation of %s: %w", sessionID, err)
	}
	return nil
}
