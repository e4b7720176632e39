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
	res, values := result(actx, s, o, p, out)
	if !actx.CheckMode && (run.Err == nil || run.Applied) {
		values.MetricsFile = publish(actx, s)
	}
	return res, run.Err
}

// metricsDefault is where metrics go when metrics_dir is not given, if it
// exists; tests point it elsewhere.
var metricsDefault = metrics.DefaultDir

// publish writes root's metrics after a real run and returns the file's
// path; a failure is a warning, as the staging stands.
func publish(actx *ansible.Context, s *spec) string {
	file, err := publishMetrics(s.Metrics, s)
	if err != nil {
		actx.Warn("metrics of " + s.Root + " not written: " + err.Error())
	}
	return file
}

// stageResult is the task's return values: RETURN in
// plugins/modules/binary_stage.yml (docs_test.go holds the two equal).
type stageResult struct {
	Release         string `json:"release"`
	ReleasePath     string `json:"release_path"`
	Slot            string `json:"slot"`
	SlotPath        string `json:"slot_path"`
	BinaryPath      string `json:"binary_path"`
	Previous        string `json:"previous"`
	PreviousRelease string `json:"previous_release"`
	SHA256          string `json:"sha256"`
	// Size is null when a check run cannot know it yet (a URL without a
	// manifest).
	Size    *int64   `json:"size"`
	Name    string   `json:"name"`
	Version string   `json:"version"`
	Commit  string   `json:"commit"`
	Staged  bool     `json:"staged"`
	Removed []string `json:"removed"`
	Cleaned []string `json:"cleaned"`
	Changes []string `json:"changes"`
	// SmokeOutput is set when the smoke command ran, even with no output.
	SmokeOutput *string `json:"smoke_output,omitempty"`
	MetricsFile string  `json:"metrics_file"`
}

// result builds the task result; out is nil in check mode and for a no-op.
func result(actx *ansible.Context, s *spec, o *observed, p *plan, out *outcome) (*ansible.Result, *stageResult) {
	changes := p.describe(s)
	slotAfter := p.PrevLink
	if p.Switch {
		slotAfter = s.linkTarget()
	}
	v := &stageResult{
		Release:         p.Release,
		ReleasePath:     p.ReleasePath,
		Slot:            s.Slot,
		SlotPath:        s.SlotPath,
		BinaryPath:      filepath.Join(s.SlotPath, s.Binary),
		Previous:        prevPath(s, o),
		PreviousRelease: p.PrevRelease,
		SHA256:          s.SHA256,
		Size:            size(s, o, out),
		Name:            s.Name,
		Version:         s.Version,
		Commit:          s.Commit,
		Staged:          p.Stage,
		Removed:         orEmpty(p.Prune),
		Cleaned:         orEmpty(p.Clean),
		Changes:         orEmpty(changes),
	}
	res := &ansible.Result{Changed: p.changed(), Values: v}
	if out != nil {
		// What was done, which on failure is less than the plan.
		res.Changed = out.Changed
		v.Staged = out.Staged
		v.Removed = orEmpty(out.Removed)
		v.Cleaned = orEmpty(out.Cleaned)
		if p.Smoke {
			v.SmokeOutput = &out.SmokeOutput
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
	return res, v
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
func size(s *spec, o *observed, out *outcome) *int64 {
	var n int64
	switch {
	case out != nil && out.Size > 0:
		n = out.Size
	case o.Target != nil && o.Target.Intact:
		n = o.Target.Size
	case s.Size >= 0:
		n = s.Size
	case s.SrcSize >= 0:
		n = s.SrcSize
	default:
		return nil
	}
	return &n
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
