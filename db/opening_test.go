package db_test

import (
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ticketing/concert/booking"
	"github.com/ticketing/concert/db"
	"github.com/ticketing/concert/db/dbtest"
)

// TestTheSaleOpensWithADrawOfThePreQueue proves the opening of a sale: before opensAt every fan waits
// (with slots free) and nobody is admitted; the first waiting-room step after it deals the pre-queue's
// places out again in the order the concert's secret salt fixes, admits the first of them, and records the
// draw, so a second step neither deals again nor moves anyone; a fan who arrives after the opening lines up
// behind the whole pre-queue.
func TestTheSaleOpensWithADrawOfThePreQueue(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	code := "OPEN-" + uuid.NewString()[:8]
	require.NoError(t, store.CreateConcert(t.Context(), db.NewConcert{
		Code: code, Title: "Opening", MaxActive: 2, OpensAt: time.Now().Add(time.Hour),
		Dates: []db.NewConcertDate{{Date: showDate, Seats: 10, Price: 1_000}},
	}))
	users := newUsers(t, store, 9)
	var pre []booking.Session
	for _, u := range users[:8] {
		j, err := store.Join(t.Context(), newSession(code, u))
		require.NoError(t, err)
		require.Equal(t, statusWaiting, j.Status, "before the opening every fan waits, slots free or not")
		pre = append(pre, j.Session)
	}
	opens, err := store.PendingOpening(t.Context(), code)
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(time.Hour), opens, time.Minute)

	step, err := store.AdmitNext(t.Context(), code, window)
	require.NoError(t, err)
	assert.Zero(t, step.Admitted, "nobody is admitted before the opening")
	assert.False(t, step.OpensAt.IsZero(), "the step says when the sale opens")

	exec(t, store, `UPDATE concerts SET opens_at = now() WHERE code = $1`, code) // the sale opens now
	arrival := seqs(t, store, code)
	var salt string
	require.NoError(t, store.SQL().GetContext(t.Context(), &salt, `SELECT draw_salt::text FROM concerts WHERE code = $1`, code))
	var want []string // the pre-queue in the order the salt fixes
	require.NoError(t, store.SQL().SelectContext(t.Context(), &want,
		`SELECT id FROM sessions WHERE concert_code = $1 ORDER BY md5($2 || id), id`, code, salt))

	step, err = store.AdmitNext(t.Context(), code, window)
	require.NoError(t, err)
	assert.Equal(t, 2, step.Admitted)
	assert.True(t, step.OpensAt.IsZero())
	drawn := seqs(t, store, code)
	assert.ElementsMatch(t, values(arrival), values(drawn), "the draw deals the same places out again")
	assert.Equal(t, want, byPlace(drawn), "in the order the concert's salt fixes")
	for i, id := range byPlace(drawn) {
		s, err := store.GetSession(t.Context(), id)
		require.NoError(t, err)
		if i < 2 {
			assert.Equal(t, statusActive, s.Status, "the first two of the draw are admitted")
		} else {
			assert.Equal(t, statusWaiting, s.Status)
		}
	}
	opens, err = store.PendingOpening(t.Context(), code)
	require.NoError(t, err)
	assert.True(t, opens.IsZero(), "drawn")

	late, err := store.Join(t.Context(), newSession(code, users[8]))
	require.NoError(t, err)
	require.Equal(t, statusWaiting, late.Status)
	for _, s := range pre {
		assert.Less(t, drawn[s.ID], late.Seq, "a later arrival lines up behind the pre-queue")
	}
	_, err = store.AdmitNext(t.Context(), code, window)
	require.NoError(t, err)
	again := seqs(t, store, code)
	delete(again, late.ID)
	assert.Equal(t, drawn, again, "a second step deals nothing again")

	found, err := store.CheckInvariants(t.Context(), time.Minute)
	require.NoError(t, err)
	assert.Empty(t, found)
	// A place dealt twice and one lost, and a session admitted before the opening, are reported.
	first, second := byPlace(drawn)[0], byPlace(drawn)[1]
	exec(t, store, `UPDATE sessions SET seq = seq + 100000 WHERE id = $1`, second)
	exec(t, store, `UPDATE sessions SET admitted_at = admitted_at - interval '2 hours' WHERE id = $1`, first)
	requireViolations(t, store, time.Minute, []db.Violation{
		{Invariant: db.InvariantDrawIsAPermutation, Subject: "concert " + code, Detail: "the draw dealt places"},
		{Invariant: db.InvariantAdmittedWithinTheSale, Subject: "session " + first, Detail: "before the sale opened"},
	})
}

// seqs maps each session of a concert to its place (sequence number).
func seqs(t *testing.T, store *db.Store, code string) map[string]int64 {
	t.Helper()
	var rows []struct {
		ID  string `db:"id"`
		Seq int64  `db:"seq"`
	}
	require.NoError(t, store.SQL().SelectContext(t.Context(), &rows, `SELECT id, seq FROM sessions WHERE concert_code = $1`, code))
	out := map[string]int64{}
	for _, r := range rows {
		out[r.ID] = r.Seq
	}
	return out
}

func values(m map[string]int64) []int64 {
	out := make([]int64, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// byPlace lists the sessions in the order of their places.
func byPlace(m map[string]int64) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int { return int(m[a] - m[b]) })
	return ids
}

// TestTheFirstStepAfterTheOpeningDrawsEvenAnEmptyPreQueue proves that a waiting room whose step after the
// opening finds nobody waiting still records the draw, so the fans who come later are not held in a
// pre-queue that only a second step (a wake that may not arrive) would release: they join as in any sale.
func TestTheFirstStepAfterTheOpeningDrawsEvenAnEmptyPreQueue(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	code := "EMPTY-" + uuid.NewString()[:8]
	require.NoError(t, store.CreateConcert(t.Context(), db.NewConcert{
		Code: code, Title: "Nobody early", MaxActive: 2, OpensAt: time.Now().Add(time.Hour),
		Dates: []db.NewConcertDate{{Date: showDate, Seats: 10, Price: 1_000}},
	}))
	exec(t, store, `UPDATE concerts SET opens_at = now() WHERE code = $1`, code) // the sale opens, nobody came
	_, err := store.AdmitNext(t.Context(), code, window)
	require.NoError(t, err)
	opens, err := store.PendingOpening(t.Context(), code)
	require.NoError(t, err)
	assert.True(t, opens.IsZero(), "drawn, with nobody in the pre-queue")

	late, err := store.Join(t.Context(), newSession(code, newUser(t, store, 0)))
	require.NoError(t, err)
	assert.Equal(t, statusActive, late.Status, "a fan after the opening is admitted into a free slot at once")
}
