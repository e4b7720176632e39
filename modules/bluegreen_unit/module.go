package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/chezlepro/sovereign/internal/ansible"
	"github.com/chezlepro/sovereign/internal/health"
	"github.com/chezlepro/sovereign/internal/lock"
	"github.com/chezlepro/sovereign/internal/metrics"
	"github.com/chezlepro/sovereign/internal/reuseport"
	"github.com/chezlepro/sovereign/internal/systemd"
)

// env is what the module touches on the machine, injected so unit tests run
// against a temporary directory, the systemd fake and scripted probes.
type env struct {
	connect     func(ctx context.Context) (systemd.Manager, error)
	unitDir     string
	stateDir    string
	lockDir     string
	sysctlDir   string
	procMigrate string
	// writeProc writes a /proc/sys file (in place: it cannot be renamed over).
	writeProc func(path string, data []byte) error
	// procWritable says whether writeProc could write that file (nil: yes),
	// so a read-only /proc/sys is refused at plan time, before anything.
	procWritable func(path string) error
	prober       func(health.Check) health.Prober
	steer        steerer
	now          func() time.Time
	sleep        func(ctx context.Context, d time.Duration) error
	// metricsDir is where metrics go when metrics_dir is not given, if it
	// exists.
	metricsDir string
}

func realEnv() env {
	return env{
		connect:     func(ctx context.Context) (systemd.Manager, error) { return systemd.Connect(ctx) },
		unitDir:     "/etc/systemd/system",
		stateDir:    "/var/lib/chezlepro-sovereign/bluegreen",
		lockDir:     lock.RunDir(), // root's own, not the world-writable /run/lock
		sysctlDir:   "/etc/sysctl.d",
		procMigrate: "/proc/sys/net/ipv4/tcp_migrate_req",
		writeProc:   func(path string, data []byte) error { return os.WriteFile(path, data, 0o644) },
		procWritable: func(path string) error {
			if err := syscall.Access(path, 2 /* W_OK */); err != nil {
				return &os.PathError{Op: "access", Path: path, Err: err}
			}
			return nil
		},
		prober:     func(c health.Check) health.Prober { return c.Prober() },
		steer:      kernelSteerer{proc: reuseport.Proc{Root: "/proc"}},
		now:        time.Now,
		sleep:      sleepCtx,
		metricsDir: metrics.DefaultDir,
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func module() ansible.Module[Options] { return newModule(realEnv()) }

func newModule(e env) ansible.Module[Options] {
	return ansible.Module[Options]{
		Name:              "bluegreen_unit",
		SupportsCheckMode: true,
		Run: func(actx *ansible.Context, o *Options) (*ansible.Result, error) {
			return run(actx, e, o)
		},
	}
}

// configFor resolves the definition this run applies (the given one, or
// the one recorded at the last apply) and validates it.
func configFor(e env, o *Options) (*config, error) {
	if o.State == "present" && checkName(o.Name) == nil {
		st, err := readState(statePath(e.stateDir, o.Name))
		if err != nil {
			return nil, err
		}
		var recorded json.RawMessage
		if st != nil {
			recorded = st.Definition
		}
		if o, err = effectiveOptions(o, recorded); err != nil {
			return nil, err
		}
	}
	c, err := newConfig(o)
	if err != nil {
		return nil, err
	}
	if o.State == "present" {
		c.definition, err = definitionOf(o)
	}
	return c, err
}

// budget bounds a whole run: waiting for the lock, starting, gating and
// stopping, with a margin for daemon-reloads.
func budget(c *config) time.Duration {
	d := c.lockTimeout + c.service.startTimeout + 2*c.service.drainTimeout + c.stopDelay + 2*time.Minute
	for _, cc := range c.colour {
		d += cc.gate.Timeout
	}
	return d
}

func run(actx *ansible.Context, e env, o *Options) (*ansible.Result, error) {
	c, err := configFor(e, o)
	if err != nil {
		return nil, fmt.Errorf("invalid options, nothing was changed: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	mt, err := metrics.Resolve(string(o.MetricsDir), e.metricsDir)
	if err != nil {
		return nil, fmt.Errorf("invalid options, nothing was changed: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), budget(c))
	defer cancel()
	mgr, err := e.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer mgr.Close()

	obs, err := observe(ctx, e, mgr, c)
	if err != nil {
		return nil, err
	}
	p, err := makePlan(c, obs)
	if err != nil {
		return nil, err
	}
	if actx.CheckMode || c.state == "query" {
		return report(actx, e, c, obs, p, nil, nil, obs.units), nil
	}
	if !(p.changes() || p.writeState) {
		return publish(actx, e, c, mt, obs.state, obs.units, report(actx, e, c, obs, p, nil, nil, obs.units)), nil
	}

	// Work to do: take the service's lock, then look and plan again, since
	// another run may have flipped while we waited.
	lockPath := filepath.Join(e.lockDir, "bluegreen-"+c.name+".lock")
	lk, err := lock.Acquire(ctx, lockPath, c.lockTimeout)
	if err != nil {
		if errors.Is(err, lock.ErrTimeout) {
			return nil, fmt.Errorf("another run is changing %s (a flip in progress?): gave up after lock_timeout=%s: %w", c.name, c.lockTimeout, err)
		}
		return nil, err
	}
	defer lk.Release()
	if obs, err = observe(ctx, e, mgr, c); err != nil {
		return nil, err
	}
	if p, err = makePlan(c, obs); err != nil {
		return nil, err
	}
	if !(p.changes() || p.writeState) {
		return publish(actx, e, c, mt, obs.state, obs.units, report(actx, e, c, obs, p, nil, nil, obs.units)), nil
	}
	if c.state == "present" && p.records() {
		if err := writeState(statePath(e.stateDir, c.name), withPending(obs.state, c, p, e.now())); err != nil {
			return nil, fmt.Errorf("nothing was changed: recording the %s before it starts failed: %w", p.action, err)
		}
	}
	a := apply(ctx, e, mgr, c, p)
	var st *State
	if c.state == "present" {
		oc := outcome{ok: a.err == nil, started: a.startedAt, duration: time.Duration(a.timings["total"]) * time.Millisecond,
			targetSHA: obs.binSHA[p.target], targetRun: a.targetRun, activeNow: p.target, previousTo: p.previous,
			gateFailed: a.failed != nil && a.failed.kind == stepGate}
		if a.err != nil {
			oc.reason = a.err.Error()
			oc.activeNow, oc.previousTo = p.current, ""
		}
		st = nextState(obs.state, c, p, oc, c.historySize)
		if werr := writeState(statePath(e.stateDir, c.name), st); werr != nil {
			if a.err == nil {
				a.err = werr
			} else {
				a.compensation = append(a.compensation, "writing the state file FAILED: "+werr.Error())
			}
		}
	}
	statuses := freshStatuses(e, obs)
	res := publish(actx, e, c, mt, st, statuses, report(actx, e, c, obs, p, a, st, statuses))
	if a.err != nil {
		return res, failure(c, p, a)
	}
	return res, nil
}

// failure is the task's message when a step failed.
func failure(c *config, p *plan, a *applied) error {
	var b strings.Builder
	what := p.action + " of " + c.name
	if p.target != "" {
		what += " to " + string(p.target)
	}
	fmt.Fprintf(&b, "%s failed at step %q: %v", what, a.failed.String(), a.err)
	if len(a.compensation) > 0 {
		fmt.Fprintf(&b, ". Then: %s", strings.Join(a.compensation, "; "))
	}
	if (a.failed.kind == stepStart || a.failed.kind == stepGate) && p.current != "" && p.flip {
		old := serviceUnit(c.name, p.current)
		switch {
		case !p.oldRunning:
			fmt.Fprintf(&b, ". %s, the active colour, was not running and was not touched", old)
		case c.strategy == "exclusive":
			fmt.Fprintf(&b, ". %s was started again and stays active", old)
		case held(a):
			fmt.Fprintf(&b, ". %s stays active and was not touched; new connections stayed on it (steered) while %s was gated, and %s is stopped: traffic never moved",
				old, serviceUnit(c.name, p.target), serviceUnit(c.name, p.target))
		default:
			// Unsteered, both colours' sockets share the port, so the
			// colour under test took part of the connections while it was
			// gated: say so rather than claim traffic never moved.
			fmt.Fprintf(&b, ". %s stays active and was not touched; %s shared the port while it was gated and is stopped",
				old, serviceUnit(c.name, p.target))
		}
	}
	if len(a.journal) > 0 {
		fmt.Fprintf(&b, ". Last journal lines of %s:\n%s", a.failed.unit, strings.Join(a.journal, "\n"))
	}
	return errors.New(b.String())
}

// held is true when the run held new connections of a shared port on the
// old colour's sockets before starting the new one.
func held(a *applied) bool {
	for _, l := range a.steering {
		if strings.HasPrefix(l, "hold: ") && strings.Contains(l, ": held on ") {
			return true
		}
	}
	return false
}

// publish writes the service's metrics after a real run (st is the state
// the run leaves; nil when there is none) or removes them with the service,
// and says where in the result. The run's change stands whatever happens
// here: a failed write is a warning.
func publish(actx *ansible.Context, e env, c *config, mt metrics.Target, st *State, statuses map[string]systemd.UnitStatus, res *ansible.Result) *ansible.Result {
	res.Values.(map[string]any)["metrics_file"] = ""
	file, err := metrics.FileName("bluegreen_unit", c.name)
	if mt.Dir == "" || err != nil {
		return res
	}
	if c.state == "absent" || st == nil {
		if err := metrics.Remove(mt, file); err != nil {
			actx.Warn(err.Error())
		}
		return res
	}
	up := map[Colour]bool{}
	for _, col := range colours {
		up[col] = running(statuses[serviceUnit(c.name, col)])
	}
	b, err := renderMetrics(st, up, c.keepWarm)
	if err == nil {
		_, err = metrics.Publish(mt, file, b)
	}
	if err != nil {
		actx.Warn(fmt.Sprintf("metrics of %s not written: %v", c.name, err))
		return res
	}
	res.Values.(map[string]any)["metrics_file"] = filepath.Join(mt.Dir, file)
	return res
}

// freshStatuses reads the units again after a run, so the result and the
// metrics show where they ended up; obs's statuses when systemd does not
// answer.
func freshStatuses(e env, obs *observed) map[string]systemd.UnitStatus {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mgr, err := e.connect(ctx)
	if err != nil {
		return obs.units
	}
	defer mgr.Close()
	fresh := map[string]systemd.UnitStatus{}
	for n := range obs.units {
		if s, err := mgr.Status(ctx, n); err == nil {
			fresh[n] = s
		}
	}
	return fresh
}

// report builds the result. a is nil when nothing was applied (check mode,
// query, or nothing to do); st is the state written by a real run;
// statuses are the units as they ended up.
func report(actx *ansible.Context, e env, c *config, obs *observed, p *plan, a *applied, st *State, statuses map[string]systemd.UnitStatus) *ansible.Result {
	for _, w := range p.warnings {
		actx.Warn(w)
	}
	changed := p.changes() || p.writeState
	active, previous, flipped := p.target, p.previous, p.flip
	if c.state == "absent" {
		active, previous, flipped = "", "", false
	}
	var steps []string
	for _, s := range p.steps {
		steps = append(steps, s.String())
	}
	history := []HistoryEntry{}
	if obs.state != nil {
		history = obs.state.History
	}
	v := map[string]any{
		"name":       c.name,
		"strategy":   c.strategy,
		"action":     p.action,
		"state_file": statePath(e.stateDir, c.name),
		"unit_files": unitPaths(e, p, c, obs),
		"gate":       nil,
		"timings_ms": map[string]int64{},
	}
	if a != nil {
		steps = a.done
		v["timings_ms"] = a.timings
		if a.steering != nil {
			v["steering"] = a.steering
		}
		for _, w := range a.warnings {
			actx.Warn(w)
		}
		if a.gate != nil {
			v["gate"] = a.gate
		}
		if st != nil {
			history = st.History
		}
		if a.err != nil {
			active, previous, flipped = p.current, previousOf(obs), false
			v["journal"] = a.journal
			v["failed_step"] = a.failed.String()
			v["compensation"] = append([]string{}, a.compensation...)
			if a.journal == nil {
				v["journal"] = []string{}
			}
		}
	}
	if steps == nil {
		steps = []string{}
	}
	v["active"] = active
	v["previous"] = previous
	v["flipped"] = flipped
	v["steps"] = steps
	v["history"] = history
	v["units"] = unitsValue(c, obs, statuses)

	res := &ansible.Result{Changed: changed, Values: v}
	switch {
	case c.state == "query":
		res.Msg = fmt.Sprintf("%s: active colour %s", c.name, orNone(p.current))
	case a != nil && a.err != nil:
	case !changed:
		res.Msg = fmt.Sprintf("%s: %s is active, nothing to change", c.name, orNone(p.target))
	case c.state == "absent":
		res.Msg = verb(actx, "removed") + " " + c.name
	case p.flip && p.current != "":
		res.Msg = fmt.Sprintf("%s %s from %s to %s (%s)", verb(actx, "flipped"), c.name, p.current, p.target, p.action)
	default:
		res.Msg = fmt.Sprintf("%s %s with %s active (%s)", verb(actx, "updated"), c.name, p.target, p.action)
	}
	if actx.Diff && changed {
		res.Diff = diffs(e, c, p)
	}
	return res
}

func verb(actx *ansible.Context, past string) string {
	if actx.CheckMode {
		return "would have " + past
	}
	return past
}

func orNone(c Colour) string {
	if c == "" {
		return "none"
	}
	return string(c)
}

func previousOf(obs *observed) Colour {
	if obs.state == nil {
		return ""
	}
	return obs.state.Previous
}

func unitPaths(e env, p *plan, c *config, obs *observed) []string {
	names := p.managedUnits
	if c.state != "present" {
		names = nil
		for _, n := range observedUnits(c, obs.state) {
			if obs.files[n].exists {
				names = append(names, n)
			}
		}
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, filepath.Join(e.unitDir, n))
	}
	return out
}

func unitsValue(c *config, obs *observed, statuses map[string]systemd.UnitStatus) map[string]any {
	out := map[string]any{}
	sockets := map[string]any{}
	for n, st := range statuses {
		switch n {
		case serviceUnit(c.name, Blue):
			out["blue"] = st
		case serviceUnit(c.name, Green):
			out["green"] = st
		default:
			sockets[n] = st
		}
	}
	out["sockets"] = sockets
	return out
}

// diffs shows each unit file as it was and as it is (or would be), and the
// active colour before and after.
func diffs(e env, c *config, p *plan) []ansible.Diff {
	type change struct{ before, after string }
	files := map[string]*change{}
	var order []string
	for _, s := range p.steps {
		var path, after string
		switch s.kind {
		case stepWriteUnit, stepRemoveUnit:
			path = filepath.Join(e.unitDir, s.unit)
			after = s.content
		case stepSysctlConf:
			path = filepath.Join(e.sysctlDir, s.unit)
			after = s.content
		default:
			continue
		}
		ch, ok := files[path]
		if !ok {
			ch = &change{before: s.before.content}
			files[path] = ch
			order = append(order, path)
		}
		ch.after = after
	}
	var out []ansible.Diff
	if p.target != p.current && c.state == "present" {
		out = append(out, ansible.Diff{
			Before: "active: " + orNone(p.current) + "\n", After: "active: " + orNone(p.target) + "\n",
			BeforeHeader: c.name + " active colour (before)", AfterHeader: c.name + " active colour (after)",
		})
	}
	sort.Strings(order)
	for _, path := range order {
		ch := files[path]
		out = append(out, ansible.Diff{Before: ch.before, After: ch.after, BeforeHeader: path, AfterHeader: path})
	}
	return out
}
