//go:build faults

// The fault hook exists only in binaries built with -tags faults (the unit
// tests and the e2e fault playbook's .build/faults/ binary); the shipped
// build has fault_off.go's no-ops instead, which the compiler removes.

package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
)

// faultEnv names the test-only fault-injection hook: with
// SOVEREIGN_FAULT=binary_stage:<step> the module kills itself with SIGKILL
// when it reaches <step>, so tests can check what a crash at that exact point
// leaves behind. Nothing else reads or sets it.
const faultEnv = "SOVEREIGN_FAULT"

// faultSteps lists, in execution order, every point where a real run can be
// killed. It is the single list the kill-at-every-step tests iterate over.
var faultSteps = []string{
	"after-clean",          // leftovers of an earlier killed run removed
	"after-temp-write",     // binary copied to its temporary name, not yet fsynced
	"after-fsync",          // temporary binary fsynced
	"after-verify",         // temporary binary read back and its sha256 checked
	"after-attrs",          // owner, group and capabilities set on the temporary binary
	"after-rename",         // binary renamed to its final name inside the (temporary) release dir
	"after-metadata",       // .release.json written
	"after-release-rename", // release directory renamed to its final name
	"after-temp-link",      // temporary slot symlink created, not yet renamed
	"after-link-rename",    // slot symlink renamed over the old one, directory not yet fsynced
	"after-history",        // history.json written
	"mid-prune",            // first pruned release moved aside and half deleted
	"after-prune",          // every pruned release deleted, history not yet updated
}

// checkFaultEnv rejects a SOVEREIGN_FAULT aimed at this module that names no
// known step, so a typo in a test cannot silently turn into a test that
// never kills anything.
func checkFaultEnv() error {
	step, ok := strings.CutPrefix(os.Getenv(faultEnv), "binary_stage:")
	if !ok {
		return nil
	}
	if !slices.Contains(faultSteps, step) {
		return fmt.Errorf("%s=binary_stage:%s names no fault step; known steps: %s",
			faultEnv, step, strings.Join(faultSteps, ", "))
	}
	return nil
}

// fault kills the process when SOVEREIGN_FAULT names this step.
func fault(step string) {
	if !slices.Contains(faultSteps, step) {
		panic("binary_stage: fault step " + step + " is not listed in faultSteps")
	}
	if os.Getenv(faultEnv) == "binary_stage:"+step {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL is not deliverable late; never continue past the step
	}
}
