package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// The module runs with the login's umask (the module cache keeps it): a
// umask of 077 must still give the service's user a path to its binary.
// Every directory the run creates is 0755 and the binary has its mode
// option, whatever the umask.
func TestModesIgnoreTheUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	f := newFixture(t)
	src, sum := f.src("app", "echo 1")
	args := f.args(src, sum, "1.0", "green")
	args["mode"] = "0751"
	res := mustOK(t, args)
	release := res["release_path"].(string)
	for p, want := range map[string]os.FileMode{
		filepath.Dir(f.root):                0o755, // created as root's parent
		f.root:                              0o755,
		filepath.Join(f.root, "releases"):   0o755,
		filepath.Join(f.root, stateDirName): 0o755,
		release:                             0o755,
		filepath.Join(release, "app"):       0o751,
		filepath.Join(f.root, stateDirName, "history.json"): 0o600,
		filepath.Join(release, metaName):                    0o600,
	} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s has mode %04o under umask 077, want %04o", p, got, want)
		}
	}
}
