package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// recipe is everything that decides the bytes of the artifact besides the
// commit. Its hash is part of the store key: change any field and the store
// holds a different build.
type recipe struct {
	Kind        string            `json:"kind"` // go or command
	Package     string            `json:"package,omitempty"`
	Output      string            `json:"output,omitempty"`
	Tags        []string          `json:"tags,omitempty"`
	Ldflags     string            `json:"ldflags,omitempty"`
	VersionVars map[string]string `json:"version_vars,omitempty"`
	Version     string            `json:"version,omitempty"` // only when a version var uses {version}
	Command     []string          `json:"command,omitempty"`
	Artifacts   []string          `json:"artifacts,omitempty"`
	Chdir       string            `json:"chdir"`
	GOOS        string            `json:"goos"`
	GOARCH      string            `json:"goarch"`
	Cgo         bool              `json:"cgo"`
	Env         map[string]string `json:"env,omitempty"`
	Offline     bool              `json:"offline"`
	GoVersion   string            `json:"go_version"`
}

func newRecipe(o *Options, goVersion string) recipe {
	r := recipe{
		Chdir:     o.Chdir,
		GOOS:      o.GOOS,
		GOARCH:    o.GOARCH,
		Cgo:       o.Cgo,
		Env:       o.Env,
		Offline:   o.Offline,
		GoVersion: goVersion,
	}
	if r.Chdir == "" {
		r.Chdir = "."
	}
	if len(o.Command) > 0 {
		r.Kind = "command"
		r.Command = o.Command
		r.Artifacts = o.Artifacts
		return r
	}
	r.Kind = "go"
	r.Package = o.Package
	r.Output = o.Name
	r.Tags = o.Tags
	r.Ldflags = o.Ldflags
	r.VersionVars = o.VersionVars
	for _, v := range o.VersionVars {
		if strings.Contains(v, "{version}") {
			r.Version = o.Version
		}
	}
	return r
}

// hash is the recipe's identity in the store.
func (r recipe) hash() string {
	b, err := json.Marshal(r) // map keys are sorted: the encoding is canonical
	if err != nil {
		panic(err) // only strings, bools and maps of strings: cannot fail
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// recipeChanges names the fields that differ between two recipes, for the
// "changed recipe" reason: "goarch (amd64 -> arm64)".
func recipeChanges(old, cur recipe) []string {
	var a, b map[string]any
	ja, _ := json.Marshal(old)
	jb, _ := json.Marshal(cur)
	_ = json.Unmarshal(ja, &a)
	_ = json.Unmarshal(jb, &b)
	var out []string
	names := append(slices.Collect(maps.Keys(a)), slices.Collect(maps.Keys(b))...)
	slices.Sort(names)
	for _, k := range slices.Compact(names) {
		va, _ := json.Marshal(a[k])
		vb, _ := json.Marshal(b[k])
		if string(va) != string(vb) {
			out = append(out, fmt.Sprintf("%s (%s -> %s)", k, short(string(va), 60), short(string(vb), 60)))
		}
	}
	return out
}

func short(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// buildVars are the values version_vars placeholders expand to.
type buildVars struct {
	Version    string
	Commit     string
	CommitTime time.Time
}

func (v buildVars) expand(s string) string {
	return strings.NewReplacer(
		"{version}", v.Version,
		"{commit}", v.Commit,
		"{short_commit}", shortID(v.Commit),
		"{commit_time}", v.CommitTime.UTC().Format(time.RFC3339),
	).Replace(s)
}

// ldflags returns the -ldflags value of the Go recipe: the user's flags,
// one -X per version var (sorted), and an empty build id so that nothing
// in the binary depends on the build machine.
func (r recipe) ldflagsFor(v buildVars) string {
	parts := []string{}
	if strings.TrimSpace(r.Ldflags) != "" {
		parts = append(parts, strings.TrimSpace(r.Ldflags))
	}
	for _, n := range slices.Sorted(maps.Keys(r.VersionVars)) {
		parts = append(parts, "-X "+quoteFlag(n+"="+v.expand(r.VersionVars[n])))
	}
	parts = append(parts, "-buildid=")
	return strings.Join(parts, " ")
}

// quoteFlag quotes one -ldflags argument the way the go command splits them.
func quoteFlag(s string) string {
	if !strings.ContainsAny(s, " \t\n'\"") {
		return s
	}
	if !strings.Contains(s, "'") {
		return "'" + s + "'"
	}
	return `"` + s + `"`
}

// argv is the command the recipe runs. out is the directory the Go recipe
// writes its binary to.
func (r recipe) argv(goBin, out string, v buildVars) []string {
	if r.Kind == "command" {
		return append([]string(nil), r.Command...)
	}
	args := []string{goBin, "build", "-trimpath", "-ldflags", r.ldflagsFor(v)}
	if len(r.Tags) > 0 {
		args = append(args, "-tags", strings.Join(r.Tags, ","))
	}
	// "--": whatever follows is a package, never a flag.
	return append(args, "-o", filepath.Join(out, r.Output), "--", r.Package)
}

// inheritedVarStripped says whether an inherited variable would change a
// build behind the recipe's back: the recipe sets what it needs and env adds
// the rest, so these are dropped from the module's own environment.
func inheritedVarStripped(key string) bool {
	switch key {
	case "GOCACHE", "GOMODCACHE", "GOPATH", "GOTMPDIR", "GOENV":
		return false // where things are kept, not what is built
	}
	return strings.HasPrefix(key, "GO") || strings.HasPrefix(key, "CGO_") || key == "SOURCE_DATE_EPOCH" ||
		gitRepoVars[key] // go's VCS stamping and the command's git: the work tree's repository
}

// buildEnv is the environment of the build: the module's own environment
// without Go settings, the offline settings, the target, the reproducibility
// settings, then env from the options. It also returns the part the recipe
// set (recorded in the manifest).
func (r recipe) buildEnv(inherited []string, goBin, store string, commitTime time.Time) (full []string, set map[string]string) {
	set = map[string]string{}
	if r.Offline {
		set["GOFLAGS"] = "-mod=vendor"
		set["GOPROXY"] = "off"
		set["GOTOOLCHAIN"] = "local"
	}
	set["GOOS"] = r.GOOS
	set["GOARCH"] = r.GOARCH
	set["CGO_ENABLED"] = "0"
	if r.Cgo {
		set["CGO_ENABLED"] = "1"
	}
	set["SOURCE_DATE_EPOCH"] = strconv.FormatInt(commitTime.Unix(), 10)
	for k, v := range r.Env {
		if k == "GOFLAGS" && r.Offline {
			v = strings.TrimSpace(set["GOFLAGS"] + " " + v)
		}
		set[k] = v
	}
	vars := map[string]string{}
	for _, kv := range inherited {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || inheritedVarStripped(k) {
			continue
		}
		vars[k] = v
	}
	if goBin != "" {
		dir := filepath.Dir(goBin)
		if p := vars["PATH"]; p != "" {
			vars["PATH"] = dir + ":" + p
		} else {
			vars["PATH"] = dir + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
		}
	}
	if vars["GOTMPDIR"] == "" && set["GOTMPDIR"] == "" {
		// go's $WORK (gigabytes for a large program) defaults to /tmp, often
		// a small tmpfs: keep it on the store's disk instead.
		set["GOTMPDIR"] = filepath.Join(store, ".gotmp")
	}
	if vars["HOME"] == "" && vars["GOCACHE"] == "" && set["GOCACHE"] == "" {
		// The go command needs a cache; without HOME it has none.
		vars["GOCACHE"] = filepath.Join(store, ".gocache")
	}
	for k, v := range set {
		vars[k] = v
	}
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		full = append(full, k+"="+vars[k])
	}
	return full, set
}

// findGo locates the go command: go_binary when given, else PATH, else the
// usual install places. It returns "" (and no error) when go is optional
// (a command recipe) and absent.
func findGo(goBinary string, required bool) (string, error) {
	if goBinary != "" {
		p, err := exec.LookPath(goBinary)
		if err != nil {
			return "", fmt.Errorf("go_binary %s: %w", goBinary, err)
		}
		return filepath.Abs(p)
	}
	if p, err := exec.LookPath("go"); err == nil {
		return filepath.Abs(p)
	}
	for _, p := range []string{"/usr/local/go/bin/go", "/usr/lib/go/bin/go"} {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	if !required {
		return "", nil
	}
	return "", fmt.Errorf("no go command on the build host: not in PATH (%s) nor in /usr/local/go/bin or /usr/lib/go/bin; install Go or set go_binary", os.Getenv("PATH"))
}

// goVersion reads the toolchain's version from GOROOT/VERSION (no process),
// falling back to `go env GOVERSION`.
func goVersion(goBin string) (string, error) {
	if goBin == "" {
		return "", nil
	}
	if real, err := filepath.EvalSymlinks(goBin); err == nil {
		if b, err := os.ReadFile(filepath.Join(filepath.Dir(real), "..", "VERSION")); err == nil {
			if line, _, _ := strings.Cut(string(b), "\n"); strings.HasPrefix(line, "go") {
				return strings.TrimSpace(line), nil
			}
		}
	}
	cmd := exec.Command(goBin, "env", "GOVERSION")
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s env GOVERSION: %w", goBin, err)
	}
	return strings.TrimSpace(string(out)), nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
