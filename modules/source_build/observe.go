package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// observe gathers what is there without changing anything: the version
// resolved to a commit (asking the repository unless update is false), the
// work tree's state and the store's builds of this repository.
func observe(ctx context.Context, g *git, o *Options, rc recipe, st store) (*observed, error) {
	obs := &observed{Recipe: rc, RecipeHash: rc.hash()}

	info, err := os.Stat(string(o.Dest))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("dest: %w", err)
	case !info.IsDir():
		obs.DestExists = true // a file: makePlan refuses it
	default:
		obs.DestExists = true
		if obs.DestEmpty, err = emptyDir(string(o.Dest)); err != nil {
			return nil, fmt.Errorf("dest: %w", err)
		}
		if _, err := os.Stat(filepath.Join(string(o.Dest), ".git")); err == nil {
			obs.DestIsRepo = true
		}
	}
	if obs.DestIsRepo {
		obs.Origin = g.origin(ctx, string(o.Dest))
		obs.Head = g.head(ctx, string(o.Dest))
	}

	if o.Update {
		obs.Resolved, obs.ResolveWarnings, err = g.resolveRemote(ctx, o.Repo, o.Version)
	} else if obs.DestIsRepo {
		obs.Resolved, err = g.resolveLocal(ctx, string(o.Dest), o.Version)
	} else {
		err = fmt.Errorf("%w: update is false but %s is not a work tree yet, so there is nothing local to build from", ErrUnknownVersion, string(o.Dest))
	}
	if err != nil {
		return nil, err
	}
	r := obs.Resolved

	if obs.DestIsRepo {
		obs.HaveCommit = obs.Head == r.Commit || g.hasCommit(ctx, string(o.Dest), r.Commit)
		if r.Kind == kindTag {
			obs.LocalTagObject, obs.LocalTagCommit, _ = g.localRef(ctx, string(o.Dest), r.Ref)
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

	if needDirtyCheck(o, obs) {
		if obs.Dirty, err = g.dirty(ctx, string(o.Dest)); err != nil {
			return nil, fmt.Errorf("read the state of work tree %s: %w", string(o.Dest), err)
		}
		obs.DirtyChecked = true
	}
	return obs, nil
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
