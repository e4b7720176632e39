package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"unicode"
)

// systemDirs may be neither the store nor the work tree: a clone or a store
// there mixes the module's files with the system's, and a failed run's
// clean-up could reach them. Paths below them are fine (/var/lib/x).
var systemDirs = map[string]bool{
	"/": true, "/bin": true, "/boot": true, "/dev": true, "/etc": true, "/home": true, "/media": true,
	"/mnt": true, "/opt": true, "/proc": true, "/root": true, "/run": true, "/sbin": true, "/srv": true,
	"/sys": true, "/tmp": true, "/usr": true, "/var": true, "/nix": true, "/snap": true, "/lost+found": true,
	"/usr/bin": true, "/usr/sbin": true, "/usr/lib": true, "/usr/libexec": true, "/usr/include": true,
	"/usr/share": true, "/usr/src": true, "/usr/local": true, "/usr/local/bin": true, "/usr/local/sbin": true,
	"/usr/local/lib": true, "/usr/local/share": true, "/usr/local/src": true, "/var/lib": true, "/var/cache": true,
	"/var/log": true, "/var/tmp": true, "/var/spool": true, "/var/mail": true, "/var/opt": true,
	"/var/backups": true, "/var/local": true, "/var/run": true, "/var/lock": true,
	"/etc/systemd": true, "/etc/systemd/system": true,
}

// systemDir says whether clean absolute path p is / or a system directory:
// those above, and every top-level /lib* (lib, lib32, lib64, libx32...).
func systemDir(p string) bool {
	if systemDirs[p] {
		return true
	}
	return strings.HasPrefix(p, "/lib") && !strings.Contains(p[1:], "/")
}

// checkPlace validates dest or store (named opt) as given and returns it
// cleaned: absolute, without a ".." element, neither / nor a system directory.
func checkPlace(opt, p string) (string, error) {
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("%s must be an absolute path, got %q", opt, p)
	}
	if hasDotDot(p) {
		return "", fmt.Errorf("%s: %q has a '..' element; give the path without it", opt, p)
	}
	c := filepath.Clean(p)
	if systemDir(c) {
		return "", fmt.Errorf("%s: %q is / or a system directory; use a directory of its own below it (like /var/lib/chezlepro-sovereign/builds)", opt, p)
	}
	return c, nil
}

// checkPlaceOnDisk refuses a dest or store that is a symlink (a run would
// write wherever it points) or that resolves to / or a system directory. It
// only looks; nothing is created.
func checkPlaceOnDisk(opt, p string) error {
	info, err := os.Lstat(p)
	if err == nil && info.Mode()&fs.ModeSymlink != 0 {
		target, _ := os.Readlink(p)
		return fmt.Errorf("%s: %s is a symlink (to %s); give the real directory", opt, p, target)
	}
	// Resolve the part that exists: /data/x with /data -> /etc is /etc/x.
	dir, rest := p, ""
	for {
		if r, err := filepath.EvalSymlinks(dir); err == nil {
			resolved := filepath.Join(r, rest)
			if systemDir(resolved) {
				return fmt.Errorf("%s: %s resolves to %s, / or a system directory", opt, p, resolved)
			}
			return nil
		}
		if dir == "/" {
			return nil
		}
		rest = filepath.Join(filepath.Base(dir), rest)
		dir = filepath.Dir(dir)
	}
}

// repoSchemes are the URL schemes git fetches from for this module. Remote
// helpers ("fd::0", "ext::cmd") are refused: they run programs or wait on a
// file descriptor until the timeout.
var repoSchemes = map[string]bool{"https": true, "http": true, "ssh": true, "git": true, "file": true, "git+ssh": true, "ssh+git": true}

// checkRepo validates repo's syntax before git ever sees it.
func checkRepo(repo string) error {
	switch {
	case strings.TrimSpace(repo) == "":
		return errors.New("repo must not be empty")
	case strings.HasPrefix(repo, "-"):
		return fmt.Errorf("repo %q must not start with '-' (git would read it as an option)", redactURL(repo))
	case strings.IndexFunc(repo, unicode.IsControl) >= 0:
		return fmt.Errorf("repo %q has a control character", redactURL(repo))
	case strings.Contains(repo, "::"):
		return fmt.Errorf("repo: %q uses git's remote helper syntax (transport::address), which is refused: give a URL (https://, ssh://, git://, file://), host:path or an absolute path", redactURL(repo))
	}
	if strings.Contains(repo, "://") {
		u, err := url.Parse(repo)
		if err != nil {
			return fmt.Errorf("repo: %q is not a valid URL", redactURL(repo))
		}
		if !repoSchemes[strings.ToLower(u.Scheme)] {
			return fmt.Errorf("repo: %q has scheme %s; use https, http, ssh, git or file", redactURL(repo), u.Scheme)
		}
		if u.Host == "" && strings.ToLower(u.Scheme) != "file" {
			return fmt.Errorf("repo: %q names no host", redactURL(repo))
		}
		return nil
	}
	if strings.HasPrefix(repo, "/") {
		return nil
	}
	// scp-like [user@]host:path: a colon before any slash.
	if i := strings.IndexByte(repo, ':'); i > 0 && !strings.Contains(repo[:i], "/") {
		return nil
	}
	return fmt.Errorf("repo: %q is neither a URL, host:path nor an absolute path", redactURL(repo))
}

// within says whether p lies strictly below dir; both are clean and
// absolute.
func within(dir, p string) bool {
	if dir == "/" {
		return p != "/" && strings.HasPrefix(p, "/")
	}
	return strings.HasPrefix(p, dir+"/")
}

// hasDotDot says whether p has a ".." element. Such a path is refused rather
// than cleaned: "/a/../b" names /b, which is seldom what was meant.
func hasDotDot(p string) bool {
	for _, e := range strings.Split(p, "/") {
		if e == ".." {
			return true
		}
	}
	return false
}

// artifactPlace checks, without looking at the disk, that artifact a (as
// given: relative to the working directory dest/chdir, or absolute) names a
// file inside the work tree, and returns it absolute.
func artifactPlace(dest, chdir, a string) (string, error) {
	if hasDotDot(a) {
		return "", fmt.Errorf("artifacts: %q has a '..' element: an artifact must be a path inside the work tree %s", a, dest)
	}
	p := filepath.Clean(a)
	if !filepath.IsAbs(p) {
		p = filepath.Join(dest, chdir, p)
	}
	if !within(dest, p) {
		return "", fmt.Errorf("artifacts: %q is outside the work tree %s: an artifact must be a path inside it (relative to the working directory)", a, dest)
	}
	return p, nil
}

// resolveArtifact is artifactPlace on the disk: the artifact's directory,
// with symlinks resolved, must still be inside the work tree (resolved too),
// so that a symlinked directory cannot lead a removal or a copy out of it.
// The returned path has its directory resolved; its last element is left as
// it is (callers Lstat it). A directory not there yet gives an error
// wrapping fs.ErrNotExist.
func resolveArtifact(dest, chdir, a string) (string, error) {
	p, err := artifactPlace(dest, chdir, a)
	if err != nil {
		return "", err
	}
	root, err := filepath.EvalSymlinks(dest)
	if err != nil {
		return "", fmt.Errorf("work tree %s: %w", dest, err)
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(p))
	if err != nil {
		return "", fmt.Errorf("artifacts: %q: %w", a, err)
	}
	if dir != root && !within(root, dir) {
		return "", fmt.Errorf("artifacts: %q is outside the work tree %s: its directory resolves to %s", a, dest, dir)
	}
	return filepath.Join(dir, filepath.Base(p)), nil
}

// regularArtifact checks that the artifact at p (from resolveArtifact) is a
// regular file and not a symlink, which could point anywhere (/etc/shadow).
func regularArtifact(a, p string) error {
	info, err := os.Lstat(p)
	switch {
	case err != nil:
		return err
	case info.Mode()&fs.ModeSymlink != 0:
		target, _ := os.Readlink(p)
		return fmt.Errorf("artifacts: %q is a symlink (to %s): an artifact must be a regular file inside the work tree", a, target)
	case !info.Mode().IsRegular():
		return fmt.Errorf("artifacts: %q is not a regular file (%s)", a, info.Mode().Type())
	}
	return nil
}

// removeStaleArtifact removes what an earlier build left at artifact a, so
// that it cannot pass for this build's: only a file or a symlink (never what
// it points to), and only inside the work tree.
func removeStaleArtifact(dest, chdir, a string) error {
	p, err := resolveArtifact(dest, chdir, a)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // its directory is made by the build
	}
	if err != nil {
		return err
	}
	info, err := os.Lstat(p)
	if err != nil || !(info.Mode().IsRegular() || info.Mode()&fs.ModeSymlink != 0) {
		return nil
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("remove the previous %s before building: %w", p, err)
	}
	return nil
}
