// Package dbtest gives tests a real, migrated PostgreSQL database of their own that is dropped when the
// test ends. It connects to CONCERT_TEST_DATABASE_URL, or to postgres://postgres@127.0.0.1:5432/postgres,
// the server every development and CI machine of this project runs.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/ticketing/concert/db"
)

// ServerURL is the maintenance database of the test PostgreSQL server.
func ServerURL() string {
	if u := os.Getenv("CONCERT_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// NewURL creates an empty database with a random name and returns its URL; the database is dropped when
// the test ends. A test that cannot reach PostgreSQL fails: integration tests never skip silently.
func NewURL(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	admin, err := sqlx.Open("postgres", ServerURL())
	if err != nil {
		t.Fatalf("dbtest: open %s: %v", ServerURL(), err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "concert_test_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)); err != nil {
		t.Fatalf("dbtest: create database (is PostgreSQL running on %s?): %v", ServerURL(), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)"); err != nil {
			t.Errorf("dbtest: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(ServerURL())
	if err != nil {
		t.Fatalf("dbtest: parse %s: %v", ServerURL(), err)
	}
	u.Path = "/" + name
	return u.String()
}

// MaxConns is the connection pool size of a test store: enough for the concurrency tests, small enough that
// many test databases fit under PostgreSQL's default max_connections (100).
const MaxConns = 10

// New returns a Store on a fresh, migrated database that is dropped when the test ends.
func New(t testing.TB) *db.Store {
	t.Helper()
	store, _ := Open(t)
	return store
}

// Open is New that also returns the database's URL, for a test that must reach it by another road.
func Open(t testing.TB) (*db.Store, string) {
	t.Helper()
	ctx := context.Background()
	url := NewURL(t)
	store, err := db.Open(ctx, url)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() })
	store.SetMaxConns(MaxConns)
	if _, err := store.Migrate(ctx); err != nil {
		t.Fatalf("dbtest: migrate: %v", err)
	}
	return store, url
}
