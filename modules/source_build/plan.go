package main

import (
	"errors"
	"fmt"
	"strings"
	"time"
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
	CommitTime     time.Time  // from the stored build's manifest; zero when there is none
	Signature      *signature // with verify_signature, when its objects are in the work tree
	SignatureErr   error      // why that check failed

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
	RecordTag bool // the store learns the tag's commit (tags.json)
	Reasons   []string
	Warnings  []string
	// Refusal is why the run must not go on (a sentinel error above, or
	// ErrSignature, wrapped); nil when it may.
	Refusal error
}

// changed says whether the plan changes the work tree or the store's builds:
// the task's changed. Fetching objects and recording a tag do not count.
func (p plan) changed() bool { return p.Init || p.SetOrigin || p.Checkout || p.Discard || p.Build }

// makePlanOrRefusal is the lifecycle's Plan: makePlan, with a refusal (its
// own or the failed signature check) kept in the plan so that the result
// still says what was seen, and a real run confirms it under the lock
// (another run's checkout may look like local changes).
func makePlanOrRefusal(req *request, obs *observed) (*plan, error) {
	p, err := makePlan(req, obs)
	switch {
	case err != nil:
		p.Refusal = err
	case obs.SignatureErr != nil:
		p.Refusal = obs.SignatureErr
	}
	return &p, nil
}

// changes is the lifecycle's Changes: whether a real run has anything to
// do under the lock. A refusal counts: it is made again there.
func changes(_ *request, p *plan) bool {
	return p.Refusal != nil || p.changed() || p.Fetch || p.RecordTag
}

// Refusals the plan can make. Each is wrapped with the details.
var (
	ErrMovedTag       = errors.New("tag moved")
	ErrDirty          = errors.New("work tree has local changes")
	ErrNotWorkTree    = errors.New("dest is not a git work tree")
	ErrOriginMismatch = errors.New("dest is a clone of another repository")
)

// needDirtyCheck says whether observe must read `git status`: only when the
// work tree has a checkout that a checkout or a build may touch.
func needDirtyCheck(req *request, obs *observed) bool {
	if !obs.DestIsRepo || obs.Head == "" {
		return false
	}
	return obs.Head != obs.Resolved.Commit || obs.Entry == nil || obs.EntryProblem != "" || req.Rebuild
}

// makePlan decides, from what is there and the request alone, what to do and
// why. It has no side effects. Each phase adds its steps, reasons and
// warnings to p, or refuses.
func makePlan(req *request, obs *observed) (plan, error) {
	var p plan
	p.Warnings = append(p.Warnings, obs.ResolveWarnings...)
	if err := planWorkTree(req, obs, &p); err != nil {
		return p, err
	}
	if err := checkTag(req, obs, &p); err != nil {
		return p, err
	}
	planFetch(req, obs, &p)
	planBuildAndCheckout(req, obs, &p)
	if err := checkLocalChanges(req, obs, &p); err != nil {
		return p, err
	}
	if req.Verify != "none" && obs.Signature == nil && obs.SignatureErr == nil {
		p.Reasons = append(p.Reasons, "the signature will be checked once the "+req.Verify+" is fetched")
	}
	return p, nil
}

// planWorkTree decides whether dest is cloned, or its origin set: it must
// be missing, empty, or a clone of repo (force repoints another).
func planWorkTree(req *request, obs *observed, p *plan) error {
	switch {
	case !obs.DestExists || (obs.DestEmpty && !obs.DestIsRepo):
		p.Init, p.Fetch, p.Checkout = true, true, true
		p.Reasons = append(p.Reasons, fmt.Sprintf("work tree %s does not exist yet: clone %s %s into it", string(req.Dest), obs.Resolved.Kind, req.Version))
	case !obs.DestIsRepo:
		return fmt.Errorf("%w: %s exists, is not empty and has no .git; remove it or choose another dest", ErrNotWorkTree, string(req.Dest))
	case obs.Origin == req.Repo:
	case obs.Origin != "" && obs.Origin == req.repoWithAuth:
		p.SetOrigin = true // an older run wrote the credential into .git/config: take it out
	case obs.Origin != "":
		if !req.Force {
			return fmt.Errorf("%w: %s has origin %s, not %s; set force: true to repoint it", ErrOriginMismatch, string(req.Dest), redactURL(obs.Origin), req.Repo)
		}
		p.SetOrigin = true
		p.Warnings = append(p.Warnings, fmt.Sprintf("origin of %s changed from %s to %s (force)", string(req.Dest), redactURL(obs.Origin), req.Repo))
	case obs.Origin == "":
		p.SetOrigin = true
	}
	return nil
}

// checkTag refuses a tag that moved since the store or the work tree saw
// it (allow_moved_tag: a warning), and decides whether the store records
// the tag's commit.
func checkTag(req *request, obs *observed, p *plan) error {
	r := obs.Resolved
	if r.Kind != kindTag {
		return nil
	}
	p.RecordTag = obs.RecordedTag == nil || obs.RecordedTag.Commit != r.Commit
	tag := strings.TrimPrefix(r.Ref, "refs/tags/")
	var moved []string
	if rec := obs.RecordedTag; rec != nil && rec.Commit != r.Commit {
		moved = append(moved, fmt.Sprintf("the store built %s from it on %s", shortID(rec.Commit), rec.Recorded))
	}
	if obs.LocalTagCommit != "" && obs.LocalTagCommit != r.Commit {
		moved = append(moved, fmt.Sprintf("the work tree has it at %s", shortID(obs.LocalTagCommit)))
	}
	if len(moved) == 0 {
		return nil
	}
	what := fmt.Sprintf("%s now points %s at %s, but %s", req.Repo, tag, shortID(r.Commit), strings.Join(moved, " and "))
	if !req.AllowMovedTag {
		return fmt.Errorf("%w: %s; the sources under this name changed: check the mirror, or set allow_moved_tag: true to build the new commit", ErrMovedTag, what)
	}
	p.Warnings = append(p.Warnings, "tag moved: "+what+" (allow_moved_tag: building the new commit)")
	return nil
}

// planFetch decides whether an existing work tree fetches: when the commit,
// or the tag object, is not there yet (and update allows asking).
func planFetch(req *request, obs *observed, p *plan) {
	if p.Init || !req.Update {
		return
	}
	switch {
	case !obs.HaveCommit:
		p.Fetch = true
	case obs.Resolved.Kind == kindTag && obs.LocalTagObject != obs.Resolved.Object:
		p.Fetch = true // the commit is there but the tag is not (or not this one)
	}
}

// planBuildAndCheckout decides whether the store gets a build (none of
// this key, a broken one, or rebuild) and whether the work tree moves.
func planBuildAndCheckout(req *request, obs *observed, p *plan) {
	r := obs.Resolved
	switch {
	case obs.Entry == nil:
		p.Build = true
		p.Reasons = append(p.Reasons, buildReason(req, obs))
	case obs.EntryProblem != "":
		p.Build = true
		p.Reasons = append(p.Reasons, "missing artifact: "+obs.EntryProblem)
	case req.Rebuild:
		p.Build = true
		p.Reasons = append(p.Reasons, "rebuild requested: the new artifact is compared with the stored one ("+obs.Entry.Sha256+")")
	}
	if p.Init || obs.Head == r.Commit {
		return
	}
	p.Checkout = true
	if obs.Head == "" {
		p.Reasons = append(p.Reasons, fmt.Sprintf("work tree %s has no checkout yet: check out %s", string(req.Dest), shortID(r.Commit)))
	} else {
		p.Reasons = append(p.Reasons, fmt.Sprintf("work tree at %s, moving to %s (%s)", shortID(obs.Head), shortID(r.Commit), req.Version))
	}
}

// checkLocalChanges refuses to check out or build over local changes
// (force: they are discarded, with a warning).
func checkLocalChanges(req *request, obs *observed, p *plan) error {
	if !(p.Checkout || p.Build) || len(obs.Dirty) == 0 {
		return nil
	}
	list := obs.Dirty
	more := ""
	if len(list) > 10 {
		more = fmt.Sprintf(" and %d more", len(list)-10)
		list = list[:10]
	}
	if !req.Force {
		return fmt.Errorf("%w: %s (%s%s); refusing to check out or build over them: commit or remove them, or set force: true to discard them",
			ErrDirty, string(req.Dest), strings.Join(list, ", "), more)
	}
	p.Discard = true
	p.Checkout = true
	p.Warnings = append(p.Warnings, fmt.Sprintf("discarding local changes in %s (force): %s%s", string(req.Dest), strings.Join(list, ", "), more))
	return nil
}

// buildReason explains why a key is not in the store, by comparing with the
// builds that are: a new commit, or a changed recipe.
func buildReason(req *request, obs *observed) string {
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
		if m.Version == req.Version {
			return fmt.Sprintf("new commit: %s was %s at the last build, now %s", req.Version, shortID(m.Commit), shortID(r.Commit))
		}
	}
	if len(obs.Others) == 0 {
		return fmt.Sprintf("new commit: nothing from %s is in the store yet", req.Repo)
	}
	last := obs.Others[0]
	return fmt.Sprintf("new commit: %s (%s) was never built; the last build is %s (%s)", shortID(r.Commit), req.Version, shortID(last.Commit), last.Version)
}
