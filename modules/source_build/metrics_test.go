package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chezlepro/sovereign/internal/metrics/promtooltest"
)

func TestRenderMetrics(t *testing.T) {
	m := &manifest{Name: "traefik", Version: "v3.1.0", Commit: "abc", Sha256: "ff", GoVersion: "go1.24.1",
		BuildTime: "2026-12-01T10:00:00.25Z", BuildDurationMS: 364000}
	for _, c := range []struct {
		rebuild *rebuildCheck
		want    []string
		absent  string
	}{
		{nil, []string{
			`chezlepro_source_build_artifact_info{commit="abc",go_version="go1.24.1",program="traefik",sha256="ff",version="v3.1.0"} 1`,
			`chezlepro_source_build_last_build_duration_seconds{program="traefik",version="v3.1.0"} 364`,
			`chezlepro_source_build_last_build_timestamp_seconds{program="traefik",version="v3.1.0"} 1.79611920025e+09`,
		}, "reproducible"},
		{&rebuildCheck{Reproducible: true}, []string{`chezlepro_source_build_reproducible{program="traefik",version="v3.1.0"} 1`}, ""},
		{&rebuildCheck{Reproducible: false}, []string{`chezlepro_source_build_reproducible{program="traefik",version="v3.1.0"} 0`}, ""},
	} {
		b, err := renderMetrics(m, c.rebuild)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range c.want {
			if !strings.Contains(string(b), w+"\n") {
				t.Errorf("missing %s in:\n%s", w, b)
			}
		}
		if c.absent != "" && strings.Contains(string(b), c.absent) {
			t.Errorf("%s exported though never rebuilt:\n%s", c.absent, b)
		}
		promtooltest.Check(t, b)
	}
}

func TestModuleMetrics(t *testing.T) {
	t.Parallel()
	m := newMirror(t)
	dir := t.TempDir()
	textfile := filepath.Join(dir, "textfile")
	os.Mkdir(textfile, 0o755)
	a := buildArgs(t, m, dir, "v1")
	a["metrics_dir"] = textfile

	c := mustSucceed(t, runModule(t, a, true))
	if ents, _ := os.ReadDir(textfile); len(ents) != 0 || c.str("metrics_file") != "" {
		t.Fatalf("check mode wrote metrics: %v", ents)
	}
	r := mustSucceed(t, runModule(t, a, false))
	file := filepath.Join(textfile, "chezlepro_source_build_"+r.str("name")+".prom")
	if r.str("metrics_file") != file {
		t.Fatalf("metrics_file = %q, want %q", r.str("metrics_file"), file)
	}
	read := func() string {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		promtooltest.Check(t, b)
		return string(b)
	}
	if got := read(); !strings.Contains(got, `sha256="`+r.str("sha256")+`"`) || strings.Contains(got, "reproducible") {
		t.Fatalf("after the first build:\n%s", got)
	}

	a["rebuild"] = true
	mustSucceed(t, runModule(t, a, false))
	if got := read(); !strings.Contains(got, `chezlepro_source_build_reproducible{program="`+r.str("name")+`",version="v1"} 1`) {
		t.Fatalf("after a reproducible rebuild:\n%s", got)
	}

	// A run that builds nothing still exports the last rebuild's outcome,
	// from the store's rebuilds.json (here made to say it differed).
	st := openStore(a["store"].(string), r.str("name"), r.str("repo"))
	if err := st.recordRebuild(r.str("key"), rebuildCheck{Previous: "00", Sha256: r.str("sha256"), Reproducible: false}); err != nil {
		t.Fatal(err)
	}
	a["rebuild"] = false
	mustSucceed(t, runModule(t, a, false))
	if got := read(); !strings.Contains(got, `chezlepro_source_build_reproducible{program="`+r.str("name")+`",version="v1"} 0`) {
		t.Fatalf("after a no-op run:\n%s", got)
	}
}

func TestModuleMetricsDirMissingRefused(t *testing.T) {
	t.Parallel()
	m := newMirror(t)
	dir := t.TempDir()
	a := buildArgs(t, m, dir, "v1")
	a["metrics_dir"] = filepath.Join(dir, "missing")
	mustFail(t, runModule(t, a, false), "metrics_dir "+filepath.Join(dir, "missing")+" does not exist")
	if _, err := os.Lstat(a["dest"].(string)); !os.IsNotExist(err) {
		t.Fatalf("dest created before the refusal (err %v)", err)
	}
}
