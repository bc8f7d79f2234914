//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package devserver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockFileName is the file in DataDir that carries the advisory lock.
const lockFileName = "devserver.lock"

// dirLock is an exclusive advisory lock on a data directory, held from Start to Stop. flock locks belong to the
// open file, so a second Start on the same directory fails even inside the same process, and the kernel drops the
// lock when a process dies, so a crash never leaves a stale lock behind.
type dirLock struct {
	f *os.File
}

// lockDir takes the lock on dir or fails at once with ErrDataDirLocked.
func lockDir(dir string) (*dirLock, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("devserver: open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close() // the lock error is the one to report
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrDataDirLocked, dir)
		}
		return nil, fmt.Errorf("devserver: lock data dir %s: %w", dir, err)
	}
	return &dirLock{f: f}, nil
}

// release drops the lock; closing the file is what releases a flock.
func (l *dirLock) release() error {
	return l.f.Close()
}
