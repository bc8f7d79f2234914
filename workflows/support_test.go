package workflows

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"

	"github.com/ticketing/concert/booking"
)

// fakeRecords is a store of record with at most one payment.
type fakeRecords struct {
	payment *booking.Payment
	err     error
}

func (f fakeRecords) GetSession(context.Context, string) (booking.Session, error) {
	return booking.Session{}, booking.ErrNotFound
}

func (f fakeRecords) PaymentOfSession(_ context.Context, id string) (booking.Payment, error) {
	switch {
	case f.err != nil:
		return booking.Payment{}, f.err
	case f.payment == nil:
		return booking.Payment{}, fmt.Errorf("payment of session %s: %w", id, booking.ErrNotFound)
	}
	return *f.payment, nil
}

func (f fakeRecords) Release(context.Context, string, booking.Status) error { return nil }

// TestPayAnswersFromTheStoreOnlyWhenTheUpdateFailedWithoutAnAnswer pins down the pay reconciliation: a
// payment recorded in the store answers a pay whose update failed without an answer (a timeout, a worker
// that died after the commit), and never one whose update answered (a business rejection, an ended session).
func TestPayAnswersFromTheStoreOnlyWhenTheUpdateFailedWithoutAnAnswer(t *testing.T) {
	recorded := &booking.Payment{PaymentID: "p-1", Amount: 110_000}
	noAnswer := errors.New("context deadline exceeded")
	rejected := temporal.NewNonRetryableApplicationError("short", string(booking.ErrInsufficientBalance), nil)
	gone := serviceerror.NewNotFound("workflow execution already completed")
	tests := []struct {
		name    string
		records Records
		err     error
		want    *booking.Payment
	}{
		{"no answer, payment recorded", fakeRecords{payment: recorded}, noAnswer, recorded},
		{"no answer, no payment", fakeRecords{}, noAnswer, nil},
		{"no answer, store down", fakeRecords{err: errors.New("connection refused")}, noAnswer, nil},
		{"no answer, no store", nil, noAnswer, nil},
		{"business rejection", fakeRecords{payment: recorded}, rejected, nil},
		{"session ended", fakeRecords{payment: recorded}, gone, nil},
		{"other application error", fakeRecords{payment: recorded},
			temporal.NewApplicationError("panic", "PanicError"), recorded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDoor(nil, AdmissionInput{}, tt.records)
			got, err := d.paid(t.Context(), "s-1", tt.err)
			if tt.want != nil {
				assert.NoError(t, err)
				assert.Equal(t, *tt.want, got)
				return
			}
			assert.ErrorIs(t, err, tt.err, "the update's own failure is returned")
			assert.Zero(t, got)
		})
	}
}
