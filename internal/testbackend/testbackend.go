// Package testbackend starts everything behind the HTTP API inside a test: a fresh migrated PostgreSQL
// database, an embedded in-memory Temporal server with the search attributes registered, a Temporal client
// reporting to a metrics registry, and the real booking worker. It does not import package api, so both
// internal/teststack (which adds the API) and package api's own fuzz tests can build on it.
package testbackend

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // the driver of SQL
	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/ticketing/concert/db"
	"github.com/ticketing/concert/db/dbtest"
	"github.com/ticketing/concert/internal/devserver"
	"github.com/ticketing/concert/internal/metrics"
	"github.com/ticketing/concert/worker"
	"github.com/ticketing/concert/workflows"
)

// Backend is a running store, Temporal server, client and worker; Start stops them when the test ends.
type Backend struct {
	Store *db.Store
	// DatabaseURL is the store's database; SQL is a pool on it for tests that change rows behind the
	// service's back (a lapsed deadline, a wiped table), as a fault or an operator would.
	DatabaseURL string
	SQL         *sqlx.DB
	Temporal    client.Client
	Server      *devserver.Server
	// Registry has the Temporal SDK's metrics and the business figures; the API adds its own.
	Registry *prometheus.Registry

	worker     sdkworker.Worker
	stopWorker sync.Once
}

// Start brings up a backend whose components log to log. With webUI the Temporal server also serves its
// Web UI (Server.UIAddress), for tests that act as an operator clicking in it.
func Start(tb testing.TB, log *slog.Logger, webUI bool) *Backend {
	tb.Helper()
	store, url := dbtest.Open(tb)
	sqlDB, err := sqlx.Open("postgres", url)
	if err != nil {
		tb.Fatalf("testbackend: open database: %v", err)
	}
	tb.Cleanup(func() { _ = sqlDB.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ui := devserver.NoUI
	if webUI {
		ui = 0 // a free port
	}
	// The server's ports are picked free, released, then bound: with many stacks and connections opening at
	// once on 2 cores, another listener or an outgoing connection's ephemeral port can take one in between.
	// That is a test-machine race, not a failure of the code under test: pick again.
	var srv *devserver.Server
	for attempt := 0; attempt < 3; attempt++ {
		srv, err = devserver.Start(ctx, devserver.Options{UIPort: ui, Logger: log, SearchAttributes: workflows.SearchAttributes()})
		if err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	if err != nil {
		tb.Fatalf("testbackend: start Temporal: %v", err)
	}
	tb.Cleanup(func() { _ = srv.Stop() })
	reg := metrics.NewRegistry()
	c, err := client.DialContext(ctx, client.Options{
		HostPort: srv.FrontendAddress(), Namespace: srv.Namespace(), Logger: sdklog.NewStructuredLogger(log),
		MetricsHandler: metrics.NewTemporalHandler(reg),
	})
	if err != nil {
		tb.Fatalf("testbackend: dial Temporal: %v", err)
	}
	tb.Cleanup(c.Close)
	w := worker.New(c, store, sdkworker.Options{})
	if err := w.Start(); err != nil {
		tb.Fatalf("testbackend: start worker: %v", err)
	}
	b := &Backend{Store: store, DatabaseURL: url, SQL: sqlDB, Temporal: c, Server: srv, Registry: reg, worker: w}
	tb.Cleanup(b.StopWorker)
	reg.MustRegister(metrics.NewBusinessCollector(store.ConcertStats, 5*time.Second))
	return b
}

// StopWorker stops the worker, as a crashed or stuck worker fleet would: workflows stop making progress
// while Temporal goes on answering. Stopping twice is harmless.
func (b *Backend) StopWorker() {
	b.stopWorker.Do(func() { b.worker.Stop() })
}
