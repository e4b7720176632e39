package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// D15: pruning removes only releases that carry their .release.json; a
// directory merely named like one is not the module's and stays.
func TestPruneKeepsDirectoriesWithoutRecord(t *testing.T) {
	f := newFixture(t)
	src, sum := f.src("app", "echo 1")
	mustOK(t, f.args(src, sum, "1.0", "blue"))
	foreign := filepath.Join(f.root, "releases", "0.9-aaaaaaaaaaaa")
	if err := os.MkdirAll(foreign, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(foreign, "data"), []byte("not a release"), 0o644); err != nil {
		t.Fatal(err)
	}
	src2, sum2 := f.src("app2", "echo 2")
	a := f.args(src2, sum2, "2.0", "blue")
	a["keep_releases"] = 0
	r := mustOK(t, a)
	if removed := strs(r["removed"]); !slices.Equal(removed, []string{"1.0-" + sum[:12]}) {
		t.Fatalf("removed %q, want only the recorded release 1.0", removed)
	}
	if _, err := os.Stat(filepath.Join(foreign, "data")); err != nil {
		t.Fatalf("a directory without %s was pruned: %v", metaName, err)
	}
}

// D3: a src that is a symlink leading out of its directory (to /etc/shadow,
// say) is refused; one to a file beside it is staged, as that file.
func TestSrcSymlinkLeavingItsDirectoryIsRefused(t *testing.T) {
	f := newFixture(t)
	secretDir := t.TempDir()
	secret := filepath.Join(secretDir, "shadow")
	if err := os.WriteFile(secret, []byte("root:$6$hash:19000::::::\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(f.dir, "incoming")
	os.MkdirAll(in, 0o755)
	link := filepath.Join(in, "app")
	if err := os.Symlink(secret, link); err != nil {
		t.Fatal(err)
	}
	a := f.args(link, "", "1.0", "green")
	mustFail(t, a, "is a symlink to "+secret+", outside "+in)
	mustFail(t, withCheck(a), "outside")
	if _, err := os.Lstat(f.root); !os.IsNotExist(err) {
		t.Fatalf("a refused src created %s", f.root)
	}

	// A relative link to a file beside it is fine.
	real, sum := f.src("incoming/app-1.0", "echo 1")
	os.Remove(link)
	if err := os.Symlink("app-1.0", link); err != nil {
		t.Fatal(err)
	}
	r := mustOK(t, f.args(link, sum, "1.0", "green"))
	if r["release"] != "1.0-"+sum[:12] {
		t.Fatalf("staged %v from %s", r["release"], real)
	}
}

// D7: the slot was switched but the history write failed (full disk, or a
// kill in between): the next run finds the slot right, records the entry
// anyway and says so, instead of a no-op that never records it.
func TestRerunRecordsASwitchTheHistoryMissed(t *testing.T) {
	f := newFixture(t)
	src1, sum1 := f.src("app1", "echo 1")
	src2, sum2 := f.src("app2", "echo 2")
	mustOK(t, f.args(src1, sum1, "1.0", "green"))
	hp := filepath.Join(f.root, stateDirName, "history.json")
	before, err := os.ReadFile(hp)
	if err != nil {
		t.Fatal(err)
	}
	mustOK(t, f.args(src2, sum2, "2.0", "green"))
	// What a failed history write leaves: the slot on 2.0, the history
	// still ending with 1.0.
	if err := os.WriteFile(hp, before, 0o600); err != nil {
		t.Fatal(err)
	}
	a := f.args(src2, sum2, "2.0", "green")
	c := mustOK(t, withCheck(a))
	r := mustOK(t, a)
	if c["changed"] != true || r["changed"] != true || !strings.Contains(r["msg"].(string), "record in the history") {
		t.Fatalf("the missing entry was not recorded: check %v, real %v", c["msg"], r["msg"])
	}
	h, err := readHistory(&spec{StateDir: filepath.Join(f.root, stateDirName)})
	if err != nil {
		t.Fatal(err)
	}
	last := h[len(h)-1]
	if len(h) != 2 || last.Release != "2.0-"+sum2[:12] || last.Previous != "1.0-"+sum1[:12] || !last.Recorded {
		t.Fatalf("history %+v", h)
	}
	if r := mustOK(t, a); r["changed"] != false {
		t.Fatalf("third run: %v", r)
	}
}
