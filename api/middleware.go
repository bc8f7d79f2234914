package api

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"
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
		next.ServeHTTP(rec, r)
		level := slog.LevelDebug
		if rec.status >= 500 {
			level = slog.LevelError
		}
		h.log.Log(r.Context(), level, "HTTP request", "requestId", id, "method", r.Method,
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
				h.log.Error("Handler panicked", "path", r.URL.Path, "panic", v)
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
