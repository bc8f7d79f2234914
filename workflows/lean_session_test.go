package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/ticketing/concert/activities"
	"github.com/ticketing/concert/booking"
)

// testSessionID is the service-chosen ID of the session in the tests of sessions whose token PostgreSQL
// issued: the workflow attaches to its row instead of joining the queue.
const testSessionID = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"

func leanInput() SessionInput {
	return SessionInput{SessionID: testSessionID, ConcertCode: testConcert, UserUUID: testUser}
}

func newLeanHarness(t *testing.T) *harness {
	return newHarness(t, SessionWorkflowID(testConcert, testSessionID))
}

// expectAttach makes Attach find the session's row as a, after delay of workflow time.
func (h *harness) expectAttach(a booking.Attachment, delay time.Duration) {
	if a.HoldWindow == 0 {
		a.HoldWindow = testHoldWindow
	}
	h.env.OnActivity(acts.Attach, mock.Anything, testSessionID).After(delay).Return(a, nil).Once()
}

// leanResult is result for a session with a service-chosen ID: every activity is keyed on that ID.
func (h *harness) leanResult() SessionResult {
	h.t.Helper()
	require.True(h.t, h.env.IsWorkflowCompleted(), "workflow completed")
	require.NoError(h.t, h.env.GetWorkflowError())
	var res SessionResult
	require.NoError(h.t, h.env.GetWorkflowResult(&res))
	h.env.AssertExpectations(h.t)
	for _, c := range h.calls {
		var key string
		switch in := c.Args[0].(type) {
		case booking.Hold:
			key = in.SessionID
		case activities.ReleaseInput:
			key = in.SessionID
		case string:
			key = in
		}
		assert.Equal(h.t, testSessionID, key, "%s is keyed on the session ID", c.Name)
	}
	return res
}

func TestLeanSession_AdmittedAtJoin_AttachesReservesAndPays(t *testing.T) {
	h := newLeanHarness(t)
	h.expectAttach(booking.Attachment{Status: booking.StatusActive, ActiveUntil: t0.Add(10 * time.Minute)}, 0)
	h.expectHold(12, t0.Add(6*time.Minute))
	h.expectPay()
	h.forbidOthers()
	active := query[StatusView](h, 30*time.Second)
	reserve := h.update(time.Minute, UpdateReserve, "reserve-1", reserveRequest(12))
	pay := h.update(2*time.Minute, UpdatePay, "pay-1", PayRequest{UserUUID: testUser})

	h.env.ExecuteWorkflow(BookingSession, leanInput())

	res := h.leanResult()
	assert.Equal(t, booking.StatusActive, active.Status)
	assert.Equal(t, t0.Add(10*time.Minute), active.ActiveUntil)
	require.NoError(t, reserve.Err)
	require.NoError(t, pay.Err)
	assert.Equal(t, booking.StatusPaid, res.Status)
	assert.Equal(t, []string{"Attach", "HoldSeat", "Pay"}, h.names(), "no JoinQueue, no Release")
}

// A reserve sent with Update-with-Start reaches the workflow while it is still attaching: it waits for the
// row instead of answering "not admitted".
func TestLeanSession_ReserveBeforeAttachFinishes_HoldsOnceAttached(t *testing.T) {
	h := newLeanHarness(t)
	h.expectAttach(booking.Attachment{Status: booking.StatusActive, ActiveUntil: t0.Add(10 * time.Minute)}, 20*time.Second)
	h.expectHold(7, t0.Add(6*time.Minute))
	h.expectRelease(booking.StatusExpired, booking.StatusExpired)
	h.forbidOthers()
	reserve := h.update(time.Second, UpdateReserve, "reserve-1", reserveRequest(7))

	h.env.ExecuteWorkflow(BookingSession, leanInput())

	res := h.leanResult()
	require.True(t, reserve.Completed)
	require.NoError(t, reserve.Err)
	assert.Equal(t, t0.Add(20*time.Second), reserve.CompletedAt, "the hold waited for the attachment")
	assert.Equal(t, booking.StatusExpired, res.Status, "then the hold lapsed unpaid")
	assert.Equal(t, []string{"Attach", "HoldSeat", "Release"}, h.names())
}

func TestLeanSession_WaitingThenAdmittedBySignal(t *testing.T) {
	h := newLeanHarness(t)
	h.expectAttach(booking.Attachment{Status: booking.StatusWaiting}, 0)
	h.expectRelease(booking.StatusExpired, booking.StatusExpired)
	h.forbidOthers()
	waiting := query[StatusView](h, 10*time.Second)
	h.signal(time.Minute, booking.SignalAdmission,
		booking.AdmissionNotice{Status: booking.StatusActive, ActiveUntil: t0.Add(5 * time.Minute)})
	active := query[StatusView](h, 2*time.Minute)

	h.env.ExecuteWorkflow(BookingSession, leanInput())

	res := h.leanResult()
	assert.Equal(t, booking.StatusWaiting, waiting.Status)
	assert.Equal(t, booking.StatusActive, active.Status)
	assert.Equal(t, booking.StatusExpired, res.Status, "the admission window ran out unused")
	assert.Equal(t, []string{"Attach", "Release"}, h.names())
	assert.Equal(t, t0.Add(5*time.Minute), h.call("Release", 0).At)
}

// A workflow started late (by the waiting room's sweep, say) for a session that has ended meanwhile ends
// at once and touches nothing.
func TestLeanSession_AttachesToAnEndedSession_EndsAtOnce(t *testing.T) {
	h := newLeanHarness(t)
	h.expectAttach(booking.Attachment{Status: booking.StatusSoldOut}, 0)
	h.forbidOthers()

	h.env.ExecuteWorkflow(BookingSession, leanInput())

	res := h.leanResult()
	assert.Equal(t, booking.StatusSoldOut, res.Status)
	assert.Equal(t, []string{"Attach"}, h.names())
}

// The workflow of a session that holds a seat already (its workflow was started again after a crash) takes
// up the hold and releases it when it lapses.
func TestLeanSession_AttachesToAHold_ReleasesItWhenItLapses(t *testing.T) {
	h := newLeanHarness(t)
	heldUntil := t0.Add(3 * time.Minute)
	h.expectAttach(booking.Attachment{Status: booking.StatusHeld, Reservation: &booking.Reservation{
		ReservationID: "r-1", ConcertCode: testConcert, ConcertDate: concertDate, SeatNumber: 9, Price: testPrice, HeldUntil: heldUntil,
	}}, 0)
	h.expectRelease(booking.StatusExpired, booking.StatusExpired)
	h.forbidOthers()
	held := query[StatusView](h, time.Minute)

	h.env.ExecuteWorkflow(BookingSession, leanInput())

	res := h.leanResult()
	require.NotNil(t, held.Reservation)
	assert.Equal(t, 9, held.Reservation.SeatNumber)
	assert.Equal(t, booking.StatusExpired, res.Status)
	assert.Equal(t, heldUntil, h.call("Release", 0).At)
}

// A fan who leaves while waiting (their workflow started early) or while holding a seat ends the session
// CANCELLED at once: the seat is released then, not when the hold lapses, and the release is marked the
// fan's own (no audit row of a Temporal cancel).
func TestLeanSession_FanLeaves_EndsCancelledAtOnce(t *testing.T) {
	for _, tt := range []struct {
		name   string
		attach booking.Attachment
		hold   bool
	}{
		{"while waiting", booking.Attachment{Status: booking.StatusWaiting}, false},
		{"while holding", booking.Attachment{Status: booking.StatusActive, ActiveUntil: t0.Add(10 * time.Minute)}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newLeanHarness(t)
			h.expectAttach(tt.attach, 0)
			if tt.hold {
				h.expectHold(4, t0.Add(6*time.Minute))
				h.update(30*time.Second, UpdateReserve, "reserve-1", reserveRequest(4))
			}
			h.env.OnActivity(acts.Release, mock.Anything, activities.ReleaseInput{
				SessionID: testSessionID, Status: booking.StatusCancelled, Left: true,
			}).Return(booking.StatusCancelled, nil).Once()
			h.forbidOthers()
			wrong := h.update(50*time.Second, UpdateLeave, "leave-0", LeaveRequest{UserUUID: otherUser})
			leave := h.update(time.Minute, UpdateLeave, "leave-1", LeaveRequest{UserUUID: testUser})

			h.env.ExecuteWorkflow(BookingSession, leanInput())

			res := h.leanResult()
			require.True(t, leave.Completed)
			require.NoError(t, leave.Err)
			require.True(t, wrong.Rejected, "another user's leave is refused")
			assert.Contains(t, wrong.RejectErr.Error(), "another user")
			assert.Equal(t, booking.StatusCancelled, res.Status)
			assert.Equal(t, t0.Add(time.Minute), h.call("Release", 0).At, "released when the fan left")
		})
	}
}

// A session whose concert lets one order hold several seats takes further reserves while it holds seats:
// each goes to the store (which counts them), none moves the payment window set by the first, and one pay
// sells the order. A session of a one-seat concert refuses the second reserve in its validator, as before.
func TestLeanSession_AnOrderOfSeveralSeats_AddsSeatsWithinTheFirstWindow(t *testing.T) {
	firstWindow := t0.Add(6 * time.Minute)
	for _, tt := range []struct {
		name     string
		perOrder int
		pay      bool
	}{
		{"paid", 3, true},
		{"not paid", 3, false},
		{"one seat per order", 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newLeanHarness(t)
			h.expectAttach(booking.Attachment{Status: booking.StatusActive, ActiveUntil: t0.Add(10 * time.Minute),
				SeatsPerOrder: tt.perOrder}, 0)
			h.expectHold(12, firstWindow)
			if tt.perOrder > 1 {
				h.expectHold(13, firstWindow)
			}
			if tt.pay {
				h.expectPay()
			} else {
				h.expectRelease(booking.StatusExpired, booking.StatusExpired)
			}
			h.forbidOthers()
			first := h.update(time.Minute, UpdateReserve, "reserve-1", reserveRequest(12))
			second := h.update(2*time.Minute, UpdateReserve, "reserve-2", reserveRequest(13))
			held := query[StatusView](h, 150*time.Second)
			if tt.pay {
				h.update(3*time.Minute, UpdatePay, "pay-1", PayRequest{UserUUID: testUser})
			}

			h.env.ExecuteWorkflow(BookingSession, leanInput())

			res := h.leanResult()
			require.NoError(t, first.Err)
			assert.Equal(t, booking.StatusHeld, held.Status)
			require.NotNil(t, held.Reservation)
			assert.Equal(t, 12, held.Reservation.SeatNumber, "the order's first hold stands for it")
			if tt.perOrder <= 1 {
				require.True(t, second.Rejected, "a one-seat order refuses a second seat")
				assert.Contains(t, second.RejectErr.Error(), "already holds a seat")
				assert.Equal(t, []string{"Attach", "HoldSeat", "Pay"}, h.names())
				return
			}
			require.True(t, second.Completed)
			require.NoError(t, second.Err)
			if !tt.pay {
				assert.Equal(t, booking.StatusExpired, res.Status)
				assert.Equal(t, firstWindow, h.call("Release", 0).At, "the order lapses with its first seat's window")
				return
			}
			assert.Equal(t, booking.StatusPaid, res.Status)
			assert.Equal(t, []string{"Attach", "HoldSeat", "HoldSeat", "Pay"}, h.names())
		})
	}
}

// A session still waiting when the sale closes ends CLOSED when the waiting room's notice comes, with
// nothing to release.
func TestLeanSession_WaitingWhenTheSaleCloses_EndsClosed(t *testing.T) {
	h := newLeanHarness(t)
	h.expectAttach(booking.Attachment{Status: booking.StatusWaiting}, 0)
	h.forbidOthers()
	h.signal(time.Minute, booking.SignalAdmission, booking.AdmissionNotice{Status: booking.StatusClosed})

	h.env.ExecuteWorkflow(BookingSession, leanInput())

	res := h.leanResult()
	assert.Equal(t, booking.StatusClosed, res.Status)
	assert.Equal(t, []string{"Attach"}, h.names())
}

// A reserve whose own hold lapsed before its answer was recorded (redelivered after a worker crash that
// outlasted the hold window) is answered hold-expired by the store: the session ends EXPIRED at once, its
// seats released, as its timer would have ended it.
func TestLeanSession_ReserveFindsItsOwnHoldLapsed_EndsExpired(t *testing.T) {
	h := newLeanHarness(t)
	h.expectAttach(booking.Attachment{Status: booking.StatusActive, ActiveUntil: t0.Add(10 * time.Minute)}, 0)
	h.env.OnActivity(acts.HoldSeat, mock.Anything, mock.Anything).Return(booking.Reservation{},
		temporal.NewNonRetryableApplicationError("the hold has expired", string(booking.ErrHoldExpired), nil)).Once()
	h.expectRelease(booking.StatusExpired, booking.StatusExpired)
	h.forbidOthers()
	reserve := h.update(time.Minute, UpdateReserve, "reserve-1", reserveRequest(12))

	h.env.ExecuteWorkflow(BookingSession, leanInput())

	res := h.leanResult()
	require.Error(t, reserve.Err)
	assert.Contains(t, reserve.Err.Error(), "expired")
	assert.Equal(t, booking.StatusExpired, res.Status)
	assert.Equal(t, []string{"Attach", "HoldSeat", "Release"}, h.names())
	assert.Equal(t, t0.Add(time.Minute), h.call("Release", 0).At, "released at once, not at the end of the admission window")
}
