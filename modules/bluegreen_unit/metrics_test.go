package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chezlepro/sovereign/internal/metrics/promtooltest"
)

func TestRenderMetrics(t *testing.T) {
	st := &State{Name: "webapp", Active: Green,
		Counters: &Counters{Changes: 4, Failures: 1, GateFailures: 1, Rollbacks: 1},
		History:  []HistoryEntry{{Time: "2026-12-01T10:00:00.5Z", Action: "rollback", From: "blue", To: "green", Outcome: "success", DurationMS: 1250}}}
	b, err := renderMetrics(st, map[Colour]bool{Green: true}, false)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{
		`chezlepro_bluegreen_active_colour{colour="blue",service="webapp",unit="webapp-blue.service"} 0`,
		`chezlepro_bluegreen_active_colour{colour="green",service="webapp",unit="webapp-green.service"} 1`,
		`chezlepro_bluegreen_colour_running{colour="blue",service="webapp"} 0`,
		`chezlepro_bluegreen_colour_running{colour="green",service="webapp"} 1`,
		`chezlepro_bluegreen_keep_warm{service="webapp"} 0`,
		`chezlepro_bluegreen_changes_total{service="webapp"} 4`,
		`chezlepro_bluegreen_change_failures_total{service="webapp"} 1`,
		`chezlepro_bluegreen_gate_failures_total{service="webapp"} 1`,
		`chezlepro_bluegreen_rollbacks_total{service="webapp"} 1`,
		`chezlepro_bluegreen_last_change_success{action="rollback",service="webapp",to="green"} 1`,
		`chezlepro_bluegreen_last_change_duration_seconds{action="rollback",service="webapp",to="green"} 1.25`,
		`chezlepro_bluegreen_last_change_timestamp_seconds{action="rollback",service="webapp",to="green"} 1.7961192005e+09`,
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("missing %s in:\n%s", want, got)
		}
	}
	promtooltest.Check(t, b)

	// No history yet: no last_change series, counters at zero.
	b, err = renderMetrics(&State{Name: "webapp"}, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "last_change") || !strings.Contains(string(b), `chezlepro_bluegreen_changes_total{service="webapp"} 0`) {
		t.Errorf("fresh state:\n%s", b)
	}
	promtooltest.Check(t, b)
}

// metricValue returns the value of the sample line starting with prefix.
func metricValue(t *testing.T, file, prefix string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix+" ") {
			return strings.TrimPrefix(l, prefix+" ")
		}
	}
	t.Fatalf("no %s in:\n%s", prefix, b)
	return ""
}

func TestModuleMetricsAcrossFlips(t *testing.T) {
	h := newHarness(t)
	dir := h.env.metricsDir
	file := filepath.Join(dir, "chezlepro_bluegreen_unit_webapp.prom")

	// node_exporter not installed: nothing written, nothing created.
	h.mustOK(h.run(args(map[string]any{"active": "blue"})))
	if _, err := os.Stat(dir); err == nil {
		t.Fatal("the default metrics directory was created")
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}

	// Check mode writes nothing.
	r := h.run(args(map[string]any{"active": "green"}), "check_mode")
	h.mustOK(r)
	if _, err := os.Stat(file); err == nil {
		t.Fatal("check mode wrote metrics")
	}
	if mf, ok := r["metrics_file"]; !ok || mf != "" {
		t.Fatalf("check mode: metrics_file = %v (returned: %v), want \"\" (RETURN: always)", mf, ok)
	}

	r = h.run(args(map[string]any{"active": "green"}))
	h.mustOK(r)
	if r.str("metrics_file") != file {
		t.Fatalf("metrics_file = %q, want %q", r.str("metrics_file"), file)
	}
	active := `chezlepro_bluegreen_active_colour{colour="green",service="webapp",unit="webapp-green.service"}`
	success := `chezlepro_bluegreen_last_change_success{action="flip",service="webapp",to="green"}`
	if v := metricValue(t, file, active); v != "1" {
		t.Errorf("green active = %s", v)
	}
	if v := metricValue(t, file, success); v != "1" {
		t.Errorf("flip success = %s", v)
	}
	if v := metricValue(t, file, `chezlepro_bluegreen_changes_total{service="webapp"}`); v != "2" {
		t.Errorf("changes = %s, want 2 (deploy, flip)", v)
	}

	// A flip whose gate fails: the last change failed, green stays active.
	h.healthy[Blue] = false
	r = h.run(args(map[string]any{"active": "blue"}))
	if r.bool("failed") != true {
		t.Fatalf("gate failure did not fail: %v", r)
	}
	if v := metricValue(t, file, `chezlepro_bluegreen_last_change_success{action="flip",service="webapp",to="blue"}`); v != "0" {
		t.Errorf("failed flip success = %s", v)
	}
	if v := metricValue(t, file, active); v != "1" {
		t.Errorf("green active after failed flip = %s", v)
	}
	for prefix, want := range map[string]string{
		`chezlepro_bluegreen_gate_failures_total{service="webapp"}`:           "1",
		`chezlepro_bluegreen_change_failures_total{service="webapp"}`:         "1",
		`chezlepro_bluegreen_colour_running{colour="blue",service="webapp"}`:  "0",
		`chezlepro_bluegreen_colour_running{colour="green",service="webapp"}`: "1",
	} {
		if v := metricValue(t, file, prefix); v != want {
			t.Errorf("%s = %s, want %s", prefix, v, want)
		}
	}

	// A rollback (to blue, the previous colour) once blue is healthy again.
	h.healthy[Blue] = true
	h.mustOK(h.run(map[string]any{"name": "webapp", "action": "rollback"}))
	if v := metricValue(t, file, `chezlepro_bluegreen_last_change_success{action="rollback",service="webapp",to="blue"}`); v != "1" {
		t.Errorf("rollback success = %s", v)
	}
	if v := metricValue(t, file, `chezlepro_bluegreen_rollbacks_total{service="webapp"}`); v != "1" {
		t.Errorf("rollbacks = %s", v)
	}
	b, _ := os.ReadFile(file)
	promtooltest.Check(t, b)

	// The service removed: its metrics go with it.
	h.mustOK(h.run(map[string]any{"name": "webapp", "state": "absent"}))
	if _, err := os.Stat(file); err == nil {
		t.Error("metrics of a removed service left behind")
	}
}

func TestModuleMetricsDirMissingRefusedFirst(t *testing.T) {
	h := newHarness(t)
	missing := filepath.Join(h.root, "no-such-dir")
	r := h.run(args(map[string]any{"active": "blue", "metrics_dir": missing}))
	if !r.bool("failed") || !strings.Contains(r.str("msg"), "metrics_dir "+missing+" does not exist") ||
		!strings.Contains(r.str("msg"), "nothing was changed") {
		t.Fatalf("got %v", r)
	}
	if h.unitFile("webapp-blue.service") != "" || len(h.fake.Calls) != 0 {
		t.Errorf("something was done before the refusal: %v", h.fake.Calls)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("metrics_dir was created")
	}
}

func TestCountersAcrossRuns(t *testing.T) {
	c := &config{name: "webapp", strategy: "socket"}
	// The previous run was killed mid-flip (pending), after one deploy.
	prev := &State{Name: "webapp", Active: Green, Pending: &Pending{Action: "flip", From: Blue, To: Green},
		Counters: &Counters{Changes: 1}}
	p := &plan{action: "rollback", current: Green, target: Blue}
	pending := withPending(prev, c, p, time.Now())
	st := nextState(prev, c, p, outcome{ok: false, gateFailed: true, activeNow: Green}, 20)
	want := Counters{Changes: 3, Failures: 2, GateFailures: 1, Rollbacks: 1}
	if *st.Counters != want {
		t.Errorf("counters %+v, want %+v (deploy, the interrupted flip, this failed rollback)", *st.Counters, want)
	}
	if *pending.Counters != (Counters{Changes: 2, Failures: 1}) {
		t.Errorf("while pending: %+v, want the interrupted flip counted", *pending.Counters)
	}
	if *prev.Counters != (Counters{Changes: 1}) {
		t.Errorf("the previous state's counters were changed: %+v", *prev.Counters)
	}
	// A run that changes no colour counts nothing.
	again := nextState(st, c, &plan{action: "converge", current: Green, target: Green}, outcome{ok: true, activeNow: Green}, 20)
	if *again.Counters != want {
		t.Errorf("converge changed the counters: %+v", *again.Counters)
	}
}
