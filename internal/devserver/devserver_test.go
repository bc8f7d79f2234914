package devserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enums "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

const (
	taskQueue = "devserver-test"

	// finishSignal ends waitForFinish.
	finishSignal = "finish"
	// holdUpdate is the Update that updatableWorkflow answers.
	holdUpdate = "hold"

	// helperDirEnv makes the test binary act as a separate `concert dev` process (see TestMain).
	helperDirEnv = "DEVSERVER_TEST_HELPER_DIR"
	// restartWorkflowID is the workflow the helper process leaves waiting for TestWorkflowSurvivesRestart.
	restartWorkflowID = "survives-restart"
)

var (
	concertCode   = temporal.NewSearchAttributeKeyKeyword("ConcertCode")
	bookingStatus = temporal.NewSearchAttributeKeyKeyword("BookingStatus")
	concertDate   = temporal.NewSearchAttributeKeyTime("ConcertDate")
	seatNumber    = temporal.NewSearchAttributeKeyInt64("SeatNumber")

	// concertAttributes are the search attributes the ticketing workflows use.
	concertAttributes = map[string]enums.IndexedValueType{
		concertCode.GetName():   enums.INDEXED_VALUE_TYPE_KEYWORD,
		bookingStatus.GetName(): enums.INDEXED_VALUE_TYPE_KEYWORD,
		concertDate.GetName():   enums.INDEXED_VALUE_TYPE_DATETIME,
		seatNumber.GetName():    enums.INDEXED_VALUE_TYPE_INT,
	}
)

// TestMain lets the test binary run as a helper process: TestWorkflowSurvivesRestart needs the first server to
// live and die in another process, as `concert dev` does between two runs.
func TestMain(m *testing.M) {
	if dir := os.Getenv(helperDirEnv); dir != "" {
		if err := startWorkflowAndStop(dir); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// waitForFinish waits for finishSignal, marks the booking confirmed and greets with what it was started with and
// what the signal carried, so the result proves both survived.
func waitForFinish(ctx workflow.Context, started string) (string, error) {
	var signalled string
	workflow.GetSignalChannel(ctx, finishSignal).Receive(ctx, &signalled)
	if err := workflow.UpsertTypedSearchAttributes(ctx, bookingStatus.ValueSet("CONFIRMED")); err != nil {
		return "", err
	}
	return started + "+" + signalled, nil
}

// upsertConcertAttributes sets every concert search attribute and returns.
func upsertConcertAttributes(ctx workflow.Context, code string) error {
	return workflow.UpsertTypedSearchAttributes(ctx,
		concertCode.ValueSet(code),
		bookingStatus.ValueSet("HELD"),
		concertDate.ValueSet(time.Date(2026, 12, 31, 20, 0, 0, 0, time.UTC)),
		seatNumber.ValueSet(12),
	)
}

// echo returns its input: the smallest workflow that proves a server runs workflows.
func echo(_ workflow.Context, in string) (string, error) { return in, nil }

// updatableWorkflow answers holdUpdate until it is signalled to finish.
func updatableWorkflow(ctx workflow.Context) error {
	if err := workflow.SetUpdateHandler(ctx, holdUpdate, func(_ workflow.Context, seat string) (string, error) {
		return "held " + seat, nil
	}); err != nil {
		return err
	}
	workflow.GetSignalChannel(ctx, finishSignal).Receive(ctx, nil)
	return nil
}

// testLogger sends server logs at Warn and above to stderr, where `go test -v` shows them next to the test.
func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, nil))
}

// startServer starts a server with opts and stops it when the test ends, failing the test if Stop fails.
func startServer(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	began := time.Now()
	s, err := Start(ctx, opts)
	require.NoError(t, err)
	t.Logf("Start took %v (frontend %s, UI %q)", time.Since(began).Round(time.Millisecond),
		s.FrontendAddress(), s.UIAddress())
	t.Cleanup(func() {
		began := time.Now()
		assert.NoError(t, s.Stop())
		t.Logf("Stop took %v", time.Since(began).Round(time.Millisecond))
	})
	return s
}

// dial returns a client for s's namespace, closed when the test ends.
func dial(t *testing.T, s *Server) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{
		HostPort:  s.FrontendAddress(),
		Namespace: s.Namespace(),
		Logger:    sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// runWorker runs a worker for the test workflows on c until the test ends.
func runWorker(t *testing.T, c client.Client) {
	t.Helper()
	w := newWorker(c)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
}

func newWorker(c client.Client) worker.Worker {
	w := worker.New(c, taskQueue, worker.Options{})
	w.RegisterWorkflow(waitForFinish)
	w.RegisterWorkflow(upsertConcertAttributes)
	w.RegisterWorkflow(echo)
	w.RegisterWorkflow(updatableWorkflow)
	return w
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func runEcho(ctx context.Context, t *testing.T, c client.Client, in string) {
	t.Helper()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: taskQueue}, echo, in)
	require.NoError(t, err)
	var out string
	require.NoError(t, run.Get(ctx, &out))
	require.Equal(t, in, out)
}

func TestNamespaceIsUsableAsSoonAsStartReturns(t *testing.T) {
	s := startServer(t, Options{Namespace: "concert-test", UIPort: NoUI})
	require.Equal(t, "concert-test", s.Namespace())
	require.Empty(t, s.UIAddress())
	c := dial(t, s)
	runWorker(t, c)
	ctx := testContext(t)

	runEcho(ctx, t, c, "first workflow")

	// Update-with-Start is what the booking API relies on; it must work without extra dynamic config.
	start := c.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       "update-with-start",
		TaskQueue:                taskQueue,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, updatableWorkflow)
	handle, err := c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateName:   holdUpdate,
			Args:         []any{"A12"},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	require.NoError(t, err)
	var held string
	require.NoError(t, handle.Get(ctx, &held))
	require.Equal(t, "held A12", held)
	require.NoError(t, c.SignalWorkflow(ctx, "update-with-start", "", finishSignal, nil))
}

func TestSearchAttributesAreRegisteredAndQueryable(t *testing.T) {
	s := startServer(t, Options{UIPort: NoUI, SearchAttributes: concertAttributes})
	c := dial(t, s)
	ctx := testContext(t)

	listed, err := c.OperatorService().ListSearchAttributes(ctx,
		&operatorservice.ListSearchAttributesRequest{Namespace: s.Namespace()})
	require.NoError(t, err)
	for name, typ := range concertAttributes {
		assert.Equal(t, typ, listed.GetCustomAttributes()[name], name)
	}

	runWorker(t, c)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: taskQueue},
		upsertConcertAttributes, "X")
	require.NoError(t, err)
	require.NoError(t, run.Get(ctx, nil))
	// A decoy with another concert code must not match.
	decoy, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: taskQueue},
		upsertConcertAttributes, "Y")
	require.NoError(t, err)
	require.NoError(t, decoy.Get(ctx, nil))

	queries := []string{
		`ConcertCode="X" AND BookingStatus="HELD"`,
		`ConcertCode="X" AND SeatNumber=12 AND ConcertDate>"2026-12-31T00:00:00Z"`,
	}
	for _, q := range queries {
		assert.EventuallyWithT(t, func(c2 *assert.CollectT) {
			resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: q})
			if !assert.NoError(c2, err) {
				return
			}
			if assert.Len(c2, resp.GetExecutions(), 1, q) {
				assert.Equal(c2, run.GetID(), resp.GetExecutions()[0].GetExecution().GetWorkflowId())
			}
		}, 10*time.Second, 50*time.Millisecond, q)
	}
}

func TestWebUIServesPageAndAPI(t *testing.T) {
	s := startServer(t, Options{})
	require.True(t, strings.HasPrefix(s.UIAddress(), "http://127.0.0.1:"), s.UIAddress())
	c := dial(t, s)
	runWorker(t, c)
	ctx := testContext(t)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "seen-in-ui", TaskQueue: taskQueue},
		echo, "hello")
	require.NoError(t, err)
	require.NoError(t, run.Get(ctx, nil))

	page := httpGet(ctx, t, s.UIAddress()+"/")
	require.Equal(t, http.StatusOK, page.status)
	require.Contains(t, page.contentType, "text/html")
	require.Contains(t, strings.ToLower(page.body), "<!doctype html>")

	list := s.UIAddress() + "/api/v1/namespaces/" + s.Namespace() + "/workflows?query=" +
		url.QueryEscape(`WorkflowId="seen-in-ui"`)
	assert.EventuallyWithT(t, func(c2 *assert.CollectT) {
		r := httpGet(ctx, t, list)
		if !assert.Equal(c2, http.StatusOK, r.status, r.body) {
			return
		}
		assert.Contains(c2, r.contentType, "application/json")
		var decoded struct {
			Executions []struct {
				Execution struct {
					WorkflowID string `json:"workflowId"`
				} `json:"execution"`
			} `json:"executions"`
		}
		if assert.NoError(c2, json.Unmarshal([]byte(r.body), &decoded), r.body) &&
			assert.Len(c2, decoded.Executions, 1, r.body) {
			assert.Equal(c2, "seen-in-ui", decoded.Executions[0].Execution.WorkflowID)
		}
	}, 10*time.Second, 50*time.Millisecond)
}

type httpResult struct {
	status      int
	contentType string
	body        string
}

func httpGet(ctx context.Context, t *testing.T, u string) httpResult {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return httpResult{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), body: string(body)}
}

func TestTwoStacksRunSideBySide(t *testing.T) {
	// Started concurrently, as two `concert dev` processes would be, to give the port choice a chance to collide.
	servers := make([]*Server, 2)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range servers {
		wg.Go(func() {
			servers[i], errs[i] = Start(t.Context(), Options{Logger: testLogger()})
		})
	}
	wg.Wait()
	for i, s := range servers {
		if s != nil {
			t.Cleanup(func() { assert.NoError(t, s.Stop()) })
		}
		require.NoError(t, errs[i])
	}

	a, b := servers[0].ports, servers[1].ports
	require.Empty(t, intersect(portList(a), portList(b)), "stacks share ports: %+v %+v", a, b)

	ctx := testContext(t)
	for i, s := range servers {
		c := dial(t, s)
		runWorker(t, c)
		runEcho(ctx, t, c, fmt.Sprintf("stack %d", i))
		require.Equal(t, http.StatusOK, httpGet(ctx, t, s.UIAddress()+"/healthz").status)
		// Each stack sees only its own workflows: they do not share a database.
		assert.EventuallyWithT(t, func(c2 *assert.CollectT) {
			resp, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{})
			if assert.NoError(c2, err) {
				assert.Equal(c2, int64(1), resp.GetCount())
			}
		}, 10*time.Second, 50*time.Millisecond)
	}
}

func portList(p ports) []int { return []int{p.frontend, p.history, p.matching, p.worker, p.ui} }

func intersect(a, b []int) []int {
	var both []int
	for _, x := range a {
		for _, y := range b {
			if x == y {
				both = append(both, x)
			}
		}
	}
	return both
}

func TestStopReleasesEveryPort(t *testing.T) {
	ctx := testContext(t)
	s, err := Start(ctx, Options{Logger: testLogger()})
	require.NoError(t, err)
	used := s.ports
	runEcho(ctx, t, dialNoCleanup(t, s), "before stop")
	require.NoError(t, s.Stop())
	require.NoError(t, s.Stop(), "Stop is idempotent")

	for _, p := range portList(used) {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		require.NoError(t, err, "port %d still taken after Stop", p)
		require.NoError(t, l.Close())
	}

	// The same fixed ports work again at once, as when `concert dev` is restarted.
	again := startServer(t, Options{Port: used.frontend, UIPort: used.ui})
	require.Equal(t, s.FrontendAddress(), again.FrontendAddress())
	require.Equal(t, s.UIAddress(), again.UIAddress())
	c := dial(t, again)
	runWorker(t, c)
	runEcho(ctx, t, c, "after restart")
}

// dialNoCleanup returns a client with a worker that are both closed when the test ends; for a server the test
// stops itself, the worker's polls simply fail until then.
func dialNoCleanup(t *testing.T, s *Server) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{
		HostPort:  s.FrontendAddress(),
		Namespace: s.Namespace(),
		Logger:    sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	})
	require.NoError(t, err)
	w := newWorker(c)
	require.NoError(t, w.Start())
	t.Cleanup(func() {
		w.Stop()
		c.Close()
	})
	return c
}

// startWorkflowAndStop is the helper process's job: start a file-backed server, leave a workflow waiting for a
// signal (after its first workflow task ran), and shut down.
func startWorkflowAndStop(dir string) (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Start(ctx, Options{
		DataDir:          dir,
		UIPort:           NoUI,
		Logger:           testLogger(),
		SearchAttributes: map[string]enums.IndexedValueType{concertCode.GetName(): enums.INDEXED_VALUE_TYPE_KEYWORD},
	})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, s.Stop()) }()
	c, err := client.Dial(client.Options{HostPort: s.FrontendAddress(), Namespace: s.Namespace(),
		Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		return err
	}
	defer c.Close()
	w := newWorker(c)
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Stop()

	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: restartWorkflowID, TaskQueue: taskQueue},
		waitForFinish, "started-before-restart")
	if err != nil {
		return err
	}
	// Wait until the workflow task has completed, so the history holds the worker's progress, not only the start.
	return poll(ctx, func() error {
		hist := c.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for hist.HasNext() {
			ev, err := hist.Next()
			if err != nil {
				return err
			}
			if ev.GetEventType() == enums.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
				return nil
			}
		}
		return errors.New("first workflow task not completed yet")
	})
}

func TestWorkflowSurvivesRestart(t *testing.T) {
	dir := t.TempDir()

	// First run in a separate process, which exits: nothing can survive in memory.
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperDirEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "helper process: %s", out)
	require.FileExists(t, dir+"/"+DatabaseFileName)

	// Second run in this process, with one more search attribute than the first: the namespace exists, so it
	// goes through the operator service, and the workflow upserts it straight after Start.
	ctx := testContext(t)
	opts := Options{
		DataDir: dir,
		UIPort:  NoUI,
		SearchAttributes: map[string]enums.IndexedValueType{
			concertCode.GetName():   enums.INDEXED_VALUE_TYPE_KEYWORD,
			bookingStatus.GetName(): enums.INDEXED_VALUE_TYPE_KEYWORD,
		},
		Logger: testLogger(),
	}
	s, err := Start(ctx, opts)
	require.NoError(t, err)
	c := dialNoCleanup(t, s)

	desc, err := c.DescribeWorkflowExecution(ctx, restartWorkflowID, "")
	require.NoError(t, err)
	require.Equal(t, enums.WORKFLOW_EXECUTION_STATUS_RUNNING, desc.GetWorkflowExecutionInfo().GetStatus())

	require.NoError(t, c.SignalWorkflow(ctx, restartWorkflowID, "", finishSignal, "signalled-after-restart"))
	var result string
	require.NoError(t, c.GetWorkflow(ctx, restartWorkflowID, "").Get(ctx, &result))
	require.Equal(t, "started-before-restart+signalled-after-restart", result)
	requireNoFailedWorkflowTask(ctx, t, c, restartWorkflowID)
	require.NoError(t, s.Stop())

	// Third run, in the same process and on the same directory: the finished workflow and its search attribute
	// are still there.
	s = startServer(t, opts)
	c = dial(t, s)
	desc, err = c.DescribeWorkflowExecution(ctx, restartWorkflowID, "")
	require.NoError(t, err)
	require.Equal(t, enums.WORKFLOW_EXECUTION_STATUS_COMPLETED, desc.GetWorkflowExecutionInfo().GetStatus())
	assert.EventuallyWithT(t, func(c2 *assert.CollectT) {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: `BookingStatus="CONFIRMED"`,
		})
		if assert.NoError(c2, err) {
			assert.Len(c2, resp.GetExecutions(), 1)
		}
	}, 10*time.Second, 50*time.Millisecond)
}

// requireNoFailedWorkflowTask fails the test if any workflow task of the workflow failed, which is what an
// upsert of a search attribute the history service does not know yet causes.
func requireNoFailedWorkflowTask(ctx context.Context, t *testing.T, c client.Client, id string) {
	t.Helper()
	hist := c.GetWorkflowHistory(ctx, id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for hist.HasNext() {
		ev, err := hist.Next()
		require.NoError(t, err)
		require.NotEqual(t, enums.EVENT_TYPE_WORKFLOW_TASK_FAILED, ev.GetEventType(), "event %d: %v",
			ev.GetEventId(), ev.GetWorkflowTaskFailedEventAttributes())
	}
}

func TestStartRefusesConflictsOnDataDir(t *testing.T) {
	dir := t.TempDir()
	keyword := map[string]enums.IndexedValueType{concertCode.GetName(): enums.INDEXED_VALUE_TYPE_KEYWORD}
	ctx := testContext(t)
	first, err := Start(ctx, Options{DataDir: dir, UIPort: NoUI, SearchAttributes: keyword, Logger: testLogger()})
	require.NoError(t, err)

	_, err = Start(ctx, Options{DataDir: dir, UIPort: NoUI, Logger: testLogger()})
	require.ErrorIs(t, err, ErrDataDirLocked, "a second stack on the same data dir")
	require.NoError(t, first.Stop())

	asInt := map[string]enums.IndexedValueType{concertCode.GetName(): enums.INDEXED_VALUE_TYPE_INT}
	_, err = Start(ctx, Options{DataDir: dir, UIPort: NoUI, SearchAttributes: asInt, Logger: testLogger()})
	require.ErrorContains(t, err, `search attribute "ConcertCode" is registered as Keyword, want Int`)

	// The failed starts left nothing behind: the directory can be used again.
	s := startServer(t, Options{DataDir: dir, UIPort: NoUI, SearchAttributes: keyword})
	runEcho(ctx, t, dialNoCleanup(t, s), "after refusals")
}

func TestStartRejectsBadOptionsBeforeStarting(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = busy.Close() })
	busyPort := busy.Addr().(*net.TCPAddr).Port

	elevenKeywords := map[string]enums.IndexedValueType{}
	for i := range 11 {
		elevenKeywords[fmt.Sprintf("Keyword%d", i)] = enums.INDEXED_VALUE_TYPE_KEYWORD
	}

	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"frontend port in use", Options{Port: busyPort}, "frontend port 127.0.0.1:" + strconv.Itoa(busyPort)},
		{"UI port in use", Options{UIPort: busyPort}, "web UI port 127.0.0.1:" + strconv.Itoa(busyPort)},
		{"negative port", Options{Port: -1}, "Port -1 out of range"},
		{"UI port below NoUI", Options{UIPort: -2}, "UIPort -2 out of range"},
		{"same port twice", Options{Port: 7999, UIPort: 7999}, "Port and UIPort are both 7999"},
		{"IP not an address", Options{IP: "localhost"}, `IP "localhost" is not an IP address`},
		{"unspecified attribute type", Options{SearchAttributes: map[string]enums.IndexedValueType{
			"Nope": enums.INDEXED_VALUE_TYPE_UNSPECIFIED,
		}}, `search attribute "Nope" has invalid type`},
		{"more keywords than SQLite has slots", Options{SearchAttributes: elevenKeywords},
			"cannot have more than 10 search attributes of type Keyword"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Logger = testLogger()
			s, err := Start(testContext(t), tt.opts)
			if s != nil {
				_ = s.Stop()
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}
