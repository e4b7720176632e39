package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/chezlepro/sovereign/internal/fsutil"
)

// historyLimit bounds history.json; the oldest entries go first.
const historyLimit = 500

// history is ROOT/.binary_stage/history.json: every change this module made
// under root, oldest first. Retention orders releases by it.
type history struct {
	Version  int            `json:"version"`
	Installs []historyEntry `json:"installs"`
}

// historyEntry records one run that changed something.
type historyEntry struct {
	At       string   `json:"at"` // RFC 3339, UTC
	Slot     string   `json:"slot"`
	Release  string   `json:"release"`
	SHA256   string   `json:"sha256"`
	Source   string   `json:"source"`
	Previous string   `json:"previous,omitempty"` // release the slot pointed at before
	Staged   bool     `json:"staged,omitempty"`   // the release directory was created by this run
	Repaired bool     `json:"repaired,omitempty"` // a damaged binary was replaced
	Removed  []string `json:"removed,omitempty"`  // releases pruned by this run
	Recorded bool     `json:"recorded,omitempty"` // the slot already pointed there: an earlier run's entry was missing
}

func historyPath(s *spec) string { return filepath.Join(s.StateDir, "history.json") }

// readHistory returns the recorded entries (none when the file is absent).
// A file that does not parse is an error: retention must not guess.
func readHistory(s *spec) ([]historyEntry, error) {
	var h history
	found, err := fsutil.ReadJSON(historyPath(s), &h)
	switch {
	case found && err != nil:
		return nil, fmt.Errorf("history %w: fix or move it aside", err)
	case err != nil:
		return nil, fmt.Errorf("history: %w", err)
	}
	return h.Installs, nil
}

// writeHistory replaces history.json atomically.
func writeHistory(s *spec, entries []historyEntry) error {
	if len(entries) > historyLimit {
		entries = entries[len(entries)-historyLimit:]
	}
	// Entries written by an older version may hold a URL's password.
	clean := make([]historyEntry, len(entries))
	for i, e := range entries {
		e.Source = stripUserinfo(e.Source)
		clean[i] = e
	}
	// 0600: a source URL's query may still carry a token.
	return fsutil.WriteJSON(historyPath(s), history{Version: 1, Installs: clean}, 0o600)
}

func now() string { return time.Now().UTC().Format(time.RFC3339) }
