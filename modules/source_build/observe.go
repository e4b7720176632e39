package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// observe is the lifecycle's Observe: it gathers what is there without
// changing anything: the version resolved to a commit (asking the repository
// unless update is false), the work tree's state, the store's builds of this
// repository and, with verify_signature, the signature when its objects are
// in the work tree. It is safe while another run holds the work tree's lock:
// git only reads (status takes no optional lock), the store's files are
// replaced by rename; what it sees mid-way through another run is looked at
// again under the lock before anything is done.
func observe(ctx context.Context, req *request) (*observed, error) {
	g, st := req.git, req.store
	obs := &observed{Recipe: req.recipe, RecipeHash: req.recipe.hash()}

	info, err := os.Stat(string(req.Dest))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("dest: %w", err)
	case !info.IsDir():
		obs.DestExists = true // a file: makePlan refuses it
	default:
		obs.DestExists = true
		if obs.DestEmpty, err = emptyDir(string(req.Dest)); err != nil {
			return nil, fmt.Errorf("dest: %w", err)
		}
		if _, err := os.Stat(filepath.Join(string(req.Dest), ".git")); err == nil {
			obs.DestIsRepo = true
		}
	}
	if obs.DestIsRepo {
		obs.Origin = g.origin(ctx, string(req.Dest))
		obs.Head = g.head(ctx, string(req.Dest))
	}

	if req.Update {
		obs.Resolved, obs.ResolveWarnings, err = g.resolveRemote(ctx, req.Repo, req.Version)
	} else if obs.DestIsRepo {
		obs.Resolved, err = g.resolveLocal(ctx, string(req.Dest), req.Version)
	} else {
		err = fmt.Errorf("%w: update is false but %s is not a work tree yet, so there is nothing local to build from", ErrUnknownVersion, string(req.Dest))
	}
	if err != nil {
		return nil, err
	}
	r := obs.Resolved

	if obs.DestIsRepo {
		obs.HaveCommit = obs.Head == r.Commit || g.hasCommit(ctx, string(req.Dest), r.Commit)
		if r.Kind == kindTag {
			obs.LocalTagObject, obs.LocalTagCommit, _ = g.localRef(ctx, string(req.Dest), r.Ref)
		}
	}

	obs.Key = storeKey(r.Commit, obs.RecipeHash)
	if m, err := readManifest(st.entryDir(obs.Key)); err == nil {
		obs.Entry = m
		obs.EntryProblem = entryProblem(m, r.Commit, obs.RecipeHash)
	} else if !errors.Is(err, fs.ErrNotExist) {
		obs.Entry = &manifest{}
		obs.EntryProblem = "unreadable manifest: " + err.Error()
	}
	if obs.Entry == nil || obs.EntryProblem != "" {
		if obs.Others, err = st.entries(); err != nil {
			return nil, fmt.Errorf("read store %s: %w", st.RepoDir, err)
		}
	}
	if r.Kind == kindTag {
		tags, err := st.readTags()
		if err != nil {
			return nil, err
		}
		if rec, ok := tags[r.Ref]; ok {
			obs.RecordedTag = &rec
		}
	}

	obs.CommitTime = storedCommitTime(obs)
	if req.Verify != "none" {
		obs.Signature, obs.SignatureErr = checkSignatureReadOnly(ctx, req, obs)
	}
	if needDirtyCheck(req, obs) {
		if obs.Dirty, err = g.dirty(ctx, string(req.Dest)); err != nil {
			return nil, fmt.Errorf("read the state of work tree %s: %w", string(req.Dest), err)
		}
		obs.DirtyChecked = true
	}
	return obs, nil
}

// storedCommitTime is the commit's time as the stored build's manifest
// records it, so that a run with nothing to do spawns no git for it; zero
// when there is no usable build of this commit.
func storedCommitTime(obs *observed) time.Time {
	if m := obs.Entry; m != nil && obs.EntryProblem == "" && m.Commit == obs.Resolved.Commit {
		if t, err := time.Parse(time.RFC3339, m.CommitTime); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// checkSignatureReadOnly verifies the signature when the objects are already
// in the work tree. Both results are nil when they are not: the check is
// then made once they are fetched (apply).
func checkSignatureReadOnly(ctx context.Context, req *request, obs *observed) (*signature, error) {
	haveTag := obs.Resolved.Kind != kindTag || obs.LocalTagObject == obs.Resolved.Object
	if !obs.DestIsRepo || !obs.HaveCommit || !haveTag {
		return nil, nil
	}
	return verifySignature(ctx, req.git, string(req.Dest), req.Verify, obs.Resolved, string(req.Keyring))
}

func emptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if len(names) > 0 {
		return false, nil
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	return true, nil
}
