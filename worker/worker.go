// Package worker assembles the booking worker: which workflows and activities it runs, on which task queue,
// with which options. It holds no business logic; cmd/concert and the integration tests both build their
// worker here, so they run exactly the same registration.
package worker

import (
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/ticketing/concert/activities"
	"github.com/ticketing/concert/db"
	"github.com/ticketing/concert/workflows"
)

// New returns a worker for the booking task queue with every workflow and activity registered, the
// activities working on store and reaching other workflows through the door on c. The caller starts and
// stops it.
func New(c client.Client, store *db.Store, opts sdkworker.Options) sdkworker.Worker {
	w := sdkworker.New(c, workflows.TaskQueue, opts)
	w.RegisterWorkflowWithOptions(workflows.BookingSession, workflow.RegisterOptions{Name: "BookingSession"})
	w.RegisterWorkflowWithOptions(workflows.Admission, workflow.RegisterOptions{Name: "Admission"})
	w.RegisterActivity(&activities.Activities{Store: store, Sessions: workflows.NewDoor(c, workflows.AdmissionInput{}, nil)})
	return w
}
