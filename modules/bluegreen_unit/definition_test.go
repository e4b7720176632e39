package main

import (
	"os"
	"strings"
	"testing"
)

// Rollback as root: rollback, flip and query with only name reuse the
// definition recorded at the last apply, user and service type included.
func TestModuleActionsWithOnlyNameReuseTheRecordedDefinition(t *testing.T) {
	h := newHarness(t)
	h.mustOK(h.run(args(map[string]any{"active": "blue", "user": "webapp"})))
	h.mustOK(h.run(args(map[string]any{"active": "green", "user": "webapp"})))
	blue, green := h.unitFile("webapp-blue.service"), h.unitFile("webapp-green.service")

	for _, step := range []struct{ action, active string }{{"rollback", "blue"}, {"flip", "green"}} {
		r := h.run(map[string]any{"name": "webapp", "action": step.action})
		h.mustOK(r)
		if r.str("active") != step.active || r.str("action") != step.action {
			t.Fatalf("%s with only name: %v", step.action, r)
		}
		if h.unitFile("webapp-blue.service") != blue || h.unitFile("webapp-green.service") != green {
			t.Fatalf("%s with only name rewrote the units:\n%s", step.action, h.unitFile("webapp-blue.service"))
		}
	}
	if !strings.Contains(blue, "\nUser=webapp\n") || !strings.Contains(blue, "\nType=notify\n") {
		t.Fatalf("units lost the user or type:\n%s", blue)
	}
	q := h.run(map[string]any{"name": "webapp", "state": "query"})
	h.mustOK(q)
	if q.str("active") != "green" {
		t.Fatalf("query: %v", q)
	}
	if fi, err := os.Stat(statePath(h.env.stateDir, "webapp")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file (it records environment values) must be 0600: %v %v", fi.Mode(), err)
	}
}

// A definition that drops user is refused before anything changes; one that
// names another user is applied and the diff shows it.
func TestModuleDefinitionDroppingUserIsRefused(t *testing.T) {
	h := newHarness(t)
	h.mustOK(h.run(args(map[string]any{"active": "blue", "user": "webapp"})))
	before := h.unitFile("webapp-blue.service")
	h.fake.Reset()

	r := h.run(args(map[string]any{"action": "flip"}))
	if !r.bool("failed") || !strings.Contains(r.str("msg"), `runs webapp as user "webapp"`) || !strings.Contains(r.str("msg"), "user: root") {
		t.Fatalf("a definition without user was not refused: %v", r)
	}
	r = h.run(args(map[string]any{"active": "green"}))
	if !r.bool("failed") || h.unitFile("webapp-blue.service") != before || len(h.fake.Mutating()) != 0 {
		t.Fatalf("a definition without user changed something: %v %q", r, h.fake.Calls)
	}
	r = h.run(map[string]any{"name": "webapp", "active": "green", "user": "other"})
	if !r.bool("failed") || !strings.Contains(r.str("msg"), "in full") {
		t.Fatalf("a partial definition was not refused: %v", r)
	}

	r = h.run(args(map[string]any{"active": "blue", "user": "root"}), "diff")
	h.mustOK(r)
	if !strings.Contains(h.unitFile("webapp-blue.service"), "\nUser=root\n") || !strings.Contains(diffText(r), "User=webapp") {
		t.Fatalf("explicit user change not applied or not in the diff: %v", r["diff"])
	}
}

func diffText(r result) string {
	var b strings.Builder
	switch d := r["diff"].(type) {
	case []any:
		for _, e := range d {
			m, _ := e.(map[string]any)
			b.WriteString(m["before"].(string) + m["after"].(string))
		}
	case map[string]any:
		b.WriteString(d["before"].(string) + d["after"].(string))
	}
	return b.String()
}
