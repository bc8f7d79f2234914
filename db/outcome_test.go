package db_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ticketing/concert/db"
	"github.com/ticketing/concert/db/dbtest"
)

// TestCheckAdmissionFindsBreachesOfMaxActiveAndFIFO proves the waiting room's two promises are checked: a
// clean on-sale passes, and each breach, made by hand, is reported on its subject.
func TestCheckAdmissionFindsBreachesOfMaxActiveAndFIFO(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	s := newShow(t, store, 1, 3, 1000)
	users := newUsers(t, store, 3)
	admitted(t, store, s.code, users[0])
	early := join(t, store, s.code, users[1])
	late := join(t, store, s.code, users[2])
	require.Equal(t, statusWaiting, early.Status)

	found, err := store.CheckAdmission(t.Context(), s.code)
	require.NoError(t, err)
	assert.Empty(t, found, "one admitted, two waiting in order: nothing wrong")

	// The later arrival let in past the earlier one, and past maxActive.
	exec(t, store, `UPDATE sessions SET status = 'ACTIVE', admitted_at = now(), active_until = now() + interval '1 minute' WHERE id = $1`, late.ID)
	found, err = store.CheckAdmission(t.Context(), s.code)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{db.InvariantAdmissionKeepsToMaxActive, db.InvariantAdmissionIsFIFO}, invariants(found))
	for _, v := range found {
		switch v.Invariant {
		case db.InvariantAdmissionKeepsToMaxActive:
			assert.Equal(t, "concert "+s.code, v.Subject)
			assert.Equal(t, "2 live sessions, maxActive 1", v.Detail)
		case db.InvariantAdmissionIsFIFO:
			assert.Equal(t, "session "+early.ID, v.Subject)
		}
	}

	other := newShow(t, store, 1, 3, 1000)
	found, err = store.CheckAdmission(t.Context(), other.code)
	require.NoError(t, err)
	assert.Empty(t, found, "the check looks at one concert")
}

func invariants(vs []db.Violation) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Invariant
	}
	return out
}
