package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/ticketing/concert/api"
	"github.com/ticketing/concert/db"
	"github.com/ticketing/concert/internal/metrics"
	"github.com/ticketing/concert/worker"
)

// shutdownTimeout bounds a graceful shutdown: in-flight requests and activities get this long to finish.
const shutdownTimeout = 15 * time.Second

// newLogger returns the process logger: text for people in dev, JSON for log pipelines elsewhere.
func newLogger(w io.Writer, level string, text bool) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%s=%q: %w", envLogLevel, level, err)
	}
	opts := &slog.HandlerOptions{Level: l}
	if text {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}

// openStore connects to PostgreSQL and applies pending migrations (safe to run from several processes at
// once: migrations take an advisory lock). create also creates the database if it is missing.
func openStore(ctx context.Context, cfg config, log *slog.Logger, create bool) (*db.Store, error) {
	if create {
		if err := db.EnsureDatabase(ctx, cfg.DatabaseURL); err != nil {
			return nil, err
		}
	}
	store, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	applied, err := store.Migrate(ctx)
	if err != nil {
		_ = store.Close()
		return nil, err
	}
	if len(applied) > 0 {
		log.Info("Database migrated", "applied", strings.Join(applied, ","))
	}
	return store, nil
}

// dialTemporal connects to the Temporal frontend; the SDK logs through the process logger and reports its
// metrics to reg.
func dialTemporal(ctx context.Context, address, namespace string, log *slog.Logger, reg prometheus.Registerer) (client.Client, error) {
	dialCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := client.DialContext(dialCtx, client.Options{
		HostPort: address, Namespace: namespace, Logger: sdklog.NewStructuredLogger(log.With("component", "temporal-sdk")),
		MetricsHandler: metrics.NewTemporalHandler(reg),
	})
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (namespace %s): %w", address, namespace, err)
	}
	return c, nil
}

// startWorker starts the booking worker; Stop waits up to shutdownTimeout for running activities.
func startWorker(c client.Client, store *db.Store) (sdkworker.Worker, error) {
	w := worker.New(c, store, sdkworker.Options{
		WorkerStopTimeout: shutdownTimeout,
	})
	if err := w.Start(); err != nil {
		return nil, fmt.Errorf("start worker: %w", err)
	}
	return w, nil
}

// newAPI builds the HTTP handler from the configuration. /metrics serves reg, which also gets the HTTP
// metrics and the business figures of every concert (queried from PostgreSQL at each scrape).
func newAPI(cfg config, store *db.Store, c client.Client, log *slog.Logger, reg *prometheus.Registry) (http.Handler, error) {
	if err := reg.Register(metrics.NewBusinessCollector(store.ConcertStats, 5*time.Second)); err != nil {
		return nil, fmt.Errorf("register business metrics: %w", err)
	}
	return api.New(store, c, api.Config{
		AdminToken: cfg.AdminToken, TokenSecret: []byte(cfg.TokenSecret), HoldWindow: cfg.HoldWindow,
		AdmissionWindow: cfg.AdmissionWindow, AdmissionTick: cfg.AdmissionTick, Logger: log,
		Instrument: metrics.HTTPMiddleware(reg), Metrics: metrics.Handler(reg),
		UserRateLimit: cfg.UserRateLimit, AddressRateLimit: cfg.AddressRateLimit,
		StartWaitingQueue: cfg.StartWaiting,
	})
}

// listen opens the HTTP listener early, so a taken port fails start-up with a clear message.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (set %s to another address): %w", addr, envHTTPAddr, err)
	}
	return ln, nil
}

// serverTimeouts bound how long a slow (or malicious) client may hold a connection: sending its headers,
// its body, reading the answer, idling between requests. The write timeout leaves room for a reserve or
// payment that waits on its workflow.
var serverTimeouts = struct{ readHeader, read, write, idle time.Duration }{
	readHeader: 5 * time.Second, read: 15 * time.Second, write: 60 * time.Second, idle: 2 * time.Minute,
}

// serve runs the HTTP server on ln until ctx is cancelled, then shuts it down gracefully.
func serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: serverTimeouts.readHeader,
		ReadTimeout:       serverTimeouts.read,
		WriteTimeout:      serverTimeouts.write,
		IdleTimeout:       serverTimeouts.idle,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("Shutting down HTTP server")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// services are what every long-running command runs on: the process logger, the migrated store, a Temporal
// client, and the metrics registry that client and the HTTP layer report to.
type services struct {
	log      *slog.Logger
	store    *db.Store
	temporal client.Client
	reg      *prometheus.Registry
	closers  []func()
}

// bootstrap opens the store (creating the database first when create is set, as dev does), then asks
// temporalAt where Temporal is (dev starts its embedded server there, and registers its stop with onClose)
// and dials it. Close undoes it all, in reverse.
func bootstrap(ctx context.Context, cfg config, log *slog.Logger, create bool,
	temporalAt func(s *services) (address, namespace string, err error)) (_ *services, err error) {
	s := &services{log: log, reg: metrics.NewRegistry()}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.store, err = openStore(ctx, cfg, log, create); err != nil {
		return nil, err
	}
	s.onClose(func() { _ = s.store.Close() })
	address, namespace, err := temporalAt(s)
	if err != nil {
		return nil, err
	}
	if s.temporal, err = dialTemporal(ctx, address, namespace, log, s.reg); err != nil {
		return nil, err
	}
	s.onClose(s.temporal.Close)
	return s, nil
}

// external is where `concert api` and `concert worker` find Temporal: in the configuration.
func external(cfg config) func(*services) (string, string, error) {
	return func(*services) (string, string, error) { return cfg.TemporalAddress, cfg.TemporalNamespace, nil }
}

// onClose registers f to run at Close.
func (s *services) onClose(f func()) { s.closers = append(s.closers, f) }

// Close stops what bootstrap started, last first.
func (s *services) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

// runAPI serves the HTTP API against an external Temporal and PostgreSQL.
func runAPI(ctx context.Context, cfg config) error {
	log, err := newLogger(os.Stderr, cfg.LogLevel, false)
	if err != nil {
		return err
	}
	s, err := bootstrap(ctx, cfg, log, false, external(cfg))
	if err != nil {
		return err
	}
	defer s.Close()
	h, err := newAPI(cfg, s.store, s.temporal, log, s.reg)
	if err != nil {
		return err
	}
	ln, err := listen(cfg.HTTPAddr)
	if err != nil {
		return err
	}
	log.Info("API listening", "addr", ln.Addr().String())
	return serve(ctx, ln, h, log)
}

// runWorker runs the booking worker until ctx is cancelled.
func runWorker(ctx context.Context, cfg config) error {
	log, err := newLogger(os.Stderr, cfg.LogLevel, false)
	if err != nil {
		return err
	}
	s, err := bootstrap(ctx, cfg, log, false, external(cfg))
	if err != nil {
		return err
	}
	defer s.Close()
	if cfg.MetricsAddr != "" {
		ln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("listen for metrics on %s (set %s): %w", cfg.MetricsAddr, envMetricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", metrics.Handler(s.reg))
		go func() {
			if err := serve(ctx, ln, mux, log); err != nil {
				log.Error("Metrics server stopped", "error", err)
			}
		}()
		log.Info("Worker metrics", "addr", ln.Addr().String())
	}
	if err := ensureSearchAttributes(ctx, s.temporal, cfg.TemporalNamespace, log); err != nil {
		return err
	}
	w, err := startWorker(s.temporal, s.store)
	if err != nil {
		return err
	}
	log.Info("Worker running", "temporal", cfg.TemporalAddress, "namespace", cfg.TemporalNamespace)
	<-ctx.Done()
	log.Info("Stopping worker")
	w.Stop()
	return nil
}

// runMigrate applies the migrations and reports them.
func runMigrate(ctx context.Context, cfg config, out io.Writer) error {
	log, err := newLogger(os.Stderr, cfg.LogLevel, false)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, cfg, log, false)
	if err != nil {
		return err
	}
	defer func() { _ = store.Close() }()
	fmt.Fprintln(out, "database is up to date")
	return nil
}
