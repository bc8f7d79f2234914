package db

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock is the advisory lock key that serialises migrations, so an API and a worker starting at the
// same moment do not apply the same file twice.
const migrationLock = 7_210_424_001

// Migrate applies, in file-name order, every embedded migration not yet recorded in schema_migrations. Each
// file runs in its own transaction together with its record, so a failure leaves no half-applied file.
func (s *Store) Migrate(ctx context.Context) (applied []string, err error) {
	conn, err := s.db.Connx(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	defer func() { _ = conn.Close() }() // returns it to the pool
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return nil, fmt.Errorf("migrate: take lock: %w", err)
	}
	defer func() {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock)
	}()

	const createTable = `
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    TEXT        PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)`
	if _, err := conn.ExecContext(ctx, createTable); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	names, err := migrationFiles()
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	for _, name := range names {
		version := versionOf(name)
		var done bool
		if err := conn.GetContext(ctx, &done, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, version); err != nil {
			return applied, fmt.Errorf("migrate %s: %w", version, err)
		}
		if done {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return applied, fmt.Errorf("migrate %s: %w", version, err)
		}
		tx, err := conn.BeginTxx(ctx, nil)
		if err != nil {
			return applied, fmt.Errorf("migrate %s: %w", version, err)
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			_ = tx.Rollback()
			return applied, fmt.Errorf("migrate %s: %w", version, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, version); err != nil {
			_ = tx.Rollback()
			return applied, fmt.Errorf("migrate %s: %w", version, err)
		}
		if err := tx.Commit(); err != nil {
			return applied, fmt.Errorf("migrate %s: commit: %w", version, err)
		}
		applied = append(applied, version)
	}
	return applied, nil
}

// migrationFiles are the embedded migrations in the order they apply.
func migrationFiles() ([]string, error) {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	sort.Strings(names)
	return names, err
}

// versionOf is the version a migration file is recorded under in schema_migrations.
func versionOf(name string) string {
	return strings.TrimSuffix(strings.TrimPrefix(name, "migrations/"), ".sql")
}

// PendingMigrations lists, in order, the embedded migrations the database has not applied (all of them when
// it has no schema_migrations table), without applying any: tools that must not change a database, such as
// `concert check`, use it to say that the schema is missing instead of failing on a missing table.
func (s *Store) PendingMigrations(ctx context.Context) ([]string, error) {
	names, err := migrationFiles()
	if err != nil {
		return nil, fmt.Errorf("pending migrations: %w", err)
	}
	var tracked bool
	if err := s.db.GetContext(ctx, &tracked, `SELECT to_regclass('schema_migrations') IS NOT NULL`); err != nil {
		return nil, fmt.Errorf("pending migrations: %w", err)
	}
	var applied []string
	if tracked {
		if err := s.db.SelectContext(ctx, &applied, `SELECT version FROM schema_migrations`); err != nil {
			return nil, fmt.Errorf("pending migrations: %w", err)
		}
	}
	pending := []string{}
	for _, name := range names {
		if v := versionOf(name); !slices.Contains(applied, v) {
			pending = append(pending, v)
		}
	}
	return pending, nil
}

// Ready checks that the database answers and holds the schema this binary was built for: every embedded
// migration applied. A database dropped and re-created, wiped, or older than the binary answers a ping but
// fails every request, so readiness probes ask this, not a ping.
func (s *Store) Ready(ctx context.Context) error {
	pending, err := s.PendingMigrations(ctx)
	if err != nil {
		return err
	}
	if len(pending) > 0 {
		return fmt.Errorf("the database schema is missing or behind this binary (not applied: %s); "+
			"restart the service or run 'concert migrate'", strings.Join(pending, ", "))
	}
	return nil
}
