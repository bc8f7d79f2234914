package api

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/ticketing/concert/workflows"
)

// starter starts the workflows of sessions whose tokens this process issued, off the request path: a token
// is answered when its row commits, and its workflow starts a moment later. It is bounded: a few starts run
// at once, the queues have a fixed size, and waiting sessions are started at a bounded rate, so a stampede
// into the waiting room does not turn into a stampede on Temporal. Admitted sessions go first. Nothing is lost when a start is
// dropped or this process dies before it: an admitted session's first reserve starts its workflow
// (Update-with-Start), the waiting room starts any admitted session that has not attached within seconds,
// and a waiting session's workflow is started with its admission (Signal-with-Start).
type starter struct {
	start    func(context.Context, workflows.SessionRef) error
	log      *slog.Logger
	admitted chan workflows.SessionRef
	waiting  chan workflows.SessionRef
	// waitingRate paces the starts of waiting sessions.
	waitingRate *rate.Limiter

	mu      sync.Mutex
	running int
	max     int

	// Counters for tests and logs: started, failed, dropped.
	started, failed, dropped atomic.Int64
}

// starterIdle is how long a start goroutine waits for work before it exits.
const starterIdle = 2 * time.Second

// startTimeout bounds one start call.
const startTimeout = 10 * time.Second

func newStarter(start func(context.Context, workflows.SessionRef) error, log *slog.Logger, parallel, admittedQueue, waitingQueue int, waitingPerSecond float64) *starter {
	s := &starter{
		start: start, log: log, max: max(parallel, 1),
		admitted:    make(chan workflows.SessionRef, max(admittedQueue, 1)),
		waitingRate: rate.NewLimiter(rate.Limit(waitingPerSecond), 1),
	}
	if waitingQueue > 0 {
		s.waiting = make(chan workflows.SessionRef, waitingQueue)
	} // else nil: waiting sessions are never queued, and receiving from it never happens
	return s
}

// enqueue asks for the session's workflow to be started. It never blocks: when the queue is full the session
// is left to the paths that start it later (see starter), and enqueue reports false.
func (s *starter) enqueue(ref workflows.SessionRef, admitted bool) bool {
	q := s.waiting
	if admitted {
		q = s.admitted
	}
	if q == nil {
		return false
	}
	select {
	case q <- ref:
	default:
		s.dropped.Add(1)
		return false
	}
	s.mu.Lock()
	if s.running < s.max {
		s.running++
		go s.loop()
	}
	s.mu.Unlock()
	return true
}

func (s *starter) loop() {
	idle := time.NewTimer(starterIdle)
	defer idle.Stop()
	for {
		var ref workflows.SessionRef
		select {
		case ref = <-s.admitted:
		default:
			// Waiting sessions are taken only when the pace allows one; otherwise look again when it will.
			var waiting chan workflows.SessionRef
			var pace <-chan time.Time
			if len(s.waiting) > 0 {
				if tokens := s.waitingRate.Tokens(); tokens >= 1 {
					waiting = s.waiting
				} else {
					pace = time.After(time.Duration((1 - tokens) / float64(s.waitingRate.Limit()) * float64(time.Second)))
				}
			}
			select {
			case ref = <-s.admitted:
			case ref = <-waiting:
				s.waitingRate.Allow()
			case <-pace:
				continue
			case <-idle.C:
				s.mu.Lock()
				if len(s.admitted) == 0 && len(s.waiting) == 0 {
					s.running--
					s.mu.Unlock()
					return
				}
				s.mu.Unlock()
				idle.Reset(starterIdle)
				continue
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		err := s.start(ctx, ref)
		cancel()
		if err != nil {
			s.failed.Add(1)
			s.log.Warn("Could not start a session's workflow; the waiting room or the session's first request will",
				"sessionId", ref.ID, "concertCode", ref.ConcertCode, "error", err)
		} else {
			s.started.Add(1)
		}
		if !idle.Stop() {
			select {
			case <-idle.C:
			default:
			}
		}
		idle.Reset(starterIdle)
	}
}
