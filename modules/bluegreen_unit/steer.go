package main

import (
	"errors"
	"fmt"

	"github.com/chezlepro/sovereign/internal/reuseport"
)

// steerer steers the SO_REUSEPORT groups a colour listens in (strategy
// reuseport), given the main PID of each colour's service. Each call returns
// one line per group, for the result's steering list.
type steerer interface {
	// Hold sends new connections of every group the old colour listens
	// in to its own sockets, before the new colour joins.
	Hold(oldPID int) ([]string, error)
	// Move sends new connections of every group both colours listen in to
	// the new colour's sockets.
	Move(oldPID, newPID int) ([]string, error)
	// Release removes the steering of every group the colour listens in.
	Release(pid int) ([]string, error)
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

func (k kernelSteerer) Hold(oldPID int) ([]string, error) {
	socks, err := k.sockets(oldPID)
	if err != nil {
		return nil, err
	}
	all, err := k.proc.ListenCount(oldPID)
	if err != nil {
		return nil, err
	}
	count, first := reuseport.ByGroup(socks)
	var out []string
	for _, g := range sortedGroups(count) {
		n := count[g]
		if !first[g].Reuseport {
			// A port of this colour alone (its health check, say): an
			// MPTCP one there must not fail the flip.
			out = append(out, fmt.Sprintf("%s: not shared (no SO_REUSEPORT)", g))
			continue
		}
		if all[g] != n {
			// Someone else listens there too: the positions of the old
			// colour's sockets in the group are unknown.
			out = append(out, fmt.Sprintf("%s: not steered: %d listening sockets, %d of them the old colour's", g, all[g], n))
			continue
		}
		switch err := reuseport.Steer(first[g], 0, n); {
		case errors.Is(err, reuseport.ErrNotReuseport):
			out = append(out, fmt.Sprintf("%s: not shared (no SO_REUSEPORT)", g))
		case err != nil:
			return out, fmt.Errorf("holding new connections of %s on the old colour: %w", g, err)
		default:
			out = append(out, fmt.Sprintf("%s: held on the old colour's %d socket(s)", g, n))
		}
	}
	return out, nil
}

func (k kernelSteerer) Move(oldPID, newPID int) ([]string, error) {
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
	var out []string
	for _, g := range sortedGroups(newCount) {
		n, m := oldCount[g], newCount[g]
		if n == 0 {
			continue // the new colour's own port (its health check, say)
		}
		if all[g] != n+m {
			out = append(out, fmt.Sprintf("%s: not moved: %d listening sockets, not the %d+%d of both colours; released instead", g, all[g], n, m))
			if err := reuseport.Release(first[g]); err != nil {
				return out, err
			}
			continue
		}
		if err := reuseport.Steer(first[g], n, m); err != nil {
			return out, fmt.Errorf("moving new connections of %s to the new colour: %w", g, err)
		}
		out = append(out, fmt.Sprintf("%s: moved to the new colour's %d socket(s)", g, m))
	}
	return out, nil
}

func (k kernelSteerer) Release(pid int) ([]string, error) {
	socks, err := k.sockets(pid)
	if err != nil {
		return nil, err
	}
	count, first := reuseport.ByGroup(socks)
	var out []string
	for _, g := range sortedGroups(count) {
		if err := reuseport.Release(first[g]); err != nil {
			return out, err
		}
		out = append(out, fmt.Sprintf("%s: released", g))
	}
	return out, nil
}

func sortedGroups(m map[reuseport.Group]int) []reuseport.Group {
	out := make([]reuseport.Group, 0, len(m))
	for g := range m {
		out = append(out, g)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].String() < out[j-1].String(); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
