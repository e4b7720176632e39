// Package lock serialises work on one resource (a service's flips, a work
// tree's builds) across processes with flock(2) on a lock file. The kernel
// drops the lock when the holder dies, so a killed module never leaves a
// stale lock behind.
package lock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ErrTimeout is returned (wrapped) when the lock stays held by someone else
// for longer than the caller was willing to wait.
var ErrTimeout = errors.New("timed out waiting for lock")

// Lock is a held lock; Release it when done.
type Lock struct {
	f    *os.File
	path string
}

// Acquire takes an exclusive lock on path, creating it and its directory if
// needed, polling until ctx ends or timeout passes. The error names the lock
// file and how long it waited, so a user knows what is blocking them.
func Acquire(ctx context.Context, path string, timeout time.Duration) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create lock directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file %s: %w", path, err)
	}
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			// Record the holder for whoever inspects a stuck lock by hand.
			_ = f.Truncate(0)
			_, _ = f.WriteAt([]byte(fmt.Sprintf("%d\n", os.Getpid())), 0)
			return &Lock{f: f, path: path}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !time.Now().Before(deadline) {
			f.Close()
			return nil, fmt.Errorf("%s is held by another run; waited %s: %w", path, time.Since(start).Round(time.Millisecond), ErrTimeout)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Release drops the lock. The file stays so that its path is stable.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	cerr := l.f.Close()
	l.f = nil
	if err != nil {
		return fmt.Errorf("unlock %s: %w", l.path, err)
	}
	return cerr
}
