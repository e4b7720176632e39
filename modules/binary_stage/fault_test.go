//go:build faults

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// runProcess runs the module as a real process (this test binary, see
// TestMain) with SOVEREIGN_FAULT set to fault, and returns its result and
// whether it was killed by SIGKILL.
func runProcess(t *testing.T, args map[string]any, faultStep string) (map[string]any, bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], writeArgs(t, args))
	cmd.Env = append(os.Environ(), runAsModuleEnv+"=1")
	if faultStep != "" {
		cmd.Env = append(cmd.Env, faultEnv+"=binary_stage:"+faultStep)
	}
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			if out.Len() != 0 {
				t.Fatalf("killed at %s but printed %q", faultStep, out.String())
			}
			return nil, true
		}
	}
	var res map[string]any
	if jerr := json.Unmarshal(out.Bytes(), &res); jerr != nil {
		t.Fatalf("module process: %v, output %q, stderr %q", err, out.String(), stderr.String())
	}
	return res, false
}

// killScenario prepares a root and returns the arguments of the run to
// kill, the slot values acceptable after a kill, and the final state.
type killScenario struct {
	name    string
	reaches func(step string) bool // steps the run passes through
	setup   func(t *testing.T, f *fixture) (args map[string]any, oldLink, newLink string)
}

var killScenarios = []killScenario{
	{
		name: "first install",
		reaches: func(step string) bool {
			return !slices.Contains([]string{"after-clean", "mid-prune", "after-prune"}, step)
		},
		setup: func(t *testing.T, f *fixture) (map[string]any, string, string) {
			src, sum := f.src("app", "echo 1")
			return f.args(src, sum, "1.0", "green"), "", "releases/1.0-" + sum[:12]
		},
	},
	{
		name:    "upgrade with leftovers and pruning",
		reaches: func(string) bool { return true },
		setup: func(t *testing.T, f *fixture) (map[string]any, string, string) {
			srcB, sumB := f.src("blue", "echo blue")
			mustOK(t, f.args(srcB, sumB, "0.1", "blue"))
			var old string
			for i := 1; i <= 3; i++ {
				src, sum := f.src(fmt.Sprintf("g%d", i), fmt.Sprintf("echo %d", i))
				mustOK(t, f.args(src, sum, fmt.Sprintf("1.%d", i), "green"))
				old = "releases/1." + fmt.Sprint(i) + "-" + sum[:12]
			}
			// A leftover of an earlier killed run, so the clean-up step runs.
			os.MkdirAll(filepath.Join(f.root, "releases", ".9.9-aaaaaaaaaaaa.tmp-1-1-x", "d"), 0o755)
			// A binary big enough that the copy is more than one write.
			data := bytes.Repeat([]byte("0123456789abcdef"), 512<<10)
			src := filepath.Join(f.dir, "big")
			os.WriteFile(src, data, 0o755)
			args := f.args(src, sha(data), "2.0", "green")
			args["keep_releases"] = 2
			return args, old, "releases/2.0-" + sha(data)[:12]
		},
	},
}

// Kill the module at every step of faultSteps and check that every slot
// still points at a complete release (the old or the new one for the slot
// being changed, untouched for the others), that nothing incomplete has a
// final name, and that a re-run converges to the wanted state.
func TestKillAtEveryStep(t *testing.T) {
	for _, sc := range killScenarios {
		for _, step := range faultSteps {
			t.Run(sc.name+"/"+step, func(t *testing.T) {
				f := newFixture(t)
				args, oldLink, newLink := sc.setup(t, f)
				blue := f.link("blue")

				res, killed := runProcess(t, args, step)
				if !sc.reaches(step) {
					if killed || res["failed"] == true {
						t.Fatalf("step %s is not on this path, yet the run was killed (%v) or failed: %v", step, killed, res)
					}
					return
				}
				if !killed {
					t.Fatalf("the run was not killed at %s (the step was never reached): %v", step, res)
				}
				checkInvariants(t, f.root)
				if got := f.link("green"); got != oldLink && got != newLink {
					t.Fatalf("after a kill at %s green points at %q, want %q or %q", step, got, oldLink, newLink)
				}
				if f.link("blue") != blue {
					t.Fatalf("blue moved from %q to %q", blue, f.link("blue"))
				}

				// Check mode after the crash tells what the re-run will do.
				check, _ := runProcess(t, withCheck(args), "")
				res, killed = runProcess(t, args, "")
				if killed || res["failed"] == true {
					t.Fatalf("re-run after a kill at %s failed: %v", step, res)
				}
				if !slices.Equal(strs(check["changes"]), strs(res["changes"])) {
					t.Fatalf("check predicted %q, the re-run did %q", check["changes"], res["changes"])
				}
				if f.link("green") != newLink || f.link("blue") != blue {
					t.Fatalf("after the re-run: green %q blue %q", f.link("green"), f.link("blue"))
				}
				checkInvariants(t, f.root)
				assertNoLeftovers(t, f.root)
				if res, _ = runProcess(t, args, ""); res["changed"] != false {
					t.Fatalf("third run after a kill at %s is not a no-op: %v", step, res["changes"])
				}
			})
		}
	}
}

// A SOVEREIGN_FAULT for another module is none of this module's business.
func TestFaultEnvForOtherModulesIgnored(t *testing.T) {
	t.Setenv(faultEnv, "source_build:after-clone")
	if err := checkFaultEnv(); err != nil {
		t.Fatal(err)
	}
	t.Setenv(faultEnv, "binary_stage:after-fsync")
	if err := checkFaultEnv(); err != nil {
		t.Fatal(err)
	}
	t.Setenv(faultEnv, "binary_stage:nope")
	if err := checkFaultEnv(); err == nil || !strings.Contains(err.Error(), "after-temp-write") {
		t.Fatalf("unknown step: %v", err)
	}
}

// A SOVEREIGN_FAULT naming no step fails the task before anything is made.
func TestUnknownFaultStepRefused(t *testing.T) {
	f := newFixture(t)
	src, sum := f.src("app", "echo 1")
	t.Setenv(faultEnv, "binary_stage:after-typo")
	mustFail(t, f.args(src, sum, "1.0", "green"), "names no fault step")
	if _, err := os.Lstat(f.root); !os.IsNotExist(err) {
		t.Fatalf("a refused fault step created %s", f.root)
	}
}
