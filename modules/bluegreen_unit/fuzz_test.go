package main

import (
	"strings"
	"testing"
)

// FuzzConfig: whatever the values, newConfig refuses them or yields units
// in which every value stayed on its own line: each unit has exactly the
// sections and keys, in the same order, as the same configuration with
// plain values in their place, and no line exceeds the kernel's limit.
func FuzzConfig(f *testing.F) {
	f.Add("/opt/{name}/{colour}/webapp", "--colour={colour}", "GREETING", "hello \"world\" 100%", "9001", "Demo", "webapp",
		"LimitNOFILE", "65536", "0.0.0.0:80", "http://127.0.0.1:{health_port}/healthz", "/var/lib/{name}")
	// One hostile value each, the rest plain: what an injection would need.
	plain := []string{"/opt/w", "a", "K", "v", "1", "d", "u", "LimitNOFILE", "1", "80", "http://127.0.0.1:1/", "/x"}
	for i, bad := range []string{"/opt/w\nUser=root", "a\nExecStartPre=/bin/evil", "A\nB", "x\\", "1\nUser=root",
		"a\rb", "root\nGroup=0", "TimeoutSec", "1\n[Install]", "80\nExecStartPre=/x", "http://[::1", "/a/../b"} {
		v := append([]string(nil), plain...)
		v[i] = bad
		f.Add(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11])
	}
	f.Add("/opt/w", ";", "PATH", "$HOME %n", "{colour}", "\\", "0", "ExecStart", "/bin/sh", "[::1]:443", "http://", "-/etc/x.env")
	f.Fuzz(func(t *testing.T, bin, arg, envKey, envVal, port, desc, user, optKey, optVal, listen, healthURL, rwPath string) {
		c, err := newConfig(fuzzOptions(bin, arg, envKey, envVal, port, desc, user, optKey, optVal, listen, healthURL, rwPath))
		if err != nil {
			return
		}
		refUser := ""
		if user != "" {
			refUser = "u"
		}
		ref, err := newConfig(fuzzOptions("/opt/w", "a", envKey, "v", "1", "d", refUser, optKey, "1", "80", "http://127.0.0.1:1/", "/x"))
		if err != nil {
			t.Fatalf("the plain configuration of the same shape is refused: %v", err)
		}
		for _, col := range colours {
			checkSameShape(t, renderService(c, col), renderService(ref, col))
			checkSameShape(t, renderSocket(c, c.sockets[0], col), renderSocket(ref, ref.sockets[0], col))
		}
	})
}

func fuzzOptions(bin, arg, envKey, envVal, port, desc, user, optKey, optVal, listen, healthURL, rwPath string) *Options {
	o := baseOptions()
	o.Command = []string{bin, arg}
	o.Environment = map[string]any{envKey: envVal}
	o.ColourVars.Blue["health_port"], o.ColourVars.Green["health_port"] = port, port
	o.Description, o.User = desc, user
	o.ServiceOptions = map[string]any{optKey: optVal}
	o.Sockets[0].Listen = []string{listen}
	o.Health.URL = healthURL
	o.Hardening = defaultHardening()
	o.Hardening.ReadWritePaths = []string{rwPath}
	return o
}

// checkSameShape compares the sections and keys of two units, line by line.
func checkSameShape(t *testing.T, got, want string) {
	t.Helper()
	shape := func(unit string) []string {
		var out []string
		for _, line := range strings.Split(unit, "\n") {
			if len(line) > maxArg+64 {
				t.Fatalf("line of %d bytes", len(line))
			}
			key, _, _ := strings.Cut(line, "=")
			if strings.HasPrefix(line, "#") {
				key = "#"
			}
			out = append(out, key)
		}
		return out
	}
	if g, w := shape(got), shape(want); strings.Join(g, "|") != strings.Join(w, "|") {
		t.Fatalf("a value escaped its line:\n%s\nwant the shape of:\n%s", got, want)
	}
}
