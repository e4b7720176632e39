package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/chezlepro/sovereign/internal/fsutil"
)

// outcome is what apply did, beyond the plan itself. On failure it tells
// what was done before the failure.
type outcome struct {
	Changed     bool     // something under root or releases_dir was written
	Staged      bool     // the release directory was created
	Removed     []string // releases pruned
	Cleaned     []string // leftovers removed
	SmokeOutput string
	Size        int64 // size of the release binary
}

// apply carries out p. The order is what keeps every crash safe: the new
// release is complete and verified under a temporary directory name before
// it gets its final name, the slot moves only to a complete release, and a
// release is renamed away before it is deleted.
func apply(ctx context.Context, s *spec, o *observed, p *plan) (*outcome, error) {
	out := &outcome{}
	if err := cleanLeftovers(s, p, out); err != nil {
		return out, err
	}
	for _, d := range []string{s.Root, s.ReleasesDir} {
		created, err := mkdirSynced(d)
		out.Changed = out.Changed || created
		if err != nil {
			return out, err
		}
	}
	if err := prepareRelease(ctx, s, o, p, out); err != nil {
		return out, keptSlot(err, p)
	}
	if p.Smoke {
		res, err := smoke(ctx, s, p)
		out.SmokeOutput = res
		if err != nil {
			return out, keptSlot(err, p)
		}
	}
	if p.Switch {
		if err := swapSlot(s); err != nil {
			return out, keptSlot(err, p)
		}
		out.Changed = true
	}
	return out, recordAndPrune(s, o, p, out)
}

func cleanLeftovers(s *spec, p *plan, out *outcome) error {
	for _, c := range p.Clean {
		if err := os.RemoveAll(c); err != nil {
			return fmt.Errorf("remove leftover %s: %w", c, err)
		}
		out.Cleaned = append(out.Cleaned, c)
		out.Changed = true
	}
	if len(p.Clean) == 0 {
		return nil
	}
	for _, d := range []string{s.Root, s.ReleasesDir, s.StateDir, p.ReleasePath} {
		if err := syncIfDir(d); err != nil {
			return err
		}
	}
	fault("after-clean")
	return nil
}

// prepareRelease makes the release complete, verified and with the wanted
// attributes: staged anew, repaired, or fixed in place.
func prepareRelease(ctx context.Context, s *spec, o *observed, p *plan, out *outcome) error {
	switch {
	case p.Stage:
		if err := stageRelease(ctx, s, p); err != nil {
			return diskFull(s, err)
		}
		out.Staged, out.Changed = true, true
	case p.Repair != "":
		if err := writeBinary(ctx, s, p.ReleasePath); err != nil {
			return diskFull(s, err)
		}
		out.Changed = true
		if err := writeMeta(p.ReleasePath, s, now()); err != nil {
			return diskFull(s, err)
		}
	case len(p.FixAttrs) > 0 || p.RefreshMeta:
		if len(p.FixAttrs) > 0 {
			out.Changed = true
			if err := setAttrs(s, filepath.Join(p.ReleasePath, s.Binary), nil); err != nil {
				return err
			}
		}
		stagedAt := now()
		if o.Target != nil && o.Target.Meta != nil && o.Target.Meta.StagedAt != "" {
			stagedAt = o.Target.Meta.StagedAt
		}
		out.Changed = true
		if err := writeMeta(p.ReleasePath, s, stagedAt); err != nil {
			return err
		}
	}
	fi, err := os.Stat(filepath.Join(p.ReleasePath, s.Binary))
	if err != nil {
		return err
	}
	out.Size = fi.Size()
	return nil
}

// recordAndPrune appends this run to the history, then prunes and records
// what was pruned.
func recordAndPrune(s *spec, o *observed, p *plan, out *outcome) error {
	entry := historyEntry{
		At: now(), Slot: s.Slot, Release: p.Release, SHA256: s.SHA256, Source: s.source(),
		Previous: p.PrevRelease, Staged: p.Stage, Repaired: p.Repair != "", Recorded: p.Record,
	}
	hist := append(slices.Clone(o.History), entry)
	if err := writeHistory(s, hist); err != nil {
		return fmt.Errorf("slot %s points at %s, but recording it in the history failed: %w", s.SlotPath, p.Release, err)
	}
	out.Changed = true
	fault("after-history")
	for i, r := range p.Prune {
		if err := pruneRelease(s, r, i == 0); err != nil {
			return err
		}
		out.Removed = append(out.Removed, r)
	}
	if len(p.Prune) == 0 {
		return nil
	}
	fault("after-prune")
	hist[len(hist)-1].Removed = out.Removed
	if err := writeHistory(s, hist); err != nil {
		return fmt.Errorf("pruned %v, but recording it in the history failed: %w", out.Removed, err)
	}
	return nil
}

// keptSlot adds to a failure before the switch that the slot was not moved.
func keptSlot(err error, p *plan) error {
	if p.PrevLink == "" {
		return fmt.Errorf("%w (slot not created)", err)
	}
	return fmt.Errorf("%w (slot still points at %s)", err, p.PrevLink)
}

func syncIfDir(d string) error {
	if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
		return nil
	}
	return fsutil.SyncDir(d)
}

// dirMode is the mode of every directory this module creates (root and
// its missing parents, releases_dir, the state directory, each release),
// set explicitly: the module runs with the login's umask, and under 077 the
// service's own user could not reach its binary.
const dirMode os.FileMode = 0o755

// mkdirSynced creates dir (and parents) with dirMode and makes the creation
// durable. It reports whether it created anything.
func mkdirSynced(dir string) (bool, error) {
	if _, err := os.Lstat(dir); err == nil {
		return false, nil
	}
	// top is the first missing ancestor: from it down, the directories are
	// this run's.
	top := dir
	for parent := filepath.Dir(top); parent != top; parent = filepath.Dir(top) {
		if _, err := os.Lstat(parent); err == nil {
			break
		}
		top = parent
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return false, fmt.Errorf("create %s: %w", dir, err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if err := os.Chmod(d, dirMode); err != nil {
			return true, fmt.Errorf("chmod %s: %w", d, err)
		}
		if d == top {
			break
		}
	}
	return true, fsutil.SyncDir(filepath.Dir(dir))
}

// stageRelease builds the release in a temporary directory beside its
// final name and renames it into place only once complete and verified.
func stageRelease(ctx context.Context, s *spec, p *plan) (err error) {
	tmp := fsutil.TempName(p.ReleasePath)
	if err := os.Mkdir(tmp, dirMode); err != nil {
		return fmt.Errorf("create release directory: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, dirMode); err != nil { // Mkdir's mode is filtered by the umask
		return fmt.Errorf("chmod release directory: %w", err)
	}
	if err := writeBinary(ctx, s, tmp); err != nil {
		return err
	}
	if err := writeMeta(tmp, s, now()); err != nil {
		return err
	}
	fault("after-metadata")
	if err := fsutil.SyncDir(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, p.ReleasePath); err != nil {
		return fmt.Errorf("rename release directory into place: %w", err)
	}
	fault("after-release-rename")
	return fsutil.SyncDir(s.ReleasesDir)
}

// writeBinary writes the binary into dir through fsutil.WriteAtomic:
// copied under a temporary name, fsynced, read back and verified, given its
// owner and capabilities, and only then renamed to its final name.
func writeBinary(ctx context.Context, s *spec, dir string) error {
	final := filepath.Join(dir, s.Binary)
	// fillErr keeps fill's own error: the temporary file it names is gone
	// by the time the user reads the message.
	var fillErr error
	err := fsutil.WriteAtomic(final, s.Mode, func(w io.Writer) error {
		fillErr = fillBinary(ctx, s, w)
		return fillErr
	})
	if fillErr != nil {
		return fillErr
	}
	if err != nil {
		return err
	}
	fault("after-rename")
	return nil
}

// fillBinary is writeBinary's part between creating the temporary file and
// renaming it.
func fillBinary(ctx context.Context, s *spec, w io.Writer) error {
	f, ok := w.(*os.File)
	if !ok {
		return fmt.Errorf("internal error: fsutil.WriteAtomic handed a %T, not a file", w)
	}
	if _, err := fillFromSource(ctx, s, f); err != nil {
		return err
	}
	fault("after-temp-write")
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync: %w", err)
	}
	fault("after-fsync")
	// Verified means: the bytes now in the staged file, read back.
	sum, n, err := fsutil.HashFile(f.Name())
	if err != nil {
		return fmt.Errorf("read back staged file: %w", err)
	}
	if sum != s.SHA256 {
		return fmt.Errorf("staged file from %s has sha256:%s (%d bytes), want sha256:%s: %w", s.source(), sum, n, s.SHA256, errChecksum)
	}
	if s.Size >= 0 && n != s.Size {
		return fmt.Errorf("staged file from %s has %d bytes, manifest says %d", s.source(), n, s.Size)
	}
	fault("after-verify")
	if err := setAttrs(s, f.Name(), f); err != nil {
		return err
	}
	fault("after-attrs")
	return nil
}

// setAttrs gives path its owner, group, mode and capabilities, in the only
// order that works: chown clears capabilities and set-id bits, so it comes
// first and the capabilities come last.
func setAttrs(s *spec, path string, f *os.File) error {
	if s.UID >= 0 || s.GID >= 0 {
		var err error
		if f != nil {
			err = f.Chown(s.UID, s.GID)
		} else {
			err = os.Lchown(path, s.UID, s.GID)
		}
		if err != nil {
			return fmt.Errorf("chown %s: %w", path, err)
		}
	}
	if err := os.Chmod(path, s.Mode); err != nil {
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	return writeCaps(path, s.Caps)
}

// diskFull names the usual cause of a failed write plainly, first.
func diskFull(s *spec, err error) error {
	size := "its size unknown"
	if n := max(s.Size, s.SrcSize); n >= 0 {
		size = fmt.Sprintf("%d bytes", n)
	}
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("no space left on the filesystem of %s for %s (%s): %w", s.ReleasesDir, s.Binary, size, err)
	case errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("disk quota exceeded on %s for %s (%s): %w", s.ReleasesDir, s.Binary, size, err)
	}
	return err
}

// swapSlot points the slot at the release: a new symlink under a temporary
// name, renamed over the old one (rename is atomic), then the directory
// fsynced. Composed from fsutil's TempName and SyncDir rather than
// fsutil.SymlinkAtomic so the fault hook can stop between the two steps.
func swapSlot(s *spec) error {
	tmp := fsutil.TempName(s.SlotPath)
	if err := os.Symlink(s.linkTarget(), tmp); err != nil {
		return fmt.Errorf("create temporary slot link: %w", err)
	}
	fault("after-temp-link")
	if err := os.Rename(tmp, s.SlotPath); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rename %s over slot %s: %w", tmp, s.SlotPath, err)
	}
	fault("after-link-rename")
	return fsutil.SyncDir(s.Root)
}

// pruneRelease renames a release out of its final name (atomic: it is
// either there, complete, or gone) and then deletes it.
func pruneRelease(s *spec, name string, first bool) error {
	dir := filepath.Join(s.ReleasesDir, name)
	trash := fsutil.TempName(dir)
	if err := os.Rename(dir, trash); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("prune %s: %w", dir, err)
	}
	if err := fsutil.SyncDir(s.ReleasesDir); err != nil {
		return err
	}
	if first {
		os.Remove(filepath.Join(trash, metaName))
		fault("mid-prune")
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("prune %s (renamed to %s): %w", dir, trash, err)
	}
	return nil
}
