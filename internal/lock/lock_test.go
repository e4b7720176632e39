package lock

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSecondAcquireWaitsThenTimesOut(t *testing.T) {
	p := filepath.Join(t.TempDir(), "locks", "svc.lock")
	first, err := Acquire(context.Background(), p, time.Second)
	require.NoError(t, err)
	defer first.Release()

	start := time.Now()
	_, err = Acquire(context.Background(), p, 200*time.Millisecond)
	require.ErrorIs(t, err, ErrTimeout)
	assert.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond)
	assert.Contains(t, err.Error(), p, "the message names the lock file")
}

func TestAcquireSucceedsOnceReleased(t *testing.T) {
	p := filepath.Join(t.TempDir(), "svc.lock")
	first, err := Acquire(context.Background(), p, time.Second)
	require.NoError(t, err)
	go func() {
		time.Sleep(100 * time.Millisecond)
		first.Release()
	}()
	second, err := Acquire(context.Background(), p, 5*time.Second)
	require.NoError(t, err)
	require.NoError(t, second.Release())
}

func TestLockHeldByAnotherProcessAndFreedWhenItDies(t *testing.T) {
	if _, err := exec.LookPath("flock"); err != nil {
		t.Fatal("flock(1) is not installed: Debian package util-linux (tests/setup.sh check installs it)")
	}
	p := filepath.Join(t.TempDir(), "svc.lock")
	require.NoError(t, os.WriteFile(p, nil, 0o644))
	// Its own process group, so the kill below ends flock and its sleep,
	// the two processes that hold the descriptor.
	holder := exec.Command("flock", p, "sleep", "30")
	holder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, holder.Start())
	// Wait until the other process really holds it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := Acquire(context.Background(), p, 0)
		if err != nil {
			break
		}
		l.Release()
		require.True(t, time.Now().Before(deadline), "flock(1) never took the lock")
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(t, syscall.Kill(-holder.Process.Pid, syscall.SIGKILL))
	_ = holder.Wait()

	l, err := Acquire(context.Background(), p, 2*time.Second)
	require.NoError(t, err, "the kernel frees a dead holder's lock")
	require.NoError(t, l.Release())
}

func TestAcquireHonoursContext(t *testing.T) {
	p := filepath.Join(t.TempDir(), "svc.lock")
	first, err := Acquire(context.Background(), p, time.Second)
	require.NoError(t, err)
	defer first.Release()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = Acquire(ctx, p, time.Minute)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

// D11: the lock never follows a symlink planted where its file goes: the
// victim is neither written nor truncated, and the run fails saying why.
func TestSymlinkedLockFileIsRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "locks")
	require.NoError(t, os.Mkdir(dir, 0o755))
	victim := filepath.Join(t.TempDir(), "victim")
	require.NoError(t, os.WriteFile(victim, []byte("precious\n"), 0o644))
	p := filepath.Join(dir, "svc.lock")
	require.NoError(t, os.Symlink(victim, p))
	_, err := Acquire(context.Background(), p, 100*time.Millisecond)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "symlink")
	b, _ := os.ReadFile(victim)
	assert.Equal(t, "precious\n", string(b), "the symlink's target was written")
}

// D11: a lock directory that someone else could write to, or that is not a
// real directory, is refused.
func TestUnsafeLockDirIsRefused(t *testing.T) {
	base := t.TempDir()
	worldWritable := filepath.Join(base, "ww")
	require.NoError(t, os.Mkdir(worldWritable, 0o755))
	require.NoError(t, os.Chmod(worldWritable, 0o1777)) // like /run/lock
	real := filepath.Join(base, "real")
	require.NoError(t, os.Mkdir(real, 0o755))
	linked := filepath.Join(base, "linked")
	require.NoError(t, os.Symlink(real, linked))
	cases := map[string]string{worldWritable: "writable by others", linked: "symlink"}
	if os.Geteuid() == 0 {
		foreign := filepath.Join(base, "foreign")
		require.NoError(t, os.Mkdir(foreign, 0o755))
		require.NoError(t, os.Chown(foreign, 65534, 65534))
		cases[foreign] = "owned by uid 65534"
	}
	for dir, want := range cases {
		_, err := Acquire(context.Background(), filepath.Join(dir, "svc.lock"), 100*time.Millisecond)
		require.Error(t, err, dir)
		assert.Contains(t, err.Error(), want, dir)
		assert.Contains(t, err.Error(), dir, "the message names the directory")
		_, statErr := os.Lstat(filepath.Join(real, "svc.lock"))
		assert.True(t, os.IsNotExist(statErr), "nothing is created through a symlinked directory")
	}
}

// D11: a file that exists already is locked as it is: never truncated, never
// written; a hard link (to a file elsewhere) is refused.
func TestExistingLockFileIsNotTruncated(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "svc.lock")
	require.NoError(t, os.WriteFile(p, []byte("not a pid\n"), 0o600))
	l, err := Acquire(context.Background(), p, time.Second)
	require.NoError(t, err)
	require.NoError(t, l.Release())
	b, _ := os.ReadFile(p)
	assert.Equal(t, "not a pid\n", string(b))

	other := filepath.Join(dir, "other")
	require.NoError(t, os.WriteFile(other, []byte("x"), 0o600))
	hard := filepath.Join(dir, "hard.lock")
	require.NoError(t, os.Link(other, hard))
	_, err = Acquire(context.Background(), hard, 100*time.Millisecond)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "link")
}

// The timeout names the process holding the lock, read from the kernel's
// lock table rather than from the file.
func TestTimeoutNamesTheHolder(t *testing.T) {
	p := filepath.Join(t.TempDir(), "svc.lock")
	first, err := Acquire(context.Background(), p, time.Second)
	require.NoError(t, err)
	defer first.Release()
	_, err = Acquire(context.Background(), p, 100*time.Millisecond)
	require.ErrorIs(t, err, ErrTimeout)
	assert.Contains(t, err.Error(), "process "+strconv.Itoa(os.Getpid()))
}

func TestRunDir(t *testing.T) {
	if os.Geteuid() == 0 {
		assert.Equal(t, "/run/chezlepro-sovereign", RunDir())
	} else {
		assert.NotEqual(t, "/run/lock", filepath.Dir(RunDir()))
	}
}
