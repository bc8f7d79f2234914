//go:build !nodev

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/ticketing/concert/db"
	"github.com/ticketing/concert/internal/devserver"
	"github.com/ticketing/concert/workflows"
)

// The demo data `concert dev` seeds, documented in the README.
const (
	demoConcertCode = "DEMO"
	demoTitle       = "Demo Night"
	demoMaxActive   = 50
	demoSeats       = 50
	demoPrice       = 110_000
)

// demoDates are the two performances of the demo concert.
var demoDates = []string{"2026-12-24T19:00:00", "2026-12-25T19:00:00"}

// demoUsers are the demo users with fixed UUIDs and their opening balances: one can buy a seat at once, one
// can buy several, one has nothing (to see a 402).
var demoUsers = []struct {
	UUID    string
	Balance int64
}{
	{"11111111-1111-4111-8111-111111111111", 200_000},
	{"22222222-2222-4222-8222-222222222222", 1_000_000},
	{"33333333-3333-4333-8333-333333333333", 0},
}

// runDev runs PostgreSQL-backed booking with an embedded Temporal server, its Web UI, the worker and the API
// in one process, seeded with demo data.
func runDev(ctx context.Context, cfg config, out io.Writer) error {
	log, err := newLogger(os.Stderr, cfg.LogLevel, true)
	if err != nil {
		return err
	}
	if cfg.TemporalOnly {
		return runDevTemporal(ctx, cfg, log, out)
	}
	var srv *devserver.Server
	s, err := bootstrap(ctx, cfg, log, true, func(s *services) (string, string, error) {
		if err := seedDemo(ctx, s.store); err != nil {
			return "", "", err
		}
		var err error
		if srv, err = startDevTemporal(ctx, cfg, log); err != nil {
			return "", "", err
		}
		s.onClose(func() {
			if err := srv.Stop(); err != nil {
				log.Warn("Stopping embedded Temporal", "error", err)
			}
		})
		return srv.FrontendAddress(), srv.Namespace(), nil
	})
	if err != nil {
		return err
	}
	defer s.Close()
	w, err := startWorker(s.temporal, s.store)
	if err != nil {
		return err
	}
	defer w.Stop()
	h, err := newAPI(cfg, s.store, s.temporal, log, s.reg)
	if err != nil {
		return err
	}
	ln, err := listen(cfg.HTTPAddr)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, `
concert dev is running
  API          http://%s/api/v1   (OpenAPI: http://%s/openapi.yaml, metrics: /metrics)
  Temporal UI  %s
  Temporal     %s  namespace %s  (data in %s)
  Admin token  %s
  Demo concert %s (%s), dates %v, %d seats each at %d won, maxActive %d
  Demo users   %s (balance %d), %s (balance %d), %s (balance %d)
Press Ctrl+C to stop.

`, ln.Addr(), ln.Addr(), srv.UIAddress(), srv.FrontendAddress(), srv.Namespace(), cfg.DataDir, cfg.AdminToken,
		demoConcertCode, demoTitle, demoDates, demoSeats, demoPrice, demoMaxActive,
		demoUsers[0].UUID, demoUsers[0].Balance, demoUsers[1].UUID, demoUsers[1].Balance, demoUsers[2].UUID, demoUsers[2].Balance)
	return serve(ctx, ln, h, log)
}

// startDevTemporal starts the embedded Temporal server with the workflows' search attributes registered.
func startDevTemporal(ctx context.Context, cfg config, log *slog.Logger) (*devserver.Server, error) {
	opts := devserver.DefaultOptions()
	opts.DataDir, opts.Port, opts.UIPort, opts.Namespace = cfg.DataDir, cfg.TemporalPort, cfg.TemporalUIPort, cfg.TemporalNamespace
	opts.Logger = log.With("component", "temporal-server")
	opts.SearchAttributes = workflows.SearchAttributes()
	srv, err := devserver.Start(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("start embedded Temporal (set %s/%s to free ports, %s to another directory): %w",
			envTemporalPort, envTemporalUIPort, envDataDir, err)
	}
	return srv, nil
}

// runDevTemporal runs only the embedded Temporal server, so `concert api` and `concert worker` can run as
// separate processes against it on one machine, as they do in production (and as the chaos test needs).
func runDevTemporal(ctx context.Context, cfg config, log *slog.Logger, out io.Writer) error {
	srv, err := startDevTemporal(ctx, cfg, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Temporal %s namespace %s (data in %s), UI %s\n", srv.FrontendAddress(), srv.Namespace(), cfg.DataDir, srv.UIAddress())
	<-ctx.Done()
	return srv.Stop()
}

// seedDemo creates the demo concert and users unless they exist; running it again changes nothing.
func seedDemo(ctx context.Context, store *db.Store) error {
	c := db.NewConcert{Code: demoConcertCode, Title: demoTitle, MaxActive: demoMaxActive}
	for _, d := range demoDates {
		t, err := time.Parse("2006-01-02T15:04:05", d)
		if err != nil {
			return err
		}
		c.Dates = append(c.Dates, db.NewConcertDate{Date: t, Seats: demoSeats, Price: demoPrice})
	}
	if err := store.CreateConcert(ctx, c); err != nil && !errors.Is(err, db.ErrDuplicate) {
		return fmt.Errorf("seed demo concert: %w", err)
	}
	for _, u := range demoUsers {
		_, err := store.CreateUserWithID(ctx, u.UUID)
		if errors.Is(err, db.ErrDuplicate) {
			continue
		}
		if err != nil {
			return fmt.Errorf("seed demo user: %w", err)
		}
		if u.Balance > 0 {
			if _, err := store.TopUp(ctx, u.UUID, u.Balance); err != nil {
				return fmt.Errorf("seed demo balance: %w", err)
			}
		}
	}
	return nil
}
