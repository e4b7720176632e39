package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/chezlepro/sovereign/internal/fsutil"
	"github.com/chezlepro/sovereign/internal/lock"
)

// killGrace is how long a timed-out build gets between SIGTERM and SIGKILL.
var killGrace = 5 * time.Second

// logTailLines is how much of a failed build's log the result carries.
const logTailLines = 25

// BuildError is a build that ran and failed (or timed out), or whose
// artifact was missing afterwards. Its message carries the cause, the log's
// path and its last lines.
type BuildError struct {
	What      string // "exit status 2", "timed out after 1h0m0s", "artifact missing"
	Diagnosis string
	Log       string
	Tail      string
}

func (e *BuildError) Error() string {
	var b strings.Builder
	b.WriteString("build failed: " + e.What)
	if e.Diagnosis != "" {
		b.WriteString("; " + e.Diagnosis)
	}
	b.WriteString("; log: " + e.Log)
	if e.Tail != "" {
		b.WriteString("; last lines:\n" + e.Tail)
	}
	return b.String()
}

var errNoGoMod = errors.New("no go.mod")

// findModuleRoot walks up from workdir, staying inside dest, to the directory
// holding go.mod.
func findModuleRoot(dest, workdir string) (string, error) {
	for dir := workdir; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		if dir == dest || !strings.HasPrefix(dir, dest+"/") {
			return "", fmt.Errorf("%w in %s or above it in the work tree: the Go recipe builds Go modules (use command for anything else)", errNoGoMod, workdir)
		}
	}
}

// build runs the recipe into a temporary directory of the store and, when it
// succeeded and produced its artifacts, renames that directory into place.
// Whatever fails before the rename leaves the store as it was (apart from a
// failure log under failed/).
func build(ctx context.Context, req *request, obs *observed, d *done) error {
	r, st, rc := obs.Resolved, req.store, req.recipe
	workdir := filepath.Join(string(req.Dest), rc.Chdir)
	if info, err := os.Stat(workdir); err != nil || !info.IsDir() {
		return fmt.Errorf("working directory %s (chdir %q) does not exist in commit %s", workdir, rc.Chdir, shortID(r.Commit))
	}
	// Whether the tree builds offline is go's to judge (go build under
	// -mod=vendor): a failure is explained from its own words afterwards,
	// with the module root ("" when a command builds something else).
	modRoot, err := findModuleRoot(string(req.Dest), workdir)
	if err != nil && rc.Kind == "go" {
		return err
	}
	iso, detail, err := chooseIsolation(req.Isolation, rc.Offline, probeNetns)
	if err != nil {
		return err
	}
	d.isolation, d.isoDetail = iso, detail
	if iso == isoNone && rc.Offline && req.Isolation == "auto" {
		d.warnings = append(d.warnings, "build not network-isolated: "+detail)
	}

	if err := os.MkdirAll(st.RepoDir, 0o755); err != nil {
		return fmt.Errorf("create store directory: %w", err)
	}
	st.cleanTemps()
	final := st.entryDir(obs.Key)
	tmp := fsutil.TempName(final)
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return fmt.Errorf("create build directory in the store: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed into place

	vars := buildVars{Version: req.Version, Commit: r.Commit, CommitTime: d.commitTime}
	argv := rc.argv(req.goBin, tmp, vars)
	env, set := rc.buildEnv(os.Environ(), req.goBin, string(req.Store), d.commitTime)
	if dir := envValue(env, "GOTMPDIR"); dir != "" {
		// go fails at once, and obscurely, when GOTMPDIR does not exist.
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create GOTMPDIR: %w", err)
		}
	}
	logPath := filepath.Join(tmp, "build.log")
	recorded := redactEnv(set, rc.Env)
	logf, headerEnd, err := startLog(logPath, []string{
		fmt.Sprintf("source_build: %s %s (commit %s) from %s", req.Name, req.Version, r.Commit, req.Repo),
		fmt.Sprintf("started %s on %s; isolation: %s (%s)", time.Now().UTC().Format(time.RFC3339), hostName(), iso, detail),
		"workdir: " + workdir, "command: " + shellQuote(argv),
	}, recorded)
	if err != nil {
		return err
	}

	if rc.Kind == "command" {
		// A declared output left by an earlier build must not pass for this
		// build's: remove it first.
		for _, a := range rc.Artifacts {
			if err := removeStaleArtifact(string(req.Dest), rc.Chdir, a); err != nil {
				logf.Close()
				return err
			}
		}
	}

	pr := runProc(procSpec{
		Argv: argv, Dir: workdir, Env: env, Isolation: iso,
		Timeout: time.Duration(req.Timeout) * time.Second, Grace: killGrace, Log: logf,
	})
	fmt.Fprintf(logf, "# finished after %s: %s\n", pr.Duration.Round(time.Millisecond), statusText(pr.Err))
	logf.Close()
	if pr.Err != nil {
		what := statusText(pr.Err)
		diag := ""
		// A full store explains everything else, and may have left nothing
		// in the log to read: ask the filesystem first.
		if full, ok := storeFull(string(req.Store)); ok {
			diag = full
		} else if b, err := os.ReadFile(logPath); err == nil && int64(len(b)) >= headerEnd {
			diag = diagnose(string(b[headerEnd:]), diagContext{Isolation: iso, ModuleRoot: modRoot, Env: env})
		}
		return failBuild(req, obs.Key, logPath, headerEnd, what, diag, d)
	}

	arts, err := collectArtifacts(rc, string(req.Dest), tmp, final)
	if err != nil {
		return failBuild(req, obs.Key, logPath, headerEnd, "artifact missing after the build", err.Error(), d)
	}
	m := &manifest{
		Schema: manifestSchema, Name: req.Name, Repo: req.Repo, Version: req.Version, Ref: r.Ref, RefType: r.Kind,
		Commit: r.Commit, CommitTime: d.commitTime.Format(time.RFC3339), SourceDateEpoch: d.commitTime.Unix(),
		GoVersion: req.goVer, GoBinary: req.goBin, Recipe: rc.redacted(), RecipeHash: obs.RecipeHash, Key: obs.Key,
		Command: argvForRecord(argv, tmp, final), Workdir: workdir, Env: recorded, Isolation: iso,
		Sha256: arts[0].Sha256, Size: arts[0].Size, Artifact: arts[0].Path, Artifacts: arts,
		BuildTime: time.Now().UTC().Format(time.RFC3339Nano), BuildDurationMS: pr.Duration.Milliseconds(),
		Modules: arts[0].Modules, Log: filepath.Join(final, "build.log"), Signature: d.signature, Host: hostName(),
	}
	if m.Modules == nil {
		m.Modules = []goModule{}
	}
	if _, mm, _, settings, ok := readBuildInfo(filepath.Join(tmp, arts[0].Name)); ok {
		m.MainModule, m.BuildSettings = mm, settings
	}
	if err := fsutil.WriteJSON(filepath.Join(tmp, "manifest.json"), m, 0o644); err != nil {
		return err
	}
	return install(req, obs, tmp, final, m, d)
}

// startLog creates the build log (0600: what the build prints may include
// env values, which are secrets) and writes its header: the lines given and
// the environment the recipe set, each line behind "# ". headerEnd is where
// what the build prints starts.
func startLog(logPath string, lines []string, env map[string]string) (logf *os.File, headerEnd int64, err error) {
	logf, err = os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("create build log: %w", err)
	}
	var hdr strings.Builder
	for _, l := range lines {
		hdr.WriteString("# " + l + "\n")
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		fmt.Fprintf(&hdr, "# env: %s=%s\n", k, env[k])
	}
	// A full store shows here first: say so rather than run a build that
	// fails with "exit status 1" and an empty log.
	if _, err := logf.WriteString(hdr.String()); err != nil {
		logf.Close()
		return nil, 0, fmt.Errorf("write build log %s: %w", logPath, err)
	}
	return logf, int64(hdr.Len()), nil
}

// install renames the finished build into place under the store lock. If an
// identical build got there first (another work tree), that one stays and
// the two checksums are compared.
func install(req *request, obs *observed, tmp, final string, m *manifest, d *done) error {
	st := req.store
	lk, err := lock.Acquire(context.Background(), st.lockPath(), req.lockTimeout())
	if err != nil {
		return fmt.Errorf("store %s: %w", st.RepoDir, err)
	}
	defer lk.Release()
	if prev, err := readManifest(final); err == nil {
		if entryProblem(prev, m.Commit, m.RecipeHash) == "" {
			d.previous = prev.Sha256
			if !req.Rebuild {
				// Built meanwhile by another run: keep the stored one.
				d.manifest, d.manifestAt, d.built = prev, filepath.Join(final, "manifest.json"), true
				if prev.Sha256 != m.Sha256 {
					d.warnings = append(d.warnings, fmt.Sprintf("not reproducible: a concurrent build of the same key stored sha256 %s, this one gave %s", prev.Sha256, m.Sha256))
				}
				return nil
			}
		}
	}
	if _, err := os.Lstat(final); err == nil {
		old := fsutil.TempName(final)
		if err := os.Rename(final, old); err != nil {
			return fmt.Errorf("move the previous build aside: %w", err)
		}
		defer os.RemoveAll(old)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("install build into %s: %w", final, err)
	}
	if err := fsutil.SyncDir(st.RepoDir); err != nil {
		return err
	}
	d.manifest, d.manifestAt, d.built = m, filepath.Join(final, "manifest.json"), true
	if d.previous != "" && d.previous != m.Sha256 {
		d.warnings = append(d.warnings, fmt.Sprintf("not reproducible: the rebuild gave sha256 %s, the previous build %s", m.Sha256, d.previous))
	}
	if d.previous != "" {
		c := rebuildCheck{Time: m.BuildTime, Previous: d.previous, Sha256: m.Sha256, Reproducible: d.previous == m.Sha256}
		if err := st.recordRebuild(m.Key, c); err != nil {
			d.warnings = append(d.warnings, "the rebuild's outcome was not recorded for the metrics: "+err.Error())
		}
	}
	return nil
}

// failBuild keeps the log of a failed build under failed/ and returns the
// error carrying its path and the last lines the build printed (after the
// log's header, which starts at 0 and ends at headerEnd).
func failBuild(req *request, key, logPath string, headerEnd int64, what, diag string, d *done) error {
	st := req.store
	defer st.pruneFailed(req.Keep)
	b, _ := os.ReadFile(logPath)
	if int64(len(b)) >= headerEnd {
		b = b[headerEnd:]
	}
	tail := lastLines(string(b), logTailLines)
	kept := logPath
	if err := os.MkdirAll(st.failedDir(), 0o755); err == nil {
		dst := filepath.Join(st.failedDir(), time.Now().UTC().Format("20060102T150405.000Z")+"-"+key+".log")
		if os.Rename(logPath, dst) == nil {
			kept = dst
		}
	}
	d.log = kept
	d.logTail = strings.Split(tail, "\n")
	return &BuildError{What: what, Diagnosis: diag, Log: kept, Tail: tail}
}

// collectArtifacts hashes (Go recipe) or copies into the store (command) the
// build's artifacts; paths point at their final place in the store.
func collectArtifacts(rc recipe, dest, tmp, final string) ([]artifact, error) {
	var arts []artifact
	if rc.Kind == "go" {
		p := filepath.Join(tmp, rc.Output)
		info, err := os.Lstat(p)
		if err != nil || !info.Mode().IsRegular() {
			return nil, fmt.Errorf("go build exited 0 but wrote no %s", rc.Output)
		}
		if err := os.Chmod(p, 0o755); err != nil {
			return nil, err
		}
		sum, size, err := fsutil.HashFile(p)
		if err != nil {
			return nil, err
		}
		arts = append(arts, artifact{Name: rc.Output, Path: filepath.Join(final, rc.Output), Source: "go build -o", Sha256: sum, Size: size, Mode: "0755"})
	} else {
		for _, a := range rc.Artifacts {
			src, err := resolveArtifact(dest, rc.Chdir, a)
			if err == nil {
				err = regularArtifact(a, src)
			}
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("artifact %s is missing after the build (the command exited 0): %w", a, err)
			}
			if err != nil {
				return nil, err
			}
			info, err := os.Lstat(src)
			if err != nil {
				return nil, err
			}
			mode := os.FileMode(0o644)
			if info.Mode()&0o111 != 0 {
				mode = 0o755
			}
			name := filepath.Base(src)
			sum, size, err := storeFile(src, filepath.Join(tmp, name), mode)
			if err != nil {
				return nil, fmt.Errorf("copy artifact %s into the store: %w", src, err)
			}
			arts = append(arts, artifact{Name: name, Path: filepath.Join(final, name), Source: src, Sha256: sum, Size: size, Mode: fmt.Sprintf("%04o", mode)})
		}
	}
	for i := range arts {
		if gv, _, deps, _, ok := readBuildInfo(filepath.Join(tmp, arts[i].Name)); ok {
			arts[i].GoVersion, arts[i].Modules = gv, deps
		}
	}
	return arts, nil
}

// argvForRecord rewrites the temporary output directory in the command line
// to the final one, so the manifest shows where the artifact is.
func argvForRecord(argv []string, tmp, final string) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = strings.ReplaceAll(a, tmp, final)
	}
	return out
}

// minFree is the free space under which a failed build is put down to a
// full store.
const minFree = 1 << 20

// storeFull says, after a failed build, whether the store's filesystem is
// (nearly) full: the build then fails on writing its output, with nothing
// in the log to say why.
func storeFull(store string) (string, bool) {
	var s syscall.Statfs_t
	if err := syscall.Statfs(store, &s); err != nil {
		return "", false
	}
	free := s.Bavail * uint64(s.Bsize)
	if os.Geteuid() == 0 {
		free = s.Bfree * uint64(s.Bsize) // root may use the reserved blocks
	}
	if free >= minFree {
		return "", false
	}
	return fmt.Sprintf("no space left on %s (%d bytes free): the build could not write its output; free space in the store", store, free), true
}

// storeNoSpace names the full filesystem behind an ENOSPC: the error alone says
// "no space left on device" without saying which.
func storeNoSpace(dir string, err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("no space left on %s: %w", dir, err)
	}
	return err
}

func statusText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// shellQuote renders argv as it would be typed in a shell, for the log.
func shellQuote(argv []string) string {
	const plain = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%"
	q := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.Trim(a, plain) == "" {
			q[i] = a
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
