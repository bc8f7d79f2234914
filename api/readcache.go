package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// ReadCacheTTL is how long the API reuses what it read for seat maps, date lists, waiting-room positions and
// the session rows behind seat-map and date-list reads. It is well under a second, so a seat map is never more than a second
// stale, and a read under a stampede costs one database query per key per TTL, whatever the request rate.
const ReadCacheTTL = 500 * time.Millisecond

// maxStale is the oldest a cached value may be when it is served (while a refresh runs): a seat map is never
// more than a second stale.
const maxStale = 800 * time.Millisecond

// maxCacheEntries bounds each cache; past it, expired entries are swept and, if that is not enough, all are
// dropped (the next reads simply go to the database).
const maxCacheEntries = 200_000

// ttlCache remembers values for a short time and lets concurrent misses of one key share one load.
type ttlCache[V any] struct {
	ttl        time.Duration
	mu         sync.Mutex
	items      map[string]cached[V]
	refreshing map[string]bool
	// generation counts the forgets of each key: a load that began before a forget does not store what it
	// read, so a write this process made is never covered up by a read that started before it.
	generation map[string]uint64
	loading    map[string]int // how many loads of each key run now
	group      singleflight.Group
}

type cached[V any] struct {
	value   V
	expires time.Time
}

func newTTLCache[V any](ttl time.Duration) *ttlCache[V] {
	return &ttlCache[V]{ttl: ttl, items: map[string]cached[V]{}, refreshing: map[string]bool{}, generation: map[string]uint64{}, loading: map[string]int{}}
}

// get returns the cached value of key, or loads it (once, however many callers are waiting). A value past
// its TTL but younger than maxStale is still returned while one caller refreshes it in the background, so a
// refresh (a 100,000-row queue snapshot, say) never makes readers wait.
func (c *ttlCache[V]) get(ctx context.Context, key string, load func(context.Context) (V, error)) (V, error) {
	now := time.Now()
	c.mu.Lock()
	it, ok := c.items[key]
	fresh := ok && now.Before(it.expires)
	stale := ok && !fresh && now.Before(it.expires.Add(maxStale-c.ttl))
	start := stale && !c.refreshing[key]
	if start {
		c.refreshing[key] = true
	}
	c.mu.Unlock()
	switch {
	case fresh:
		return it.value, nil
	case stale:
		if start {
			go func() {
				_, _ = c.refresh(context.WithoutCancel(ctx), key, load)
				c.mu.Lock()
				delete(c.refreshing, key)
				c.mu.Unlock()
			}()
		}
		return it.value, nil
	}
	return c.refresh(ctx, key, load)
}

// peek returns the cached value of key if there is one not older than maxStale, and never waits: when the
// value is missing or past its TTL, one background load refreshes it for later callers.
func (c *ttlCache[V]) peek(ctx context.Context, key string, load func(context.Context) (V, error)) (V, bool) {
	now := time.Now()
	c.mu.Lock()
	it, ok := c.items[key]
	fresh := ok && now.Before(it.expires)
	usable := ok && now.Before(it.expires.Add(maxStale-c.ttl))
	start := !fresh && !c.refreshing[key]
	if start {
		c.refreshing[key] = true
	}
	c.mu.Unlock()
	if start {
		c.refreshInBackground(ctx, key, load)
	}
	if !usable {
		var zero V
		return zero, false
	}
	return it.value, true
}

// refreshInBackground reloads key without holding up the caller, which has marked it refreshing.
func (c *ttlCache[V]) refreshInBackground(ctx context.Context, key string, load func(context.Context) (V, error)) {
	go func() {
		_, _ = c.refresh(context.WithoutCancel(ctx), key, load)
		c.mu.Lock()
		delete(c.refreshing, key)
		c.mu.Unlock()
	}()
}

// refresh loads key once for all concurrent callers and caches the result.
func (c *ttlCache[V]) refresh(ctx context.Context, key string, load func(context.Context) (V, error)) (V, error) {
	v, err, _ := c.group.Do(key, func() (any, error) {
		c.mu.Lock()
		gen := c.generation[key]
		c.loading[key]++
		c.mu.Unlock()
		// The load outlives a caller that gives up: others may be waiting for it.
		v, err := load(context.WithoutCancel(ctx))
		if err != nil {
			c.mu.Lock()
			c.loaded(key)
			c.mu.Unlock()
			return v, err
		}
		c.put(key, v, time.Now(), gen)
		return v, nil
	})
	if err != nil {
		var zero V
		return zero, err
	}
	return v.(V), nil
}

// put caches v, read by a load that began at generation gen of key; a load overtaken by a forget stores
// nothing.
func (c *ttlCache[V]) put(key string, v V, now time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.loaded(key)
	if c.generation[key] != gen {
		return
	}
	if len(c.items) >= maxCacheEntries {
		for k, it := range c.items {
			if now.After(it.expires) {
				delete(c.items, k)
			}
		}
		if len(c.items) >= maxCacheEntries {
			clear(c.items)
		}
	}
	c.items[key] = cached[V]{value: v, expires: now.Add(c.ttl)}
}

// loaded notes that a load of key has finished; c.mu is held.
func (c *ttlCache[V]) loaded(key string) {
	if c.loading[key]--; c.loading[key] <= 0 {
		delete(c.loading, key)
	}
}

// forget drops a key after a write this process made, so the next get loads it afresh: it does not join a
// load already running (which may have read before the write), and such a load stores nothing.
func (c *ttlCache[V]) forget(key string) {
	c.mu.Lock()
	delete(c.items, key)
	c.generation[key]++
	if len(c.generation) > maxCacheEntries {
		clear(c.generation) // forgotten keys of long ago; a load that straddles this clear may store once
	}
	c.mu.Unlock()
	c.group.Forget(key)
}

// forgetPrefix forgets every key that starts with prefix (every seat map of a concert, say) and any such
// key loaded later by a load that began before now.
func (c *ttlCache[V]) forgetPrefix(prefix string) {
	c.mu.Lock()
	var keys []string
	for k := range c.items {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	for k := range c.loading {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	c.mu.Unlock()
	for _, k := range keys {
		c.forget(k)
	}
}

// encodedBody is a cached JSON answer, also gzip-compressed once for every client that accepts it: a seat
// map of a large hall is tens of kilobytes, and on an on-sale thousands of phones read it every second.
type encodedBody struct {
	raw, gzipped []byte
}

// encodeBody marshals v and compresses it.
func encodeBody(v any) (encodedBody, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return encodedBody{}, err
	}
	raw = append(raw, '\n')
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return encodedBody{}, err
	}
	if _, err := zw.Write(raw); err != nil {
		return encodedBody{}, err
	}
	if err := zw.Close(); err != nil {
		return encodedBody{}, err
	}
	return encodedBody{raw: raw, gzipped: buf.Bytes()}, nil
}

// write sends the body, compressed when the client accepts gzip. Nothing may store it: it answers one fan.
func (b encodedBody) write(w http.ResponseWriter, r *http.Request, status int) {
	b.writeWith(w, r, status, "no-store")
}

// writeWith is write with the given Cache-Control.
func (b encodedBody) writeWith(w http.ResponseWriter, r *http.Request, status int, cacheControl string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", cacheControl)
	h.Add("Vary", "Accept-Encoding")
	body := b.raw
	if acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		body = b.gzipped
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.TrimSpace(q) != "q=0" {
			return true
		}
	}
	return false
}
