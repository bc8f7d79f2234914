package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ticketing/concert/api"
)

// Environment variables of every subcommand. The README, docker-compose.yml and the flags below use exactly
// these names.
const (
	envHTTPAddr          = "CONCERT_HTTP_ADDR"
	envDatabaseURL       = "DATABASE_URL"
	envAdminToken        = "CONCERT_ADMIN_TOKEN"
	envTokenSecret       = "CONCERT_TOKEN_SECRET"
	envHoldWindow        = "CONCERT_HOLD_WINDOW"
	envAdmissionWindow   = "CONCERT_ADMISSION_WINDOW"
	envAdmissionTick     = "CONCERT_ADMISSION_TICK"
	envStartWaiting      = "CONCERT_START_WAITING" // eager workflow starts of waiting sessions: queue size, default 0 (off)
	envTemporalAddress   = "TEMPORAL_ADDRESS"
	envTemporalNamespace = "TEMPORAL_NAMESPACE"
	envTemporalPort      = "CONCERT_TEMPORAL_PORT"
	envTemporalUIPort    = "CONCERT_TEMPORAL_UI_PORT"
	envDataDir           = "CONCERT_DATA_DIR"
	envLogLevel          = "CONCERT_LOG_LEVEL"
	envAPIURL            = "CONCERT_API_URL" // where `concert admin` finds the API
	envMetricsAddr       = "CONCERT_METRICS_ADDR"
	envRateLimit         = "CONCERT_RATE_LIMIT"         // per user: "RATE,BURST" (default 5,10) or "off" for both limits
	envAddressRateLimit  = "CONCERT_ADDRESS_RATE_LIMIT" // per client address: "RATE,BURST" (default 20,40) or "off"
)

// Defaults for development. The dev admin token and token secret are printed by `concert dev` and refused
// by every other subcommand, which must be given their own.
const (
	defaultHTTPAddr       = "127.0.0.1:8080"
	defaultDatabaseURL    = "postgres://postgres@127.0.0.1:5432/concert?sslmode=disable"
	devAdminToken         = "dev-admin-token"
	devTokenSecret        = "dev-token-secret-not-for-production"
	defaultTemporalHost   = "127.0.0.1:7233"
	defaultNamespace      = "default"
	defaultTemporalPort   = 7233
	defaultTemporalUIPort = 8233
	defaultDataDir        = ".concert-dev"
	defaultAPIURL         = "http://127.0.0.1:8080"
)

// config is the whole configuration of the binary; each subcommand reads the part it needs.
type config struct {
	HTTPAddr        string
	DatabaseURL     string
	AdminToken      string
	TokenSecret     string
	HoldWindow      time.Duration
	AdmissionWindow time.Duration
	AdmissionTick   time.Duration
	// StartWaiting bounds the queue of waiting sessions whose workflows the API starts before admission
	// (0: none; they start with their admission).
	StartWaiting      int
	TemporalAddress   string
	TemporalNamespace string
	TemporalPort      int
	TemporalUIPort    int
	DataDir           string
	LogLevel          string
	// UserRateLimit and AddressRateLimit bound token requests and top-ups.
	UserRateLimit, AddressRateLimit api.RateLimit
	// TemporalOnly makes `concert dev` run only the embedded Temporal server.
	TemporalOnly bool
	// MetricsAddr is where `concert worker` serves /metrics (the API serves it on its own address).
	MetricsAddr string
}

// parseConfig reads the environment, then lets flags of the same meaning override it. dev selects the
// development defaults; serving says the subcommand serves the API and so needs its secrets.
func parseConfig(cmd string, args []string, dev, serving bool) (config, error) {
	c := config{
		HTTPAddr:          env(envHTTPAddr, defaultHTTPAddr),
		DatabaseURL:       env(envDatabaseURL, defaultDatabaseURL),
		AdminToken:        os.Getenv(envAdminToken),
		TokenSecret:       os.Getenv(envTokenSecret),
		TemporalAddress:   env(envTemporalAddress, defaultTemporalHost),
		TemporalNamespace: env(envTemporalNamespace, defaultNamespace),
		DataDir:           env(envDataDir, defaultDataDir),
		LogLevel:          env(envLogLevel, "info"),
		MetricsAddr:       envOrEmpty(envMetricsAddr, "127.0.0.1:9090"),
	}
	var err error
	if c.HoldWindow, err = envDuration(envHoldWindow, 5*time.Minute); err != nil {
		return c, err
	}
	if c.AdmissionWindow, err = envDuration(envAdmissionWindow, 10*time.Minute); err != nil {
		return c, err
	}
	if c.AdmissionTick, err = envDuration(envAdmissionTick, time.Second); err != nil {
		return c, err
	}
	if c.UserRateLimit, err = envRateLimitValue(envRateLimit, os.Getenv(envRateLimit), api.DefaultUserRateLimit); err != nil {
		return c, err
	}
	if c.AddressRateLimit, err = envRateLimitValue(envAddressRateLimit, os.Getenv(envAddressRateLimit), api.DefaultAddressRateLimit); err != nil {
		return c, err
	}
	if os.Getenv(envRateLimit) == "off" {
		c.AddressRateLimit = api.RateLimit{}
	}
	if c.StartWaiting, err = envInt(envStartWaiting, 0); err != nil {
		return c, err
	}
	if c.TemporalPort, err = envInt(envTemporalPort, defaultTemporalPort); err != nil {
		return c, err
	}
	if c.TemporalUIPort, err = envInt(envTemporalUIPort, defaultTemporalUIPort); err != nil {
		return c, err
	}
	if dev {
		if c.AdminToken == "" {
			c.AdminToken = devAdminToken
		}
		if c.TokenSecret == "" {
			c.TokenSecret = devTokenSecret
		}
	}

	fs := flag.NewFlagSet("concert "+cmd, flag.ContinueOnError)
	fs.StringVar(&c.HTTPAddr, "http-addr", c.HTTPAddr, "HTTP listen address ("+envHTTPAddr+")")
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "PostgreSQL URL ("+envDatabaseURL+")")
	fs.StringVar(&c.AdminToken, "admin-token", c.AdminToken, "admin API token ("+envAdminToken+")")
	fs.StringVar(&c.TokenSecret, "token-secret", c.TokenSecret, "secret that signs queue tokens, >= 16 bytes ("+envTokenSecret+")")
	fs.DurationVar(&c.HoldWindow, "hold-window", c.HoldWindow, "how long a held seat waits for payment ("+envHoldWindow+")")
	fs.DurationVar(&c.AdmissionWindow, "admission-window", c.AdmissionWindow, "how long an admitted user may take to hold a seat ("+envAdmissionWindow+")")
	fs.DurationVar(&c.AdmissionTick, "admission-tick", c.AdmissionTick, "how often a waiting room with waiting users looks for free slots ("+envAdmissionTick+")")
	fs.StringVar(&c.TemporalAddress, "temporal-address", c.TemporalAddress, "Temporal frontend host:port ("+envTemporalAddress+")")
	fs.StringVar(&c.TemporalNamespace, "temporal-namespace", c.TemporalNamespace, "Temporal namespace ("+envTemporalNamespace+")")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error ("+envLogLevel+")")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", c.MetricsAddr, "worker: address of its /metrics endpoint, empty for none ("+envMetricsAddr+")")
	if dev {
		fs.IntVar(&c.TemporalPort, "temporal-port", c.TemporalPort, "embedded Temporal gRPC port ("+envTemporalPort+")")
		fs.IntVar(&c.TemporalUIPort, "temporal-ui-port", c.TemporalUIPort, "embedded Temporal Web UI port ("+envTemporalUIPort+")")
		fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory of the embedded Temporal database ("+envDataDir+")")
		fs.BoolVar(&c.TemporalOnly, "temporal-only", false, "run only the embedded Temporal server (then run `concert api` and `concert worker` against it)")
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if !serving {
		return c, nil
	}
	return c, c.check(dev)
}

// check refuses a configuration the service cannot run with, naming the variable to fix.
func (c config) check(dev bool) error {
	switch {
	case c.HoldWindow <= 0:
		return fmt.Errorf("%s must be a positive duration", envHoldWindow)
	case c.AdmissionWindow <= 0:
		return fmt.Errorf("%s must be a positive duration", envAdmissionWindow)
	case c.AdmissionTick <= 0:
		return fmt.Errorf("%s must be a positive duration", envAdmissionTick)
	case len(c.TokenSecret) < 16:
		return fmt.Errorf("%s must be set to a secret of at least 16 bytes", envTokenSecret)
	case c.AdminToken == "":
		return fmt.Errorf("%s must be set", envAdminToken)
	case !dev && (c.AdminToken == devAdminToken || c.TokenSecret == devTokenSecret):
		return fmt.Errorf("%s and %s must not be the dev defaults outside `concert dev`", envAdminToken, envTokenSecret)
	}
	return nil
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// envOrEmpty is env for a variable whose empty value means something (off): only an unset one takes def.
func envOrEmpty(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) (time.Duration, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q is not a Go duration like 5m: %w", name, v, err)
	}
	return d, nil
}

// envRateLimitValue reads "RATE,BURST" (requests per second, burst) or "off".
func envRateLimitValue(name, v string, def api.RateLimit) (api.RateLimit, error) {
	switch v {
	case "":
		return def, nil
	case "off":
		return api.RateLimit{}, nil
	}
	rateText, burstText, _ := strings.Cut(v, ",")
	r, err1 := strconv.ParseFloat(strings.TrimSpace(rateText), 64)
	b, err2 := strconv.Atoi(strings.TrimSpace(burstText))
	if err1 != nil || err2 != nil || r <= 0 || b < 1 {
		return api.RateLimit{}, fmt.Errorf("%s=%q must be RATE,BURST (like 5,10) or off", name, v)
	}
	return api.RateLimit{Rate: r, Burst: b}, nil
}

func envInt(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q is not an integer: %w", name, v, err)
	}
	return n, nil
}
