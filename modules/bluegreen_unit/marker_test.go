package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// D16: unit files the module did not write (no marker) are neither
// overwritten by state=present nor stopped, disabled or deleted by
// state=absent; the task fails saying so and touches nothing.
func TestModuleLeavesHandWrittenUnitsAlone(t *testing.T) {
	for _, unit := range []string{"webapp-blue.service", "webapp-green-http.socket"} {
		t.Run(unit, func(t *testing.T) {
			h := newHarness(t)
			hand := "[Unit]\nDescription=written by hand\n\n[Service]\nExecStart=/usr/bin/sleep infinity\n"
			if strings.HasSuffix(unit, ".socket") {
				hand = "[Socket]\nListenStream=8080\n"
			}
			p := filepath.Join(h.env.unitDir, unit)
			if err := os.WriteFile(p, []byte(hand), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, a := range []map[string]any{
				args(map[string]any{"active": "blue"}),
				{"name": "webapp", "state": "absent"},
			} {
				h.fake.Reset()
				r := h.run(a)
				// state=absent without a state file does not know the
				// socket names: it must then leave the socket alone.
				mustRefuse := a["state"] == nil || strings.HasSuffix(unit, ".service")
				if mustRefuse && (!r.bool("failed") || !strings.Contains(r.str("msg"), p+" was not written by this module")) {
					t.Fatalf("state=%v: not refused: %v", a["state"], r)
				}
				if got, _ := os.ReadFile(p); string(got) != hand {
					t.Fatalf("state=%v: hand-written unit changed to:\n%s", a["state"], got)
				}
				if m := h.fake.Mutating(); len(m) != 0 {
					t.Fatalf("state=%v: systemd calls %q", a["state"], m)
				}
			}
		})
	}
}

// Units written by the module carry the marker it checks.
func TestRenderedUnitsCarryTheMarker(t *testing.T) {
	c := mustConfig(t, baseOptions())
	for _, u := range []string{renderService(c, Blue), renderSocket(c, socketConfig{name: "http", listen: []string{"80"}}, Green)} {
		if !ours(u) {
			t.Fatalf("no marker in:\n%s", u)
		}
	}
	if ours("[Unit]\n# Managed by chezlepro.sovereign.bluegreen_unit\n") {
		t.Fatal("the marker counts only on the first line")
	}
}
