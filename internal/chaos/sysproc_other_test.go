//go:build unix && !linux

package chaos

import "syscall"

// sysProcAttr puts a child in its own process group, so a signal reaches it and nothing else. Outside Linux
// there is no parent-death signal: a test binary killed by its timeout leaves the children running.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
