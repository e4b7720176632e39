package main

import (
	"slices"
	"strings"
	"testing"
)

func planSpec() *spec {
	o := goodOptions()
	s, err := resolveOptions(&o)
	if err != nil {
		panic(err)
	}
	return s
}

// intact is an observed, verified target release with the default attributes.
func intact() *targetInfo {
	return &targetInfo{Intact: true, SigFresh: true, UID: 0, GID: 0, Mode: 0o755, Meta: &releaseMeta{}}
}

func TestPlanFreshRoot(t *testing.T) {
	s := planSpec()
	p := makePlan(s, &observed{Slot: slotInfo{Name: "green"}})
	if !p.MkdirRoot || !p.MkdirReleases || !p.Stage || !p.Switch || p.PrevLink != "" || len(p.Prune) != 0 {
		t.Fatalf("fresh plan = %+v", p)
	}
	d := p.describe(s)
	if len(d) != 4 || !strings.HasPrefix(d[2], "stage traefik from /var/tmp/traefik") ||
		d[3] != "switch slot /opt/traefik/green: (none) -> releases/3.1.2-abababababab" {
		t.Fatalf("describe = %q", d)
	}
}

func TestPlanNoop(t *testing.T) {
	s := planSpec()
	rel := s.release()
	o := &observed{
		RootExists: true, ReleasesExists: true,
		Slot:     slotInfo{Name: "green", Exists: true, Link: "releases/" + rel, Release: rel},
		Releases: []string{rel}, Target: intact(),
		History: []historyEntry{{Slot: "green", Release: rel}},
	}
	o.Slots = []slotInfo{o.Slot}
	p := makePlan(s, o)
	if p.changed() {
		t.Fatalf("no-op plan changes things: %+v (%q)", p, p.describe(s))
	}
	if p.Smoke {
		t.Fatal("smoke planned on a no-op")
	}
}

func TestPlanSwitchToExistingRelease(t *testing.T) {
	s := planSpec()
	s.Smoke = []string{"version"}
	rel := s.release()
	o := &observed{
		RootExists: true, ReleasesExists: true,
		Slot:     slotInfo{Name: "green", Exists: true, Link: "releases/1.0-000000000000", Release: "1.0-000000000000"},
		Releases: []string{"1.0-000000000000", rel}, Target: intact(),
	}
	p := makePlan(s, o)
	if p.Stage || p.Repair != "" || !p.Switch || !p.Smoke || p.PrevRelease != "1.0-000000000000" {
		t.Fatalf("plan = %+v", p)
	}
}

func TestPlanRepairAndAttributes(t *testing.T) {
	s := planSpec()
	rel := s.release()
	base := observed{RootExists: true, ReleasesExists: true,
		Slot:     slotInfo{Name: "green", Exists: true, Link: "releases/" + rel, Release: rel},
		Releases: []string{rel}, History: []historyEntry{{Slot: "green", Release: rel}}}

	damaged := base
	damaged.Target = &targetInfo{Damage: "binary has sha256:00 (3 bytes)"}
	p := makePlan(s, &damaged)
	if p.Repair == "" || p.Stage || p.Switch || !p.RefreshMeta || !p.changed() {
		t.Fatalf("damaged: %+v", p)
	}

	s.UID, s.GID = 1000, 1000
	s.Mode = 0o750
	s.Caps, _ = parseCaps([]string{"cap_net_bind_service"})
	attrs := base
	attrs.Target = intact()
	p = makePlan(s, &attrs)
	want := []string{"owner 0 -> 1000", "group 0 -> 1000", "mode 0755 -> 0750", "capabilities none -> cap_net_bind_service=ep"}
	if !slices.Equal(p.FixAttrs, want) || !p.RefreshMeta || p.Switch {
		t.Fatalf("attrs: FixAttrs = %q, plan %+v", p.FixAttrs, p)
	}

	// A touched binary whose content still matches: only the record is refreshed.
	s = planSpec()
	stale := base
	stale.Target = intact()
	stale.Target.SigFresh, stale.Target.Hashed = false, true
	p = makePlan(s, &stale)
	if !p.RefreshMeta || len(p.FixAttrs) != 0 || p.Repair != "" {
		t.Fatalf("stale signature: %+v", p)
	}
	if d := p.describe(s); len(d) != 1 || !strings.Contains(d[0], "content verified") {
		t.Fatalf("stale signature describe = %q", d)
	}
}

func TestPlanCleansLeftovers(t *testing.T) {
	s := planSpec()
	rel := s.release()
	o := &observed{RootExists: true, ReleasesExists: true,
		Slot:     slotInfo{Name: "green", Exists: true, Link: "releases/" + rel, Release: rel},
		Releases: []string{rel}, Target: intact(),
		Leftovers: []string{"/opt/traefik/releases/.x.tmp-1-1-1"}}
	p := makePlan(s, o)
	if !p.changed() || len(p.Clean) != 1 || p.Switch {
		t.Fatalf("plan = %+v", p)
	}
}

func TestSelectPrune(t *testing.T) {
	h := func(rels ...string) []historyEntry {
		var out []historyEntry
		for _, r := range rels {
			out = append(out, historyEntry{Release: r})
		}
		return out
	}
	tests := []struct {
		name      string
		releases  []string
		protected []string
		hist      []historyEntry
		newest    string
		keep      int
		want      []string
	}{
		{"under the limit", []string{"a", "b"}, nil, h("a", "b"), "b", 5, nil},
		{"oldest by history, not by name", []string{"a", "b", "c", "d"}, []string{"d"}, h("d", "c", "b", "a"), "d", 2, []string{"c", "b"}},
		{"slot targets never pruned", []string{"a", "b", "c", "d"}, []string{"a", "d"}, h("a", "b", "c", "d"), "d", 1, []string{"b", "c"}},
		{"a reinstall makes a release recent", []string{"a", "b", "c"}, []string{"a"}, h("a", "b", "c", "a"), "a", 2, []string{"b"}},
		{"unknown to history are the oldest, by version", []string{"1.10-x", "1.9-x", "2.0-x", "1.2-x"}, []string{"2.0-x"}, h("2.0-x"), "2.0-x", 2, []string{"1.2-x", "1.9-x"}},
		{"keep 0 keeps only slot targets", []string{"a", "b", "c"}, []string{"c"}, h("a", "b", "c"), "c", 0, []string{"a", "b"}},
	}
	for _, tc := range tests {
		prot := map[string]bool{}
		for _, p := range tc.protected {
			prot[p] = true
		}
		got := selectPrune(tc.releases, prot, tc.hist, tc.newest, tc.keep)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: selectPrune = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// The plan protects what every other slot points at, and the release this
// run installs, whatever the history says.
func TestPlanPruneProtectsOtherSlots(t *testing.T) {
	s := planSpec()
	s.Keep = 1
	rel := s.release()
	o := &observed{RootExists: true, ReleasesExists: true,
		Slot: slotInfo{Name: "green", Exists: true, Link: "releases/2.0-bbbbbbbbbbbb", Release: "2.0-bbbbbbbbbbbb"},
		Slots: []slotInfo{
			{Name: "blue", Exists: true, Release: "1.0-aaaaaaaaaaaa"},
			{Name: "green", Exists: true, Release: "2.0-bbbbbbbbbbbb"},
		},
		Releases: []string{"0.9-999999999999", "1.0-aaaaaaaaaaaa", "2.0-bbbbbbbbbbbb"},
		History:  []historyEntry{{Release: "0.9-999999999999"}, {Release: "1.0-aaaaaaaaaaaa"}, {Release: "2.0-bbbbbbbbbbbb"}},
	}
	p := makePlan(s, o)
	if want := []string{"0.9-999999999999", "2.0-bbbbbbbbbbbb"}; !slices.Equal(p.Prune, want) {
		t.Fatalf("prune = %q, want %q (blue's 1.0 and the new %s kept)", p.Prune, want, rel)
	}
}

func TestNaturalLess(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"1.9", "1.10", true}, {"1.10", "1.9", false}, {"v2", "v10", true}, {"a", "b", true},
		{"1.0", "1.0.1", true}, {"01", "1", false}, {"1", "1", false},
	} {
		if got := naturalLess(tc.a, tc.b); got != tc.want {
			t.Errorf("naturalLess(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}
