package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/chezlepro/sovereign/internal/fsutil"
)

const stateVersion = 1

// State is the JSON file under /var/lib/chezlepro-sovereign/bluegreen/ that
// records, per service, which colour is active, which was before, and a
// bounded history of flips.
type State struct {
	Version  int    `json:"version"`
	Name     string `json:"name"`
	Strategy string `json:"strategy"`
	Active   Colour `json:"active"`
	Previous Colour `json:"previous"`
	// Units are the unit files the module manages for this service.
	Units []string `json:"units"`
	// Colours records what each colour ran when it was last started.
	Colours map[Colour]ColourRecord `json:"colours"`
	History []HistoryEntry          `json:"history"`
	// Pending is the change a run is making, written before its first
	// step and cleared with its outcome: found by a later run, it means
	// that run was killed (D9).
	Pending *Pending `json:"pending,omitempty"`
	// Definition is the definition of the last apply (definition.go).
	Definition json.RawMessage `json:"definition,omitempty"`
	// Counters outlive the bounded history (metrics.go).
	Counters *Counters `json:"counters,omitempty"`
}

// ColourRecord says what a colour ran.
type ColourRecord struct {
	Command   []string `json:"command"`
	SHA256    string   `json:"sha256,omitempty"`
	StartedAt string   `json:"started_at,omitempty"`
}

// Pending is a change of the active colour under way.
type Pending struct {
	Time   string `json:"time"`
	Action string `json:"action"`
	From   Colour `json:"from"`
	To     Colour `json:"to"`
}

// HistoryEntry is one attempted change of the active colour.
type HistoryEntry struct {
	Time       string                  `json:"time"`
	Action     string                  `json:"action"`
	From       Colour                  `json:"from"`
	To         Colour                  `json:"to"`
	Outcome    string                  `json:"outcome"`
	Reason     string                  `json:"reason,omitempty"`
	DurationMS int64                   `json:"duration_ms"`
	Colours    map[Colour]ColourRecord `json:"colours"`
}

func statePath(dir, name string) string { return filepath.Join(dir, name+".json") }

// readState returns nil, nil when the file does not exist.
func readState(path string) (*State, error) {
	var s State
	found, err := fsutil.ReadJSON(path, &s)
	switch {
	case found && err != nil:
		return nil, fmt.Errorf("state file: %w (fix or remove it)", err)
	case err != nil:
		return nil, fmt.Errorf("state file: %w", err)
	case !found:
		return nil, nil
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("state file %s has version %d; this module reads version %d", path, s.Version, stateVersion)
	}
	if len(s.Definition) > 0 {
		// Written indented; compact, it compares byte for byte with a
		// definition of this run.
		var b bytes.Buffer
		if err := json.Compact(&b, s.Definition); err != nil {
			return nil, fmt.Errorf("state file %s: definition: %w", path, err)
		}
		s.Definition = b.Bytes()
	}
	if s.Active != "" {
		if _, err := parseColour(string(s.Active)); err != nil {
			return nil, fmt.Errorf("state file %s: active %w", path, err)
		}
	}
	return &s, nil
}

func writeState(path string, s *State) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	// 0600: the definition holds the environment values.
	return fsutil.WriteJSON(path, s, 0o600)
}

// recordInterrupted adds to s the attempt of a run that was killed mid-change
// (prev.Pending), with where systemd says it got: current is active now.
func recordInterrupted(s, prev *State, current Colour) {
	pd := prev.Pending
	if pd == nil {
		return
	}
	s.History = append(s.History, HistoryEntry{
		Time: pd.Time, Action: pd.Action, From: pd.From, To: pd.To, Outcome: "interrupted",
		Reason:  fmt.Sprintf("the run was killed before it recorded its outcome; %s was found active", orNone(current)),
		Colours: map[Colour]ColourRecord{},
	})
	s.Counters = counted(s.Counters)
	s.Counters.count(pd.Action, false, false)
	if current == pd.To && pd.To != prev.Active {
		s.Previous = pd.From
	}
}

// withPending is prev with the intent of p recorded: written before the
// first step of a change, so a run killed anywhere in it leaves a state a
// later run can read correctly (D9).
func withPending(prev *State, c *config, p *plan, now time.Time) *State {
	s := &State{Version: stateVersion, Name: c.name, Strategy: c.strategy, Colours: map[Colour]ColourRecord{}}
	if prev != nil {
		cp := *prev
		s = &cp
	}
	if prev != nil {
		s.History = append([]HistoryEntry(nil), prev.History...)
		recordInterrupted(s, prev, p.current)
	}
	s.Units = p.managedUnits
	s.Pending = &Pending{Time: now.UTC().Format(time.RFC3339Nano), Action: p.action, From: p.current, To: p.target}
	return s
}

// outcome is what happened to a plan, for the history.
type outcome struct {
	ok         bool
	reason     string
	started    time.Time
	duration   time.Duration
	targetSHA  string
	targetRun  bool // the target colour was (re)started by this run
	activeNow  Colour
	previousTo Colour
	gateFailed bool // the health gate stopped it
}

// nextState is the state after a run of p. It is pure.
func nextState(prev *State, c *config, p *plan, o outcome, historySize int) *State {
	s := &State{Version: stateVersion, Name: c.name, Strategy: c.strategy, Colours: map[Colour]ColourRecord{}}
	if prev != nil {
		s.Previous = prev.Previous
		for k, v := range prev.Colours {
			s.Colours[k] = v
		}
		s.History = append(s.History, prev.History...)
		s.Definition = prev.Definition
		s.Counters = prev.Counters
		recordInterrupted(s, prev, p.current)
	}
	if c.definition != nil {
		s.Definition = c.definition
	}
	s.Active = o.activeNow
	if o.previousTo != "" {
		s.Previous = o.previousTo
	}
	s.Units = p.managedUnits
	if o.targetRun {
		s.Colours[p.target] = ColourRecord{
			Command:   c.colour[p.target].command,
			SHA256:    o.targetSHA,
			StartedAt: o.started.UTC().Format(time.RFC3339),
		}
	}
	if p.records() {
		e := HistoryEntry{
			Time: o.started.UTC().Format(time.RFC3339Nano), Action: p.action, From: p.current, To: p.target,
			Outcome: "success", DurationMS: o.duration.Milliseconds(), Colours: map[Colour]ColourRecord{},
		}
		if !o.ok {
			e.Outcome = "failed"
			e.Reason = o.reason
		}
		for k, v := range s.Colours {
			e.Colours[k] = v
		}
		s.History = append(s.History, e)
		s.Counters = counted(s.Counters)
		s.Counters.count(p.action, o.ok, o.gateFailed)
	}
	if len(s.History) > historySize {
		s.History = s.History[len(s.History)-historySize:]
	}
	return s
}

// counted is a copy of k to count into (nil: none counted yet), so that a
// state is never changed through another that shares its counters.
func counted(k *Counters) *Counters {
	if k == nil {
		return &Counters{}
	}
	cp := *k
	return &cp
}
