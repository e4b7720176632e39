package metrics

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chezlepro/sovereign/internal/metrics/promtooltest"
)

func TestRenderSortedAndEscaped(t *testing.T) {
	got, err := Render([]Family{
		{Name: "z_total", Help: "Zs.", Type: "counter", Samples: []Sample{{Value: 3}}},
		{Name: "a_info", Help: "Line\nbreak \\ here.", Type: "gauge", Samples: []Sample{
			{Labels: Labels{"version": `v"1"\x`, "name": "b"}, Value: 1},
			{Labels: Labels{"version": "v2", "name": "a"}, Value: 1},
		}},
		{Name: "n_seconds", Help: "N.", Type: "gauge", Samples: []Sample{{Value: 1.5}, {Labels: Labels{"k": "inf"}, Value: math.Inf(1)}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `# HELP a_info Line\nbreak \\ here.
# TYPE a_info gauge
a_info{name="a",version="v2"} 1
a_info{name="b",version="v\"1\"\\x"} 1
# HELP n_seconds N.
# TYPE n_seconds gauge
n_seconds 1.5
n_seconds{k="inf"} +Inf
# HELP z_total Zs.
# TYPE z_total counter
z_total 3
`
	if string(got) != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	promtooltest.Check(t, got)
}

func TestRenderRefusals(t *testing.T) {
	for name, fams := range map[string][]Family{
		"is not a valid Prometheus name":       {{Name: "1bad", Type: "gauge"}},
		"given twice":                          {{Name: "a", Type: "gauge"}, {Name: "a", Type: "gauge"}},
		"is not gauge or counter":              {{Name: "a", Type: "histogram"}},
		"is not a valid Prometheus label name": {{Name: "a", Type: "gauge", Samples: []Sample{{Labels: Labels{"__x": "1"}}}}},
		"sample a{k=\"v\"} 1 given twice": {{Name: "a", Type: "gauge", Samples: []Sample{
			{Labels: Labels{"k": "v"}, Value: 1}, {Labels: Labels{"k": "v"}, Value: 1}}}},
	} {
		if _, err := Render(fams); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%v: got %v, want an error saying %q", fams, err, name)
		}
	}
}

func TestResolve(t *testing.T) {
	root := t.TempDir()
	exists := filepath.Join(root, "textfile")
	os.Mkdir(exists, 0o755)
	file := filepath.Join(root, "file")
	os.WriteFile(file, nil, 0o644)
	missing := filepath.Join(root, "missing")

	for _, c := range []struct {
		given, def, dir, err string
	}{
		{"", exists, exists, ""},
		{"", missing, "", ""}, // default absent: write nothing
		{exists, missing, exists, ""},
		{missing, exists, "", "does not exist"},
		{file, exists, "", "is not a directory"},
		{"rel/dir", exists, "", "absolute, clean path"},
		{exists + "/../textfile", exists, "", "absolute, clean path"},
	} {
		got, err := Resolve(c.given, c.def)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Resolve(%q, %q): got %v, want error %q", c.given, c.def, err, c.err)
			}
			continue
		}
		if err != nil || got.Dir != c.dir {
			t.Errorf("Resolve(%q, %q) = %+v, %v; want %q", c.given, c.def, got, err, c.dir)
		}
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("Resolve created the missing directory")
	}
}

func TestPublish(t *testing.T) {
	dir := t.TempDir()
	tg := Target{Dir: dir}
	for i, c := range []struct {
		content string
		changed bool
	}{{"a 1\n", true}, {"a 1\n", false}, {"a 2\n", true}} {
		changed, err := Publish(tg, "x.prom", []byte(c.content))
		if err != nil || changed != c.changed {
			t.Fatalf("write %d: changed=%v err=%v, want changed=%v", i, changed, err, c.changed)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "x.prom")); string(b) != c.content {
			t.Fatalf("write %d: file holds %q", i, b)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "x.prom")); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644 (node_exporter reads it as its own user)", fi.Mode())
	}
	if changed, err := Publish(Target{}, "x.prom", []byte("a 1\n")); changed || err != nil {
		t.Errorf("no directory: changed=%v err=%v, want nothing written", changed, err)
	}
}

func TestFileName(t *testing.T) {
	if n, err := FileName("bluegreen_unit", "webapp"); err != nil || n != "chezlepro_bluegreen_unit_webapp.prom" {
		t.Errorf("got %q, %v", n, err)
	}
	for _, bad := range []string{"", "../x", "a/b", ".hidden", "a..b"} {
		if _, err := FileName("m", bad); err == nil {
			t.Errorf("FileName(%q) accepted", bad)
		}
	}
}
