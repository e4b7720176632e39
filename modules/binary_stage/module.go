package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/chezlepro/sovereign/internal/ansible"
	"github.com/chezlepro/sovereign/internal/lock"
	"github.com/chezlepro/sovereign/internal/metrics"
)

func module() ansible.Module[Options] {
	return ansible.Module[Options]{
		Name:              "binary_stage",
		SupportsCheckMode: true,
		Run: ansible.Lifecycle(ansible.Stages[Options, *spec, *observed, *plan, *outcome]{
			Resolve: resolve, // the options, the manifest and the source file, checked and hashed
			Observe: func(_ context.Context, s *spec) (*observed, error) { return observe(s) },
			Plan:    func(s *spec, o *observed) (*plan, error) { p := makePlan(s, o); return &p, nil },
			Changes: func(_ *spec, p *plan) bool { return p.changed() },
			Lock:    lockRoot, // creates root, which holds the lock
			Apply:   apply,    // stage, smoke, switch, record, prune
			Report:  report,
		}),
	}
}

// resolve is the request: the options checked, the metrics target found,
// and the source file checked and hashed (the release's name needs its
// sha256). Every refusal of bad input comes from here.
func resolve(actx *ansible.Context, opts *Options) (*spec, error) {
	if err := checkFaultEnv(); err != nil {
		return nil, err
	}
	// The invocation echoes url whole: its password is masked there too.
	actx.Hide(urlPassword(opts.URL))
	s, err := resolveOptions(opts)
	if err != nil {
		return nil, err
	}
	if s.Metrics, err = metrics.Resolve(string(opts.MetricsDir), metricsDefault); err != nil {
		return nil, err
	}
	if err := observeSource(s); err != nil {
		return nil, err
	}
	return s, nil
}

// lockRoot takes root's lock, which lives in the state directory under
// root: both are created first (and s.RootCreated says root was, for the
// plan made under the lock and for the result, even when taking the lock
// then fails).
func lockRoot(ctx context.Context, s *spec) (func(), error) {
	created, err := mkdirSynced(s.Root)
	s.RootCreated = created
	if err != nil {
		return nil, err
	}
	if _, err := mkdirSynced(s.StateDir); err != nil {
		return nil, err
	}
	lk, err := lock.Acquire(ctx, filepath.Join(s.StateDir, "lock"), s.LockTimeout)
	if err != nil {
		return nil, err
	}
	return func() { lk.Release() }, nil
}

// report builds the result and, after a real run that got as far as
// applying (or found nothing to do), writes root's metrics.
func report(actx *ansible.Context, run *ansible.Run[*spec, *observed, *plan, *outcome]) (*ansible.Result, error) {
	s, o, p := run.Req, run.Obs, run.Plan
	// What was done: nothing to say in check mode or for a no-op; from
	// the lock on, at least whether root was created.
	var out *outcome
	switch {
	case run.Applied:
		out = run.Done
		out.Changed = out.Changed || s.RootCreated
	case run.Locked || run.Err != nil:
		out = &outcome{Changed: s.RootCreated}
	}
	res := result(actx, s, o, p, out)
	if !actx.CheckMode && (run.Err == nil || run.Applied) {
		published(actx, s, res)
	}
	return res, run.Err
}

// metricsDefault is where metrics go when metrics_dir is not given, if it
// exists; tests point it elsewhere.
var metricsDefault = metrics.DefaultDir

// published writes root's metrics after a real run and names the file in
// the result.
func published(actx *ansible.Context, s *spec, res *ansible.Result) {
	file, err := publishMetrics(s.Metrics, s)
	if err != nil {
		actx.Warn("metrics of " + s.Root + " not written: " + err.Error())
	}
	res.Values.(map[string]any)["metrics_file"] = file
}

// result builds the task result; out is nil in check mode and for a no-op.
func result(actx *ansible.Context, s *spec, o *observed, p *plan, out *outcome) *ansible.Result {
	changes := p.describe(s)
	slotAfter := p.PrevLink
	if p.Switch {
		slotAfter = s.linkTarget()
	}
	v := map[string]any{
		"release":          p.Release,
		"release_path":     p.ReleasePath,
		"slot":             s.Slot,
		"slot_path":        s.SlotPath,
		"binary_path":      filepath.Join(s.SlotPath, s.Binary),
		"previous":         prevPath(s, o),
		"previous_release": p.PrevRelease,
		"sha256":           s.SHA256,
		"size":             size(s, o, out),
		"name":             s.Name,
		"version":          s.Version,
		"commit":           s.Commit,
		"staged":           p.Stage,
		"removed":          orEmpty(p.Prune),
		"cleaned":          orEmpty(p.Clean),
		"changes":          orEmpty(changes),
		"metrics_file":     "",
	}
	res := &ansible.Result{Changed: p.changed(), Values: v}
	if out != nil {
		// What was done, which on failure is less than the plan.
		res.Changed = out.Changed
		v["staged"] = out.Staged
		v["removed"] = orEmpty(out.Removed)
		v["cleaned"] = orEmpty(out.Cleaned)
		if p.Smoke {
			v["smoke_output"] = out.SmokeOutput
		}
	}
	switch {
	case !p.changed():
		res.Msg = fmt.Sprintf("slot %s already points at release %s", s.Slot, p.Release)
	case actx.CheckMode:
		res.Msg = "would " + strings.Join(changes, "; ")
	default:
		res.Msg = strings.Join(changes, "; ")
	}
	if actx.Diff {
		res.Diff = []ansible.Diff{{
			Before:       slotLine(s, p.PrevLink),
			After:        slotLine(s, slotAfter),
			BeforeHeader: s.SlotPath + " (before)",
			AfterHeader:  s.SlotPath + " (after)",
		}}
		if rb, ra := releasesBefore(o), releasesAfter(o, p); rb != ra {
			res.Diff = append(res.Diff, ansible.Diff{
				Before: rb, After: ra,
				BeforeHeader: s.ReleasesDir + " (before)", AfterHeader: s.ReleasesDir + " (after)",
			})
		}
	}
	return res
}

func orEmpty(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// prevPath is the absolute path of the release the slot pointed at before.
func prevPath(s *spec, o *observed) string {
	if o.Slot.Release == "" {
		return ""
	}
	return filepath.Join(s.ReleasesDir, o.Slot.Release)
}

// size is the binary's size in bytes, or nil when a check run cannot know
// it yet (a URL without a manifest).
func size(s *spec, o *observed, out *outcome) any {
	switch {
	case out != nil && out.Size > 0:
		return out.Size
	case o.Target != nil && o.Target.Intact:
		return o.Target.Size
	case s.Size >= 0:
		return s.Size
	case s.SrcSize >= 0:
		return s.SrcSize
	}
	return nil
}

func slotLine(s *spec, link string) string {
	if link == "" {
		return s.Slot + " (absent)\n"
	}
	return s.Slot + " -> " + link + "\n"
}

func releasesBefore(o *observed) string {
	return lines(o.Releases)
}

func releasesAfter(o *observed, p *plan) string {
	var after []string
	for _, r := range o.Releases {
		if !slices.Contains(p.Prune, r) {
			after = append(after, r)
		}
	}
	if !slices.Contains(after, p.Release) {
		after = append(after, p.Release)
		slices.Sort(after)
	}
	return lines(after)
}

func lines(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return strings.Join(l, "\n") + "\n"
}
