package db_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ticketing/concert/db"
	"github.com/ticketing/concert/db/dbtest"
)

func TestCreateUserStartsWithZeroBalanceAndCanBeRead(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)

	created, err := store.CreateUser(t.Context())
	require.NoError(t, err)
	_, err = uuid.Parse(created.UUID)
	require.NoError(t, err, "a new user gets a UUID")
	assert.Zero(t, created.Balance)

	got, err := store.GetUser(t.Context(), created.UUID)
	require.NoError(t, err)
	assert.Equal(t, created.UUID, got.UUID)
	assert.Zero(t, got.Balance)
	assert.WithinDuration(t, time.Now(), got.CreatedAt, clockSkew)

	chosen := uuid.NewString()
	seeded, err := store.CreateUserWithID(t.Context(), chosen)
	require.NoError(t, err)
	assert.Equal(t, chosen, seeded.UUID)
}

func TestUserErrors(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	existing := newUser(t, store, 0)
	tests := []struct {
		name string
		call func(t *testing.T) error
		want error
	}{
		{name: "GetUser of unknown UUID is not found", want: db.ErrNotFound, call: func(t *testing.T) error {
			_, err := store.GetUser(t.Context(), uuid.NewString())
			return err
		}},
		{name: "TopUp of unknown UUID is not found", want: db.ErrNotFound, call: func(t *testing.T) error {
			_, err := store.TopUp(t.Context(), uuid.NewString(), 100)
			return err
		}},
		{name: "CreateUserWithID of a taken UUID is duplicate", want: db.ErrDuplicate, call: func(t *testing.T) error {
			_, err := store.CreateUserWithID(t.Context(), existing)
			return err
		}},
	}
	t.Run("cases", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				require.ErrorIs(t, tt.call(t), tt.want)
			})
		}
	})
	assert.Equal(t, 1, count(t, store, `SELECT count(*) FROM users`), "no failed call created a user")
	assert.Zero(t, count(t, store, `SELECT count(*) FROM ledger`), "no failed call wrote a ledger row")
}

func TestTopUpAddsToBalanceAndWritesOneLedgerRowPerCall(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	user := newUser(t, store, 0)

	u, err := store.TopUp(t.Context(), user, 10_000)
	require.NoError(t, err)
	assert.Equal(t, int64(10_000), u.Balance)
	u, err = store.TopUp(t.Context(), user, 2_500)
	require.NoError(t, err)
	assert.Equal(t, int64(12_500), u.Balance, "TopUp returns the new balance")

	assert.Equal(t, int64(12_500), balance(t, store, user))
	assert.Equal(t, balance(t, store, user), ledgerSum(t, store, user))
	assert.Equal(t, 2, count(t, store, `SELECT count(*) FROM ledger WHERE user_uuid = $1 AND kind = 'TOPUP'`, user))
}

func TestConcurrentTopUpsAreAllCounted(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	user := newUser(t, store, 0)
	const calls = 50

	errs := make([]error, calls)
	together(calls, func(i int) {
		_, errs[i] = store.TopUp(t.Context(), user, int64(i+1))
	})

	for i, err := range errs {
		require.NoError(t, err, "top-up %d", i)
	}
	const want = calls * (calls + 1) / 2 // 1 + 2 + ... + calls
	assert.Equal(t, int64(want), balance(t, store, user))
	assert.Equal(t, int64(want), ledgerSum(t, store, user))
	assert.Equal(t, calls, count(t, store, `SELECT count(*) FROM ledger WHERE user_uuid = $1`, user))
}
