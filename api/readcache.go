package api

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// ReadCacheTTL is how long the API reuses what it read for seat maps, date lists and waiting-room positions. It is well under a second, so a seat map is never more than a second
// stale, and a read under a stampede costs one database query per key per TTL, whatever the request rate.
const ReadCacheTTL = 500 * time.Millisecond

// maxCacheEntries bounds each cache; past it, expired entries are swept and, if that is not enough, all are
// dropped (the next reads simply go to the database).
const maxCacheEntries = 200_000

// ttlCache remembers values for a short time and lets concurrent misses of one key share one load.
type ttlCache[V any] struct {
	ttl   time.Duration
	mu    sync.Mutex
	items map[string]cached[V]
	group singleflight.Group
}

type cached[V any] struct {
	value   V
	expires time.Time
}

func newTTLCache[V any](ttl time.Duration) *ttlCache[V] {
	return &ttlCache[V]{ttl: ttl, items: map[string]cached[V]{}}
}

// get returns the cached value of key, or loads it (once, however many callers are waiting).
func (c *ttlCache[V]) get(ctx context.Context, key string, load func(context.Context) (V, error)) (V, error) {
	now := time.Now()
	c.mu.Lock()
	if it, ok := c.items[key]; ok && now.Before(it.expires) {
		c.mu.Unlock()
		return it.value, nil
	}
	c.mu.Unlock()
	v, err, _ := c.group.Do(key, func() (any, error) {
		// The load outlives a caller that gives up: others may be waiting for it.
		v, err := load(context.WithoutCancel(ctx))
		if err != nil {
			return v, err
		}
		c.put(key, v, time.Now())
		return v, nil
	})
	if err != nil {
		var zero V
		return zero, err
	}
	return v.(V), nil
}

func (c *ttlCache[V]) put(key string, v V, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
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
