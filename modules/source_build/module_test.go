package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chezlepro/sovereign/internal/fsutil"
	"github.com/chezlepro/sovereign/internal/lock"
)

// The whole life of one work tree: first build, no-op, check mode for the
// next tag, the next tag, a changed recipe, a rebuild, a second store.
func TestBuildLifecycle(t *testing.T) {
	t.Parallel()
	m := newMirror(t)
	dir := t.TempDir()
	a := buildArgs(t, m, dir, "v1")

	r := mustSucceed(t, runModule(t, a, false))
	if !r.changed() || !r.bool("built") || r.str("commit") != m.Commit["v1"] || r.str("ref_type") != "tag" {
		t.Fatalf("first build: %v", r)
	}
	if r["before"] != nil || r.str("after") != m.Commit["v1"] {
		t.Errorf("before/after: %v %v", r["before"], r["after"])
	}
	wantIso := isoNetns
	if probeNetns() != nil {
		wantIso = isoNone
	}
	if r.str("isolation") != wantIso {
		t.Errorf("isolation %q, want %q", r.str("isolation"), wantIso)
	}
	art := r.str("artifact")
	sum, size, err := fsutil.HashFile(art)
	if err != nil || sum != r.str("sha256") || float64(size) != r["size"].(float64) {
		t.Fatalf("artifact %s: sha256 %s size %d (%v), result says %s %v", art, sum, size, err, r.str("sha256"), r["size"])
	}
	if out := runCmd(t, art); out != "hello, sovereign v1 "+m.Commit["v1"][:12] {
		t.Errorf("the binary prints %q", out)
	}
	checkManifest(t, r, m, "v1")

	// Same request: nothing to do, fast.
	r2 := mustSucceed(t, runModule(t, a, false))
	if r2.changed() || r2.bool("built") || r2.str("sha256") != r.str("sha256") || len(r2.list("reasons")) != 0 {
		t.Fatalf("second run must be a no-op: %v", r2)
	}
	if ms := r2["duration_ms"].(float64); ms > 1000 {
		t.Errorf("no-op took %v ms", ms)
	}

	// Check mode for v2: would build, says why, touches nothing.
	a2 := buildArgs(t, m, dir, "v2")
	c := mustSucceed(t, runModule(t, a2, true))
	if !c.changed() || !c.bool("would_build") || c.bool("built") {
		t.Fatalf("check mode for v2: %v", c)
	}
	if reasons := strings.Join(c.list("reasons"), "\n"); !strings.Contains(reasons, "new commit") {
		t.Errorf("check mode reasons: %s", reasons)
	}
	if d, _ := c["diff"].(map[string]any); d == nil ||
		!strings.Contains(d["before"].(string), "commit: "+m.Commit["v1"]) ||
		!strings.Contains(d["after"].(string), "commit: "+m.Commit["v2"]) || !strings.Contains(d["after"].(string), "(to be built)") {
		t.Errorf("check mode diff: %v", c["diff"])
	}
	if head := gitIn(t, a["dest"].(string), "", "rev-parse", "HEAD"); head != m.Commit["v1"] {
		t.Errorf("check mode moved the work tree to %s", head)
	}
	if keys := storeKeys(t, a["store"].(string)); len(keys) != 1 {
		t.Errorf("check mode wrote to the store: %v", keys)
	}

	r3 := mustSucceed(t, runModule(t, a2, false))
	if !r3.bool("built") || r3.str("before") != m.Commit["v1"] || r3.str("after") != m.Commit["v2"] || r3.str("sha256") == r.str("sha256") {
		t.Fatalf("v2 build: %v", r3)
	}
	if out := runCmd(t, r3.str("artifact")); !strings.HasPrefix(out, "hello, sovereign v2 v2 ") {
		t.Errorf("v2 binary prints %q", out)
	}

	// Back to v1: its build is stored, only the work tree moves.
	r4 := mustSucceed(t, runModule(t, a, false))
	if !r4.changed() || r4.bool("built") || r4.str("sha256") != r.str("sha256") {
		t.Fatalf("back to v1: %v", r4)
	}

	// A changed recipe is reported as such, then built.
	a5 := buildArgs(t, m, dir, "v1")
	a5["goarch"] = "arm64"
	c5 := mustSucceed(t, runModule(t, a5, true))
	if reasons := strings.Join(c5.list("reasons"), "\n"); !strings.Contains(reasons, "changed recipe") || !strings.Contains(reasons, `"arm64"`) {
		t.Errorf("changed recipe reasons: %s", reasons)
	}

	// Rebuild: same bytes.
	a6 := buildArgs(t, m, dir, "v1")
	a6["rebuild"] = true
	r6 := mustSucceed(t, runModule(t, a6, false))
	if !r6.bool("built") || r6.str("sha256") != r.str("sha256") || !r6.bool("reproducible") || r6.str("previous_sha256") != r.str("sha256") {
		t.Fatalf("rebuild: %v", r6)
	}

	// Another work tree and another store (a cold second build): same bytes.
	other := buildArgs(t, m, t.TempDir(), "v1")
	r7 := mustSucceed(t, runModule(t, other, false))
	if r7.str("sha256") != r.str("sha256") {
		t.Fatalf("a second build from scratch gave sha256 %s, the first %s", r7.str("sha256"), r.str("sha256"))
	}

	// The artifact disappears: reported, rebuilt.
	if err := os.Remove(art); err != nil {
		t.Fatal(err)
	}
	c8 := mustSucceed(t, runModule(t, a, true))
	if reasons := strings.Join(c8.list("reasons"), "\n"); !strings.Contains(reasons, "missing artifact") {
		t.Errorf("missing artifact reasons: %s", reasons)
	}
	r8 := mustSucceed(t, runModule(t, a, false))
	if !r8.bool("built") || r8.str("sha256") != r.str("sha256") {
		t.Fatalf("rebuild of a missing artifact: %v", r8)
	}
}

// checkManifest checks the manifest contract binary_stage relies on, and the
// fields the issue asks for.
func checkManifest(t *testing.T, r result, m *mirror, version string) {
	t.Helper()
	b, err := os.ReadFile(r.str("manifest_path"))
	if err != nil {
		t.Fatal(err)
	}
	var man map[string]any
	if err := json.Unmarshal(b, &man); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"name", "version", "commit", "sha256", "size", "artifact", "artifacts", "repo", "go_version",
		"recipe", "env", "build_time", "modules", "log", "isolation", "source_date_epoch"} {
		if _, ok := man[k]; !ok {
			t.Errorf("manifest lacks %s", k)
		}
	}
	if man["name"] != "hello" || man["version"] != version || man["commit"] != m.Commit[version] || man["sha256"] != r.str("sha256") || man["artifact"] != r.str("artifact") {
		t.Errorf("manifest: %v", man)
	}
	if !filepath.IsAbs(man["artifact"].(string)) {
		t.Errorf("artifact path must be absolute: %v", man["artifact"])
	}
	mods, _ := json.Marshal(man["modules"])
	if !strings.Contains(string(mods), `"path":"example.com/greet","version":"v1.0.0"`) {
		t.Errorf("module list lacks the vendored dependency: %s", mods)
	}
	env := man["env"].(map[string]any)
	for k, v := range map[string]string{"GOFLAGS": "-mod=vendor", "GOPROXY": "off", "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"} {
		if env[k] != v {
			t.Errorf("manifest env %s=%v, want %s", k, env[k], v)
		}
	}
	if ct, _ := time.Parse(time.RFC3339, man["commit_time"].(string)); env["SOURCE_DATE_EPOCH"] != strconv.FormatInt(ct.Unix(), 10) {
		t.Errorf("SOURCE_DATE_EPOCH %v is not the commit time %v", env["SOURCE_DATE_EPOCH"], man["commit_time"])
	}
	if log, err := os.ReadFile(man["log"].(string)); err != nil || !strings.Contains(string(log), "exit status 0") {
		t.Errorf("build log %v: %v %s", man["log"], err, log)
	}
}

func TestMovedTagRefused(t *testing.T) {
	t.Parallel()
	m, dir, a, first := builtOnce(t, "v1")
	m.moveTag(t, "v1", m.Commit["v2"])

	for _, check := range []bool{true, false} {
		r := mustFail(t, runModule(t, a, check), "tag moved", m.Commit["v2"][:12], m.Commit["v1"][:12], "allow_moved_tag")
		if r.changed() {
			t.Errorf("a refused run must not change anything: %v", r)
		}
	}
	// A fresh work tree still knows from the store.
	fresh := buildArgs(t, m, dir, "v1")
	fresh["dest"] = filepath.Join(dir, "green")
	mustFail(t, runModule(t, fresh, false), "the store built "+m.Commit["v1"][:12])
	if head := gitIn(t, a["dest"].(string), "", "rev-parse", "HEAD"); head != m.Commit["v1"] {
		t.Errorf("the work tree moved to %s", head)
	}

	a["allow_moved_tag"] = true
	r := mustSucceed(t, runModule(t, a, false))
	if r.str("commit") != m.Commit["v2"] || !r.bool("built") || r.str("sha256") == first.str("sha256") {
		t.Fatalf("allowed moved tag: %v", r)
	}
	if w := strings.Join(r.list("warnings"), "\n"); !strings.Contains(w, "tag moved") {
		t.Errorf("warnings: %s", w)
	}
	// Recorded now: the next run without allow_moved_tag is fine.
	delete(a, "allow_moved_tag")
	if r := mustSucceed(t, runModule(t, a, false)); r.changed() {
		t.Errorf("after accepting the move: %v", r)
	}
}

func TestOfflineFailuresAreExplained(t *testing.T) {
	t.Parallel()
	m := newMirror(t)
	cases := []struct {
		version string
		want    []string
	}{
		{"novendor", []string{"no vendor/ directory in ", "example.com/greet@v1.0.0: is explicitly required in go.mod", "go mod vendor"}},
		{"oldgo", []string{"toolchain is older than go.mod asks for", "requires go >= 1.99", "GOTOOLCHAIN=local"}},
		{"badvendor", []string{"inconsistent vendoring: vendor/modules.txt was made for another go.mod", "example.com/greet@v1.0.1: is marked as explicit in vendor/modules.txt, but not explicitly required in go.mod"}},
	}
	for _, c := range cases {
		t.Run(c.version, func(t *testing.T) {
			dir := t.TempDir()
			a := buildArgs(t, m, dir, c.version)
			mustFail(t, runModule(t, a, false), c.want...)
			if keys := storeKeys(t, a["store"].(string)); len(keys) != 0 {
				t.Errorf("a failed build left %v in the store", keys)
			}
		})
	}
	// The same project built by a make-like command: go itself fails
	// offline, and the failure names the cause.
	t.Run("command without vendor", func(t *testing.T) {
		dir := t.TempDir()
		a := buildArgs(t, m, dir, "novendor")
		delete(a, "version_vars")
		a["command"] = []string{goBin(t), "build", "-o", filepath.Join(dir, "src", "out", "hello"), "."}
		a["artifacts"] = []string{filepath.Join(dir, "src", "out", "hello")}
		r := mustFail(t, runModule(t, a, false), "build failed: exit status 1", "no vendor/ directory", "log: ")
		if !strings.Contains(r.str("log"), "/failed/") {
			t.Errorf("failure log %q is not under failed/", r.str("log"))
		}
		if _, err := os.Stat(r.str("log")); err != nil {
			t.Errorf("failure log: %v", err)
		}
		if len(r.list("log_tail")) == 0 {
			t.Error("no log_tail")
		}
	})
}

// A build that tries to reach the network fails inside the namespace, and
// the failure says so; without isolation the same command gets through.
func TestNetworkIsCut(t *testing.T) {
	t.Parallel()
	if probeNetns() != nil {
		t.Skip("this host cannot create network namespaces")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatal("no bash: Debian package bash")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	hits := make(chan struct{}, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			hits <- struct{}{}
			c.Close()
		}
	}()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	m := newMirror(t)
	dir := t.TempDir()
	out := "out.txt" // in the work tree; only the second run writes it
	a := buildArgs(t, m, dir, "v1")
	delete(a, "version_vars")
	a["command"] = []string{"bash", "-c", "echo hi > /dev/tcp/127.0.0.1/" + port + " && date > " + out}
	a["artifacts"] = []string{out}

	r := mustFail(t, runModule(t, a, false), "tried to reach the network (isolation: netns)")
	if r.str("isolation") != isoNetns {
		t.Errorf("isolation %q", r.str("isolation"))
	}
	select {
	case <-hits:
		t.Fatal("the isolated build reached the listener")
	default:
	}

	a["isolation"] = "none"
	r = mustSucceed(t, runModule(t, a, false))
	if r.str("isolation") != isoNone {
		t.Errorf("isolation %q", r.str("isolation"))
	}
	select {
	case <-hits:
	case <-time.After(5 * time.Second):
		t.Fatal("without isolation the command should have connected")
	}
}

func TestFailuresLeaveStoreAlone(t *testing.T) {
	t.Parallel()
	m, dir, _, good := builtOnce(t, "v1")

	t.Run("failing command", func(t *testing.T) {
		a := buildArgs(t, m, dir, "v1")
		delete(a, "version_vars")
		a["command"] = []string{"sh", "-c", "echo compiling; echo boom >&2; exit 3"}
		a["artifacts"] = []string{"hello"}
		r := mustFail(t, runModule(t, a, false), "build failed: exit status 3", "boom", "last lines")
		if tail := strings.Join(r.list("log_tail"), "\n"); !strings.Contains(tail, "compiling") {
			t.Errorf("log_tail %q", tail)
		}
	})
	t.Run("artifact missing", func(t *testing.T) {
		a := buildArgs(t, m, dir, "v1")
		delete(a, "version_vars")
		a["command"] = []string{"true"}
		a["artifacts"] = []string{"dist/hello"}
		mustFail(t, runModule(t, a, false), "artifact missing after the build", "dist/hello")
	})
	t.Run("rebuild that fails keeps the stored build", func(t *testing.T) {
		a := buildArgs(t, m, dir, "v1")
		a["rebuild"] = true
		a["go_binary"] = fakeGo(t, "#!/bin/sh\necho go is broken >&2\nexit 2\n")
		mustFail(t, runModule(t, a, false), "exit status 2", "go is broken")
	})
	if sum, _, err := fsutil.HashFile(good.str("artifact")); err != nil || sum != good.str("sha256") {
		t.Fatalf("the stored build changed: %s %v", sum, err)
	}
	if keys := storeKeys(t, filepath.Join(dir, "store")); len(keys) != 1 {
		t.Fatalf("store holds %v", keys)
	}
	failed, _ := filepath.Glob(filepath.Join(dir, "store", "*", "failed", "*.log"))
	if len(failed) != 3 {
		t.Errorf("failure logs: %v", failed)
	}
	// keep applies to failure logs too.
	a := buildArgs(t, m, dir, "v1")
	delete(a, "version_vars")
	a["command"], a["artifacts"], a["keep"], a["name"] = []string{"false"}, []string{"x"}, 2, "hello"
	mustFail(t, runModule(t, a, false), "exit status 1")
	if failed, _ := filepath.Glob(filepath.Join(dir, "store", "*", "failed", "*.log")); len(failed) != 2 {
		t.Errorf("keep 2 left failure logs %v", failed)
	}
}

// fakeGo makes a go command running script, in a GOROOT whose VERSION is
// the real toolchain's (so the recipe, and the store key, are the same).
func fakeGo(t *testing.T, script string) string {
	v, err := goVersion(goBin(t))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	p := filepath.Join(root, "bin", "go")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "VERSION"), []byte(v+"\ntime 2026-01-01\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTimeoutKillsTheProcessGroup(t *testing.T) {
	t.Parallel()
	m := newMirror(t)
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "bg.pid")
	a := buildArgs(t, m, dir, "v1")
	delete(a, "version_vars")
	a["command"] = []string{"sh", "-c", "sleep 300 & echo $! > " + pidFile + "; wait"}
	a["artifacts"] = []string{"never"}
	a["timeout"] = 1
	start := time.Now()
	mustFail(t, runModule(t, a, false), "build timed out after 1s", "process group")
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("timeout took %s", d)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("the background sleep %d outlived the build", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// alive: the process exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndex(s, ")")
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	m := newMirror(t)
	dir := t.TempDir()
	cases := []struct {
		name   string
		change func(a map[string]any)
		want   []string
	}{
		{"unknown repo", func(a map[string]any) { a["repo"] = filepath.Join(dir, "nope.git") }, []string{"cannot read repository", "nope.git"}},
		{"unknown version", func(a map[string]any) { a["version"] = "v9" }, []string{"unknown version", `"v9" is neither a tag nor a branch`}},
		{"unknown commit", func(a map[string]any) { a["version"] = strings.Repeat("ab", 20) }, []string{"unknown version", "could not be fetched"}},
		{"missing package", func(a map[string]any) { a["package"] = "./cmd/nope" }, []string{"build failed", "cmd/nope"}},
		{"missing chdir", func(a map[string]any) { a["chdir"] = "sub" }, []string{"working directory", "does not exist"}},
		{"netns without offline build", func(a map[string]any) { a["go_binary"] = filepath.Join(dir, "no-go") }, []string{"go_binary"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := buildArgs(t, m, t.TempDir(), "v1")
			c.change(a)
			mustFail(t, runModule(t, a, false), c.want...)
		})
	}
}

func TestVersionsAsBranchAndCommit(t *testing.T) {
	t.Parallel()
	m := newMirror(t)
	dir := t.TempDir()
	a := buildArgs(t, m, dir, "main")
	delete(a, "version_vars") // then a branch and a commit share a build
	r := mustSucceed(t, runModule(t, a, false))
	if r.str("ref_type") != "branch" || r.str("commit") != m.Commit["main"] {
		t.Fatalf("branch: %v", r)
	}
	a["version"] = m.Commit["v2"]
	a["dest"] = filepath.Join(dir, "bycommit")
	a["depth"] = 1
	rc := mustSucceed(t, runModule(t, a, false))
	if rc.str("ref_type") != "commit" || rc.bool("built") || !rc.changed() || rc.str("sha256") != r.str("sha256") {
		t.Fatalf("commit id: the build of the same commit and recipe must be reused: %v", rc)
	}
	if n := gitIn(t, a["dest"].(string), "", "rev-list", "--count", "HEAD"); n != "1" {
		t.Errorf("depth 1 fetched %s commits", n)
	}
}

func TestDirtyWorkTree(t *testing.T) {
	t.Parallel()
	m, dir, a, _ := builtOnce(t, "v1")
	dest := a["dest"].(string)
	edit(t, filepath.Join(dest, "main.go"), "sovereign", "tampered")
	if err := os.WriteFile(filepath.Join(dest, "extra.go"), []byte("package main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Nothing to build: the dirty tree does not matter.
	mustSucceed(t, runModule(t, a, false))

	a2 := buildArgs(t, m, dir, "v2")
	mustFail(t, runModule(t, a2, false), "local changes", "M main.go", "?? extra.go", "force: true")
	a2["force"] = true
	r := mustSucceed(t, runModule(t, a2, false))
	if !r.bool("built") || !strings.Contains(strings.Join(r.list("warnings"), "\n"), "discarding local changes") {
		t.Fatalf("forced: %v", r)
	}
	if out := runCmd(t, "git", "-C", dest, "status", "--porcelain"); out != "" {
		t.Errorf("work tree still dirty: %s", out)
	}
}

func TestUpdateFalseBuildsWithoutTheRepository(t *testing.T) {
	t.Parallel()
	m, _, a, first := builtOnce(t, "v1")
	if err := os.Rename(m.Path, m.Path+".gone"); err != nil {
		t.Fatal(err)
	}
	mustFail(t, runModule(t, a, false), "cannot read repository")
	a["update"] = false
	a["rebuild"] = true
	r := mustSucceed(t, runModule(t, a, false))
	if !r.bool("built") || r.str("sha256") != first.str("sha256") || r.bool("fetched") {
		t.Fatalf("update: false rebuild: %v", r)
	}
	a["version"] = "v2" // never fetched: unknown locally
	mustFail(t, runModule(t, a, false), "unknown version", "update is false")
}

func TestKeepPrunesOldBuilds(t *testing.T) {
	t.Parallel()
	m := newMirror(t)
	dir := t.TempDir()
	var keys []string
	for _, v := range []string{"v1", "v2", "main"} {
		a := buildArgs(t, m, dir, v) // {version} differs: three builds
		a["keep"] = 2
		r := mustSucceed(t, runModule(t, a, false))
		keys = append(keys, r.str("key"))
	}
	got := storeKeys(t, filepath.Join(dir, "store"))
	if len(got) != 2 || strings.Contains(strings.Join(got, " "), keys[0]) {
		t.Fatalf("store keeps %v; built %v", got, keys)
	}
}

func TestWorkTreeLock(t *testing.T) {
	t.Parallel()
	m := newMirror(t)
	dir := t.TempDir()
	a := buildArgs(t, m, dir, "v1")
	a["lock_timeout"] = 1
	lk, err := lock.Acquire(context.Background(), workTreeLock(a["dest"].(string)), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	mustFail(t, runModule(t, a, false), "another build of work tree", "held by another run")
	// Check mode writes nothing, so it takes no lock.
	mustSucceed(t, runModule(t, a, true))
	lk.Release()
	mustSucceed(t, runModule(t, a, false))
}

// TestLockOnlyForWork: the work tree's lock is taken after a first look,
// and only when there is something to do. A run with nothing to do answers
// while another run holds the lock; a refusal seen without the lock (local
// changes, which another run's checkout could show) waits for the lock and
// is made again under it.
func TestLockOnlyForWork(t *testing.T) {
	t.Parallel()
	_, _, a, _ := builtOnce(t, "v1")
	a["lock_timeout"] = 0.5
	lk, err := lock.Acquire(context.Background(), workTreeLock(a["dest"].(string)), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r := mustSucceed(t, runModule(t, a, false))
	if r.changed() || r.str("metrics_file") != "" || !strings.Contains(r.str("msg"), "is already built") {
		t.Fatalf("no-op run under another run's lock: %s", resultJSON(t, r))
	}
	dest := a["dest"].(string)
	edit(t, filepath.Join(dest, "main.go"), `"sovereign"`, `"changed"`)
	a["rebuild"] = true
	mustFail(t, runModule(t, a, false), "another build of work tree", "held by another run")
	mustFail(t, runModule(t, a, true), "work tree has local changes")
	// A refusal that plans no step waits for the lock too (another run
	// with force: true may be repointing origin).
	delete(a, "rebuild")
	gitIn(t, dest, "2026-03-01T10:00:00Z", "checkout", "-q", "--", "main.go")
	gitIn(t, dest, "2026-03-01T10:00:00Z", "remote", "set-url", "origin", "/srv/git/elsewhere.git")
	mustFail(t, runModule(t, a, false), "another build of work tree", "held by another run")
	mustFail(t, runModule(t, a, true), "dest is a clone of another repository")
	lk.Release()
	mustFail(t, runModule(t, a, false), "dest is a clone of another repository")
}
