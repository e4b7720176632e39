package main

import (
	"errors"
	"strings"
	"testing"
)

const (
	c1 = "1111111111111111111111111111111111111111"
	c2 = "2222222222222222222222222222222222222222"
	t1 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" // tag object of v1
)

// cleanObserved is a work tree at c1 = tag v1, built and stored.
func cleanObserved(o *request) *observed {
	rc := newRecipe(&o.Options, "go1.26.8")
	return &observed{
		Resolved:   resolved{Kind: kindTag, Ref: "refs/tags/v1", Object: t1, Commit: c1},
		DestExists: true, DestIsRepo: true, Origin: o.Repo, Head: c1, HaveCommit: true,
		LocalTagObject: t1, LocalTagCommit: c1,
		Recipe: rc, RecipeHash: rc.hash(), Key: storeKey(c1, rc.hash()),
		Entry:       &manifest{Commit: c1, Version: "v1", Key: "k1", Sha256: "ab"},
		RecordedTag: &tagRecord{Commit: c1, Recorded: "2026-01-01T00:00:00Z"},
	}
}

func TestPlan(t *testing.T) {
	type want struct {
		init, fetch, checkout, discard, build, changed bool
		reason                                         string
		err                                            error
		errText                                        string
		warning                                        string
	}
	cases := []struct {
		name   string
		opts   func(o *Options)
		change func(obs *observed)
		want   want
	}{
		{"noop", nil, nil, want{}},
		{"no work tree yet", nil, func(obs *observed) {
			*obs = observed{Resolved: obs.Resolved, Recipe: obs.Recipe, RecipeHash: obs.RecipeHash, Key: obs.Key}
		}, want{init: true, fetch: true, checkout: true, build: true, changed: true, reason: "does not exist yet"}},
		{"empty dir", nil, func(obs *observed) {
			*obs = observed{Resolved: obs.Resolved, DestExists: true, DestEmpty: true, Recipe: obs.Recipe, Key: obs.Key}
		}, want{init: true, fetch: true, checkout: true, build: true, changed: true}},
		{"not a work tree", nil, func(obs *observed) { obs.DestIsRepo, obs.DestEmpty = false, false },
			want{err: ErrNotWorkTree}},
		{"other origin refused", nil, func(obs *observed) { obs.Origin = "git://elsewhere/x.git" },
			want{err: ErrOriginMismatch, errText: "git://elsewhere/x.git"}},
		{"origin with the credential is rewritten without it", func(o *Options) {
			o.Repo = "https://u:pw@forge/x.git"
		}, func(obs *observed) { obs.Origin = "https://u:pw@forge/x.git" }, want{changed: true}},
		{"other origin with a credential is named without it", nil, func(obs *observed) { obs.Origin = "https://u:pw@elsewhere/x.git" },
			want{err: ErrOriginMismatch, errText: "origin https://elsewhere/x.git,"}},
		{"other origin forced", func(o *Options) { o.Force = true }, func(obs *observed) { obs.Origin = "git://elsewhere/x.git" },
			want{changed: true, warning: "origin of"}},
		{"new commit on a branch", func(o *Options) { o.Version = "main" }, func(obs *observed) {
			obs.Resolved = resolved{Kind: kindBranch, Ref: "refs/heads/main", Object: c2, Commit: c2}
			obs.HaveCommit, obs.Entry = false, nil
			obs.Others = []*manifest{{Commit: c1, Version: "v1", Key: "k1"}}
		}, want{fetch: true, checkout: true, build: true, changed: true, reason: "new commit: 222222222222 (main) was never built; the last build is 111111111111 (v1)"}},
		{"branch moved since last build", func(o *Options) { o.Version = "main" }, func(obs *observed) {
			obs.Resolved = resolved{Kind: kindBranch, Ref: "refs/heads/main", Object: c2, Commit: c2}
			obs.Entry = nil
			obs.Others = []*manifest{{Commit: c1, Version: "main", Key: "k1"}}
		}, want{checkout: true, build: true, changed: true, reason: "new commit: main was 111111111111 at the last build, now 222222222222"}},
		{"first build of the repository", nil, func(obs *observed) { obs.Entry = nil },
			want{build: true, changed: true, reason: "new commit: nothing from git://forge/traefik.git is in the store yet"}},
		{"changed recipe", nil, func(obs *observed) {
			old := obs.Recipe
			old.GOARCH = "riscv64"
			obs.Entry = nil
			obs.Others = []*manifest{{Commit: c1, Version: "v1", Key: "k1", Recipe: old}}
		}, want{build: true, changed: true, reason: `changed recipe since build k1: goarch ("riscv64" -> `}},
		{"missing artifact", nil, func(obs *observed) { obs.EntryProblem = "artifact missing: /s/x" },
			want{build: true, changed: true, reason: "missing artifact: artifact missing: /s/x"}},
		{"rebuild", func(o *Options) { o.Rebuild = true }, nil, want{build: true, changed: true, reason: "rebuild requested"}},
		{"work tree elsewhere, artifact stored", nil, func(obs *observed) { obs.Head = c2 },
			want{checkout: true, changed: true, reason: "work tree at 222222222222, moving to 111111111111"}},
		{"moved tag (store) refused", nil, func(obs *observed) {
			obs.Resolved.Commit, obs.Resolved.Object = c2, c2
			obs.Entry, obs.LocalTagObject, obs.LocalTagCommit = nil, "", ""
		}, want{err: ErrMovedTag, errText: "now points v1 at 222222222222, but the store built 111111111111 from it"}},
		{"moved tag (work tree) refused", nil, func(obs *observed) {
			obs.Resolved.Commit, obs.Resolved.Object = c2, c2
			obs.RecordedTag, obs.Entry = nil, nil
		}, want{err: ErrMovedTag, errText: "the work tree has it at 111111111111"}},
		{"moved tag allowed", func(o *Options) { o.AllowMovedTag = true }, func(obs *observed) {
			obs.Resolved.Commit, obs.Resolved.Object = c2, c2
			obs.Entry, obs.HaveCommit = nil, false
		}, want{fetch: true, checkout: true, build: true, changed: true, warning: "allow_moved_tag"}},
		{"tag not fetched yet", nil, func(obs *observed) { obs.LocalTagObject, obs.LocalTagCommit = "", "" },
			want{fetch: true}},
		{"no fetch when update is false", func(o *Options) { o.Update = false }, func(obs *observed) { obs.LocalTagObject = "" },
			want{}},
		{"dirty refused", nil, func(obs *observed) { obs.Head = c2; obs.Dirty = []string{"M main.go"} },
			want{err: ErrDirty, errText: "M main.go"}},
		{"dirty forced", func(o *Options) { o.Force = true }, func(obs *observed) { obs.Entry = nil; obs.Dirty = []string{"?? x"} },
			want{checkout: true, discard: true, build: true, changed: true, warning: "discarding local changes"}},
		{"dirty but nothing to do", nil, func(obs *observed) { obs.Dirty = []string{"M main.go"} }, want{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := validOptions()
			if c.opts != nil {
				c.opts(o)
			}
			req, err := resolveOptions(*o)
			if err != nil {
				t.Fatal(err)
			}
			obs := cleanObserved(req)
			if c.change != nil {
				c.change(obs)
			}
			p, err := makePlan(req, obs)
			if c.want.err != nil {
				if !errors.Is(err, c.want.err) || !strings.Contains(err.Error(), c.want.errText) {
					t.Fatalf("error %v, want %v containing %q", err, c.want.err, c.want.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := want{init: p.Init, fetch: p.Fetch, checkout: p.Checkout, discard: p.Discard, build: p.Build, changed: p.changed()}
			exp := c.want
			exp.reason, exp.warning = "", ""
			if got != exp {
				t.Fatalf("plan %+v\nwant %+v", got, exp)
			}
			if c.want.reason != "" && !strings.Contains(strings.Join(p.Reasons, "\n"), c.want.reason) {
				t.Errorf("reasons %q lack %q", p.Reasons, c.want.reason)
			}
			if c.want.warning != "" && !strings.Contains(strings.Join(p.Warnings, "\n"), c.want.warning) {
				t.Errorf("warnings %q lack %q", p.Warnings, c.want.warning)
			}
			if !p.changed() && len(p.Reasons) != 0 {
				t.Errorf("nothing to do but reasons %q", p.Reasons)
			}
		})
	}
}

func TestNeedDirtyCheck(t *testing.T) {
	o, _ := resolveOptions(*validOptions())
	obs := cleanObserved(o)
	if needDirtyCheck(o, obs) {
		t.Error("a noop must not pay for git status")
	}
	obs.Head = c2
	if !needDirtyCheck(o, obs) {
		t.Error("a checkout needs the dirty check")
	}
	obs.Head, obs.Entry = c1, nil
	if !needDirtyCheck(o, obs) {
		t.Error("a build needs the dirty check")
	}
}
