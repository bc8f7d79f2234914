package api

import (
	"context"
	"encoding/base64"
	"net/http"
	"strconv"
	"time"

	"github.com/ticketing/concert/booking"
)

// concertListing is one concert of the public list.
type concertListing struct {
	ConcertCode string     `json:"concertCode"`
	Title       string     `json:"title"`
	OpensAt     *time.Time `json:"opensAt"`
	ClosesAt    *time.Time `json:"closesAt"`
	// MaxSeatsPerOrder is how many seats one order may hold; MaxTicketsPerUser how many one fan may buy
	// (null: no limit).
	MaxSeatsPerOrder  int            `json:"maxSeatsPerOrder"`
	MaxTicketsPerUser *int           `json:"maxTicketsPerUser"`
	SeatsLeft         int            `json:"seatsLeft"`
	Dates             []dateResponse `json:"dates"`
}

// listConcerts lists the concerts on sale, for anyone, without a token. The answer is shared by all readers
// for up to ReadCacheTTL, and shared caches (a CDN) may keep it a second too.
func (h *Handler) listConcerts(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	body, err := h.concertList.get(ctx, "", func(ctx context.Context) (encodedBody, error) {
		onSale, err := h.store.ConcertsOnSale(ctx)
		if err != nil {
			return encodedBody{}, err
		}
		out := make([]concertListing, len(onSale))
		for i, c := range onSale {
			l := concertListing{ConcertCode: c.Code, Title: c.Title, OpensAt: optionalTime(c.OpensAt), ClosesAt: optionalTime(c.ClosesAt),
				MaxSeatsPerOrder: c.MaxSeatsPerOrder, MaxTicketsPerUser: optionalLimit(c.MaxTicketsPerUser),
				Dates: make([]dateResponse, len(c.Dates))}
			for j, d := range c.Dates {
				l.Dates[j] = dateResponse{ConcertDate: booking.FormatDate(d.Date), AvailableSeats: d.Available}
				l.SeatsLeft += d.Available
			}
			out[i] = l
		}
		return encodeBody(map[string]any{"concerts": out})
	})
	if err != nil {
		writeProblem(w, r, h.storeProblem(ctx, err, "", ""))
		return
	}
	body.writeWith(w, r, http.StatusOK, "public, max-age=1")
}

// fanBooking is one of a fan's bookings as the fan sees it.
type fanBooking struct {
	SessionID   string     `json:"sessionId"`
	ConcertCode string     `json:"concertCode"`
	Status      string     `json:"status"`
	Since       time.Time  `json:"since"`
	ConcertDate *string    `json:"concertDate"`
	SeatNumber  *int       `json:"seatNumber"`
	SeatNumbers []int      `json:"seatNumbers"`
	HeldUntil   *time.Time `json:"heldUntil"`
	PaymentID   *string    `json:"paymentId"`
	Amount      *int64     `json:"amount"`
	PaidAt      *time.Time `json:"paidAt"`
}

// maxBookingsPage bounds one page of a fan's bookings.
const maxBookingsPage = 100

// fanBookings lists a fan's bookings, newest first: paid ones with their seats and payments, and the live
// session if any. Pages with limit and pageToken.
func (h *Handler) fanBookings(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, p := pathUser(r)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	q := r.URL.Query()
	limit, p := pageLimit(q, 20, maxBookingsPage)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	var before int64
	if s := q.Get("pageToken"); s != "" {
		raw, err := base64.RawURLEncoding.DecodeString(s)
		n, perr := strconv.ParseInt(string(raw), 10, 64)
		if err != nil || perr != nil || n <= 0 {
			writeProblem(w, r, invalid("pageToken is not a token this API returned"))
			return
		}
		before = n
	}
	if _, err := h.store.GetUser(ctx, id); err != nil {
		writeProblem(w, r, h.storeProblem(ctx, err, "user-not-found", "no user has UUID "+id))
		return
	}
	list, err := h.store.FanBookings(ctx, id, before, limit+1)
	if err != nil {
		writeProblem(w, r, h.storeProblem(ctx, err, "", ""))
		return
	}
	next := ""
	if len(list) > limit {
		list = list[:limit]
		next = base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(list[limit-1].Seq, 10)))
	}
	out := make([]fanBooking, len(list))
	for i, b := range list {
		v := fanBooking{SessionID: b.SessionID, ConcertCode: b.ConcertCode, Status: string(b.Status), Since: b.Since.UTC(),
			SeatNumbers: []int{}}
		if b.SeatNumber > 0 {
			d, n := booking.FormatDate(b.ConcertDate), b.SeatNumber
			v.ConcertDate, v.SeatNumber, v.SeatNumbers = &d, &n, b.SeatNumbers
		}
		if b.Status == booking.StatusHeld {
			v.HeldUntil = optionalTime(b.HeldUntil)
		}
		if b.PaymentID != "" {
			pid, amount, at := b.PaymentID, b.Amount, b.PaidAt.UTC()
			v.PaymentID, v.Amount, v.PaidAt = &pid, &amount, &at
		}
		out[i] = v
	}
	body := map[string]any{"bookings": out}
	if next != "" {
		body["nextPageToken"] = next
	}
	writeJSON(w, http.StatusOK, body)
}
