package db

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

// User is a customer with a prepaid balance in won.
type User struct {
	UUID      string    `db:"uuid"`
	Balance   int64     `db:"balance"`
	CreatedAt time.Time `db:"created_at"`
}

// CreateUser registers a new user with a random UUID and a zero balance.
func (s *Store) CreateUser(ctx context.Context) (User, error) {
	return s.CreateUserWithID(ctx, uuid.NewString())
}

// CreateUserWithID registers a user under a chosen UUID, for seeding demo users; ErrDuplicate if taken.
func (s *Store) CreateUserWithID(ctx context.Context, id string) (User, error) {
	const q = `INSERT INTO users (uuid) VALUES ($1) RETURNING uuid, balance, created_at`
	var u User
	if err := s.db.GetContext(ctx, &u, q, id); err != nil {
		if isUniqueViolation(err, "") {
			return User{}, fmt.Errorf("user %s: %w", id, ErrDuplicate)
		}
		return User{}, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

// GetUser returns a user; ErrNotFound if there is none with that UUID.
func (s *Store) GetUser(ctx context.Context, id string) (User, error) {
	const q = `SELECT uuid, balance, created_at FROM users WHERE uuid = $1`
	var u User
	if err := s.db.GetContext(ctx, &u, q, id); err != nil {
		return User{}, noRows(err, "user "+id)
	}
	return u, nil
}

// TopUp adds amount won to a user's balance and records the credit in the ledger, in one transaction.
func (s *Store) TopUp(ctx context.Context, id string, amount int64) (User, error) {
	return s.TopUpOnce(ctx, id, amount, "")
}

// TopUpOnce is TopUp for a retried request: a non-empty requestKey (the client's Idempotency-Key) is stored
// with the ledger row, and a second top-up with the same key credits nothing and returns the balance as it
// is.
func (s *Store) TopUpOnce(ctx context.Context, id string, amount int64, requestKey string) (User, error) {
	const ledger = `
INSERT INTO ledger (user_uuid, delta, kind, request_key) VALUES ($1, $2, 'TOPUP', NULLIF($3, ''))
ON CONFLICT (user_uuid, request_key) WHERE request_key IS NOT NULL DO NOTHING`
	const credit = `UPDATE users SET balance = balance + $2 WHERE uuid = $1 RETURNING uuid, balance, created_at`
	const current = `SELECT uuid, balance, created_at FROM users WHERE uuid = $1`
	var u User
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		// Lock the user first, so the ledger insert below cannot fail on a missing user.
		if err := tx.GetContext(ctx, &u, current+" FOR UPDATE", id); err != nil {
			return noRows(err, "user "+id)
		}
		r, err := tx.ExecContext(ctx, ledger, id, amount, requestKey)
		if err != nil {
			return fmt.Errorf("record top-up: %w", err)
		}
		if n, err := r.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return nil // this key credited already
		}
		return tx.GetContext(ctx, &u, credit, id, amount)
	})
	if err != nil {
		return User{}, fmt.Errorf("top up: %w", err)
	}
	return u, nil
}
