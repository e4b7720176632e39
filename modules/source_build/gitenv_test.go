package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// An inherited GIT_DIR (git rebase --exec sets one; so may a hook or a
// wrapper) must not turn the module's git commands onto another
// repository: they reinitialised it as bare and tagged it. Not parallel:
// it sets the process environment.
func TestInheritedGitDirIsIgnored(t *testing.T) {
	m := newMirror(t)
	victim := filepath.Join(t.TempDir(), "victim")
	gitIn(t, t.TempDir(), "", "init", "-q", victim)
	before, _ := os.ReadFile(filepath.Join(victim, ".git", "config"))
	a := buildArgs(t, m, t.TempDir(), "v1")
	t.Setenv("GIT_DIR", filepath.Join(victim, ".git"))
	t.Setenv("GIT_WORK_TREE", victim)
	t.Setenv("GIT_INDEX_FILE", filepath.Join(victim, ".git", "index"))
	mustSucceed(t, runModule(t, a, false))
	os.Unsetenv("GIT_DIR")
	os.Unsetenv("GIT_WORK_TREE")
	os.Unsetenv("GIT_INDEX_FILE")
	after, _ := os.ReadFile(filepath.Join(victim, ".git", "config"))
	if string(after) != string(before) {
		t.Errorf("the victim's config changed:\n%s\nwas:\n%s", after, before)
	}
	out, _ := exec.Command("git", "-C", victim, "for-each-ref").CombinedOutput()
	if strings.TrimSpace(string(out)) != "" {
		t.Errorf("refs appeared in the victim: %s", out)
	}
}
