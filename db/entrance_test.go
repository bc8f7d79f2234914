package db_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ticketing/concert/db/dbtest"
)

func TestEntranceBaselineInsertsEveryRowAndLeavesNothingBehind(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	res, err := store.EntranceBaseline(t.Context(), 200, 4)
	require.NoError(t, err)
	assert.Equal(t, 200, res.Inserts)
	assert.Equal(t, 4, res.Workers)
	assert.Positive(t, res.InsertsPerSecond)
	var left int
	require.NoError(t, store.SQL().GetContext(t.Context(), &left,
		`SELECT count(*) FROM pg_tables WHERE tablename LIKE 'entrance_baseline_%'`))
	assert.Zero(t, left, "the scratch table is dropped")
}
