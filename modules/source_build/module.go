package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chezlepro/sovereign/internal/ansible"
	"github.com/chezlepro/sovereign/internal/lock"
	"github.com/chezlepro/sovereign/internal/metrics"
)

func module() ansible.Module[Options] {
	return ansible.Module[Options]{
		Name:              "source_build",
		SupportsCheckMode: true,
		Run:               run,
	}
}

// lockDir holds the work-tree locks; tests point it at a directory of their own.
var lockDir = lock.RunDir()

// workTreeLock is the lock file that keeps two builds off one work tree. It
// lives in the module's own lock directory, not beside dest: the directory
// above dest may be writable by others, and nothing should appear next to a
// dest before the run gets anywhere. The name is readable, the hash unique.
func workTreeLock(dest string) string {
	sum := sha256.Sum256([]byte(dest))
	base := filepath.Base(dest)
	if len(base) > 64 {
		base = base[:64]
	}
	return filepath.Join(lockDir, "source_build-"+base+"-"+hex.EncodeToString(sum[:8])+".lock")
}

// run is the module: validate, observe, plan, then (unless in check mode)
// apply the plan.
func run(actx *ansible.Context, o *Options) (*ansible.Result, error) {
	start := time.Now()
	for _, s := range credentialSecrets(o.Repo) { // before validate: its messages too
		actx.Hide(s)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	mt, err := metrics.Resolve(string(o.MetricsDir), metricsDefault)
	if err != nil {
		return nil, err
	}
	// Still before anything is created: what the paths are on this host.
	for _, pl := range []struct{ opt, path string }{{"dest", string(o.Dest)}, {"store", string(o.Store)}} {
		if err := checkPlaceOnDisk(pl.opt, pl.path); err != nil {
			return nil, err
		}
	}
	ctx := context.Background()
	g, err := newGit(time.Duration(o.Timeout) * time.Second)
	if err != nil {
		return nil, err
	}
	g.env = append(g.env, credentialEnv(o.Repo, o.repoWithAuth)...)
	goBin, err := findGo(string(o.GoBinary), len(o.Command) == 0)
	if err != nil {
		return nil, err
	}
	goVer, err := goVersion(goBin)
	if err != nil {
		return nil, err
	}
	rc := newRecipe(o, goVer)
	st := openStore(string(o.Store), o.Name, o.Repo)

	if !actx.CheckMode {
		lk, err := lock.Acquire(ctx, workTreeLock(string(o.Dest)), time.Duration(o.LockTimeout)*time.Second)
		if errors.Is(err, lock.ErrTimeout) {
			return nil, fmt.Errorf("another build of work tree %s is running: %w", string(o.Dest), err)
		}
		if err != nil {
			return nil, fmt.Errorf("lock work tree %s: %w", string(o.Dest), err)
		}
		defer lk.Release()
	}

	obs, err := observe(ctx, g, o, rc, st)
	if err != nil {
		return nil, err
	}
	p, err := makePlan(o, obs)
	out := newOutcome(o, obs, p, goBin, goVer)
	if err != nil {
		return out.result(actx, start, err), err
	}
	for _, w := range p.Warnings {
		actx.Warn(w)
	}
	if actx.CheckMode {
		if o.Verify != "none" {
			out.checkSignatureReadOnly(ctx, g, o, obs)
		}
		return out.result(actx, start, out.err), out.err
	}
	err = apply(ctx, g, o, obs, p, st, rc, out)
	file, merr := out.publishMetrics(mt)
	if merr != nil {
		out.warnings = append(out.warnings, "metrics of "+o.Name+" not written: "+merr.Error())
	}
	for _, w := range out.warnings {
		actx.Warn(w)
	}
	res := out.result(actx, start, err)
	res.Values.(map[string]any)["metrics_file"] = file
	return res, err
}

// metricsDefault is where metrics go when metrics_dir is not given, if it
// exists; tests point it elsewhere.
var metricsDefault = metrics.DefaultDir

// apply carries the plan out: clone or fetch, verify, check out, build.
func apply(ctx context.Context, g *git, o *Options, obs *observed, p plan, st store, rc recipe, out *outcome) error {
	r := obs.Resolved
	if p.Init {
		out.changed = true
		if err := g.initRepo(ctx, string(o.Dest), o.Repo); err != nil {
			return fmt.Errorf("create work tree %s: %w", string(o.Dest), err)
		}
	} else if p.SetOrigin {
		out.changed = true
		verb := []string{"remote", "set-url", "--", "origin", o.Repo}
		if obs.Origin == "" {
			verb = []string{"remote", "add", "--", "origin", o.Repo}
		}
		if _, err := g.run(ctx, string(o.Dest), verb...); err != nil {
			return err
		}
	}
	if p.Fetch {
		if err := g.fetch(ctx, string(o.Dest), r, o.Depth); err != nil {
			if r.Kind == kindCommit {
				return fmt.Errorf("%w: commit %s could not be fetched from %s: %w", ErrUnknownVersion, r.Commit, o.Repo, err)
			}
			return fmt.Errorf("fetch %s from %s: %w", r.Ref, o.Repo, err)
		}
		out.fetched = true
	}
	if (p.Fetch || !obs.HaveCommit) && !g.hasCommit(ctx, string(o.Dest), r.Commit) {
		return fmt.Errorf("%w: commit %s is not in %s after fetching it", ErrUnknownVersion, r.Commit, o.Repo)
	}
	if err := out.readCommitTime(ctx, g); err != nil {
		return err
	}
	if o.Verify != "none" {
		sig, err := verifySignature(ctx, g, string(o.Dest), o.Verify, r, string(o.Keyring))
		if err != nil {
			return err
		}
		out.signature = sig
	}
	if p.Checkout {
		out.changed = true
		if err := g.checkout(ctx, string(o.Dest), r.Commit, p.Discard); err != nil {
			return fmt.Errorf("check out %s in %s: %w", shortID(r.Commit), string(o.Dest), err)
		}
		out.after = r.Commit
	}
	if p.Build {
		if err := build(ctx, o, obs, st, rc, out); err != nil {
			return storeNoSpace(string(o.Store), err)
		}
	}
	return storeNoSpace(string(o.Store), finish(o, obs, st, out))
}

// finish records the tag's commit and prunes the store, under the store lock.
func finish(o *Options, obs *observed, st store, out *outcome) error {
	r := obs.Resolved
	recordTag := r.Kind == kindTag && (obs.RecordedTag == nil || obs.RecordedTag.Commit != r.Commit)
	if !recordTag && !out.built {
		return nil
	}
	lk, err := lock.Acquire(context.Background(), st.lockPath(), time.Duration(o.LockTimeout)*time.Second)
	if err != nil {
		return fmt.Errorf("store %s: %w", st.RepoDir, err)
	}
	defer lk.Release()
	if recordTag {
		tags, err := st.readTags()
		if err != nil {
			return err
		}
		tags[r.Ref] = tagRecord{Commit: r.Commit, Object: r.Object, Recorded: time.Now().UTC().Format(time.RFC3339), Key: obs.Key}
		if err := st.writeTags(tags); err != nil {
			return fmt.Errorf("record tag %s: %w", r.Ref, err)
		}
	}
	if out.built {
		pruned, err := st.prune(o.Keep, obs.Key)
		out.pruned = pruned
		if err != nil {
			return err
		}
	}
	return nil
}

// outcome collects what the run did, for the result.
type outcome struct {
	o          *Options
	obs        *observed
	p          plan
	goBin      string
	goVer      string
	after      string
	fetched    bool
	built      bool
	changed    bool // something on the host changed (real runs)
	commitTime time.Time
	signature  *signature
	manifest   *manifest
	manifestAt string
	isolation  string
	isoDetail  string
	log        string
	logTail    []string
	pruned     []string
	previous   string // sha256 of the build a rebuild replaced
	warnings   []string
	err        error
}

func newOutcome(o *Options, obs *observed, p plan, goBin, goVer string) *outcome {
	out := &outcome{o: o, obs: obs, p: p, goBin: goBin, goVer: goVer}
	if obs != nil {
		out.after = obs.Head
		if obs.Entry != nil && obs.EntryProblem == "" {
			out.manifest = obs.Entry
			out.manifestAt = filepath.Join(openStore(string(o.Store), o.Name, o.Repo).entryDir(obs.Key), "manifest.json")
		}
	}
	return out
}

// readCommitTime gets the commit's time from the stored build's manifest
// when there is one (a no-op run spawns no git for it), else from git.
func (out *outcome) readCommitTime(ctx context.Context, g *git) error {
	if m := out.obs.Entry; m != nil && out.obs.EntryProblem == "" && m.Commit == out.obs.Resolved.Commit {
		if t, err := time.Parse(time.RFC3339, m.CommitTime); err == nil {
			out.commitTime = t.UTC()
			return nil
		}
	}
	ct, err := g.commitTime(ctx, string(out.o.Dest), out.obs.Resolved.Commit)
	out.commitTime = ct
	return err
}

// checkSignatureReadOnly verifies in check mode when the objects are already
// in the work tree; otherwise it says the check is still to come.
func (out *outcome) checkSignatureReadOnly(ctx context.Context, g *git, o *Options, obs *observed) {
	haveTag := obs.Resolved.Kind != kindTag || obs.LocalTagObject == obs.Resolved.Object
	if !obs.DestIsRepo || !obs.HaveCommit || !haveTag {
		out.p.Reasons = append(out.p.Reasons, "the signature will be checked once the "+o.Verify+" is fetched")
		return
	}
	sig, err := verifySignature(ctx, g, string(o.Dest), o.Verify, obs.Resolved, string(o.Keyring))
	out.signature, out.err = sig, err
}

// result is the module's answer. err is the run's failure, if any: then msg
// comes from it and changed says what was done before it happened.
func (out *outcome) result(actx *ansible.Context, start time.Time, err error) *ansible.Result {
	o, obs, p := out.o, out.obs, out.p
	v := map[string]any{
		"name":        o.Name,
		"repo":        o.Repo,
		"version":     o.Version,
		"dest":        string(o.Dest),
		"go_version":  nilIfEmpty(out.goVer),
		"go_binary":   nilIfEmpty(out.goBin),
		"built":       out.built,
		"would_build": p.Build,
		"fetched":     out.fetched,
		"reasons":     nonNil(p.Reasons),
		"plan": map[string]bool{
			"clone": p.Init, "set_origin": p.SetOrigin, "fetch": p.Fetch,
			"checkout": p.Checkout, "discard": p.Discard, "build": p.Build,
		},
		"duration_ms":  time.Since(start).Milliseconds(),
		"metrics_file": "",
	}
	if obs != nil {
		r := obs.Resolved
		v["commit"] = r.Commit
		v["ref"] = nilIfEmpty(r.Ref)
		v["ref_type"] = r.Kind
		v["before"] = nilIfEmpty(obs.Head)
		after := out.after
		if actx.CheckMode && p.Checkout {
			after = r.Commit
		}
		v["after"] = nilIfEmpty(after)
		v["key"] = obs.Key
		v["recipe_hash"] = obs.RecipeHash
	}
	if !out.commitTime.IsZero() {
		v["commit_time"] = out.commitTime.Format(time.RFC3339)
	}
	if out.signature != nil {
		v["signature"] = out.signature
	}
	if out.isolation != "" {
		v["isolation"] = out.isolation
		v["isolation_detail"] = out.isoDetail
	}
	if out.log != "" {
		v["log"] = out.log
	}
	if out.logTail != nil {
		v["log_tail"] = out.logTail
	}
	if out.pruned != nil {
		v["pruned"] = out.pruned
	}
	if out.previous != "" && out.manifest != nil {
		v["previous_sha256"] = out.previous
		v["reproducible"] = out.previous == out.manifest.Sha256
	}
	if m := out.manifest; m != nil {
		v["artifact"] = m.Artifact
		v["artifacts"] = m.Artifacts
		v["sha256"] = m.Sha256
		v["size"] = m.Size
		v["manifest_path"] = out.manifestAt
		v["manifest"] = m
		if _, ok := v["isolation"]; !ok {
			v["isolation"] = m.Isolation
		}
		if _, ok := v["log"]; !ok {
			v["log"] = m.Log
		}
	}
	res := &ansible.Result{Changed: out.changed || out.built, Values: v}
	if actx.CheckMode {
		res.Changed = p.changed()
	}
	if err == nil {
		res.Msg = out.summary(actx.CheckMode)
	}
	if actx.Diff && obs != nil {
		res.Diff = []ansible.Diff{out.diff()}
	}
	return res
}

func (out *outcome) summary(check bool) string {
	o, p := out.o, out.p
	id := ""
	if out.obs != nil {
		id = " (" + shortID(out.obs.Resolved.Commit) + ")"
	}
	switch {
	case check && p.Build:
		return fmt.Sprintf("would build %s %s%s: %s", o.Name, o.Version, id, strings.Join(p.Reasons, "; "))
	case check && p.changed():
		return fmt.Sprintf("would update work tree %s to %s%s; the artifact is already in the store", string(o.Dest), o.Version, id)
	case check:
		return fmt.Sprintf("%s %s%s is built and checked out; nothing to do", o.Name, o.Version, id)
	case out.built && out.manifest != nil:
		return fmt.Sprintf("built %s %s%s with %s, isolation %s: %s (%d bytes, sha256 %s)",
			o.Name, o.Version, id, out.goVer, out.isolation, out.manifest.Artifact, out.manifest.Size, out.manifest.Sha256)
	case p.changed():
		return fmt.Sprintf("work tree %s now at %s%s; the artifact was already in the store", string(o.Dest), o.Version, id)
	}
	return fmt.Sprintf("%s %s%s is already built: %s", o.Name, o.Version, id, out.manifest.Artifact)
}

func (out *outcome) diff() ansible.Diff {
	describe := func(commit, artifact string) string {
		if commit == "" {
			commit = "(none)"
		}
		if artifact == "" {
			artifact = "(none)"
		}
		return fmt.Sprintf("work tree: %s\ncommit: %s\nartifact: %s\n", string(out.o.Dest), commit, artifact)
	}
	before := ""
	if out.obs.Entry != nil && out.obs.EntryProblem == "" {
		before = out.obs.Entry.Artifact
	}
	after := before
	if out.manifest != nil {
		after = out.manifest.Artifact + " (sha256 " + out.manifest.Sha256 + ")"
	} else if out.p.Build {
		after = "(to be built)"
	}
	afterCommit := out.obs.Head
	if out.p.Checkout {
		afterCommit = out.obs.Resolved.Commit
	}
	return ansible.Diff{
		Before: describe(out.obs.Head, before), After: describe(afterCommit, after),
		BeforeHeader: string(out.o.Dest) + " (before)", AfterHeader: string(out.o.Dest) + " (after)",
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// hostName names the build host in the manifest.
func hostName() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
}
