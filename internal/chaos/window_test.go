//go:build unix

package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
)

// This file is the chaos event "the API dies between a token's commit and its workflow's start": a burst of
// fans asks for tokens of a concert with a free slot for each of them, so every token is admitted at the join
// and its workflow is left to the API's starter; the API is SIGKILLed while the answers come in, and
// restarted on the same port. To catch sessions in the window every time, the API reaches Temporal through a
// gate (a TCP proxy in the test process) that holds what the API sends during the burst, as a Temporal that
// is slow to answer would keep the starter busy, and drops it with the dead API's connections.

// gate is a TCP proxy between the API and Temporal. Held, it forwards nothing from the API to Temporal
// (answers to what went before still come back); cut, it closes every connection it has, dropping what they
// were about to send, and forwards again.
type gate struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	cond   *sync.Cond
	held   bool
	closed bool
	conns  map[*gateConn]struct{}
}

// gateConn is one connection through the gate.
type gateConn struct {
	client, upstream net.Conn
	dead             bool // guarded by gate.mu
}

// newGate listens on a free loopback port and forwards to target until the test ends.
func newGate(t testing.TB, target string) *gate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("gate: %v", err)
	}
	g := &gate{ln: ln, target: target, conns: map[*gateConn]struct{}{}}
	g.cond = sync.NewCond(&g.mu)
	go g.serve()
	t.Cleanup(g.close)
	return g
}

func (g *gate) addr() string { return g.ln.Addr().String() }

func (g *gate) serve() {
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		go g.handle(c)
	}
}

func (g *gate) handle(client net.Conn) {
	up, err := net.DialTimeout("tcp", g.target, 5*time.Second)
	if err != nil { // Temporal is down (it is restarted once): the API retries
		_ = client.Close()
		return
	}
	gc := &gateConn{client: client, upstream: up}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		_, _ = client.Close(), up.Close()
		return
	}
	g.conns[gc] = struct{}{}
	g.mu.Unlock()
	defer g.drop(gc)
	go func() {
		_, _ = io.Copy(client, up)
		g.drop(gc)
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			if !g.pass(gc) {
				return
			}
			if _, err := up.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// pass waits while the gate is held and reports whether the connection may still forward.
func (g *gate) pass(gc *gateConn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.held && !gc.dead {
		g.cond.Wait()
	}
	return !gc.dead
}

// drop closes one connection.
func (g *gate) drop(gc *gateConn) {
	g.mu.Lock()
	g.dropLocked(gc)
	g.mu.Unlock()
}

func (g *gate) dropLocked(gc *gateConn) {
	if !gc.dead {
		gc.dead = true
		delete(g.conns, gc)
		_, _ = gc.client.Close(), gc.upstream.Close()
		g.cond.Broadcast()
	}
}

// hold stops forwarding from the API to Temporal.
func (g *gate) hold() {
	g.mu.Lock()
	g.held = true
	g.mu.Unlock()
}

// cut closes every connection, with whatever it held, and forwards again.
func (g *gate) cut() (dropped int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for gc := range g.conns {
		g.dropLocked(gc)
		dropped++
	}
	g.held = false
	g.cond.Broadcast()
	return dropped
}

func (g *gate) close() {
	_ = g.ln.Close()
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.cut()
}

// crashWindow is what the event needs: the burst's users and where to run them.
type crashWindow struct {
	ctx         context.Context // the load's context
	userTimeout time.Duration
	users       []*user
	wg          sync.WaitGroup // the burst's users, started by the event
}

// windowSession is a session that was committed in PostgreSQL and had no workflow when the API died.
type windowSession struct {
	ID         string `db:"id"`
	WorkflowID string `db:"workflow_id"`
	Concert    string `db:"concert_code"`
	Status     string `db:"status"`
	AtJoin     bool   `db:"at_join"` // admitted by the join itself: its workflow was the API starter's to start
}

// windowStats is what the API crash caught.
type windowStats struct {
	Crashes        int
	Burst          int           // token requests fired together
	AnsweredAtKill int           // of which answered before the SIGKILL
	Committed      int           // sessions of the burst's concert in PostgreSQL at the kill
	Downtime       time.Duration // from the SIGKILL to the restarted API's readiness
	KilledAt       time.Time
	// Caught are the admitted (or holding) sessions without a workflow at the kill: those admitted at the join
	// are the window's, the others were admitted by the waiting room, whose notice was on its way.
	// WaitingWithout counts the waiting ones, whose workflows start with their admission by design.
	Caught         []windowSession
	WaitingWithout int
	WithWorkflow   int // live sessions whose workflow ran at the kill
	DescribeErrors []string
	DroppedConns   int
	// Filled in by the verification.
	Outcomes  map[string]int
	StartedBy map[string]int
	Starts    map[string][2]time.Duration // concert → first and last workflow start after the kill
}

// inWindow counts the caught sessions admitted at the join, of one concert or ("") of all.
func (w *windowStats) inWindow(code string) int {
	n := 0
	for _, s := range w.Caught {
		if s.AtJoin && (code == "" || s.Concert == code) {
			n++
		}
	}
	return n
}

// crashAPIInWindow holds the API's link to Temporal, fires the burst's token requests together, SIGKILLs the
// API once half of them are answered, records which committed sessions have no workflow at that moment, drops
// what the dead API had sent towards Temporal, and starts the API again on the same port.
func (s *stack) crashAPIInWindow(ctx context.Context, t *testing.T, st *chaosStats, start time.Time, w *crashWindow) {
	ws := &st.Window
	ws.Burst = len(w.users)
	s.gate.hold()
	answered := make(chan struct{}, len(w.users))
	for _, u := range w.users {
		u.onToken = func() { answered <- struct{}{} }
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			uctx, cancel := context.WithTimeout(w.ctx, w.userTimeout)
			defer cancel()
			u.run(uctx)
		}()
	}
	want := (len(w.users) + 1) / 2
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
wait:
	for ws.AnsweredAtKill < want {
		select {
		case <-answered:
			ws.AnsweredAtKill++
		case <-deadline.C:
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	if err := s.api.kill(); err != nil {
		t.Errorf("kill API: %v", err)
		s.gate.cut()
		return
	}
	ws.KilledAt = time.Now()
	ws.Crashes++
	st.event(start, "API SIGKILLed with %d of %d burst tokens answered, its link to Temporal held", ws.AnsweredAtKill, ws.Burst)
	s.snapshotWindow(ctx, t, st, start)
	ws.DroppedConns = s.gate.cut()
	if _, err := s.api.start(); err != nil {
		t.Errorf("start API again: %v", err)
		return
	}
	if err := s.api.waitReady(time.Minute); err != nil {
		t.Errorf("API did not come back: %v\n%s", err, tail(s.api.current().stderr, 40))
		return
	}
	ws.Downtime = time.Since(ws.KilledAt)
	st.event(start, "API serving again after %s (%d of its connections to Temporal still open were cut unforwarded)", ws.Downtime.Round(time.Millisecond), ws.DroppedConns)
}

// snapshotWindow lists the live sessions in PostgreSQL and asks Temporal, directly, whether each has a
// workflow. The dead API's starts are held in the gate, so only the waiting room can start one meanwhile; a
// workflow started after the kill counts as none.
func (s *stack) snapshotWindow(ctx context.Context, t *testing.T, st *chaosStats, start time.Time) {
	ws := &st.Window
	store, err := sqlx.Open("postgres", s.dbURL)
	if err != nil {
		t.Errorf("open database: %v", err)
		return
	}
	defer store.Close()
	// One statement, one snapshot: a join the dead API sent may still commit.
	var rows []windowSession
	if err := store.SelectContext(ctx, &rows, `
SELECT id, workflow_id, concert_code, status, admitted_at IS NOT DISTINCT FROM created_at AS at_join FROM sessions
WHERE status IN ('WAITING', 'ACTIVE', 'HELD') OR concert_code = $1 ORDER BY seq`, burstCode); err != nil {
		t.Errorf("list live sessions: %v", err)
		return
	}
	var live []windowSession
	for _, r := range rows {
		if r.Concert == burstCode {
			ws.Committed++
		}
		if !terminalStatuses[r.Status] {
			live = append(live, r)
		}
	}
	tc, err := client.Dial(client.Options{
		HostPort: s.temporalAddr, Namespace: "default",
		Logger: sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	})
	if err != nil {
		t.Errorf("dial Temporal: %v", err)
		return
	}
	defer tc.Close()
	has := make([]int, len(live)) // 1 workflow, 0 none, -1 unknown
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, ls := range live {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			d, err := tc.DescribeWorkflowExecution(dctx, ls.WorkflowID, "")
			var nf *serviceerror.NotFound
			switch {
			case errors.As(err, &nf):
				has[i] = 0
			case err != nil:
				has[i] = -1
				mu.Lock()
				ws.DescribeErrors = append(ws.DescribeErrors, ls.ID+": "+err.Error())
				mu.Unlock()
			case d.GetWorkflowExecutionInfo().GetStartTime().AsTime().After(ws.KilledAt):
				has[i] = 0
			default:
				has[i] = 1
			}
		}()
	}
	wg.Wait()
	for i, ls := range live {
		switch {
		case has[i] == 1:
			ws.WithWorkflow++
		case has[i] < 0:
		case ls.Status == "WAITING":
			ws.WaitingWithout++
		default:
			ws.Caught = append(ws.Caught, ls)
		}
	}
	st.event(start, "at the kill: %d sessions of the burst committed; without a workflow: %d admitted at the join (%d of the burst), %d admitted by the waiting room, %d waiting; %d live sessions with one, %d unknown",
		ws.Committed, ws.inWindow(""), ws.inWindow(burstCode), len(ws.Caught)-ws.inWindow(""), ws.WaitingWithout, ws.WithWorkflow, len(ws.DescribeErrors))
}

// verifyWindow requires that every session caught in the window ended: its row in a terminal status and its
// workflow completed with that status, or, for a session that never needed one (SOLD_OUT), none. It records
// how the workflows started: with the waiting room's re-notification (Signal-with-Start) or the fan's first
// reserve (Update-with-Start).
func verifyWindow(ctx context.Context, t *testing.T, ws *windowStats, tc client.Client, dbStatus map[string]string, runs map[string]workflowRun) {
	if ws.Crashes == 0 {
		t.Errorf("the API was never killed in the token window")
		return
	}
	if ws.inWindow(burstCode) == 0 {
		t.Errorf("the API crash caught no session of the burst between its commit and its workflow's start (%d answered, %d committed)", ws.AnsweredAtKill, ws.Committed)
	}
	ws.Outcomes, ws.StartedBy, ws.Starts = map[string]int{}, map[string]int{}, map[string][2]time.Duration{}
	for _, c := range ws.Caught {
		st := dbStatus[c.ID]
		if c.AtJoin {
			ws.Outcomes[st]++
		}
		if !terminalStatuses[st] {
			t.Errorf("session %s, committed without a workflow when the API died, did not end: %s", c.ID, st)
			continue
		}
		r, ok := runs[c.ID]
		switch {
		case !ok && st == "SOLD_OUT":
			if c.AtJoin {
				ws.StartedBy["none needed (SOLD_OUT)"]++
			}
			continue
		case !ok:
			t.Errorf("session %s, committed without a workflow when the API died, ended %s without ever having one", c.ID, st)
			continue
		case r.Status != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED || r.BookingStatus != st:
			t.Errorf("session %s, committed without a workflow when the API died: its workflow closed %s with %q, the row says %s", c.ID, r.Status, r.BookingStatus, st)
		}
		if !c.AtJoin {
			continue
		}
		by, startedAt := startedBy(ctx, tc, c.WorkflowID)
		ws.StartedBy[by]++
		if startedAt.IsZero() {
			continue
		}
		after := startedAt.Sub(ws.KilledAt)
		r2, seen := ws.Starts[c.Concert]
		if !seen || after < r2[0] {
			r2[0] = after
		}
		if !seen || after > r2[1] {
			r2[1] = after
		}
		ws.Starts[c.Concert] = r2
	}
}

// startedBy reads the start of a session's history: the first admission signal or accepted update says which
// path started the workflow.
func startedBy(ctx context.Context, tc client.Client, workflowID string) (string, time.Time) {
	var at time.Time
	it := tc.GetWorkflowHistory(ctx, workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return "unknown (" + err.Error() + ")", at
		}
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			at = e.GetEventTime().AsTime()
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
			return "waiting room (Signal-with-Start)", at
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED:
			return "first reserve (Update-with-Start)", at
		}
	}
	return "other", at
}

// windowLines are the report's lines on the API crash.
func (w *windowStats) lines() []string {
	if w.Crashes == 0 {
		return []string{"no API crash in the token window"}
	}
	out := []string{
		fmt.Sprintf("SIGKILLed with %d of %d burst tokens answered, its link to Temporal held; down %s; nothing it sent after the hold reached Temporal (%d connections still open were cut)",
			w.AnsweredAtKill, w.Burst, rd(w.Downtime), w.DroppedConns),
		fmt.Sprintf("at the kill %d sessions of the burst were committed; caught in the window (admitted at the join, no workflow): %d, %d of them of the burst",
			w.Committed, w.inWindow(""), w.inWindow(burstCode)),
		fmt.Sprintf("also without a workflow: %d admitted by the waiting room (its notice on the way), %d waiting (started with admission by design); %d live sessions had one",
			len(w.Caught)-w.inWindow(""), w.WaitingWithout, w.WithWorkflow),
	}
	if len(w.Outcomes) > 0 {
		codes := make([]string, 0, len(w.Starts))
		for code := range w.Starts {
			codes = append(codes, code)
		}
		sort.Strings(codes)
		var when []string
		for _, code := range codes {
			when = append(when, fmt.Sprintf("%s %s to %s", code, rd(w.Starts[code][0]), rd(w.Starts[code][1])))
		}
		out = append(out, fmt.Sprintf("the window's sessions ended %s; their workflows started by %s, after the kill: %s",
			fmtCounts(w.Outcomes), fmtCounts(w.StartedBy), strings.Join(when, ", ")))
	}
	if len(w.DescribeErrors) > 0 {
		errs := append([]string(nil), w.DescribeErrors...)
		sort.Strings(errs)
		out = append(out, fmt.Sprintf("%d sessions could not be described at the kill, e.g. %s", len(errs), strings.Join(errs[:min(2, len(errs))], "; ")))
	}
	return out
}
