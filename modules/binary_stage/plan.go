package main

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// plan is the ordered list of changes a run makes. It is computed from the
// observed state alone (no system calls), so check mode reports exactly the
// plan a real run then applies.
type plan struct {
	Release     string
	ReleasePath string

	Clean         []string // leftovers of a killed run, removed first
	MkdirRoot     bool
	MkdirReleases bool
	Stage         bool     // create the release directory from the source
	Repair        string   // why the existing release's binary is replaced ("" when it is not)
	FixAttrs      []string // owner/group/mode/capability changes on the existing binary
	RefreshMeta   bool     // rewrite .release.json (binary verified by hashing, or attributes changed)
	Smoke         bool     // run the smoke command before switching
	Switch        bool     // point the slot at the release
	Record        bool     // the slot already points there but the history's last entry for it does not say so
	PrevLink      string   // the slot's symlink text before ("" when the slot did not exist)
	PrevRelease   string
	Prune         []string // releases to remove, oldest first
}

func (p *plan) changed() bool {
	return len(p.Clean) > 0 || p.MkdirRoot || p.MkdirReleases || p.Stage || p.Repair != "" ||
		len(p.FixAttrs) > 0 || p.RefreshMeta || p.Switch || p.Record || len(p.Prune) > 0
}

// writesRelease tells whether the binary is (re)written from the source.
func (p *plan) writesRelease() bool { return p.Stage || p.Repair != "" }

// makePlan decides what to do. Pure: it reads only s and o.
func makePlan(s *spec, o *observed) plan {
	p := plan{Release: s.release(), ReleasePath: s.releasePath()}
	p.Clean = slices.Clone(o.Leftovers)
	// Root made by the lock stage is this run's change all the same.
	p.MkdirRoot = !o.RootExists || s.RootCreated
	p.MkdirReleases = !o.ReleasesExists

	t := o.Target
	switch {
	case t == nil:
		p.Stage = true
	case !t.Intact:
		p.Repair = t.Damage
	default:
		p.FixAttrs = attrChanges(s, t)
		p.RefreshMeta = !t.SigFresh || len(p.FixAttrs) > 0
	}
	if p.Repair != "" {
		p.RefreshMeta = true
	}

	p.PrevLink = o.Slot.Link
	p.PrevRelease = o.Slot.Release
	p.Switch = !o.Slot.Exists || o.Slot.Release != p.Release
	// A run killed, or out of disk, between the switch and the history
	// write leaves the history behind the slot: this run records it (D7).
	p.Record = !p.Switch && lastRelease(o.History, s.Slot) != p.Release
	if p.Record {
		p.PrevRelease = lastRelease(o.History, s.Slot)
	}
	p.Smoke = len(s.Smoke) > 0 && (p.Switch || p.writesRelease())

	// Retention, as it will stand after the switch.
	releases := slices.Clone(o.Releases)
	if !slices.Contains(releases, p.Release) {
		releases = append(releases, p.Release)
	}
	protected := map[string]bool{p.Release: true}
	for _, sl := range o.Slots {
		if sl.Name != s.Slot {
			protected[sl.Release] = true
		}
	}
	p.Prune = selectPrune(releases, protected, o.History, p.Release, s.Keep)
	return p
}

// lastRelease is the release the history last recorded for slot ("" when
// none).
func lastRelease(hist []historyEntry, slot string) string {
	for i := len(hist) - 1; i >= 0; i-- {
		if hist[i].Slot == slot {
			return hist[i].Release
		}
	}
	return ""
}

// attrChanges lists the differences between the wanted and the actual
// owner, group, mode and capabilities of an existing release binary.
func attrChanges(s *spec, t *targetInfo) []string {
	var out []string
	if s.UID >= 0 && s.UID != t.UID {
		out = append(out, fmt.Sprintf("owner %d -> %d", t.UID, s.UID))
	}
	if s.GID >= 0 && s.GID != t.GID {
		out = append(out, fmt.Sprintf("group %d -> %d", t.GID, s.GID))
	}
	if s.Mode != t.Mode {
		out = append(out, fmt.Sprintf("mode %s -> %s", octal(t.Mode), octal(s.Mode)))
	}
	if s.Caps != t.Caps {
		out = append(out, fmt.Sprintf("capabilities %s -> %s", t.Caps, s.Caps))
	}
	return out
}

// octal renders a mode the way users write it ("0755", "4755").
func octal(m os.FileMode) string {
	n := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		n |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		n |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		n |= 0o1000
	}
	return fmt.Sprintf("%04o", n)
}

// selectPrune picks the releases to remove: all but the keep most recent,
// never a protected one (a slot points at it). Recency is the position of
// a release's last mention in the history, newest being the release this
// run installs; releases the history never mentions count as older than
// any it does, ordered among themselves by version. Modification times
// play no part. The result is oldest first.
func selectPrune(releases []string, protected map[string]bool, hist []historyEntry, newest string, keep int) []string {
	rank := map[string]int{}
	for i, h := range hist {
		rank[h.Release] = i + 1
	}
	rank[newest] = len(hist) + 1
	order := slices.Clone(releases)
	slices.SortStableFunc(order, func(a, b string) int { // newest first
		if c := cmp.Compare(rank[b], rank[a]); c != 0 {
			return c
		}
		switch {
		case naturalLess(b, a):
			return -1
		case naturalLess(a, b):
			return 1
		}
		return 0
	})
	var prune []string
	for i, r := range order {
		if i >= keep && !protected[r] {
			prune = append(prune, r)
		}
	}
	slices.Reverse(prune)
	return prune
}

// naturalLess compares strings with runs of digits compared as numbers, so
// "1.9-..." sorts before "1.10-...".
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := isDigit(a[0]), isDigit(b[0])
		if da && db {
			na, ra := splitDigits(a)
			nb, rb := splitDigits(b)
			ta, tb := strings.TrimLeft(na, "0"), strings.TrimLeft(nb, "0")
			if len(ta) != len(tb) {
				return len(ta) < len(tb)
			}
			if ta != tb {
				return ta < tb
			}
			a, b = ra, rb
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func splitDigits(s string) (string, string) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

// describe lists the plan in words, in the order it is applied: the
// "changes" return value and the check-mode message.
func (p *plan) describe(s *spec) []string {
	var out []string
	for _, c := range p.Clean {
		out = append(out, "remove leftover of an interrupted run: "+c)
	}
	if p.MkdirRoot {
		out = append(out, "create root "+s.Root)
	}
	if p.MkdirReleases {
		out = append(out, "create releases_dir "+s.ReleasesDir)
	}
	switch {
	case p.Stage:
		out = append(out, fmt.Sprintf("stage %s from %s into %s (verify sha256:%s)", s.Binary, s.source(), p.ReleasePath, s.SHA256))
	case p.Repair != "":
		out = append(out, fmt.Sprintf("repair release %s: %s; restage it from %s", p.Release, p.Repair, s.source()))
	}
	for _, a := range p.FixAttrs {
		out = append(out, fmt.Sprintf("set %s on %s", a, filepath.Join(p.ReleasePath, s.Binary)))
	}
	if p.RefreshMeta && !p.writesRelease() && len(p.FixAttrs) == 0 {
		out = append(out, "record the verified state of "+filepath.Join(p.ReleasePath, s.Binary)+" (its file metadata changed since it was staged; content verified)")
	}
	if p.Smoke {
		out = append(out, fmt.Sprintf("run smoke test: %s %s", s.Binary, strings.Join(s.Smoke, " ")))
	}
	if p.Switch {
		from := "(none)"
		if p.PrevLink != "" {
			from = p.PrevLink
		}
		out = append(out, fmt.Sprintf("switch slot %s: %s -> %s", s.SlotPath, from, s.linkTarget()))
	}
	if p.Record {
		out = append(out, fmt.Sprintf("record in the history that slot %s points at %s (an earlier run switched it but could not record it)", s.SlotPath, p.Release))
	}
	for _, r := range p.Prune {
		out = append(out, "prune release "+filepath.Join(s.ReleasesDir, r))
	}
	return out
}
