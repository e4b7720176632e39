package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/chezlepro/sovereign/internal/ansible"
)

// moduleResult is the module's return values, as documented in RETURN
// (docs_test.go compares the two). Pointers are null when empty.
type moduleResult struct {
	MetricsFile     string           `json:"metrics_file"`
	Name            string           `json:"name"`
	Repo            string           `json:"repo"`
	Version         string           `json:"version"`
	Dest            string           `json:"dest"`
	Commit          string           `json:"commit"`
	Ref             *string          `json:"ref"`
	RefType         string           `json:"ref_type"`
	Before          *string          `json:"before"`
	After           *string          `json:"after"`
	CommitTime      string           `json:"commit_time,omitempty"`
	Built           bool             `json:"built"`
	WouldBuild      bool             `json:"would_build"`
	Reasons         []string         `json:"reasons"`
	Plan            map[string]bool  `json:"plan"`
	Fetched         bool             `json:"fetched"`
	Key             string           `json:"key"`
	RecipeHash      string           `json:"recipe_hash"`
	GoVersion       *string          `json:"go_version"`
	GoBinary        *string          `json:"go_binary"`
	Isolation       string           `json:"isolation,omitempty"`
	IsolationDetail string           `json:"isolation_detail,omitempty"`
	Artifact        string           `json:"artifact,omitempty"`
	Artifacts       []map[string]any `json:"artifacts,omitempty"` // as in the manifest
	Sha256          string           `json:"sha256,omitempty"`
	Size            *int64           `json:"size,omitempty"`
	ManifestPath    string           `json:"manifest_path,omitempty"`
	Manifest        map[string]any   `json:"manifest,omitempty"` // manifest.json as it is
	Log             string           `json:"log,omitempty"`
	LogTail         []string         `json:"log_tail,omitempty"`
	Signature       *signature       `json:"signature,omitempty"`
	Reproducible    *bool            `json:"reproducible,omitempty"`
	PreviousSha256  string           `json:"previous_sha256,omitempty"`
	Pruned          []string         `json:"pruned,omitempty"`
	DurationMS      int64            `json:"duration_ms"`
}

// report is the lifecycle's Report: the result of the run, the warnings,
// and in a real run that got to act, the metrics file. Its error is the
// plan's refusal when the run stopped at it (check mode); run.Err is the
// task's failure otherwise.
func report(actx *ansible.Context, run *ansible.Run[*request, *observed, *plan, *done]) (*ansible.Result, error) {
	req, obs, p := run.Req, run.Obs, run.Plan
	d := run.Done
	if !run.Applied {
		d = alreadyDone(req, obs)
	}
	failure := run.Err
	if failure == nil {
		failure = p.Refusal
	}
	for _, w := range p.Warnings {
		actx.Warn(w)
	}
	res := &ansible.Result{Changed: d.changed || d.built}
	if actx.CheckMode {
		res.Changed = p.changed()
	}
	v, err := resultValues(req, obs, p, d, actx.CheckMode)
	if err != nil {
		return nil, err
	}
	// As before the lifecycle: a real run that got past its plan writes the
	// metrics, even when apply failed (the stored build is still there).
	if !actx.CheckMode && p.Refusal == nil && (run.Applied || run.Err == nil) {
		file, merr := publishMetrics(req, d.manifest)
		if merr != nil {
			d.warnings = append(d.warnings, "metrics of "+req.Name+" not written: "+merr.Error())
		}
		v.MetricsFile = file
	}
	for _, w := range d.warnings {
		actx.Warn(w)
	}
	v.DurationMS = time.Since(req.start).Milliseconds()
	res.Values = v
	if failure == nil {
		res.Msg = summary(req, obs, p, d, actx.CheckMode)
	}
	if actx.Diff {
		res.Diff = []ansible.Diff{diff(req, obs, p, d)}
	}
	return res, failure
}

// resultValues is the result's values but metrics_file and duration_ms.
func resultValues(req *request, obs *observed, p *plan, d *done, check bool) (*moduleResult, error) {
	r := obs.Resolved
	v := &moduleResult{
		Name: req.Name, Repo: req.Repo, Version: req.Version, Dest: string(req.Dest),
		GoVersion: nullable(req.goVer), GoBinary: nullable(req.goBin),
		Built: d.built, WouldBuild: p.Build, Fetched: d.fetched, Reasons: nonNil(p.Reasons),
		Plan: map[string]bool{
			"clone": p.Init, "set_origin": p.SetOrigin, "fetch": p.Fetch,
			"checkout": p.Checkout, "discard": p.Discard, "build": p.Build,
		},
		Commit: r.Commit, Ref: nullable(r.Ref), RefType: r.Kind, Before: nullable(obs.Head),
		Key: obs.Key, RecipeHash: obs.RecipeHash,
		Isolation: d.isolation, Log: d.log, LogTail: d.logTail, Pruned: d.pruned, Signature: d.signature,
	}
	after := d.after
	if check && p.Checkout {
		after = r.Commit
	}
	v.After = nullable(after)
	if !check && !d.commitTime.IsZero() { // check mode reads no commit time
		v.CommitTime = d.commitTime.Format(time.RFC3339)
	}
	if d.isolation != "" {
		v.IsolationDetail = d.isoDetail
	}
	m := d.manifest
	if m == nil {
		return v, nil
	}
	if d.previous != "" {
		same := d.previous == m.Sha256
		v.PreviousSha256, v.Reproducible = d.previous, &same
	}
	v.Artifact, v.Sha256, v.Size, v.ManifestPath = m.Artifact, m.Sha256, &m.Size, d.manifestAt
	if v.Isolation == "" {
		v.Isolation = m.Isolation
	}
	if v.Log == "" {
		v.Log = m.Log
	}
	var err error
	if v.Manifest, err = ansible.ValuesMap(m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d.manifestAt, err)
	}
	for _, a := range m.Artifacts {
		am, err := ansible.ValuesMap(a)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", d.manifestAt, err)
		}
		v.Artifacts = append(v.Artifacts, am)
	}
	return v, nil
}

// summary is the msg of a run that succeeded.
func summary(req *request, obs *observed, p *plan, d *done, check bool) string {
	id := " (" + shortID(obs.Resolved.Commit) + ")"
	switch {
	case check && p.Build:
		return fmt.Sprintf("would build %s %s%s: %s", req.Name, req.Version, id, strings.Join(p.Reasons, "; "))
	case check && p.changed():
		return fmt.Sprintf("would update work tree %s to %s%s; the artifact is already in the store", string(req.Dest), req.Version, id)
	case check:
		return fmt.Sprintf("%s %s%s is built and checked out; nothing to do", req.Name, req.Version, id)
	case d.built && d.manifest != nil:
		return fmt.Sprintf("built %s %s%s with %s, isolation %s: %s (%d bytes, sha256 %s)",
			req.Name, req.Version, id, req.goVer, d.isolation, d.manifest.Artifact, d.manifest.Size, d.manifest.Sha256)
	case p.changed():
		return fmt.Sprintf("work tree %s now at %s%s; the artifact was already in the store", string(req.Dest), req.Version, id)
	}
	return fmt.Sprintf("%s %s%s is already built: %s", req.Name, req.Version, id, d.manifest.Artifact)
}

// diff shows the work tree's commit and the artifact before and after.
func diff(req *request, obs *observed, p *plan, d *done) ansible.Diff {
	dest := string(req.Dest)
	describe := func(commit, artifact string) string {
		if commit == "" {
			commit = "(none)"
		}
		if artifact == "" {
			artifact = "(none)"
		}
		return fmt.Sprintf("work tree: %s\ncommit: %s\nartifact: %s\n", dest, commit, artifact)
	}
	before := ""
	if obs.Entry != nil && obs.EntryProblem == "" {
		before = obs.Entry.Artifact
	}
	after := before
	if d.manifest != nil {
		after = d.manifest.Artifact + " (sha256 " + d.manifest.Sha256 + ")"
	} else if p.Build {
		after = "(to be built)"
	}
	afterCommit := obs.Head
	if p.Checkout {
		afterCommit = obs.Resolved.Commit
	}
	return ansible.Diff{
		Before: describe(obs.Head, before), After: describe(afterCommit, after),
		BeforeHeader: dest + " (before)", AfterHeader: dest + " (after)",
	}
}

// nullable is s, or null when it is empty.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
