package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
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
	bin, err := lookPathIn(p.Argv[0], p.Env)
	if err != nil {
		return procResult{Err: fmt.Errorf("start %s: %w", p.Argv[0], err)}
	}
	cmd := exec.Command(bin, p.Argv[1:]...)
	cmd.Args[0] = p.Argv[0]
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

// diagContext is what diagnose needs besides the log: where the build ran.
type diagContext struct {
	Isolation  string
	ModuleRoot string   // the directory holding go.mod, "" when there is none
	Env        []string // the build's environment (GOTMPDIR)
}

// diagnose reads a failed build's log and names the cause when the log shows
// one an offline build is known for; "" when nothing is recognised. It only
// interprets what go (or the command) said: go decides whether a tree builds.
func diagnose(log string, c diagContext) string {
	lines := strings.Split(log, "\n")
	find := func(subs ...string) (int, string) {
		for i, l := range lines {
			for _, s := range subs {
				if strings.Contains(strings.ToLower(l), strings.ToLower(s)) {
					return i, strings.TrimSpace(l)
				}
			}
		}
		return -1, ""
	}
	// A full disk explains every other error that follows it: say only that.
	if _, l := find("no space left on device"); l != "" {
		return noSpace(l, c.Env)
	}
	if _, l := find("GOTOOLCHAIN=local", "toolchain not available", "requires go >="); l != "" {
		return "the toolchain is older than go.mod asks for and the offline build (GOTOOLCHAIN=local) will not download another; install a newer Go on the build host or point go_binary at one. go said: " + l
	}
	if i, l := find("inconsistent vendoring"); l != "" {
		detail := goDetail(lines[i+1:], 3)
		if c.ModuleRoot != "" {
			if _, err := os.Stat(filepath.Join(c.ModuleRoot, "vendor", "modules.txt")); errors.Is(err, fs.ErrNotExist) {
				return fmt.Sprintf("%v in %s: the offline build (GOFLAGS=-mod=vendor, GOPROXY=off) cannot download the modules go.mod requires (%s); run `go mod vendor` where the network is allowed and commit vendor/ into the mirror (force-add it if .gitignore lists it)",
					ErrNoVendor, c.ModuleRoot, detail)
			}
		}
		return fmt.Sprintf("%v: vendor/modules.txt was made for another go.mod (go said: %s); run `go mod vendor` and commit the result into the mirror", ErrInconsistentVend, detail)
	}
	if _, l := find("module lookup disabled by GOPROXY=off", "no required module provides package", "cannot find module providing package", "is not in vendor/modules.txt", "missing go.sum entry"); l != "" {
		return "the build needed a Go module that is not vendored (offline: GOPROXY=off): " + l
	}
	if _, l := find("Network is unreachable", "Temporary failure in name resolution", "Could not resolve host", "no such host", "dial tcp", "Connection refused"); l != "" {
		return fmt.Sprintf("the build tried to reach the network (isolation: %s): %s", c.Isolation, l)
	}
	return ""
}

// Causes diagnose names, for errors.Is in tests and callers.
var (
	ErrNoVendor         = errors.New("no vendor/ directory")
	ErrInconsistentVend = errors.New("inconsistent vendoring")
)

// goDetail joins the first n indented lines go prints under an error.
func goDetail(lines []string, n int) string {
	var out []string
	for _, l := range lines {
		if !strings.HasPrefix(l, "\t") && !strings.HasPrefix(l, " ") {
			break
		}
		if t := strings.TrimSpace(l); t != "" {
			if len(out) == n {
				out = append(out, "...")
				break
			}
			out = append(out, t)
		}
	}
	return strings.Join(out, "; ")
}

// noSpace names the full filesystem from a line like
// "write $WORK/b2460/_pkg_.a: no space left on device". $WORK is go's
// temporary directory, under GOTMPDIR.
func noSpace(line string, env []string) string {
	low := strings.ToLower(line)
	before := strings.TrimRight(line[:strings.Index(low, "no space left on device")], ": '\"")
	path := ""
	if f := strings.Fields(before); len(f) > 0 {
		path = strings.Trim(f[len(f)-1], "'\"`:")
	}
	if rest, ok := strings.CutPrefix(path, "$WORK"); ok {
		tmp := envValue(env, "GOTMPDIR")
		if tmp == "" {
			tmp = os.TempDir()
		}
		path = filepath.Join(tmp, "go-build"+rest)
	}
	if !filepath.IsAbs(path) {
		return "no space left on device (" + line + ")"
	}
	return fmt.Sprintf("no space left on %s (writing %s)", mountPoint(path), path)
}

// mountPoint is the top of the filesystem holding path: the highest existing
// ancestor on the same device.
func mountPoint(path string) string {
	dir := filepath.Clean(path)
	var dev uint64
	for {
		var st syscall.Stat_t
		if syscall.Stat(dir, &st) == nil {
			dev = st.Dev
			break
		}
		if dir == "/" {
			return "/"
		}
		dir = filepath.Dir(dir)
	}
	for dir != "/" {
		var st syscall.Stat_t
		if syscall.Stat(filepath.Dir(dir), &st) != nil || st.Dev != dev {
			break
		}
		dir = filepath.Dir(dir)
	}
	return dir
}

// envValue is the value of key in an environment list, "" when unset.
func envValue(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// lookPathIn finds the command the way a shell with env's PATH would: the
// build's PATH (go_binary's directory first), not the module's own.
func lookPathIn(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	path := envValue(env, "PATH")
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q not found in the build's PATH (%s)", file, path)
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
