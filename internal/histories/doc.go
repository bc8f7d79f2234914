// Package histories captures Temporal workflow histories from real runs of the booking service, for the
// replay tests of package workflows (workflows/replay_test.go). It is test-only tooling: its one test drives
// every session path through the HTTP API of a full test stack (internal/teststack) and writes each closed
// run's history to workflows/testdata/histories as JSON, the format `temporal workflow show --output json`
// prints. The test runs only when asked:
//
//	go test -tags capture ./internal/histories/ -count=1 -v
//
// Regenerate the histories when a workflow path is added or a deliberate, versioned change makes old
// histories obsolete, never to make a failing replay test pass. Nothing may import this package, and it
// must not grow production code.
package histories
