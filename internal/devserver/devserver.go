// Package devserver runs a complete Temporal server (frontend, history, matching and worker services, SQLite
// persistence and the Temporal Web UI) inside the current process.
//
// It exists so that `concert dev` can run the whole stack as one process and so that integration tests can start a
// real, disposable server without Docker or the Temporal CLI. It is for development and tests only: production runs
// against a Temporal cluster, and nothing outside the dev command and tests may import this package.
//
// The package owns the server's configuration (ports, SQLite file, namespace, search attributes, dynamic config) and
// must not hold application logic: workflows, workers and clients are the caller's business.
package devserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	enums "go.temporal.io/api/enums/v1"
	"go.temporal.io/server/temporal"
)

// Defaults used by DefaultOptions. They match the Temporal CLI's dev server so that tools and habits that expect
// "localhost:7233" and "http://localhost:8233" keep working.
const (
	DefaultIP        = "127.0.0.1" // loopback: a dev stack is not meant to be reachable from the network
	DefaultPort      = 7233        // the port every Temporal client and tool tries first
	DefaultUIPort    = 8233        // the Temporal CLI dev server's UI port
	DefaultNamespace = "default"   // the namespace SDK clients use when none is set
)

// NoUI is the UIPort value that disables the Web UI; tests that only need gRPC use it to save a listener.
const NoUI = -1

// DatabaseFileName is the SQLite file created inside Options.DataDir; named here so that operators know which
// file to delete to reset the dev server.
const DatabaseFileName = "temporal.sqlite"

// startTimeout bounds Start when the caller's context has no deadline, so a server that never becomes ready fails
// loudly instead of hanging `concert dev` or a test.
const startTimeout = time.Minute

// Options configures Start. The zero value is the test configuration: in-memory SQLite, free ports chosen by the
// kernel, namespace "default", Web UI on a free port, server logs at Warn and above to slog.Default().
// `concert dev` starts from DefaultOptions instead.
type Options struct {
	// DataDir is the directory that holds the SQLite file (created if missing), so workflow histories survive a
	// restart of `concert dev`. Empty means in-memory SQLite: everything is lost on Stop.
	DataDir string
	// IP is the address the frontend and the Web UI listen on. Empty means DefaultIP. Internal services
	// (history, matching, worker) always listen on 127.0.0.1 because nothing outside the process needs them.
	IP string
	// Port is the frontend gRPC port that clients dial. 0 picks a free port (see FrontendAddress).
	Port int
	// UIPort is the Web UI HTTP port. 0 picks a free port, NoUI (-1) disables the UI.
	UIPort int
	// Namespace is created at start if it does not exist. Empty means DefaultNamespace.
	Namespace string
	// SearchAttributes are custom search attributes that must be registered in Namespace before any workflow
	// upserts them (an unknown attribute fails the workflow task forever). Registration is idempotent; an
	// attribute that already exists with another type is an error. SQLite has a limited number of slots per type
	// (10 Keyword; 3 each of Int, Double, Bool, Datetime, Text and KeywordList).
	SearchAttributes map[string]enums.IndexedValueType
	// Logger receives the server's own logs. Nil means slog.Default().
	Logger *slog.Logger
	// LogLevel is the lowest server log level that reaches Logger. Nil means slog.LevelWarn, because the server
	// logs a great deal at Info that is of no use to someone developing against it.
	LogLevel slog.Leveler
}

// DefaultOptions returns the configuration `concert dev` starts from: the well-known ports, the default namespace
// and the UI enabled. The caller sets DataDir (and anything else its flags override).
func DefaultOptions() Options {
	return Options{
		IP:        DefaultIP,
		Port:      DefaultPort,
		UIPort:    DefaultUIPort,
		Namespace: DefaultNamespace,
	}
}

// Server is a running in-process Temporal stack. Its addresses are fixed for its lifetime; Stop releases every
// port it listens on.
type Server struct {
	namespace    string
	frontendAddr string
	uiURL        string
	ports        ports

	temporal temporal.Server
	ui       *uiserver.Server
	uiDone   chan struct{}
	dataLock *dirLock
	logLevel *shutdownLevel

	stopOnce sync.Once
	stopErr  error
}

// Start starts the Temporal services, waits until the namespace exists and the search attributes are registered,
// then starts the Web UI, so that a client dialled at FrontendAddress can start workflows as soon as Start returns.
// ctx bounds the start-up only (one minute if it has no deadline); use Stop to shut the server down. On error,
// Start stops whatever it had started and releases the ports and the data directory.
func Start(ctx context.Context, opts Options) (_ *Server, err error) {
	opts, err = opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, startTimeout)
		defer cancel()
	}
	s := &Server{namespace: opts.Namespace, logLevel: &shutdownLevel{base: opts.LogLevel}}
	logger := newLevelLogger(opts.Logger, s.logLevel)
	defer func() {
		if err != nil {
			// Best effort: the start-up error is the one worth reporting.
			_ = s.Stop()
		}
	}()

	db, lock, err := prepareDatabase(ctx, opts)
	if err != nil {
		return nil, err
	}
	s.dataLock = lock

	s.ports, err = choosePorts(opts)
	if err != nil {
		return nil, err
	}
	s.frontendAddr = net.JoinHostPort(dialHost(opts.IP), strconv.Itoa(s.ports.frontend))

	var srv temporal.Server
	if err := catchFatal(func() (err error) {
		srv, err = newTemporalServer(opts, s.ports, db, logger)
		return err
	}); err != nil {
		return nil, fmt.Errorf("devserver: create temporal server: %w", err)
	}
	if err := catchFatal(srv.Start); err != nil {
		return nil, fmt.Errorf("devserver: start temporal server: %w", err)
	}
	s.temporal = srv

	if err := waitReady(ctx, s.frontendAddr, opts, logger); err != nil {
		return nil, err
	}

	if s.ports.ui != 0 {
		if err := s.startUI(ctx, opts); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// FrontendAddress returns the host:port that client.Dial needs; with Port 0 it is the only way to learn the port.
func (s *Server) FrontendAddress() string { return s.frontendAddr }

// UIAddress returns the Web UI's base URL ("http://host:port"), or "" when the UI is disabled, so that
// `concert dev` can print a link and tests can call the UI's HTTP API.
func (s *Server) UIAddress() string { return s.uiURL }

// Namespace returns the namespace that Start created, for client.Options.Namespace.
func (s *Server) Namespace() string { return s.namespace }

// Stop shuts down the Web UI and the Temporal services and releases the data directory, so the same ports and
// DataDir can be used again by the next Start in this process or another. It is safe to call more than once.
//
// The SQLite persistence plugin keeps its database connection open until the process exits (the plugin shares
// one connection per database across services and never closes it); that connection holds no port and takes no
// further writes once Stop returns.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.logLevel.stopping.Store(true)
		var errs []error
		if s.ui != nil {
			s.ui.Stop()
			<-s.uiDone
		}
		if s.temporal != nil {
			if err := s.temporal.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("stop temporal server: %w", err))
			}
		}
		if s.dataLock != nil {
			if err := s.dataLock.release(); err != nil {
				errs = append(errs, fmt.Errorf("release data dir lock: %w", err))
			}
		}
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}

// withDefaults fills empty fields and rejects values that would only fail later inside the server, where the
// error is harder to read (or the server calls its fatal logger).
func (o Options) withDefaults() (Options, error) {
	if o.IP == "" {
		o.IP = DefaultIP
	}
	if net.ParseIP(o.IP) == nil {
		return o, fmt.Errorf("devserver: IP %q is not an IP address", o.IP)
	}
	if o.Port < 0 || o.Port > 65535 {
		return o, fmt.Errorf("devserver: Port %d out of range 0..65535", o.Port)
	}
	if o.UIPort < NoUI || o.UIPort > 65535 {
		return o, fmt.Errorf("devserver: UIPort %d out of range -1..65535", o.UIPort)
	}
	if o.Port != 0 && o.Port == o.UIPort {
		return o, fmt.Errorf("devserver: Port and UIPort are both %d", o.Port)
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	for name, typ := range o.SearchAttributes {
		if name == "" {
			return o, errors.New("devserver: empty search attribute name")
		}
		if typ == enums.INDEXED_VALUE_TYPE_UNSPECIFIED || enums.IndexedValueType_name[int32(typ)] == "" {
			return o, fmt.Errorf("devserver: search attribute %q has invalid type %v", name, typ)
		}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.LogLevel == nil {
		o.LogLevel = slog.LevelWarn
	}
	return o, nil
}

// dialHost returns the host clients should dial for a listener bound to ip: a wildcard address is not dialable
// everywhere, loopback is.
func dialHost(ip string) string {
	if parsed := net.ParseIP(ip); parsed != nil && parsed.IsUnspecified() {
		return DefaultIP
	}
	return ip
}
