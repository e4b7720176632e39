package main

import (
	"os"
	"path/filepath"
	"slices"
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
