package workflows

import (
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/ticketing/concert/booking"
)

// Search attributes of a booking session, kept current by the workflow so operators can filter sessions in
// the Temporal UI, e.g. ConcertCode="IU-2026" AND BookingStatus="HELD". They carry no personal data: the
// user appears only in the workflow ID.
var (
	// ConcertCodeKey is the concert of the session.
	ConcertCodeKey = temporal.NewSearchAttributeKeyKeyword("ConcertCode")
	// BookingStatusKey is the session's status (WAITING, ACTIVE, HELD, PAID, EXPIRED, CANCELLED, SOLD_OUT).
	BookingStatusKey = temporal.NewSearchAttributeKeyKeyword("BookingStatus")
	// ConcertDateLocalKey is the performance of the held or bought seat, once there is one, as the venue's
	// local date-time exactly as the API writes it (2026-12-24T19:00:00). A keyword, not a Datetime: a
	// Datetime carries a zone, and the UI would show the venue's 19:00 as 19:00 UTC converted to the
	// operator's own zone.
	ConcertDateLocalKey = temporal.NewSearchAttributeKeyKeyword("ConcertDateLocal")
	// ConcertDateKey is what sessions wrote before ConcertDateLocal: the venue's local time labelled UTC. It
	// stays registered for their visibility records and is no longer written; a session clears it at its next
	// change.
	ConcertDateKey = temporal.NewSearchAttributeKeyTime("ConcertDate")
	// SeatNumberKey is the held or bought seat, once there is one.
	SeatNumberKey = temporal.NewSearchAttributeKeyInt64("SeatNumber")
	// BookingStatusSinceKey is when the session entered its current status.
	BookingStatusSinceKey = temporal.NewSearchAttributeKeyTime("BookingStatusSince")
	// BookingDeadlineKey is when the current status must end by (the end of the admission or hold window);
	// a live session past its deadline is stuck.
	BookingDeadlineKey = temporal.NewSearchAttributeKeyTime("BookingDeadline")
)

// SearchAttributes lists the custom search attributes the workflows use, with their types, for
// registration in a namespace before any workflow runs (an unregistered attribute fails workflow tasks).
func SearchAttributes() map[string]enumspb.IndexedValueType {
	return map[string]enumspb.IndexedValueType{
		ConcertCodeKey.GetName():        enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		BookingStatusKey.GetName():      enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		ConcertDateKey.GetName():        enumspb.INDEXED_VALUE_TYPE_DATETIME,
		ConcertDateLocalKey.GetName():   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SeatNumberKey.GetName():         enumspb.INDEXED_VALUE_TYPE_INT,
		BookingStatusSinceKey.GetName(): enumspb.INDEXED_VALUE_TYPE_DATETIME,
		BookingDeadlineKey.GetName():    enumspb.INDEXED_VALUE_TYPE_DATETIME,
	}
}

// StartSearchAttributes are the attributes a session starts with, so it is findable with the right status
// from its first moment: its concert, the status it is started in, since when, and its deadline if it has one.
func StartSearchAttributes(concertCode string, status booking.Status, now, deadline time.Time) temporal.SearchAttributes {
	updates := []temporal.SearchAttributeUpdate{
		ConcertCodeKey.ValueSet(concertCode),
		BookingStatusKey.ValueSet(string(status)),
		BookingStatusSinceKey.ValueSet(now),
	}
	if !deadline.IsZero() {
		updates = append(updates, BookingDeadlineKey.ValueSet(deadline))
	}
	return temporal.NewSearchAttributes(updates...)
}

// publish keeps the session's search attributes and its UI summary in step with its state.
func (s *session) publish(ctx workflow.Context) {
	if s.lean {
		s.publishChanges(ctx)
		return
	}
	updates := []temporal.SearchAttributeUpdate{
		ConcertCodeKey.ValueSet(s.in.ConcertCode),
		BookingStatusKey.ValueSet(string(s.status)),
		BookingStatusSinceKey.ValueSet(workflow.Now(ctx)),
	}
	switch deadline := s.deadline(); {
	case deadline.IsZero():
		updates = append(updates, BookingDeadlineKey.ValueUnset())
	default:
		updates = append(updates, BookingDeadlineKey.ValueSet(deadline))
	}
	if r := s.reservation; r != nil {
		updates = append(updates, ConcertDateLocalKey.ValueSet(booking.FormatDate(r.ConcertDate)), SeatNumberKey.ValueSet(int64(r.SeatNumber)))
	}
	if _, ok := workflow.GetTypedSearchAttributes(ctx).GetTime(ConcertDateKey); ok {
		updates = append(updates, ConcertDateKey.ValueUnset())
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		s.logger.Warn("Could not update search attributes", "Error", err)
	}
	workflow.SetCurrentDetails(ctx, s.summary())
}

// publishChanges upserts only the search attributes whose value differs from what the session shows now
// (one visibility write per status change, none when nothing changed), and clears the seat once the session
// gave it up without paying.
func (s *session) publishChanges(ctx workflow.Context) {
	cur := workflow.GetTypedSearchAttributes(ctx)
	var updates []temporal.SearchAttributeUpdate
	if v, ok := cur.GetKeyword(ConcertCodeKey); !ok || v != s.in.ConcertCode {
		updates = append(updates, ConcertCodeKey.ValueSet(s.in.ConcertCode))
	}
	if v, ok := cur.GetKeyword(BookingStatusKey); !ok || v != string(s.status) {
		updates = append(updates, BookingStatusKey.ValueSet(string(s.status)), BookingStatusSinceKey.ValueSet(workflow.Now(ctx)))
	}
	setTime := func(key temporal.SearchAttributeKeyTime, want time.Time) {
		v, ok := cur.GetTime(key)
		switch {
		case want.IsZero() && ok:
			updates = append(updates, key.ValueUnset())
		case !want.IsZero() && (!ok || !v.Equal(want)):
			updates = append(updates, key.ValueSet(want))
		}
	}
	setTime(BookingDeadlineKey, s.deadline())
	seat := s.reservation
	if s.status == booking.StatusExpired || s.status == booking.StatusCancelled || s.status == booking.StatusSoldOut {
		seat = nil // given up: a filter on the seat finds only its holder or buyer
	}
	// The seat's attributes change only with the status (held, given up), so they never cost an upsert
	// of their own; that keeps the number of upserts of every recorded history as it was.
	var date string
	if seat != nil {
		date = booking.FormatDate(seat.ConcertDate)
	}
	switch v, ok := cur.GetKeyword(ConcertDateLocalKey); {
	case date == "" && ok:
		updates = append(updates, ConcertDateLocalKey.ValueUnset())
	case date != "" && (!ok || v != date):
		updates = append(updates, ConcertDateLocalKey.ValueSet(date))
	}
	setTime(ConcertDateKey, time.Time{})
	switch v, ok := cur.GetInt64(SeatNumberKey); {
	case seat == nil && ok:
		updates = append(updates, SeatNumberKey.ValueUnset())
	case seat != nil && (!ok || v != int64(seat.SeatNumber)):
		updates = append(updates, SeatNumberKey.ValueSet(int64(seat.SeatNumber)))
	}
	if len(updates) > 0 {
		if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
			s.logger.Warn("Could not update search attributes", "Error", err)
		}
	}
	workflow.SetCurrentDetails(ctx, s.summary())
}

// deadline is when the current status must end by, or zero when it has none.
func (s *session) deadline() time.Time {
	switch s.status {
	case booking.StatusActive:
		return s.activeUntil
	case booking.StatusHeld:
		if s.reservation != nil {
			return s.reservation.HeldUntil
		}
	}
	return time.Time{}
}

// summary is the session as an operator reads it in the UI: who, which concert, which seat, until when.
func (s *session) summary() string {
	text := fmt.Sprintf("**%s** · user `%s` · concert `%s`", s.status, s.in.UserUUID, s.in.ConcertCode)
	if r := s.reservation; r != nil {
		text += fmt.Sprintf(" · seat %d on %s", r.SeatNumber, booking.FormatDate(r.ConcertDate))
	}
	if d := s.deadline(); !d.IsZero() {
		text += " · until " + d.UTC().Format(time.RFC3339)
	}
	if p := s.payment; p != nil {
		text += fmt.Sprintf(" · paid %d won (payment %s)", p.Amount, p.PaymentID)
	}
	return text
}
