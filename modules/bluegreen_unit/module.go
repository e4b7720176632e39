package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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

// unitModule is the module's lifecycle stages over env e.
type unitModule struct{ e env }

// request is what a run resolved from its options: the definition it
// applies, where its metrics go, and the D-Bus connection Open made for it.
type request struct {
	c       *config
	metrics metrics.Target
	mgr     systemd.Manager
}

func newModule(e env) ansible.Module[Options] {
	m := unitModule{e}
	return ansible.Module[Options]{
		Name:              "bluegreen_unit",
		SupportsCheckMode: true,
		Run: ansible.Lifecycle(ansible.Stages[Options, *request, *observed, *plan, *applied]{
			Resolve: m.resolve, // every refusal of bad options, all reported at once
			Open:    m.open,    // the run's deadline and its D-Bus connection
			Observe: m.observe, // state file, unit files, unit statuses, binaries, tcp_migrate_req
			// Plan is pure (makePlan); Changes: a step that changes
			// something, or a state file to write.
			Plan:    func(r *request, obs *observed) (*plan, error) { return makePlan(r.c, obs) },
			Changes: func(_ *request, p *plan) bool { return p.changes() || p.writeState },
			Lock:    m.lock,   // the service's lock: one run changes a service at a time
			Apply:   m.apply,  // the pending record, the steps, the state file
			Report:  m.report, // the result, the metrics file of a real run, the failure message
		}),
	}
}

// resolve validates the options and resolves the definition this run
// applies (the given one, or the one recorded at the last apply).
func (m unitModule) resolve(_ *ansible.Context, o *Options) (*request, error) {
	c, err := configFor(m.e, o)
	if err != nil {
		return nil, fmt.Errorf("invalid options, nothing was changed: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	mt, err := metrics.Resolve(string(o.MetricsDir), m.e.metricsDir)
	if err != nil {
		return nil, fmt.Errorf("invalid options, nothing was changed: %w", err)
	}
	return &request{c: c, metrics: mt}, nil
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

// open bounds the whole run (budget) and connects to systemd once; the
// later stages share the connection, which closes when the run ends.
func (m unitModule) open(ctx context.Context, r *request) (context.Context, func(), error) {
	ctx, cancel := context.WithTimeout(ctx, budget(r.c))
	mgr, err := m.e.connect(ctx)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	r.mgr = mgr
	return ctx, func() { mgr.Close(); cancel() }, nil
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

// lock takes the service's lock, waiting up to lock_timeout for another
// run changing it.
func (m unitModule) lock(ctx context.Context, r *request) (func(), error) {
	lockPath := filepath.Join(m.e.lockDir, "bluegreen-"+r.c.name+".lock")
	lk, err := lock.Acquire(ctx, lockPath, r.c.lockTimeout)
	if err != nil {
		if errors.Is(err, lock.ErrTimeout) {
			return nil, fmt.Errorf("another run is changing %s (a flip in progress?): gave up after lock_timeout=%s: %w", r.c.name, r.c.lockTimeout, err)
		}
		return nil, err
	}
	return func() { _ = lk.Release() }, nil // as before: the lock goes with the process anyway
}

// report builds the task's result from how far the run got, writes the
// service's metrics after a real run, and turns a failed step into the
// task's message.
func (m unitModule) report(actx *ansible.Context, run *ansible.Run[*request, *observed, *plan, *applied]) (*ansible.Result, error) {
	a := run.Done
	if run.Err != nil && a == nil {
		// The lock, the second look, or the pending record failed:
		// nothing was changed, and the error says why.
		return nil, run.Err
	}
	c, obs, p := run.Req.c, run.Obs, run.Plan
	st, statuses := obs.state, obs.units
	if a != nil {
		st, statuses = a.state, a.statuses
	}
	res, v := taskResult(actx, m.e, c, obs, p, a, statuses)
	if !actx.CheckMode && c.state != "query" {
		publish(actx, c, run.Req.metrics, st, statuses, v)
	}
	if a != nil && a.err != nil {
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
	return slices.ContainsFunc(a.steering, func(s steered) bool { return s.step == stepHold && s.outcome == heldOnOld })
}

// unitResult is the task's result, documented by RETURN in
// plugins/modules/bluegreen_unit.yml (docs_test.go keeps the two in step).
type unitResult struct {
	Name     string `json:"name"`
	Strategy string `json:"strategy"`
	Action   string `json:"action"`
	Active   Colour `json:"active"`
	Previous Colour `json:"previous"`
	Flipped  bool   `json:"flipped"`
	// Units: blue, green and sockets (keyed by unit name).
	Units map[string]any `json:"units"`
	// Gate is null when no gate ran.
	Gate      *health.Result   `json:"gate"`
	TimingsMS map[string]int64 `json:"timings_ms"`
	Steps     []string         `json:"steps"`
	History   []HistoryEntry   `json:"history"`
	StateFile string           `json:"state_file"`
	UnitFiles []string         `json:"unit_files"`
	// MetricsFile is "" when none was written.
	MetricsFile string `json:"metrics_file"`
	// Returned only when a steering step ran, or a step failed; pointers,
	// so that an empty list is still returned then.
	Steering     *[]string `json:"steering,omitempty"`
	Journal      *[]string `json:"journal,omitempty"`
	FailedStep   string    `json:"failed_step,omitempty"`
	Compensation *[]string `json:"compensation,omitempty"`
}

// publish writes the service's metrics after a real run (st is the state
// the run leaves; nil when there is none) or removes them with the service,
// and says where in the result. The run's change stands whatever happens
// here: a failed write is a warning.
func publish(actx *ansible.Context, c *config, mt metrics.Target, st *State, statuses map[string]systemd.UnitStatus, v *unitResult) {
	file, err := metrics.FileName("bluegreen_unit", c.name)
	if mt.Dir == "" || err != nil {
		return
	}
	if c.state == "absent" || st == nil {
		if err := metrics.Remove(mt, file); err != nil {
			actx.Warn(err.Error())
		}
		return
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
		return
	}
	v.MetricsFile = filepath.Join(mt.Dir, file)
}

// taskResult builds the task's result. a is nil when nothing was applied
// (check mode, query, or nothing to do); statuses are the units as they
// ended up.
func taskResult(actx *ansible.Context, e env, c *config, obs *observed, p *plan, a *applied, statuses map[string]systemd.UnitStatus) (*ansible.Result, *unitResult) {
	for _, w := range p.warnings {
		actx.Warn(w)
	}
	changed := p.changes() || p.writeState
	v := &unitResult{
		Name: c.name, Strategy: c.strategy, Action: p.action,
		Active: p.target, Previous: p.previous, Flipped: p.flip,
		StateFile: statePath(e.stateDir, c.name),
		UnitFiles: unitPaths(e, p, c, obs),
		TimingsMS: map[string]int64{},
		Steps:     []string{},
		History:   []HistoryEntry{},
	}
	if c.state == "absent" {
		v.Active, v.Previous, v.Flipped = "", "", false
	}
	for _, s := range p.steps {
		v.Steps = append(v.Steps, s.String())
	}
	if obs.state != nil {
		v.History = obs.state.History
	}
	if a != nil {
		v.Steps = append([]string{}, a.done...)
		v.TimingsMS = a.timings
		if a.steering != nil {
			steering := make([]string, len(a.steering))
			for i, s := range a.steering {
				steering[i] = s.String()
			}
			v.Steering = &steering
		}
		for _, w := range a.warnings {
			actx.Warn(w)
		}
		v.Gate = a.gate
		if a.state != nil {
			v.History = a.state.History
		}
		if a.err != nil {
			v.Active, v.Previous, v.Flipped = p.current, previousOf(obs), false
			journal, compensation := append([]string{}, a.journal...), append([]string{}, a.compensation...)
			v.Journal, v.FailedStep, v.Compensation = &journal, a.failed.String(), &compensation
		}
	}
	v.Units = unitsValue(c, statuses)

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
	return res, v
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

func unitsValue(c *config, statuses map[string]systemd.UnitStatus) map[string]any {
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
