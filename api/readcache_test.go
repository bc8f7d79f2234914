package api

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReadCacheServesStaleWhileOneRefreshRuns proves the cache's promises: a fresh value costs no load,
// concurrent misses share one load, a value past its TTL (but within maxStale) is served at once while a
// single background refresh runs, and a value past maxStale is never served.
func TestReadCacheServesStaleWhileOneRefreshRuns(t *testing.T) {
	c := newTTLCache[int](50 * time.Millisecond)
	var loads atomic.Int32
	release := make(chan struct{})
	load := func(context.Context) (int, error) {
		n := loads.Add(1)
		if n > 1 {
			<-release // the refresh is slow
		}
		return int(n), nil
	}
	ctx := context.Background()
	v, err := c.get(ctx, "k", load)
	require.NoError(t, err)
	assert.Equal(t, 1, v)
	v, _ = c.get(ctx, "k", load)
	assert.Equal(t, 1, v, "fresh: no second load")

	time.Sleep(60 * time.Millisecond) // past the TTL, within maxStale
	for range 20 {
		v, err = c.get(ctx, "k", load)
		require.NoError(t, err)
		assert.Equal(t, 1, v, "stale values are served while the refresh runs")
	}
	close(release)
	require.Eventually(t, func() bool { v, _ := c.get(ctx, "k", load); return v == 2 }, time.Second, 5*time.Millisecond)
	assert.EqualValues(t, 2, loads.Load(), "one background refresh for all those readers")

	time.Sleep(maxStale + 10*time.Millisecond)
	v, err = c.get(ctx, "k", load)
	require.NoError(t, err)
	assert.Equal(t, 3, v, "too old to serve: loaded in the caller")

	_, err = c.get(ctx, "e", func(context.Context) (int, error) { return 0, errors.New("down") })
	assert.Error(t, err, "errors are not cached as values")
}

// TestReadCachePeekNeverWaits proves what the token path relies on: peek answers at once, with nothing when
// no value is cached (starting one background load for later callers, however many peek meanwhile), and with
// the cached value afterwards.
func TestReadCachePeekNeverWaits(t *testing.T) {
	c := newTTLCache[int](time.Minute)
	var loads atomic.Int32
	release := make(chan struct{})
	load := func(context.Context) (int, error) {
		<-release
		return int(loads.Add(1)), nil
	}
	ctx := context.Background()
	for range 10 {
		_, ok := c.peek(ctx, "k", load)
		assert.False(t, ok, "nothing cached yet, and peek does not wait for the load")
	}
	close(release)
	require.Eventually(t, func() bool { v, ok := c.peek(ctx, "k", load); return ok && v == 1 }, time.Second, 5*time.Millisecond)
	assert.EqualValues(t, 1, loads.Load(), "one background load for every peek")
}

// TestForgetOutrunsALoadThatBeganBeforeIt proves read-your-writes in the cache itself: a load that began
// before a forget (it may have read before the write) neither answers a later get nor stays cached, for
// forget and for forgetPrefix alike.
func TestForgetOutrunsALoadThatBeganBeforeIt(t *testing.T) {
	for _, byPrefix := range []bool{false, true} {
		c := newTTLCache[string](time.Minute)
		started, release := make(chan struct{}), make(chan struct{})
		slow := func(context.Context) (string, error) {
			close(started)
			<-release
			return "before the write", nil
		}
		done := make(chan string)
		go func() {
			v, _ := c.get(context.Background(), "C|2026-12-24T19:00:00", slow)
			done <- v
		}()
		<-started
		if byPrefix {
			c.forgetPrefix("C|")
		} else {
			c.forget("C|2026-12-24T19:00:00")
		}
		fresh := func(context.Context) (string, error) { return "after the write", nil }
		got, err := c.get(context.Background(), "C|2026-12-24T19:00:00", fresh)
		if err != nil || got != "after the write" {
			t.Fatalf("prefix %t: a get after the forget answered %q, %v", byPrefix, got, err)
		}
		close(release)
		if v := <-done; v != "before the write" {
			t.Fatalf("prefix %t: the first caller got %q", byPrefix, v)
		}
		got, _ = c.get(context.Background(), "C|2026-12-24T19:00:00", func(context.Context) (string, error) {
			return "reloaded", nil
		})
		if got != "after the write" {
			t.Fatalf("prefix %t: the cache holds %q; the load that began before the forget must not store", byPrefix, got)
		}
	}
}
