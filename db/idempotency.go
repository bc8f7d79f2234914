package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// Idempotency states.
const (
	IdemInProgress = "IN_PROGRESS"
	IdemDone       = "DONE"
)

// IdemRecord is what is known of one idempotency key.
type IdemRecord struct {
	RequestHash string         `db:"request_hash"`
	State       string         `db:"state"`
	Status      sql.NullInt32  `db:"status"`
	ContentType sql.NullString `db:"content_type"`
	Body        []byte         `db:"body"`
}

// BeginIdempotent claims an idempotency key for a request. started is true when the caller should run the
// request: the key is new, expired, or its earlier request was abandoned (its lease ran out, e.g. the API
// crashed) with the same body. Otherwise rec says what is there: a request in progress, a finished response
// to replay, or a different body under the same key.
func (s *Store) BeginIdempotent(ctx context.Context, scope, key, hash string, ttl, lease time.Duration) (rec IdemRecord, started bool, err error) {
	const insert = `
INSERT INTO idempotency_keys (scope, key, request_hash, state, locked_until, expires_at)
VALUES ($1, $2, $3, 'IN_PROGRESS', now() + $4 * interval '1 microsecond', now() + $5 * interval '1 microsecond')
ON CONFLICT (scope, key) DO NOTHING`
	const current = `
SELECT request_hash, state, status, content_type, body,
       expires_at < now() AS expired, locked_until < now() AS abandoned
FROM idempotency_keys WHERE scope = $1 AND key = $2 FOR UPDATE`
	const restart = `
UPDATE idempotency_keys
SET request_hash = $3, state = 'IN_PROGRESS', status = NULL, content_type = NULL, body = NULL,
    locked_until = now() + $4 * interval '1 microsecond', expires_at = now() + $5 * interval '1 microsecond'
WHERE scope = $1 AND key = $2`
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		r, err := tx.ExecContext(ctx, insert, scope, key, hash, micros(lease), micros(ttl))
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil {
			return err
		} else if n == 1 {
			started = true
			return nil
		}
		var row struct {
			IdemRecord
			Expired   bool `db:"expired"`
			Abandoned bool `db:"abandoned"`
		}
		if err := tx.GetContext(ctx, &row, current, scope, key); err != nil {
			if errors.Is(err, sql.ErrNoRows) { // expired and purged between the two statements
				return fmt.Errorf("idempotency key %s vanished; retry", key)
			}
			return err
		}
		takeOver := row.Expired || (row.State == IdemInProgress && row.Abandoned && row.RequestHash == hash)
		if !takeOver {
			rec = row.IdemRecord
			return nil
		}
		if _, err := tx.ExecContext(ctx, restart, scope, key, hash, micros(lease), micros(ttl)); err != nil {
			return err
		}
		started = true
		return nil
	})
	if err != nil {
		return IdemRecord{}, false, fmt.Errorf("claim idempotency key: %w", err)
	}
	return rec, started, nil
}

// FinishIdempotent stores the response of a request so a retry with the same key gets it again.
func (s *Store) FinishIdempotent(ctx context.Context, scope, key string, status int, contentType string, body []byte) error {
	const q = `
UPDATE idempotency_keys SET state = 'DONE', status = $3, content_type = $4, body = $5
WHERE scope = $1 AND key = $2`
	if _, err := s.db.ExecContext(ctx, q, scope, key, status, contentType, body); err != nil {
		return fmt.Errorf("store idempotent response: %w", err)
	}
	return nil
}

// AbandonIdempotent forgets a key whose request failed for a reason a retry may not meet (a 5xx), so the
// retry runs the request again.
func (s *Store) AbandonIdempotent(ctx context.Context, scope, key string) error {
	const q = `DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND state = 'IN_PROGRESS'`
	if _, err := s.db.ExecContext(ctx, q, scope, key); err != nil {
		return fmt.Errorf("abandon idempotency key: %w", err)
	}
	return nil
}

// PurgeIdempotency deletes up to limit expired keys and says how many went.
func (s *Store) PurgeIdempotency(ctx context.Context, limit int) (int64, error) {
	const q = `
DELETE FROM idempotency_keys WHERE ctid IN (
    SELECT ctid FROM idempotency_keys WHERE expires_at < now() LIMIT $1)`
	r, err := s.db.ExecContext(ctx, q, limit)
	if err != nil {
		return 0, fmt.Errorf("purge idempotency keys: %w", err)
	}
	return r.RowsAffected()
}
