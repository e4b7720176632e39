package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/chezlepro/sovereign/internal/fsutil"
	"github.com/chezlepro/sovereign/internal/metrics"
)

// rebuildCheck is the outcome of the last rebuild of one key (same commit,
// same recipe): whether it gave the same sha256. Kept in the store's
// rebuilds.json, so a later run that builds nothing still exports it.
type rebuildCheck struct {
	Time         string `json:"time"`
	Previous     string `json:"previous_sha256"`
	Sha256       string `json:"sha256"`
	Reproducible bool   `json:"reproducible"`
}

func (s store) rebuildsPath() string { return filepath.Join(s.RepoDir, "rebuilds.json") }

func (s store) readRebuilds() (map[string]rebuildCheck, error) {
	m := map[string]rebuildCheck{}
	found, err := fsutil.ReadJSON(s.rebuildsPath(), &m)
	if found && err != nil {
		return nil, fmt.Errorf("%w (remove it: it only feeds the metrics)", err)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// recordRebuild adds a rebuild's outcome; call it under the store lock.
func (s store) recordRebuild(key string, c rebuildCheck) error {
	m, err := s.readRebuilds()
	if err != nil {
		return err
	}
	m[key] = c
	return fsutil.WriteJSON(s.rebuildsPath(), m, 0o644)
}

// renderMetrics is the program's .prom file: the artifact the work tree is
// at, how long its build took and when, and whether its last rebuild gave
// the same sha256 (rebuild nil: never rebuilt). Pure.
func renderMetrics(m *manifest, rebuild *rebuildCheck) ([]byte, error) {
	l := metrics.Labels{"program": m.Name, "version": m.Version}
	one := func(name, typ, help string, v float64) metrics.Family {
		return metrics.Family{Name: name, Type: typ, Help: help, Samples: []metrics.Sample{{Labels: l, Value: v}}}
	}
	fams := []metrics.Family{
		{Name: "chezlepro_source_build_artifact_info", Type: "gauge",
			Help: "Always 1; the labels say which artifact the program's work tree was last built to.",
			Samples: []metrics.Sample{{Value: 1, Labels: metrics.Labels{"program": m.Name, "version": m.Version,
				"commit": m.Commit, "sha256": m.Sha256, "go_version": m.GoVersion}}}},
		one("chezlepro_source_build_last_build_duration_seconds", "gauge", "How long the build of that artifact took.",
			float64(m.BuildDurationMS)/1000),
	}
	if t, err := time.Parse(time.RFC3339Nano, m.BuildTime); err == nil {
		fams = append(fams, one("chezlepro_source_build_last_build_timestamp_seconds", "gauge",
			"When that artifact was built, in seconds since the epoch.", float64(t.UnixMilli())/1000))
	}
	if rebuild != nil {
		fams = append(fams, one("chezlepro_source_build_reproducible", "gauge",
			"1 when the last rebuild of the same commit and recipe gave the same sha256, 0 when it did not.",
			metrics.Bool(rebuild.Reproducible)))
	}
	return metrics.Render(fams)
}

// publishMetrics writes the program's metrics after a real run; nothing
// when the run ended with no artifact (m nil).
func publishMetrics(req *request, m *manifest) (string, error) {
	if req.metrics.Dir == "" || m == nil {
		return "", nil
	}
	rebuilds, err := req.store.readRebuilds()
	if err != nil {
		return "", err
	}
	var rb *rebuildCheck
	if c, ok := rebuilds[m.Key]; ok {
		rb = &c
	}
	file, err := metrics.FileName("source_build", m.Name)
	if err != nil {
		return "", err
	}
	b, err := renderMetrics(m, rb)
	if err != nil {
		return "", err
	}
	if _, err := metrics.Publish(req.metrics, file, b); err != nil {
		return "", err
	}
	return filepath.Join(req.metrics.Dir, file), nil
}
