package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/chezlepro/sovereign/internal/ansible"
	"github.com/chezlepro/sovereign/internal/lock"
	"github.com/chezlepro/sovereign/internal/metrics"
)

func module() ansible.Module[Options] {
	return ansible.Module[Options]{
		Name:              "source_build",
		SupportsCheckMode: true,
		Run: ansible.Lifecycle(ansible.Stages[Options, *request, *observed, *plan, *done]{
			Resolve: resolve,           // request.go: every refusal of the options; git, go, recipe, store
			Observe: observe,           // observe.go: the version's commit, the work tree, the store
			Plan:    makePlanOrRefusal, // plan.go: pure; refusals kept in the plan
			Changes: changes,           // plan.go: whether a real run takes the lock
			Lock:    lockWorkTree,      // the work tree's lock; apply takes the store's
			Apply:   apply,             // apply.go: clone/fetch, verify, check out, build, record
			Report:  report,            // report.go: the typed result, and the metrics of a real run
		}),
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

// lockWorkTree is the lifecycle's Lock: the work tree's lock, held from the
// second look to the end of apply, so that two runs never fetch, check out
// or build in one work tree at once. The store's lock is shorter: apply
// takes it only around the store's changes (installing a build, recording
// a tag, pruning), so work trees sharing a store build side by side.
func lockWorkTree(ctx context.Context, req *request) (func(), error) {
	dest := string(req.Dest)
	lk, err := lock.Acquire(ctx, workTreeLock(dest), req.lockTimeout())
	if errors.Is(err, lock.ErrTimeout) {
		return nil, fmt.Errorf("another build of work tree %s is running: %w", dest, err)
	}
	if err != nil {
		return nil, fmt.Errorf("lock work tree %s: %w", dest, err)
	}
	return func() { lk.Release() }, nil
}

// metricsDefault is where metrics go when metrics_dir is not given, if it
// exists; tests point it elsewhere.
var metricsDefault = metrics.DefaultDir

// hostName names the build host in the manifest.
func hostName() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
}
