package systemd

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"
)

// DBus is the Manager over systemd's D-Bus API. It reconnects once when a
// call fails because the connection closed (after a daemon-reexec, say).
type DBus struct {
	mu   sync.Mutex
	conn *sd.Conn
	dial func(ctx context.Context) (*sd.Conn, error)
	// journalctl is the command that reads the journal (sdjournal needs cgo).
	journalctl string
	// settlePoll is how often a job whose completion signal was lost is
	// polled.
	settlePoll time.Duration
}

var _ Manager = (*DBus)(nil)

// Connect opens a connection to the system manager: the system bus, or
// systemd's private socket when no bus daemon runs and we are root.
func Connect(ctx context.Context) (*DBus, error) {
	d := &DBus{dial: sd.NewWithContext, journalctl: "journalctl", settlePoll: 200 * time.Millisecond}
	if _, err := d.get(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *DBus) get(ctx context.Context) (*sd.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn != nil && d.conn.Connected() {
		return d.conn, nil
	}
	if d.conn != nil {
		d.conn.Close()
		d.conn = nil
	}
	c, err := d.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to systemd over D-Bus: %w", err)
	}
	d.conn = c
	return c, nil
}

func (d *DBus) drop(c *sd.Conn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn == c {
		d.conn.Close()
		d.conn = nil
	}
}

// do runs fn on a live connection, reconnecting and retrying once when the
// connection turns out to be closed.
func (d *DBus) do(ctx context.Context, fn func(c *sd.Conn) error) error {
	return retryClosed(func() (*sd.Conn, error) { return d.get(ctx) }, d.drop,
		func(c *sd.Conn, err error) bool { return errors.Is(err, godbus.ErrClosed) || !c.Connected() }, fn)
}

// retryClosed runs fn on the connection get returns. When fn fails because
// that connection closed (systemd was re-executed, say), the connection is
// dropped and fn runs once more on a new one; any other error is returned
// as is.
func retryClosed[C any](get func() (C, error), drop func(C), closed func(C, error) bool, fn func(C) error) error {
	for attempt := 0; ; attempt++ {
		c, err := get()
		if err != nil {
			return err
		}
		err = fn(c)
		if err == nil || attempt > 0 || !closed(c, err) {
			return err
		}
		drop(c)
	}
}

// Close closes the connection.
func (d *DBus) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn != nil {
		d.conn.Close()
		d.conn = nil
	}
}

// Status reads the unit's load, active and enablement state; for a loaded
// service also its main PID, exit status, restart count and result.
func (d *DBus) Status(ctx context.Context, unit string) (UnitStatus, error) {
	st := UnitStatus{Name: unit}
	err := d.do(ctx, func(c *sd.Conn) error {
		props, err := c.GetUnitPropertiesContext(ctx, unit)
		if err != nil {
			return err
		}
		st.LoadState, _ = props["LoadState"].(string)
		st.ActiveState, _ = props["ActiveState"].(string)
		st.SubState, _ = props["SubState"].(string)
		st.UnitFileState, _ = props["UnitFileState"].(string)
		st.NeedDaemonReload, _ = props["NeedDaemonReload"].(bool)
		if st.LoadState != "loaded" || !strings.HasSuffix(unit, ".service") {
			return nil
		}
		sp, err := c.GetUnitTypePropertiesContext(ctx, unit, "Service")
		if err != nil {
			return err
		}
		st.MainPID, _ = sp["MainPID"].(uint32)
		st.ExecMainStatus, _ = sp["ExecMainStatus"].(int32)
		st.NRestarts, _ = sp["NRestarts"].(uint32)
		st.Result, _ = sp["Result"].(string)
		return nil
	})
	if err != nil {
		return UnitStatus{}, fmt.Errorf("read status of %s: %w", unit, err)
	}
	return st, nil
}

// Reload is daemon-reload.
func (d *DBus) Reload(ctx context.Context) error {
	if err := d.do(ctx, func(c *sd.Conn) error { return c.ReloadContext(ctx) }); err != nil {
		return fmt.Errorf("daemon-reload: %w", err)
	}
	return nil
}

// Start queues a start job (mode replace) and waits for its result.
func (d *DBus) Start(ctx context.Context, unit string) error {
	return d.job(ctx, "start", unit, (*sd.Conn).StartUnitContext)
}

// Stop queues a stop job (mode replace) and waits for its result.
func (d *DBus) Stop(ctx context.Context, unit string) error {
	return d.job(ctx, "stop", unit, (*sd.Conn).StopUnitContext)
}

type jobCall func(c *sd.Conn, ctx context.Context, name, mode string, ch chan<- string) (int, error)

func (d *DBus) job(ctx context.Context, op, unit string, call jobCall) error {
	// Buffered: go-systemd sends the result while holding its job lock, so
	// an unread unbuffered channel would stall every other job.
	ch := make(chan string, 1)
	var conn *sd.Conn
	err := d.do(ctx, func(c *sd.Conn) error {
		conn = c
		_, err := call(c, ctx, unit, "replace", ch)
		return err
	})
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, unit, err)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case res := <-ch:
			if res != "done" {
				return &JobError{Op: op, Unit: unit, Result: res}
			}
			return nil
		case <-ctx.Done():
			return fmt.Errorf("waiting for the %s job of %s: %w", op, unit, ctx.Err())
		case <-tick.C:
			if conn.Connected() {
				continue
			}
			// The connection died with the job queued: its completion
			// signal is lost. Poll the unit until it settles instead.
			return d.settle(ctx, op, unit)
		}
	}
}

// settle polls a unit until it is no longer activating or deactivating and
// maps its state to a job result.
func (d *DBus) settle(ctx context.Context, op, unit string) error {
	for {
		st, err := d.Status(ctx, unit)
		if err != nil {
			return fmt.Errorf("waiting for the %s job of %s after the D-Bus connection closed: %w", op, unit, err)
		}
		switch {
		case op == "start" && st.ActiveState == "active":
			return nil
		case op == "stop" && (st.ActiveState == "inactive" || st.ActiveState == "failed"):
			return nil
		case st.ActiveState == "failed" || st.ActiveState == "inactive" || st.ActiveState == "active":
			return &JobError{Op: op, Unit: unit, Result: "failed"}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the %s job of %s: %w", op, unit, ctx.Err())
		case <-time.After(d.settlePoll):
		}
	}
}

// Enable enables units persistently (symlinks under /etc), replacing
// conflicting symlinks.
func (d *DBus) Enable(ctx context.Context, units []string) ([]Change, error) {
	var out []Change
	err := d.do(ctx, func(c *sd.Conn) error {
		_, changes, err := c.EnableUnitFilesContext(ctx, units, false, true)
		out = out[:0]
		for _, ch := range changes {
			out = append(out, Change(ch))
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("enable %s: %w", strings.Join(units, ", "), err)
	}
	return out, nil
}

// Disable disables units persistently.
func (d *DBus) Disable(ctx context.Context, units []string) ([]Change, error) {
	var out []Change
	err := d.do(ctx, func(c *sd.Conn) error {
		changes, err := c.DisableUnitFilesContext(ctx, units, false)
		out = out[:0]
		for _, ch := range changes {
			out = append(out, Change(ch))
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("disable %s: %w", strings.Join(units, ", "), err)
	}
	return out, nil
}

// ResetFailed clears a unit's failed state.
func (d *DBus) ResetFailed(ctx context.Context, unit string) error {
	if err := d.do(ctx, func(c *sd.Conn) error { return c.ResetFailedUnitContext(ctx, unit) }); err != nil {
		return fmt.Errorf("reset-failed %s: %w", unit, err)
	}
	return nil
}

// Journal runs journalctl: go-systemd's sdjournal needs cgo and libsystemd,
// and these binaries are static.
func (d *DBus) Journal(ctx context.Context, unit string, since time.Time, lines int) ([]string, error) {
	return readJournal(ctx, d.journalctl, unit, since, lines)
}

func readJournal(ctx context.Context, journalctl, unit string, since time.Time, lines int) ([]string, error) {
	args := []string{"--unit", unit, "--lines", strconv.Itoa(lines), "--no-pager", "--quiet", "--output", "short-iso"}
	if !since.IsZero() {
		args = append(args, "--since", "@"+strconv.FormatInt(since.Unix(), 10))
	}
	cmd := exec.CommandContext(ctx, journalctl, args...)
	cmd.Env = []string{"SYSTEMD_COLORS=0", "SYSTEMD_PAGER=", "LC_ALL=C.UTF-8", "PATH=/usr/bin:/bin:/usr/sbin:/sbin"}
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("journalctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(ee.Stderr)))
		}
		return nil, fmt.Errorf("journalctl: %w", err)
	}
	text := strings.TrimRight(string(out), "\n")
	if text == "" {
		return nil, nil
	}
	return strings.Split(text, "\n"), nil
}
