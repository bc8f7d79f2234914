package devserver

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// newLevelLogger returns a logger that drops records below min before they reach base, so a caller's Info-level
// handler does not get flooded by the server.
func newLevelLogger(base *slog.Logger, min slog.Leveler) *slog.Logger {
	return slog.New(levelHandler{min: min, next: base.Handler()})
}

// shutdownLevel raises a minimum log level to Error once the server is stopping. While it shuts down, the
// server's internal workers log a warning for every long poll the frontend cuts; they say nothing useful to
// someone who just pressed Ctrl-C.
type shutdownLevel struct {
	base     slog.Leveler
	stopping atomic.Bool
}

func (l *shutdownLevel) Level() slog.Level {
	if l.stopping.Load() {
		return max(l.base.Level(), slog.LevelError)
	}
	return l.base.Level()
}

// expectedWarnings are server warnings that this configuration causes on purpose; they are logged at Debug so
// that every `concert dev` start does not print them. The frontend's HTTP API (and with it Nexus) is disabled
// because the dev stack does not use it and it would need one more port.
var expectedWarnings = map[string]bool{
	"HTTP API port has not been set. Nexus HTTP endpoints will not be available. To enable Nexus, follow these " +
		"instructions: https://github.com/temporalio/temporal/blob/main/docs/architecture/nexus.md#enabling-nexus.": true,
}

// levelHandler filters records below a minimum level in front of another handler.
type levelHandler struct {
	min  slog.Leveler
	next slog.Handler
}

func (h levelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min.Level() && h.next.Enabled(ctx, l)
}

func (h levelHandler) Handle(ctx context.Context, r slog.Record) error { return h.next.Handle(ctx, r) }

func (h levelHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return levelHandler{min: h.min, next: h.next.WithAttrs(attrs)}
}

func (h levelHandler) WithGroup(name string) slog.Handler {
	return levelHandler{min: h.min, next: h.next.WithGroup(name)}
}

// serverLogger adapts slog to the Temporal server's log.Logger, which is the only way to route server logs into
// the application's logger.
type serverLogger struct {
	l *slog.Logger
}

var (
	_ log.Logger     = serverLogger{}
	_ log.WithLogger = serverLogger{}
)

// fatalLogError is what serverLogger.Fatal panics with. The server calls Fatal where it cannot go on (for
// example a listener that cannot bind) and expects the process to exit; a dev server embedded in an application
// or a test binary must not exit the process, so Start recovers this panic and returns it as an error.
type fatalLogError struct {
	msg string
}

func (e *fatalLogError) Error() string { return "temporal server fatal error: " + e.msg }

func (s serverLogger) log(level slog.Level, msg string, tags []tag.Tag) {
	ctx := context.Background()
	if !s.l.Enabled(ctx, level) {
		return // tag.Value() encodes each tag; skip that work for the many dropped records
	}
	attrs := make([]slog.Attr, 0, len(tags))
	for _, t := range tags {
		attrs = append(attrs, slog.Any(t.Key(), t.Value()))
	}
	s.l.LogAttrs(ctx, level, msg, attrs...)
}

func (s serverLogger) Debug(msg string, tags ...tag.Tag) { s.log(slog.LevelDebug, msg, tags) }
func (s serverLogger) Info(msg string, tags ...tag.Tag)  { s.log(slog.LevelInfo, msg, tags) }
func (s serverLogger) Warn(msg string, tags ...tag.Tag) {
	if expectedWarnings[msg] {
		s.log(slog.LevelDebug, msg, tags)
		return
	}
	s.log(slog.LevelWarn, msg, tags)
}
func (s serverLogger) Error(msg string, tags ...tag.Tag) { s.log(slog.LevelError, msg, tags) }

// DPanic logs at Error: zap panics on DPanic only in development builds, and the server must keep running.
func (s serverLogger) DPanic(msg string, tags ...tag.Tag) { s.log(slog.LevelError, msg, tags) }

func (s serverLogger) Panic(msg string, tags ...tag.Tag) {
	s.log(slog.LevelError, msg, tags)
	panic(fmt.Sprintf("temporal server panic: %s", msg))
}

func (s serverLogger) Fatal(msg string, tags ...tag.Tag) {
	s.log(slog.LevelError, msg, tags)
	panic(&fatalLogError{msg: msg})
}

func (s serverLogger) With(tags ...tag.Tag) log.Logger {
	args := make([]any, 0, len(tags))
	for _, t := range tags {
		args = append(args, slog.Any(t.Key(), t.Value()))
	}
	return serverLogger{l: s.l.With(args...)}
}
