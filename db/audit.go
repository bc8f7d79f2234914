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
