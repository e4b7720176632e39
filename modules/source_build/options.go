package main

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"

	"github.com/chezlepro/sovereign/internal/ansible"
)

// Options are the module's arguments (documented in
// plugins/modules/source_build.yml; docs_test.go keeps the two in step).
type Options struct {
	Repo    string       `json:"repo"`
	Version string       `json:"version"`
	Dest    ansible.Path `json:"dest"`
	Store   ansible.Path `json:"store"`
	Name    string       `json:"name"`

	Update        bool         `json:"update"`
	Depth         int          `json:"depth"`
	Force         bool         `json:"force"`
	AllowMovedTag bool         `json:"allow_moved_tag"`
	Verify        string       `json:"verify_signature"`
	Keyring       ansible.Path `json:"keyring"`

	Command     []string          `json:"command"`
	Artifacts   []string          `json:"artifacts"`
	Package     string            `json:"package"`
	GOOS        string            `json:"goos"`
	GOARCH      string            `json:"goarch"`
	Cgo         bool              `json:"cgo"`
	Tags        []string          `json:"tags"`
	Ldflags     string            `json:"ldflags"`
	VersionVars map[string]string `json:"version_vars"`
	Env         map[string]string `json:"env"`
	Chdir       string            `json:"chdir"`
	Timeout     int               `json:"timeout"`

	Offline   bool         `json:"offline"`
	Isolation string       `json:"isolation"`
	GoBinary  ansible.Path `json:"go_binary"`

	Keep        int     `json:"keep"`
	Rebuild     bool    `json:"rebuild"`
	LockTimeout float64 `json:"lock_timeout"`

	MetricsDir ansible.Path `json:"metrics_dir"`
}

const defaultLdflags = "-s -w"

var (
	nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)
	envRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	hexRE  = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)
	tagRE  = regexp.MustCompile(`^[A-Za-z0-9_.]+$`)
	// GOOS and GOARCH values: go tool dist list.
	platformRE = regexp.MustCompile(`^[a-z0-9]+$`)
	// Placeholders version_vars values may use.
	placeholderRE = regexp.MustCompile(`\{[a-z_]*\}`)
	placeholders  = map[string]bool{"{version}": true, "{commit}": true, "{short_commit}": true, "{commit_time}": true}
)

// resolveOptions checks what the option types cannot and returns the first
// problem in words a user can act on; or else the request with the options
// completed (name, GOOS, GOARCH, cleaned paths) and the credential taken
// out of the repository URL. given is not changed.
func resolveOptions(given Options) (*request, error) {
	req := &request{Options: given}
	if err := req.checkAndComplete(); err != nil {
		return nil, err
	}
	return req, nil
}

// checkAndComplete is resolveOptions on the request's own copy of the
// options: the phases below, in this order, each returning its first
// problem.
func (req *request) checkAndComplete() error {
	o := &req.Options
	if err := checkRepo(o.Repo); err != nil {
		return err
	}
	req.splitCredential()
	if strings.TrimSpace(o.Version) == "" || strings.HasPrefix(o.Version, "-") || strings.ContainsAny(o.Version, " \t\n~^:?*[\\") {
		return fmt.Errorf("version %q is not a valid tag, branch or commit name", o.Version)
	}
	for _, phase := range []func() error{
		o.resolvePlaces, o.checkLimits, o.checkSignatureOptions, o.resolveChdirAndEnv,
		o.validateOffline, o.validateRecipe, o.completeTarget,
	} {
		if err := phase(); err != nil {
			return err
		}
	}
	return nil
}

// resolvePlaces cleans dest and store and refuses them overlapping.
func (o *Options) resolvePlaces() error {
	for _, p := range []struct {
		opt  string
		path *ansible.Path
	}{{"dest", &o.Dest}, {"store", &o.Store}} {
		clean, err := checkPlace(p.opt, string(*p.path))
		if err != nil {
			return err
		}
		*p.path = ansible.Path(clean)
	}
	if string(o.Store) == string(o.Dest) || within(string(o.Dest), string(o.Store)) {
		return fmt.Errorf("store %s must not be inside the work tree %s: a build would see its own outputs", string(o.Store), string(o.Dest))
	}
	if within(string(o.Store), string(o.Dest)) {
		return fmt.Errorf("dest %s must not be inside the store %s: pruning the store could remove it", string(o.Dest), string(o.Store))
	}
	return nil
}

// checkLimits refuses numbers out of range.
func (o *Options) checkLimits() error {
	if o.Depth < 0 {
		return fmt.Errorf("depth must be 0 (full history) or positive, got %d", o.Depth)
	}
	if o.Timeout <= 0 {
		return fmt.Errorf("timeout must be a positive number of seconds, got %d", o.Timeout)
	}
	if o.LockTimeout < 0 {
		return fmt.Errorf("lock_timeout must not be negative, got %g", o.LockTimeout)
	}
	if o.Keep < 1 {
		return fmt.Errorf("keep must be at least 1 (the build just made is always kept), got %d", o.Keep)
	}
	return nil
}

// checkSignatureOptions refuses verify_signature and keyring without each other.
func (o *Options) checkSignatureOptions() error {
	if o.Verify != "none" && string(o.Keyring) == "" {
		return fmt.Errorf("verify_signature: %s needs keyring (a GNUPGHOME directory or a file of public keys)", o.Verify)
	}
	if string(o.Keyring) != "" && !filepath.IsAbs(string(o.Keyring)) {
		return fmt.Errorf("keyring: %q must be an absolute path", string(o.Keyring))
	}
	if o.Verify == "none" && string(o.Keyring) != "" {
		return errors.New("keyring is set but verify_signature is none: say which signature to check (commit or tag)")
	}
	return nil
}

// resolveChdirAndEnv cleans chdir, which must stay in the work tree, and
// refuses env names a shell could not hold.
func (o *Options) resolveChdirAndEnv() error {
	if o.Chdir != "" {
		c := filepath.Clean(o.Chdir)
		if filepath.IsAbs(c) || hasDotDot(o.Chdir) {
			return fmt.Errorf("chdir must be a path inside the work tree (relative to dest), got %q", o.Chdir)
		}
		o.Chdir = c
	}
	for k := range o.Env {
		if !envRE.MatchString(k) {
			return fmt.Errorf("env: %q is not a valid environment variable name", k)
		}
	}
	return nil
}

// completeTarget fills goos, goarch (this host's) and name when not given,
// and refuses what cannot be a platform or a file name.
func (o *Options) completeTarget() error {
	for opt, v := range map[string]string{"goos": o.GOOS, "goarch": o.GOARCH} {
		if v != "" && !platformRE.MatchString(v) {
			return fmt.Errorf("%s: %q is not a Go platform name (like linux, amd64)", opt, v)
		}
	}
	if o.GOOS == "" {
		o.GOOS = runtime.GOOS
	}
	if o.GOARCH == "" {
		o.GOARCH = runtime.GOARCH
	}
	if o.Name == "" {
		o.Name = o.defaultName()
	}
	if !nameRE.MatchString(o.Name) {
		return fmt.Errorf("name %q must be a plain file name (letters, digits, '.', '_', '+', '-'); set name explicitly", o.Name)
	}
	return nil
}

func (o *Options) validateRecipe() error {
	if len(o.Command) == 0 {
		if len(o.Artifacts) > 0 {
			return errors.New("artifacts is only for a command recipe: the Go recipe's artifact is the binary it builds (set command, or drop artifacts)")
		}
		if strings.TrimSpace(o.Package) == "" || strings.HasSuffix(o.Package, "...") {
			return fmt.Errorf("package must name one main package (like . or ./cmd/traefik), got %q", o.Package)
		}
		// go build would take it as a flag (-toolexec=... runs a program).
		if strings.HasPrefix(o.Package, "-") {
			return fmt.Errorf("package: %q must not start with '-' (go build would read it as a flag)", o.Package)
		}
		for _, tag := range o.Tags {
			if !tagRE.MatchString(tag) {
				return fmt.Errorf("tags: %q is not a build tag (letters, digits, '_' and '.')", tag)
			}
		}
		for name, v := range o.VersionVars {
			if name == "" || strings.ContainsAny(name, " \t'\"=") {
				return fmt.Errorf("version_vars: %q is not a Go symbol (like main.version)", name)
			}
			for _, p := range placeholderRE.FindAllString(v, -1) {
				if !placeholders[p] {
					return fmt.Errorf("version_vars: %s uses unknown placeholder %s (known: {version}, {commit}, {short_commit}, {commit_time})", name, p)
				}
			}
			if strings.Contains(v, "'") && strings.Contains(v, `"`) {
				return fmt.Errorf("version_vars: the value of %s holds both quote kinds, which -ldflags cannot carry", name)
			}
		}
		return nil
	}
	if strings.TrimSpace(o.Command[0]) == "" {
		return errors.New("command: the first element (the program to run) is empty")
	}
	if len(o.Artifacts) == 0 {
		return errors.New("a command recipe needs artifacts: the path(s) the command produces, relative to the working directory")
	}
	seen := map[string]string{}
	for _, a := range o.Artifacts {
		if strings.TrimSpace(a) == "" {
			return errors.New("artifacts: empty path")
		}
		// Artifacts are removed before the build: never outside the work tree.
		if _, err := artifactPlace(string(o.Dest), o.Chdir, a); err != nil {
			return err
		}
		b := filepath.Base(a)
		if prev, ok := seen[b]; ok {
			return fmt.Errorf("artifacts %s and %s share the file name %s, which the store keys them by", prev, a, b)
		}
		seen[b] = a
	}
	var goOnly []string
	if o.Package != "." {
		goOnly = append(goOnly, "package")
	}
	if len(o.Tags) > 0 {
		goOnly = append(goOnly, "tags")
	}
	if o.Ldflags != defaultLdflags {
		goOnly = append(goOnly, "ldflags")
	}
	if len(o.VersionVars) > 0 {
		goOnly = append(goOnly, "version_vars")
	}
	if len(goOnly) > 0 {
		return fmt.Errorf("%s only apply to the Go recipe; with command, pass them through the command itself (for example as make variables)", strings.Join(goOnly, ", "))
	}
	return nil
}

// validateOffline refuses env settings that would quietly undo the offline
// guarantee.
func (o *Options) validateOffline() error {
	if !o.Offline {
		return nil
	}
	if v, ok := o.Env["GOPROXY"]; ok && v != "off" {
		return fmt.Errorf("env GOPROXY=%s contradicts offline: true (which sets GOPROXY=off); set offline: false to allow downloads", v)
	}
	if v, ok := o.Env["GOTOOLCHAIN"]; ok && v != "local" {
		return fmt.Errorf("env GOTOOLCHAIN=%s contradicts offline: true (which sets GOTOOLCHAIN=local); set offline: false to allow toolchain downloads", v)
	}
	for _, f := range strings.Fields(o.Env["GOFLAGS"]) {
		if strings.HasPrefix(f, "-mod=") && f != "-mod=vendor" {
			return fmt.Errorf("env GOFLAGS %s contradicts offline: true (which builds with -mod=vendor)", f)
		}
	}
	return nil
}

// defaultName is the artifact name when none is given: the last element of
// the Go package, else of the first artifact, else of the repository.
func (o *Options) defaultName() string {
	if len(o.Command) > 0 {
		return filepath.Base(o.Artifacts[0])
	}
	if p := path.Clean(o.Package); p != "." && p != "/" {
		return path.Base(p)
	}
	return repoBaseName(o.Repo)
}

// repoBaseName turns "git://host/org/traefik.git/" or "git@host:traefik" into
// "traefik".
func repoBaseName(repo string) string {
	r := strings.TrimRight(repo, "/")
	if i := strings.LastIndexAny(r, "/:"); i >= 0 {
		r = r[i+1:]
	}
	return strings.TrimSuffix(r, ".git")
}

// isCommitID says whether version is a full commit id (SHA-1 or SHA-256).
func isCommitID(version string) bool { return hexRE.MatchString(version) }
