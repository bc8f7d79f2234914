//go:build linux

package chaos

import "syscall"

// sysProcAttr puts a child in its own process group, so a signal reaches it and nothing else, and has the
// kernel kill it if the test binary dies (a test timeout panics past every cleanup).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
