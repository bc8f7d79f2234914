package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/ticketing/concert/activities"
	"github.com/ticketing/concert/booking"
)

// soldOutKeepsWatch is the change ID of the waiting room staying open after the sell-out.
const soldOutKeepsWatch = "sold-out-keeps-watch"

// waitsForOpening is the change ID of the waiting room sleeping until a concert's sale opens (a step
// reports AdmissionStep.OpensAt) instead of stepping every tick while its pre-queue waits. Only a waiting
// room of a concert with an opening time ever reaches it.
const waitsForOpening = "waits-for-opening"

// sleepsWhileFull is the change ID of the waiting room that, with every slot taken, sleeps until a slot
// frees (the first live window ends, or a session that ends early nudges it) instead of stepping every Tick.
const sleepsWhileFull = "sleeps-while-full"

// slotMargin is how long after the first live window ends the waiting room steps, so that the database,
// whose clock decides, sees the window ended.
const slotMargin = 250 * time.Millisecond

const (
	// admissionStepsPerRun bounds one run's history (each step is a handful of events); the waiting room
	// then continues as new with the same input.
	admissionStepsPerRun = 400
	// admissionIdle is how long the waiting room sleeps when nobody waits (or admission is paused) and no
	// wake signal comes: a safety net only, since a first waiter and every settings change wake it.
	admissionIdle = time.Minute
)

// Admission runs the waiting room of one concert. Each step is one database transaction that admits waiting
// sessions in FIFO order into the free slots of maxActive (or, once every seat is sold, ends them SOLD_OUT),
// followed by the signals that wake exactly those sessions. It steps when something can have changed: woken
// by SignalWake when a first session starts waiting, the settings change or a session ends early, and by its
// own timer when the first live window ends. While nobody waits it sleeps; while every slot is taken it costs
// nothing until one frees.
// Once the concert is sold out it steps only every idle minute, to end late joiners SOLD_OUT.
func Admission(ctx workflow.Context, in AdmissionInput) error {
	if in.Tick <= 0 || in.AdmissionWindow <= 0 {
		return temporal.NewNonRetryableApplicationError("tick and admission window must be positive", string(booking.ErrInvalidRequest), nil)
	}
	view := AdmissionView{ConcertCode: in.ConcertCode}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (AdmissionView, error) { return view, nil }); err != nil {
		return err
	}
	logger := workflow.GetLogger(ctx)
	wake := workflow.GetSignalChannel(ctx, SignalWake)
	stepCtx := durableDB(ctx)
	for step := 0; step < admissionStepsPerRun; step++ {
		var res booking.AdmissionStep
		if err := workflow.ExecuteLocalActivity(stepCtx, acts.AdmitNext, activities.AdmitInput{
			ConcertCode: in.ConcertCode, AdmissionWindow: in.AdmissionWindow,
		}).Get(ctx, &res); err != nil {
			return fmt.Errorf("admission step: %w", err)
		}
		if len(res.Notify) > 0 {
			if err := workflow.ExecuteLocalActivity(stepCtx, acts.NotifyAdmissions, res.Notify).Get(ctx, nil); err != nil {
				return fmt.Errorf("notify admitted sessions: %w", err)
			}
		}
		view = AdmissionView{
			ConcertCode: in.ConcertCode, Steps: view.Steps + 1, Admitted: view.Admitted + res.Admitted,
			Waiting: res.Waiting, Live: res.Live, MaxActive: res.MaxActive, Paused: res.Paused, SoldOut: res.SoldOut,
			Closed: res.Closed,
		}
		if res.Admitted > 0 {
			logger.Info("Admitted", "Count", res.Admitted, "Waiting", res.Waiting, "Live", res.Live)
		}
		workflow.SetCurrentDetails(ctx, view.summary())
		// Version 1 keeps the waiting room open once sold out, stepping every idle minute: a session that
		// joined while the last seat sold (joins that must wait take no lock) still ends SOLD_OUT.
		if res.SoldOut && workflow.GetVersion(ctx, soldOutKeepsWatch, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
			logger.Info("Concert sold out; waiting room closed")
			return nil
		}
		var sleep time.Duration
		opening := !res.OpensAt.IsZero() && res.OpensAt.After(workflow.Now(ctx))
		switch {
		case opening && workflow.GetVersion(ctx, waitsForOpening, workflow.DefaultVersion, 1) == 1:
			// Nobody is admitted before the sale opens: sleep until then (a settings change still wakes it);
			// the first step after it draws the pre-queue.
			sleep = res.OpensAt.Sub(workflow.Now(ctx)) + slotMargin
		case res.Admitted > 0 && res.Waiting > 0 && !res.Paused && res.Live < res.MaxActive:
			continue // a full batch went in and there is room for more
		case res.Waiting > 0 && !res.Paused:
			sleep = in.Tick
			if workflow.GetVersion(ctx, sleepsWhileFull, workflow.DefaultVersion, 1) == 1 {
				sleep = untilSlotFrees(workflow.Now(ctx), res, in.Tick)
			}
		default:
			sleep = admissionIdle
		}
		if closing := res.ClosesAt.Sub(workflow.Now(ctx)) + slotMargin; !res.ClosesAt.IsZero() && closing < sleep {
			// The step after the closing ends everyone still waiting CLOSED. (Only concerts with a closing
			// time say when; no step recorded before they could has it, so no history changes.)
			sleep = max(closing, time.Second)
		}
		timerCtx, cancelTimer := workflow.WithCancel(ctx)
		timer := workflow.NewTimerWithOptions(timerCtx, sleep, workflow.TimerOptions{Summary: "next admission step"})
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(timer, func(workflow.Future) {})
		sel.AddReceive(wake, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil) })
		sel.Select(ctx)
		cancelTimer()
		drain(wake)
	}
	drain(wake) // wakes carry no data; the next run steps at once anyway
	return workflow.NewContinueAsNewError(ctx, Admission, in)
}

// untilSlotFrees is how long a waiting room with people waiting sleeps. With every slot taken nothing can
// change until a slot frees: the first live window ends at res.NextFree, and a session that ends earlier (paid,
// cancelled, released) nudges the waiting room. It steps again after tick when a notice is still unconfirmed
// (it is sent again after db's grace) or a slot is free (which a step that admitted nobody should not leave).
// With no live session and no slot (maxActive 0) only a settings change, which wakes it, can let anyone in.
func untilSlotFrees(now time.Time, res booking.AdmissionStep, tick time.Duration) time.Duration {
	switch {
	case res.Untold > 0 || res.Live < res.MaxActive:
		return tick
	case res.NextFree.IsZero():
		return admissionIdle
	}
	return max(tick, min(res.NextFree.Sub(now)+slotMargin, admissionIdle))
}

// drain discards pending signals on c without blocking.
func drain(c workflow.ReceiveChannel) {
	for c.ReceiveAsync(nil) {
	}
}

// summary is the waiting room as an operator reads it in the Temporal UI.
func (v AdmissionView) summary() string {
	state := "admitting"
	switch {
	case v.SoldOut:
		state = "sold out"
	case v.Closed:
		state = "sale closed"
	case v.Paused:
		state = "**paused**"
	}
	return fmt.Sprintf("Concert `%s` · %s · %d waiting · %d of %d slots in use · %d admitted in this run (%d steps)",
		v.ConcertCode, state, v.Waiting, v.Live, v.MaxActive, v.Admitted, v.Steps)
}
