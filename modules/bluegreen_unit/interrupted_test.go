package main

import (
	"fmt"
	"strings"
	"testing"
)

// D9: a flip killed after systemd enabled the new colour but before the
// state file recorded it. The run writes its intent (pending) before the
// first change, so the next run knows what happened: the colour systemd
// has enabled is active, nobody is blamed for a manual change, and the
// attempt gets its history entry.
func TestModuleInterruptedFlipIsRepairedAndRecorded(t *testing.T) {
	h := newHarness(t)
	h.mustOK(h.run(args(map[string]any{"active": "blue"})))
	killed := h.state() // what the file held when the flip started
	h.mustOK(h.run(args(map[string]any{"active": "green"})))
	// Put back the state as a run killed right after the commit steps
	// leaves it: the old state plus the intent written before the first
	// change.
	killed.Pending = &Pending{Action: "flip", From: Blue, To: Green, Time: "2026-12-01T10:00:00Z"}
	if err := writeState(statePath(h.env.stateDir, "webapp"), killed); err != nil {
		t.Fatal(err)
	}

	q := h.run(map[string]any{"name": "webapp", "state": "query"})
	h.mustOK(q)
	if q.str("active") != "green" || strings.Contains(fmt.Sprint(q["warnings"]), "changed by hand") {
		t.Fatalf("query after the interrupted flip: active %q, warnings %v", q.str("active"), q["warnings"])
	}
	h.fake.Reset()
	r := h.run(map[string]any{"name": "webapp"})
	h.mustOK(r)
	if r.str("active") != "green" || len(h.fake.Mutating()) != 0 {
		t.Fatalf("repair run: %v, calls %q", r, h.fake.Calls)
	}
	st := h.state()
	last := st.History[len(st.History)-1]
	if st.Active != Green || st.Previous != Blue || st.Pending != nil || last.Outcome != "interrupted" || last.From != Blue || last.To != Green {
		t.Fatalf("state after the repair: %+v, last entry %+v", st, last)
	}
	if r := h.run(map[string]any{"name": "webapp"}); r.bool("changed") {
		t.Fatalf("second run after the repair: %v", r)
	}
}

// The intent is on disk before the first change of a flip.
func TestModuleWritesItsIntentBeforeTheFirstChange(t *testing.T) {
	h := newHarness(t)
	h.mustOK(h.run(args(map[string]any{"active": "blue"})))
	var seen *Pending
	h.fake.OnCall = func(call string) {
		if seen == nil && strings.HasPrefix(call, "start ") {
			seen = h.state().Pending
		}
	}
	h.mustOK(h.run(args(map[string]any{"active": "green"})))
	if seen == nil || seen.From != Blue || seen.To != Green || seen.Action != "flip" {
		t.Fatalf("pending when the first unit started: %+v", seen)
	}
	if h.state().Pending != nil {
		t.Fatal("pending left after a completed flip")
	}
}
