package api

import (
	"context"
	"errors"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/ticketing/concert/booking"
	"github.com/ticketing/concert/db"
)

// dateResponse is one performance in the dates list.
type dateResponse struct {
	ConcertDate    string `json:"concertDate"`
	AvailableSeats int    `json:"availableSeats"`
}

// concertDates lists the performances of the token's concert with the seats a user could hold now. The
// answer is shared by all readers for up to ReadCacheTTL.
func (h *Handler) concertDates(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s, p := h.session(r, sessionCheck{reads: true})
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	body, err := h.dateLists.get(ctx, s.ConcertCode, func(ctx context.Context) (encodedBody, error) {
		c, err := h.store.GetConcert(ctx, s.ConcertCode)
		if err != nil {
			return encodedBody{}, err
		}
		dates, err := h.store.ConcertDates(ctx, c.Code)
		if err != nil {
			return encodedBody{}, err
		}
		out := make([]dateResponse, len(dates))
		for i, d := range dates {
			out[i] = dateResponse{ConcertDate: booking.FormatDate(d.Date), AvailableSeats: d.AvailableSeats}
		}
		return encodeBody(map[string]any{"concertCode": c.Code, "title": c.Title, "dates": out})
	})
	if err != nil {
		writeProblem(w, r, h.storeProblem(ctx, err, "concert-not-found", "no concert has code "+s.ConcertCode))
		return
	}
	body.write(w, r, http.StatusOK)
}

// seatResponse is one seat of a seat map.
type seatResponse struct {
	SeatNumber int    `json:"seatNumber"`
	Price      int64  `json:"price"`
	Status     string `json:"status"`
}

// seatMap returns every seat of one performance with its status. The answer is shared by all readers for up
// to ReadCacheTTL, so a stampede on one seat map costs one query per TTL.
func (h *Handler) seatMap(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s, p := h.session(r, sessionCheck{reads: true})
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	raw := r.URL.Query().Get("concertDate")
	if raw == "" {
		writeProblem(w, r, invalid("the query parameter concertDate is required, like ?concertDate=2026-12-24T19:00:00"))
		return
	}
	date, err := booking.ParseDate(raw)
	if err != nil {
		writeProblem(w, r, invalid("%s", err.Error()))
		return
	}
	key := s.ConcertCode + "|" + booking.FormatDate(date) // as seatsChanged forgets it
	body, err := h.seatMaps.get(ctx, key, func(ctx context.Context) (encodedBody, error) {
		seats, err := h.store.Seats(ctx, s.ConcertCode, date)
		if err != nil {
			return encodedBody{}, err
		}
		out := make([]seatResponse, len(seats))
		for i, st := range seats {
			out[i] = seatResponse{SeatNumber: st.Number, Price: st.Price, Status: st.Status}
		}
		return encodeBody(map[string]any{"concertDate": booking.FormatDate(date), "seats": out})
	})
	if err != nil {
		writeProblem(w, r, h.storeProblem(ctx, err, "date-not-found", "the concert has no performance on "+raw))
		return
	}
	body.write(w, r, http.StatusOK)
}

// Limits of a concert created through the admin API.
const (
	maxTitleLength = 200
	maxDates       = 100
	maxMaxActive   = 100_000
	// maxTicketsPerUser bounds a concert's ticket limit per fan (a limit above it is no limit worth stating).
	maxTicketsPerUser = 1_000
	maxTicketPrice    = 100_000_000
	maxConcertSeats   = booking.MaxSeatsPerDate
)

// createConcert puts a concert on sale and starts its waiting room.
func (h *Handler) createConcert(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	b, p := readBody(w, r, false)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	c, p := parseConcert(b)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	if err := h.store.CreateConcert(r.Context(), c); err != nil {
		writeProblem(w, r, h.storeProblem(ctx, err, "", ""))
		return
	}
	if err := h.door.WakeAdmission(r.Context(), c.Code); err != nil {
		// The first waiting session starts it too; the concert exists either way.
		logFrom(ctx, h.log).Warn("Could not start the waiting room", "concertCode", c.Code, "error", err)
	}
	dates := make([]map[string]any, len(c.Dates))
	for i, d := range c.Dates {
		dates[i] = map[string]any{"concertDate": booking.FormatDate(d.Date), "seats": d.Seats, "price": d.Price}
	}
	writeJSON(w, http.StatusCreated, map[string]any{
		"concertCode": c.Code, "title": c.Title, "maxActive": c.MaxActive, "maxTicketsPerUser": optionalLimit(c.MaxTicketsPerUser),
		"maxSeatsPerOrder": c.MaxSeatsPerOrder, "opensAt": optionalTime(c.OpensAt), "closesAt": optionalTime(c.ClosesAt),
		"dates": dates,
	})
}

// optionalLimit is a limit as the answers give it: null for none (0).
func optionalLimit(n int) *int {
	if n <= 0 {
		return nil
	}
	return &n
}

// parseConcert checks an admin's concert description.
func parseConcert(b body) (db.NewConcert, *Problem) {
	var c db.NewConcert
	var p *Problem
	if c.Code, p = b.str("concertCode"); p != nil {
		return c, p
	}
	if !booking.ValidConcertCode(c.Code) {
		return c, invalid("concertCode must be 1-64 letters, digits, '-' or '_', starting with a letter or digit")
	}
	if c.Title, p = b.str("title"); p != nil {
		return c, p
	}
	if c.Title == "" || utf8.RuneCountInString(c.Title) > maxTitleLength {
		return c, invalid("title must be 1-%d characters", maxTitleLength)
	}
	maxActive, p := b.integer("maxActive")
	if p != nil {
		return c, p
	}
	if maxActive < 1 || maxActive > maxMaxActive {
		return c, invalid("maxActive must be between 1 and %d", maxMaxActive)
	}
	c.MaxActive = int(maxActive)
	if b.given("maxTicketsPerUser") {
		limit, p := b.integer("maxTicketsPerUser")
		if p != nil {
			return c, p
		}
		if limit < 1 || limit > maxTicketsPerUser {
			return c, invalid("maxTicketsPerUser must be between 1 and %d, or null for no limit", maxTicketsPerUser)
		}
		c.MaxTicketsPerUser = int(limit)
	}
	c.MaxSeatsPerOrder = 1
	if b.given("maxSeatsPerOrder") {
		n, p := b.integer("maxSeatsPerOrder")
		if p != nil {
			return c, p
		}
		if n < 1 || n > booking.MaxSeatsPerOrder {
			return c, invalid("maxSeatsPerOrder must be between 1 and %d", booking.MaxSeatsPerOrder)
		}
		c.MaxSeatsPerOrder = int(n)
	}
	opens, p := b.instant("opensAt")
	if p != nil {
		return c, p
	}
	closes, p := b.instant("closesAt")
	if p != nil {
		return c, p
	}
	if opens != nil {
		c.OpensAt = *opens
	}
	if closes != nil {
		c.ClosesAt = *closes
		if !closes.After(time.Now()) || (opens != nil && !closes.After(*opens)) {
			return c, invalid("closesAt must be in the future and after opensAt")
		}
	}
	dates, p := b.list("dates")
	if p != nil {
		return c, p
	}
	if len(dates) == 0 || len(dates) > maxDates {
		return c, invalid("dates must list 1-%d performances", maxDates)
	}
	seen := map[time.Time]bool{}
	for _, d := range dates {
		var nd db.NewConcertDate
		if nd.Date, p = d.date("concertDate"); p != nil {
			return c, p
		}
		if seen[nd.Date] {
			return c, invalid("concertDate %s is listed twice", booking.FormatDate(nd.Date))
		}
		seen[nd.Date] = true
		seats, p := d.integer("seats")
		if p != nil {
			return c, p
		}
		if seats < 1 || seats > maxConcertSeats {
			return c, invalid("seats must be between 1 and %d", maxConcertSeats)
		}
		nd.Seats = int(seats)
		if nd.Price, p = d.integer("price"); p != nil {
			return c, p
		}
		if nd.Price < 0 || nd.Price > maxTicketPrice {
			return c, invalid("price must be between 0 and %d won", maxTicketPrice)
		}
		c.Dates = append(c.Dates, nd)
	}
	return c, nil
}

// concertExists returns a 404 problem unless the concert code names a concert.
func (h *Handler) concertExists(ctx context.Context, code string) *Problem {
	if !booking.ValidConcertCode(code) {
		return problem(http.StatusNotFound, "concert-not-found", "no concert has code "+code)
	}
	if _, err := h.store.GetConcert(ctx, code); err != nil {
		return h.storeProblem(ctx, err, "concert-not-found", "no concert has code "+code)
	}
	return nil
}

// storeProblem maps a store error: ErrNotFound to 404 with the given slug, ErrDuplicate to 409, and anything
// else (the database is away) to a logged 503.
func (h *Handler) storeProblem(ctx context.Context, err error, notFoundSlug, notFoundDetail string) *Problem {
	switch {
	case errors.Is(err, db.ErrNotFound) && notFoundSlug != "":
		status := http.StatusNotFound
		if notFoundSlug == "invalid-token" {
			status = http.StatusUnauthorized
		}
		return problem(status, notFoundSlug, notFoundDetail)
	case errors.Is(err, db.ErrDuplicate):
		return problem(http.StatusConflict, "duplicate-concert", err.Error())
	case errors.Is(err, context.Canceled):
		return problem(http.StatusServiceUnavailable, "service-unavailable", "the request was cancelled")
	}
	logFrom(ctx, h.log).Error("Store request failed", "error", err)
	return problem(http.StatusServiceUnavailable, "service-unavailable", "the database did not answer; try again")
}
