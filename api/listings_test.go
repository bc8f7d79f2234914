package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ticketing/concert/internal/teststack"
)

// TestAnyoneListsTheConcertsOnSale proves the public concert list: no token, every concert with a seat left,
// seats left as the fan's own next read shows them, a sold-out concert gone at once, shared-cacheable.
func TestAnyoneListsTheConcertsOnSale(t *testing.T) {
	t.Parallel()
	s := teststack.Start(t, teststack.Options{})
	s.CreateConcert("LIST-A", 5, teststack.ConcertDate{Date: eve, Seats: 2, Price: price}, teststack.ConcertDate{Date: xmas, Seats: 3, Price: price})
	s.CreateConcert("LIST-B", 5, teststack.ConcertDate{Date: eve, Seats: 1, Price: price})
	codes := func(r teststack.Response) map[string]float64 {
		out := map[string]float64{}
		for _, c := range r.Body["concerts"].([]any) {
			m := c.(map[string]any)
			out[m["concertCode"].(string)] = m["seatsLeft"].(float64)
		}
		return out
	}
	r := s.Do(http.MethodGet, "/api/v1/concerts", "", nil)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	assert.Equal(t, map[string]float64{"LIST-A": 5, "LIST-B": 1}, codes(r))
	assert.Equal(t, "public, max-age=1", r.Header.Get("Cache-Control"))

	fan := s.CreateUser(price)
	tok := s.Token("LIST-B", fan).Str("token")
	require.Equal(t, http.StatusOK, s.Do(http.MethodPatch, "/api/v1/concerts/LIST-B", tok, reserveBody(fan, eve, 1)).Status)
	require.Equal(t, http.StatusCreated, s.Do(http.MethodPost, "/api/v1/payments", tok, map[string]any{"UUID": fan}).Status)
	r = s.Do(http.MethodGet, "/api/v1/concerts", "", nil)
	assert.Equal(t, map[string]float64{"LIST-A": 5}, codes(r), "a sold-out concert leaves the list at once")
}

// TestAFanListsTheirBookingsNewestFirst proves a fan's bookings: the paid one with seat, amount and payment,
// the live one on top, pages that join up, and clear errors for a bad request or an unknown fan.
func TestAFanListsTheirBookingsNewestFirst(t *testing.T) {
	t.Parallel()
	s := teststack.Start(t, teststack.Options{})
	s.CreateConcert("MINE-A", 5, teststack.ConcertDate{Date: eve, Seats: 3, Price: price})
	s.CreateConcert("MINE-B", 5, teststack.ConcertDate{Date: xmas, Seats: 3, Price: price})
	fan := s.CreateUser(price)
	path := "/api/v1/users/" + fan + "/bookings"

	r := s.Do(http.MethodGet, path, "", nil)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	assert.Empty(t, r.Body["bookings"])

	b := s.Token("MINE-B", fan).Str("token")
	require.Equal(t, http.StatusOK, s.Do(http.MethodPatch, "/api/v1/concerts/MINE-B", b, reserveBody(fan, xmas, 2)).Status)
	paid := s.Do(http.MethodPost, "/api/v1/payments", b, map[string]any{"UUID": fan})
	require.Equal(t, http.StatusCreated, paid.Status)
	a := s.Token("MINE-A", fan).Str("token")
	require.Equal(t, http.StatusOK, s.Do(http.MethodPatch, "/api/v1/concerts/MINE-A", a, reserveBody(fan, eve, 3)).Status)

	r = s.Do(http.MethodGet, path, "", nil)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	list := r.Body["bookings"].([]any)
	require.Len(t, list, 2)
	live, bought := list[0].(map[string]any), list[1].(map[string]any)
	assert.Equal(t, "MINE-A", live["concertCode"])
	assert.Equal(t, "HELD", live["status"])
	assert.EqualValues(t, 3, live["seatNumber"])
	assert.NotNil(t, live["heldUntil"])
	assert.Nil(t, live["paymentId"])
	assert.Equal(t, "MINE-B", bought["concertCode"])
	assert.Equal(t, "PAID", bought["status"])
	assert.Equal(t, xmas, bought["concertDate"])
	assert.EqualValues(t, 2, bought["seatNumber"])
	assert.Equal(t, paid.Str("paymentId"), bought["paymentId"])
	assert.EqualValues(t, price, bought["amount"])
	assert.Nil(t, bought["heldUntil"])
	assert.Nil(t, r.Body["nextPageToken"])

	first := s.Do(http.MethodGet, path+"?limit=1", "", nil)
	require.Len(t, first.Body["bookings"], 1)
	require.NotEmpty(t, first.Str("nextPageToken"))
	second := s.Do(http.MethodGet, path+"?limit=1&pageToken="+first.Str("nextPageToken"), "", nil)
	require.Equal(t, http.StatusOK, second.Status, string(second.Raw))
	require.Len(t, second.Body["bookings"], 1)
	assert.Equal(t, bought["sessionId"], second.Body["bookings"].([]any)[0].(map[string]any)["sessionId"])
	assert.Empty(t, second.Str("nextPageToken"))

	assert.Equal(t, http.StatusNotFound, s.Do(http.MethodGet, "/api/v1/users/"+uuid.NewString()+"/bookings", "", nil).Status)
	assert.Equal(t, http.StatusBadRequest, s.Do(http.MethodGet, path+"?limit=0", "", nil).Status)
	assert.Equal(t, http.StatusBadRequest, s.Do(http.MethodGet, path+"?pageToken=nope!", "", nil).Status)
	assert.Equal(t, http.StatusBadRequest, s.Do(http.MethodGet, "/api/v1/users/not-a-uuid/bookings", "", nil).Status)
}

// TestAConcertsTicketLimitHoldsAcrossAFansSessions proves maxTicketsPerUser end to end: set at creation, a
// fan who bought up to it gets 409 ticket-limit-reached on their next session's hold, and other fans buy on.
func TestAConcertsTicketLimitHoldsAcrossAFansSessions(t *testing.T) {
	t.Parallel()
	s := teststack.Start(t, teststack.Options{})
	create := func(limit any) teststack.Response {
		return s.Do(http.MethodPost, "/api/v1/admin/concerts", teststack.AdminToken, map[string]any{
			"concertCode": "ONE-EACH", "title": "One each", "maxActive": 5, "maxTicketsPerUser": limit,
			"dates": []map[string]any{{"concertDate": eve, "seats": 4, "price": price}},
		})
	}
	assert.Equal(t, http.StatusBadRequest, create(0).Status)
	c := create(1)
	require.Equal(t, http.StatusCreated, c.Status, string(c.Raw))
	assert.EqualValues(t, 1, c.Body["maxTicketsPerUser"])

	fan, other := s.CreateUser(2*price), s.CreateUser(price)
	first := s.Token("ONE-EACH", fan).Str("token")
	require.Equal(t, http.StatusOK, s.Do(http.MethodPatch, "/api/v1/concerts/ONE-EACH", first, reserveBody(fan, eve, 1)).Status)
	require.Equal(t, http.StatusCreated, s.Do(http.MethodPost, "/api/v1/payments", first, map[string]any{"UUID": fan}).Status)

	second := s.Token("ONE-EACH", fan).Str("token")
	r := s.Do(http.MethodPatch, "/api/v1/concerts/ONE-EACH", second, reserveBody(fan, eve, 2))
	assert.Equal(t, http.StatusConflict, r.Status, string(r.Raw))
	assert.Equal(t, "/problems/ticket-limit-reached", r.ProblemType())
	assert.Equal(t, "ACTIVE", s.Do(http.MethodGet, "/api/v1/concerts/ONE-EACH/token", second, nil).Str("status"),
		"the refused hold leaves the session admitted")

	o := s.Token("ONE-EACH", other).Str("token")
	assert.Equal(t, http.StatusOK, s.Do(http.MethodPatch, "/api/v1/concerts/ONE-EACH", o, reserveBody(other, eve, 2)).Status)
}

// TestAFanWhoComesBeforeTheOpeningWaitsInThePreQueue proves opensAt end to end: set at creation and shown
// in the concert list; a fan who asks before it waits with no position and a wait counting down to the
// opening, even with slots free; once the sale opens the waiting room draws and admits.
func TestAFanWhoComesBeforeTheOpeningWaitsInThePreQueue(t *testing.T) {
	t.Parallel()
	s := teststack.Start(t, teststack.Options{})
	opens := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	c := s.Do(http.MethodPost, "/api/v1/admin/concerts", teststack.AdminToken, map[string]any{
		"concertCode": "SOON", "title": "Soon", "maxActive": 5, "opensAt": opens.Format(time.RFC3339),
		"dates": []map[string]any{{"concertDate": eve, "seats": 4, "price": price}},
	})
	require.Equal(t, http.StatusCreated, c.Status, string(c.Raw))
	assert.Equal(t, opens.Format(time.RFC3339), c.Str("opensAt"))
	list := s.Do(http.MethodGet, "/api/v1/concerts", "", nil)
	assert.Equal(t, opens.Format(time.RFC3339), list.Body["concerts"].([]any)[0].(map[string]any)["opensAt"])

	early, earlier := s.CreateUser(0), s.CreateUser(0)
	a, b := s.Token("SOON", early), s.Token("SOON", earlier)
	for _, tok := range []teststack.Response{a, b} {
		assert.Equal(t, "WAITING", tok.Str("status"), "nobody is admitted before the opening, slots free or not")
		assert.EqualValues(t, 0, tok.Int("position"), "no place before the draw")
		assert.Equal(t, opens.Format(time.RFC3339), tok.Str("opensAt"))
		assert.InDelta(t, time.Hour.Seconds(), float64(tok.Int("estimatedWaitSeconds")), 60)
	}
	poll := s.Do(http.MethodGet, "/api/v1/concerts/SOON/token", a.Str("token"), nil)
	assert.Equal(t, opens.Format(time.RFC3339), poll.Str("opensAt"))

	// An admin moves the opening up to a second from now: the fans see it, and the waiting room (woken by
	// the change) sleeps until then, draws and admits.
	sooner := time.Now().Add(time.Second).UTC()
	r := s.Do(http.MethodPost, "/api/v1/admin/concerts/SOON/admission", teststack.AdminToken,
		map[string]any{"opensAt": sooner.Format(time.RFC3339Nano)})
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	assert.NotEmpty(t, r.Str("opensAt"))
	assert.NotEqual(t, opens.Format(time.RFC3339), s.Do(http.MethodGet, "/api/v1/concerts/SOON/token", a.Str("token"), nil).Str("opensAt"))
	waitForStatus(t, s, "SOON", a.Str("token"), "ACTIVE")
	waitForStatus(t, s, "SOON", b.Str("token"), "ACTIVE")
	assert.Empty(t, s.Do(http.MethodGet, "/api/v1/concerts/SOON/token", a.Str("token"), nil).Str("opensAt"))
	moved := s.Do(http.MethodPost, "/api/v1/admin/concerts/SOON/admission", teststack.AdminToken,
		map[string]any{"opensAt": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	assert.Equal(t, http.StatusConflict, moved.Status, "an opened sale's opening no longer moves")
	assert.Equal(t, "/problems/sale-opened", moved.ProblemType())
	assert.Equal(t, http.StatusBadRequest, s.Do(http.MethodPost, "/api/v1/admin/concerts", teststack.AdminToken, map[string]any{
		"concertCode": "BAD-OPEN", "title": "x", "maxActive": 1, "opensAt": "2026-12-01T10:00:00",
		"dates": []map[string]any{{"concertDate": eve, "seats": 1, "price": price}},
	}).Status, "an opening without its zone is refused")
}
