package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Idempotency settings: how long a key's first response is kept, and how long a request may hold its key
// before a retry may assume it died with its API process and run it again.
const (
	IdempotencyTTL   = 24 * time.Hour
	idempotencyLease = time.Minute
	maxKeyLength     = 255
	purgeEvery       = 256 // new keys between two purges of expired ones
)

// idempotent runs fn at most once per Idempotency-Key within scope (the user or session the key belongs
// to). The first response, unless a 5xx, is stored; a retry with the same key and body gets it again
// (with Idempotent-Replayed: true), the same key with another body gets 422, and a retry while the first
// request still runs gets 409. Without the header fn simply runs. fn gets the Workflow Update ID to use:
// derived from the key, so Temporal deduplicates too.
func (h *Handler) idempotent(w http.ResponseWriter, r *http.Request, scope string, fn func(http.ResponseWriter, *http.Request, string)) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		fn(w, r, "")
		return
	}
	if len(key) > maxKeyLength || !printable(key) {
		writeProblem(w, r, invalid("Idempotency-Key must be 1-%d printable ASCII characters", maxKeyLength))
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeProblem(w, r, problem(http.StatusRequestEntityTooLarge, "payload-too-large", fmt.Sprintf("the body may be at most %d bytes", maxBodyBytes)))
			return
		}
		writeProblem(w, r, problem(http.StatusBadRequest, "invalid-json", "the body could not be read"))
		return
	}
	sum := sha256.Sum256(append([]byte(r.Method+" "+r.URL.Path+"\n"), raw...))
	hash := hex.EncodeToString(sum[:])
	ctx := r.Context()
	rec, started, err := h.store.BeginIdempotent(ctx, scope, key, hash, IdempotencyTTL, idempotencyLease)
	if err != nil {
		writeProblem(w, r, h.storeProblem(ctx, err, "", ""))
		return
	}
	if !started {
		switch {
		case rec.RequestHash != hash:
			writeProblem(w, r, problem(http.StatusUnprocessableEntity, "idempotency-key-reused",
				"this Idempotency-Key was used with another request; use a new key for a new request"))
		case rec.State != "DONE":
			w.Header().Set("Retry-After", "1")
			writeProblem(w, r, problem(http.StatusConflict, "idempotency-key-in-progress",
				"a request with this Idempotency-Key is still running; retry in a moment"))
		default:
			w.Header().Set("Content-Type", rec.ContentType.String)
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Idempotent-Replayed", "true")
			w.WriteHeader(int(rec.Status.Int32))
			_, _ = w.Write(rec.Body)
		}
		return
	}
	if h.keysStarted.Add(1)%purgeEvery == 0 {
		// Expired keys go a batch at a time, off the request path.
		go func() {
			if _, err := h.store.PurgeIdempotency(context.WithoutCancel(ctx), 1000); err != nil {
				logFrom(ctx, h.log).Warn("Could not purge expired idempotency keys", "error", err)
			}
		}()
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	rec2 := &capture{header: http.Header{}, status: http.StatusOK}
	fn(rec2, r, "idem-"+key)
	if rec2.status >= 500 {
		if err := h.store.AbandonIdempotent(ctx, scope, key); err != nil {
			logFrom(ctx, h.log).Error("Could not release an idempotency key", "error", err)
		}
	} else if err := h.store.FinishIdempotent(ctx, scope, key, rec2.status, rec2.header.Get("Content-Type"), rec2.body.Bytes()); err != nil {
		logFrom(ctx, h.log).Error("Could not store an idempotent response", "error", err)
	}
	for k, v := range rec2.header {
		w.Header()[k] = v
	}
	w.WriteHeader(rec2.status)
	_, _ = w.Write(rec2.body.Bytes())
}

// capture buffers a response so it can be stored before it is sent.
type capture struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (c *capture) Header() http.Header         { return c.header }
func (c *capture) WriteHeader(status int)      { c.status = status }
func (c *capture) Write(b []byte) (int, error) { return c.body.Write(b) }

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
