package systemd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Fake is an in-memory Manager for unit tests. It records every call, loads
// unit files from UnitDir on Reload like systemd does (so a unit whose file
// changed since the last reload reports NeedDaemonReload), and can be told
// that a unit fails to start, dies right after starting, or that a call
// errors.
type Fake struct {
	mu sync.Mutex
	// UnitDir is where unit files are read from on Reload.
	UnitDir string
	// Calls records each call as "op arg...", in order.
	Calls []string
	// StartResult makes the start job of a unit end with this result
	// ("failed", "timeout", ...) and leaves the unit failed.
	StartResult map[string]string
	// DiesAfterStart makes a unit's start job succeed and the unit fail
	// right after (a crash on start of a Type=simple service).
	DiesAfterStart map[string]bool
	// Err makes the call "op unit" (or "reload") return this error.
	Err map[string]error
	// JournalLines is what Journal returns per unit.
	JournalLines map[string][]string
	// OnCall, when set, sees each call as recorded, before it acts: a test
	// looks at the machine at that instant (what a kill there would leave).
	OnCall func(call string)

	units   map[string]*UnitStatus
	loaded  map[string]string // unit -> file content at the last reload
	lastPID uint32            // each started service gets a PID of its own
}

var _ Manager = (*Fake)(nil)

// NewFake returns a Fake reading unit files from dir, as after a reload.
func NewFake(dir string) *Fake {
	f := &Fake{
		UnitDir:        dir,
		StartResult:    map[string]string{},
		DiesAfterStart: map[string]bool{},
		Err:            map[string]error{},
		JournalLines:   map[string][]string{},
		units:          map[string]*UnitStatus{},
		loaded:         map[string]string{},
	}
	f.reload()
	return f
}

func (f *Fake) record(op string, args ...string) error {
	call := strings.TrimSpace(op + " " + strings.Join(args, " "))
	f.Calls = append(f.Calls, call)
	if f.OnCall != nil {
		f.OnCall(call)
	}
	key := op
	if len(args) > 0 {
		key += " " + args[0]
	}
	return f.Err[key]
}

func (f *Fake) unit(name string) *UnitStatus {
	u, ok := f.units[name]
	if !ok {
		u = &UnitStatus{Name: name, ActiveState: "inactive", SubState: "dead"}
		f.units[name] = u
	}
	return u
}

func (f *Fake) fileContent(name string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(f.UnitDir, name))
	if err != nil {
		return "", false
	}
	return string(b), true
}

func (f *Fake) reload() {
	f.loaded = map[string]string{}
	entries, _ := os.ReadDir(f.UnitDir)
	for _, e := range entries {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
			if c, ok := f.fileContent(e.Name()); ok {
				f.loaded[e.Name()] = c
			}
		}
	}
}

// Status implements Manager.
func (f *Fake) Status(ctx context.Context, unit string) (UnitStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.Err["status "+unit]; err != nil {
		return UnitStatus{}, err
	}
	st := *f.unit(unit)
	old, wasLoaded := f.loaded[unit]
	cur, exists := f.fileContent(unit)
	switch {
	case wasLoaded:
		st.LoadState = "loaded"
		st.NeedDaemonReload = !exists || cur != old
		if st.UnitFileState == "" {
			st.UnitFileState = "disabled"
		}
	default:
		st.LoadState = "not-found"
		st.UnitFileState = ""
		st.NeedDaemonReload = exists
	}
	return st, nil
}

// Reload implements Manager.
func (f *Fake) Reload(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("reload"); err != nil {
		return err
	}
	f.reload()
	return nil
}

// Start implements Manager.
func (f *Fake) Start(ctx context.Context, unit string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("start", unit); err != nil {
		return err
	}
	if _, ok := f.loaded[unit]; !ok {
		return fmt.Errorf("start %s: Unit %s not found.", unit, unit)
	}
	u := f.unit(unit)
	if r := f.StartResult[unit]; r != "" && r != "done" {
		u.ActiveState, u.SubState, u.Result = "failed", "failed", "exit-code"
		u.ExecMainStatus = 1
		return &JobError{Op: "start", Unit: unit, Result: r}
	}
	if f.DiesAfterStart[unit] {
		u.ActiveState, u.SubState, u.Result = "failed", "failed", "exit-code"
		u.ExecMainStatus = 2
		return nil
	}
	if u.ActiveState != "active" && strings.HasSuffix(unit, ".service") {
		if f.lastPID < 1000 {
			f.lastPID = 1000
		}
		f.lastPID++
		u.MainPID = f.lastPID
	}
	u.ActiveState, u.SubState, u.Result = "active", "running", "success"
	return nil
}

// Stop implements Manager.
func (f *Fake) Stop(ctx context.Context, unit string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("stop", unit); err != nil {
		return err
	}
	u := f.unit(unit)
	u.ActiveState, u.SubState, u.MainPID = "inactive", "dead", 0
	return nil
}

func (f *Fake) setEnabled(op string, units []string, enabled bool) ([]Change, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record(op, units...); err != nil {
		return nil, err
	}
	var changes []Change
	for _, name := range units {
		if _, ok := f.fileContent(name); !ok {
			return nil, fmt.Errorf("%s %s: Unit file %s does not exist.", op, name, name)
		}
		u := f.unit(name)
		link := "/etc/systemd/system/multi-user.target.wants/" + name
		switch {
		case enabled && u.UnitFileState != "enabled":
			u.UnitFileState = "enabled"
			changes = append(changes, Change{Type: "symlink", Filename: link, Destination: filepath.Join(f.UnitDir, name)})
		case !enabled && u.UnitFileState == "enabled":
			u.UnitFileState = "disabled"
			changes = append(changes, Change{Type: "unlink", Filename: link})
		}
	}
	return changes, nil
}

// Enable implements Manager.
func (f *Fake) Enable(ctx context.Context, units []string) ([]Change, error) {
	return f.setEnabled("enable", units, true)
}

// Disable implements Manager.
func (f *Fake) Disable(ctx context.Context, units []string) ([]Change, error) {
	return f.setEnabled("disable", units, false)
}

// ResetFailed implements Manager.
func (f *Fake) ResetFailed(ctx context.Context, unit string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("reset-failed", unit); err != nil {
		return err
	}
	if _, ok := f.loaded[unit]; !ok {
		// As systemd: the unit must be loaded.
		return fmt.Errorf("reset-failed %s: Unit %s not loaded.", unit, unit)
	}
	u := f.unit(unit)
	if u.ActiveState == "failed" {
		u.ActiveState, u.SubState = "inactive", "dead"
	}
	return nil
}

// Journal implements Manager.
func (f *Fake) Journal(ctx context.Context, unit string, since time.Time, lines int) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("journal", unit); err != nil {
		return nil, err
	}
	l := f.JournalLines[unit]
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return l, nil
}

// Close implements Manager.
func (f *Fake) Close() {}

// Set forces a unit's state, as if it had been started, had crashed or had
// been enabled outside the module.
func (f *Fake) Set(unit, activeState string, enabled bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.unit(unit)
	u.ActiveState = activeState
	switch activeState {
	case "active":
		u.SubState = "running"
		if u.MainPID == 0 {
			u.MainPID = 4242
		}
	case "failed":
		u.SubState = "failed"
	default:
		u.SubState = "dead"
	}
	if enabled {
		u.UnitFileState = "enabled"
	} else {
		u.UnitFileState = "disabled"
	}
}

// Mutating returns the recorded calls that change something (not status or
// journal reads).
func (f *Fake) Mutating() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.Calls {
		if !strings.HasPrefix(c, "journal ") {
			out = append(out, c)
		}
	}
	return out
}

// Reset forgets the recorded calls.
func (f *Fake) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls = nil
}
