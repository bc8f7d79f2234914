package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ticketing/concert/booking"
)

// maxBodyBytes bounds every request body; the largest legitimate one (a concert with many dates) is far
// smaller.
const maxBodyBytes = 64 << 10

// body is a decoded JSON object whose members are read one by one, so each bad field gets its own message.
type body map[string]json.RawMessage

// readBody decodes the request body as one JSON object, whatever Content-Type says (curl's -d sends a form
// type by default; what matters is that the body parses). An empty body reads as {} when optional.
func readBody(w http.ResponseWriter, r *http.Request, optional bool) (body, *Problem) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, problem(http.StatusRequestEntityTooLarge, "payload-too-large", fmt.Sprintf("the body may be at most %d bytes", maxBodyBytes))
		}
		return nil, problem(http.StatusBadRequest, "invalid-json", "the body could not be read")
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		if optional {
			return body{}, nil
		}
		return nil, problem(http.StatusBadRequest, "invalid-json", "a JSON object body is required")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	var b body
	if err := dec.Decode(&b); err != nil || b == nil {
		return nil, problem(http.StatusBadRequest, "invalid-json", "the body must be one JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, problem(http.StatusBadRequest, "invalid-json", "the body must be one JSON object, with nothing after it")
	}
	return b, nil
}

func invalid(format string, args ...any) *Problem {
	return problem(http.StatusBadRequest, "invalid-request", fmt.Sprintf(format, args...))
}

// given reports whether the body has the member with a value other than null: an optional member given as
// null is absent.
func (b body) given(name string) bool {
	raw, ok := b[name]
	return ok && string(raw) != "null"
}

// instant reads an optional member that is an instant with its zone (RFC 3339): nil when absent or null.
func (b body) instant(name string) (*time.Time, *Problem) {
	if !b.given(name) {
		return nil, nil
	}
	s, p := b.str(name)
	if p != nil {
		return nil, p
	}
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return nil, invalid("%s must be an instant with its zone, like 2026-12-01T10:00:00Z", name)
	}
	return &at, nil
}

// str reads a required string member.
func (b body) str(name string) (string, *Problem) {
	raw, ok := b[name]
	if !ok || string(raw) == "null" {
		return "", invalid("%s is required", name)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", invalid("%s must be a string", name)
	}
	if strings.ContainsRune(s, 0) {
		return "", invalid("%s must not contain NUL characters", name)
	}
	return s, nil
}

// integer reads a required integer member; 1.5, "1" and 1e3 are refused.
func (b body) integer(name string) (int64, *Problem) {
	raw, ok := b[name]
	if !ok || string(raw) == "null" {
		return 0, invalid("%s is required", name)
	}
	if len(raw) == 0 || raw[0] == '"' { // json.Number would accept a quoted number
		return 0, invalid("%s must be an integer", name)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var n json.Number
	if err := dec.Decode(&n); err != nil {
		return 0, invalid("%s must be an integer", name)
	}
	v, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil {
		return 0, invalid("%s must be an integer in range, not %s", name, n.String())
	}
	return v, nil
}

// seatNumbers reads the seats a hold asks for: seatNumber (one seat), or seatNumbers (1 to
// booking.MaxSeatsPerOrder distinct seats, held all or none), exactly one of the two. They are returned in
// seat order.
func (b body) seatNumbers() ([]int, *Problem) {
	hasOne, hasMany := b.given("seatNumber"), b.given("seatNumbers")
	switch {
	case hasOne && hasMany:
		return nil, invalid("send seatNumber or seatNumbers, not both")
	case hasOne || !hasMany:
		seat, p := b.integer("seatNumber")
		if p != nil {
			return nil, p
		}
		if seat < 1 || seat > math.MaxInt32 {
			return nil, invalid("seatNumber must be a positive integer")
		}
		return []int{int(seat)}, nil
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(b["seatNumbers"], &raw); err != nil || len(raw) == 0 || len(raw) > booking.MaxSeatsPerOrder {
		return nil, invalid("seatNumbers must be an array of 1-%d seat numbers", booking.MaxSeatsPerOrder)
	}
	seats := make([]int, 0, len(raw))
	for _, r := range raw {
		n, p := body{"seatNumbers": r}.integer("seatNumbers")
		if p != nil || n < 1 || n > math.MaxInt32 {
			return nil, invalid("seatNumbers must hold positive integers")
		}
		if slices.Contains(seats, int(n)) {
			return nil, invalid("seatNumbers names seat %d twice", n)
		}
		seats = append(seats, int(n))
	}
	slices.Sort(seats)
	return seats, nil
}

// userID reads the required UUID member.
func (b body) userID() (string, *Problem) {
	s, p := b.str("UUID")
	if p != nil {
		return "", p
	}
	id, err := booking.ParseUserID(s)
	if err != nil {
		return "", invalid("%s", err.Error())
	}
	return id, nil
}

// date reads a required concert date member.
func (b body) date(name string) (time.Time, *Problem) {
	s, p := b.str(name)
	if p != nil {
		return time.Time{}, p
	}
	t, err := booking.ParseDate(s)
	if err != nil {
		return time.Time{}, invalid("%s", err.Error())
	}
	return t, nil
}

// list reads a required array member as its raw elements.
func (b body) list(name string) ([]body, *Problem) {
	raw, ok := b[name]
	if !ok || string(raw) == "null" {
		return nil, invalid("%s is required", name)
	}
	var items []body
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, invalid("%s must be an array of objects", name)
	}
	for _, it := range items {
		if it == nil {
			return nil, invalid("%s must be an array of objects", name)
		}
	}
	return items, nil
}

// pageLimit reads the optional limit query parameter of a listing: def when absent, else an integer from 1
// to most; anything else is a 400.
func pageLimit(q url.Values, def, most int) (int, *Problem) {
	s := q.Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > most {
		return 0, invalid("limit must be between 1 and %d", most)
	}
	return n, nil
}
