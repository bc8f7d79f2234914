// Package db is the booking service's store of record: PostgreSQL through sqlx and lib/pq, with the schema
// kept as embedded SQL migrations. It decides who owns a seat (conditional UPDATEs and unique indexes), moves
// money (every change a ledger row) and keeps the session read model the API serves from.
//
// All SQL of the project lives here. The package knows nothing of HTTP or Temporal; driver errors leave it
// as the sentinel errors below, wrapped with %w.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/ticketing/concert/booking"
)

// Sentinel errors. Callers test them with errors.Is; the store wraps them with the detail of what failed.
var (
	// ErrNotFound means the row asked for does not exist. It is booking's, so that code which reaches the
	// store through an interface (the door) can tell it without importing db.
	ErrNotFound = booking.ErrNotFound
	// ErrDuplicate means a row with the same key exists already.
	ErrDuplicate = errors.New("already exists")
	// ErrSeatTaken means another session holds or bought the seat.
	ErrSeatTaken = errors.New("seat is held or sold")
	// ErrAlreadyHolding means the session holds (or bought) another seat already.
	ErrAlreadyHolding = errors.New("session already holds a seat")
	// ErrNotActive means the session is not admitted, or its admission window has passed.
	ErrNotActive = errors.New("session is not admitted")
	// ErrNoSeatHeld means the session holds no seat to pay for.
	ErrNoSeatHeld = errors.New("session holds no seat")
	// ErrOrderFull means the session's order holds as many seats as its concert lets one order hold.
	ErrOrderFull = errors.New("order holds as many seats as it may")
	// ErrOtherDate means the session's order holds seats of another performance: an order is for one.
	ErrOtherDate = errors.New("order holds seats of another performance")
	// ErrTicketLimit means the fan holds or bought as many tickets of the concert as it allows.
	ErrTicketLimit = errors.New("ticket limit reached")
	// ErrHoldExpired means the session's hold lapsed: the seat can no longer be sold to it.
	ErrHoldExpired = errors.New("hold has expired")
	// ErrInsufficientBalance means the user's balance is below the price.
	ErrInsufficientBalance = errors.New("balance is too low")
)

// Store is the booking service's access to PostgreSQL. It is safe for concurrent use.
type Store struct {
	db *sqlx.DB
	// stmts holds the prepared statements of the hot paths (see prepared), by query text.
	stmts sync.Map
	// repairAfter is how far past its window a live session must be for a waiting-room step to end it
	// (see AdmitNext); in nanoseconds, 0 meaning DefaultRepairAfter.
	repairAfter atomic.Int64
}

// DefaultRepairAfter is how far past the end of its admission or hold window a live session must be before a
// waiting-room step ends it: its own workflow ends it at the deadline, unless the workflow was terminated (or
// never ran), and a worker that is merely behind catches up well within this.
const DefaultRepairAfter = 2 * time.Minute

// SetRepairAfter changes how far past its window a live session must be for a waiting-room step to end it;
// 0 restores DefaultRepairAfter.
func (s *Store) SetRepairAfter(d time.Duration) { s.repairAfter.Store(int64(d)) }

func (s *Store) repairGrace() time.Duration {
	if d := time.Duration(s.repairAfter.Load()); d > 0 {
		return d
	}
	return DefaultRepairAfter
}

// prepared returns q as a statement prepared once per pooled connection and reused. The driver otherwise
// parses and plans every query afresh, and for the token's one statement planning costs more than running
// it: in a stampede that is most of the database's CPU. Statements are prepared lazily, so a Store opened
// before the migrations ran works once they have.
func (s *Store) prepared(ctx context.Context, q string) (*sqlx.Stmt, error) {
	if st, ok := s.stmts.Load(q); ok {
		return st.(*sqlx.Stmt), nil
	}
	st, err := s.db.PreparexContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("prepare statement: %w", err)
	}
	if prev, loaded := s.stmts.LoadOrStore(q, st); loaded {
		_ = st.Close()
		return prev.(*sqlx.Stmt), nil
	}
	return st, nil
}

// Open connects to the database at dsn and checks the connection, so a wrong URL fails at start-up rather
// than on the first request.
func Open(ctx context.Context, dsn string) (*Store, error) {
	conn, err := sqlx.Open("postgres", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	conn.SetMaxOpenConns(32)
	conn.SetMaxIdleConns(32)
	conn.SetConnMaxIdleTime(5 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := conn.PingContext(pingCtx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("connect to database %s: %w", redact(dsn), err)
	}
	return &Store{db: conn}, nil
}

// SetMaxConns bounds the connection pool (Open sets 32). Tests that run many stores at once use fewer, so
// they stay under the server's max_connections.
func (s *Store) SetMaxConns(n int) {
	s.db.SetMaxOpenConns(n)
	s.db.SetMaxIdleConns(n)
}

// Close closes the connection pool.
func (s *Store) Close() error {
	s.stmts.Range(func(_, st any) bool {
		_ = st.(*sqlx.Stmt).Close()
		return true
	})
	return s.db.Close()
}

// EnsureDatabase creates the database named in dsn if it does not exist, connecting to the server's
// maintenance database "postgres" to do so. The dev command uses it so a fresh machine needs no setup.
func EnsureDatabase(ctx context.Context, dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return fmt.Errorf("DATABASE_URL must be a postgres:// URL: %q", redact(dsn))
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" {
		return fmt.Errorf("DATABASE_URL names no database: %q", redact(dsn))
	}
	admin := *u
	admin.Path = "/postgres"
	conn, err := sqlx.Open("postgres", admin.String())
	if err != nil {
		return fmt.Errorf("open maintenance database: %w", err)
	}
	defer func() { _ = conn.Close() }()
	var exists bool
	if err := conn.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name); err != nil {
		return fmt.Errorf("connect to %s: %w", redact(admin.String()), err)
	}
	if exists {
		return nil
	}
	if _, err := conn.ExecContext(ctx, `CREATE DATABASE `+pq.QuoteIdentifier(name)); err != nil {
		var pqErr *pq.Error
		if errors.As(err, &pqErr) && pqErr.Code == "42P04" { // created meanwhile by another process
			return nil
		}
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// redact hides the password of a connection URL so it can be logged.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// isUniqueViolation reports whether err is PostgreSQL's unique_violation, optionally on one constraint.
func isUniqueViolation(err error, constraint string) bool {
	var pqErr *pq.Error
	if !errors.As(err, &pqErr) || pqErr.Code != "23505" {
		return false
	}
	return constraint == "" || pqErr.Constraint == constraint
}

// isCheckViolation reports whether err is a violation of the named CHECK constraint.
func isCheckViolation(err error, constraint string) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && pqErr.Code == "23514" && pqErr.Constraint == constraint
}

// inTx runs fn in a transaction that is rolled back unless fn succeeds and the commit does.
func (s *Store) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// noRows turns sql.ErrNoRows into ErrNotFound wrapped with what was looked for.
func noRows(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// micros converts a duration to whole microseconds, the unit the SQL below multiplies intervals by.
func micros(d time.Duration) int64 { return d.Microseconds() }
