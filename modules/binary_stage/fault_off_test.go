//go:build !faults

package main

import "testing"

// The shipped build has no fault hook: a SOVEREIGN_FAULT aimed at a step,
// or at no step, changes nothing.
func TestShippedBuildHasNoFaultHook(t *testing.T) {
	for _, step := range []string{"after-temp-write", "after-link-rename", "after-typo"} {
		t.Run(step, func(t *testing.T) {
			f := newFixture(t)
			src, sum := f.src("app", "echo 1")
			t.Setenv("SOVEREIGN_FAULT", "binary_stage:"+step)
			res := mustOK(t, f.args(src, sum, "1.0", "green"))
			if res["changed"] != true || f.link("green") != "releases/1.0-"+sum[:12] {
				t.Fatalf("SOVEREIGN_FAULT=binary_stage:%s changed the run: %v", step, res)
			}
		})
	}
}
