package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// commandArgs are the module's arguments for a command recipe building
// version of m into fresh places under dir.
func commandArgs(t *testing.T, m *mirror, dir string, command []string, artifacts ...string) map[string]any {
	a := buildArgs(t, m, dir, "v1")
	delete(a, "version_vars")
	a["command"], a["artifacts"], a["name"] = command, artifacts, "hello"
	return a
}

// scratch writes a file outside any work tree that a run must leave alone.
func scratch(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustBeIntact(t *testing.T, p, content string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil || string(b) != content {
		t.Fatalf("%s was touched: %q %v", p, b, err)
	}
}

// D13: an artifact outside the work tree (absolute, or through "..") is
// refused before anything runs, and never removed.
func TestArtifactsOutsideTheWorkTreeAreRefused(t *testing.T) {
	t.Parallel()
	m := newMirror(t)
	dir := t.TempDir()
	victim := scratch(t, dir, "victim", "keep me")
	for _, art := range []string{victim, "../victim", "dist/../../victim"} {
		a := commandArgs(t, m, dir, []string{"false"}, art)
		r := mustFail(t, runModule(t, a, false), "artifacts", art, "work tree")
		if r.changed() {
			t.Errorf("%s: a refusal changed something", art)
		}
		mustBeIntact(t, victim, "keep me")
		if _, err := os.Lstat(filepath.Join(dir, "src")); err == nil {
			t.Errorf("%s: the work tree was created before the refusal", art)
		}
	}
}

// D13: an artifact whose directory in the work tree is a symlink out of it
// is refused at build time and the file it points at stays.
func TestArtifactThroughSymlinkedDirIsRefused(t *testing.T) {
	t.Parallel()
	m := newMirror(t)
	dir := t.TempDir()
	outside := filepath.Join(dir, "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	victim := scratch(t, outside, "victim", "keep me")
	gitIn(t, m.Src, "", "checkout", "-q", "-b", "linked", "main")
	if err := os.Symlink(outside, filepath.Join(m.Src, "out")); err != nil {
		t.Fatal(err)
	}
	gitIn(t, m.Src, "2026-02-01T10:00:00Z", "add", "out")
	gitIn(t, m.Src, "2026-02-01T10:00:00Z", "commit", "-q", "-m", "out is a symlink")
	gitIn(t, m.Src, "", "push", "-q", m.Path, "linked")
	a := commandArgs(t, m, dir, []string{"false"}, "out/victim")
	a["version"] = "linked"
	mustFail(t, runModule(t, a, false), "artifacts", "out/victim", "outside the work tree")
	mustBeIntact(t, victim, "keep me")
}

// D14: a command that leaves a symlink to a secret as its artifact does not
// get the secret copied into the store.
func TestSymlinkArtifactIsRefused(t *testing.T) {
	t.Parallel()
	m := newMirror(t)
	dir := t.TempDir()
	secret := scratch(t, dir, "shadow", "root:secret")
	a := commandArgs(t, m, dir, []string{"ln", "-s", secret, "out"}, "out")
	mustFail(t, runModule(t, a, false), "out", "symlink")
	copies, _ := filepath.Glob(filepath.Join(dir, "store", "*", "*", "out"))
	for _, c := range copies {
		if b, _ := os.ReadFile(c); strings.Contains(string(b), "secret") {
			t.Fatalf("the secret was copied into the store: %s", c)
		}
	}
	mustBeIntact(t, secret, "root:secret")
}

// D5: a store that is a symlink is refused, not followed, and nothing is
// created: no work tree, no lock, nothing in the link's target.
func TestSymlinkedStoreIsRefused(t *testing.T) {
	t.Parallel()
	m := newMirror(t)
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	a := buildArgs(t, m, dir, "v1")
	link := a["store"].(string)
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	for _, check := range []bool{true, false} {
		mustFail(t, runModule(t, a, check), "store", link, "symlink")
	}
	if names, _ := os.ReadDir(target); len(names) != 0 {
		t.Errorf("the run wrote through the symlink: %v", names)
	}
	if names, _ := os.ReadDir(dir); len(names) != 2 { // elsewhere, store
		t.Errorf("a refused run created %v", names)
	}
}

// D12: package "-toolexec=..." never reaches go build as a flag.
func TestOptionLikePackageIsRefused(t *testing.T) {
	t.Parallel()
	m := newMirror(t)
	dir := t.TempDir()
	marker := filepath.Join(dir, "toolexec-ran")
	script := filepath.Join(dir, "x.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\ntouch "+marker+"\nexec \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	a := buildArgs(t, m, dir, "v1")
	a["package"] = "-toolexec=" + script
	a["name"] = "hello"
	mustFail(t, runModule(t, a, false), "package", "must not start with '-'")
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the -toolexec script ran")
	}
}
