// Package systemd is the narrow view of systemd this collection uses: unit
// status, daemon-reload, start/stop jobs whose result is awaited, enable and
// disable, and the last journal lines of a unit. Manager is implemented over
// D-Bus (go-systemd) by Connect and by a recording Fake for unit tests.
package systemd

import (
	"context"
	"fmt"
	"time"
)

// UnitStatus is what the collection reads about one unit. A unit whose file
// does not exist has LoadState "not-found" and empty UnitFileState.
type UnitStatus struct {
	Name             string `json:"name"`
	LoadState        string `json:"load_state"`
	ActiveState      string `json:"active_state"`
	SubState         string `json:"sub_state"`
	UnitFileState    string `json:"unit_file_state"`
	NeedDaemonReload bool   `json:"need_daemon_reload"`
	// Service units only.
	MainPID        uint32 `json:"main_pid,omitempty"`
	ExecMainStatus int32  `json:"exec_main_status,omitempty"`
	NRestarts      uint32 `json:"n_restarts,omitempty"`
	Result         string `json:"result,omitempty"`
}

// Running is true while the unit is up or coming up.
func (s UnitStatus) Running() bool {
	switch s.ActiveState {
	case "active", "activating", "reloading":
		return true
	}
	return false
}

// Enabled is true when the unit is started at boot.
func (s UnitStatus) Enabled() bool {
	switch s.UnitFileState {
	case "enabled", "enabled-runtime", "linked", "linked-runtime", "alias":
		return true
	}
	return false
}

// Change is one symlink systemd created or removed when enabling or
// disabling units.
type Change struct {
	Type        string `json:"type"` // symlink or unlink
	Filename    string `json:"filename"`
	Destination string `json:"destination,omitempty"`
}

// JobError is returned when a start or stop job finished with a result other
// than "done": one of canceled, timeout, failed, dependency, skipped.
type JobError struct {
	Op     string // start, stop
	Unit   string
	Result string
}

func (e *JobError) Error() string {
	return fmt.Sprintf("%s job for %s finished with result %q", e.Op, e.Unit, e.Result)
}

// Manager is the subset of systemd the collection needs. Start and Stop
// return once systemd reports the job's result (for Type=notify services,
// after READY=1); a result other than "done" is a *JobError.
type Manager interface {
	Status(ctx context.Context, unit string) (UnitStatus, error)
	Reload(ctx context.Context) error
	Start(ctx context.Context, unit string) error
	Stop(ctx context.Context, unit string) error
	Enable(ctx context.Context, units []string) ([]Change, error)
	Disable(ctx context.Context, units []string) ([]Change, error)
	ResetFailed(ctx context.Context, unit string) error
	// Journal returns up to lines of the unit's journal since the given time,
	// oldest first.
	Journal(ctx context.Context, unit string, since time.Time, lines int) ([]string, error)
	Close()
}
