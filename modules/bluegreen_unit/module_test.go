package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chezlepro/sovereign/internal/ansible"
	"github.com/chezlepro/sovereign/internal/ansible/ansibletest"
	"github.com/chezlepro/sovereign/internal/health"
	"github.com/chezlepro/sovereign/internal/lock"
	"github.com/chezlepro/sovereign/internal/reuseport"
	"github.com/chezlepro/sovereign/internal/systemd"
)

// harness runs the module through the real runtime against a temporary
// root, the systemd fake, and probes that pass while the probed colour's
// unit runs and is marked healthy.
type harness struct {
	t        *testing.T
	root     string
	fake     *systemd.Fake
	env      env
	healthy  map[Colour]bool
	connects atomic.Int32
}

func newHarness(t *testing.T) *harness {
	root := t.TempDir()
	h := &harness{t: t, root: root, healthy: map[Colour]bool{Blue: true, Green: true}}
	for _, d := range []string{"units", "state", "lock", "sysctl", "opt/webapp/blue", "opt/webapp/green"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	h.fake = systemd.NewFake(filepath.Join(root, "units"))
	os.WriteFile(filepath.Join(root, "migrate"), []byte("0\n"), 0o644)
	h.env = env{
		connect: func(ctx context.Context) (systemd.Manager, error) {
			h.connects.Add(1)
			return h.fake, nil
		},
		unitDir:     filepath.Join(root, "units"),
		stateDir:    filepath.Join(root, "state"),
		lockDir:     filepath.Join(root, "lock"),
		sysctlDir:   filepath.Join(root, "sysctl"),
		procMigrate: filepath.Join(root, "migrate"),
		writeProc:   func(path string, data []byte) error { return os.WriteFile(path, data, 0o644) },
		prober:      h.prober,
		steer:       &fakeSteerer{fake: h.fake},
		now:         time.Now,
		sleep:       func(context.Context, time.Duration) error { return nil },
		metricsDir:  filepath.Join(root, "textfile"), // absent: no metrics unless a test makes it
	}
	return h
}

// fakeSteerer records each steering call among the systemd calls, so tests
// see the order: "steer hold PID", "steer move OLD NEW", "steer release PID".
type fakeSteerer struct {
	fake    *systemd.Fake
	holdErr error
}

func (f *fakeSteerer) log(format string, a ...any) {
	f.fake.Calls = append(f.fake.Calls, "steer "+fmt.Sprintf(format, a...))
}

// port8080 is the one group the fake steers.
var port8080 = reuseport.Group{Family: "tcp", Addr: "0.0.0.0:8080"}

func (f *fakeSteerer) Hold(old int) ([]steered, error) {
	f.log("hold %d", old)
	if f.holdErr != nil {
		return nil, f.holdErr
	}
	return []steered{{step: stepHold, group: port8080, outcome: heldOnOld, listening: 1, old: 1}}, nil
}

func (f *fakeSteerer) Move(old, neu int) ([]steered, error) {
	f.log("move %d %d", old, neu)
	return []steered{{step: stepMove, group: port8080, outcome: movedToNew, listening: 2, old: 1, new: 1}}, nil
}

func (f *fakeSteerer) Release(pid int) ([]steered, error) {
	f.log("release %d", pid)
	return []steered{{step: stepRelease, group: port8080, outcome: released, old: 1}}, nil
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

type probeFunc func(ctx context.Context) health.Attempt

func (f probeFunc) Probe(ctx context.Context) health.Attempt { return f(ctx) }

// prober maps the health URL's port to the colour (9001 blue, 9002 green).
func (h *harness) prober(c health.Check) health.Prober {
	col := Blue
	if strings.Contains(c.URL, ":9002") {
		col = Green
	}
	return probeFunc(func(ctx context.Context) health.Attempt {
		st, _ := h.fake.Status(ctx, serviceUnit("webapp", col))
		switch {
		case !running(st):
			return health.Attempt{Detail: "connection refused"}
		case !h.healthy[col]:
			return health.Attempt{Status: 500, Detail: "status 500, want 200; body: broken"}
		}
		return health.Attempt{OK: true, Status: 200, Detail: "status 200"}
	})
}

// args are the module arguments of a socket-strategy webapp.
func args(extra map[string]any) map[string]any {
	a := map[string]any{
		"name":         "webapp",
		"command":      []any{"/opt/webapp/{colour}/webapp", "--colour", "{colour}", "--health-listen", "127.0.0.1:{health_port}"},
		"service_type": "notify",
		"sockets":      []any{map[string]any{"name": "http", "listen": []any{"0.0.0.0:8080"}}},
		"colour_vars":  map[string]any{"blue": map[string]any{"health_port": 9001}, "green": map[string]any{"health_port": 9002}},
		"health":       map[string]any{"url": "http://127.0.0.1:{health_port}/healthz", "interval": 0.01, "timeout": 0.5, "successes": 2},
	}
	for k, v := range extra {
		if v == nil {
			delete(a, k)
		} else {
			a[k] = v
		}
	}
	return a
}

type result map[string]any

func (r result) str(k string) string { s, _ := r[k].(string); return s }
func (r result) bool(k string) bool  { b, _ := r[k].(bool); return b }

func (h *harness) run(a map[string]any, internal ...string) result {
	h.t.Helper()
	a = copyMap(a)
	for _, k := range internal {
		a["_ansible_"+k] = true
	}
	var out bytes.Buffer
	if path, msg := ansibletest.WriteArgs(h.t, "bluegreen_unit", a); msg != "" {
		out.Write(ansibletest.Failed(msg))
	} else {
		ansible.Execute(newModule(h.env), []string{"bluegreen_unit", path}, &out)
	}
	var r result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		h.t.Fatalf("module printed non-JSON: %v\n%s", err, out.String())
	}
	return r
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (h *harness) unitFile(name string) string {
	b, err := os.ReadFile(filepath.Join(h.env.unitDir, name))
	if err != nil {
		return ""
	}
	return string(b)
}

func (h *harness) state() *State {
	st, err := readState(statePath(h.env.stateDir, "webapp"))
	if err != nil {
		h.t.Fatal(err)
	}
	return st
}

func (h *harness) unit(name string) systemd.UnitStatus {
	st, _ := h.fake.Status(context.Background(), name)
	return st
}

func (h *harness) mustOK(r result) {
	h.t.Helper()
	if r.bool("failed") {
		h.t.Fatalf("module failed: %s", r.str("msg"))
	}
}

func TestModuleFirstDeployThenIdempotent(t *testing.T) {
	h := newHarness(t)
	bin := filepath.Join(h.root, "opt/webapp/blue/webapp")
	os.WriteFile(bin, []byte("binary v1"), 0o755)
	a := args(map[string]any{"active": "blue", "command": []any{filepath.Join(h.root, "opt/webapp/{colour}/webapp")}})
	r := h.run(a)
	h.mustOK(r)
	if !r.bool("changed") || r.str("active") != "blue" || !r.bool("flipped") || r.str("action") != "deploy" {
		t.Fatalf("first deploy: %v", r)
	}
	want := []string{
		"reload", "start webapp-blue-http.socket", "start webapp-blue.service",
		"enable webapp-blue-http.socket", "enable webapp-blue.service", "reload",
	}
	if !reflect.DeepEqual(h.fake.Calls, want) {
		t.Fatalf("calls %q", h.fake.Calls)
	}
	if !strings.Contains(h.unitFile("webapp-blue.service"), "ExecStart="+bin+"\n") ||
		!strings.Contains(h.unitFile("webapp-blue-http.socket"), "Service=webapp-blue.service") ||
		!strings.Contains(h.unitFile("webapp-green-http.socket"), "Service=webapp-green.service") {
		t.Fatal("unit files not written")
	}
	st := h.state()
	if st.Active != Blue || len(st.History) != 1 || st.History[0].Outcome != "success" || st.History[0].Action != "deploy" {
		t.Fatalf("state %+v", st)
	}
	if sum := sha256.Sum256([]byte("binary v1")); st.Colours[Blue].SHA256 != hex.EncodeToString(sum[:]) || st.Colours[Green].SHA256 != "" {
		t.Fatalf("binary sha not recorded: %+v", st.Colours)
	}
	gate, _ := r["gate"].(map[string]any)
	if gate["passed"] != true || gate["required_successes"] != float64(2) {
		t.Fatalf("gate %v", gate)
	}
	if tm, _ := r["timings_ms"].(map[string]any); tm["total"] == nil || tm["gate"] == nil {
		t.Fatalf("timings %v", r["timings_ms"])
	}

	h.fake.Reset()
	r = h.run(a)
	h.mustOK(r)
	if r.bool("changed") || r.bool("flipped") || len(h.fake.Mutating()) != 0 {
		t.Fatalf("second run changed something: %v calls %q", r, h.fake.Calls)
	}
	if r.str("msg") != "webapp: blue is active, nothing to change" {
		t.Fatal(r.str("msg"))
	}
}

func TestModuleFlipFlipBackRollback(t *testing.T) {
	h := newHarness(t)
	h.mustOK(h.run(args(map[string]any{"active": "blue"})))
	h.fake.Reset()

	r := h.run(args(map[string]any{"active": "green"}))
	h.mustOK(r)
	if !r.bool("flipped") || r.str("active") != "green" || r.str("previous") != "blue" || r.str("msg") != "flipped webapp from blue to green (flip)" {
		t.Fatalf("flip: %v", r)
	}
	bluePID, greenPID := 1001, 1002
	want := []string{
		fmt.Sprintf("steer hold %d", bluePID), "start webapp-green-http.socket", "start webapp-green.service",
		fmt.Sprintf("steer move %d %d", bluePID, greenPID),
		"enable webapp-green-http.socket", "disable webapp-blue-http.socket", "enable webapp-green.service", "disable webapp-blue.service", "reload",
		"stop webapp-blue-http.socket", "stop webapp-blue.service", fmt.Sprintf("steer release %d", greenPID),
	}
	if !reflect.DeepEqual(h.fake.Calls, want) {
		t.Fatalf("flip calls\n got %q\nwant %q", h.fake.Calls, want)
	}
	if b, g := h.unit("webapp-blue.service"), h.unit("webapp-green.service"); running(b) || b.Enabled() || !running(g) || !g.Enabled() {
		t.Fatalf("after flip blue %+v green %+v", b, g)
	}
	if b, g := h.unit("webapp-blue-http.socket"), h.unit("webapp-green-http.socket"); running(b) || b.Enabled() || !running(g) || !g.Enabled() {
		t.Fatalf("after flip: only green listens, at boot too: blue %+v green %+v", b, g)
	}
	units, _ := r["units"].(map[string]any)
	if g, _ := units["green"].(map[string]any); g["active_state"] != "active" {
		t.Fatalf("units in result are not fresh: %v", units)
	}

	r = h.run(args(map[string]any{"active": "blue"}))
	h.mustOK(r)
	if r.str("active") != "blue" || r.str("previous") != "green" {
		t.Fatalf("flip back: %v", r)
	}
	r = h.run(args(map[string]any{"action": "rollback"}))
	h.mustOK(r)
	if r.str("active") != "green" || r.str("action") != "rollback" || !r.bool("changed") {
		t.Fatalf("rollback: %v", r)
	}
	r = h.run(args(map[string]any{"action": "flip"}))
	h.mustOK(r)
	if r.str("active") != "blue" || r.str("action") != "flip" {
		t.Fatalf("action flip: %v", r)
	}
	st := h.state()
	var seq []string
	for _, e := range st.History {
		seq = append(seq, e.Action+":"+string(e.From)+">"+string(e.To)+":"+e.Outcome)
	}
	if want := []string{"deploy:>blue:success", "flip:blue>green:success", "flip:green>blue:success", "rollback:blue>green:success", "flip:green>blue:success"}; !reflect.DeepEqual(seq, want) {
		t.Fatalf("history %q", seq)
	}
	q := h.run(map[string]any{"name": "webapp", "state": "query"})
	h.mustOK(q)
	if q.bool("changed") || q.str("active") != "blue" || q.str("previous") != "green" || len(q["history"].([]any)) != 5 {
		t.Fatalf("query: %v", q)
	}
}

func TestModuleGateFailureLeavesOldColour(t *testing.T) {
	h := newHarness(t)
	h.mustOK(h.run(args(map[string]any{"active": "blue"})))
	socketBefore := h.unitFile("webapp-http.socket")
	h.healthy[Green] = false
	h.fake.JournalLines["webapp-green.service"] = []string{"webapp[42]: colour=green health broken on purpose"}
	h.fake.Reset()

	r := h.run(args(map[string]any{"active": "green"}))
	if !r.bool("failed") {
		t.Fatalf("gate failure not reported: %v", r)
	}
	msg := r.str("msg")
	for _, want := range []string{
		`flip of webapp to green failed at step "gate webapp-green.service: health gate before traffic moves"`,
		"health gate http http://127.0.0.1:9002/healthz: no 2 consecutive successes within 500ms; last attempt: status 500",
		"Then: stop webapp-green-http.socket: the new colour failed: its socket stops listening; stop webapp-green.service",
		"release blue: the kernel spreads new connections by hash again",
		"webapp-blue.service stays active and was not touched; new connections stayed on it (steered) while webapp-green.service was gated, and webapp-green.service is stopped: traffic never moved",
		"Last journal lines of webapp-green.service:\nwebapp[42]: colour=green health broken on purpose",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("msg lacks %q:\n%s", want, msg)
		}
	}
	if want := []string{"steer hold 1001", "start webapp-green-http.socket", "start webapp-green.service", "stop webapp-green-http.socket",
		"stop webapp-green.service", "steer release 1001", "journal webapp-green.service"}; !reflect.DeepEqual(h.fake.Calls, want) {
		t.Fatalf("calls %q: the old colour must not be touched", h.fake.Calls)
	}
	if b, g := h.unit("webapp-blue.service"), h.unit("webapp-green.service"); !running(b) || !b.Enabled() || running(g) || g.Enabled() {
		t.Fatalf("blue %+v green %+v", b, g)
	}
	if h.unitFile("webapp-http.socket") != socketBefore {
		t.Fatal("the socket was rewritten although the gate failed")
	}
	if r.str("active") != "blue" || r.bool("flipped") || r.bool("changed") != true {
		t.Fatalf("result %v", r)
	}
	gate, _ := r["gate"].(map[string]any)
	if gate["passed"] != false {
		t.Fatalf("gate %v", gate)
	}
	st := h.state()
	last := st.History[len(st.History)-1]
	if st.Active != Blue || last.Outcome != "failed" || !strings.Contains(last.Reason, "no 2 consecutive successes") {
		t.Fatalf("state %+v", st)
	}
	// The next run retries the flip (it is still asked for) and succeeds
	// once green is fixed; a unit left failed is reset first.
	h.healthy[Green] = true
	h.fake.Set("webapp-green.service", "failed", false)
	h.fake.Reset()
	h.mustOK(h.run(args(map[string]any{"active": "green"})))
	if i := indexOf(h.fake.Calls, "start webapp-green.service"); i < 1 || h.fake.Calls[i-1] != "reset-failed webapp-green.service" {
		t.Fatalf("retry calls %q", h.fake.Calls)
	}
	if h.state().Active != Green {
		t.Fatal("retry did not flip")
	}
}

func TestModuleCrashOnStartAbortsGate(t *testing.T) {
	h := newHarness(t)
	h.mustOK(h.run(args(map[string]any{"active": "blue"})))
	h.fake.DiesAfterStart["webapp-green.service"] = true
	a := args(map[string]any{"active": "green"})
	a["health"].(map[string]any)["timeout"] = 30
	start := time.Now()
	r := h.run(a)
	if !r.bool("failed") || !strings.Contains(r.str("msg"), "aborted: webapp-green.service is failed (failed), result exit-code, exit status 2") {
		t.Fatalf("crash on start: %v", r.str("msg"))
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("a crashed unit must end the gate at once, not after its 30s timeout")
	}
	if !running(h.unit("webapp-blue.service")) {
		t.Fatal("blue stopped")
	}
}

func TestModuleFailureWhenTheOldColourWasDown(t *testing.T) {
	h := newHarness(t)
	h.mustOK(h.run(args(map[string]any{"active": "blue"})))
	h.fake.Set("webapp-blue.service", "failed", true)
	h.healthy[Green] = false
	r := h.run(args(map[string]any{"active": "green"}))
	if !r.bool("failed") || !strings.Contains(r.str("msg"), "webapp-blue.service, the active colour, was not running and was not touched") {
		t.Fatalf("%v", r.str("msg"))
	}
	if st := h.unit("webapp-blue.service"); st.ActiveState != "failed" || !st.Enabled() {
		t.Fatalf("blue was touched: %+v", st)
	}
}

func TestModuleStartJobFailure(t *testing.T) {
	h := newHarness(t)
	h.mustOK(h.run(args(map[string]any{"active": "blue"})))
	h.fake.StartResult["webapp-green.service"] = "timeout"
	r := h.run(args(map[string]any{"active": "green"}))
	if !r.bool("failed") || !strings.Contains(r.str("msg"), `start job for webapp-green.service finished with result "timeout"`) {
		t.Fatalf("%v", r.str("msg"))
	}
	if r["gate"] != nil {
		t.Fatal("no gate ran")
	}
}

func TestModuleExclusiveReportsDowntimeAndRestoresOld(t *testing.T) {
	h := newHarness(t)
	ex := map[string]any{"strategy": "exclusive", "sockets": nil}
	a := args(ex)
	a["active"] = "blue"
	h.mustOK(h.run(a))
	a["active"] = "green"
	r := h.run(a)
	h.mustOK(r)
	tm, _ := r["timings_ms"].(map[string]any)
	if _, ok := tm["downtime"]; !ok {
		t.Fatalf("exclusive flip must report downtime: %v", tm)
	}
	h.healthy[Blue] = false
	h.fake.Reset()
	a["active"] = "blue"
	r = h.run(a)
	if !r.bool("failed") || !strings.Contains(r.str("msg"), "webapp-green.service was started again and stays active") {
		t.Fatalf("%v", r.str("msg"))
	}
	if want := []string{"stop webapp-green.service", "start webapp-blue.service", "stop webapp-blue.service", "start webapp-green.service", "journal webapp-blue.service"}; !reflect.DeepEqual(h.fake.Calls, want) {
		t.Fatalf("calls %q", h.fake.Calls)
	}
	if !running(h.unit("webapp-green.service")) {
		t.Fatal("green was not restored")
	}
}

func TestModuleCheckModePredictsRealRun(t *testing.T) {
	h := newHarness(t)
	steps := func(r result) []any { s, _ := r["steps"].([]any); return s }
	for _, a := range []map[string]any{
		args(map[string]any{"active": "blue"}),
		args(map[string]any{"active": "blue"}),
		args(map[string]any{"active": "green"}),
		args(map[string]any{"action": "rollback"}),
	} {
		h.fake.Reset()
		filesBefore := listFiles(t, h.root)
		check := h.run(a, "check_mode", "diff")
		h.mustOK(check)
		if len(h.fake.Mutating()) != 0 || !reflect.DeepEqual(listFiles(t, h.root), filesBefore) {
			t.Fatalf("check mode changed something: calls %q", h.fake.Calls)
		}
		real := h.run(a)
		h.mustOK(real)
		for _, k := range []string{"changed", "active", "previous", "flipped", "action"} {
			if !reflect.DeepEqual(check[k], real[k]) {
				t.Errorf("%v: check mode predicted %s=%v, the real run gave %v", a["active"], k, check[k], real[k])
			}
		}
		if !reflect.DeepEqual(steps(check), steps(real)) {
			t.Errorf("check mode steps %q\nreal steps %q", steps(check), steps(real))
		}
		if check.bool("changed") && !strings.HasPrefix(check.str("msg"), "would have ") {
			t.Errorf("check msg %q", check.str("msg"))
		}
	}
}

func TestModuleCheckModeDiff(t *testing.T) {
	h := newHarness(t)
	r := h.run(args(map[string]any{"active": "blue"}), "check_mode", "diff")
	d, _ := r["diff"].([]any)
	if len(d) != 5 {
		t.Fatalf("want the active colour and four unit files in the diff, got %v", r["diff"])
	}
	first := d[0].(map[string]any)
	if first["before"] != "active: none\n" || first["after"] != "active: blue\n" {
		t.Fatalf("active diff %v", first)
	}
	sock := d[1].(map[string]any)
	if sock["before"] != "" || !strings.Contains(sock["after"].(string), "Service=webapp-blue.service") || !strings.HasSuffix(sock["before_header"].(string), "units/webapp-blue-http.socket") {
		t.Fatalf("socket diff %v", sock)
	}
	h.mustOK(h.run(args(map[string]any{"active": "blue"})))
	r = h.run(args(map[string]any{"active": "green"}), "check_mode", "diff")
	// A flip changes no file, only the active colour: one diff, which the
	// runtime prints as a single object.
	if active, _ := r["diff"].(map[string]any); active["before"] != "active: blue\n" || active["after"] != "active: green\n" {
		t.Fatalf("flip diff %v", r["diff"])
	}
}

func listFiles(t *testing.T, root string) []string {
	var out []string
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			b, _ := os.ReadFile(p)
			out = append(out, p+"="+string(b))
		}
		return nil
	})
	return out
}

func TestModuleBadInputWritesNothing(t *testing.T) {
	for name, a := range map[string]map[string]any{
		"injection":     args(map[string]any{"active": "blue", "environment": map[string]any{"A": "1\nExecStartPre=/bin/sh -c id"}}),
		"bad name":      args(map[string]any{"active": "blue", "name": "../../etc/passwd"}),
		"bad colour":    args(map[string]any{"active": "purple"}),
		"relative path": args(map[string]any{"active": "blue", "working_directory": "opt/webapp"}),
		"both":          args(map[string]any{"active": "blue", "action": "flip"}),
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			before := listFiles(t, h.root)
			r := h.run(a)
			if !r.bool("failed") || r.str("msg") == "" {
				t.Fatalf("%v", r)
			}
			if h.connects.Load() != 0 || len(h.fake.Calls) != 0 || !reflect.DeepEqual(listFiles(t, h.root), before) {
				t.Fatalf("bad input reached systemd or the disk: %q", h.fake.Calls)
			}
		})
	}
	h := newHarness(t)
	r := h.run(args(map[string]any{"active": "blue", "environment": map[string]any{"A": "1\nExecStartPre=/bin/sh"}}))
	if want := "invalid options, nothing was changed: environment.A contains a control character ('\\n' at byte 1): unit file values must be one line"; r.str("msg") != want {
		t.Fatalf("msg %q\nwant %q", r.str("msg"), want)
	}
}

func TestModuleLockTimeout(t *testing.T) {
	h := newHarness(t)
	lk, err := lock.Acquire(context.Background(), filepath.Join(h.env.lockDir, "bluegreen-webapp.lock"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Release()
	r := h.run(args(map[string]any{"active": "blue", "lock_timeout": 0.2}))
	if !r.bool("failed") || !strings.Contains(r.str("msg"), "another run is changing webapp (a flip in progress?): gave up after lock_timeout=200ms") {
		t.Fatalf("%v", r.str("msg"))
	}
	if len(h.fake.Mutating()) != 0 {
		t.Fatalf("calls without the lock: %q", h.fake.Calls)
	}
	// Check mode and query do not wait for the lock.
	if r := h.run(args(map[string]any{"active": "blue"}), "check_mode"); r.bool("failed") {
		t.Fatalf("check mode: %v", r.str("msg"))
	}
}

func TestModuleReuseportMigrate(t *testing.T) {
	h := newHarness(t)
	a := args(map[string]any{"strategy": "reuseport", "sockets": nil, "active": "blue"})
	h.mustOK(h.run(a))
	if b, _ := os.ReadFile(h.env.procMigrate); string(b) != "1\n" {
		t.Fatalf("tcp_migrate_req not set: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(h.env.sysctlDir, sysctlConfName)); string(b) != sysctlContent {
		t.Fatalf("sysctl.d file: %q", b)
	}
	if r := h.run(a); r.bool("changed") {
		t.Fatalf("second run: %v", r["steps"])
	}

	// Where /proc/sys is read-only (a container), the plan refuses, in check
	// mode as in a real run, clearly, and writes nothing at all (no state
	// file, no history entry, no unit).
	h = newHarness(t)
	h.env.procWritable = func(path string) error {
		return &os.PathError{Op: "access", Path: path, Err: syscall.EROFS}
	}
	before := listFiles(t, h.root)
	for _, mode := range []string{"check_mode", ""} {
		var r result
		if mode == "" {
			r = h.run(a)
		} else {
			r = h.run(a, mode)
		}
		if !r.bool("failed") || !strings.Contains(r.str("msg"), "cannot set net.ipv4.tcp_migrate_req=1 (access "+h.env.procMigrate+": read-only file system): where /proc/sys is read-only") ||
			!strings.Contains(r.str("msg"), "reuseport_migrate: false") {
			t.Fatalf("%s: %v", mode, r.str("msg"))
		}
		if !reflect.DeepEqual(listFiles(t, h.root), before) || len(h.fake.Mutating()) != 0 || h.state() != nil {
			t.Fatalf("%s: the refused run changed something: %q", mode, h.fake.Calls)
		}
	}
	a["reuseport_migrate"] = false
	h.mustOK(h.run(a))

	// Should the write still fail (the check passed, the write did not),
	// the run fails first, clearly, and writes nothing but the attempt.
	a["reuseport_migrate"] = true
	h = newHarness(t)
	h.env.writeProc = func(string, []byte) error {
		return &os.PathError{Op: "open", Path: "/proc/sys/net/ipv4/tcp_migrate_req", Err: syscall.EROFS}
	}
	before = listFiles(t, h.root)
	r := h.run(a)
	if st := h.state(); st == nil || st.History[0].Outcome != "failed" || st.Active != "" {
		t.Fatalf("state after the failed deploy: %+v", st)
	}
	if !r.bool("failed") || !strings.Contains(r.str("msg"), "cannot set net.ipv4.tcp_migrate_req=1 (open /proc/sys/net/ipv4/tcp_migrate_req: read-only file system): where /proc/sys is read-only") ||
		!strings.Contains(r.str("msg"), "reuseport_migrate: false") {
		t.Fatalf("%v", r.str("msg"))
	}
	// Only the attempt is recorded in the history (and the lock file stays).
	os.Remove(statePath(h.env.stateDir, "webapp"))
	os.Remove(filepath.Join(h.env.lockDir, "bluegreen-webapp.lock"))
	if !reflect.DeepEqual(listFiles(t, h.root), before) || len(h.fake.Mutating()) != 0 {
		t.Fatalf("the failed sysctl left changes: %q", h.fake.Calls)
	}
	a["reuseport_migrate"] = false
	h.mustOK(h.run(a))
}

// reuseportArgs are a reuseport webapp's arguments (tcp_migrate_req left
// alone: the harness's /proc file is a plain file).
func reuseportArgs(extra map[string]any) map[string]any {
	a := args(map[string]any{"strategy": "reuseport", "sockets": nil, "reuseport_migrate": false})
	for k, v := range extra {
		a[k] = v
	}
	return a
}

func TestModuleReuseportSteersTheFlip(t *testing.T) {
	h := newHarness(t)
	h.mustOK(h.run(reuseportArgs(map[string]any{"active": "blue"})))
	bluePID := h.unit("webapp-blue.service").MainPID
	h.fake.Reset()

	// Check mode lists the steering in the plan.
	r := h.run(reuseportArgs(map[string]any{"active": "green"}), "check_mode")
	h.mustOK(r)
	steps := fmt.Sprint(r["steps"])
	for _, want := range []string{"hold blue: new connections stay on the old colour's sockets", "move green: new connections go to the new colour", "release green:"} {
		if !strings.Contains(steps, want) {
			t.Errorf("check-mode steps lack %q: %s", want, steps)
		}
	}
	if len(h.fake.Mutating()) != 0 {
		t.Fatalf("check mode steered or changed: %q", h.fake.Calls)
	}

	r = h.run(reuseportArgs(map[string]any{"active": "green"}))
	h.mustOK(r)
	greenPID := h.unit("webapp-green.service").MainPID
	want := []string{
		fmt.Sprintf("steer hold %d", bluePID),
		"start webapp-green.service",
		fmt.Sprintf("steer move %d %d", bluePID, greenPID),
		"enable webapp-green.service", "disable webapp-blue.service", "reload",
		"stop webapp-blue.service",
		fmt.Sprintf("steer release %d", greenPID),
	}
	if !reflect.DeepEqual(h.fake.Mutating(), want) {
		t.Fatalf("calls\n got %q\nwant %q", h.fake.Mutating(), want)
	}
	if got := fmt.Sprint(r["steering"]); !strings.Contains(got, "hold: tcp 0.0.0.0:8080: held on") || !strings.Contains(got, "move: tcp 0.0.0.0:8080: moved") {
		t.Fatalf("steering %s", got)
	}
}

func TestModuleReuseportGateFailureTrafficNeverMoved(t *testing.T) {
	h := newHarness(t)
	h.mustOK(h.run(reuseportArgs(map[string]any{"active": "blue"})))
	bluePID := h.unit("webapp-blue.service").MainPID
	h.healthy[Green] = false
	h.fake.Reset()
	r := h.run(reuseportArgs(map[string]any{"active": "green"}))
	if !r.bool("failed") || !strings.Contains(r.str("msg"), "webapp-blue.service stays active and was not touched; new connections stayed on it (steered) while webapp-green.service was gated, and webapp-green.service is stopped: traffic never moved") {
		t.Fatalf("msg %s", r.str("msg"))
	}
	want := []string{fmt.Sprintf("steer hold %d", bluePID), "start webapp-green.service", "stop webapp-green.service",
		fmt.Sprintf("steer release %d", bluePID), "journal webapp-green.service"}
	if !reflect.DeepEqual(h.fake.Calls, want) {
		t.Fatalf("calls\n got %q\nwant %q", h.fake.Calls, want)
	}

	// Without steering, the message says the new colour shared the port.
	h.fake.Reset()
	r = h.run(reuseportArgs(map[string]any{"active": "green", "reuseport_steer": false}))
	if !r.bool("failed") || !strings.Contains(r.str("msg"), "webapp-green.service shared the port while it was gated") {
		t.Fatalf("msg %s", r.str("msg"))
	}
	for _, c := range h.fake.Calls {
		if strings.HasPrefix(c, "steer ") {
			t.Fatalf("reuseport_steer: false steered: %q", h.fake.Calls)
		}
	}
}

func TestModuleReuseportHoldFailureStartsNothing(t *testing.T) {
	h := newHarness(t)
	h.mustOK(h.run(reuseportArgs(map[string]any{"active": "blue"})))
	h.env.steer.(*fakeSteerer).holdErr = errors.New("holding new connections of tcp 0.0.0.0:8080 on the old colour: " + "the socket is a Multipath TCP socket")
	h.fake.Reset()
	r := h.run(reuseportArgs(map[string]any{"active": "green"}))
	msg := r.str("msg")
	if !r.bool("failed") || !strings.Contains(msg, `failed at step "hold blue:`) || !strings.Contains(msg, "Multipath TCP") ||
		!strings.Contains(msg, "reuseport_steer: false flips without steering") {
		t.Fatalf("msg %s", msg)
	}
	for _, c := range h.fake.Calls {
		if strings.HasPrefix(c, "start ") || strings.HasPrefix(c, "stop ") {
			t.Fatalf("a failed hold must start or stop nothing: %q", h.fake.Calls)
		}
	}
	if b := h.unit("webapp-blue.service"); !running(b) || h.state().Active != Blue {
		t.Fatalf("blue %+v", b)
	}
}

func TestModuleReuseportNoSteeringWhenBothRun(t *testing.T) {
	h := newHarness(t)
	h.mustOK(h.run(reuseportArgs(map[string]any{"active": "blue", "keep_warm": true})))
	h.fake.Reset()
	h.mustOK(h.run(reuseportArgs(map[string]any{"active": "green", "keep_warm": true})))
	for _, c := range h.fake.Calls {
		if strings.HasPrefix(c, "steer ") {
			t.Fatalf("keep_warm: the group's order is unknown, nothing may be steered: %q", h.fake.Calls)
		}
	}
}

func TestModuleAbsent(t *testing.T) {
	h := newHarness(t)
	h.mustOK(h.run(args(map[string]any{"active": "blue"})))
	r := h.run(map[string]any{"name": "webapp", "state": "absent"})
	h.mustOK(r)
	if !r.bool("changed") || h.unitFile("webapp-blue.service") != "" || h.unitFile("webapp-http.socket") != "" || h.state() != nil {
		t.Fatalf("absent: %v", r)
	}
	if r := h.run(map[string]any{"name": "webapp", "state": "absent"}); r.bool("changed") {
		t.Fatalf("absent twice: %v", r)
	}
}

// A state file that does not parse stops the run before anything changes,
// naming the file and what to do; the file is left as it was.
func TestModuleCorruptStateFile(t *testing.T) {
	h := newHarness(t)
	h.mustOK(h.run(args(map[string]any{"active": "blue"})))
	path := statePath(h.env.stateDir, "webapp")
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.fake.Reset()
	for _, a := range []map[string]any{args(map[string]any{"active": "green"}), {"name": "webapp", "state": "query"}} {
		r := h.run(a)
		if msg := r.str("msg"); !r.bool("failed") || !strings.Contains(msg, path+" is not valid JSON") || !strings.Contains(msg, "(fix or remove it)") {
			t.Fatalf("%v: msg %q", a, msg)
		}
	}
	if b, _ := os.ReadFile(path); string(b) != "{not json" {
		t.Fatalf("state file changed: %q", b)
	}
	if len(h.fake.Calls) > 0 {
		t.Fatalf("a run with a corrupt state file acted on systemd: %q", h.fake.Calls)
	}
}

// A run connects to systemd once (Open), and the units a flip reports are
// those it left, read over that connection.
func TestModuleOneConnectionPerRun(t *testing.T) {
	h := newHarness(t)
	h.mustOK(h.run(args(map[string]any{"active": "blue"})))
	h.connects.Store(0)
	r := h.run(args(map[string]any{"active": "green"}))
	h.mustOK(r)
	if n := h.connects.Load(); n != 1 {
		t.Fatalf("a flip made %d connections to systemd, want 1", n)
	}
	units, _ := r["units"].(map[string]any)
	green, _ := units["green"].(map[string]any)
	blue, _ := units["blue"].(map[string]any)
	if green["active_state"] != "active" || blue["active_state"] != "inactive" {
		t.Fatalf("units after the flip: %v", units)
	}
	h.connects.Store(0)
	h.mustOK(h.run(args(map[string]any{"active": "blue"}), "check_mode"))
	if n := h.connects.Load(); n != 1 {
		t.Fatalf("check mode made %d connections to systemd, want 1", n)
	}
}
