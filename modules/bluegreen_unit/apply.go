package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chezlepro/sovereign/internal/fsutil"
	"github.com/chezlepro/sovereign/internal/health"
	"github.com/chezlepro/sovereign/internal/systemd"
)

// applied is what a real run did.
type applied struct {
	done    []string
	gate    *health.Result
	timings map[string]int64 // ms
	// failure, when a step failed: the step, the error, the journal of the
	// unit it concerned, and what the compensation did.
	failed       *step
	err          error
	journal      []string
	compensation []string
	startedAt    time.Time
	targetRun    bool
	// steering: what each hold, move and release did to each group.
	steering []steered
	warnings []string
	// state is what the run recorded in the state file (nil for absent);
	// statuses are the units as the run left them.
	state    *State
	statuses map[string]systemd.UnitStatus
}

// gateError carries the gate result of a failed gate step.
type gateError struct{ res health.Result }

func (g *gateError) Error() string { return g.res.Summary() }

// apply carries out the plan: the pending record first (a run killed
// mid-change is then found by the next), the steps, then the outcome in the
// state file and the units as they ended up.
func (m unitModule) apply(ctx context.Context, r *request, obs *observed, p *plan) (*applied, error) {
	c := r.c
	if c.state == "present" && p.records() {
		if err := writeState(statePath(m.e.stateDir, c.name), withPending(obs.state, c, p, m.e.now())); err != nil {
			return nil, fmt.Errorf("nothing was changed: recording the %s before it starts failed: %w", p.action, err)
		}
	}
	a := runSteps(ctx, m.e, r.mgr, c, p)
	if c.state == "present" {
		a.state = m.recordOutcome(obs, c, p, a)
	}
	a.statuses = endStatuses(ctx, r.mgr, obs)
	return a, a.err
}

// recordOutcome writes the state after the run; a failed write fails the
// run, or, when a step had already failed, is told among what followed.
func (m unitModule) recordOutcome(obs *observed, c *config, p *plan, a *applied) *State {
	oc := outcome{ok: a.err == nil, started: a.startedAt, duration: time.Duration(a.timings["total"]) * time.Millisecond,
		targetSHA: obs.binSHA[p.target], targetRun: a.targetRun, activeNow: p.target, previousTo: p.previous,
		gateFailed: a.failed != nil && a.failed.kind == stepGate}
	if a.err != nil {
		oc.reason = a.err.Error()
		oc.activeNow, oc.previousTo = p.current, ""
	}
	st := nextState(obs.state, c, p, oc, c.historySize)
	if werr := writeState(statePath(m.e.stateDir, c.name), st); werr != nil {
		if a.err == nil {
			a.err = werr
		} else {
			a.compensation = append(a.compensation, "writing the state file FAILED: "+werr.Error())
		}
	}
	return st
}

// endStatuses reads the units again over the run's connection, so the
// result and the metrics show where they ended up (a unit that does not
// answer is left out); obs's statuses when systemd answers for none. It
// gets time of its own: the run's may be spent.
func endStatuses(ctx context.Context, mgr systemd.Manager, obs *observed) map[string]systemd.UnitStatus {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	fresh := map[string]systemd.UnitStatus{}
	for n := range obs.units {
		if s, err := mgr.Status(ctx, n); err == nil {
			fresh[n] = s
		}
	}
	if len(fresh) == 0 {
		return obs.units
	}
	return fresh
}

// runSteps runs the plan's steps in order. When a step fails it runs that
// step's onFailure steps (stop the new colour, and for exclusive start the
// old one again), reads the journal of the unit that failed and returns.
func runSteps(ctx context.Context, e env, mgr systemd.Manager, c *config, p *plan) *applied {
	a := &applied{timings: map[string]int64{}, startedAt: e.now()}
	var stopOldAt, gateEnd time.Time
	for i := range p.steps {
		s := p.steps[i]
		t0 := time.Now()
		err := runStep(ctx, e, mgr, c, s, a)
		d := time.Since(t0)
		a.timings[timingKey(s, p)] += d.Milliseconds()
		if s.kind == stepStop && s.unit == serviceUnit(c.name, p.target.Other()) && stopOldAt.IsZero() {
			stopOldAt = t0
		}
		if s.kind == stepGate && err == nil {
			gateEnd = time.Now()
		}
		if err != nil {
			a.failed, a.err = &s, err
			// Compensate first, then read the journal: once the failed
			// unit is stopped its last lines have reached journald.
			for _, u := range s.onFailure {
				if uerr := runStep(ctx, e, mgr, c, u, a); uerr != nil {
					a.compensation = append(a.compensation, fmt.Sprintf("%s FAILED: %v", u, uerr))
				} else {
					a.compensation = append(a.compensation, u.String())
				}
			}
			if c.journalLines > 0 && s.unit != "" {
				lines, jerr := mgr.Journal(ctx, s.unit, a.startedAt.Add(-time.Second), c.journalLines)
				if jerr != nil {
					lines = []string{"(could not read the journal: " + jerr.Error() + ")"}
				}
				a.journal = lines
			}
			break
		}
		a.done = append(a.done, s.String())
	}
	a.timings["total"] = time.Since(a.startedAt).Milliseconds()
	if c.strategy == "exclusive" && p.flip && !stopOldAt.IsZero() && !gateEnd.IsZero() {
		// Nothing listened from the moment the old colour was asked to stop
		// until the new one passed the gate.
		a.timings["downtime"] = gateEnd.Sub(stopOldAt).Milliseconds()
	}
	return a
}

func timingKey(s step, p *plan) string {
	switch s.kind {
	case stepStart:
		if s.colour != "" {
			return "start"
		}
		return "start_sockets"
	case stepStop:
		return "stop"
	case stepGate:
		return "gate"
	case stepWait:
		return "stop_delay"
	case stepReload:
		return "daemon_reload"
	case stepEnable, stepDisable:
		return "enable"
	}
	return "files"
}

func runStep(ctx context.Context, e env, mgr systemd.Manager, c *config, s step, a *applied) error {
	switch s.kind {
	case stepWriteUnit:
		return fsutil.WriteFileAtomic(filepath.Join(e.unitDir, s.unit), []byte(s.content), 0o644)
	case stepRemoveUnit:
		if err := os.Remove(filepath.Join(e.unitDir, s.unit)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return fsutil.SyncDir(e.unitDir)
	case stepSysctlConf:
		return fsutil.WriteFileAtomic(filepath.Join(e.sysctlDir, s.unit), []byte(s.content), 0o644)
	case stepSysctl:
		// A /proc/sys file cannot be replaced by a rename: it is written in
		// place, which is what sysctl(8) does.
		if err := e.writeProc(e.procMigrate, []byte("1\n")); err != nil {
			return migrateError(err)
		}
		return nil
	case stepReload:
		return mgr.Reload(ctx)
	case stepEnable:
		_, err := mgr.Enable(ctx, []string{s.unit})
		return err
	case stepDisable:
		_, err := mgr.Disable(ctx, []string{s.unit})
		return err
	case stepStart:
		if s.colour != "" {
			a.targetRun = true
			// A failed earlier attempt leaves the unit failed, and possibly
			// at its start limit; an asked-for start must not be refused
			// for it (the attempt is in the history and the journal). A
			// unit that is not failed may not even be loaded, and systemd
			// refuses reset-failed then.
			st, err := mgr.Status(ctx, s.unit)
			if err != nil {
				return err
			}
			if st.ActiveState == "failed" {
				if err := mgr.ResetFailed(ctx, s.unit); err != nil {
					return err
				}
			}
		}
		return mgr.Start(ctx, s.unit)
	case stepStop:
		return mgr.Stop(ctx, s.unit)
	case stepWait:
		return e.sleep(ctx, s.delay)
	case stepGate:
		g := c.colour[s.colour].gate
		res := health.Run(ctx, g, e.prober(g.Check), func(ctx context.Context) error {
			return unitDown(ctx, mgr, s.unit)
		})
		a.gate = &res
		if !res.Passed {
			return &gateError{res}
		}
		return nil
	case stepHold, stepMove, stepRelease:
		return steerStep(ctx, e, mgr, c, s, a)
	case stepRemoveState:
		if err := os.Remove(statePath(e.stateDir, c.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return fsutil.SyncDir(e.stateDir)
	}
	return fmt.Errorf("unknown step %q", s.kind)
}

// steerStep runs a hold, move or release. A hold that fails fails the flip
// before the new colour starts. A move or release that fails only warns:
// the steering is undone or left, and either way harmless, because an
// index that no longer exists falls back to the kernel's hash once the old
// colour's sockets close.
func steerStep(ctx context.Context, e env, mgr systemd.Manager, c *config, s step, a *applied) error {
	pid := func(col Colour) (int, error) {
		st, err := mgr.Status(ctx, serviceUnit(c.name, col))
		return int(st.MainPID), err
	}
	self, err := pid(s.colour)
	if err != nil {
		return err
	}
	var done []steered
	switch s.kind {
	case stepHold:
		done, err = e.steer.Hold(self)
		a.steered(done)
		if err != nil {
			return fmt.Errorf("%w; reuseport_steer: false flips without steering (the new colour then takes connections as soon as it listens, before its gate)", err)
		}
		return nil
	case stepMove:
		old, perr := pid(s.colour.Other())
		if perr != nil {
			return perr
		}
		done, err = e.steer.Move(old, self)
	default:
		done, err = e.steer.Release(self)
	}
	a.steered(done)
	if err != nil {
		a.warnings = append(a.warnings, fmt.Sprintf("%s %s: %v", s.kind, s.colour, err))
	}
	return nil
}

// steered records what a steering step did; a step that found no group
// is still reported, as an empty list.
func (a *applied) steered(done []steered) {
	if a.steering == nil {
		a.steering = []steered{}
	}
	a.steering = append(a.steering, done...)
}

// unitDown returns an error describing the unit when it is no longer
// running (it crashed, or systemd is waiting to restart it): the gate
// stops at once instead of waiting for its timeout.
func unitDown(ctx context.Context, mgr systemd.Manager, unit string) error {
	st, err := mgr.Status(ctx, unit)
	if err != nil {
		return err
	}
	if running(st) {
		return nil
	}
	return errors.New(describeDown(st))
}

func describeDown(st systemd.UnitStatus) string {
	s := fmt.Sprintf("%s is %s (%s)", st.Name, st.ActiveState, st.SubState)
	var extra []string
	if st.Result != "" && st.Result != "success" {
		extra = append(extra, "result "+st.Result)
	}
	if st.ExecMainStatus != 0 {
		extra = append(extra, fmt.Sprintf("exit status %d", st.ExecMainStatus))
	}
	if st.NRestarts > 0 {
		extra = append(extra, fmt.Sprintf("%d restarts", st.NRestarts))
	}
	if len(extra) > 0 {
		s += ", " + strings.Join(extra, ", ")
	}
	return s
}

// migrateError says why net.ipv4.tcp_migrate_req cannot be set and what to
// do: the plan refuses with it when /proc/sys is read-only, and apply fails
// with it should the write still fail.
func migrateError(err error) error {
	return fmt.Errorf("cannot set net.ipv4.tcp_migrate_req=1 (%w): where /proc/sys is read-only, as in a container, "+
		"set it from outside (in the host's network namespace), or set reuseport_migrate: false to accept that "+
		"connections still queued on the old colour's socket are reset when it stops", err)
}
