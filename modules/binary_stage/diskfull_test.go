package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A full disk fails the run with a message naming the cause, leaves the
// slot on its old release and leaves nothing half-written under a final
// name. Uses a 1 MiB tmpfs: needs root.
func TestDiskFullKeepsOldSlot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs (run the unit tests as root, as make test does)")
	}
	mnt := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})

	f := newFixture(t)
	f.root = filepath.Join(mnt, "app")
	small, sumSmall := f.src("small", "echo 1")
	mustOK(t, f.args(small, sumSmall, "1.0", "green"))

	big := bytes.Repeat([]byte("x"), 2<<20)
	bigSrc := filepath.Join(f.dir, "big")
	os.WriteFile(bigSrc, big, 0o755)
	r := mustFail(t, f.args(bigSrc, sha(big), "2.0", "green"), "no space left on the filesystem of "+filepath.Join(f.root, "releases"))
	t.Logf("msg: %s", r["msg"])
	if msg := r["msg"].(string); !strings.Contains(msg, "slot still points at releases/1.0-"+sumSmall[:12]) {
		t.Fatalf("msg does not tell the slot is intact: %s", msg)
	}
	if f.link("green") != "releases/1.0-"+sumSmall[:12] {
		t.Fatalf("slot moved to %q", f.link("green"))
	}
	checkInvariants(t, f.root)
	assertNoLeftovers(t, f.root)
	if rels := f.releases(); len(rels) != 1 {
		t.Fatalf("releases after the failure: %q", rels)
	}
	// The disk freed (a smaller binary), the next run works.
	mid := bytes.Repeat([]byte("y"), 256<<10)
	midSrc := filepath.Join(f.dir, "mid")
	os.WriteFile(midSrc, mid, 0o755)
	mustOK(t, f.args(midSrc, sha(mid), "2.0", "green"))
	checkInvariants(t, f.root)
}
