package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chezlepro/sovereign/internal/ansible"
)

// TestMain keeps the work-tree locks of the tests out of this machine's
// /run.
//
// It also drops the variables that point git at another repository (git
// rebase --exec sets GIT_DIR): the tests' own git commands would otherwise
// commit, tag and re-init in the repository running them.
//
// And the proxy variables: every forge these tests reach is on 127.0.0.1,
// which a proxy set for the machine's way out (with no no_proxy) would
// answer instead.
func TestMain(m *testing.M) {
	for _, k := range []string{"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"} {
		os.Unsetenv(k)
	}
	// Never this machine's node_exporter directory: a test that wants
	// metrics gives metrics_dir.
	metricsDefault = "/nonexistent/chezlepro-test-metrics"
	for k := range gitRepoVars {
		os.Unsetenv(k)
	}
	dir, err := os.MkdirTemp("", "source_build-locks-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	lockDir = filepath.Join(dir, "locks")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// sampleDir is the sample Go program with a vendored dependency.
const sampleDir = "../../tests/testdata/source_build/hello"

// gitEnv makes commits reproducible: fixed identity, dates given per call.
func gitEnv(date string) []string {
	return append(os.Environ(),
		"GIT_AUTHOR_NAME=Forge", "GIT_AUTHOR_EMAIL=forge@lan", "GIT_COMMITTER_NAME=Forge", "GIT_COMMITTER_EMAIL=forge@lan",
		"GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date, "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
}

func gitIn(t *testing.T, dir, date string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = gitEnv(date)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// mirror is a bare repository made from the sample:
//
//	v1 (annotated tag) -> c1
//	v2 (annotated tag), main -> c2: main.go prints "v2"
//	novendor  -> c2 without vendor/
//	oldgo     -> c2 with "go 1.99" in go.mod
//	badvendor -> c2 with vendor/modules.txt at another version
type mirror struct {
	Path   string
	Src    string
	Commit map[string]string
}

func newMirror(t *testing.T) *mirror {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is not installed: Debian package git (tests/setup.sh check installs it)")
	}
	base := t.TempDir()
	src := filepath.Join(base, "src")
	if err := os.CopyFS(src, os.DirFS(sampleDir)); err != nil {
		t.Fatal(err)
	}
	m := &mirror{Path: filepath.Join(base, "hello.git"), Src: src, Commit: map[string]string{}}
	d1, d2 := "2026-01-01T10:00:00Z", "2026-02-01T10:00:00Z"
	gitIn(t, src, d1, "init", "-q", "-b", "main")
	gitIn(t, src, d1, "add", "-A")
	gitIn(t, src, d1, "commit", "-q", "-m", "v1")
	gitIn(t, src, d1, "tag", "-a", "-m", "release v1", "v1")
	m.Commit["v1"] = gitIn(t, src, d1, "rev-parse", "HEAD")
	edit(t, filepath.Join(src, "main.go"), `"sovereign"`, `"sovereign v2"`)
	gitIn(t, src, d2, "commit", "-q", "-am", "v2")
	gitIn(t, src, d2, "tag", "-a", "-m", "release v2", "v2")
	m.Commit["v2"] = gitIn(t, src, d2, "rev-parse", "HEAD")
	m.Commit["main"] = m.Commit["v2"]

	branch := func(name string, change func()) {
		gitIn(t, src, d2, "checkout", "-q", "-b", name, "main")
		change()
		gitIn(t, src, d2, "add", "-A")
		gitIn(t, src, d2, "commit", "-q", "-m", name)
		m.Commit[name] = gitIn(t, src, d2, "rev-parse", "HEAD")
		gitIn(t, src, d2, "checkout", "-q", "main")
	}
	branch("novendor", func() { gitIn(t, src, d2, "rm", "-q", "-r", "vendor") })
	branch("oldgo", func() { edit(t, filepath.Join(src, "go.mod"), "go 1.22", "go 1.99") })
	branch("badvendor", func() { edit(t, filepath.Join(src, "vendor/modules.txt"), "greet v1.0.0", "greet v1.0.1") })
	gitIn(t, base, d2, "clone", "-q", "--bare", src, m.Path)
	return m
}

// moveTag points tag at commit in the mirror, as a force-push would.
func (m *mirror) moveTag(t *testing.T, tag, commit string) {
	gitIn(t, m.Path, "2026-03-01T10:00:00Z", "tag", "-f", "-a", "-m", "moved", tag, commit)
}

func edit(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s has no %q", path, old)
	}
	if err := os.WriteFile(path, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

func goBin(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("no go command in PATH: run the tests through make (its PATH has the Go tests/setup.sh chose)")
	}
	abs, _ := filepath.Abs(p)
	return abs
}

// buildArgs are the module's arguments for building version of m into fresh
// places under dir.
func buildArgs(t *testing.T, m *mirror, dir, version string) map[string]any {
	return map[string]any{
		"repo": m.Path, "version": version, "dest": filepath.Join(dir, "src"), "store": filepath.Join(dir, "store"),
		"go_binary": goBin(t), "version_vars": map[string]any{"main.version": "{version}", "main.commit": "{short_commit}"},
	}
}

// result is one module answer.
type result map[string]any

func (r result) str(k string) string {
	s, _ := r[k].(string)
	return s
}

func (r result) bool(k string) bool {
	b, _ := r[k].(bool)
	return b
}

func (r result) failed() bool  { return r.bool("failed") }
func (r result) changed() bool { return r.bool("changed") }

func (r result) list(k string) []string {
	var out []string
	l, _ := r[k].([]any)
	for _, v := range l {
		out = append(out, fmt.Sprint(v))
	}
	return out
}

// runModule runs the module as ansible-core would, through the runtime.
func runModule(t *testing.T, a map[string]any, check bool) result {
	t.Helper()
	in := map[string]any{}
	for k, v := range a {
		in[k] = v
	}
	in["_ansible_check_mode"] = check
	in["_ansible_diff"] = true
	b, _ := json.Marshal(in)
	p := filepath.Join(t.TempDir(), "args.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	ansible.Execute(module(), []string{"source_build", p}, &out)
	var res result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("module output is not one JSON object: %v\n%s", err, out.String())
	}
	return res
}

// mustSucceed fails the test with the module's message when it failed.
func mustSucceed(t *testing.T, r result) result {
	t.Helper()
	if r.failed() {
		t.Fatalf("module failed: %s", r.str("msg"))
	}
	return r
}

func mustFail(t *testing.T, r result, want ...string) result {
	t.Helper()
	if !r.failed() {
		t.Fatalf("module succeeded, want a failure containing %q: %s", want, r.str("msg"))
	}
	for _, w := range want {
		if !strings.Contains(r.str("msg"), w) {
			t.Fatalf("msg lacks %q:\n%s", w, r.str("msg"))
		}
	}
	return r
}

// storeKeys lists the build directories under a store.
func storeKeys(t *testing.T, store string) []string {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(store, "*", "*", "manifest.json"))
	var keys []string
	for _, m := range matches {
		keys = append(keys, filepath.Base(filepath.Dir(m)))
	}
	return keys
}

func runCmd(t *testing.T, name string, arg ...string) string {
	t.Helper()
	out, err := exec.Command(name, arg...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, arg, err, out)
	}
	return strings.TrimSpace(string(out))
}

// builtOnce makes a mirror and builds version of it into a fresh directory:
// the start of most tests.
func builtOnce(t *testing.T, version string) (m *mirror, dir string, a map[string]any, r result) {
	t.Helper()
	m = newMirror(t)
	dir = t.TempDir()
	a = buildArgs(t, m, dir, version)
	r = mustSucceed(t, runModule(t, a, false))
	return m, dir, a, r
}

// resultJSON is the result as printed.
func resultJSON(t *testing.T, r result) string {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
