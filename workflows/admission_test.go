package workflows

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"

	"github.com/ticketing/concert/activities"
	"github.com/ticketing/concert/booking"
)

const testTick = 3 * time.Second

func admissionInput() AdmissionInput {
	return AdmissionInput{ConcertCode: testConcert, AdmissionWindow: testAdmissionWindow, Tick: testTick}
}

// newAdmissionHarness runs the waiting room as first released, where a sell-out ends it: most tests use
// that to end the run. TestAdmission_SoldOut_KeepsWatch covers the current version.
func newAdmissionHarness(t *testing.T) *harness {
	h := newHarness(t, AdmissionWorkflowID(testConcert))
	h.env.OnGetVersion(soldOutKeepsWatch, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion).Maybe()
	return h
}

// expectStep makes the next AdmitNext answer res.
func (h *harness) expectStep(res booking.AdmissionStep) {
	h.env.OnActivity(acts.AdmitNext, mock.Anything,
		activities.AdmitInput{ConcertCode: testConcert, AdmissionWindow: testAdmissionWindow}).Return(res, nil).Once()
}

// expectNotify expects NotifyAdmissions with exactly list.
func (h *harness) expectNotify(list []booking.Admission) {
	h.env.OnActivity(acts.NotifyAdmissions, mock.Anything, list).Return(nil).Once()
}

// stepTimes are the workflow times, relative to t0, at which AdmitNext ran.
func (h *harness) stepTimes() []time.Duration {
	var out []time.Duration
	for _, c := range h.callsTo("AdmitNext") {
		out = append(out, c.At.Sub(t0))
	}
	return out
}

// admissionEnded checks the waiting room completed normally and every expectation was met.
func (h *harness) admissionEnded() {
	h.t.Helper()
	require.True(h.t, h.env.IsWorkflowCompleted())
	require.NoError(h.t, h.env.GetWorkflowError())
	h.env.AssertExpectations(h.t)
}

func admitted(n int) booking.Admission {
	id := string(rune('a' + n))
	return booking.Admission{
		SessionID: "run-" + id, WorkflowID: SessionWorkflowID(testConcert, "user-"+id),
		Notice: booking.AdmissionNotice{Status: booking.StatusActive, ActiveUntil: t0.Add(testAdmissionWindow)},
	}
}

func TestAdmission_StepThatAdmits_NotifiesExactlyAdmitNextsList(t *testing.T) {
	h := newAdmissionHarness(t)
	first := []booking.Admission{admitted(0), admitted(1)}
	h.expectStep(booking.AdmissionStep{Notify: first, Admitted: 2, Live: 2, MaxActive: 2})
	h.expectNotify(first)
	soldOut := []booking.Admission{{SessionID: "run-z", WorkflowID: "booking-IU-2026-z",
		Notice: booking.AdmissionNotice{Status: booking.StatusSoldOut}}}
	h.expectStep(booking.AdmissionStep{Notify: soldOut, SoldOut: true})
	h.expectNotify(soldOut)
	h.forbidOthers()

	h.env.ExecuteWorkflow(Admission, admissionInput())

	h.admissionEnded()
	assert.Equal(t, []string{"AdmitNext", "NotifyAdmissions", "AdmitNext", "NotifyAdmissions"}, h.names())
	assert.Equal(t, first, h.call("NotifyAdmissions", 0).Args[0])
	assert.Equal(t, soldOut, h.call("NotifyAdmissions", 1).Args[0])
}

func TestAdmission_StepAdmitsNobody_DoesNotNotify(t *testing.T) {
	h := newAdmissionHarness(t)
	h.expectStep(booking.AdmissionStep{Waiting: 3, Live: 5, MaxActive: 5})
	h.expectStep(booking.AdmissionStep{SoldOut: true})
	h.forbidOthers()

	h.env.ExecuteWorkflow(Admission, admissionInput())

	h.admissionEnded()
	assert.Equal(t, []string{"AdmitNext", "AdmitNext"}, h.names())
}

func TestAdmission_FullBatchWithRoomLeft_StepsAgainAtOnce(t *testing.T) {
	h := newAdmissionHarness(t)
	batch := []booking.Admission{admitted(0)}
	h.expectStep(booking.AdmissionStep{Notify: batch, Admitted: 1, Waiting: 4, Live: 1, MaxActive: 5})
	h.expectNotify(batch)
	h.expectStep(booking.AdmissionStep{SoldOut: true})
	h.forbidOthers()

	h.env.ExecuteWorkflow(Admission, admissionInput())

	h.admissionEnded()
	assert.Equal(t, []time.Duration{0, 0}, h.stepTimes())
	assert.Empty(t, h.timers, "no sleep between the batches")
}

func TestAdmission_WaitersWithoutFreeSlot_StepsAgainAfterTick_InTheFirstVersion(t *testing.T) {
	h := newAdmissionHarness(t)
	h.env.OnGetVersion(sleepsWhileFull, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	h.expectStep(booking.AdmissionStep{Waiting: 4, Live: 5, MaxActive: 5})
	h.expectStep(booking.AdmissionStep{Waiting: 4, Live: 5, MaxActive: 5})
	h.expectStep(booking.AdmissionStep{SoldOut: true})
	h.forbidOthers()

	h.env.ExecuteWorkflow(Admission, admissionInput())

	h.admissionEnded()
	assert.Equal(t, []time.Duration{0, testTick, 2 * testTick}, h.stepTimes())
}

func TestAdmission_EverySlotTaken_SleepsUntilTheFirstWindowEnds(t *testing.T) {
	h := newAdmissionHarness(t)
	nextFree := t0.Add(40 * time.Second)
	h.expectStep(booking.AdmissionStep{Waiting: 4, Live: 5, MaxActive: 5, NextFree: nextFree})
	h.expectStep(booking.AdmissionStep{SoldOut: true})
	h.forbidOthers()

	h.env.ExecuteWorkflow(Admission, admissionInput())

	h.admissionEnded()
	assert.Equal(t, []time.Duration{0, 40*time.Second + slotMargin}, h.stepTimes(),
		"no step while every slot is taken, one just after the first window ends")
}

func TestAdmission_EverySlotTakenForLong_StepsAtLeastEveryIdleMinute(t *testing.T) {
	h := newAdmissionHarness(t)
	h.expectStep(booking.AdmissionStep{Waiting: 4, Live: 5, MaxActive: 5, NextFree: t0.Add(10 * time.Minute)})
	h.expectStep(booking.AdmissionStep{SoldOut: true})
	h.forbidOthers()

	h.env.ExecuteWorkflow(Admission, admissionInput())

	h.admissionEnded()
	assert.Equal(t, []time.Duration{0, admissionIdle}, h.stepTimes(), "a lost nudge costs a minute at most")
}

func TestAdmission_EverySlotTaken_SessionEndingEarlyWakesIt(t *testing.T) {
	h := newAdmissionHarness(t)
	h.expectStep(booking.AdmissionStep{Waiting: 4, Live: 5, MaxActive: 5, NextFree: t0.Add(10 * time.Minute)})
	batch := []booking.Admission{admitted(0)}
	h.expectStep(booking.AdmissionStep{Notify: batch, Admitted: 1, Waiting: 3, Live: 5, MaxActive: 5, NextFree: t0.Add(9 * time.Minute)})
	h.expectNotify(batch)
	h.expectStep(booking.AdmissionStep{SoldOut: true})
	h.forbidOthers()
	h.signal(30*time.Second, SignalWake, nil) // a payment freed a slot

	h.env.ExecuteWorkflow(Admission, admissionInput())

	h.admissionEnded()
	// The idle minute bounds every sleep, so the third step comes a minute after the second.
	assert.Equal(t, []time.Duration{0, 30 * time.Second, 30*time.Second + admissionIdle}, h.stepTimes())
}

func TestAdmission_EverySlotTakenWithAnUnconfirmedNotice_StepsAgainAfterTick(t *testing.T) {
	h := newAdmissionHarness(t)
	h.expectStep(booking.AdmissionStep{Waiting: 4, Live: 5, MaxActive: 5, NextFree: t0.Add(4 * time.Minute), Untold: 1})
	h.expectStep(booking.AdmissionStep{SoldOut: true})
	h.forbidOthers()

	h.env.ExecuteWorkflow(Admission, admissionInput())

	h.admissionEnded()
	assert.Equal(t, []time.Duration{0, testTick}, h.stepTimes())
}

func TestAdmission_NoSlotsAtAll_SleepsTheIdleMinute(t *testing.T) {
	h := newAdmissionHarness(t)
	h.expectStep(booking.AdmissionStep{Waiting: 4, MaxActive: 0})
	h.expectStep(booking.AdmissionStep{SoldOut: true})
	h.forbidOthers()

	h.env.ExecuteWorkflow(Admission, admissionInput())

	h.admissionEnded()
	assert.Equal(t, []time.Duration{0, admissionIdle}, h.stepTimes())
}

func TestAdmission_PausedWithWaiters_SleepsTheIdleMinute(t *testing.T) {
	h := newAdmissionHarness(t)
	h.expectStep(booking.AdmissionStep{Waiting: 4, Live: 0, MaxActive: 5, Paused: true})
	h.expectStep(booking.AdmissionStep{SoldOut: true})
	h.forbidOthers()

	h.env.ExecuteWorkflow(Admission, admissionInput())

	h.admissionEnded()
	assert.Equal(t, []time.Duration{0, admissionIdle}, h.stepTimes())
}

func TestAdmission_NobodyWaiting_SleepsUntilWakeSignal(t *testing.T) {
	h := newAdmissionHarness(t)
	h.expectStep(booking.AdmissionStep{MaxActive: 5})
	h.expectStep(booking.AdmissionStep{MaxActive: 5})
	h.expectStep(booking.AdmissionStep{MaxActive: 5})
	h.expectStep(booking.AdmissionStep{SoldOut: true})
	h.forbidOthers()
	h.signal(20*time.Second, SignalWake, nil)
	// Two wakes delivered in one workflow task make one step, not two.
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflowSkippingWorkflowTask(SignalWake, nil)
		h.env.SignalWorkflow(SignalWake, nil)
	}, 45*time.Second)

	h.env.ExecuteWorkflow(Admission, admissionInput())

	h.admissionEnded()
	assert.Equal(t, []time.Duration{0, 20 * time.Second, 45 * time.Second, 45*time.Second + admissionIdle}, h.stepTimes())
}

func TestAdmission_NobodyWaitingAndNoWake_StepsAfterIdleMinute(t *testing.T) {
	h := newAdmissionHarness(t)
	h.expectStep(booking.AdmissionStep{MaxActive: 5})
	h.expectStep(booking.AdmissionStep{SoldOut: true})
	h.forbidOthers()

	h.env.ExecuteWorkflow(Admission, admissionInput())

	h.admissionEnded()
	assert.Equal(t, []time.Duration{0, admissionIdle}, h.stepTimes())
}

func TestAdmission_SoldOut_CompletesAtOnce(t *testing.T) {
	h := newAdmissionHarness(t)
	h.expectStep(booking.AdmissionStep{SoldOut: true, MaxActive: 5})
	h.forbidOthers()

	h.env.ExecuteWorkflow(Admission, admissionInput())

	h.admissionEnded()
	assert.Equal(t, []string{"AdmitNext"}, h.names())
	assert.Empty(t, h.timers)
}

func TestAdmission_SoldOut_KeepsWatchEveryIdleMinute(t *testing.T) {
	h := newHarness(t, AdmissionWorkflowID(testConcert))
	late := []booking.Admission{{SessionID: "run-late", WorkflowID: "booking-IU-2026-late",
		Notice: booking.AdmissionNotice{Status: booking.StatusSoldOut}}}
	h.expectStep(booking.AdmissionStep{SoldOut: true, MaxActive: 5})
	h.expectStep(booking.AdmissionStep{SoldOut: true, MaxActive: 5, Notify: late})
	h.expectNotify(late)
	h.expectStep(booking.AdmissionStep{SoldOut: true, MaxActive: 5})
	// The cancel below wakes the loop, which starts one more step on the cancelled context. The server
	// records it as a cancelled local activity (see the captured histories); whether the test environment
	// runs its mock first is a race, so it may or may not be called, and is not counted.
	cancelAt := admissionIdle*2 + admissionIdle/2
	h.env.OnActivity(acts.AdmitNext, mock.Anything, mock.Anything).Return(booking.AdmissionStep{SoldOut: true, MaxActive: 5}, nil).Maybe()
	h.forbidOthers()
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, cancelAt)

	h.env.ExecuteWorkflow(Admission, admissionInput())

	require.True(t, h.env.IsWorkflowCompleted())
	h.env.AssertExpectations(t)
	var before []time.Duration
	for _, at := range h.stepTimes() {
		if at < cancelAt {
			before = append(before, at)
		}
	}
	assert.Equal(t, []time.Duration{0, admissionIdle, 2 * admissionIdle}, before,
		"a session that joined as the last seat sold is still ended SOLD_OUT")
}

func TestAdmission_AfterStepsPerRun_ContinuesAsNewWithSameInput(t *testing.T) {
	h := newAdmissionHarness(t)
	h.env.OnActivity(acts.AdmitNext, mock.Anything, mock.Anything).
		Return(booking.AdmissionStep{MaxActive: 5}, nil).Times(admissionStepsPerRun)
	h.forbidOthers()

	h.env.ExecuteWorkflow(Admission, admissionInput())

	require.True(t, h.env.IsWorkflowCompleted())
	err := h.env.GetWorkflowError()
	require.True(t, workflow.IsContinueAsNewError(err), "continues as new, got %v", err)
	h.env.AssertExpectations(t)
	assert.Len(t, h.callsTo("AdmitNext"), admissionStepsPerRun)

	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(err, &can))
	assert.Equal(t, "Admission", can.WorkflowType.Name)
	var next AdmissionInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	assert.Equal(t, admissionInput(), next)
}

func TestAdmission_StatusQuery_ReportsLastStep(t *testing.T) {
	h := newAdmissionHarness(t)
	batch := []booking.Admission{admitted(0), admitted(1)}
	h.expectStep(booking.AdmissionStep{Notify: batch, Admitted: 2, Waiting: 7, Live: 5, MaxActive: 5})
	h.expectNotify(batch)
	h.expectStep(booking.AdmissionStep{Admitted: 0, Waiting: 7, Live: 5, MaxActive: 5})
	h.expectStep(booking.AdmissionStep{SoldOut: true})
	h.forbidOthers()
	afterOne := query[AdmissionView](h, testTick/2)
	afterTwo := query[AdmissionView](h, admissionIdle+testTick/2) // full, nothing ends: the idle minute

	h.env.ExecuteWorkflow(Admission, admissionInput())

	h.admissionEnded()
	assert.Equal(t, AdmissionView{ConcertCode: testConcert, Steps: 1, Admitted: 2, Waiting: 7, Live: 5, MaxActive: 5}, *afterOne)
	assert.Equal(t, AdmissionView{ConcertCode: testConcert, Steps: 2, Admitted: 2, Waiting: 7, Live: 5, MaxActive: 5}, *afterTwo)
}

func TestAdmission_InvalidInput_FailsWithoutStepping(t *testing.T) {
	for name, in := range map[string]AdmissionInput{
		"no tick":             {ConcertCode: testConcert, AdmissionWindow: time.Minute},
		"no admission window": {ConcertCode: testConcert, Tick: time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			h := newAdmissionHarness(t)
			h.forbidOthers()

			h.env.ExecuteWorkflow(Admission, in)

			require.True(t, h.env.IsWorkflowCompleted())
			assert.Equal(t, string(booking.ErrInvalidRequest), errorType(h.env.GetWorkflowError()))
			assert.Empty(t, h.names())
		})
	}
}

// A concert whose sale opens later: its waiting room admits nobody before, and sleeps until the opening
// (no step every tick while the pre-queue waits), then steps, and the step draws and admits.
func TestAdmission_BeforeTheOpening_SleepsUntilIt(t *testing.T) {
	h := newAdmissionHarness(t)
	opens := t0.Add(10 * time.Minute)
	h.expectStep(booking.AdmissionStep{Waiting: 3, MaxActive: 5, OpensAt: opens})
	h.expectStep(booking.AdmissionStep{Admitted: 3, Live: 3, MaxActive: 5})
	h.expectStep(booking.AdmissionStep{SoldOut: true})
	h.forbidOthers()

	h.env.ExecuteWorkflow(Admission, admissionInput())

	h.admissionEnded()
	assert.Equal(t, []time.Duration{0, 10*time.Minute + slotMargin, 10*time.Minute + slotMargin + admissionIdle}, h.stepTimes())
}

// A waiting room whose sale closes before its next step would come wakes at the closing: that step ends
// everyone still waiting CLOSED.
func TestAdmission_ASaleThatCloses_StepsAtTheClosing(t *testing.T) {
	h := newAdmissionHarness(t)
	closes := t0.Add(20 * time.Second)
	h.expectStep(booking.AdmissionStep{Waiting: 3, Live: 5, MaxActive: 5, ClosesAt: closes})
	h.expectStep(booking.AdmissionStep{Closed: true, Live: 5, MaxActive: 5})
	h.expectStep(booking.AdmissionStep{SoldOut: true})
	h.forbidOthers()

	h.env.ExecuteWorkflow(Admission, admissionInput())

	h.admissionEnded()
	assert.Equal(t, []time.Duration{0, 20*time.Second + slotMargin, 20*time.Second + slotMargin + admissionIdle}, h.stepTimes(),
		"the full room would have slept until its first slot frees or an idle minute; it woke at the closing")
}
