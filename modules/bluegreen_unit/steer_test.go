package main

import (
	"testing"

	"github.com/chezlepro/sovereign/internal/reuseport"
)

// The steering lines are documented output (RETURN's steering): each
// outcome keeps its wording byte for byte.
func TestSteeredLines(t *testing.T) {
	http := reuseport.Group{Family: "tcp", Addr: "0.0.0.0:8080"}
	check := reuseport.Group{Family: "tcp", Addr: "127.0.0.1:9001"}
	for _, c := range []struct {
		s    steered
		want string
	}{
		{steered{step: stepHold, group: http, outcome: heldOnOld, listening: 1, old: 1}, "hold: tcp 0.0.0.0:8080: held on the old colour's 1 socket(s)"},
		{steered{step: stepHold, group: check, outcome: notShared, listening: 1, old: 1}, "hold: tcp 127.0.0.1:9001: not shared (no SO_REUSEPORT)"},
		{steered{step: stepHold, group: http, outcome: notSteered, listening: 3, old: 2}, "hold: tcp 0.0.0.0:8080: not steered: 3 listening sockets, 2 of them the old colour's"},
		{steered{step: stepMove, group: http, outcome: movedToNew, listening: 3, old: 1, new: 2}, "move: tcp 0.0.0.0:8080: moved to the new colour's 2 socket(s)"},
		{steered{step: stepMove, group: http, outcome: notMoved, listening: 4, old: 1, new: 2}, "move: tcp 0.0.0.0:8080: not moved: 4 listening sockets, not the 1+2 of both colours; released instead"},
		{steered{step: stepRelease, group: http, outcome: released, old: 1}, "release: tcp 0.0.0.0:8080: released"},
	} {
		if got := c.s.String(); got != c.want {
			t.Errorf("got  %q\nwant %q", got, c.want)
		}
	}
}

// Only a hold that held a group means traffic never moved while the new
// colour was gated.
func TestHeldReadsTheHoldOutcome(t *testing.T) {
	g := reuseport.Group{Family: "tcp", Addr: "0.0.0.0:8080"}
	for _, c := range []struct {
		steering []steered
		want     bool
	}{
		{nil, false},
		{[]steered{{step: stepHold, group: g, outcome: notShared}}, false},
		{[]steered{{step: stepHold, group: g, outcome: notSteered}}, false},
		{[]steered{{step: stepRelease, group: g, outcome: released}}, false},
		{[]steered{{step: stepHold, group: g, outcome: notShared}, {step: stepHold, group: g, outcome: heldOnOld}}, true},
	} {
		if got := held(&applied{steering: c.steering}); got != c.want {
			t.Errorf("held(%v) = %v, want %v", c.steering, got, c.want)
		}
	}
}
