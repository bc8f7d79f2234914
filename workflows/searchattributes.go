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
	// ConcertDateKey is the performance of the held or bought seat, once there is one.
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
		SeatNumberKey.GetName():         enumspb.INDEXED_VALUE_TYPE_INT,
		BookingStatusSinceKey.GetName(): enumspb.INDEXED_VALUE_TYPE_DATETIME,
		BookingDeadlineKey.GetName():    enumspb.INDEXED_VALUE_TYPE_DATETIME,
	}
}

// StartSearchAttributes are the attributes a session starts with, set by the API at start so the session
// is findable from its first moment.
func StartSearchAttributes(concertCode string, now time.Time) temporal.SearchAttributes {
	return temporal.NewSearchAttributes(
		ConcertCodeKey.ValueSet(concertCode),
		BookingStatusKey.ValueSet(string(booking.StatusWaiting)),
		BookingStatusSinceKey.ValueSet(now),
	)
}

// publish keeps the session's search attributes and its UI summary in step with its state.
func (s *session) publish(ctx workflow.Context) {
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
		updates = append(updates, ConcertDateKey.ValueSet(r.ConcertDate), SeatNumberKey.ValueSet(int64(r.SeatNumber)))
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		s.logger.Warn("Could not update search attributes", "Error", err)
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
