package api_test

import (
	"context"
	"net/http"
	"sort"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"

	"github.com/ticketing/concert/internal/teststack"
)

// A token is decided by PostgreSQL alone: with every Temporal worker stopped (so no workflow task can run),
// a crowd still gets its tokens: at most maxActive admitted at once (a fan whose join finds another join
// holding the concert's lock waits, told that the wait is short while slots are free, for the waiting
// room's next step, which a stopped worker never takes here) and the rest in line. Each answer's position
// counts the fans whose rows had committed ahead of it (a fan whose row was still committing at that moment
// is not counted, so an answer is never a worse place than the fan has); a poll afterwards gives every fan
// its exact place.
func TestTokensAreIssuedWithoutWaitingForAWorkflow(t *testing.T) {
	t.Parallel()
	s := teststack.Start(t, teststack.Options{})
	s.CreateConcert("RUSH", 5, teststack.ConcertDate{Date: eve, Seats: 50, Price: price})
	const fans = 40
	users := make([]string, fans)
	for i := range users {
		users[i] = s.CreateUser(0)
	}
	s.StopWorker()

	answers := make([]teststack.Response, fans)
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Go(func() { answers[i] = s.Token("RUSH", u) })
	}
	wg.Wait()

	type place struct {
		fan      int
		seq      int64
		position int64
	}
	var waiting []place
	active := 0
	for _, a := range answers {
		if a.Str("status") == "ACTIVE" {
			active++
		}
	}
	for i, a := range answers {
		require.Equal(t, http.StatusCreated, a.Status, string(a.Raw))
		require.NotEmpty(t, a.Str("token"))
		switch a.Str("status") {
		case "ACTIVE":
			assert.Zero(t, a.Int("position"))
		case "WAITING":
			sess, err := s.Store.LatestSession(context.Background(), "RUSH", users[i])
			require.NoError(t, err)
			waiting = append(waiting, place{fan: i, seq: sess.Seq, position: a.Int("position")})
			if a.Int("position") <= int64(5-active) {
				assert.LessOrEqual(t, a.Int("estimatedWaitSeconds"), int64(1), "a slot is free for this fan")
			}
		default:
			t.Fatalf("unexpected status %q", a.Str("status"))
		}
	}
	assert.GreaterOrEqual(t, active, 1, "the first join to take the concert's lock is admitted")
	assert.LessOrEqual(t, active, 5, "never more than maxActive")
	require.Len(t, waiting, fans-active)
	sort.Slice(waiting, func(i, j int) bool { return waiting[i].seq < waiting[j].seq })
	for i, w := range waiting {
		assert.LessOrEqual(t, w.position, int64(i+1), "never told a place behind the true one")
		assert.Greater(t, w.position, int64(0))
	}
	got := make([]int64, len(waiting))
	for i, w := range waiting {
		poll := s.Do(http.MethodGet, "/api/v1/concerts/RUSH/token", answers[w.fan].Str("token"), nil)
		require.Equal(t, http.StatusOK, poll.Status)
		got[i] = poll.Int("position")
	}
	for i := range got {
		assert.Equal(t, int64(i+1), got[i], "polled positions are exact")
	}
}

// A fan waiting in line has no workflow yet (by default it starts with the admission), and support can still
// cancel the booking: the row is ended directly and audited.
func TestSupportCancelsAWaitingSessionThatHasNoWorkflowYet(t *testing.T) {
	t.Parallel()
	s := teststack.Start(t, teststack.Options{})
	s.CreateConcert("LINE", 1, teststack.ConcertDate{Date: eve, Seats: 5, Price: price})
	first, second := s.CreateUser(0), s.CreateUser(0)
	require.Equal(t, "ACTIVE", s.Token("LINE", first).Str("status"))
	w := s.Token("LINE", second)
	require.Equal(t, "WAITING", w.Str("status"))

	id := s.BookingID("LINE", second)
	_, err := s.Temporal.DescribeWorkflowExecution(context.Background(), id, "")
	var notFound *serviceerror.NotFound
	require.ErrorAs(t, err, &notFound, "the waiting fan has no workflow")

	r := s.Do(http.MethodPost, "/api/v1/admin/bookings/"+id+"/cancel", teststack.AdminToken,
		map[string]any{"reason": "duplicate account", "actor": "agent-2"})
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	assert.Equal(t, "CANCELLED", r.Str("status"))
	assert.Equal(t, "CANCELLED", s.Do(http.MethodGet, "/api/v1/concerts/LINE/token", w.Str("token"), nil).Str("status"))
	trail, err := s.Store.AuditTrail(context.Background(), id)
	require.NoError(t, err)
	require.Len(t, trail, 1)
	assert.Equal(t, "agent-2", trail[0].Actor)
}

// A reserve of a seat another fan holds is answered from PostgreSQL: it needs no workflow task, so it is
// answered even with every worker stopped.
func TestSeatTakenIsAnsweredWithoutTheWorkflow(t *testing.T) {
	t.Parallel()
	s := teststack.Start(t, teststack.Options{})
	s.CreateConcert("RACE", 5, teststack.ConcertDate{Date: eve, Seats: 5, Price: price})
	first, second := s.CreateUser(0), s.CreateUser(0)
	a, b := s.Token("RACE", first), s.Token("RACE", second)
	require.Equal(t, "ACTIVE", b.Str("status"))
	require.Equal(t, http.StatusOK, s.Do(http.MethodPatch, "/api/v1/concerts/RACE", a.Str("token"), reserveBody(first, eve, 1)).Status)
	s.StopWorker()
	r := s.Do(http.MethodPatch, "/api/v1/concerts/RACE", b.Str("token"), reserveBody(second, eve, 1))
	assert.Equal(t, http.StatusConflict, r.Status, string(r.Raw))
	assert.Equal(t, "/problems/seat-taken", r.ProblemType())
}
