package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// fullFilesystem mounts a small tmpfs at a scratch directory and fills it,
// leaving leave bytes free (root only; skipped elsewhere). Nothing outside
// the test's own directory is touched, and the mount goes at the end.
func fullFilesystem(t *testing.T, leave int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := filepath.Join(t.TempDir(), "full")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := bytes.Repeat([]byte{0}, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			if info, err := f.Stat(); err != nil || f.Truncate(info.Size()-leave) != nil {
				t.Fatalf("cannot free %d bytes: %v", leave, err)
			}
			return dir
		}
	}
}

// D8: a build into a full store names the cause, not just "exit status 1":
// a store full from the start (the log cannot be written), and one with
// room for the log but not for the binary.
func TestFullStoreIsNamed(t *testing.T) {
	t.Parallel()
	m := newMirror(t)
	for _, leave := range []int64{0, 16 << 10} {
		full := fullFilesystem(t, leave)
		a := buildArgs(t, m, t.TempDir(), "v1")
		a["store"] = filepath.Join(full, "store")
		r := mustFail(t, runModule(t, a, false), "no space left on "+full)
		t.Logf("%d bytes free: %s", leave, r.str("msg"))
	}
}
