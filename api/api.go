// Package api is the booking service's HTTP layer: a gorilla/mux route table, request decoding and checks,
// token and admin authentication, and problem+json errors. It starts session workflows and talks to them
// with Workflow Updates, and reads the store of record for everything that needs no workflow (seat maps,
// balances, status polls). It holds no booking state and contains no SQL.
package api

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"go.temporal.io/sdk/client"

	"github.com/ticketing/concert/booking"
	"github.com/ticketing/concert/db"
	"github.com/ticketing/concert/workflows"
)

// Config holds what the handlers need besides their dependencies.
type Config struct {
	// AdminToken authorises /api/v1/admin requests.
	AdminToken string
	// TokenSecret signs queue tokens; at least 16 bytes.
	TokenSecret []byte
	// HoldWindow is how long a held seat waits for payment.
	HoldWindow time.Duration
	// AdmissionWindow is how long an admitted session may take to hold a seat.
	AdmissionWindow time.Duration
	// AdmissionTick is how often a waiting room with waiting sessions looks for free slots.
	AdmissionTick time.Duration
	// StuckGrace is how far past its deadline a live session must be to count as stuck; 0 means
	// DefaultStuckGrace.
	StuckGrace time.Duration
	// Instrument, if set, wraps every routed request (for metrics); it runs inside the router, so it can see
	// the route template.
	Instrument func(http.Handler) http.Handler
	// Metrics, if set, is served at GET /metrics.
	Metrics http.Handler
	// UserRateLimit and AddressRateLimit bound token requests and top-ups per user and per client address;
	// a zero Rate switches a limit off.
	UserRateLimit, AddressRateLimit RateLimit
	// Logger receives request logs; nil means slog.Default().
	Logger *slog.Logger
	// StartParallel bounds how many session workflows this process starts at once in the background
	// (default 8); StartQueue bounds how many admitted sessions wait for a start (default 10,000), and
	// StartWaitingQueue how many waiting ones (default 0: none, so a waiting session's workflow starts with
	// its admission; measured, starting waiting sessions early costs an on-sale a third of its bookings/s).
	// StartWaitingRate paces the starts of waiting sessions (default 50 a second). A session whose start is
	// dropped is started later; see starter.
	StartParallel, StartQueue, StartWaitingQueue int
	StartWaitingRate                             float64
}

// Handler serves the booking API.
type Handler struct {
	store     *db.Store
	door      *workflows.Door
	starter   *starter
	tokens    *Tokens
	cfg       Config
	log       *slog.Logger
	byUser    *limiter
	byAddress *limiter
	// keysStarted counts new idempotency keys, to purge expired ones now and then.
	keysStarted atomic.Uint64
	// Short-lived read caches (see ReadCacheTTL).
	queues       *ttlCache[db.QueueSnapshot]
	readSessions *ttlCache[booking.Session]
	seatMaps     *ttlCache[encodedBody]
	dateLists    *ttlCache[encodedBody]
	concertList  *ttlCache[encodedBody]
	openings     *ttlCache[time.Time]
}

//go:embed openapi.yaml
var openAPI []byte

// OpenAPI returns the OpenAPI 3 document of this API, as served at /openapi.yaml.
func OpenAPI() []byte { return openAPI }

// New returns the API's HTTP handler.
func New(store *db.Store, tc client.Client, cfg Config) (http.Handler, error) {
	if cfg.AdminToken == "" {
		return nil, errors.New("api: an admin token is required")
	}
	if cfg.HoldWindow <= 0 || cfg.AdmissionWindow <= 0 || cfg.AdmissionTick <= 0 {
		return nil, errors.New("api: hold window, admission window and admission tick must be positive")
	}
	tokens, err := NewTokens(cfg.TokenSecret)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	if cfg.StuckGrace <= 0 {
		cfg.StuckGrace = DefaultStuckGrace
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.StartParallel <= 0 {
		cfg.StartParallel = 8
	}
	if cfg.StartQueue <= 0 {
		cfg.StartQueue = 10_000
	}
	if cfg.StartWaitingRate <= 0 {
		cfg.StartWaitingRate = 50
	}
	door := workflows.NewDoor(tc, workflows.AdmissionInput{AdmissionWindow: cfg.AdmissionWindow, Tick: cfg.AdmissionTick}, store)
	h := &Handler{store: store, tokens: tokens, cfg: cfg, log: cfg.Logger, door: door,
		starter: newStarter(door.StartSession, cfg.Logger, cfg.StartParallel, cfg.StartQueue, cfg.StartWaitingQueue, cfg.StartWaitingRate),
		byUser:  newLimiter(cfg.UserRateLimit), byAddress: newLimiter(cfg.AddressRateLimit),
		queues: newTTLCache[db.QueueSnapshot](ReadCacheTTL), readSessions: newTTLCache[booking.Session](ReadCacheTTL),
		seatMaps: newTTLCache[encodedBody](ReadCacheTTL), dateLists: newTTLCache[encodedBody](ReadCacheTTL),
		concertList: newTTLCache[encodedBody](ReadCacheTTL), openings: newTTLCache[time.Time](ReadCacheTTL)}
	return h.routes(), nil
}

// probeMethods are the methods a 405 answer tries, to name in its Allow header those the resource has.
var probeMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// allowed lists the methods router has a route for at the request's path; HEAD wherever GET is.
func allowed(router *mux.Router, r *http.Request) []string {
	var out []string
	for _, m := range probeMethods {
		probe := r.Clone(r.Context())
		probe.Method = m
		var match mux.RouteMatch
		if router.Match(probe, &match) && match.MatchErr == nil {
			out = append(out, m)
			if m == http.MethodGet {
				out = append(out, http.MethodHead)
			}
		}
	}
	return out
}

// headAsGet answers HEAD wherever GET is answered, as every general-purpose server must (RFC 9110, 9.1): the
// request is routed as a GET, and net/http sends the headers without the body for a HEAD request.
func headAsGet(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			r = r.Clone(r.Context())
			r.Method = http.MethodGet
		}
		next.ServeHTTP(w, r)
	})
}

// routes is the route table: every endpoint of the API, in one place.
func (h *Handler) routes() http.Handler {
	r := mux.NewRouter()
	r.UseEncodedPath() // an escaped slash (%2F) is data, not a separator: no path with one names another route
	const v1 = "/api/v1"
	r.HandleFunc(v1+"/concerts", h.listConcerts).Methods(http.MethodGet)
	r.HandleFunc(v1+"/concerts/{concertCode}/token", h.issueToken).Methods(http.MethodPost)
	r.HandleFunc(v1+"/concerts/{concertCode}/token", h.tokenStatus).Methods(http.MethodGet)
	r.HandleFunc(v1+"/concerts/{concertCode}/token", h.leave).Methods(http.MethodDelete)
	r.HandleFunc(v1+"/concerts/{concertCode}", h.concertDates).Methods(http.MethodGet)
	r.HandleFunc(v1+"/concerts/{concertCode}/seats", h.seatMap).Methods(http.MethodGet)
	r.HandleFunc(v1+"/concerts/{concertCode}", h.reserve).Methods(http.MethodPatch)
	r.HandleFunc(v1+"/users", h.createUser).Methods(http.MethodPost)
	r.HandleFunc(v1+"/users/{UUID}/balance", h.balance).Methods(http.MethodGet)
	r.HandleFunc(v1+"/users/{UUID}/balance", h.topUp).Methods(http.MethodPatch)
	r.HandleFunc(v1+"/users/{UUID}/bookings", h.fanBookings).Methods(http.MethodGet)
	r.HandleFunc(v1+"/payments", h.pay).Methods(http.MethodPost)
	r.HandleFunc(v1+"/admin/concerts", h.admin(h.createConcert)).Methods(http.MethodPost)
	r.HandleFunc(v1+"/admin/concerts/{concertCode}/admission", h.admin(h.setAdmission)).Methods(http.MethodPost)
	r.HandleFunc(v1+"/admin/bookings", h.admin(h.listBookings)).Methods(http.MethodGet)
	r.HandleFunc(v1+"/admin/bookings/{bookingId}/cancel", h.admin(h.cancelBooking)).Methods(http.MethodPost)
	r.HandleFunc("/healthz", h.healthz).Methods(http.MethodGet)
	r.HandleFunc("/readyz", h.readyz).Methods(http.MethodGet)
	r.HandleFunc("/openapi.yaml", serveOpenAPI).Methods(http.MethodGet)
	notFound := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, problem(http.StatusNotFound, "not-found", "no endpoint at "+r.URL.Path))
	})
	notAllowed := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		methods := allowed(r, req)
		w.Header().Set("Allow", strings.Join(methods, ", ")) // RFC 9110, 15.5.6: a 405 names what is allowed
		writeProblem(w, req, problem(http.StatusMethodNotAllowed, "method-not-allowed",
			req.Method+" is not allowed on "+req.URL.Path+"; allowed: "+strings.Join(methods, ", ")))
	})
	if h.cfg.Metrics != nil {
		r.Handle("/metrics", h.cfg.Metrics).Methods(http.MethodGet)
	}
	r.NotFoundHandler, r.MethodNotAllowedHandler = notFound, notAllowed
	if h.cfg.Instrument != nil {
		r.Use(h.cfg.Instrument)
		// mux runs middleware only for matched routes; unmatched requests are counted through their handlers.
		r.NotFoundHandler, r.MethodNotAllowedHandler = h.cfg.Instrument(notFound), h.cfg.Instrument(notAllowed)
	}
	r.Use(h.tagConcert)
	return h.recoverer(h.logRequests(headAsGet(r)))
}

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(openAPI)
}

func (h *Handler) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz reports whether PostgreSQL answers with this binary's schema and Temporal answers, so a load
// balancer sends traffic only to an API that can serve it.
func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	checks := map[string]string{"postgres": "ok", "temporal": "ok"}
	ready := true
	if err := h.store.Ready(ctx); err != nil {
		checks["postgres"], ready = err.Error(), false
	}
	if err := h.door.Ready(ctx); err != nil {
		checks["temporal"], ready = err.Error(), false
	}
	if !ready {
		writeProblem(w, r, problem(http.StatusServiceUnavailable, "service-unavailable", "a dependency is not reachable").with("checks", checks))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": checks})
}
