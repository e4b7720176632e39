// Package lock serialises work on one resource (a service's flips, a work
// tree's builds) across processes with flock(2) on a lock file. The kernel
// drops the lock when the holder dies, so a killed module never leaves a
// stale lock behind.
//
// Modules run as root, so a lock file must be one nobody else can plant:
// its directory has to be a real directory owned by the caller and writable
// by nobody else (not /run/lock, which is 1777), the file is opened with
// O_NOFOLLOW, must be a regular file of the caller's with one link, and is
// never truncated or written. The holder's PID comes from the kernel's lock
// table, not from the file.
package lock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrTimeout is returned (wrapped) when the lock stays held by someone else
// for longer than the caller was willing to wait.
var ErrTimeout = errors.New("timed out waiting for lock")

// RunDir is the directory for locks that belong to no directory of a
// module's own: /run/chezlepro-sovereign for root (created root-owned, 0755),
// else the user's runtime directory.
func RunDir() string {
	if os.Geteuid() == 0 {
		return "/run/chezlepro-sovereign"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "chezlepro-sovereign")
	}
	return filepath.Join(os.TempDir(), "chezlepro-sovereign-"+strconv.Itoa(os.Geteuid()))
}

// Lock is a held lock; Release it when done.
type Lock struct {
	f    *os.File
	path string
}

// Acquire takes an exclusive lock on path, creating it and its directory if
// needed, polling until ctx ends or timeout passes. The error names the lock
// file, the holder's PID and how long it waited, so a user knows what is
// blocking them.
func Acquire(ctx context.Context, path string, timeout time.Duration) (*Lock, error) {
	if err := safeDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	f, err := openLockFile(path)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &Lock{f: f, path: path}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !time.Now().Before(deadline) {
			holder := "another run"
			if pid := holderPID(f); pid > 0 {
				holder = fmt.Sprintf("another run (process %d)", pid)
			}
			f.Close()
			return nil, fmt.Errorf("%s is held by %s; waited %s: %w", path, holder, time.Since(start).Round(time.Millisecond), ErrTimeout)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// safeDir creates dir if missing and checks that nobody but the caller can
// put a file (or a symlink) in it: a real directory, owned by the caller,
// not group- or world-writable; and that every directory above it is owned
// by root or the caller and writable by others only with the sticky bit
// (like /tmp), so dir itself cannot be swapped.
func safeDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create lock directory %s: %w", dir, err)
	}
	euid := uint32(os.Geteuid())
	info, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("lock directory %s: %w", dir, err)
	}
	st := info.Sys().(*syscall.Stat_t)
	switch {
	case info.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("lock directory %s is a symlink: refusing it (the lock could land anywhere)", dir)
	case !info.IsDir():
		return fmt.Errorf("lock directory %s is not a directory", dir)
	case st.Uid != euid:
		return fmt.Errorf("lock directory %s is owned by uid %d, not %d: refusing it (its owner could plant the lock file)", dir, st.Uid, euid)
	case info.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("lock directory %s is writable by others (mode %04o): refusing it", dir, info.Mode().Perm()|info.Mode()&fs.ModeSticky)
	}
	real, err := filepath.EvalSymlinks(filepath.Dir(dir))
	if err != nil {
		return fmt.Errorf("lock directory %s: %w", dir, err)
	}
	for d := real; ; d = filepath.Dir(d) {
		info, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("lock directory %s: %w", dir, err)
		}
		st := info.Sys().(*syscall.Stat_t)
		if st.Uid != 0 && st.Uid != euid {
			return fmt.Errorf("lock directory %s is inside %s, owned by uid %d: refusing it", dir, d, st.Uid)
		}
		if info.Mode().Perm()&0o022 != 0 && info.Mode()&fs.ModeSticky == 0 {
			return fmt.Errorf("lock directory %s is inside %s, writable by others without the sticky bit: refusing it", dir, d)
		}
		if d == "/" {
			return nil
		}
	}
}

// openLockFile opens (creating if needed) the lock file without following
// a symlink and checks it is a regular file of the caller's with one link.
func openLockFile(path string) (*os.File, error) {
	flags := os.O_RDWR | syscall.O_NOFOLLOW | syscall.O_CLOEXEC | syscall.O_NONBLOCK
	f, err := os.OpenFile(path, flags|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		f, err = os.OpenFile(path, flags, 0)
	}
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("lock file %s is a symlink: refusing to follow it", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open lock file %s: %w", path, err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock file %s: %w", path, err)
	}
	st := info.Sys().(*syscall.Stat_t)
	var problem string
	switch {
	case !info.Mode().IsRegular():
		problem = "is not a regular file"
	case st.Uid != uint32(os.Geteuid()):
		problem = fmt.Sprintf("is owned by uid %d", st.Uid)
	case st.Nlink != 1:
		problem = fmt.Sprintf("has %d hard links", st.Nlink)
	}
	if problem != "" {
		f.Close()
		return nil, fmt.Errorf("lock file %s %s: refusing it", path, problem)
	}
	return f, nil
}

// holderPID finds, in /proc/locks, the process holding the flock on f's
// file: lines like "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF", device
// in hex, waiters marked "->". 0 when unknown.
func holderPID(f *os.File) int {
	info, err := f.Stat()
	if err != nil {
		return 0
	}
	st := info.Sys().(*syscall.Stat_t)
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	pl, err := os.Open("/proc/locks")
	if err != nil {
		return 0
	}
	defer pl.Close()
	sc := bufio.NewScanner(pl)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[1] != "FLOCK" || fields[5] != want {
			continue
		}
		if pid, err := strconv.Atoi(fields[4]); err == nil {
			return pid
		}
	}
	return 0
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
