package main

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/chezlepro/sovereign/internal/systemd"
)

// fileObs is a file as observed: absent, or its content.
type fileObs struct {
	path    string
	exists  bool
	content string
}

// refuseForeign fails when one of files exists without the module's marker:
// a unit written by hand, or by a package, is never overwritten, stopped or
// removed (D16).
func refuseForeign(files ...fileObs) error {
	var foreign []string
	for _, f := range files {
		if f.exists && !ours(f.content) {
			foreign = append(foreign, f.path)
		}
	}
	if len(foreign) == 0 {
		return nil
	}
	return fmt.Errorf("%s was not written by this module (its first line is not %q): refusing to overwrite, stop or remove it; "+
		"move it away, or give the service another name", strings.Join(foreign, " and "), marker)
}

// observed is everything the plan depends on, read from the target before
// anything is changed. Check mode and a real run compute the same plan from
// it.
type observed struct {
	files map[string]fileObs // unit file name -> content
	units map[string]systemd.UnitStatus
	state *State
	// binSHA is the sha256 of each colour's command[0] now ("" unknown).
	binSHA map[Colour]string
	// migrate is /proc/sys/net/ipv4/tcp_migrate_req ("" when the kernel has
	// none); sysctlConf is the module's sysctl.d file. Read for reuseport.
	migrate    string
	sysctlConf fileObs
	// migrateUnwritable is why migrate cannot be written (nil: it can, or
	// it need not be): read-only /proc/sys, as in a container.
	migrateUnwritable error
}

type stepKind string

const (
	stepWriteUnit   stepKind = "write"
	stepRemoveUnit  stepKind = "remove"
	stepReload      stepKind = "daemon-reload"
	stepEnable      stepKind = "enable"
	stepDisable     stepKind = "disable"
	stepStart       stepKind = "start"
	stepStop        stepKind = "stop"
	stepGate        stepKind = "gate"
	stepWait        stepKind = "wait"
	stepSysctl      stepKind = "sysctl"
	stepSysctlConf  stepKind = "write-sysctl"
	stepRemoveState stepKind = "remove-state"
	// Steering of the port's SO_REUSEPORT group (strategy reuseport): hold
	// new connections on the old colour's sockets, move them to the new
	// colour's, release (the kernel's hash again). See internal/reuseport.
	stepHold    stepKind = "hold"
	stepMove    stepKind = "move"
	stepRelease stepKind = "release"
)

// step is one action of a plan. onFailure runs, in order, when this step
// fails: it is how a failed start or gate stops the new colour and leaves
// the old one as it was.
type step struct {
	kind      stepKind
	unit      string // unit name, or unit file name for write/remove
	colour    Colour // start/gate: which colour's config
	content   string // write: new content
	before    fileObs
	delay     time.Duration
	reason    string
	onFailure []step
	// commit marks the first step after the gate: from here traffic moves.
	commit bool
}

func (s step) String() string {
	subject := s.unit
	switch s.kind {
	case stepWait:
		subject = s.delay.String()
	case stepSysctl:
		subject = "net.ipv4.tcp_migrate_req=1"
	case stepHold, stepMove, stepRelease:
		subject = string(s.colour)
	}
	if subject == "" {
		return fmt.Sprintf("%s: %s", s.kind, s.reason)
	}
	return fmt.Sprintf("%s %s: %s", s.kind, subject, s.reason)
}

// mutates is false for steps that only observe or wait.
func (s step) mutates() bool { return s.kind != stepGate && s.kind != stepWait }

// plan is the ordered list of steps that takes the target from what was
// observed to what the options ask for.
type plan struct {
	current  Colour // active colour before the run ("" when none)
	target   Colour // active colour asked for ("" for query/absent)
	previous Colour // previous colour after a successful run
	// action: deploy (first active colour), flip, rollback, start (the
	// active colour was not running), converge (nothing about the active
	// colour changes), query, remove.
	action       string
	flip         bool
	steps        []step
	warnings     []string
	managedUnits []string
	writeState   bool
	// oldRunning: the colour active before the run was up when observed.
	oldRunning bool
}

func (p *plan) changes() bool {
	for _, s := range p.steps {
		if s.mutates() {
			return true
		}
	}
	return false
}

// records is true when the run belongs in the history.
func (p *plan) records() bool {
	switch p.action {
	case "deploy", "flip", "rollback", "start":
		return true
	}
	return false
}

// running is true while a unit is up, and not while systemd only waits to
// restart it after a crash.
func running(st systemd.UnitStatus) bool {
	return st.Running() && st.SubState != "auto-restart"
}

func enabledColours(obs *observed, name string) (enabled, up []Colour) {
	for _, c := range colours {
		st := obs.units[serviceUnit(name, c)]
		if st.Enabled() {
			enabled = append(enabled, c)
		}
		if running(st) {
			up = append(up, c)
		}
	}
	return enabled, up
}

// currentActive is the state file's active colour, or, without a state
// file, the one colour systemd has enabled (or, none enabled, the one
// running).
func currentActive(c *config, obs *observed) (Colour, []string) {
	enabled, up := enabledColours(obs, c.name)
	if pd := pending(obs); pd != nil && len(enabled) == 1 {
		// The last run was killed mid-change: systemd says how far it got.
		return enabled[0], []string{fmt.Sprintf("the %s of %s from %s to %s started at %s was interrupted before it recorded its outcome; "+
			"systemd has %s enabled, so %s is active; the attempt is recorded in the history",
			pd.Action, c.name, orNone(pd.From), pd.To, pd.Time, serviceUnit(c.name, enabled[0]), enabled[0])}
	}
	if obs.state != nil && obs.state.Active != "" {
		a := obs.state.Active
		var warn []string
		if len(enabled) == 1 && enabled[0] != a {
			warn = append(warn, fmt.Sprintf("state file says %s is active but systemd has %s enabled: it was changed by hand; converging to the options", a, serviceUnit(c.name, enabled[0])))
		}
		return a, warn
	}
	if len(enabled) == 1 {
		return enabled[0], nil
	}
	if len(enabled) == 0 && len(up) == 1 {
		return up[0], nil
	}
	return "", nil
}

// pending is the change an interrupted run left in the state file, or nil.
func pending(obs *observed) *Pending {
	if obs.state == nil {
		return nil
	}
	return obs.state.Pending
}

// recordedPrevious is the previous colour as recorded, or, when an
// interrupted run got as far as making its target active, the colour it
// left.
func recordedPrevious(obs *observed, cur Colour) Colour {
	if obs.state == nil {
		return ""
	}
	if pd := obs.state.Pending; pd != nil && cur == pd.To && cur != obs.state.Active {
		return pd.From
	}
	return obs.state.Previous
}

// makePlan is pure: config and observation in, plan out.
func makePlan(c *config, obs *observed) (*plan, error) {
	switch c.state {
	case "query":
		cur, warn := currentActive(c, obs)
		p := &plan{current: cur, target: cur, action: "query", warnings: warn}
		p.previous = recordedPrevious(obs, cur)
		return p, nil
	case "absent":
		return planAbsent(c, obs)
	}
	return planPresent(c, obs)
}

// planPresent plans state=present in phases: which colour ends up active
// (the deploy, flip, rollback, start or converge), the kernel setting, the
// unit files, bringing the target up behind its gate, and the commit.
func planPresent(c *config, obs *observed) (*plan, error) {
	p, err := planTarget(c, obs)
	if err != nil {
		return nil, err
	}
	// The kernel setting first: if it cannot be made, nothing else is done.
	migrate, warn, err := migrateSteps(c, obs)
	if err != nil {
		return nil, err
	}
	p.steps, p.warnings = append(p.steps, migrate...), append(p.warnings, warn...)

	desired := desiredUnits(c)
	p.managedUnits = slices.Sorted(maps.Keys(desired))
	if err := refuseForeign(ownedFiles(c, obs, p.managedUnits)...); err != nil {
		return nil, err
	}
	files, warn := unitFileSteps(c, obs, p, desired)
	p.steps, p.warnings = append(p.steps, files...), append(p.warnings, warn...)

	steer := steers(c, obs, p)
	p.steps = append(p.steps, bringUpSteps(c, obs, p, desired, steer)...)
	p.steps = append(p.steps, commitSteps(c, obs, p, steer)...)

	p.writeState = p.records() || obs.state == nil || obs.state.Strategy != c.strategy ||
		obs.state.Active != p.target || !slices.Equal(obs.state.Units, p.managedUnits) ||
		!bytes.Equal(obs.state.Definition, c.definition) || obs.state.Pending != nil
	return p, nil
}

// planTarget decides which colour ends up active and what the run is: a
// deploy (none active yet), a flip, a rollback, a start (the active colour
// is down) or a converge (the active colour stays, and runs). It refuses a
// change of strategy while a colour runs, a flip with no colour active and
// a rollback with no previous colour.
func planTarget(c *config, obs *observed) (*plan, error) {
	cur, warn := currentActive(c, obs)
	p := &plan{current: cur, warnings: warn}
	if obs.state != nil {
		p.previous = recordedPrevious(obs, cur)
		if obs.state.Strategy != "" && obs.state.Strategy != c.strategy {
			_, up := enabledColours(obs, c.name)
			if len(up) > 0 {
				return nil, fmt.Errorf("%s runs with strategy %s: changing to %s cannot be done without dropping connections; remove it first (state=absent) or keep strategy %s",
					c.name, obs.state.Strategy, c.strategy, obs.state.Strategy)
			}
		}
	}
	switch {
	case c.action == "flip":
		if cur == "" {
			return nil, fmt.Errorf("cannot flip %s: no colour is active yet; deploy one first with active: blue or green", c.name)
		}
		p.target, p.action = cur.Other(), "flip"
	case c.action == "rollback":
		prev := recordedPrevious(obs, cur)
		if prev == "" || prev == cur {
			return nil, fmt.Errorf("cannot roll back %s: no previous colour is recorded (the history has no successful flip)", c.name)
		}
		p.target, p.action = prev, "rollback"
	case c.active != "":
		p.target = c.active
	default:
		if cur == "" {
			return nil, fmt.Errorf("%s has no active colour yet: give active: blue or green for the first deploy", c.name)
		}
		p.target = cur
	}
	p.flip = p.target != cur
	if p.action == "" {
		switch {
		case cur == "":
			p.action = "deploy"
		case p.flip:
			p.action = "flip"
		case running(obs.units[serviceUnit(c.name, p.target)]):
			p.action = "converge"
		default:
			p.action = "start"
		}
	}
	if p.flip {
		p.previous = cur
	}
	if cur != "" {
		p.oldRunning = running(obs.units[serviceUnit(c.name, cur)])
	}
	return p, nil
}

// migrateSteps set net.ipv4.tcp_migrate_req for strategy reuseport, now
// and across reboots, or refuse when /proc/sys is read-only.
func migrateSteps(c *config, obs *observed) ([]step, []string, error) {
	if c.strategy != "reuseport" || !c.migrate {
		return nil, nil, nil
	}
	var steps []step
	var warnings []string
	switch obs.migrate {
	case "":
		warnings = append(warnings, "this kernel has no net.ipv4.tcp_migrate_req (Linux 5.14+): connections still queued on the old colour's socket are reset when it stops; strategy socket avoids that")
	case "1":
	default:
		if obs.migrateUnwritable != nil {
			return nil, nil, migrateError(obs.migrateUnwritable)
		}
		steps = append(steps, step{kind: stepSysctl, reason: "migrate connections queued on a closing SO_REUSEPORT socket to the other colour"})
	}
	if obs.migrate != "" && (!obs.sysctlConf.exists || obs.sysctlConf.content != sysctlContent) {
		steps = append(steps, step{kind: stepSysctlConf, unit: sysctlConfName, content: sysctlContent, before: obs.sysctlConf, reason: "keep tcp_migrate_req=1 across reboots"})
	}
	return steps, warnings, nil
}

// desiredUnits are the unit files the definition renders, by name.
func desiredUnits(c *config) map[string]string {
	desired := map[string]string{}
	for _, col := range colours {
		desired[serviceUnit(c.name, col)] = renderService(c, col)
		for _, so := range c.sockets {
			desired[socketUnit(c.name, col, so.name)] = renderSocket(c, so, col)
		}
	}
	return desired
}

// ownedFiles are the files the plan may overwrite or remove: the units it
// renders, those it managed before, and the sysctl.d file.
func ownedFiles(c *config, obs *observed, names []string) []fileObs {
	mine := []fileObs{}
	for _, n := range names {
		mine = append(mine, obs.files[n])
	}
	if obs.state != nil {
		for _, n := range obs.state.Units {
			mine = append(mine, obs.files[n])
		}
	}
	if c.strategy == "reuseport" && c.migrate {
		mine = append(mine, obs.sysctlConf)
	}
	return mine
}

// unitFileSteps write the unit files that differ, remove those the module
// no longer wants (a removed socket), and reload systemd when it must.
func unitFileSteps(c *config, obs *observed, p *plan, desired map[string]string) ([]step, []string) {
	var steps []step
	var warnings, written []string
	tu := serviceUnit(c.name, p.target)
	for _, n := range p.managedUnits {
		f := obs.files[n]
		if f.exists && f.content == desired[n] {
			continue
		}
		reason := "new unit"
		if f.exists {
			reason = "unit changed"
		}
		steps = append(steps, step{kind: stepWriteUnit, unit: n, content: desired[n], before: f, reason: reason})
		written = append(written, n)
		if f.exists && running(obs.units[n]) {
			switch {
			case strings.HasSuffix(n, ".socket"):
				warnings = append(warnings, fmt.Sprintf("%s changed while it listens: its new listen settings apply when the socket unit restarts", n))
			case n == tu && !p.flip:
				warnings = append(warnings, fmt.Sprintf("%s changed while it runs: the running process keeps the previous definition until the colour is started again (flip to the other colour and back)", n))
			}
		}
	}
	if obs.state != nil {
		for _, n := range obs.state.Units {
			if _, keep := desired[n]; keep || !obs.files[n].exists {
				continue
			}
			steps = append(steps, removeUnitSteps(n, obs)...)
			written = append(written, n)
		}
	}
	needReload := len(written) > 0 || slices.ContainsFunc(p.managedUnits, func(n string) bool { return obs.units[n].NeedDaemonReload })
	if needReload {
		reason := "load changed unit files"
		if len(written) > 0 {
			reason = "load " + strings.Join(written, ", ")
		}
		steps = append(steps, step{kind: stepReload, reason: reason})
	}
	return steps, warnings
}

// steers is whether a flip steers the port's SO_REUSEPORT group: when the
// group holds only the old colour's sockets, the new colour's join at
// known positions (with keep_warm both colours may listen already).
func steers(c *config, obs *observed, p *plan) bool {
	tst, ost := obs.units[serviceUnit(c.name, p.target)], obs.units[serviceUnit(c.name, p.target.Other())]
	return (c.strategy == "reuseport" || c.strategy == "socket") && c.steer && p.flip && running(ost) && !running(tst) && !c.keepWarm
}

// bringUpSteps start the target colour and gate it, each with the undo
// that leaves traffic where it was should it fail: nothing for a converge,
// the active colour for a start, the new colour for a deploy, flip or
// rollback.
func bringUpSteps(c *config, obs *observed, p *plan, desired map[string]string, steer bool) []step {
	target, other := p.target, p.target.Other()
	tu, ou := serviceUnit(c.name, target), serviceUnit(c.name, other)
	tst, ost := obs.units[tu], obs.units[ou]

	// The target colour's sockets listen before its service starts (the
	// service gets them); when the target already serves, they only need
	// to be up.
	var startSockets, stopTargetSockets []step
	for _, n := range socketUnits(c, target) {
		if !running(obs.units[n]) {
			startSockets = append(startSockets, step{kind: stepStart, unit: n, reason: "listen for " + tu})
			stopTargetSockets = append(stopTargetSockets, step{kind: stepStop, unit: n, reason: "the new colour failed: its socket stops listening"})
		}
	}
	var steps, undo []step
	switch {
	case !p.flip && running(tst):
		// The active colour already serves: nothing to start.
		return startSockets
	case !p.flip:
		undo = append(append([]step{}, stopTargetSockets...), step{kind: stepStop, unit: tu, reason: "the active colour failed to start"})
		steps = append(steps, startSockets...)
		return append(steps,
			step{kind: stepStart, unit: tu, colour: target, reason: "the active colour is not running", onFailure: undo},
			step{kind: stepGate, unit: tu, colour: target, reason: "check the active colour", onFailure: undo})
	}
	undo = []step{{kind: stepStop, unit: tu, reason: "the new colour failed: take it down, traffic stays where it was"}}
	if c.strategy == "exclusive" && running(ost) {
		steps = append(steps, step{kind: stepStop, unit: ou, reason: "strategy exclusive: the old colour must release the port first"})
		undo = append(undo, step{kind: stepStart, unit: ou, reason: "strategy exclusive: bring the old colour back"})
	}
	if running(tst) && warmIsStale(c, obs, target, desired[tu]) {
		steps = append(steps, step{kind: stepStop, unit: tu, reason: "the warm colour runs an older definition or binary: restart it"})
	}
	// Its sockets stop first: with the service still holding them they
	// keep listening, but systemd cannot start the service again for a
	// connection that arrives once the service is down.
	undo = append(append([]step{}, stopTargetSockets...), undo...)
	if steer {
		steps = append(steps, step{kind: stepHold, colour: p.current, reason: "new connections stay on the old colour's sockets until the new colour passes its gate"})
		undo = append(undo, step{kind: stepRelease, colour: p.current, reason: "the kernel spreads new connections by hash again"})
	}
	steps = append(steps, startSockets...)
	return append(steps,
		step{kind: stepStart, unit: tu, colour: target, reason: "bring up the new colour", onFailure: undo},
		step{kind: stepGate, unit: tu, colour: target, reason: "health gate before traffic moves", onFailure: undo})
}

// warmIsStale is true when the target colour, kept warm, runs another
// unit file or another binary than the one it is flipped to.
func warmIsStale(c *config, obs *observed, target Colour, desiredUnit string) bool {
	changed := desiredUnit != obs.files[serviceUnit(c.name, target)].content
	rec := ""
	if obs.state != nil {
		rec = obs.state.Colours[target].SHA256
	}
	binChanged := rec != "" && obs.binSHA[target] != "" && rec != obs.binSHA[target]
	return changed || binChanged
}

// commitSteps follow a passed gate: new connections move to the target
// (steered), it and its sockets are enabled at boot instead of the other
// colour's, and the other colour stops unless kept warm.
func commitSteps(c *config, obs *observed, p *plan, steer bool) []step {
	target, other := p.target, p.target.Other()
	tu, ou := serviceUnit(c.name, target), serviceUnit(c.name, other)
	tst, ost := obs.units[tu], obs.units[ou]
	var commit []step
	if steer {
		commit = append(commit, step{kind: stepMove, colour: target, reason: "new connections go to the new colour; the old one empties its accept queue"})
	}
	var reloadFor []string
	for _, n := range socketUnits(c, target) {
		if !obs.units[n].Enabled() {
			commit = append(commit, step{kind: stepEnable, unit: n, reason: "the active colour listens at boot"})
			reloadFor = append(reloadFor, "enable "+n)
		}
	}
	for _, n := range socketUnits(c, other) {
		if obs.units[n].Enabled() {
			commit = append(commit, step{kind: stepDisable, unit: n, reason: "only the active colour listens at boot"})
			reloadFor = append(reloadFor, "disable "+n)
		}
	}
	if !tst.Enabled() {
		commit = append(commit, step{kind: stepEnable, unit: tu, reason: "the active colour starts at boot"})
		reloadFor = append(reloadFor, "enable "+tu)
	}
	if ost.Enabled() {
		commit = append(commit, step{kind: stepDisable, unit: ou, reason: "only the active colour starts at boot"})
		reloadFor = append(reloadFor, "disable "+ou)
	}
	if len(reloadFor) > 0 {
		commit = append(commit, step{kind: stepReload, reason: "load " + strings.Join(reloadFor, ", ")})
	}
	stopOld := running(ost) && !c.keepWarm && !(p.flip && c.strategy == "exclusive")
	if stopOld {
		if p.flip && c.stopDelay > 0 {
			commit = append(commit, step{kind: stepWait, delay: c.stopDelay, reason: "stop_delay before stopping the old colour"})
		}
		reason := "the idle colour must not serve (keep_warm is false)"
		if p.flip {
			reason = "drain and stop the old colour"
		}
		// Sockets first, as when a new colour fails: systemd must not
		// start the old colour again for a late connection.
		commit = append(commit, stopOtherSockets(c, obs, other)...)
		commit = append(commit, step{kind: stepStop, unit: ou, reason: reason})
		if steer {
			commit = append(commit, step{kind: stepRelease, colour: target, reason: "the old colour's sockets are gone: the kernel's hash spreads over the new colour's"})
		}
	}
	if !running(ost) && !c.keepWarm {
		commit = append(commit, stopOtherSockets(c, obs, other)...)
	}
	if len(commit) > 0 {
		commit[0].commit = true
	}
	return commit
}

// stopOtherSockets stops the idle colour's sockets that listen.
func stopOtherSockets(c *config, obs *observed, other Colour) []step {
	var out []step
	for _, n := range socketUnits(c, other) {
		if running(obs.units[n]) {
			out = append(out, step{kind: stepStop, unit: n, reason: "the idle colour must not listen"})
		}
	}
	return out
}

func removeUnitSteps(n string, obs *observed) []step {
	var out []step
	st := obs.units[n]
	if running(st) || st.ActiveState == "activating" {
		out = append(out, step{kind: stepStop, unit: n, reason: "no longer managed"})
	}
	if st.Enabled() {
		out = append(out, step{kind: stepDisable, unit: n, reason: "no longer managed"})
	}
	out = append(out, step{kind: stepRemoveUnit, unit: n, before: obs.files[n], reason: "no longer managed"})
	return out
}

func planAbsent(c *config, obs *observed) (*plan, error) {
	cur, _ := currentActive(c, obs)
	p := &plan{current: cur, action: "remove"}
	names := absentUnits(c, obs)
	files := make([]fileObs, len(names))
	for i, n := range names {
		files[i] = obs.files[n]
	}
	if err := refuseForeign(files...); err != nil {
		return nil, err
	}
	recorded := map[string]bool{}
	if obs.state != nil {
		for _, n := range obs.state.Units {
			recorded[n] = true
		}
	}
	for _, n := range names {
		// A unit that runs without a file here was the module's only if
		// the state file lists it (one from a package is left alone).
		if obs.files[n].exists || running(obs.units[n]) && recorded[n] {
			p.steps = append(p.steps, removeUnitSteps(n, obs)...)
		}
	}
	if len(p.steps) > 0 {
		p.steps = append(p.steps, step{kind: stepReload, reason: "forget the removed units"})
	}
	if obs.state != nil {
		p.steps = append(p.steps, step{kind: stepRemoveState, reason: "the service is removed"})
	}
	return p, nil
}

// absentUnits lists what state=absent removes: both colours, then the
// sockets (services first, so nothing is re-activated).
func absentUnits(c *config, obs *observed) []string {
	// Sockets first: a service stopped while its socket still listens
	// would be started again by the next connection.
	var sockets, names []string
	seen := map[string]bool{}
	add := func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		if strings.HasSuffix(n, ".socket") {
			sockets = append(sockets, n)
		} else {
			names = append(names, n)
		}
	}
	add(serviceUnit(c.name, Blue))
	add(serviceUnit(c.name, Green))
	var extra []string
	if obs.state != nil {
		extra = append(extra, obs.state.Units...)
	}
	for _, col := range colours {
		extra = append(extra, socketUnits(c, col)...)
	}
	sort.Strings(extra)
	for _, n := range extra {
		add(n)
	}
	return append(sockets, names...)
}

const (
	sysctlConfName = "60-chezlepro-sovereign-reuseport.conf"
	sysctlContent  = "# Managed by chezlepro.sovereign.bluegreen_unit (strategy reuseport): when one\n" +
		"# colour closes its SO_REUSEPORT listener, hand its queued connections to the other.\n" +
		"net.ipv4.tcp_migrate_req = 1\n"
)
