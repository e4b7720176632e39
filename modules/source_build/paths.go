package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

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
