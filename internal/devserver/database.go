package devserver

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/persistence/sql/sqlplugin"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	sqliteschema "go.temporal.io/server/schema/sqlite"
)

// sqliteDriverName is the database/sql driver that the SQLite persistence plugin registers (modernc.org/sqlite,
// pure Go). Importing the plugin package is what makes it available.
const sqliteDriverName = "sqlite"

// prepareDatabase makes the SQLite database ready before the server opens it: schema in place, namespace present
// (with the search attributes when the namespace is new). For a DataDir it also takes the directory lock so two
// dev stacks never share one database, which would corrupt both.
func prepareDatabase(ctx context.Context, opts Options) (*config.SQL, *dirLock, error) {
	cfg := &config.SQL{PluginName: sqliteplugin.PluginName}
	var lock *dirLock
	if opts.DataDir == "" {
		// A name unique in the process: shared-cache in-memory databases with the same name are one database.
		// The plugin creates the schema itself when it opens an in-memory database.
		cfg.DatabaseName = "devserver-" + rand.Text()
		cfg.ConnectAttributes = map[string]string{"mode": "memory", "cache": "shared"}
	} else {
		path, err := databasePath(opts.DataDir)
		if err != nil {
			return nil, nil, err
		}
		if lock, err = lockDir(filepath.Dir(path)); err != nil {
			return nil, nil, err
		}
		if err := ensureSchema(ctx, path); err != nil {
			_ = lock.release() // the schema error is the one to report
			return nil, nil, err
		}
		cfg.DatabaseName = path
		cfg.ConnectAttributes = map[string]string{
			"mode": "rwc",
			// WAL with synchronous=NORMAL: commits survive a crash of the process (what a dev server meets) without
			// an fsync per commit, which would make every workflow step wait on the disk.
			"journal_mode": "wal",
			"synchronous":  "normal",
		}
	}

	ns, err := sqliteschema.NewNamespaceConfig(clusterName, opts.Namespace, false, opts.SearchAttributes)
	if err == nil {
		// A no-op when the namespace exists: search attributes added since are registered after start.
		err = sqliteschema.CreateNamespaces(cfg, ns)
	}
	if err != nil {
		if lock != nil {
			_ = lock.release() // the namespace error is the one to report
		}
		return nil, nil, fmt.Errorf("devserver: create namespace %q: %w", opts.Namespace, err)
	}
	return cfg, lock, nil
}

// databasePath returns the absolute path of the SQLite file in dataDir, creating the directory. The plugin puts
// the path into a "file:" URI unescaped, so characters that end the path in a URI are refused here.
func databasePath(dataDir string) (string, error) {
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		return "", fmt.Errorf("devserver: data dir %q: %w", dataDir, err)
	}
	if strings.ContainsAny(dir, "?#") {
		return "", fmt.Errorf("devserver: data dir %q must not contain '?' or '#'", dir)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("devserver: create data dir: %w", err)
	}
	return filepath.Join(dir, DatabaseFileName), nil
}

// ensureSchema creates the Temporal and visibility schema in the SQLite file at path unless it is already there.
// It runs in one transaction (SQLite DDL is transactional), so a start interrupted half-way leaves either no schema
// or all of it, never a file that every later start would fail on.
func ensureSchema(ctx context.Context, path string) (err error) {
	db, err := sql.Open(sqliteDriverName, "file:"+path+"?mode=rwc")
	if err != nil {
		return fmt.Errorf("devserver: open %s: %w", path, err)
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("devserver: close %s: %w", path, cerr)
		}
	}()

	var tables int
	const q = `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'namespaces'`
	if err := db.QueryRowContext(ctx, q).Scan(&tables); err != nil {
		return fmt.Errorf("devserver: read schema of %s: %w", path, err)
	}
	if tables > 0 {
		return nil
	}

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("devserver: begin schema setup: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback() // the setup error is the one to report
		}
	}()
	if err := sqliteschema.SetupSchemaOnDB(txSchemaDB{ctx: ctx, tx: tx}); err != nil {
		return fmt.Errorf("devserver: create schema in %s: %w", path, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("devserver: commit schema in %s: %w", path, err)
	}
	return nil
}

// txSchemaDB lets the schema package's SetupSchemaOnDB, which only calls Exec, run its statements inside one
// transaction. Every other AdminDB method is deliberately absent (nil embedded interface): calling one panics
// rather than silently running outside the transaction.
type txSchemaDB struct {
	sqlplugin.AdminDB
	ctx context.Context
	tx  *sql.Tx
}

func (d txSchemaDB) Exec(stmt string, args ...any) error {
	if _, err := d.tx.ExecContext(d.ctx, stmt, args...); err != nil {
		return err
	}
	return nil
}

// ErrDataDirLocked is returned by Start when another dev server (in this process or another) uses the data
// directory; `concert dev` can test for it with errors.Is and tell the user a stack is already running.
var ErrDataDirLocked = errors.New("devserver: data dir is in use by another dev server")
