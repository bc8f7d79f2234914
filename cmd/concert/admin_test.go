package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ticketing/concert/internal/teststack"
)

// TestAdminCLIListsCancelsAndControlsAdmission drives `concert admin` against a running stack: it lists a
// held booking, cancels it (the seat comes free) and pauses admission.
func TestAdminCLIListsCancelsAndControlsAdmission(t *testing.T) {
	s := teststack.Start(t, teststack.Options{StuckGrace: time.Second})
	s.CreateConcert("CLI", 5, teststack.ConcertDate{Date: "2026-12-24T19:00:00", Seats: 3, Price: 1000})
	u := s.CreateUser(0)
	tok := s.Token("CLI", u).Str("token")
	r := s.Do(http.MethodPatch, "/api/v1/concerts/CLI", tok, map[string]any{"UUID": u, "concertDate": "2026-12-24T19:00:00", "seatNumber": 2})
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	id := s.BookingID("CLI", u)
	conn := []string{"--api-url", s.URL, "--admin-token", teststack.AdminToken}
	admin := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"admin"}, args...), &out)
		return out.String(), err
	}

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		out, err := admin(append([]string{"bookings", "list", "--concert", "CLI", "--status", "HELD"}, conn...)...)
		assert.NoError(c, err)
		assert.Contains(c, out, id)
		assert.Contains(c, out, "2026-12-24T19:00:00 #2")
	}, 30*time.Second, 200*time.Millisecond)

	out, err := admin(append([]string{"bookings", "list", "--stuck"}, conn...)...)
	require.NoError(t, err)
	assert.Contains(t, out, "0 booking(s)", "a fresh hold is not stuck")
	// The hold's end moves into the past in the store while its workflow's timer still waits: stuck.
	_, err = s.SQL.Exec(`UPDATE sessions SET held_until = now() - interval '5 seconds' WHERE workflow_id = $1`, id)
	require.NoError(t, err)
	out, err = admin(append([]string{"bookings", "list", "--stuck"}, conn...)...)
	require.NoError(t, err)
	assert.Contains(t, out, "WHAT IT NEEDS")
	assert.Contains(t, out, id)
	assert.Contains(t, out, "workers")

	out, err = admin(append([]string{"bookings", "cancel", id, "--reason", "stuck payment page", "--actor", "agent-1"}, conn...)...)
	require.NoError(t, err)
	assert.Contains(t, out, "CANCELLED")
	var status string
	require.NoError(t, s.SQL.Get(&status, `SELECT status FROM seats WHERE concert_code = 'CLI' AND seat_number = 2`))
	assert.Equal(t, "AVAILABLE", status)

	out, err = admin(append([]string{"admission", "CLI", "--pause", "--max-active", "7"}, conn...)...)
	require.NoError(t, err)
	assert.Equal(t, "CLI: paused=true maxActive=7\n", out)

	out, err = admin(append([]string{"admission", "CLI", "--closes-at", "now"}, conn...)...)
	require.NoError(t, err)
	assert.Regexp(t, `^CLI: paused=true maxActive=7 closesAt=\S+Z\n$`, out, "support closes the sale now")
	_, err = admin(append([]string{"admission", "CLI", "--closes-at", "now"}, conn...)...)
	require.Error(t, err, "a closed sale's closing can no longer move")
	assert.Contains(t, err.Error(), "409 The sale has closed")
	_, err = admin(append([]string{"admission", "CLI", "--opens-at", "tomorrow"}, conn...)...)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "400")

	_, err = admin(append([]string{"bookings", "cancel", id}, conn...)...)
	assert.Error(t, err, "a reason is required")
	_, err = admin("bookings", "list", "--api-url", s.URL, "--admin-token", "wrong")
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "401"), err.Error())
}

// Asking the admin command for help prints its usage and succeeds; an unknown command still fails.
func TestAdminHelpPrintsUsageAndSucceeds(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help", "help"} {
		var out strings.Builder
		require.NoError(t, runAdmin(t.Context(), []string{arg}, &out), arg)
		assert.Contains(t, out.String(), "concert admin bookings cancel", arg)
	}
	var out strings.Builder
	assert.ErrorContains(t, runAdmin(t.Context(), []string{"frobnicate"}, &out), "unknown command")
}
