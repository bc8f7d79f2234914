package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/ticketing/concert/activities"
	"github.com/ticketing/concert/booking"
)

const (
	testHoldWindow      = 5 * time.Minute
	testAdmissionWindow = 10 * time.Minute
	testPrice           = 150_000
)

func sessionInput() SessionInput {
	return SessionInput{
		ConcertCode: testConcert, UserUUID: testUser, HoldWindow: testHoldWindow, AdmissionWindow: testAdmissionWindow,
	}
}

func reserveRequest(seat int) booking.Hold {
	return booking.Hold{UserUUID: testUser, ConcertDate: concertDate, SeatNumber: seat}
}

// expectJoin makes JoinQueue place the session as res, and checks the session introduced itself correctly.
func (h *harness) expectJoin(res activities.JoinResult) {
	h.env.OnActivity(acts.JoinQueue, mock.Anything, mock.MatchedBy(func(in activities.JoinInput) bool {
		return in.SessionID != "" && in.WorkflowID == SessionWorkflowID(testConcert, testUser) &&
			in.ConcertCode == testConcert && in.UserUUID == testUser && in.AdmissionWindow == testAdmissionWindow
	})).Return(res, nil).Once()
}

// expectHold makes HoldSeat give seat to the session until heldUntil.
func (h *harness) expectHold(seat int, heldUntil time.Time) {
	h.env.OnActivity(acts.HoldSeat, mock.Anything, mock.MatchedBy(func(in booking.Hold) bool {
		_, err := uuid.Parse(in.ReservationID)
		return in.SessionID != "" && err == nil && in.ConcertCode == testConcert && in.ConcertDate.Equal(concertDate) &&
			in.SeatNumber == seat && in.Window == testHoldWindow
	})).Return(func(_ context.Context, in booking.Hold) (booking.Reservation, error) {
		return booking.Reservation{
			ReservationID: in.ReservationID, ConcertCode: in.ConcertCode, ConcertDate: in.ConcertDate,
			SeatNumber: in.SeatNumber, Price: testPrice, HeldUntil: heldUntil,
		}, nil
	}).Once()
}

// expectPay makes Pay succeed.
func (h *harness) expectPay() {
	h.env.OnActivity(acts.Pay, mock.Anything, mock.Anything).Return(
		func(_ context.Context, sessionID string) (booking.Payment, error) {
			return booking.Payment{
				PaymentID: "pay-" + sessionID, ReservationID: "r", ConcertDate: concertDate, SeatNumber: 12,
				Amount: testPrice, Balance: 50_000,
			}, nil
		}).Once()
}

// expectRelease makes Release(status) answer final.
func (h *harness) expectRelease(status, final booking.Status) {
	h.env.OnActivity(acts.Release, mock.Anything, mock.MatchedBy(func(in activities.ReleaseInput) bool {
		return in.Status == status
	})).Return(final, nil).Once()
}

// result runs the assertions every finished session shares and returns its result.
func (h *harness) result() SessionResult {
	h.t.Helper()
	require.True(h.t, h.env.IsWorkflowCompleted(), "workflow completed")
	require.NoError(h.t, h.env.GetWorkflowError())
	var res SessionResult
	require.NoError(h.t, h.env.GetWorkflowResult(&res))
	h.env.AssertExpectations(h.t)
	h.assertOneRun()
	return res
}

// assertOneRun checks that every activity was keyed on the session's own run ID.
func (h *harness) assertOneRun() {
	h.t.Helper()
	for _, c := range h.calls {
		require.NotEmpty(h.t, c.RunID)
		var key string
		switch in := c.Args[0].(type) {
		case activities.JoinInput:
			key = in.SessionID
		case booking.Hold:
			key = in.SessionID
		case activities.ReleaseInput:
			key = in.SessionID
		case string:
			key = in
		default:
			continue
		}
		assert.Equal(h.t, c.RunID, key, "%s is keyed on the run ID", c.Name)
	}
}

func TestSession_AdmittedAtJoin_ExpiresAtActiveUntilWithoutReserve(t *testing.T) {
	h := newSessionHarness(t)
	activeUntil := t0.Add(2 * time.Minute) // the database's deadline, not the input's 10 minutes
	h.expectJoin(activities.JoinResult{Status: booking.StatusActive, ActiveUntil: activeUntil})
	h.expectRelease(booking.StatusExpired, booking.StatusExpired)
	h.forbidOthers()
	before := query[StatusView](h, time.Minute)

	h.env.ExecuteWorkflow(BookingSession, sessionInput())

	res := h.result()
	assert.Equal(t, booking.StatusExpired, res.Status)
	assert.Nil(t, res.Reservation)
	assert.Equal(t, booking.StatusActive, before.Status, "ACTIVE right after join")
	assert.Equal(t, []string{"JoinQueue", "Release"}, h.names())
	assert.Equal(t, activeUntil, h.call("Release", 0).At, "released when the admission window closed")
}

func TestSession_WaitingAdmittedReservesAndPays_EndsPaidWithoutRelease(t *testing.T) {
	h := newSessionHarness(t)
	heldUntil := t0.Add(7 * time.Minute)
	h.expectJoin(activities.JoinResult{Status: booking.StatusWaiting})
	h.expectHold(12, heldUntil)
	h.expectPay()
	h.forbidOthers()
	waiting := query[StatusView](h, 30*time.Second)
	h.signal(time.Minute, booking.SignalAdmission,
		booking.AdmissionNotice{Status: booking.StatusActive, ActiveUntil: t0.Add(11 * time.Minute)})
	active := query[StatusView](h, 90*time.Second)
	reserve := h.update(2*time.Minute, UpdateReserve, "reserve-1", reserveRequest(12))
	held := query[StatusView](h, 150*time.Second)
	pay := h.update(3*time.Minute, UpdatePay, "pay-1", PayRequest{UserUUID: testUser})

	h.env.ExecuteWorkflow(BookingSession, sessionInput())

	res := h.result()
	assert.Equal(t, booking.StatusWaiting, waiting.Status)
	assert.Equal(t, booking.StatusActive, active.Status)
	assert.Equal(t, t0.Add(11*time.Minute), active.ActiveUntil)
	assert.Equal(t, booking.StatusHeld, held.Status)

	require.True(t, reserve.Accepted && reserve.Completed, "reserve accepted and completed: %+v", reserve)
	require.NoError(t, reserve.Err)
	r, ok := reserve.Result.(booking.Reservation)
	require.True(t, ok, "reserve returns a Reservation, got %T", reserve.Result)
	assert.Equal(t, 12, r.SeatNumber)
	assert.Equal(t, heldUntil, r.HeldUntil)

	require.True(t, pay.Accepted && pay.Completed, "pay accepted and completed: %+v", pay)
	require.NoError(t, pay.Err)

	assert.Equal(t, booking.StatusPaid, res.Status)
	require.NotNil(t, res.Reservation)
	require.NotNil(t, res.Payment)
	assert.Equal(t, r.ReservationID, res.Reservation.ReservationID)
	assert.Equal(t, []string{"JoinQueue", "HoldSeat", "Pay"}, h.names(), "Release is never called")
	hold := h.call("HoldSeat", 0).Args[0].(booking.Hold)
	assert.Equal(t, h.call("JoinQueue", 0).RunID, hold.SessionID, "HoldSeat keyed on the run ID")
	assert.Equal(t, hold.ReservationID, r.ReservationID)
}

func TestSession_HeldSeatNotPaid_ReleasedAsExpiredAtHeldUntil(t *testing.T) {
	h := newSessionHarness(t)
	// The database's deadline, deliberately not reserve time + HoldWindow (5m): the timer must follow it.
	heldUntil := t0.Add(time.Minute + 3*time.Minute + 17*time.Second)
	h.expectJoin(activities.JoinResult{Status: booking.StatusActive, ActiveUntil: t0.Add(testAdmissionWindow)})
	h.expectHold(12, heldUntil)
	h.expectRelease(booking.StatusExpired, booking.StatusExpired)
	h.forbidOthers()
	reserve := h.update(time.Minute, UpdateReserve, "reserve-1", reserveRequest(12))

	h.env.ExecuteWorkflow(BookingSession, sessionInput())

	res := h.result()
	require.NoError(t, reserve.Err)
	assert.Equal(t, booking.StatusExpired, res.Status)
	require.NotNil(t, res.Reservation)
	assert.Equal(t, heldUntil, res.Reservation.HeldUntil)
	assert.Equal(t, []string{"JoinQueue", "HoldSeat", "Release"}, h.names())
	assert.Equal(t, heldUntil, h.call("Release", 0).At, "released exactly at HeldUntil")
	assert.Contains(t, h.timers, 3*time.Minute+17*time.Second, "hold timer runs to HeldUntil")
	assert.NotContains(t, h.timers, testHoldWindow, "hold timer does not use the input's window")
}

func TestSession_PayInsufficientBalance_StaysHeldThenSecondPaySucceeds(t *testing.T) {
	h := newSessionHarness(t)
	h.expectJoin(activities.JoinResult{Status: booking.StatusActive, ActiveUntil: t0.Add(testAdmissionWindow)})
	h.expectHold(12, t0.Add(6*time.Minute))
	h.env.OnActivity(acts.Pay, mock.Anything, mock.Anything).Return(booking.Payment{},
		temporal.NewNonRetryableApplicationError("balance too low", string(booking.ErrInsufficientBalance), nil)).Once()
	h.expectPay()
	h.forbidOthers()
	h.update(time.Minute, UpdateReserve, "reserve-1", reserveRequest(12))
	short := h.update(2*time.Minute, UpdatePay, "pay-1", PayRequest{UserUUID: testUser})
	afterShort := query[StatusView](h, 150*time.Second)
	paid := h.update(3*time.Minute, UpdatePay, "pay-2", PayRequest{UserUUID: testUser})

	h.env.ExecuteWorkflow(BookingSession, sessionInput())

	res := h.result()
	require.True(t, short.Accepted && short.Completed, "first pay accepted and completed: %+v", short)
	assert.Equal(t, string(booking.ErrInsufficientBalance), errorType(short.Err))
	assert.Equal(t, booking.StatusHeld, afterShort.Status, "a short balance keeps the hold")
	require.True(t, paid.Completed)
	require.NoError(t, paid.Err)
	assert.Equal(t, booking.StatusPaid, res.Status)
	assert.Equal(t, []string{"JoinQueue", "HoldSeat", "Pay", "Pay"}, h.names(), "no retry, no release")
}

func TestSession_ReserveSeatTaken_StaysActiveAndHoldsAnotherSeat(t *testing.T) {
	h := newSessionHarness(t)
	h.expectJoin(activities.JoinResult{Status: booking.StatusActive, ActiveUntil: t0.Add(testAdmissionWindow)})
	h.env.OnActivity(acts.HoldSeat, mock.Anything, mock.MatchedBy(func(in booking.Hold) bool {
		return in.SeatNumber == 7
	})).Return(booking.Reservation{}, temporal.NewNonRetryableApplicationError("taken", string(booking.ErrSeatTaken), nil)).Once()
	h.expectHold(8, t0.Add(7*time.Minute))
	h.expectPay()
	h.forbidOthers()
	taken := h.update(time.Minute, UpdateReserve, "reserve-1", reserveRequest(7))
	afterTaken := query[StatusView](h, 90*time.Second)
	second := h.update(2*time.Minute, UpdateReserve, "reserve-2", reserveRequest(8))
	h.update(3*time.Minute, UpdatePay, "pay-1", PayRequest{UserUUID: testUser})

	h.env.ExecuteWorkflow(BookingSession, sessionInput())

	res := h.result()
	require.True(t, taken.Accepted && taken.Completed, "first reserve accepted and completed: %+v", taken)
	assert.Equal(t, string(booking.ErrSeatTaken), errorType(taken.Err))
	assert.Equal(t, booking.StatusActive, afterTaken.Status)
	assert.Nil(t, afterTaken.Reservation)
	require.NoError(t, second.Err)
	assert.Equal(t, booking.StatusPaid, res.Status)
	require.NotNil(t, res.Reservation)
	assert.Equal(t, 8, res.Reservation.SeatNumber)
	assert.Equal(t, []string{"JoinQueue", "HoldSeat", "HoldSeat", "Pay"}, h.names())
	first := h.call("HoldSeat", 0).Args[0].(booking.Hold)
	again := h.call("HoldSeat", 1).Args[0].(booking.Hold)
	assert.NotEqual(t, first.ReservationID, again.ReservationID, "each reserve request has its own reservation ID")
}

func TestSession_ValidatorsRejectBadUpdatesWithoutCallingActivities(t *testing.T) {
	tests := []struct {
		name     string
		holdSeat bool // reach HELD before the bad update
		update   string
		arg      any
		want     booking.ErrorType
	}{
		{"reserve by another user", false, UpdateReserve,
			booking.Hold{UserUUID: otherUser, ConcertDate: concertDate, SeatNumber: 3}, booking.ErrWrongUser},
		{"reserve while holding", true, UpdateReserve, reserveRequest(3), booking.ErrAlreadyHolding},
		{"pay with no seat held", false, UpdatePay, PayRequest{UserUUID: testUser}, booking.ErrNoSeatHeld},
		{"pay by another user", true, UpdatePay, PayRequest{UserUUID: otherUser}, booking.ErrWrongUser},
		{"seat number zero", false, UpdateReserve, reserveRequest(0), booking.ErrInvalidRequest},
		{"no concert date", false, UpdateReserve,
			booking.Hold{UserUUID: testUser, SeatNumber: 3}, booking.ErrInvalidRequest},
		{"join by another user", false, UpdateJoin, JoinRequest{UserUUID: otherUser}, booking.ErrWrongUser},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newSessionHarness(t)
			h.expectJoin(activities.JoinResult{Status: booking.StatusActive, ActiveUntil: t0.Add(testAdmissionWindow)})
			want := []string{"JoinQueue"}
			if tc.holdSeat {
				h.expectHold(12, t0.Add(6*time.Minute))
				h.update(time.Minute, UpdateReserve, "reserve-ok", reserveRequest(12))
				want = append(want, "HoldSeat")
			}
			h.expectRelease(booking.StatusExpired, booking.StatusExpired)
			h.forbidOthers()
			bad := h.update(2*time.Minute, tc.update, "bad", tc.arg)

			h.env.ExecuteWorkflow(BookingSession, sessionInput())

			res := h.result()
			require.True(t, bad.Rejected, "update rejected: %+v", bad)
			assert.False(t, bad.Accepted, "never accepted")
			assert.Equal(t, string(tc.want), errorType(bad.RejectErr))
			assert.Equal(t, append(want, "Release"), h.names(), "only the setup and the final release ran")
			assert.Equal(t, booking.StatusExpired, res.Status)
		})
	}
}

func TestSession_JoinUpdate_FirstIsCreatedSecondIsNot(t *testing.T) {
	h := newSessionHarness(t)
	h.expectJoin(activities.JoinResult{Status: booking.StatusWaiting})
	h.forbidOthers()
	// The first join arrives at once, as with Update-with-Start, the second from a client that asks again.
	first := h.update(0, UpdateJoin, "join-1", JoinRequest{UserUUID: testUser})
	second := h.update(time.Second, UpdateJoin, "join-2", JoinRequest{UserUUID: testUser})
	h.signal(time.Minute, booking.SignalAdmission, booking.AdmissionNotice{Status: booking.StatusSoldOut})

	h.env.ExecuteWorkflow(BookingSession, sessionInput())

	h.result()
	runID := h.call("JoinQueue", 0).RunID
	require.NoError(t, first.Err)
	require.NoError(t, second.Err)
	assert.Equal(t, JoinResponse{SessionID: runID, Created: true}, first.Result)
	assert.Equal(t, JoinResponse{SessionID: runID, Created: false}, second.Result)
}

func TestSession_JoinBeforeJoinQueueFinishes_AnswersOnceJoined(t *testing.T) {
	h := newSessionHarness(t)
	h.env.OnActivity(acts.JoinQueue, mock.Anything, mock.Anything).
		After(30*time.Second).Return(activities.JoinResult{Status: booking.StatusSoldOut}, nil).Once()
	h.forbidOthers()
	join := h.update(time.Second, UpdateJoin, "join-1", JoinRequest{UserUUID: testUser})

	h.env.ExecuteWorkflow(BookingSession, sessionInput())

	res := h.result()
	require.True(t, join.Completed, "join answered before the run closed")
	require.NoError(t, join.Err)
	assert.Equal(t, t0.Add(30*time.Second), join.CompletedAt, "join answers once JoinQueue has placed the session")
	assert.Equal(t, JoinResponse{SessionID: h.call("JoinQueue", 0).RunID, Created: true}, join.Result)
	assert.Equal(t, booking.StatusSoldOut, res.Status)
}

func TestSession_SoldOutWhileWaiting_EndsSoldOutWithoutRelease(t *testing.T) {
	h := newSessionHarness(t)
	h.expectJoin(activities.JoinResult{Status: booking.StatusWaiting})
	h.forbidOthers()
	h.signal(time.Minute, booking.SignalAdmission, booking.AdmissionNotice{Status: booking.StatusSoldOut})

	h.env.ExecuteWorkflow(BookingSession, sessionInput())

	res := h.result()
	assert.Equal(t, booking.StatusSoldOut, res.Status)
	assert.Equal(t, []string{"JoinQueue"}, h.names())
	assert.Equal(t, t0.Add(time.Minute), h.env.Now().UTC(), "ended when the notice came")
}

func TestSession_SoldOutWhileActive_EndsSoldOutWithoutRelease(t *testing.T) {
	h := newSessionHarness(t)
	h.expectJoin(activities.JoinResult{Status: booking.StatusActive, ActiveUntil: t0.Add(testAdmissionWindow)})
	h.forbidOthers()
	h.signal(time.Minute, booking.SignalAdmission, booking.AdmissionNotice{Status: booking.StatusSoldOut})

	h.env.ExecuteWorkflow(BookingSession, sessionInput())

	res := h.result()
	assert.Equal(t, booking.StatusSoldOut, res.Status)
	assert.Equal(t, []string{"JoinQueue"}, h.names())
}

func TestSession_JoinQueueSoldOut_EndsAtOnce(t *testing.T) {
	h := newSessionHarness(t)
	h.expectJoin(activities.JoinResult{Status: booking.StatusSoldOut})
	h.forbidOthers()

	h.env.ExecuteWorkflow(BookingSession, sessionInput())

	res := h.result()
	assert.Equal(t, booking.StatusSoldOut, res.Status)
	assert.Equal(t, []string{"JoinQueue"}, h.names())
	assert.Equal(t, t0, h.env.Now().UTC(), "no time passed")
}

func TestSession_CancelledWhileHeld_ReleasesAsCancelled(t *testing.T) {
	h := newSessionHarness(t)
	h.expectJoin(activities.JoinResult{Status: booking.StatusActive, ActiveUntil: t0.Add(testAdmissionWindow)})
	h.expectHold(12, t0.Add(6*time.Minute))
	h.expectRelease(booking.StatusCancelled, booking.StatusCancelled)
	h.forbidOthers()
	h.update(time.Minute, UpdateReserve, "reserve-1", reserveRequest(12))
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 2*time.Minute)

	h.env.ExecuteWorkflow(BookingSession, sessionInput())

	require.True(t, h.env.IsWorkflowCompleted())
	err := h.env.GetWorkflowError()
	require.Error(t, err)
	assert.True(t, temporal.IsCanceledError(err), "workflow ends cancelled: %v", err)
	h.env.AssertExpectations(t)
	h.assertOneRun()
	assert.Equal(t, []string{"JoinQueue", "HoldSeat", "Release"}, h.names())
	assert.Equal(t, t0.Add(2*time.Minute), h.call("Release", 0).At, "released on cancellation, not at expiry")
}

func TestSession_CancelledWhileWaiting_ReleasesAsCancelled(t *testing.T) {
	h := newSessionHarness(t)
	h.expectJoin(activities.JoinResult{Status: booking.StatusWaiting})
	h.expectRelease(booking.StatusCancelled, booking.StatusCancelled)
	h.forbidOthers()
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, time.Minute)

	h.env.ExecuteWorkflow(BookingSession, sessionInput())

	require.True(t, h.env.IsWorkflowCompleted())
	assert.True(t, temporal.IsCanceledError(h.env.GetWorkflowError()), "workflow ends cancelled")
	h.env.AssertExpectations(t)
	h.assertOneRun()
	assert.Equal(t, []string{"JoinQueue", "Release"}, h.names())
}

func TestSession_StatusQuery_ReportsCurrentStatusAndReservation(t *testing.T) {
	h := newSessionHarness(t)
	heldUntil := t0.Add(8 * time.Minute)
	h.expectJoin(activities.JoinResult{Status: booking.StatusWaiting})
	h.expectHold(12, heldUntil)
	h.expectPay()
	h.forbidOthers()
	waiting := query[StatusView](h, time.Second)
	h.signal(time.Minute, booking.SignalAdmission,
		booking.AdmissionNotice{Status: booking.StatusActive, ActiveUntil: t0.Add(9 * time.Minute)})
	active := query[StatusView](h, 2*time.Minute)
	h.update(3*time.Minute, UpdateReserve, "reserve-1", reserveRequest(12))
	held := query[StatusView](h, 4*time.Minute)
	h.update(5*time.Minute, UpdatePay, "pay-1", PayRequest{UserUUID: testUser})

	h.env.ExecuteWorkflow(BookingSession, sessionInput())

	h.result()
	assert.Equal(t, StatusView{ConcertCode: testConcert, Status: booking.StatusWaiting}, *waiting)
	assert.Equal(t, StatusView{ConcertCode: testConcert, Status: booking.StatusActive, ActiveUntil: t0.Add(9 * time.Minute)}, *active)
	assert.Equal(t, booking.StatusHeld, held.Status)
	require.NotNil(t, held.Reservation)
	assert.Equal(t, heldUntil, held.Reservation.HeldUntil)
	assert.Nil(t, held.Payment)

	var final StatusView
	ev, err := h.env.QueryWorkflow(QueryStatus)
	require.NoError(t, err)
	require.NoError(t, ev.Get(&final))
	assert.Equal(t, booking.StatusPaid, final.Status)
	assert.NotNil(t, final.Payment)
}

func TestSession_ReleaseReportsPaid_SessionAdoptsPaid(t *testing.T) {
	h := newSessionHarness(t)
	h.expectJoin(activities.JoinResult{Status: booking.StatusActive, ActiveUntil: t0.Add(testAdmissionWindow)})
	h.expectHold(12, t0.Add(6*time.Minute))
	// The payment reached the database but its reply was lost: Release finds the session PAID.
	h.expectRelease(booking.StatusExpired, booking.StatusPaid)
	h.forbidOthers()
	h.update(time.Minute, UpdateReserve, "reserve-1", reserveRequest(12))

	h.env.ExecuteWorkflow(BookingSession, sessionInput())

	res := h.result()
	assert.Equal(t, booking.StatusPaid, res.Status)
	assert.Equal(t, []string{"JoinQueue", "HoldSeat", "Release"}, h.names())
}

func TestSession_HoldLapsesWhilePayRuns_PaymentIsNotReleased(t *testing.T) {
	h := newSessionHarness(t)
	heldUntil := t0.Add(3 * time.Minute)
	h.expectJoin(activities.JoinResult{Status: booking.StatusActive, ActiveUntil: t0.Add(testAdmissionWindow)})
	h.expectHold(12, heldUntil)
	// Pay starts 2 seconds before the hold lapses and takes 5 seconds.
	h.env.OnActivity(acts.Pay, mock.Anything, mock.Anything).After(5*time.Second).
		Return(booking.Payment{PaymentID: "p1", Amount: testPrice}, nil).Once()
	h.forbidOthers()
	h.update(time.Minute, UpdateReserve, "reserve-1", reserveRequest(12))
	pay := h.update(3*time.Minute-2*time.Second, UpdatePay, "pay-1", PayRequest{UserUUID: testUser})

	h.env.ExecuteWorkflow(BookingSession, sessionInput())

	res := h.result()
	require.NoError(t, pay.Err)
	assert.Equal(t, booking.StatusPaid, res.Status)
	assert.Equal(t, []string{"JoinQueue", "HoldSeat", "Pay"}, h.names(), "no release after a payment in flight")
}

func TestSession_ReserveBeforeAdmissionSignal_WaitsForIt(t *testing.T) {
	h := newSessionHarness(t)
	h.expectJoin(activities.JoinResult{Status: booking.StatusWaiting})
	h.expectHold(12, t0.Add(6*time.Minute))
	h.expectPay()
	h.forbidOthers()
	reserve := h.update(time.Minute, UpdateReserve, "reserve-1", reserveRequest(12))
	h.signal(time.Minute+admissionGrace/2, booking.SignalAdmission,
		booking.AdmissionNotice{Status: booking.StatusActive, ActiveUntil: t0.Add(testAdmissionWindow)})
	h.update(2*time.Minute, UpdatePay, "pay-1", PayRequest{UserUUID: testUser})

	h.env.ExecuteWorkflow(BookingSession, sessionInput())

	res := h.result()
	require.True(t, reserve.Completed)
	require.NoError(t, reserve.Err)
	assert.Equal(t, time.Minute+admissionGrace/2, h.call("HoldSeat", 0).At.Sub(t0), "held once admitted")
	assert.Equal(t, booking.StatusPaid, res.Status)
}

func TestSession_ReserveWhileNeverAdmitted_FailsNotAdmittedAfterGrace(t *testing.T) {
	h := newSessionHarness(t)
	h.expectJoin(activities.JoinResult{Status: booking.StatusWaiting})
	h.forbidOthers()
	reserve := h.update(time.Minute, UpdateReserve, "reserve-1", reserveRequest(12))
	stillWaiting := query[StatusView](h, 2*time.Minute)
	h.signal(3*time.Minute, booking.SignalAdmission, booking.AdmissionNotice{Status: booking.StatusSoldOut})

	h.env.ExecuteWorkflow(BookingSession, sessionInput())

	res := h.result()
	require.True(t, reserve.Accepted && reserve.Completed, "reserve accepted then failed: %+v", reserve)
	assert.Equal(t, string(booking.ErrNotAdmitted), errorType(reserve.Err))
	assert.Equal(t, booking.StatusWaiting, stillWaiting.Status)
	assert.Equal(t, booking.StatusSoldOut, res.Status)
	assert.Equal(t, []string{"JoinQueue"}, h.names())
}

func TestSession_InvalidInput_FailsWithoutJoining(t *testing.T) {
	tests := map[string]SessionInput{
		"bad concert code": {ConcertCode: "no spaces", UserUUID: testUser, HoldWindow: time.Minute, AdmissionWindow: time.Minute},
		"no user":          {ConcertCode: testConcert, HoldWindow: time.Minute, AdmissionWindow: time.Minute},
		"no hold window":   {ConcertCode: testConcert, UserUUID: testUser, AdmissionWindow: time.Minute},
		"no admission":     {ConcertCode: testConcert, UserUUID: testUser, HoldWindow: time.Minute},
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			h := newSessionHarness(t)
			h.forbidOthers()

			h.env.ExecuteWorkflow(BookingSession, in)

			require.True(t, h.env.IsWorkflowCompleted())
			assert.Equal(t, string(booking.ErrInvalidRequest), errorType(h.env.GetWorkflowError()))
			assert.Empty(t, h.names())
		})
	}
}
