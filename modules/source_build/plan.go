package main

import (
	"errors"
	"fmt"
	"strings"
)

// observed is what is there before the run, gathered without changing
// anything (observe.go): the version resolved to a commit, the work tree,
// and the store.
type observed struct {
	Resolved        resolved
	ResolveWarnings []string

	DestExists     bool
	DestIsRepo     bool
	DestEmpty      bool
	Origin         string
	Head           string // commit checked out, "" when none
	HaveCommit     bool   // the resolved commit is in the work tree's object store
	LocalTagObject string // what the work tree's tag of that name points to
	LocalTagCommit string
	Dirty          []string // `git status` entries; only read when a checkout or build may follow
	DirtyChecked   bool

	Recipe       recipe
	RecipeHash   string
	Key          string
	Entry        *manifest // the stored build with this key, if any
	EntryProblem string    // why Entry cannot be used, "" when it can
	Others       []*manifest
	RecordedTag  *tagRecord // the commit the store saw this tag at
}

// plan is what a run does: check mode reports it, a real run applies it.
type plan struct {
	Init      bool // dest is created as a repository with origin = repo
	SetOrigin bool // dest's origin is changed to repo (force)
	Fetch     bool
	Checkout  bool
	Discard   bool // local changes are thrown away (force)
	Build     bool
	Reasons   []string
	Warnings  []string
}

func (p plan) changed() bool { return p.Init || p.SetOrigin || p.Checkout || p.Discard || p.Build }

// Refusals the plan can make. Each is wrapped with the details.
var (
	ErrMovedTag       = errors.New("tag moved")
	ErrDirty          = errors.New("work tree has local changes")
	ErrNotWorkTree    = errors.New("dest is not a git work tree")
	ErrOriginMismatch = errors.New("dest is a clone of another repository")
)

// needDirtyCheck says whether observe must read `git status`: only when the
// work tree has a checkout that a checkout or a build may touch.
func needDirtyCheck(o *Options, obs *observed) bool {
	if !obs.DestIsRepo || obs.Head == "" {
		return false
	}
	return obs.Head != obs.Resolved.Commit || obs.Entry == nil || obs.EntryProblem != "" || o.Rebuild
}

// makePlan decides, from what is there and the options alone, what to do and
// why. It has no side effects.
func makePlan(o *Options, obs *observed) (plan, error) {
	var p plan
	r := obs.Resolved
	p.Warnings = append(p.Warnings, obs.ResolveWarnings...)

	switch {
	case !obs.DestExists || (obs.DestEmpty && !obs.DestIsRepo):
		p.Init, p.Fetch, p.Checkout = true, true, true
		p.Reasons = append(p.Reasons, fmt.Sprintf("work tree %s does not exist yet: clone %s %s into it", string(o.Dest), r.Kind, o.Version))
	case !obs.DestIsRepo:
		return p, fmt.Errorf("%w: %s exists, is not empty and has no .git; remove it or choose another dest", ErrNotWorkTree, string(o.Dest))
	case obs.Origin == o.Repo:
	case obs.Origin != "" && obs.Origin == o.repoWithAuth:
		p.SetOrigin = true // an older run wrote the credential into .git/config: take it out
	case obs.Origin != "":
		if !o.Force {
			return p, fmt.Errorf("%w: %s has origin %s, not %s; set force: true to repoint it", ErrOriginMismatch, string(o.Dest), redactURL(obs.Origin), o.Repo)
		}
		p.SetOrigin = true
		p.Warnings = append(p.Warnings, fmt.Sprintf("origin of %s changed from %s to %s (force)", string(o.Dest), redactURL(obs.Origin), o.Repo))
	case obs.Origin == "":
		p.SetOrigin = true
	}

	if r.Kind == kindTag {
		tag := strings.TrimPrefix(r.Ref, "refs/tags/")
		var moved []string
		if rec := obs.RecordedTag; rec != nil && rec.Commit != r.Commit {
			moved = append(moved, fmt.Sprintf("the store built %s from it on %s", shortID(rec.Commit), rec.Recorded))
		}
		if obs.LocalTagCommit != "" && obs.LocalTagCommit != r.Commit {
			moved = append(moved, fmt.Sprintf("the work tree has it at %s", shortID(obs.LocalTagCommit)))
		}
		if len(moved) > 0 {
			what := fmt.Sprintf("%s now points %s at %s, but %s", o.Repo, tag, shortID(r.Commit), strings.Join(moved, " and "))
			if !o.AllowMovedTag {
				return p, fmt.Errorf("%w: %s; the sources under this name changed: check the mirror, or set allow_moved_tag: true to build the new commit", ErrMovedTag, what)
			}
			p.Warnings = append(p.Warnings, "tag moved: "+what+" (allow_moved_tag: building the new commit)")
		}
	}

	if !p.Init && o.Update {
		switch {
		case !obs.HaveCommit:
			p.Fetch = true
		case r.Kind == kindTag && obs.LocalTagObject != r.Object:
			p.Fetch = true // the commit is there but the tag is not (or not this one)
		}
	}

	switch {
	case obs.Entry == nil:
		p.Build = true
		p.Reasons = append(p.Reasons, buildReason(o, obs))
	case obs.EntryProblem != "":
		p.Build = true
		p.Reasons = append(p.Reasons, "missing artifact: "+obs.EntryProblem)
	case o.Rebuild:
		p.Build = true
		p.Reasons = append(p.Reasons, "rebuild requested: the new artifact is compared with the stored one ("+obs.Entry.Sha256+")")
	}

	if !p.Init && obs.Head != r.Commit {
		p.Checkout = true
		if obs.Head == "" {
			p.Reasons = append(p.Reasons, fmt.Sprintf("work tree %s has no checkout yet: check out %s", string(o.Dest), shortID(r.Commit)))
		} else {
			p.Reasons = append(p.Reasons, fmt.Sprintf("work tree at %s, moving to %s (%s)", shortID(obs.Head), shortID(r.Commit), o.Version))
		}
	}

	if (p.Checkout || p.Build) && len(obs.Dirty) > 0 {
		list := obs.Dirty
		more := ""
		if len(list) > 10 {
			more = fmt.Sprintf(" and %d more", len(list)-10)
			list = list[:10]
		}
		if !o.Force {
			return p, fmt.Errorf("%w: %s (%s%s); refusing to check out or build over them: commit or remove them, or set force: true to discard them",
				ErrDirty, string(o.Dest), strings.Join(list, ", "), more)
		}
		p.Discard = true
		p.Checkout = true
		p.Warnings = append(p.Warnings, fmt.Sprintf("discarding local changes in %s (force): %s%s", string(o.Dest), strings.Join(list, ", "), more))
	}
	return p, nil
}

// buildReason explains why a key is not in the store, by comparing with the
// builds that are: a new commit, or a changed recipe.
func buildReason(o *Options, obs *observed) string {
	r := obs.Resolved
	for _, m := range obs.Others {
		if m.Commit == r.Commit {
			ch := recipeChanges(m.Recipe, obs.Recipe.redacted())
			if len(ch) == 0 {
				return fmt.Sprintf("changed recipe: the recipe hash differs from build %s", m.Key)
			}
			return "changed recipe since build " + m.Key + ": " + strings.Join(ch, ", ")
		}
	}
	for _, m := range obs.Others {
		if m.Version == o.Version {
			return fmt.Sprintf("new commit: %s was %s at the last build, now %s", o.Version, shortID(m.Commit), shortID(r.Commit))
		}
	}
	if len(obs.Others) == 0 {
		return fmt.Sprintf("new commit: nothing from %s is in the store yet", o.Repo)
	}
	last := obs.Others[0]
	return fmt.Sprintf("new commit: %s (%s) was never built; the last build is %s (%s)", shortID(r.Commit), o.Version, shortID(last.Commit), last.Version)
}
