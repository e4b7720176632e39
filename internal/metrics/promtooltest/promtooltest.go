// Package promtooltest checks rendered metrics with Prometheus' own
// `promtool check metrics`, the linter of the exposition format and of the
// naming conventions. make unit sets PROMTOOL (tests/monitoring/promtool.sh
// extracts it from Debian's package); without it the check is skipped and
// says so.
package promtooltest

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
)

// Check fails t when promtool reports anything about content.
func Check(t *testing.T, content []byte) {
	t.Helper()
	bin := os.Getenv("PROMTOOL")
	if bin == "" {
		t.Skip("PROMTOOL is not set: run through make unit, which extracts promtool from Debian's prometheus package")
	}
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = bytes.NewReader(content)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("promtool check metrics: %v\n%s\non:\n%s", err, out, content)
	}
}
