package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"

	"github.com/chezlepro/sovereign/internal/fsutil"
)

// observed is what the module found on the target: the input to plan.
type observed struct {
	RootExists, ReleasesExists bool
	// Slots are the symlinks directly under root that point at a release
	// (any name: blue, green, current...), sorted by name.
	Slots []slotInfo
	// Slot is the requested slot as found (Exists false when absent).
	Slot slotInfo
	// Releases are the release directories under releases_dir, sorted.
	Releases []string
	// Target is the wanted release (nil when its directory is absent).
	Target *targetInfo
	// Leftovers are temporary files, links and directories of a killed run.
	Leftovers []string
	History   []historyEntry
}

type slotInfo struct {
	Name    string
	Exists  bool
	Link    string // the symlink's text
	Release string // name of the release it points at
}

// targetInfo is the state of the wanted release directory.
type targetInfo struct {
	Meta     *releaseMeta // nil when missing or unreadable
	Intact   bool         // the binary is a regular file with the wanted sha256
	Damage   string       // why it is not intact
	Hashed   bool         // the binary was hashed by this run (stat signature stale or reverify)
	SigFresh bool         // .release.json matches the binary and the wanted release
	Size     int64
	UID, GID int
	Mode     os.FileMode
	Caps     capSet
}

// releaseNameRe matches release directory names: <version>-<12 hex>.
var releaseNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+~-]*-[0-9a-f]{12}$`)

// isLeftover tells temporary names (fsutil.TempName: ".<base>.tmp-...").
func isLeftover(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-")
}

// observeSource checks the src file and, when no checksum was given,
// hashes it so the release name is known. Read-only.
func observeSource(s *spec) error {
	if s.Src == "" {
		return nil
	}
	real, err := resolveSrc(s.Src)
	if err != nil {
		return err
	}
	s.SrcReal = real
	f, fi, err := openSrc(real)
	if err != nil {
		return err
	}
	defer f.Close()
	s.SrcSize = fi.Size()
	if s.Size >= 0 && fi.Size() != s.Size {
		return fmt.Errorf("src %s has %d bytes but manifest %s says %d", s.Src, fi.Size(), s.Manifest, s.Size)
	}
	if s.SHA256 == "" {
		sum, _, err := fsutil.HashReader(f)
		if err != nil {
			return fmt.Errorf("hash src: read %s: %w", f.Name(), err)
		}
		s.SHA256 = sum
	}
	return nil
}

// resolveSrc returns the file src designates. src itself may be a symlink
// to a file in its own directory (app -> app-1.2); one that leads elsewhere
// is refused, so a root-run module never copies, as a 0755 binary, a file
// the task's author pointed at by a link (/etc/shadow, D3). The parent
// directories are the machine's own layout and are followed.
func resolveSrc(src string) (string, error) {
	real, err := filepath.EvalSymlinks(src)
	if err != nil {
		return "", fmt.Errorf("src: %w", err)
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(src))
	if err != nil {
		return "", fmt.Errorf("src: %w", err)
	}
	if filepath.Dir(real) != dir {
		return "", fmt.Errorf("src %s is a symlink to %s, outside %s: refusing to stage it (give the real file)", src, real, filepath.Dir(src))
	}
	return real, nil
}

// openSrc opens the resolved src without following a symlink that would
// have replaced it since, and checks it is a regular file.
func openSrc(real string) (*os.File, os.FileInfo, error) {
	f, err := os.OpenFile(real, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open src: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("src: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("src %s is not a regular file (%s)", real, fi.Mode().Type())
	}
	return f, fi, nil
}

// observe reads the state under root and releases_dir. Read-only: it is
// what check mode shows and what a real run plans from.
func observe(s *spec) (*observed, error) {
	o := &observed{Slot: slotInfo{Name: s.Slot}}
	var err error
	if o.RootExists, err = realDir("root", s.Root); err != nil {
		return nil, err
	}
	if o.ReleasesExists, err = realDir("releases_dir", s.ReleasesDir); err != nil {
		return nil, err
	}
	if o.RootExists {
		if _, err := realDir("state directory", s.StateDir); err != nil {
			return nil, err
		}
		if err := observeRoot(s, o); err != nil {
			return nil, err
		}
		if o.History, err = readHistory(s); err != nil {
			return nil, err
		}
	}
	if o.ReleasesExists {
		if err := observeReleases(s, o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// realDir reports whether p is a directory; a symlink or another kind of
// file there is refused.
func realDir(what, p string) (bool, error) {
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("%s: %w", what, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		t, _ := os.Readlink(p)
		return false, fmt.Errorf("%s %s is a symlink (to %s): refusing to follow it; give the real directory", what, p, t)
	case !fi.IsDir():
		return false, fmt.Errorf("%s %s exists and is not a directory", what, p)
	}
	return true, nil
}

// releaseOf returns the release a symlink text designates, or "" when it
// does not lead to a direct child of releases_dir.
func releaseOf(s *spec, link string) string {
	t := link
	if !filepath.IsAbs(t) {
		t = filepath.Join(s.Root, t)
	}
	t = filepath.Clean(t)
	if filepath.Dir(t) != s.ReleasesDir {
		return ""
	}
	name := filepath.Base(t)
	if !releaseNameRe.MatchString(name) {
		return ""
	}
	return name
}

func observeRoot(s *spec, o *observed) error {
	entries, err := os.ReadDir(s.Root)
	if err != nil {
		return fmt.Errorf("read root: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		p := filepath.Join(s.Root, name)
		if isLeftover(name) && e.Type()&fs.ModeSymlink != 0 {
			o.Leftovers = append(o.Leftovers, p)
			continue
		}
		if e.Type()&fs.ModeSymlink == 0 {
			if name == s.Slot {
				return fmt.Errorf("slot %s exists and is not a symlink: refusing to replace it", p)
			}
			continue
		}
		link, err := os.Readlink(p)
		if err != nil {
			return fmt.Errorf("read slot %s: %w", p, err)
		}
		si := slotInfo{Name: name, Exists: true, Link: link, Release: releaseOf(s, link)}
		if name == s.Slot {
			if si.Release == "" {
				return fmt.Errorf("slot %s points to %s, outside releases_dir %s: refusing to replace it", p, link, s.ReleasesDir)
			}
			o.Slot = si
		}
		if si.Release != "" {
			o.Slots = append(o.Slots, si)
		}
	}
	if tmps, _ := filepath.Glob(filepath.Join(s.StateDir, ".*.tmp-*")); len(tmps) > 0 {
		o.Leftovers = append(o.Leftovers, tmps...)
	}
	return nil
}

func observeReleases(s *spec, o *observed) error {
	entries, err := os.ReadDir(s.ReleasesDir)
	if err != nil {
		return fmt.Errorf("read releases_dir: %w", err)
	}
	target := s.release()
	for _, e := range entries {
		name := e.Name()
		p := filepath.Join(s.ReleasesDir, name)
		switch {
		case isLeftover(name):
			o.Leftovers = append(o.Leftovers, p)
			continue
		case !releaseNameRe.MatchString(name):
			continue // not ours: never touched
		case e.Type()&fs.ModeSymlink != 0:
			if name == target {
				t, _ := os.Readlink(p)
				return fmt.Errorf("release %s is a symlink (to %s): refusing to follow it", p, t)
			}
			continue
		case !e.IsDir():
			if name == target {
				return fmt.Errorf("release %s exists and is not a directory", p)
			}
			continue
		}
		if name != target && !hasRecord(p) {
			continue // named like a release but not made by this module: never pruned (D15)
		}
		o.Releases = append(o.Releases, name)
		// Temporary files of a killed repair inside a release.
		if tmps, _ := filepath.Glob(filepath.Join(p, ".*.tmp-*")); len(tmps) > 0 {
			o.Leftovers = append(o.Leftovers, tmps...)
		}
		if name == target {
			o.Target = observeTarget(s, p)
		}
	}
	slices.Sort(o.Releases)
	return nil
}

// hasRecord tells whether dir holds a .release.json as a regular file:
// every release this module stages gets one before its final name.
func hasRecord(dir string) bool {
	fi, err := os.Lstat(filepath.Join(dir, metaName))
	return err == nil && fi.Mode().IsRegular()
}

// observeTarget checks the wanted release: its binary must be a regular
// file whose sha256 is the wanted one. The hash is trusted from
// .release.json while the binary's stat signature is unchanged.
func observeTarget(s *spec, dir string) *targetInfo {
	t := &targetInfo{}
	t.Meta, _ = readMeta(dir)
	bin := filepath.Join(dir, s.Binary)
	fi, err := os.Lstat(bin)
	switch {
	case err != nil:
		t.Damage = fmt.Sprintf("binary %s is missing", bin)
		return t
	case !fi.Mode().IsRegular():
		t.Damage = fmt.Sprintf("binary %s is not a regular file (%s)", bin, fi.Mode().Type())
		return t
	}
	st := fi.Sys().(*syscall.Stat_t)
	t.Size = fi.Size()
	t.UID, t.GID, t.Mode = int(st.Uid), int(st.Gid), fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
	caps, err := readCaps(bin)
	if err != nil {
		t.Damage = err.Error()
		return t
	}
	t.Caps = caps
	m := t.Meta
	t.SigFresh = m != nil && m.SHA256 == s.SHA256 && m.Binary == s.Binary && m.Stat == sigOf(fi)
	if t.SigFresh && !s.Reverify {
		t.Intact = true
		return t
	}
	sum, n, err := fsutil.HashFile(bin)
	t.Hashed = true
	switch {
	case err != nil:
		t.Damage = err.Error()
	case sum != s.SHA256:
		t.Damage = fmt.Sprintf("binary %s has sha256:%s (%d bytes), want sha256:%s", bin, sum, n, s.SHA256)
	default:
		t.Intact = true
	}
	return t
}
