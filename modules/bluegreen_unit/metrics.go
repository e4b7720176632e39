package main

import (
	"time"

	"github.com/chezlepro/sovereign/internal/metrics"
)

// Counters count, across runs, what the bounded history forgets: kept in
// the state file and exported as Prometheus counters.
type Counters struct {
	Changes      uint64 `json:"changes"`       // attempted changes of the active colour
	Failures     uint64 `json:"failures"`      // attempts that failed or were interrupted
	GateFailures uint64 `json:"gate_failures"` // attempts stopped by the health gate
	Rollbacks    uint64 `json:"rollbacks"`     // rollbacks attempted
}

// count adds one attempt of action to k.
func (k *Counters) count(action string, ok, gateFailed bool) {
	k.Changes++
	if !ok {
		k.Failures++
	}
	if gateFailed {
		k.GateFailures++
	}
	if action == "rollback" {
		k.Rollbacks++
	}
}

// renderMetrics is the service's .prom file: what the state file says, and
// which colours were running at the end of the run. Pure.
func renderMetrics(st *State, running map[Colour]bool, keepWarm bool) ([]byte, error) {
	svc := metrics.Labels{"service": st.Name}
	with := func(k, v string) metrics.Labels {
		return metrics.Labels{"service": st.Name, k: v}
	}
	active := metrics.Family{Name: "chezlepro_bluegreen_active_colour", Type: "gauge",
		Help: "1 for the colour the service's state records as active, 0 for the other; unit is its systemd service."}
	up := metrics.Family{Name: "chezlepro_bluegreen_colour_running", Type: "gauge",
		Help: "1 when the colour's service was running at the end of the module's last run."}
	for _, c := range colours {
		l := with("colour", string(c))
		l["unit"] = serviceUnit(st.Name, c)
		active.Samples = append(active.Samples, metrics.Sample{Labels: l, Value: metrics.Bool(st.Active == c)})
		up.Samples = append(up.Samples, metrics.Sample{Labels: with("colour", string(c)), Value: metrics.Bool(running[c])})
	}
	k := st.Counters
	if k == nil {
		k = &Counters{}
	}
	counter := func(name, help string, v uint64) metrics.Family {
		return metrics.Family{Name: name, Type: "counter", Help: help, Samples: []metrics.Sample{{Labels: svc, Value: float64(v)}}}
	}
	fams := []metrics.Family{active, up,
		{Name: "chezlepro_bluegreen_keep_warm", Type: "gauge", Help: "1 when the idle colour is kept running (keep_warm): both colours running is then expected.",
			Samples: []metrics.Sample{{Labels: svc, Value: metrics.Bool(keepWarm)}}},
		counter("chezlepro_bluegreen_changes_total", "Changes of the active colour attempted (deploy, flip, rollback, start).", k.Changes),
		counter("chezlepro_bluegreen_change_failures_total", "Changes of the active colour that failed or were interrupted.", k.Failures),
		counter("chezlepro_bluegreen_gate_failures_total", "Changes stopped because the new colour failed its health gate.", k.GateFailures),
		counter("chezlepro_bluegreen_rollbacks_total", "Rollbacks attempted.", k.Rollbacks),
	}
	if n := len(st.History); n > 0 {
		last := st.History[n-1]
		l := with("action", last.Action)
		l["to"] = string(last.To)
		g := func(name, help string, v float64) metrics.Family {
			return metrics.Family{Name: name, Type: "gauge", Help: help, Samples: []metrics.Sample{{Labels: l, Value: v}}}
		}
		fams = append(fams,
			g("chezlepro_bluegreen_last_change_success", "1 when the last change of the active colour succeeded, 0 when it failed or was interrupted.", metrics.Bool(last.Outcome == "success")),
			g("chezlepro_bluegreen_last_change_duration_seconds", "How long the last change of the active colour took.", float64(last.DurationMS)/1000))
		if t, err := time.Parse(time.RFC3339Nano, last.Time); err == nil {
			fams = append(fams, g("chezlepro_bluegreen_last_change_timestamp_seconds", "When the last change of the active colour started, in seconds since the epoch.",
				float64(t.UnixMilli())/1000))
		}
	}
	return metrics.Render(fams)
}
