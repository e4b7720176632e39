package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chezlepro/sovereign/internal/ansible"
	"github.com/chezlepro/sovereign/internal/ansible/ansibletest"
	"github.com/chezlepro/sovereign/internal/fsutil"
)

// runAs makes the test binary act as the module process when the kill
// tests re-execute it (see TestMain).
const runAsModuleEnv = "BINARY_STAGE_TEST_RUN_AS_MODULE"

func TestMain(m *testing.M) {
	// Never this machine's node_exporter directory: a test that wants
	// metrics gives metrics_dir.
	metricsDefault = "/nonexistent/chezlepro-test-metrics"
	if os.Getenv(runAsModuleEnv) == "1" {
		ansible.Main(module())
		return
	}
	os.Exit(m.Run())
}

// writeArgs writes the args file ansible-core would upload for a task giving
// args, validated and completed by the controller code, and returns its path.
func writeArgs(t *testing.T, args map[string]any) string {
	t.Helper()
	p, msg := ansibletest.WriteArgs(t, "binary_stage", args)
	if msg != "" {
		t.Fatalf("the controller refuses %v: %s", args, msg)
	}
	return p
}

// execModule runs the module in-process through the runtime and returns
// its JSON result.
func execModule(t *testing.T, args map[string]any) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	if p, msg := ansibletest.WriteArgs(t, "binary_stage", args); msg != "" {
		buf.Write(ansibletest.Failed(msg))
	} else {
		ansible.Execute(module(), []string{"binary_stage", p}, &buf)
	}
	var res map[string]any
	if err := json.Unmarshal(buf.Bytes(), &res); err != nil {
		t.Fatalf("module output is not JSON: %v\n%s", err, buf.String())
	}
	return res
}

// mustOK runs the module and fails the test when the task failed.
func mustOK(t *testing.T, args map[string]any) map[string]any {
	t.Helper()
	res := execModule(t, args)
	if res["failed"] == true {
		t.Fatalf("module failed: %v", res["msg"])
	}
	return res
}

// mustFail runs the module and checks it failed with msg containing want.
func mustFail(t *testing.T, args map[string]any, want string) map[string]any {
	t.Helper()
	res := execModule(t, args)
	if res["failed"] != true {
		t.Fatalf("module succeeded, want failure containing %q: %v", want, res)
	}
	if msg, _ := res["msg"].(string); !strings.Contains(msg, want) {
		t.Fatalf("msg %q does not contain %q", msg, want)
	}
	return res
}

func sha(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// fixture is a root under a temp dir and a few source binaries.
type fixture struct {
	t    *testing.T
	dir  string
	root string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	d := t.TempDir()
	return &fixture{t: t, dir: d, root: filepath.Join(d, "opt", "app")}
}

// src writes a source "binary" (a shell script, so smoke tests can run it)
// and returns its path and sha256.
func (f *fixture) src(name, body string) (string, string) {
	f.t.Helper()
	data := []byte("#!/bin/sh\n" + body + "\n")
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		f.t.Fatal(err)
	}
	return p, sha(data)
}

// args returns the usual arguments to stage src as version into slot.
func (f *fixture) args(src, sum, version, slot string) map[string]any {
	a := map[string]any{"src": src, "version": version, "root": f.root, "slot": slot, "binary": "app"}
	if sum != "" {
		a["checksum"] = "sha256:" + sum
	}
	return a
}

// link returns the slot's symlink text ("" when absent).
func (f *fixture) link(slot string) string {
	l, err := os.Readlink(filepath.Join(f.root, slot))
	if err != nil {
		return ""
	}
	return l
}

func (f *fixture) releases() []string {
	ents, _ := os.ReadDir(filepath.Join(f.root, "releases"))
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// checkInvariants asserts what must hold after any run, even a killed one:
// every slot under root points at a release directory under its final name
// whose binary is complete (its sha256 is the one in the release name and
// in .release.json), and every release under a final name is complete.
func checkInvariants(t *testing.T, root string) {
	t.Helper()
	rel := filepath.Join(root, "releases")
	ents, err := os.ReadDir(rel)
	if err != nil {
		t.Fatalf("read releases: %v", err)
	}
	for _, e := range ents {
		if isLeftover(e.Name()) {
			continue // a temporary name: invisible to slots, removed by the next run
		}
		checkRelease(t, filepath.Join(rel, e.Name()))
	}
	slots, _ := os.ReadDir(root)
	for _, e := range slots {
		if e.Type()&os.ModeSymlink == 0 || isLeftover(e.Name()) {
			continue
		}
		l, _ := os.Readlink(filepath.Join(root, e.Name()))
		target := filepath.Join(root, l)
		if filepath.Dir(target) != rel {
			t.Errorf("slot %s points at %s, outside %s", e.Name(), l, rel)
			continue
		}
		if _, err := os.Stat(target); err != nil {
			t.Errorf("slot %s points at missing release %s", e.Name(), l)
		}
	}
}

// checkRelease asserts that dir is a complete release.
func checkRelease(t *testing.T, dir string) {
	t.Helper()
	m, err := readMeta(dir)
	if err != nil {
		t.Errorf("release %s has no readable %s: %v", dir, metaName, err)
		return
	}
	sum, n, err := fsutil.HashFile(filepath.Join(dir, m.Binary))
	if err != nil {
		t.Errorf("release %s: %v", dir, err)
		return
	}
	if sum != m.SHA256 || n != m.Size {
		t.Errorf("release %s: binary has sha256 %s (%d bytes), .release.json says %s (%d bytes)", dir, sum, n, m.SHA256, m.Size)
	}
	if !strings.HasSuffix(filepath.Base(dir), "-"+sum[:12]) {
		t.Errorf("release %s: name does not end with the binary's sha256 prefix %s", dir, sum[:12])
	}
}

func assertNoLeftovers(t *testing.T, root string) {
	t.Helper()
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && isLeftover(fi.Name()) {
			t.Errorf("leftover %s after a converged run", p)
		}
		return nil
	})
}
