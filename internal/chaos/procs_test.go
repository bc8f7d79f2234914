//go:build unix

package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// moduleRoot finds the directory of go.mod above the test's working directory (the package directory).
func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("getwd: %v", err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no go.mod above %s", dir)
		}
	}
}

// buildConcert builds the concert binary of the working tree into dir, with the go command of the toolchain
// that runs the test.
func buildConcert(t testing.TB, dir string) string {
	t.Helper()
	//lint:ignore SA1019 the go command of the toolchain running this test is the one wanted; PATH is the fallback
	goroot := runtime.GOROOT()
	goCmd := filepath.Join(goroot, "bin", "go")
	if _, err := os.Stat(goCmd); err != nil {
		if goCmd, err = exec.LookPath("go"); err != nil {
			t.Fatalf("no go command in GOROOT %s or PATH", goroot)
		}
	}
	bin := filepath.Join(dir, "concert")
	cmd := exec.Command(goCmd, "build", "-o", bin, "./cmd/concert")
	cmd.Dir = moduleRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/concert: %v\n%s", err, out)
	}
	return bin
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is one process of the stack (Temporal, worker or API), started again and again with the same
// command line. Each incarnation logs to its own pair of files, so a failure can show what the last one
// said and the directory keeps all of them.
type proc struct {
	name    string
	bin     string
	args    []string
	env     []string
	logDir  string
	isReady func(ctx context.Context, inc *incarnation) bool
	// restartOnCrash starts the process again when it exits without being told to, as a process supervisor
	// (systemd, Kubernetes) would.
	restartOnCrash bool

	mu      sync.Mutex
	cur     *incarnation
	count   int
	crashes []string // exits nobody asked for
	stopped bool
}

// incarnation is one run of a proc.
type incarnation struct {
	n              int
	cmd            *exec.Cmd
	stdout, stderr string // log file paths
	started        time.Time
	done           chan struct{}
	waitErr        error
	signalled      bool // guarded by proc.mu
}

// start runs a new incarnation. The caller makes sure no other one is running.
func (p *proc) start() (*incarnation, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.startLocked()
}

func (p *proc) startLocked() (*incarnation, error) {
	if p.stopped {
		return nil, errors.New(p.name + " is stopped")
	}
	p.count++
	inc := &incarnation{
		n:      p.count,
		stdout: filepath.Join(p.logDir, fmt.Sprintf("%s-%02d.stdout", p.name, p.count)),
		stderr: filepath.Join(p.logDir, fmt.Sprintf("%s-%02d.stderr", p.name, p.count)),
		done:   make(chan struct{}),
	}
	outF, err := os.Create(inc.stdout)
	if err != nil {
		return nil, err
	}
	errF, err := os.Create(inc.stderr)
	if err != nil {
		_ = outF.Close()
		return nil, err
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = outF, errF
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		_, _ = outF.Close(), errF.Close()
		return nil, fmt.Errorf("start %s: %w", p.name, err)
	}
	inc.cmd, inc.started = cmd, time.Now()
	p.cur = inc
	go func() {
		inc.waitErr = cmd.Wait()
		_, _ = outF.Close(), errF.Close()
		close(inc.done)
		p.exited(inc)
	}()
	return inc, nil
}

// exited records an exit nobody asked for and, for a supervised process, starts it again.
func (p *proc) exited(inc *incarnation) {
	p.mu.Lock()
	unasked := !inc.signalled && !p.stopped
	if unasked {
		p.crashes = append(p.crashes, fmt.Sprintf("%s incarnation %d exited by itself after %s: %v; its last words (%s):\n%s",
			p.name, inc.n, time.Since(inc.started).Round(time.Millisecond), inc.waitErr, inc.stderr, tail(inc.stderr, 3)))
	}
	restart := unasked && p.restartOnCrash
	p.mu.Unlock()
	if !restart {
		return
	}
	time.Sleep(500 * time.Millisecond)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == inc && !p.stopped { // nobody started another one meanwhile
		_, _ = p.startLocked()
	}
}

// signal sends sig to the current incarnation's process group and waits up to wait for it to exit.
func (p *proc) signal(sig syscall.Signal, wait time.Duration) (*incarnation, error) {
	p.mu.Lock()
	inc := p.cur
	if inc == nil {
		p.mu.Unlock()
		return nil, errors.New(p.name + " was never started")
	}
	inc.signalled = true
	p.mu.Unlock()
	select {
	case <-inc.done:
		return inc, nil // already gone
	default:
	}
	if err := syscall.Kill(-inc.cmd.Process.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return inc, fmt.Errorf("signal %s: %w", p.name, err)
	}
	select {
	case <-inc.done:
		return inc, nil
	case <-time.After(wait):
		return inc, fmt.Errorf("%s did not exit within %s of %s", p.name, wait, sig)
	}
}

// kill SIGKILLs the current incarnation and waits for it to be gone.
func (p *proc) kill() error {
	_, err := p.signal(syscall.SIGKILL, 10*time.Second)
	return err
}

// stop ends the process for good: SIGTERM, then SIGKILL.
func (p *proc) stop() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	if _, err := p.signal(syscall.SIGTERM, 15*time.Second); err != nil {
		_, _ = p.signal(syscall.SIGKILL, 5*time.Second)
	}
}

// current is the running (or last) incarnation.
func (p *proc) current() *incarnation {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur
}

// unaskedExits lists the exits nobody asked for.
func (p *proc) unaskedExits() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.crashes...)
}

// incarnations is how many times the process was started.
func (p *proc) incarnations() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count
}

// waitReady polls the current incarnation until it is ready, has exited, or timeout passes.
func (p *proc) waitReady(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		inc := p.current()
		if inc != nil && p.isReady(ctx, inc) {
			return nil
		}
		select {
		case <-ctx.Done():
			if inc == nil {
				return fmt.Errorf("%s was never started", p.name)
			}
			return fmt.Errorf("%s incarnation %d not ready after %s (see %s)", p.name, inc.n, timeout, inc.stderr)
		case <-tick.C:
		}
		if inc != nil {
			select {
			case <-inc.done:
				if !p.restartOnCrash {
					return fmt.Errorf("%s incarnation %d exited while starting: %v\n%s", p.name, inc.n, inc.waitErr, tail(inc.stderr, 30))
				}
			default:
			}
		}
	}
}

// logContains reports whether a log file contains s.
func logContains(path, s string) bool {
	raw, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(raw), s)
}

// tail returns the last n lines of a file, each cut to a readable length.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if len(line) > 600 {
			line = line[:600] + " …"
		}
		lines = append(lines, line)
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
