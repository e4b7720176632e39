package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// git runs the git CLI on the build host. Every call is bounded by timeout,
// never prompts, and parses output in the C locale.
type git struct {
	bin     string
	timeout time.Duration
	env     []string // extra KEY=VALUE entries (GNUPGHOME for verification)
}

// GitError is a failed git command: what ran, its exit status and stderr.
type GitError struct {
	Args   []string
	Status string
	Stderr string
}

func (e *GitError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = "(no output)"
	}
	return fmt.Sprintf("git %s: %s: %s", strings.Join(e.Args, " "), e.Status, msg)
}

func newGit(timeout time.Duration) (*git, error) {
	bin, err := exec.LookPath("git")
	if err != nil {
		return nil, fmt.Errorf("git is not installed on the build host (not found in PATH %s): %w", os.Getenv("PATH"), err)
	}
	return &git{bin: bin, timeout: timeout}, nil
}

// gitRepoVars are the variables that point git at a repository other than
// the one in its working directory (`git rev-parse --local-env-vars`, less
// the config ones). git rebase --exec sets GIT_DIR, for one: inherited, it
// turns `git init -- dest` into a re-init of the caller's repository.
var gitRepoVars = map[string]bool{
	"GIT_DIR": true, "GIT_WORK_TREE": true, "GIT_INDEX_FILE": true, "GIT_OBJECT_DIRECTORY": true,
	"GIT_ALTERNATE_OBJECT_DIRECTORIES": true, "GIT_COMMON_DIR": true, "GIT_IMPLICIT_WORK_TREE": true,
	"GIT_GRAFT_FILE": true, "GIT_NO_REPLACE_OBJECTS": true, "GIT_REPLACE_REF_BASE": true, "GIT_PREFIX": true,
	"GIT_INTERNAL_SUPER_PREFIX": true, "GIT_SHALLOW_FILE": true,
}

// withoutGitRepoVars is env without gitRepoVars.
func withoutGitRepoVars(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); !gitRepoVars[k] {
			out = append(out, kv)
		}
	}
	return out
}

func (g *git) environ() []string {
	// GIT_ALLOW_PROTOCOL: no remote helper (fd::, ext::) even if one got past validation.
	env := append(withoutGitRepoVars(os.Environ()), "LC_ALL=C", "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=true", "SSH_ASKPASS=true",
		"GIT_ALLOW_PROTOCOL=file:git:http:https:ssh")
	if os.Getenv("GIT_SSH_COMMAND") == "" {
		env = append(env, "GIT_SSH_COMMAND=ssh -o BatchMode=yes")
	}
	return append(env, g.env...)
}

// run runs git in dir ("" for no repository) and returns its stdout.
func (g *git) run(ctx context.Context, dir string, args ...string) (string, error) {
	out, _, err := g.runBoth(ctx, dir, args...)
	return out, err
}

// runBoth is run that also returns stderr on success (verify-* print their
// status lines there).
func (g *git) runBoth(ctx context.Context, dir string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	full := args
	if dir != "" {
		full = append([]string{"-C", dir}, args...)
	}
	cmd := exec.CommandContext(ctx, g.bin, full...)
	cmd.Env = g.environ()
	cmd.Stdin = nil
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		status := err.Error()
		if ctx.Err() == context.DeadlineExceeded {
			status = fmt.Sprintf("timed out after %s", g.timeout)
		}
		return stdout.String(), stderr.String(), &GitError{Args: args, Status: status, Stderr: stderr.String()}
	}
	return stdout.String(), stderr.String(), nil
}

// exitCode returns the exit status of a failed git command, or -1.
func exitCode(err error) int {
	var ge *GitError
	if errors.As(err, &ge) && strings.HasPrefix(ge.Status, "exit status ") {
		n, _ := strconv.Atoi(strings.TrimPrefix(ge.Status, "exit status "))
		return n
	}
	return -1
}

// Ref kinds a version resolves to.
const (
	kindTag    = "tag"
	kindBranch = "branch"
	kindCommit = "commit"
)

// resolved is a version turned into a commit.
type resolved struct {
	Kind   string // tag, branch or commit
	Ref    string // refs/tags/v1, refs/heads/main, or "" for a commit
	Object string // what the ref points to: the tag object of an annotated tag, else the commit
	Commit string
	Source string // "remote" (ls-remote) or "local" (update: false)
}

// lsRemotePatterns are the refs git ls-remote is asked for to resolve version.
func lsRemotePatterns(version string) []string {
	if strings.HasPrefix(version, "refs/") {
		return []string{version, version + "^{}"}
	}
	return []string{"refs/tags/" + version, "refs/tags/" + version + "^{}", "refs/heads/" + version}
}

// parseLsRemote resolves version from git ls-remote output. A tag wins over a
// branch of the same name (as git itself decides), with a warning.
func parseLsRemote(version, out string) (resolved, []string, error) {
	refs := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 {
			refs[f[1]] = f[0]
		}
	}
	var warnings []string
	tagRef, branchRef := "refs/tags/"+version, "refs/heads/"+version
	if strings.HasPrefix(version, "refs/") {
		tagRef, branchRef = "", ""
		if strings.HasPrefix(version, "refs/tags/") {
			tagRef = version
		} else {
			branchRef = version
		}
	}
	if obj, ok := refs[tagRef]; ok && tagRef != "" {
		if _, also := refs[branchRef]; also && branchRef != "" {
			warnings = append(warnings, fmt.Sprintf("%s is both a tag and a branch; building the tag (say refs/heads/%s for the branch)", version, version))
		}
		r := resolved{Kind: kindTag, Ref: tagRef, Object: obj, Commit: obj, Source: "remote"}
		if peeled, ok := refs[tagRef+"^{}"]; ok {
			r.Commit = peeled
		}
		return r, warnings, nil
	}
	if obj, ok := refs[branchRef]; ok && branchRef != "" {
		if peeled, ok := refs[branchRef+"^{}"]; ok {
			obj = peeled
		}
		return resolved{Kind: kindBranch, Ref: branchRef, Object: obj, Commit: obj, Source: "remote"}, warnings, nil
	}
	return resolved{}, nil, ErrUnknownVersion
}

// ErrUnknownVersion: the version is not a tag or branch of the repository.
var ErrUnknownVersion = errors.New("unknown version")

// resolveRemote asks the repository (not the work tree) what version is.
func (g *git) resolveRemote(ctx context.Context, repo, version string) (resolved, []string, error) {
	if isCommitID(version) {
		return resolved{Kind: kindCommit, Object: version, Commit: version, Source: "remote"}, nil, nil
	}
	args := append([]string{"ls-remote", "--", repo}, lsRemotePatterns(version)...)
	out, err := g.run(ctx, "", args...)
	if err != nil {
		return resolved{}, nil, fmt.Errorf("cannot read repository %s: %w", repo, err)
	}
	r, w, err := parseLsRemote(version, out)
	if err != nil {
		return r, nil, fmt.Errorf("%w: %q is neither a tag nor a branch of %s (a commit must be given as its full id)", err, version, repo)
	}
	return r, w, nil
}

// resolveLocal resolves version from the work tree alone (update: false):
// local tags, then remote-tracking branches, then a commit id.
func (g *git) resolveLocal(ctx context.Context, dest, version string) (resolved, error) {
	if isCommitID(version) {
		if g.hasCommit(ctx, dest, version) {
			return resolved{Kind: kindCommit, Object: version, Commit: version, Source: "local"}, nil
		}
		return resolved{}, fmt.Errorf("%w: commit %s is not in %s and update is false, so it is not fetched", ErrUnknownVersion, version, dest)
	}
	candidates := []struct{ kind, ref string }{
		{kindTag, "refs/tags/" + version},
		{kindBranch, "refs/remotes/origin/" + version},
	}
	if strings.HasPrefix(version, "refs/") {
		candidates = candidates[:0]
		kind := kindBranch
		ref := version
		if strings.HasPrefix(version, "refs/tags/") {
			kind = kindTag
		} else if b, ok := strings.CutPrefix(version, "refs/heads/"); ok {
			ref = "refs/remotes/origin/" + b
		}
		candidates = append(candidates, struct{ kind, ref string }{kind, ref})
	}
	for _, c := range candidates {
		obj, commit, ok := g.localRef(ctx, dest, c.ref)
		if ok {
			return resolved{Kind: c.kind, Ref: c.ref, Object: obj, Commit: commit, Source: "local"}, nil
		}
	}
	return resolved{}, fmt.Errorf("%w: %q is not a tag or fetched branch in %s, and update is false so the repository is not asked", ErrUnknownVersion, version, dest)
}

// localRef reads a ref of the work tree: the object it points to and the
// commit it peels to.
func (g *git) localRef(ctx context.Context, dest, ref string) (object, commit string, ok bool) {
	out, err := g.run(ctx, dest, "for-each-ref", "--format=%(objectname) %(*objectname)", ref)
	if err != nil {
		return "", "", false
	}
	f := strings.Fields(out)
	switch len(f) {
	case 1:
		return f[0], f[0], true
	case 2:
		return f[0], f[1], true
	}
	return "", "", false
}

func (g *git) hasCommit(ctx context.Context, dest, commit string) bool {
	_, err := g.run(ctx, dest, "cat-file", "-e", commit+"^{commit}")
	return err == nil
}

// head returns the commit checked out in dest, or "" when there is none yet.
func (g *git) head(ctx context.Context, dest string) string {
	out, err := g.run(ctx, dest, "rev-parse", "-q", "--verify", "HEAD^{commit}")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

func (g *git) origin(ctx context.Context, dest string) string {
	out, err := g.run(ctx, dest, "config", "--get", "remote.origin.url")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

// dirty lists what git status reports in dest: modified tracked files and
// untracked files that are not ignored. Any of them could change the build.
func (g *git) dirty(ctx context.Context, dest string) ([]string, error) {
	// --no-optional-locks: status would otherwise refresh the index under
	// index.lock, which may make another run's checkout fail.
	out, err := g.run(ctx, dest, "--no-optional-locks", "status", "--porcelain=v1", "-z", "--untracked-files=all")
	if err != nil {
		return nil, err
	}
	return parseStatusZ(out), nil
}

// parseStatusZ reads `git status --porcelain=v1 -z`: "XY path\0", with the
// original path of a rename or copy in the next field.
func parseStatusZ(out string) []string {
	var paths []string
	fields := strings.Split(out, "\x00")
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		if len(f) < 4 {
			continue
		}
		paths = append(paths, strings.TrimSpace(f[:2])+" "+f[3:])
		if f[0] == 'R' || f[0] == 'C' {
			i++ // skip the source path of a rename or copy
		}
	}
	return paths
}

// commitTime returns the committer time of commit.
func (g *git) commitTime(ctx context.Context, dest, commit string) (time.Time, error) {
	out, err := g.run(ctx, dest, "show", "-s", "--format=%ct", commit)
	if err != nil {
		return time.Time{}, err
	}
	sec, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("commit time of %s: %q: %w", commit, strings.TrimSpace(out), err)
	}
	return time.Unix(sec, 0).UTC(), nil
}

// initRepo makes dest an empty repository whose origin is repo.
func (g *git) initRepo(ctx context.Context, dest, repo string) error {
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return fmt.Errorf("create parent of %s: %w", dest, err)
	}
	if _, err := g.run(ctx, "", "init", "-q", "--", dest); err != nil {
		return err
	}
	_, err := g.run(ctx, dest, "remote", "add", "--", "origin", repo)
	return err
}

// fetch fetches exactly what version needs: one tag, one branch or one commit.
func (g *git) fetch(ctx context.Context, dest string, r resolved, depth int) error {
	args := []string{"fetch", "--quiet", "--no-tags", "--no-write-fetch-head"}
	if depth > 0 {
		args = append(args, "--depth="+strconv.Itoa(depth))
	}
	switch r.Kind {
	case kindTag:
		args = append(args, "--force", "origin", "+"+r.Ref+":"+r.Ref)
	case kindBranch:
		args = append(args, "origin", "+"+r.Ref+":refs/remotes/origin/"+strings.TrimPrefix(r.Ref, "refs/heads/"))
	default:
		args = append(args, "origin", r.Commit)
	}
	_, err := g.run(ctx, dest, args...)
	return err
}

// checkout detaches HEAD at commit. With discard, local changes and untracked
// (not ignored) files are thrown away first.
func (g *git) checkout(ctx context.Context, dest, commit string, discard bool) error {
	args := []string{"-c", "advice.detachedHead=false", "checkout", "-q", "--detach"}
	if discard {
		args = append(args, "--force")
	}
	if _, err := g.run(ctx, dest, append(args, commit)...); err != nil {
		return err
	}
	if discard {
		if _, err := g.run(ctx, dest, "clean", "-q", "-f", "-d"); err != nil {
			return err
		}
	}
	return nil
}
