package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// shapesDir is a Go module vendored by a real `go mod vendor`: its
// vendor/modules.txt holds each shape Go writes (a plain requirement, a
// module replaced by a fork, one replaced by a directory of the tree with its
// "# path => ./dir" record, two majors of one path, "## explicit; go 1.22").
const shapesDir = "../../tests/testdata/source_build/shapes"

// shapesMirror is a bare repository of shapesDir: tag v1 as vendored, tag
// stale with go.mod asking for another version than vendor/ holds.
func shapesMirror(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	src := filepath.Join(base, "src")
	if err := os.CopyFS(src, os.DirFS(shapesDir)); err != nil {
		t.Fatal(err)
	}
	d := "2026-01-01T10:00:00Z"
	gitIn(t, src, d, "init", "-q", "-b", "main")
	gitIn(t, src, d, "add", "-A")
	gitIn(t, src, d, "commit", "-q", "-m", "v1")
	gitIn(t, src, d, "tag", "v1")
	edit(t, filepath.Join(src, "go.mod"), "example.com/multi v1.0.0", "example.com/multi v1.0.1")
	gitIn(t, src, d, "commit", "-q", "-am", "stale")
	gitIn(t, src, d, "tag", "stale")
	bare := filepath.Join(base, "shapes.git")
	gitIn(t, base, d, "clone", "-q", "--bare", src, bare)
	return bare
}

// The trees go accepts under -mod=vendor are the trees source_build builds.
func TestRealVendorShapes(t *testing.T) {
	t.Parallel()
	repo := shapesMirror(t)
	args := func(version string) map[string]any {
		dir := t.TempDir()
		return map[string]any{
			"repo": repo, "version": version, "name": "shapes", "package": "./cmd/shapes",
			"dest": filepath.Join(dir, "src"), "store": filepath.Join(dir, "store"),
			"go_binary": goBin(t), "version_vars": map[string]any{"main.version": "{version}"},
		}
	}
	r := mustSucceed(t, runModule(t, args("v1"), false))
	if out := runCmd(t, r.str("artifact")); out != "hello, shapes fork local 1 2 v1" {
		t.Errorf("the binary prints %q", out)
	}
	// go.mod moved on without `go mod vendor`: go refuses, and says why.
	mustFail(t, runModule(t, args("stale"), false),
		"inconsistent vendoring: vendor/modules.txt was made for another go.mod",
		"example.com/multi@v1.0.1: is explicitly required in go.mod, but not marked as explicit in vendor/modules.txt")
}

// The command recipe finds `go` in the build's PATH, go_binary's directory
// first, not in the module's own PATH.
func TestCommandFindsGoInBuildPath(t *testing.T) {
	t.Parallel()
	repo := shapesMirror(t)
	dir := t.TempDir()
	// go_binary is a wrapper that leaves a mark: the real go is also in the
	// test's PATH, and only the mark tells which one the command ran.
	bin, mark := filepath.Join(dir, "bin"), filepath.Join(dir, "wrapper-ran")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	wrapper := "#!/bin/sh\ntouch " + mark + "\nexec " + goBin(t) + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "go"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	a := map[string]any{
		"repo": repo, "version": "v1", "name": "shapes",
		"dest": filepath.Join(dir, "src"), "store": filepath.Join(dir, "store"), "go_binary": filepath.Join(bin, "go"),
		"command":   []string{"go", "build", "-o", "shapes.bin", "./cmd/shapes"},
		"artifacts": []string{"shapes.bin"},
	}
	mustSucceed(t, runModule(t, a, false))
	if _, err := os.Stat(mark); err != nil {
		t.Errorf("the command did not run go_binary: %v", err)
	}
	// A command that is nowhere in the build's PATH is named as such.
	a["command"] = []string{"no-such-tool", "build"}
	a["dest"] = filepath.Join(dir, "src2")
	r := mustFail(t, runModule(t, a, false), `start no-such-tool: "no-such-tool" not found in the build's PATH (`+bin+":")
	if d := r.str("msg"); strings.Contains(d, "vendor") {
		t.Errorf("a command that did not start gets no vendoring advice: %s", d)
	}
}

// A build that fills its disk says which one, and gives no other advice.
func TestFullDiskIsNamed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	if err := os.Mkdir(small, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", small).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", small).Run() })
	repo := shapesMirror(t)
	a := map[string]any{
		"repo": repo, "version": "v1", "name": "shapes", "package": "./cmd/shapes",
		"dest": filepath.Join(dir, "src"), "store": filepath.Join(dir, "store"), "go_binary": goBin(t),
		"env": map[string]any{"GOTMPDIR": small, "GOCACHE": filepath.Join(dir, "cache")},
	}
	// env values are no_log: the path given as GOTMPDIR is masked, as
	// ansible-core masks it.
	r := mustFail(t, runModule(t, a, false), "no space left on ******** (writing ********/go-build")
	if msg := r.str("msg"); strings.Contains(msg, "vendor") || strings.Contains(msg, "toolchain") {
		t.Errorf("a full disk gets no other advice: %s", msg)
	}
}
