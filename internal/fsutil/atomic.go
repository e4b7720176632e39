// Package fsutil holds the one way this collection writes files and swaps
// symlinks: never in place, always through a temporary name in the same
// directory, fsynced, then renamed, then the directory fsynced, so a crash
// leaves either the old or the new content and never a torn file.
package fsutil

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"
)

var tmpCounter atomic.Uint64

// TempName returns a name beside path that no other writer picks:
// ".<base>.tmp-<pid>-<n>-<nanos>". Leftovers from a killed run start with
// ".<base>.tmp-" and can be removed by CleanTemps.
func TempName(path string) string {
	dir, base := filepath.Split(path)
	return filepath.Join(dir, "."+base+".tmp-"+strconv.Itoa(os.Getpid())+"-"+
		strconv.FormatUint(tmpCounter.Add(1), 10)+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
}

// WriteFileAtomic replaces path with data and mode. The previous content
// stays in place until the new one is complete and on disk.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	return WriteAtomic(path, mode, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteAtomic is WriteFileAtomic for content produced by a writer function
// (a copy from a stream, say). If fill fails, nothing is replaced.
func WriteAtomic(path string, mode os.FileMode, fill func(w io.Writer) error) (err error) {
	tmp := TempName(path)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("create temporary file for %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = fill(f); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	// OpenFile's mode is filtered by the umask; set it exactly.
	if err = f.Chmod(mode); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp, path, err)
	}
	return SyncDir(filepath.Dir(path))
}

// SymlinkAtomic points link at target, replacing any existing link in one
// rename, so readers see either the old or the new target, never nothing.
func SymlinkAtomic(target, link string) error {
	tmp := TempName(link)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("create temporary symlink for %s: %w", link, err)
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rename %s to %s: %w", tmp, link, err)
	}
	return SyncDir(filepath.Dir(link))
}

// SyncDir fsyncs a directory so that renames and creations in it survive a
// crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// CleanTemps removes temporary files a killed writer left beside path and
// returns their names.
func CleanTemps(path string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*"))
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, m := range matches {
		if err := os.Remove(m); err != nil && !os.IsNotExist(err) {
			return removed, fmt.Errorf("remove leftover %s: %w", m, err)
		}
		removed = append(removed, m)
	}
	return removed, nil
}
