package main

import (
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/chezlepro/sovereign/internal/systemd"
)

func status(name, active string, enabled bool) systemd.UnitStatus {
	st := systemd.UnitStatus{Name: name, LoadState: "loaded", ActiveState: active, SubState: "dead", UnitFileState: "disabled"}
	if active == "active" {
		st.SubState = "running"
	}
	if enabled {
		st.UnitFileState = "enabled"
	}
	return st
}

// fresh is a host where nothing of the service exists.
func fresh(c *config) *observed {
	obs := &observed{files: map[string]fileObs{}, units: map[string]systemd.UnitStatus{}, binSHA: map[Colour]string{}}
	for _, n := range observedUnits(c, nil) {
		obs.units[n] = systemd.UnitStatus{Name: n, LoadState: "not-found", ActiveState: "inactive", SubState: "dead"}
	}
	return obs
}

// deployed is a host where the module left active serving, with previous
// recorded.
func deployed(c *config, active Colour) *observed {
	obs := fresh(c)
	for _, col := range colours {
		n := serviceUnit(c.name, col)
		obs.files[n] = fileObs{exists: true, content: renderService(c, col)}
		if col == active {
			obs.units[n] = status(n, "active", true)
		} else {
			obs.units[n] = status(n, "inactive", false)
		}
	}
	var units []string
	for n := range obs.files {
		units = append(units, n)
	}
	for _, col := range colours {
		for _, so := range c.sockets {
			n := socketUnit(c.name, col, so.name)
			obs.files[n] = fileObs{exists: true, content: renderSocket(c, so, col)}
			obs.units[n] = status(n, "inactive", false)
			if col == active {
				obs.units[n] = status(n, "active", true)
			}
			units = append(units, n)
		}
	}
	sort.Strings(units)
	obs.state = &State{Version: stateVersion, Name: c.name, Strategy: c.strategy, Active: active, Previous: active.Other(), Units: units,
		Colours: map[Colour]ColourRecord{}}
	return obs
}

func stepStrings(p *plan) []string {
	var out []string
	for _, s := range p.steps {
		out = append(out, s.String())
	}
	return out
}

func mustPlan(t *testing.T, c *config, obs *observed) *plan {
	t.Helper()
	p, err := makePlan(c, obs)
	if err != nil {
		t.Fatalf("makePlan: %v", err)
	}
	return p
}

func wantSteps(t *testing.T, p *plan, want ...string) {
	t.Helper()
	got := stepStrings(p)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("steps:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestPlanFirstDeploySocket(t *testing.T) {
	o := baseOptions()
	o.Active = "blue"
	c := mustConfig(t, o)
	p := mustPlan(t, c, fresh(c))
	if p.action != "deploy" || !p.flip || p.current != "" || p.target != Blue || !p.writeState {
		t.Fatalf("plan %+v", p)
	}
	wantSteps(t, p,
		"write webapp-blue-http.socket: new unit",
		"write webapp-blue.service: new unit",
		"write webapp-green-http.socket: new unit",
		"write webapp-green.service: new unit",
		"daemon-reload: load webapp-blue-http.socket, webapp-blue.service, webapp-green-http.socket, webapp-green.service",
		"start webapp-blue-http.socket: listen for webapp-blue.service",
		"start webapp-blue.service: bring up the new colour",
		"gate webapp-blue.service: health gate before traffic moves",
		"enable webapp-blue-http.socket: the active colour listens at boot",
		"enable webapp-blue.service: the active colour starts at boot",
		"daemon-reload: load enable webapp-blue-http.socket, enable webapp-blue.service",
	)
	// Each colour's socket binds with SO_REUSEPORT and starts its colour.
	for i, col := range []string{"blue", "green"} {
		sock := p.steps[2*i].content
		if !strings.Contains(sock, "ReusePort=yes\n") || !strings.Contains(sock, "Service=webapp-"+col+".service\n") {
			t.Fatal(sock)
		}
	}
	if got := p.steps[6].onFailure; len(got) != 2 || got[0].String() != "stop webapp-blue-http.socket: the new colour failed: its socket stops listening" ||
		got[1].String() != "stop webapp-blue.service: the new colour failed: take it down, traffic stays where it was" {
		t.Fatalf("onFailure %v", got)
	}
}

func TestPlanIdempotent(t *testing.T) {
	for _, strategy := range []string{"socket", "reuseport", "exclusive"} {
		o := baseOptions()
		o.Strategy = strategy
		if strategy != "socket" {
			o.Sockets = nil
		}
		o.Active = "green"
		c := mustConfig(t, o)
		obs := deployed(c, Green)
		obs.migrate = "1"
		obs.sysctlConf = fileObs{exists: true, content: sysctlContent}
		p := mustPlan(t, c, obs)
		if p.changes() || p.writeState || p.flip || p.action != "converge" {
			t.Fatalf("%s: a second run must change nothing: %v writeState=%v", strategy, stepStrings(p), p.writeState)
		}
		// Without active, the recorded colour stays.
		o.Active = ""
		if p := mustPlan(t, mustConfig(t, o), obs); p.changes() || p.target != Green {
			t.Fatalf("%s: %v", strategy, stepStrings(p))
		}
	}
}

func TestPlanFlipSocket(t *testing.T) {
	o := baseOptions()
	o.Active = "green"
	o.StopDelay = 2
	o.ReuseportSteer = true
	c := mustConfig(t, o)
	p := mustPlan(t, c, deployed(c, Blue))
	if p.action != "flip" || !p.flip || p.current != Blue || p.previous != Blue {
		t.Fatalf("%+v", p)
	}
	wantSteps(t, p,
		"hold blue: new connections stay on the old colour's sockets until the new colour passes its gate",
		"start webapp-green-http.socket: listen for webapp-green.service",
		"start webapp-green.service: bring up the new colour",
		"gate webapp-green.service: health gate before traffic moves",
		"move green: new connections go to the new colour; the old one empties its accept queue",
		"enable webapp-green-http.socket: the active colour listens at boot",
		"disable webapp-blue-http.socket: only the active colour listens at boot",
		"enable webapp-green.service: the active colour starts at boot",
		"disable webapp-blue.service: only the active colour starts at boot",
		"daemon-reload: load enable webapp-green-http.socket, disable webapp-blue-http.socket, enable webapp-green.service, disable webapp-blue.service",
		"wait 2s: stop_delay before stopping the old colour",
		"stop webapp-blue-http.socket: the idle colour must not listen",
		"stop webapp-blue.service: drain and stop the old colour",
		"release green: the old colour's sockets are gone: the kernel's hash spreads over the new colour's",
	)
	if !p.steps[4].commit || p.steps[3].commit {
		t.Fatal("the commit mark must be on the first step after the gate")
	}
	// A failed start or gate stops the new colour's socket, then the
	// colour, then releases the hold.
	if got := stepStrings(&plan{steps: p.steps[3].onFailure}); !reflect.DeepEqual(got, []string{
		"stop webapp-green-http.socket: the new colour failed: its socket stops listening",
		"stop webapp-green.service: the new colour failed: take it down, traffic stays where it was",
		"release blue: the kernel spreads new connections by hash again",
	}) {
		t.Fatalf("onFailure %q", got)
	}
	// Without steering, the same without hold, move and release.
	o.ReuseportSteer = false
	unsteered := stepStrings(mustPlan(t, mustConfig(t, o), deployed(c, Blue)))
	if len(unsteered) != len(p.steps)-3 || strings.Contains(strings.Join(unsteered, "\n"), "hold ") {
		t.Fatalf("unsteered: %q", unsteered)
	}
	o.ReuseportSteer = true
	// action: flip and rollback give the same sequence from here.
	o.Active, o.Action = "", "flip"
	if p2 := mustPlan(t, mustConfig(t, o), deployed(c, Blue)); !reflect.DeepEqual(stepStrings(p2), stepStrings(p)) || p2.action != "flip" {
		t.Fatalf("action flip: %v", stepStrings(p2))
	}
	o.Action = "rollback"
	if p3 := mustPlan(t, mustConfig(t, o), deployed(c, Blue)); !reflect.DeepEqual(stepStrings(p3), stepStrings(p)) || p3.action != "rollback" {
		t.Fatalf("action rollback: %v", stepStrings(p3))
	}
}

func TestPlanFlipReuseportSetsMigrate(t *testing.T) {
	o := baseOptions()
	o.Strategy, o.Sockets, o.Action = "reuseport", nil, "flip"
	c := mustConfig(t, o)
	obs := deployed(c, Green)
	obs.migrate = "0"
	p := mustPlan(t, c, obs)
	wantSteps(t, p,
		"sysctl net.ipv4.tcp_migrate_req=1: migrate connections queued on a closing SO_REUSEPORT socket to the other colour",
		"write-sysctl 60-chezlepro-sovereign-reuseport.conf: keep tcp_migrate_req=1 across reboots",
		"start webapp-blue.service: bring up the new colour",
		"gate webapp-blue.service: health gate before traffic moves",
		"enable webapp-blue.service: the active colour starts at boot",
		"disable webapp-green.service: only the active colour starts at boot",
		"daemon-reload: load enable webapp-blue.service, disable webapp-green.service",
		"stop webapp-green.service: drain and stop the old colour",
	)
	obs.migrate = ""
	p = mustPlan(t, c, obs)
	if len(p.warnings) != 1 || !strings.Contains(p.warnings[0], "no net.ipv4.tcp_migrate_req") || strings.Contains(strings.Join(stepStrings(p), "\n"), "sysctl") {
		t.Fatalf("old kernel: %v %v", p.warnings, stepStrings(p))
	}
	o.ReuseportMigrate = false
	obs.migrate = "0"
	if p = mustPlan(t, mustConfig(t, o), obs); strings.Contains(strings.Join(stepStrings(p), "\n"), "sysctl") {
		t.Fatal("reuseport_migrate=false must leave the sysctl alone")
	}
}

func TestPlanFlipExclusive(t *testing.T) {
	o := baseOptions()
	o.Strategy, o.Sockets, o.Active = "exclusive", nil, "green"
	c := mustConfig(t, o)
	p := mustPlan(t, c, deployed(c, Blue))
	wantSteps(t, p,
		"stop webapp-blue.service: strategy exclusive: the old colour must release the port first",
		"start webapp-green.service: bring up the new colour",
		"gate webapp-green.service: health gate before traffic moves",
		"enable webapp-green.service: the active colour starts at boot",
		"disable webapp-blue.service: only the active colour starts at boot",
		"daemon-reload: load enable webapp-green.service, disable webapp-blue.service",
	)
	var undo []string
	for _, s := range p.steps[2].onFailure {
		undo = append(undo, s.String())
	}
	if want := []string{
		"stop webapp-green.service: the new colour failed: take it down, traffic stays where it was",
		"start webapp-blue.service: strategy exclusive: bring the old colour back",
	}; !reflect.DeepEqual(undo, want) {
		t.Fatalf("exclusive undo %q", undo)
	}
}

func TestPlanKeepWarm(t *testing.T) {
	o := baseOptions()
	o.Active, o.KeepWarm = "green", true
	c := mustConfig(t, o)
	p := mustPlan(t, c, deployed(c, Blue))
	for _, s := range stepStrings(p) {
		if strings.HasPrefix(s, "stop ") {
			t.Fatalf("keep_warm must not stop the old colour: %v", stepStrings(p))
		}
	}
	// Flipping back to a warm colour gates it without restarting it...
	// (its socket still listens, not enabled at boot).
	obs := deployed(c, Green)
	obs.units["webapp-blue.service"] = status("webapp-blue.service", "active", false)
	obs.units["webapp-blue-http.socket"] = status("webapp-blue-http.socket", "active", false)
	o.Active = "blue"
	wantSteps(t, mustPlan(t, mustConfig(t, o), obs),
		"start webapp-blue.service: bring up the new colour",
		"gate webapp-blue.service: health gate before traffic moves",
		"enable webapp-blue-http.socket: the active colour listens at boot",
		"disable webapp-green-http.socket: only the active colour listens at boot",
		"enable webapp-blue.service: the active colour starts at boot",
		"disable webapp-green.service: only the active colour starts at boot",
		"daemon-reload: load enable webapp-blue-http.socket, disable webapp-green-http.socket, enable webapp-blue.service, disable webapp-green.service",
	)
	// ...unless its binary changed since it started.
	obs.state.Colours[Blue] = ColourRecord{SHA256: "aaa"}
	obs.binSHA[Blue] = "bbb"
	p = mustPlan(t, mustConfig(t, o), obs)
	if got := stepStrings(p)[0]; got != "stop webapp-blue.service: the warm colour runs an older definition or binary: restart it" {
		t.Fatalf("warm colour with a new binary: %v", stepStrings(p))
	}
	// Without keep_warm, a running idle colour is stopped on a plain re-run.
	o.KeepWarm, o.Active = false, "green"
	obs = deployed(c, Green)
	obs.units["webapp-blue.service"] = status("webapp-blue.service", "active", false)
	wantSteps(t, mustPlan(t, mustConfig(t, o), obs), "stop webapp-blue.service: the idle colour must not serve (keep_warm is false)")
	// ...sockets first when the idle colour's still listen.
	obs.units["webapp-blue-http.socket"] = status("webapp-blue-http.socket", "active", false)
	wantSteps(t, mustPlan(t, mustConfig(t, o), obs),
		"stop webapp-blue-http.socket: the idle colour must not listen",
		"stop webapp-blue.service: the idle colour must not serve (keep_warm is false)")
	// An idle colour whose service is down but whose socket listens: the
	// socket stops.
	obs.units["webapp-blue.service"] = status("webapp-blue.service", "inactive", false)
	wantSteps(t, mustPlan(t, mustConfig(t, o), obs), "stop webapp-blue-http.socket: the idle colour must not listen")
}

func TestPlanStartsActiveWhenDown(t *testing.T) {
	o := baseOptions()
	c := mustConfig(t, o)
	obs := deployed(c, Blue)
	obs.units["webapp-blue.service"] = status("webapp-blue.service", "failed", true)
	p := mustPlan(t, c, obs)
	if p.action != "start" || p.flip {
		t.Fatalf("%+v", p)
	}
	wantSteps(t, p,
		"start webapp-blue.service: the active colour is not running",
		"gate webapp-blue.service: check the active colour",
	)
	// A unit waiting to restart after a crash is not running either.
	st := status("webapp-blue.service", "activating", true)
	st.SubState = "auto-restart"
	obs.units["webapp-blue.service"] = st
	if p := mustPlan(t, c, obs); p.action != "start" {
		t.Fatalf("auto-restart: %v", stepStrings(p))
	}
}

func TestPlanErrors(t *testing.T) {
	o := baseOptions()
	c := mustConfig(t, o)
	if _, err := makePlan(c, fresh(c)); err == nil || !strings.Contains(err.Error(), "give active: blue or green for the first deploy") {
		t.Fatalf("no active on first deploy: %v", err)
	}
	o.Action = "flip"
	if _, err := makePlan(mustConfig(t, o), fresh(c)); err == nil || !strings.Contains(err.Error(), "cannot flip webapp: no colour is active yet") {
		t.Fatalf("flip on first deploy: %v", err)
	}
	o.Action = "rollback"
	obs := deployed(c, Blue)
	obs.state.Previous = ""
	if _, err := makePlan(mustConfig(t, o), obs); err == nil || !strings.Contains(err.Error(), "cannot roll back webapp: no previous colour") {
		t.Fatalf("rollback without previous: %v", err)
	}
	o.Action, o.Strategy, o.Sockets = "", "reuseport", nil
	if _, err := makePlan(mustConfig(t, o), deployed(c, Blue)); err == nil || !strings.Contains(err.Error(), "runs with strategy socket: changing to reuseport") {
		t.Fatalf("strategy change: %v", err)
	}
}

func TestPlanAdoptsWithoutStateFile(t *testing.T) {
	c := mustConfig(t, baseOptions())
	obs := deployed(c, Green)
	obs.state = nil
	p := mustPlan(t, c, obs)
	if p.current != Green || p.target != Green || p.changes() || !p.writeState {
		t.Fatalf("adopt: current %s target %s steps %v writeState %v", p.current, p.target, stepStrings(p), p.writeState)
	}
	// Drift: the state file says blue, systemd has green enabled.
	obs = deployed(c, Green)
	obs.state.Active = Blue
	p = mustPlan(t, c, obs)
	if len(p.warnings) != 1 || !strings.Contains(p.warnings[0], "changed by hand") {
		t.Fatalf("drift warning: %v", p.warnings)
	}
}

func TestPlanChangedUnitsReloadAndWarn(t *testing.T) {
	o := baseOptions()
	c := mustConfig(t, o)
	obs := deployed(c, Blue)
	o.Environment = map[string]any{"NEW": "1"}
	p := mustPlan(t, mustConfig(t, o), obs)
	wantSteps(t, p,
		"write webapp-blue.service: unit changed",
		"write webapp-green.service: unit changed",
		"daemon-reload: load webapp-blue.service, webapp-green.service",
	)
	if len(p.warnings) != 1 || !strings.Contains(p.warnings[0], "webapp-blue.service changed while it runs") {
		t.Fatalf("warnings %v", p.warnings)
	}
	// A unit file edited by hand since the last reload: reload even though
	// the content is what we want.
	obs = deployed(c, Blue)
	st := obs.units["webapp-green.service"]
	st.NeedDaemonReload = true
	obs.units["webapp-green.service"] = st
	wantSteps(t, mustPlan(t, c, obs), "daemon-reload: load changed unit files")
}

func TestPlanRemovesDroppedSocket(t *testing.T) {
	o := baseOptions()
	o.Sockets = append(o.Sockets, Socket{Name: "admin", Listen: []string{"127.0.0.1:8081"}})
	c := mustConfig(t, o)
	obs := deployed(c, Blue)
	o.Sockets = o.Sockets[:1]
	p := mustPlan(t, mustConfig(t, o), obs)
	got := strings.Join(stepStrings(p), "\n")
	for _, want := range []string{
		"stop webapp-blue-admin.socket: no longer managed", "disable webapp-blue-admin.socket: no longer managed",
		"remove webapp-blue-admin.socket: no longer managed", "remove webapp-green-admin.socket: no longer managed", "daemon-reload: load",
	} {
		if !strings.Contains(got, want) {
			t.Fatalf("missing %q in\n%s", want, got)
		}
	}
}

func TestPlanAbsentAndQuery(t *testing.T) {
	c := mustConfig(t, baseOptions())
	obs := deployed(c, Blue)
	ca, _ := newConfig(&Options{Name: "webapp", State: "absent", Strategy: "socket", HistorySize: 20, LockTimeout: 60})
	wantSteps(t, mustPlan(t, ca, obs),
		"stop webapp-blue-http.socket: no longer managed",
		"disable webapp-blue-http.socket: no longer managed",
		"remove webapp-blue-http.socket: no longer managed",
		"remove webapp-green-http.socket: no longer managed",
		"stop webapp-blue.service: no longer managed",
		"disable webapp-blue.service: no longer managed",
		"remove webapp-blue.service: no longer managed",
		"remove webapp-green.service: no longer managed",
		"daemon-reload: forget the removed units",
		"remove-state: the service is removed",
	)
	if p := mustPlan(t, ca, fresh(c)); p.changes() {
		t.Fatalf("absent twice: %v", stepStrings(p))
	}
	cq, _ := newConfig(&Options{Name: "webapp", State: "query", Strategy: "socket", HistorySize: 20, LockTimeout: 60})
	p := mustPlan(t, cq, obs)
	if p.changes() || p.writeState || p.current != Blue || p.previous != Green {
		t.Fatalf("query %+v", p)
	}
}

func TestNextStateBoundsHistory(t *testing.T) {
	c := mustConfig(t, baseOptions())
	var st *State
	cur := Colour("")
	for i := 0; i < 30; i++ {
		target := Blue
		if cur == Blue {
			target = Green
		}
		p := &plan{current: cur, target: target, action: "flip", flip: true, managedUnits: []string{"a"}}
		st = nextState(st, c, p, outcome{ok: true, targetRun: true, targetSHA: "sha" + string(target), activeNow: target, previousTo: cur}, 5)
		cur = target
	}
	if len(st.History) != 5 || st.Active != cur || st.Previous != cur.Other() || st.Colours[cur].SHA256 != "sha"+string(cur) {
		t.Fatalf("state %+v", st)
	}
	p := &plan{current: cur, target: cur.Other(), action: "flip", flip: true}
	st = nextState(st, c, p, outcome{ok: false, reason: "gate failed", targetRun: true, activeNow: cur}, 5)
	last := st.History[len(st.History)-1]
	if st.Active != cur || last.Outcome != "failed" || last.Reason != "gate failed" || last.From != cur || last.To != cur.Other() {
		t.Fatalf("failed flip recorded as %+v, active %s", last, st.Active)
	}
}
