package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/chezlepro/sovereign/internal/lock"
)

// done is what a run did (apply), or found already done: what report tells.
type done struct {
	after      string // commit checked out after the run
	fetched    bool
	built      bool
	changed    bool // the work tree changed (clone, origin, checkout)
	commitTime time.Time
	signature  *signature
	manifest   *manifest // the build of this key in the store, if any
	manifestAt string
	isolation  string
	isoDetail  string
	log        string
	logTail    []string
	pruned     []string
	previous   string // sha256 of the build a rebuild replaced
	warnings   []string
}

// alreadyDone is what the observation shows is there before apply changes
// anything: the work tree's checkout, the stored build of this key if it
// is whole, the signature checked so far.
func alreadyDone(req *request, obs *observed) *done {
	d := &done{after: obs.Head, commitTime: obs.CommitTime, signature: obs.Signature}
	if obs.Entry != nil && obs.EntryProblem == "" {
		d.manifest = obs.Entry
		d.manifestAt = filepath.Join(req.store.entryDir(obs.Key), "manifest.json")
	}
	return d
}

// apply is the lifecycle's Apply, under the work tree's lock: clone or
// fetch, verify, check out, build, then record the tag and prune the store
// under the store's lock. A refusal the plan made under the lock ends the
// run before any change.
func apply(ctx context.Context, req *request, obs *observed, p *plan) (*done, error) {
	d := alreadyDone(req, obs)
	if p.Refusal != nil {
		return d, p.Refusal
	}
	if err := updateWorkTree(ctx, req, obs, p, d); err != nil {
		return d, err
	}
	if p.Build {
		if err := build(ctx, req, obs, d); err != nil {
			return d, storeNoSpace(string(req.Store), err)
		}
	}
	return d, storeNoSpace(string(req.Store), finish(req, obs, p, d))
}

// updateWorkTree brings the work tree to the commit: clone or repoint
// origin, fetch, verify the signature, check out.
func updateWorkTree(ctx context.Context, req *request, obs *observed, p *plan, d *done) error {
	g, dest, r := req.git, string(req.Dest), obs.Resolved
	if p.Init {
		d.changed = true
		if err := g.initRepo(ctx, dest, req.Repo); err != nil {
			return fmt.Errorf("create work tree %s: %w", dest, err)
		}
	} else if p.SetOrigin {
		d.changed = true
		verb := []string{"remote", "set-url", "--", "origin", req.Repo}
		if obs.Origin == "" {
			verb = []string{"remote", "add", "--", "origin", req.Repo}
		}
		if _, err := g.run(ctx, dest, verb...); err != nil {
			return err
		}
	}
	if p.Fetch {
		if err := g.fetch(ctx, dest, r, req.Depth); err != nil {
			if r.Kind == kindCommit {
				return fmt.Errorf("%w: commit %s could not be fetched from %s: %w", ErrUnknownVersion, r.Commit, req.Repo, err)
			}
			return fmt.Errorf("fetch %s from %s: %w", r.Ref, req.Repo, err)
		}
		d.fetched = true
	}
	if (p.Fetch || !obs.HaveCommit) && !g.hasCommit(ctx, dest, r.Commit) {
		return fmt.Errorf("%w: commit %s is not in %s after fetching it", ErrUnknownVersion, r.Commit, req.Repo)
	}
	if d.commitTime.IsZero() {
		ct, err := g.commitTime(ctx, dest, r.Commit)
		if err != nil {
			return err
		}
		d.commitTime = ct
	}
	if req.Verify != "none" && d.signature == nil {
		sig, err := verifySignature(ctx, g, dest, req.Verify, r, string(req.Keyring))
		if err != nil {
			return err
		}
		d.signature = sig
	}
	if p.Checkout {
		d.changed = true
		if err := g.checkout(ctx, dest, r.Commit, p.Discard); err != nil {
			return fmt.Errorf("check out %s in %s: %w", shortID(r.Commit), dest, err)
		}
		d.after = r.Commit
	}
	return nil
}

// finish records the tag's commit and prunes the store, under the store
// lock: the work trees building this repository share the store.
func finish(req *request, obs *observed, p *plan, d *done) error {
	if !p.RecordTag && !d.built {
		return nil
	}
	st, r := req.store, obs.Resolved
	lk, err := lock.Acquire(context.Background(), st.lockPath(), req.lockTimeout())
	if err != nil {
		return fmt.Errorf("store %s: %w", st.RepoDir, err)
	}
	defer lk.Release()
	if p.RecordTag {
		tags, err := st.readTags()
		if err != nil {
			return err
		}
		tags[r.Ref] = tagRecord{Commit: r.Commit, Object: r.Object, Recorded: time.Now().UTC().Format(time.RFC3339), Key: obs.Key}
		if err := st.writeTags(tags); err != nil {
			return fmt.Errorf("record tag %s: %w", r.Ref, err)
		}
	}
	if d.built {
		pruned, err := st.prune(req.Keep, obs.Key)
		d.pruned = pruned
		if err != nil {
			return err
		}
	}
	return nil
}
