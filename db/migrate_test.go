package db_test

import (
	"context"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ticketing/concert/db"
	"github.com/ticketing/concert/db/dbtest"
)

// migrationVersions lists the migration files in the source tree, in the order Migrate must apply them.
func migrationVersions(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("migrations/*.sql")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	sort.Strings(files)
	versions := make([]string, len(files))
	for i, f := range files {
		versions[i] = strings.TrimSuffix(filepath.Base(f), ".sql")
	}
	return versions
}

// openEmpty opens a Store on a fresh database that has not been migrated.
func openEmpty(t *testing.T) *db.Store {
	t.Helper()
	store, err := db.Open(t.Context(), dbtest.NewURL(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	return store
}

func TestMigrateAppliesEachFileOnceAndSecondCallAppliesNothing(t *testing.T) {
	t.Parallel()
	store := openEmpty(t)

	applied, err := store.Migrate(t.Context())
	require.NoError(t, err)
	assert.Equal(t, migrationVersions(t), applied)

	applied, err = store.Migrate(t.Context())
	require.NoError(t, err)
	assert.Empty(t, applied)
	assert.Equal(t, len(migrationVersions(t)), count(t, store, `SELECT count(*) FROM schema_migrations`))
	assert.Equal(t, 0, count(t, store, `SELECT count(*) FROM users`), "schema is usable after the second call")
}

func TestMigrateConcurrentCallsOnFreshDatabaseBothSucceed(t *testing.T) {
	t.Parallel()
	dsn := dbtest.NewURL(t)
	// Two pools, as an API and a worker starting at the same moment would have.
	stores := make([]*db.Store, 2)
	for i := range stores {
		s, err := db.Open(t.Context(), dsn)
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		stores[i] = s
	}

	applied := make([][]string, len(stores))
	errs := make([]error, len(stores))
	together(len(stores), func(i int) { applied[i], errs[i] = stores[i].Migrate(t.Context()) })

	for i := range stores {
		require.NoError(t, errs[i], "Migrate call %d", i)
	}
	assert.ElementsMatch(t, migrationVersions(t), append(applied[0], applied[1]...),
		"each migration is applied by exactly one of the calls")
	assert.Equal(t, len(migrationVersions(t)), count(t, stores[0], `SELECT count(*) FROM schema_migrations`))
}

// randomDatabaseURL returns the URL of a database on the test server that does not exist yet, and drops it
// (if anything created it) when the test ends.
func randomDatabaseURL(t *testing.T) (dsn, name string) {
	t.Helper()
	u, err := url.Parse(dbtest.ServerURL())
	require.NoError(t, err)
	name = "concert_ensure_" + uuid.NewString()[:8]
	u.Path = "/" + name
	admin, err := sqlx.Open("postgres", dbtest.ServerURL())
	require.NoError(t, err)
	t.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+pq.QuoteIdentifier(name)+` WITH (FORCE)`); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return u.String(), name
}

// databaseExists asks the server's catalogue whether a database exists.
func databaseExists(t *testing.T, name string) bool {
	t.Helper()
	admin, err := sqlx.Open("postgres", dbtest.ServerURL())
	require.NoError(t, err)
	defer admin.Close()
	var exists bool
	require.NoError(t, admin.GetContext(t.Context(), &exists, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name))
	return exists
}

func TestEnsureDatabaseCreatesMissingDatabase(t *testing.T) {
	t.Parallel()
	dsn, name := randomDatabaseURL(t)
	require.False(t, databaseExists(t, name))

	require.NoError(t, db.EnsureDatabase(t.Context(), dsn))

	assert.True(t, databaseExists(t, name))
	store, err := db.Open(t.Context(), dsn)
	require.NoError(t, err)
	defer store.Close()
	_, err = store.Migrate(t.Context())
	require.NoError(t, err, "the new database takes the schema")
	require.NoError(t, db.EnsureDatabase(t.Context(), dsn), "a second call finds the database and succeeds")
}

func TestEnsureDatabaseLeavesExistingDatabaseAsItIs(t *testing.T) {
	t.Parallel()
	dsn := dbtest.NewURL(t)
	store, err := db.Open(t.Context(), dsn)
	require.NoError(t, err)
	defer store.Close()
	exec(t, store, `CREATE TABLE marker (id INT)`)
	exec(t, store, `INSERT INTO marker VALUES (42)`)

	require.NoError(t, db.EnsureDatabase(t.Context(), dsn))

	assert.Equal(t, 1, count(t, store, `SELECT count(*) FROM marker WHERE id = 42`), "the database was not recreated")
}

func TestEnsureDatabaseRejectsURLsWithoutDatabase(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		dsn  string
	}{
		{name: "key-value DSN instead of URL", dsn: "host=127.0.0.1 dbname=concert"},
		{name: "URL naming no database", dsn: "postgres://postgres@127.0.0.1:5432/"},
		{name: "URL without path", dsn: "postgres://postgres@127.0.0.1:5432"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := db.EnsureDatabase(t.Context(), tt.dsn)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "DATABASE_URL")
		})
	}
}

// TestReadyNamesWhatTheDatabaseLacks proves that readiness fails, and says why, for a database that answers
// but cannot serve this binary: no schema at all (dropped and re-created) or a migration missing.
func TestReadyNamesWhatTheDatabaseLacks(t *testing.T) {
	t.Parallel()
	store := openEmpty(t)
	err := store.Ready(t.Context())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "schema is missing")

	_, err = store.Migrate(t.Context())
	require.NoError(t, err)
	require.NoError(t, store.Ready(t.Context()))

	versions := migrationVersions(t)
	last := versions[len(versions)-1]
	exec(t, store, `DELETE FROM schema_migrations WHERE version = $1`, last)
	err = store.Ready(t.Context())
	require.Error(t, err)
	assert.Contains(t, err.Error(), last)
}
