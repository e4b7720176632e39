package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/chezlepro/sovereign/internal/fsutil"
	"github.com/chezlepro/sovereign/internal/systemd"
)

// observe reads what the plan needs. It changes nothing.
func (m unitModule) observe(ctx context.Context, r *request) (*observed, error) {
	e, mgr, c := m.e, r.mgr, r.c
	obs := &observed{files: map[string]fileObs{}, units: map[string]systemd.UnitStatus{}, binSHA: map[Colour]string{}}
	var err error
	if obs.state, err = readState(statePath(e.stateDir, c.name)); err != nil {
		return nil, err
	}
	for _, n := range observedUnits(c, obs.state) {
		if obs.files[n], err = readFileObs(filepath.Join(e.unitDir, n)); err != nil {
			return nil, err
		}
		if obs.units[n], err = mgr.Status(ctx, n); err != nil {
			return nil, err
		}
	}
	if c.state != "present" {
		return obs, nil
	}
	for _, col := range colours {
		obs.binSHA[col] = fileSHA256(c.colour[col].command[0])
	}
	if c.strategy == "reuseport" {
		b, err := os.ReadFile(e.procMigrate)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("read %s: %w", e.procMigrate, err)
		default:
			obs.migrate = strings.TrimSpace(string(b))
		}
		if c.migrate && obs.migrate != "" && obs.migrate != "1" && e.procWritable != nil {
			obs.migrateUnwritable = e.procWritable(e.procMigrate)
		}
		if obs.sysctlConf, err = readFileObs(filepath.Join(e.sysctlDir, sysctlConfName)); err != nil {
			return nil, err
		}
	}
	return obs, nil
}

// observedUnits: both colours, the configured sockets, and whatever the
// state file says the module managed before.
func observedUnits(c *config, st *State) []string {
	names := []string{serviceUnit(c.name, Blue), serviceUnit(c.name, Green)}
	for _, col := range colours {
		names = append(names, socketUnits(c, col)...)
	}
	if st != nil {
		names = append(names, st.Units...)
	}
	seen := map[string]bool{}
	out := names[:0]
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

func readFileObs(path string) (fileObs, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fileObs{path: path}, nil
	}
	if err != nil {
		return fileObs{}, fmt.Errorf("read %s: %w", path, err)
	}
	return fileObs{path: path, exists: true, content: string(b)}, nil
}

// fileSHA256 is the hex sha256 of a regular file, or "" when it cannot be
// read (not deployed yet, say) or is not a regular file (never read: a
// device could be endless).
func fileSHA256(path string) string {
	if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() {
		return ""
	}
	sum, _, err := fsutil.HashFile(path)
	if err != nil {
		return ""
	}
	return sum
}
