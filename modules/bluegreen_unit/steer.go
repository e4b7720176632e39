package main

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/chezlepro/sovereign/internal/reuseport"
)

// steerer steers the SO_REUSEPORT groups a colour listens in (strategy
// reuseport), given the main PID of each colour's service. Each call returns
// what it did to each group, for the result's steering list and the
// failure message.
type steerer interface {
	// Hold sends new connections of every group the old colour listens
	// in to its own sockets, before the new colour joins.
	Hold(oldPID int) ([]steered, error)
	// Move sends new connections of every group both colours listen in to
	// the new colour's sockets.
	Move(oldPID, newPID int) ([]steered, error)
	// Release removes the steering of every group the colour listens in.
	Release(pid int) ([]steered, error)
}

// steerOutcome is what a hold, move or release did to one group.
type steerOutcome int

const (
	notShared  steerOutcome = iota // no SO_REUSEPORT there: left alone
	notSteered                     // others listen there too: left alone
	heldOnOld                      // new connections stay on the old colour's sockets
	notMoved                       // not only both colours listen there: released instead
	movedToNew                     // new connections go to the new colour's sockets
	released                       // the kernel's hash again
)

// steered is what one hold, move or release did to one listening address.
type steered struct {
	step    stepKind // stepHold, stepMove or stepRelease
	group   reuseport.Group
	outcome steerOutcome
	// listening counts every socket listening at the address (notSteered,
	// notMoved); old and new, the old and the new colour's sockets there.
	listening, old, new int
}

// String is the line of the result's steering list.
func (s steered) String() string {
	var what string
	switch s.outcome {
	case notShared:
		what = "not shared (no SO_REUSEPORT)"
	case notSteered:
		what = fmt.Sprintf("not steered: %d listening sockets, %d of them the old colour's", s.listening, s.old)
	case heldOnOld:
		what = fmt.Sprintf("held on the old colour's %d socket(s)", s.old)
	case notMoved:
		what = fmt.Sprintf("not moved: %d listening sockets, not the %d+%d of both colours; released instead", s.listening, s.old, s.new)
	case movedToNew:
		what = fmt.Sprintf("moved to the new colour's %d socket(s)", s.new)
	case released:
		what = "released"
	}
	return fmt.Sprintf("%s: %s: %s", s.step, s.group, what)
}

// kernelSteerer is the steerer over the kernel (internal/reuseport).
type kernelSteerer struct{ proc reuseport.Proc }

// sockets are the listening sockets of every process of the service whose
// main process is pid.
func (k kernelSteerer) sockets(pid int) ([]reuseport.Socket, error) {
	if pid <= 0 {
		return nil, errors.New("the colour has no main process")
	}
	peers, err := k.proc.CgroupPeers(pid)
	if err != nil {
		return nil, err
	}
	return k.proc.Listening(peers)
}

func (k kernelSteerer) Hold(oldPID int) ([]steered, error) {
	socks, err := k.sockets(oldPID)
	if err != nil {
		return nil, err
	}
	all, err := k.proc.ListenCount(oldPID)
	if err != nil {
		return nil, err
	}
	count, first := reuseport.ByGroup(socks)
	var out []steered
	for _, g := range sortedGroups(count) {
		n := count[g]
		s := steered{step: stepHold, group: g, listening: all[g], old: n}
		if !first[g].Reuseport {
			// A port of this colour alone (its health check, say): an
			// MPTCP one there must not fail the flip.
			s.outcome = notShared
			out = append(out, s)
			continue
		}
		if all[g] != n {
			// Someone else listens there too: the positions of the old
			// colour's sockets in the group are unknown.
			s.outcome = notSteered
			out = append(out, s)
			continue
		}
		switch err := reuseport.Steer(first[g], 0, n); {
		case errors.Is(err, reuseport.ErrNotReuseport):
			s.outcome = notShared
		case err != nil:
			return out, fmt.Errorf("holding new connections of %s on the old colour: %w", g, err)
		default:
			s.outcome = heldOnOld
		}
		out = append(out, s)
	}
	return out, nil
}

func (k kernelSteerer) Move(oldPID, newPID int) ([]steered, error) {
	olds, err := k.sockets(oldPID)
	if err != nil {
		return nil, err
	}
	news, err := k.sockets(newPID)
	if err != nil {
		return nil, err
	}
	all, err := k.proc.ListenCount(newPID)
	if err != nil {
		return nil, err
	}
	oldCount, _ := reuseport.ByGroup(olds)
	newCount, first := reuseport.ByGroup(news)
	var out []steered
	for _, g := range sortedGroups(newCount) {
		n, m := oldCount[g], newCount[g]
		if n == 0 {
			continue // the new colour's own port (its health check, say)
		}
		s := steered{step: stepMove, group: g, listening: all[g], old: n, new: m}
		if all[g] != n+m {
			s.outcome = notMoved
			out = append(out, s)
			if err := reuseport.Release(first[g]); err != nil {
				return out, err
			}
			continue
		}
		if err := reuseport.Steer(first[g], n, m); err != nil {
			return out, fmt.Errorf("moving new connections of %s to the new colour: %w", g, err)
		}
		s.outcome = movedToNew
		out = append(out, s)
	}
	return out, nil
}

func (k kernelSteerer) Release(pid int) ([]steered, error) {
	socks, err := k.sockets(pid)
	if err != nil {
		return nil, err
	}
	count, first := reuseport.ByGroup(socks)
	var out []steered
	for _, g := range sortedGroups(count) {
		if err := reuseport.Release(first[g]); err != nil {
			return out, err
		}
		out = append(out, steered{step: stepRelease, group: g, outcome: released, old: count[g]})
	}
	return out, nil
}

// sortedGroups are m's groups in the order of their names.
func sortedGroups(m map[reuseport.Group]int) []reuseport.Group {
	return slices.SortedFunc(maps.Keys(m), func(a, b reuseport.Group) int { return strings.Compare(a.String(), b.String()) })
}
