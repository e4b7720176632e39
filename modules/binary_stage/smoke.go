package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// smokeOutputLimit caps the output kept from the smoke command.
const smokeOutputLimit = 16 << 10

// smoke runs the staged binary (from its final release path, before the
// slot moves) with the smoke arguments. It must exit 0 within the timeout
// and, when smoke_expect is set, print that text.
func smoke(ctx context.Context, s *spec, p *plan) (string, error) {
	bin := filepath.Join(p.ReleasePath, s.Binary)
	ctx, cancel := context.WithTimeout(ctx, s.SmokeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, s.Smoke...)
	cmd.Dir = p.ReleasePath
	var buf limitedBuffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	out := buf.String()
	line := strings.Join(append([]string{bin}, s.Smoke...), " ")
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return out, fmt.Errorf("smoke test %q did not finish within %s; output: %q", line, s.SmokeTimeout, tail(out))
	case err != nil:
		return out, fmt.Errorf("smoke test %q failed: %w; output: %q", line, err, tail(out))
	case s.SmokeExpect != "" && !strings.Contains(out, s.SmokeExpect):
		return out, fmt.Errorf("smoke test %q printed no %q; output: %q", line, s.SmokeExpect, tail(out))
	}
	return out, nil
}

func tail(s string) string {
	if len(s) > 2000 {
		return "..." + s[len(s)-2000:]
	}
	return s
}

// limitedBuffer keeps the first smokeOutputLimit bytes and drops the rest
// (a chatty binary must not eat the module's memory).
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := smokeOutputLimit - b.Len(); room > 0 {
		if len(p) > room {
			b.Buffer.Write(p[:room])
		} else {
			b.Buffer.Write(p)
		}
	}
	return len(p), nil
}
