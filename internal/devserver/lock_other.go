//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package devserver

// dirLock is a no-op on platforms without flock: there, keeping two dev stacks off one DataDir is up to the user.
type dirLock struct{}

// lockDir does nothing on this platform; see dirLock.
func lockDir(string) (*dirLock, error) { return &dirLock{}, nil }

// release does nothing on this platform; see dirLock.
func (*dirLock) release() error { return nil }
