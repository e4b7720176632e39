package main

import (
	"time"

	"github.com/chezlepro/sovereign/internal/ansible"
	"github.com/chezlepro/sovereign/internal/metrics"
)

// request is what one run acts on, made once by resolve: the options checked
// and completed (resolveOptions), the recipe, the store, and the git and go
// the run uses. Nothing later changes it.
type request struct {
	// Options as checked and completed: name, goos and goarch filled in,
	// dest and store cleaned, chdir cleaned, and repo without userinfo.
	Options
	// repoWithAuth is the repository URL as given when it had userinfo
	// (secrets.go), else "".
	repoWithAuth string

	recipe  recipe
	store   store
	git     *git
	goBin   string // "" when a command recipe runs where there is no go
	goVer   string
	metrics metrics.Target
	start   time.Time
}

// lockTimeout is how long the run waits for the work tree's lock, and for
// the store's while it changes the store.
func (req *request) lockTimeout() time.Duration {
	return time.Duration(req.LockTimeout * float64(time.Second))
}

// resolve is the lifecycle's Resolve: every refusal of the options, then
// what the run needs that does not change while it runs (the metrics
// target, git, go and its version, the recipe and the store). It only
// looks at the host; nothing is created.
func resolve(actx *ansible.Context, given *Options) (*request, error) {
	start := time.Now()
	for _, s := range credentialSecrets(given.Repo) { // before the checks: their messages too
		actx.Hide(s)
	}
	req, err := resolveOptions(*given)
	if err != nil {
		return nil, err
	}
	req.start = start
	if req.metrics, err = metrics.Resolve(string(req.MetricsDir), metricsDefault); err != nil {
		return nil, err
	}
	// What the paths are on this host.
	for _, pl := range []struct{ opt, path string }{{"dest", string(req.Dest)}, {"store", string(req.Store)}} {
		if err := checkPlaceOnDisk(pl.opt, pl.path); err != nil {
			return nil, err
		}
	}
	if req.git, err = newGit(time.Duration(req.Timeout) * time.Second); err != nil {
		return nil, err
	}
	req.git.env = append(req.git.env, credentialEnv(req.Repo, req.repoWithAuth)...)
	if req.goBin, err = findGo(string(req.GoBinary), len(req.Command) == 0); err != nil {
		return nil, err
	}
	if req.goVer, err = goVersion(req.goBin); err != nil {
		return nil, err
	}
	req.recipe = newRecipe(&req.Options, req.goVer)
	req.store = openStore(string(req.Store), req.Name, req.Repo)
	return req, nil
}
