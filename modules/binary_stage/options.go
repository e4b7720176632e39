package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/chezlepro/sovereign/internal/ansible"
	"github.com/chezlepro/sovereign/internal/metrics"
)

// Options are the module's parameters; plugins/modules/binary_stage.yml
// documents each one and docs_test.go keeps the two in step.
type Options struct {
	Src           ansible.Path `json:"src"`
	URL           string       `json:"url"`
	Manifest      ansible.Path `json:"manifest"`
	Checksum      string       `json:"checksum"`
	Version       string       `json:"version"`
	Binary        string       `json:"binary"`
	Root          ansible.Path `json:"root"`
	ReleasesDir   ansible.Path `json:"releases_dir"`
	Slot          string       `json:"slot"`
	Owner         string       `json:"owner"`
	Group         string       `json:"group"`
	Mode          any          `json:"mode"`
	AllowUnsafe   bool         `json:"allow_unsafe_mode"`
	Capabilities  []string     `json:"capabilities"`
	KeepReleases  int          `json:"keep_releases"`
	Smoke         []string     `json:"smoke"`
	SmokeExpect   string       `json:"smoke_expect"`
	SmokeTimeout  int          `json:"smoke_timeout"`
	Timeout       int          `json:"timeout"`
	ValidateCerts bool         `json:"validate_certs"`
	CAPath        ansible.Path `json:"ca_path"`
	Reverify      bool         `json:"reverify"`
	LockTimeout   float64      `json:"lock_timeout"`
	MetricsDir    ansible.Path `json:"metrics_dir"`
}

var (
	slotRe    = regexp.MustCompile(`^[a-z0-9_-]+$`)
	versionRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+~-]*$`)
	binaryRe  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._+-]*$`)
)

// maxSeconds bounds the timeouts: a year is more than any wait, and far
// below what a time.Duration holds.
const maxSeconds = 365 * 24 * 3600

// stateDirName holds the history and the lock under root.
const stateDirName = ".binary_stage"

// spec is the validated, fully resolved request: everything plan needs to
// know about what the user wants.
type spec struct {
	Root, ReleasesDir, StateDir string
	Slot, SlotPath              string
	Binary                      string

	Name, Version, Commit string
	DirVersion            string // Version as used in the release directory name
	SHA256                string // lower-case hex; "" until the src is hashed when no checksum was given
	Size                  int64  // -1 when unknown
	SrcSize               int64  // size of src as observed; -1 before

	Src, URL, Manifest string
	// SrcReal is the file src resolves to, the one read (observeSource).
	SrcReal string

	UID, GID int // -1: leave as created
	Mode     os.FileMode
	Caps     capSet

	Keep int

	Smoke        []string
	SmokeExpect  string
	SmokeTimeout time.Duration

	Timeout       time.Duration
	ValidateCerts bool
	CAPath        string

	Reverify    bool
	LockTimeout time.Duration
	Metrics     metrics.Target // where a real run writes root's metrics

	// RootCreated: the lock stage created root (to hold the lock); the
	// plan made under the lock and the result say so.
	RootCreated bool
}

// release is the directory name of the release: <version>-<12 hex of sha256>.
func (s *spec) release() string { return s.DirVersion + "-" + s.SHA256[:12] }

// dirVersion makes a version usable in a directory name: every character
// other than letters, digits and . _ + ~ - becomes _ (a branch build's
// "release/3.1" gives "release_3.1").
func dirVersion(v string) string {
	return strings.Map(func(r rune) rune {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._+~-", r)) {
			return r
		}
		return '_'
	}, v)
}

func (s *spec) releasePath() string { return filepath.Join(s.ReleasesDir, s.release()) }

// linkTarget is what the slot symlink holds: relative when the releases
// live under root (the tree can then be moved or bind-mounted as a whole).
func (s *spec) linkTarget() string {
	rel, err := filepath.Rel(s.Root, s.releasePath())
	if err != nil || strings.HasPrefix(rel, "..") {
		return s.releasePath()
	}
	return rel
}

// source describes where the bytes come from, for messages and metadata:
// a URL without its user:password@, which only the request itself sees.
func (s *spec) source() string {
	switch {
	case s.URL != "":
		return stripUserinfo(s.URL)
	default:
		return s.Src
	}
}

// stripUserinfo removes the user:password@ of a URL; anything else is
// returned as is.
func stripUserinfo(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}

// urlPassword is the password of a URL ("" when none), for the runtime to
// mask wherever the whole URL is echoed (the invocation, say).
func urlPassword(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return ""
	}
	p, _ := u.User.Password()
	return p
}

// manifest is the JSON file source_build writes beside each artifact.
// Unknown fields are ignored so the format can grow.
type manifest struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Commit   string `json:"commit"`
	SHA256   string `json:"sha256"`
	Size     *int64 `json:"size"`
	Artifact string `json:"artifact"`
}

// cleanAbs checks that p is an absolute path without "." or ".." elements
// and returns it cleaned of repeated and trailing slashes.
func cleanAbs(option, p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("%s is empty", option)
	}
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("%s %q must be an absolute path", option, p)
	}
	for _, elem := range strings.Split(p, "/") {
		if elem == ".." || elem == "." {
			return "", fmt.Errorf("%s %q must not contain %q elements", option, p, elem)
		}
	}
	return filepath.Clean(p), nil
}

// within reports whether p is dir or below it (both clean and absolute).
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// resolveOptions validates the options and turns them into a spec. It reads
// the manifest and the user and group databases, nothing else. Its phases
// are independent: each reports its first refusal, and all of them are
// reported together.
func resolveOptions(o *Options) (*spec, error) {
	s := &spec{UID: -1, GID: -1, Size: -1, SrcSize: -1, Reverify: o.Reverify, ValidateCerts: o.ValidateCerts}
	var errs refusals
	for _, phase := range []func(*Options, *spec) error{resolvePlace, resolveArtifact, resolveAttributes, resolveLimits} {
		if err := phase(o, s); err != nil {
			errs = append(errs, err)
		}
	}
	switch len(errs) {
	case 0:
		return s, nil
	case 1:
		return nil, errs[0]
	}
	return nil, errs
}

// refusals are the refusals of several phases, as one message.
type refusals []error

func (r refusals) Error() string {
	msgs := make([]string, len(r))
	for i, err := range r {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (r refusals) Unwrap() []error { return r }

// resolvePlace decides where: root, releases_dir, the state directory and
// the slot.
func resolvePlace(o *Options, s *spec) error {
	var err error
	if s.Root, err = cleanAbs("root", string(o.Root)); err != nil {
		return err
	}
	if s.Root == "/" {
		return fmt.Errorf("root must not be /")
	}
	s.ReleasesDir = filepath.Join(s.Root, "releases")
	if string(o.ReleasesDir) != "" {
		if s.ReleasesDir, err = cleanAbs("releases_dir", string(o.ReleasesDir)); err != nil {
			return err
		}
	}
	s.StateDir = filepath.Join(s.Root, stateDirName)
	if s.ReleasesDir == s.Root || within(s.Root, s.ReleasesDir) {
		return fmt.Errorf("releases_dir %q must not be root %q or one of its parents", s.ReleasesDir, s.Root)
	}
	if within(s.ReleasesDir, s.StateDir) {
		return fmt.Errorf("releases_dir %q must not be inside %s", s.ReleasesDir, s.StateDir)
	}
	if !slotRe.MatchString(o.Slot) {
		return fmt.Errorf("slot %q must match [a-z0-9_-]+ (for example blue or green)", o.Slot)
	}
	s.Slot = o.Slot
	s.SlotPath = filepath.Join(s.Root, s.Slot)
	if within(s.ReleasesDir, s.SlotPath) || within(s.SlotPath, s.ReleasesDir) {
		return fmt.Errorf("slot %q collides with releases_dir %q", s.Slot, s.ReleasesDir)
	}
	return nil
}

// resolveArtifact decides what is staged: the source (src, url or the
// manifest's artifact), its sha256 and size, the version, the program's
// name and the binary's file name.
func resolveArtifact(o *Options, s *spec) error {
	m, err := resolveSource(o, s)
	if err != nil {
		return err
	}
	// The base name of the source names the binary by default and picks
	// the line of a checksum file.
	base := path.Base(s.Src)
	if s.URL != "" {
		u, _ := url.Parse(s.URL)
		base = path.Base(u.Path)
	}
	if o.Checksum != "" {
		if s.SHA256, err = parseChecksum(o.Checksum, base); err != nil {
			return err
		}
	}
	if m != nil {
		msum := m.SHA256
		if s.SHA256 != "" && s.SHA256 != msum {
			return fmt.Errorf("checksum sha256:%s conflicts with manifest %s (sha256:%s)", s.SHA256, s.Manifest, msum)
		}
		s.SHA256 = msum
		if o.Version != "" && o.Version != m.Version {
			return fmt.Errorf("version %q conflicts with manifest %s (version %q)", o.Version, s.Manifest, m.Version)
		}
		s.Version, s.Name, s.Commit = m.Version, m.Name, m.Commit
		if m.Size != nil {
			s.Size = *m.Size
		}
	} else {
		s.Version = o.Version
	}
	if s.URL != "" && s.SHA256 == "" {
		return fmt.Errorf("url needs a checksum (sha256:<hex>), given by checksum or by manifest")
	}
	if s.Version == "" {
		return fmt.Errorf("version is required (or give a manifest holding it)")
	}
	if s.DirVersion = dirVersion(s.Version); !versionRe.MatchString(s.DirVersion) || len(s.DirVersion) > 100 {
		return fmt.Errorf("version %q must start with a letter or digit (at most 100 characters)", s.Version)
	}
	s.Binary = cmp.Or(o.Binary, s.Name, base)
	if !binaryRe.MatchString(s.Binary) || len(s.Binary) > 200 {
		return fmt.Errorf("binary name %q must be a plain file name (letters, digits, . _ + -, not starting with . or -)", s.Binary)
	}
	if s.Name == "" {
		s.Name = s.Binary
	}
	return nil
}

// resolveSource decides where the bytes come from: src, url, or the
// manifest's artifact; it returns the manifest when one is given.
func resolveSource(o *Options, s *spec) (*manifest, error) {
	if string(o.Src) != "" && o.URL != "" {
		return nil, fmt.Errorf("src and url are mutually exclusive")
	}
	var err error
	if string(o.Src) != "" {
		if s.Src, err = cleanAbs("src", string(o.Src)); err != nil {
			return nil, err
		}
	}
	if o.URL != "" {
		u, err := url.Parse(o.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("url %q must be an http:// or https:// URL", stripUserinfo(o.URL))
		}
		s.URL = o.URL
	}
	var m *manifest
	if string(o.Manifest) != "" {
		if s.Manifest, err = cleanAbs("manifest", string(o.Manifest)); err != nil {
			return nil, err
		}
		if m, err = readManifest(s.Manifest); err != nil {
			return nil, err
		}
		if s.Src == "" && s.URL == "" {
			if m.Artifact == "" {
				return nil, fmt.Errorf("manifest %s has no artifact: give src or url", s.Manifest)
			}
			if s.Src, err = cleanAbs("artifact of manifest "+s.Manifest, m.Artifact); err != nil {
				return nil, err
			}
		}
	}
	if s.Src == "" && s.URL == "" {
		return nil, fmt.Errorf("one of src, url or manifest is required")
	}
	return m, nil
}

// resolveAttributes decides the binary's owner, group, mode and
// capabilities.
func resolveAttributes(o *Options, s *spec) error {
	var err error
	if s.UID, err = lookupID("owner", o.Owner); err != nil {
		return err
	}
	if s.GID, err = lookupID("group", o.Group); err != nil {
		return err
	}
	if s.Mode, err = parseMode(o.Mode); err != nil {
		return err
	}
	if err := checkModeSafe(s.Mode); err != nil && !o.AllowUnsafe {
		return err
	}
	s.Caps, err = parseCaps(o.Capabilities)
	return err
}

// resolveLimits decides retention, the smoke test, the timeouts and the CA
// to trust.
func resolveLimits(o *Options, s *spec) error {
	if o.KeepReleases < 0 {
		return fmt.Errorf("keep_releases must be 0 or more, got %d", o.KeepReleases)
	}
	s.Keep = o.KeepReleases
	s.Smoke = o.Smoke
	s.SmokeExpect = o.SmokeExpect
	if o.SmokeExpect != "" && len(o.Smoke) == 0 {
		return fmt.Errorf("smoke_expect needs smoke (the arguments to run the staged binary with)")
	}
	for _, t := range []struct {
		name string
		v    float64
	}{{"smoke_timeout", float64(o.SmokeTimeout)}, {"timeout", float64(o.Timeout)}, {"lock_timeout", o.LockTimeout}} {
		if !(t.v > 0) || t.v > maxSeconds {
			return fmt.Errorf("%s must be a positive number of seconds, got %v", t.name, t.v)
		}
	}
	s.SmokeTimeout = time.Duration(o.SmokeTimeout) * time.Second
	s.Timeout = time.Duration(o.Timeout) * time.Second
	s.LockTimeout = time.Duration(o.LockTimeout * float64(time.Second))
	if string(o.CAPath) != "" {
		var err error
		if s.CAPath, err = cleanAbs("ca_path", string(o.CAPath)); err != nil {
			return err
		}
	}
	return nil
}

// readManifest loads and checks source_build's manifest.
func readManifest(p string) (*manifest, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("manifest %s is not valid JSON: %w", p, err)
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"name", m.Name}, {"version", m.Version}, {"sha256", m.SHA256}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("manifest %s lacks %s", p, strings.Join(missing, ", "))
	}
	sum := strings.TrimPrefix(strings.ToLower(m.SHA256), "sha256:")
	if !isSHA256Hex(sum) {
		return nil, fmt.Errorf("manifest %s: sha256 %q is not 64 hexadecimal digits", p, m.SHA256)
	}
	m.SHA256 = sum
	if m.Size != nil && *m.Size < 0 {
		return nil, fmt.Errorf("manifest %s: size %d is negative", p, *m.Size)
	}
	return &m, nil
}

// lookupID resolves a user or group given by name or numeric id; "" means
// "leave as created" (-1).
func lookupID(what, v string) (int, error) {
	if v == "" {
		return -1, nil
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 || n > math.MaxInt32 {
			return 0, fmt.Errorf("%s %d is out of range", what, n)
		}
		return n, nil
	}
	var id string
	if what == "owner" {
		u, err := user.Lookup(v)
		if err != nil {
			return 0, fmt.Errorf("owner %q: %w", v, err)
		}
		id = u.Uid
	} else {
		g, err := user.LookupGroup(v)
		if err != nil {
			return 0, fmt.Errorf("group %q: %w", v, err)
		}
		id = g.Gid
	}
	n, err := strconv.Atoi(id)
	if err != nil {
		return 0, fmt.Errorf("%s %q has non-numeric id %q", what, v, id)
	}
	return n, nil
}

// parseMode accepts what Ansible's file modules accept for a numeric mode:
// an octal string ("0755", "755", "0o755") or an integer (YAML's 0755 arrives
// as 493). Symbolic modes are refused.
func parseMode(v any) (os.FileMode, error) {
	var n int64
	switch m := v.(type) {
	case nil:
		return 0o755, nil
	case string:
		str := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(m), "0o"), "0O")
		u, err := strconv.ParseUint(str, 8, 32)
		if err != nil {
			return 0, fmt.Errorf("mode %q must be an octal number such as \"0755\"", m)
		}
		n = int64(u)
	case int:
		n = int64(m)
	case int64:
		n = m
	case float64:
		if m != math.Trunc(m) {
			return 0, fmt.Errorf("mode %v must be an integer or an octal string", m)
		}
		n = int64(m)
	case json.Number:
		i, err := m.Int64()
		if err != nil {
			return 0, fmt.Errorf("mode %v must be an integer or an octal string", m)
		}
		n = i
	default:
		return 0, fmt.Errorf("mode must be an octal string such as \"0755\", got %T", v)
	}
	if n < 0 || n > 0o7777 {
		return 0, fmt.Errorf("mode %#o is out of range (0000-07777)", n)
	}
	if n&0o100 == 0 {
		return 0, fmt.Errorf("mode %#o leaves the binary not executable by its owner", n)
	}
	return os.FileMode(n&0o777) | modeSpecial(n), nil
}

// checkModeSafe refuses what lets another user replace the binary or run
// it with its owner's rights: group or world write, setuid, setgid, sticky.
// A root-run module must not apply such a mode silently (D2).
func checkModeSafe(m os.FileMode) error {
	var bad []string
	for _, b := range []struct {
		set  bool
		name string
	}{
		{m&os.ModeSetuid != 0, "setuid"}, {m&os.ModeSetgid != 0, "setgid"}, {m&os.ModeSticky != 0, "sticky"},
		{m&0o020 != 0, "group-writable"}, {m&0o002 != 0, "world-writable"},
	} {
		if b.set {
			bad = append(bad, b.name)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("mode %s makes the binary %s: refused unless allow_unsafe_mode is true", octal(m), strings.Join(bad, ", "))
}

// modeSpecial converts the setuid/setgid/sticky bits of a numeric mode to
// os.FileMode flags.
func modeSpecial(n int64) os.FileMode {
	var m os.FileMode
	if n&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if n&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if n&0o1000 != 0 {
		m |= os.ModeSticky
	}
	return m
}
