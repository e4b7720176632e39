package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chezlepro/sovereign/internal/ansible"
)

func goodOptions() Options {
	return Options{
		Src: "/var/tmp/traefik", Checksum: "sha256:" + strings.Repeat("ab", 32), Version: "3.1.2",
		Root: "/opt/traefik", Slot: "green", KeepReleases: 5, SmokeTimeout: 30, Timeout: 60,
		LockTimeout: 60, ValidateCerts: true,
	}
}

func TestResolveDefaults(t *testing.T) {
	o := goodOptions()
	s, err := resolveOptions(&o)
	if err != nil {
		t.Fatal(err)
	}
	if s.ReleasesDir != "/opt/traefik/releases" || s.SlotPath != "/opt/traefik/green" || s.Binary != "traefik" ||
		s.Mode != 0o755 || s.UID != -1 || s.GID != -1 || s.Name != "traefik" {
		t.Fatalf("unexpected defaults: %+v", s)
	}
	if got := s.release(); got != "3.1.2-abababababab" {
		t.Fatalf("release = %q", got)
	}
	if got := s.linkTarget(); got != "releases/3.1.2-abababababab" {
		t.Fatalf("linkTarget = %q", got)
	}
	o.ReleasesDir = "/srv/releases/traefik"
	s, _ = resolveOptions(&o)
	if got := s.linkTarget(); got != "/srv/releases/traefik/3.1.2-abababababab" {
		t.Fatalf("linkTarget outside root = %q", got)
	}
	o.ReleasesDir, o.Root = "", "/opt/traefik//"
	if s, _ = resolveOptions(&o); s.Root != "/opt/traefik" {
		t.Fatalf("root not cleaned: %q", s.Root)
	}
}

func TestResolveRefusesBadInputs(t *testing.T) {
	tests := []struct {
		name string
		edit func(o *Options)
		want string
	}{
		{"relative root", func(o *Options) { o.Root = "opt/traefik" }, `root "opt/traefik" must be an absolute path`},
		{"escaping root", func(o *Options) { o.Root = "/opt/../etc" }, `must not contain ".." elements`},
		{"dot element", func(o *Options) { o.Root = "/opt/./traefik" }, `must not contain "." elements`},
		{"root is /", func(o *Options) { o.Root = "/" }, "root must not be /"},
		{"relative src", func(o *Options) { o.Src = "traefik" }, `src "traefik" must be an absolute path`},
		{"escaping src", func(o *Options) { o.Src = "/var/tmp/../../etc/shadow" }, `must not contain ".." elements`},
		{"relative releases_dir", func(o *Options) { o.ReleasesDir = "releases" }, "releases_dir"},
		{"releases_dir is root", func(o *Options) { o.ReleasesDir = "/opt/traefik" }, "must not be root"},
		{"releases_dir above root", func(o *Options) { o.ReleasesDir = "/opt" }, "must not be root"},
		{"releases_dir in state", func(o *Options) { o.ReleasesDir = "/opt/traefik/.binary_stage/r" }, "must not be inside"},
		{"slot with slash", func(o *Options) { o.Slot = "../green" }, "must match [a-z0-9_-]+"},
		{"slot upper case", func(o *Options) { o.Slot = "Green" }, "must match [a-z0-9_-]+"},
		{"slot is releases", func(o *Options) { o.Slot = "releases" }, "collides with releases_dir"},
		{"no source", func(o *Options) { o.Src = "" }, "one of src, url or manifest is required"},
		{"ftp url", func(o *Options) { o.Src, o.URL = "", "ftp://forge.lan/x" }, "must be an http:// or https:// URL"},
		{"url without checksum", func(o *Options) { o.Src, o.URL, o.Checksum = "", "http://forge.lan/x", "" }, "url needs a checksum"},
		{"bad checksum", func(o *Options) { o.Checksum = "sha256:1234" }, "64 hexadecimal digits"},
		{"md5 checksum", func(o *Options) { o.Checksum = "md5:" + strings.Repeat("a", 32) }, "only sha256"},
		{"no version", func(o *Options) { o.Version = "" }, "version is required"},
		{"version starting with dot", func(o *Options) { o.Version = ".1" }, "must start with a letter or digit"},
		{"binary with slash", func(o *Options) { o.Binary = "bin/traefik" }, "must be a plain file name"},
		{"binary dot dot", func(o *Options) { o.Binary = ".." }, "must be a plain file name"},
		{"hidden binary", func(o *Options) { o.Binary = ".release.json" }, "must be a plain file name"},
		{"symbolic mode", func(o *Options) { o.Mode = "u+x" }, "must be an octal number"},
		{"mode too big", func(o *Options) { o.Mode = "17777" }, "out of range"},
		{"mode not executable", func(o *Options) { o.Mode = "0644" }, "not executable by its owner"},
		{"mode all bits (D2)", func(o *Options) { o.Mode = "07777" }, "allow_unsafe_mode"},
		{"mode setuid", func(o *Options) { o.Mode = "4755" }, "setuid"},
		{"mode setgid", func(o *Options) { o.Mode = 0o2755 }, "setgid"},
		{"mode sticky", func(o *Options) { o.Mode = "1755" }, "sticky"},
		{"mode world-writable", func(o *Options) { o.Mode = "0777" }, "world-writable"},
		{"mode group-writable", func(o *Options) { o.Mode = "0775" }, "group-writable"},
		{"unknown capability", func(o *Options) { o.Capabilities = []string{"cap_fly"} }, "unknown capability"},
		{"negative keep", func(o *Options) { o.KeepReleases = -1 }, "keep_releases must be 0 or more"},
		{"zero timeout", func(o *Options) { o.Timeout = 0 }, "timeout must be a positive number"},
		{"negative lock_timeout", func(o *Options) { o.LockTimeout = -0.5 }, "lock_timeout must be a positive number of seconds, got -0.5"},
		{"lock_timeout beyond a year", func(o *Options) { o.LockTimeout = 1e12 }, "lock_timeout must be a positive number"},
		{"expect without smoke", func(o *Options) { o.SmokeExpect = "3.1.2" }, "smoke_expect needs smoke"},
		{"unknown owner", func(o *Options) { o.Owner = "no-such-user-here" }, `owner "no-such-user-here"`},
		{"unknown group", func(o *Options) { o.Group = "no-such-group-here" }, `group "no-such-group-here"`},
		{"relative manifest", func(o *Options) { o.Manifest = "manifest.json" }, "must be an absolute path"},
		{"missing manifest", func(o *Options) { o.Manifest = "/nonexistent/manifest.json" }, "read manifest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := goodOptions()
			tc.edit(&o)
			_, err := resolveOptions(&o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("resolve error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// D2: dangerous modes pass only with the explicit opt-in.
func TestUnsafeModeNeedsOptIn(t *testing.T) {
	for _, m := range []any{"07777", "4755", "0777", "0775", "2755"} {
		o := goodOptions()
		o.Mode, o.AllowUnsafe = m, true
		if _, err := resolveOptions(&o); err != nil {
			t.Errorf("mode %v with allow_unsafe_mode: %v", m, err)
		}
	}
	o := goodOptions()
	o.Mode = "0750"
	if _, err := resolveOptions(&o); err != nil {
		t.Errorf("a safe mode was refused: %v", err)
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[any]os.FileMode{
		nil: 0o755, "0755": 0o755, "755": 0o755, "0o750": 0o750, json.Number("493"): 0o755,
		float64(448): 0o700, "4755": 0o755 | os.ModeSetuid, "2750": 0o750 | os.ModeSetgid,
	} {
		got, err := parseMode(in)
		if err != nil || got != want {
			t.Errorf("parseMode(%#v) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseMode(true); err == nil {
		t.Error("parseMode(true) accepted")
	}
}

func TestDirVersion(t *testing.T) {
	for in, want := range map[string]string{"v3.1.2": "v3.1.2", "release/3.1": "release_3.1", "1.0+git~1": "1.0+git~1", "é": "_"} {
		if got := dirVersion(in); got != want {
			t.Errorf("dirVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

func writeManifest(t *testing.T, m map[string]any) string {
	t.Helper()
	data, _ := json.Marshal(m)
	p := filepath.Join(t.TempDir(), "manifest.json")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResolveManifest(t *testing.T) {
	sum := strings.Repeat("cd", 32)
	full := map[string]any{
		"schema": 1, "name": "traefik", "version": "v3.1.2", "commit": "4f2a1c0e", "sha256": sum,
		"size": 1234, "artifact": "/srv/store/traefik", "recipe_hash": "ignored",
	}
	o := Options{Manifest: ansible.Path(writeManifest(t, full)), Root: "/opt/traefik", Slot: "blue", KeepReleases: 5,
		SmokeTimeout: 30, Timeout: 60, LockTimeout: 60}
	s, err := resolveOptions(&o)
	if err != nil {
		t.Fatal(err)
	}
	if s.Src != "/srv/store/traefik" || s.SHA256 != sum || s.Version != "v3.1.2" || s.Commit != "4f2a1c0e" ||
		s.Size != 1234 || s.Binary != "traefik" || s.Name != "traefik" {
		t.Fatalf("manifest not applied: %+v", s)
	}

	// The sha256:-prefixed form is accepted as well.
	prefixed := map[string]any{"name": "traefik", "version": "1", "sha256": "sha256:" + sum, "artifact": "/a/traefik"}
	o.Manifest = ansible.Path(writeManifest(t, prefixed))
	if s, err = resolveOptions(&o); err != nil || s.SHA256 != sum || s.Size != -1 {
		t.Fatalf("prefixed manifest: %+v, %v", s, err)
	}

	for name, tc := range map[string]struct {
		m    map[string]any
		edit func(*Options)
		want string
	}{
		"conflicting checksum": {full, func(o *Options) { o.Checksum = "sha256:" + strings.Repeat("00", 32) }, "conflicts with manifest"},
		"conflicting version":  {full, func(o *Options) { o.Version = "v3.1.3" }, `version "v3.1.3" conflicts with manifest`},
		"no name":              {map[string]any{"version": "1", "sha256": sum}, nil, "lacks name"},
		"no sha256":            {map[string]any{"name": "x", "version": "1"}, nil, "lacks sha256"},
		"bad sha256":           {map[string]any{"name": "x", "version": "1", "sha256": "abc"}, nil, "is not 64 hexadecimal digits"},
		"no artifact":          {map[string]any{"name": "x", "version": "1", "sha256": sum}, nil, "has no artifact: give src or url"},
		"relative artifact":    {map[string]any{"name": "x", "version": "1", "sha256": sum, "artifact": "x"}, nil, "must be an absolute path"},
		"negative size":        {map[string]any{"name": "x", "version": "1", "sha256": sum, "size": -1}, nil, "size -1 is negative"},
	} {
		o := Options{Manifest: ansible.Path(writeManifest(t, tc.m)), Root: "/opt/traefik", Slot: "blue", KeepReleases: 5,
			SmokeTimeout: 30, Timeout: 60, LockTimeout: 60}
		if tc.edit != nil {
			tc.edit(&o)
		}
		if _, err := resolveOptions(&o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error = %v, want %q", name, err, tc.want)
		}
	}

	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte("{not json"), 0o644)
	o.Manifest = ansible.Path(bad)
	if _, err := resolveOptions(&o); err == nil || !strings.Contains(err.Error(), "is not valid JSON") {
		t.Errorf("invalid JSON manifest: %v", err)
	}
}

// Refusals of independent phases (where, what, attributes, limits) are
// reported together, in that order, "; "-joined.
func TestResolveReportsEveryPhasesRefusal(t *testing.T) {
	o := goodOptions()
	o.Root, o.Version, o.Mode, o.Timeout = "opt/x", ".1", "0777", 0
	_, err := resolveOptions(&o)
	want := `root "opt/x" must be an absolute path; version ".1" must start with a letter or digit (at most 100 characters); ` +
		`mode 0777 makes the binary group-writable, world-writable: refused unless allow_unsafe_mode is true; ` +
		`timeout must be a positive number of seconds, got 0`
	if err == nil || err.Error() != want {
		t.Fatalf("resolve error = %v\nwant %s", err, want)
	}
}
