package main

import (
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chezlepro/sovereign/internal/ansible"
)

// FuzzResolve: whatever the options, resolve returns an error or a spec
// whose every path is absolute, clean and where it belongs (nothing under
// root escapes it, releases_dir is not root nor above it), whose release
// name is one observe recognises, whose mode is safe unless allowed, and
// whose recorded source holds no URL password. It reads no file: no
// manifest, no owner or group is given.
func FuzzResolve(f *testing.F) {
	sum := strings.Repeat("ab", 32)
	f.Add("/opt/traefik", "", "green", "/var/tmp/traefik", "", "3.1.2", "", "0755", false, "sha256:"+sum)
	f.Add("/opt/app", "/srv/releases", "blue", "", "https://u:pw@forge.lan/app?t=1", "release/3.1", "app", "4755", true, sum+"  app")
	f.Add("/opt/app/", "/opt/app/releases/../x", "../green", "/var/tmp/../etc/shadow", "", ".1", "..", "07777", false, "")
	f.Add("/", "/opt", "releases", "rel", "ftp://x", "1", ".release.json", "u+x", false, "md5:x")
	f.Add("/opt/a", "/opt/a/.binary_stage/r", "x", "", "http://[::1", "1\n2", "a/b", "0o750", false, "sha256:"+sum)
	f.Fuzz(func(t *testing.T, root, releases, slot, src, rawURL, version, binary, mode string, allow bool, checksum string) {
		o := Options{Root: ansible.Path(root), ReleasesDir: ansible.Path(releases), Slot: slot, Src: ansible.Path(src), URL: rawURL, Version: version, Binary: binary,
			Mode: mode, AllowUnsafe: allow, Checksum: checksum, KeepReleases: 5, SmokeTimeout: 30, Timeout: 60, LockTimeout: 60}
		if mode == "" {
			o.Mode = nil
		}
		s, err := resolveOptions(&o)
		if err != nil {
			return
		}
		for what, p := range map[string]string{"root": s.Root, "releases_dir": s.ReleasesDir, "slot": s.SlotPath, "state": s.StateDir} {
			if !filepath.IsAbs(p) || filepath.Clean(p) != p {
				t.Fatalf("%s %q is not absolute and clean", what, p)
			}
		}
		if s.Root == "/" || within(s.Root, s.ReleasesDir) || filepath.Dir(s.SlotPath) != s.Root || filepath.Dir(s.StateDir) != s.Root {
			t.Fatalf("paths out of place: root %q releases %q slot %q state %q", s.Root, s.ReleasesDir, s.SlotPath, s.StateDir)
		}
		if s.SHA256 != "" && !releaseNameRe.MatchString(s.release()) {
			t.Fatalf("release %q would not be recognised", s.release())
		}
		if filepath.Base(s.Binary) != s.Binary || strings.HasPrefix(s.Binary, ".") {
			t.Fatalf("binary %q is not a plain file name", s.Binary)
		}
		if !allow && checkModeSafe(s.Mode) != nil {
			t.Fatalf("unsafe mode %s accepted", octal(s.Mode))
		}
		if u, err := url.Parse(rawURL); err == nil && u.User != nil {
			if pw, ok := u.User.Password(); ok && pw != "" && strings.Contains(s.source(), u.User.String()) {
				t.Fatalf("source %q keeps the userinfo of %q", s.source(), rawURL)
			}
		}
	})
}

// FuzzSlotLink: the release a slot's symlink text designates is "" or a
// direct child of releases_dir named like a release, so neither pruning
// nor a switch can be led out of it; and stripUserinfo never keeps a
// password.
func FuzzSlotLink(f *testing.F) {
	for _, l := range []string{"releases/1.0-abababababab", "/opt/traefik/releases/1.0-abababababab", "releases/../../etc",
		"releases/1.0-abababababab/..", "../traefik/releases/x-000000000000", "", "https://u:p@h/x"} {
		f.Add(l)
	}
	s := &spec{Root: "/opt/traefik", ReleasesDir: "/opt/traefik/releases"}
	f.Fuzz(func(t *testing.T, link string) {
		if r := releaseOf(s, link); r != "" {
			if !releaseNameRe.MatchString(r) || strings.Contains(r, "/") {
				t.Fatalf("releaseOf(%q) = %q", link, r)
			}
		}
		out := stripUserinfo(link)
		if u, err := url.Parse(link); err == nil && u.User != nil {
			if pw, ok := u.User.Password(); ok && pw != "" && strings.Contains(out, u.User.String()+"@") {
				t.Fatalf("stripUserinfo(%q) = %q", link, out)
			}
		}
	})
}
