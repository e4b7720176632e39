package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/chezlepro/sovereign/internal/metrics"
)

// slotMetric is what one slot under root points at, for the metrics.
type slotMetric struct {
	Slot, Release         string
	Name, Version, SHA256 string    // from the release's record; "" when unreadable
	StagedAt              time.Time // when the slot last moved (history); zero when unknown
}

// renderMetrics is root's .prom file: one _info series per slot saying
// which release and version it points at, and when it last moved. Pure.
func renderMetrics(root string, slots []slotMetric) ([]byte, error) {
	info := metrics.Family{Name: "chezlepro_binary_stage_slot_info", Type: "gauge",
		Help: "Always 1; the labels say which release (program name, version, sha256) the slot points at."}
	staged := metrics.Family{Name: "chezlepro_binary_stage_last_stage_timestamp_seconds", Type: "gauge",
		Help: "When the slot was last pointed at a release by binary_stage, in seconds since the epoch."}
	for _, sl := range slots {
		info.Samples = append(info.Samples, metrics.Sample{Value: 1, Labels: metrics.Labels{
			"root": root, "slot": sl.Slot, "release": sl.Release, "name": sl.Name, "version": sl.Version, "sha256": sl.SHA256}})
		if !sl.StagedAt.IsZero() {
			staged.Samples = append(staged.Samples, metrics.Sample{Labels: metrics.Labels{"root": root, "slot": sl.Slot},
				Value: float64(sl.StagedAt.UnixMilli()) / 1000})
		}
	}
	return metrics.Render([]metrics.Family{info, staged})
}

var unsafeFileChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// metricsName names root's metrics file: its path with / as _
// (/opt/webapp: chezlepro_binary_stage_opt_webapp.prom).
func metricsName(root string) string {
	n := unsafeFileChars.ReplaceAllString(strings.Trim(root, "/"), "_")
	n = strings.TrimLeft(n, "._-")
	if n == "" {
		n = "root"
	}
	return n
}

// slotMetrics reads what every slot under root points at (observed after
// the run) and when it last moved (the history).
func slotMetrics(s *spec, o *observed) []slotMetric {
	var out []slotMetric
	for _, sl := range o.Slots {
		m := slotMetric{Slot: sl.Name, Release: sl.Release}
		if meta, err := readMeta(filepath.Join(s.ReleasesDir, sl.Release)); err == nil && meta != nil {
			m.Name, m.Version, m.SHA256 = meta.Name, meta.Version, meta.SHA256
		}
		for i := len(o.History) - 1; i >= 0; i-- {
			if h := o.History[i]; h.Slot == sl.Name && h.Release == sl.Release {
				if t, err := time.Parse(time.RFC3339, h.At); err == nil {
					m.StagedAt = t
				}
				break
			}
		}
		out = append(out, m)
	}
	return out
}

// publishMetrics writes root's metrics after a real run. The staging stands
// whatever happens here: a failure is a warning.
func publishMetrics(mt metrics.Target, s *spec) (string, error) {
	if mt.Dir == "" {
		return "", nil
	}
	o, err := observe(s)
	if err != nil {
		return "", err
	}
	file, err := metrics.FileName("binary_stage", metricsName(s.Root))
	if err != nil {
		return "", err
	}
	b, err := renderMetrics(s.Root, slotMetrics(s, o))
	if err != nil {
		return "", err
	}
	if _, err := metrics.Publish(mt, file, b); err != nil {
		return "", err
	}
	return filepath.Join(mt.Dir, file), nil
}
