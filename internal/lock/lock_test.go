package lock

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
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
		t.Skip("flock(1) not installed")
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
