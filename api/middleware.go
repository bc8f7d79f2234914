package api

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/mux"
)

// statusRecorder remembers the status a handler wrote, for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// logRequests gives every request an ID (the client's X-Request-ID, or a new one), echoes it in the response
// and logs the request with its status and duration.
func (h *Handler) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-ID")
		if id == "" || len(id) > 128 {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-ID", id)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		log := h.log.With("requestId", id)
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), loggerKey{}, log)))
		level := slog.LevelDebug
		if rec.status >= 500 {
			level = slog.LevelError
		}
		log.Log(r.Context(), level, "HTTP request", "method", r.Method,
			"path", r.URL.Path, "status", rec.status, "durationMs", time.Since(start).Milliseconds())
	})
}

// recoverer turns a panic in a handler into a logged 500 problem instead of a dropped connection.
func (h *Handler) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				logFrom(r.Context(), h.log).Error("Handler panicked", "path", r.URL.Path, "panic", v)
				writeProblem(w, r, problem(http.StatusInternalServerError, "internal-error", "an unexpected error occurred"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// admin lets a request through only with the admin token, compared in constant time.
func (h *Handler) admin(next http.HandlerFunc) http.HandlerFunc {
	want := []byte(h.cfg.AdminToken)
	return func(w http.ResponseWriter, r *http.Request) {
		got := []byte(bearer(r.Header.Get("Authorization")))
		if len(got) == 0 || subtle.ConstantTimeCompare(got, want) != 1 {
			writeProblem(w, r, problem(http.StatusUnauthorized, "admin-token-required", "send Authorization: Bearer <admin token>"))
			return
		}
		next(w, r)
	}
}

// loggerKey carries the request's logger in its context.
type loggerKey struct{}

// logFrom returns the logger of the request that ctx belongs to (tagged with its request ID), or fallback.
func logFrom(ctx context.Context, fallback *slog.Logger) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return fallback
}

// tagConcert adds the concert code of the route, if it has one, to the request's logger. It runs inside the
// router (router.Use), where the path variables are known.
func (h *Handler) tagConcert(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code := mux.Vars(r)["concertCode"]; code != "" {
			log := logFrom(r.Context(), h.log).With("concertCode", code)
			r = r.WithContext(context.WithValue(r.Context(), loggerKey{}, log))
		}
		next.ServeHTTP(w, r)
	})
}
