// Package metrics renders Prometheus metrics in the text exposition format
// and publishes them as one .prom file per service or program in
// node_exporter's textfile directory, which node_exporter reads at every
// scrape. Rendering is pure; Publish is the one side effect.
package metrics

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/chezlepro/sovereign/internal/fsutil"
)

// DefaultDir is Debian's prometheus-node-exporter textfile directory
// (--collector.textfile.directory in /etc/default/prometheus-node-exporter).
const DefaultDir = "/var/lib/prometheus/node-exporter"

// Family is one metric name with its HELP, TYPE and samples.
type Family struct {
	Name    string
	Help    string
	Type    string // gauge or counter
	Samples []Sample
}

// Sample is one value with its labels.
type Sample struct {
	Labels Labels
	Value  float64
}

// Labels are label name/value pairs, rendered sorted by name.
type Labels map[string]string

var (
	nameRe  = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelRe = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	fileRe  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
)

// Render returns the families in the text format, families sorted by name
// and samples by labels, so the same values give the same bytes.
func Render(fams []Family) ([]byte, error) {
	fams = append([]Family(nil), fams...)
	sort.Slice(fams, func(i, j int) bool { return fams[i].Name < fams[j].Name })
	var b strings.Builder
	for i, f := range fams {
		if !nameRe.MatchString(f.Name) {
			return nil, fmt.Errorf("metric name %q is not a valid Prometheus name", f.Name)
		}
		if i > 0 && fams[i-1].Name == f.Name {
			return nil, fmt.Errorf("metric %s given twice", f.Name)
		}
		if f.Type != "gauge" && f.Type != "counter" {
			return nil, fmt.Errorf("metric %s: type %q is not gauge or counter", f.Name, f.Type)
		}
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", f.Name, escapeHelp(f.Help), f.Name, f.Type)
		lines := make([]string, 0, len(f.Samples))
		for _, s := range f.Samples {
			l, err := renderLabels(s.Labels)
			if err != nil {
				return nil, fmt.Errorf("metric %s: %w", f.Name, err)
			}
			lines = append(lines, f.Name+l+" "+formatValue(s.Value)+"\n")
		}
		sort.Strings(lines)
		for j := 1; j < len(lines); j++ {
			if lines[j-1] == lines[j] {
				return nil, fmt.Errorf("metric %s: sample %s given twice", f.Name, strings.TrimSpace(lines[j]))
			}
		}
		b.WriteString(strings.Join(lines, ""))
	}
	return []byte(b.String()), nil
}

func renderLabels(ls Labels) (string, error) {
	if len(ls) == 0 {
		return "", nil
	}
	names := make([]string, 0, len(ls))
	for n := range ls {
		if !labelRe.MatchString(n) || strings.HasPrefix(n, "__") {
			return "", fmt.Errorf("label name %q is not a valid Prometheus label name", n)
		}
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + `="` + escapeLabel(ls[n]) + `"`
	}
	return "{" + strings.Join(parts, ",") + "}", nil
}

var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }
func escapeHelp(s string) string  { return helpEscaper.Replace(s) }

func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// Bool is 1 for true, 0 for false.
func Bool(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Target is where a module publishes its metrics, decided before anything
// changes: Dir is "" when nothing is to be written.
type Target struct {
	Dir string
}

// Resolve decides the directory from the module's metrics_dir option
// (given, or "" when not given) and the default directory: not given, the
// default is used only when it exists (node_exporter is installed) and is
// never created; a given directory must exist.
func Resolve(given, def string) (Target, error) {
	dir, explicit := given, given != ""
	if !explicit {
		dir = def
	}
	if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir {
		return Target{}, fmt.Errorf("metrics_dir %q must be an absolute, clean path", dir)
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !explicit:
		return Target{}, nil
	case errors.Is(err, fs.ErrNotExist):
		return Target{}, fmt.Errorf("metrics_dir %s does not exist (create it, or leave metrics_dir out to use %s when node_exporter is installed)", dir, def)
	case err != nil:
		return Target{}, fmt.Errorf("metrics_dir: %w", err)
	case !fi.IsDir():
		return Target{}, fmt.Errorf("metrics_dir %s is not a directory", dir)
	}
	return Target{Dir: dir}, nil
}

// FileName is the .prom file of one service or program of a module:
// chezlepro_MODULE_NAME.prom. name must be a safe file name.
func FileName(module, name string) (string, error) {
	if !fileRe.MatchString(name) || strings.Contains(name, "..") {
		return "", fmt.Errorf("cannot name a metrics file after %q", name)
	}
	return "chezlepro_" + module + "_" + name + ".prom", nil
}

// Publish writes content atomically as file in t's directory (node_exporter
// never reads a torn file: it ignores the temporary name, which does not end
// in .prom). It reports whether the file changed; it writes nothing when t
// has no directory or the content is already there.
func Publish(t Target, file string, content []byte) (bool, error) {
	if t.Dir == "" {
		return false, nil
	}
	path := filepath.Join(t.Dir, file)
	if old, err := os.ReadFile(path); err == nil && string(old) == string(content) {
		return false, nil
	}
	if err := fsutil.WriteFileAtomic(path, content, 0o644); err != nil {
		return false, fmt.Errorf("write metrics: %w", err)
	}
	return true, nil
}

// Remove deletes file from t's directory (its service or program is gone),
// so no stale series outlives it.
func Remove(t Target, file string) error {
	if t.Dir == "" {
		return nil
	}
	err := os.Remove(filepath.Join(t.Dir, file))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove metrics: %w", err)
	}
	if err == nil {
		return fsutil.SyncDir(t.Dir)
	}
	return nil
}
