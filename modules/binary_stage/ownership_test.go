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
