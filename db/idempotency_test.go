package db_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ticketing/concert/db"
	"github.com/ticketing/concert/db/dbtest"
)

// TestIdempotencyKeyLifecycle proves the store side of Idempotency-Key: a new key starts the request, a
// retry sees it in progress and then its stored response, an abandoned request (lease over) can be taken
// over with the same body only, and expired keys are purged and may be used afresh.
func TestIdempotencyKeyLifecycle(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	ctx := t.Context()

	_, started, err := store.BeginIdempotent(ctx, "pay:s1", "k", "h1", time.Hour, time.Minute)
	require.NoError(t, err)
	assert.True(t, started)
	rec, started, err := store.BeginIdempotent(ctx, "pay:s1", "k", "h1", time.Hour, time.Minute)
	require.NoError(t, err)
	assert.False(t, started)
	assert.Equal(t, db.IdemInProgress, rec.State)

	require.NoError(t, store.FinishIdempotent(ctx, "pay:s1", "k", 201, "application/json", []byte(`{"ok":true}`)))
	rec, started, err = store.BeginIdempotent(ctx, "pay:s1", "k", "h1", time.Hour, time.Minute)
	require.NoError(t, err)
	assert.False(t, started)
	assert.Equal(t, db.IdemDone, rec.State)
	assert.EqualValues(t, 201, rec.Status.Int32)
	assert.JSONEq(t, `{"ok":true}`, string(rec.Body))

	_, started, err = store.BeginIdempotent(ctx, "pay:s2", "k", "h1", time.Hour, time.Minute)
	require.NoError(t, err)
	assert.True(t, started, "keys are scoped")

	// A request whose API process died: its lease runs out.
	_, err = store.SQL().Exec(`UPDATE idempotency_keys SET locked_until = now() - interval '1 second' WHERE scope = 'pay:s2'`)
	require.NoError(t, err)
	rec, started, err = store.BeginIdempotent(ctx, "pay:s2", "k", "other", time.Hour, time.Minute)
	require.NoError(t, err)
	assert.False(t, started, "another body may not take over")
	assert.Equal(t, "h1", rec.RequestHash)
	_, started, err = store.BeginIdempotent(ctx, "pay:s2", "k", "h1", time.Hour, time.Minute)
	require.NoError(t, err)
	assert.True(t, started, "the same body takes over the abandoned key")

	require.NoError(t, store.AbandonIdempotent(ctx, "pay:s2", "k"))
	_, started, err = store.BeginIdempotent(ctx, "pay:s2", "k", "h2", time.Hour, time.Minute)
	require.NoError(t, err)
	assert.True(t, started, "an abandoned (5xx) key is free again")

	_, err = store.SQL().Exec(`UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE scope = 'pay:s1'`)
	require.NoError(t, err)
	n, err := store.PurgeIdempotency(ctx, 100)
	require.NoError(t, err)
	assert.EqualValues(t, 1, n)
	_, started, err = store.BeginIdempotent(ctx, "pay:s1", "k", "h9", time.Hour, time.Minute)
	require.NoError(t, err)
	assert.True(t, started, "an expired key may be used for a new request")
}

// TestTopUpOnceCreditsOncePerKey proves that the ledger row carries the key, so a repeated top-up with it
// credits nothing, even without the idempotency table.
func TestTopUpOnceCreditsOncePerKey(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	u, err := store.CreateUser(t.Context())
	require.NoError(t, err)
	for range 3 {
		got, err := store.TopUpOnce(t.Context(), u.UUID, 700, "key-1")
		require.NoError(t, err)
		assert.EqualValues(t, 700, got.Balance)
	}
	got, err := store.TopUpOnce(t.Context(), u.UUID, 300, "key-2")
	require.NoError(t, err)
	assert.EqualValues(t, 1000, got.Balance)
	var rows int
	require.NoError(t, store.SQL().Get(&rows, `SELECT count(*) FROM ledger WHERE user_uuid = $1`, u.UUID))
	assert.Equal(t, 2, rows)
}
