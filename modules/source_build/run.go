package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Isolation used for a build, as reported.
const (
	isoNetns = "netns" // a new network namespace with no interface but a down loopback
	isoNone  = "none"
)

// netnsAttr makes the child start in a network namespace of its own, with no
// network at all. Root needs only CLONE_NEWNET; anyone else also gets a user
// namespace mapping their own ids, which is what `unshare -rn` does.
func netnsAttr() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true, Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if uid := os.Geteuid(); uid != 0 {
		gid := os.Getegid()
		a.Cloneflags |= syscall.CLONE_NEWUSER
		a.UidMappings = []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}}
		a.GidMappings = []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}}
		a.GidMappingsEnableSetgroups = false
	}
	return a
}

// chooseIsolation decides how the build is isolated: isolation is the option
// (auto, netns, none), probe tries to start a process in a new network
// namespace. It returns the isolation to use and, for a fallback, why.
func chooseIsolation(isolation string, offline bool, probe func() error) (string, string, error) {
	if isolation == "none" {
		return isoNone, "isolation: none was asked", nil
	}
	if isolation == "auto" && !offline {
		return isoNone, "offline: false (the build may use the network)", nil
	}
	err := probe()
	if err == nil {
		return isoNetns, "new network namespace without network", nil
	}
	if isolation == "netns" {
		return "", "", fmt.Errorf("isolation: netns was asked but this host cannot create a network namespace: %w", err)
	}
	return isoNone, fmt.Sprintf("cannot create a network namespace here (%v): the build relies on GOFLAGS=-mod=vendor, GOPROXY=off, GOTOOLCHAIN=local alone", err), nil
}

// probeNetns starts `true` in a new network namespace.
func probeNetns() error {
	t, err := exec.LookPath("true")
	if err != nil {
		return err
	}
	// Pdeathsig follows the thread that started the child: keep it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := exec.Command(t)
	cmd.SysProcAttr = netnsAttr()
	return cmd.Run()
}

// procSpec is one build command to run.
type procSpec struct {
	Argv      []string
	Dir       string
	Env       []string
	Isolation string
	Timeout   time.Duration
	Grace     time.Duration // between SIGTERM and SIGKILL on timeout
	Log       io.Writer
}

// procResult is how the command ended.
type procResult struct {
	Duration time.Duration
	TimedOut bool
	Err      error // nil on exit status 0
}

// ErrTimeout: the build ran longer than timeout and was killed.
var ErrTimeout = errors.New("build timed out")

// runProc runs the command in its own process group (and network namespace
// if asked), output to Log, stdin from /dev/null. On timeout the whole group
// gets SIGTERM, then SIGKILL after Grace. Whatever the group left running
// when the command returns is killed too: nothing outlives the build.
func runProc(p procSpec) procResult {
	// Pdeathsig (the build dies with the module) follows the OS thread that
	// started the child, so this goroutine keeps its thread until the end.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := time.Now()
	cmd := exec.Command(p.Argv[0], p.Argv[1:]...)
	cmd.Dir, cmd.Env = p.Dir, p.Env
	cmd.Stdout, cmd.Stderr = p.Log, p.Log
	if p.Isolation == isoNetns {
		cmd.SysProcAttr = netnsAttr()
	} else {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	}
	if err := cmd.Start(); err != nil {
		return procResult{Err: fmt.Errorf("start %s: %w", p.Argv[0], err)}
	}
	pgid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	killGroup := func(sig syscall.Signal) { _ = syscall.Kill(-pgid, sig) }
	timer := time.NewTimer(p.Timeout)
	defer timer.Stop()
	var res procResult
	select {
	case err := <-done:
		res.Err = err
	case <-timer.C:
		res.TimedOut = true
		killGroup(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(p.Grace):
			killGroup(syscall.SIGKILL)
			<-done
		}
		res.Err = fmt.Errorf("%w after %s; its process group %d was killed", ErrTimeout, p.Timeout, pgid)
	}
	killGroup(syscall.SIGKILL)
	res.Duration = time.Since(start)
	return res
}

// diagnose reads a failed build's log and names the cause when it is one an
// offline build is known for; "" when nothing is recognised.
func diagnose(log string, isolation string) string {
	lines := strings.Split(log, "\n")
	find := func(subs ...string) string {
		for _, l := range lines {
			for _, s := range subs {
				if strings.Contains(l, s) {
					return strings.TrimSpace(l)
				}
			}
		}
		return ""
	}
	if l := find("inconsistent vendoring"); l != "" {
		return "inconsistent vendoring: vendor/modules.txt does not match go.mod (" + l + "); run `go mod vendor` and commit vendor/ into the mirror"
	}
	if l := find("GOTOOLCHAIN=local", "toolchain not available", "requires go >="); l != "" {
		return "the toolchain is older than go.mod asks for and the offline build will not download one: " + l
	}
	if l := find("module lookup disabled by GOPROXY=off", "no required module provides package", "cannot find module providing package", "is not in vendor/modules.txt", "missing go.sum entry"); l != "" {
		return "the build needed a Go module that is not vendored (offline: GOPROXY=off): " + l
	}
	if l := find("Network is unreachable", "network is unreachable", "Temporary failure in name resolution", "Could not resolve host", "no such host", "dial tcp", "Connection refused", "connection refused"); l != "" {
		return fmt.Sprintf("the build tried to reach the network (isolation: %s): %s", isolation, l)
	}
	return ""
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
