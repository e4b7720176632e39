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
	b, err := renderMetrics("/opt/webapp", []slotMetric{
		{Slot: "blue", Release: "webapp-v1-aaaa", Name: "webapp", Version: "v1", SHA256: "aa", StagedAt: time.Unix(1700000000, 500e6)},
		{Slot: "green", Release: "webapp-v2-bbbb"}, // record unreadable, time unknown
	})
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{
		`chezlepro_binary_stage_slot_info{name="webapp",release="webapp-v1-aaaa",root="/opt/webapp",sha256="aa",slot="blue",version="v1"} 1`,
		`chezlepro_binary_stage_slot_info{name="",release="webapp-v2-bbbb",root="/opt/webapp",sha256="",slot="green",version=""} 1`,
		`chezlepro_binary_stage_last_stage_timestamp_seconds{root="/opt/webapp",slot="blue"} 1.7000000005e+09`,
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("missing %s in:\n%s", want, got)
		}
	}
	if strings.Contains(got, `slot="green"} `) && strings.Contains(got, `timestamp_seconds{root="/opt/webapp",slot="green"}`) {
		t.Errorf("a stage time was invented for green:\n%s", got)
	}
	promtooltest.Check(t, b)
}

func TestMetricsName(t *testing.T) {
	for root, want := range map[string]string{"/opt/webapp": "opt_webapp", "/": "root", "/srv/a b/.x": "srv_a_b_.x"} {
		if got := metricsName(root); got != want {
			t.Errorf("metricsName(%q) = %q, want %q", root, got, want)
		}
	}
}

func TestModuleWritesMetrics(t *testing.T) {
	f := newFixture(t)
	dir := filepath.Join(f.dir, "textfile")
	os.Mkdir(dir, 0o755)
	file := filepath.Join(dir, "chezlepro_binary_stage_"+metricsName(f.root)+".prom")
	src, sum := f.src("app", "echo app 1.0")
	args := f.args(src, sum, "1.0", "blue")
	args["metrics_dir"] = dir

	r := mustOK(t, withCheck(args))
	if _, err := os.Stat(file); err == nil || r["metrics_file"] != "" {
		t.Fatalf("check mode wrote metrics (metrics_file %v)", r["metrics_file"])
	}
	r = mustOK(t, args)
	if r["metrics_file"] != file {
		t.Fatalf("metrics_file = %v, want %s", r["metrics_file"], file)
	}
	src2, sum2 := f.src("app2", "echo app 2.0")
	args2 := f.args(src2, sum2, "2.0", "green")
	args2["metrics_dir"] = dir
	mustOK(t, args2)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`slot="blue",version="1.0"} 1`, `slot="green",version="2.0"} 1`, `chezlepro_binary_stage_last_stage_timestamp_seconds{root="` + f.root + `",slot="green"}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("missing %s in:\n%s", want, b)
		}
	}
	promtooltest.Check(t, b)
}

func TestModuleMetricsDirMissingRefused(t *testing.T) {
	f := newFixture(t)
	src, sum := f.src("app", "echo app 1.0")
	args := f.args(src, sum, "1.0", "blue")
	args["metrics_dir"] = filepath.Join(f.dir, "missing")
	mustFail(t, args, "metrics_dir "+filepath.Join(f.dir, "missing")+" does not exist")
	if _, err := os.Lstat(f.root); !os.IsNotExist(err) {
		t.Fatalf("root created before the refusal (err %v)", err)
	}
}
