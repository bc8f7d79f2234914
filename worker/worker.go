// Package worker assembles the booking worker: which workflows and activities it runs, on which task queue,
// with which options. It holds no business logic; cmd/concert and the integration tests both build their
// worker here, so they run exactly the same registration.
package worker

import (
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/ticketing/concert/activities"
	"github.com/ticketing/concert/workflows"
)

// New returns a worker for the booking task queue with every workflow and activity registered. The caller
// starts and stops it.
func New(c client.Client, acts *activities.Activities, opts sdkworker.Options) sdkworker.Worker {
	w := sdkworker.New(c, workflows.TaskQueue, opts)
	w.RegisterWorkflowWithOptions(workflows.BookingSession, workflow.RegisterOptions{Name: "BookingSession"})
	w.RegisterWorkflowWithOptions(workflows.Admission, workflow.RegisterOptions{Name: "Admission"})
	w.RegisterActivity(acts)
	return w
}
