package main

import (
	"fmt"
	"strings"
	"time"
)

// Unit naming: one unit file per colour, NAME-blue.service and
// NAME-green.service, and for strategy socket one NAME-COLOUR-SOCKET.socket
// per colour and socket. Not a template unit: each colour's file states
// literally what that colour runs (systemctl cat shows real values, not %i),
// per-colour values (ports, paths) need no indirection, and the two files
// can be diffed.
//
// Each colour has its own socket units, bound with ReusePort=yes, rather
// than one socket shared by both: a shared socket is one accept queue that
// the colour being brought up drains from the moment it starts, before its
// gate; two sockets in one SO_REUSEPORT group can be steered (see
// internal/reuseport), so the new colour gets no connection until it passes.

func serviceUnit(name string, c Colour) string { return name + "-" + string(c) + ".service" }
func socketUnit(name string, c Colour, sock string) string {
	return name + "-" + string(c) + "-" + sock + ".socket"
}

// socketUnits are the socket units of one colour, in the order of sockets.
func socketUnits(c *config, col Colour) []string {
	out := make([]string, len(c.sockets))
	for i, so := range c.sockets {
		out[i] = socketUnit(c.name, col, so.name)
	}
	return out
}

// marker starts the first line of every file the module writes; it
// overwrites, stops or removes no unit file without it (D16).
const marker = "# Managed by chezlepro.sovereign.bluegreen_unit"

const header = marker + ": changes made here are overwritten.\n"

// ours reports whether a file's content was written by this module.
func ours(content string) bool { return strings.HasPrefix(content, marker) }

// escapeSpecifiers doubles '%' so systemd does not expand specifiers.
func escapeSpecifiers(s string) string { return strings.ReplaceAll(s, "%", "%%") }

// quoteWord renders one word of a command line or list setting so that
// systemd reads back exactly s: C escapes and quotes undone, no specifier
// and (when dollar is true) no $VARIABLE expansion.
func quoteWord(s string, dollar bool) string {
	var b strings.Builder
	needQuotes := s == ""
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
			needQuotes = true
		case '%':
			b.WriteString("%%")
		case '$':
			if dollar {
				b.WriteString("$$")
			} else {
				b.WriteRune(r)
			}
		case ' ', '\t', '\'', ';':
			b.WriteRune(r)
			needQuotes = true
		default:
			b.WriteRune(r)
		}
	}
	if needQuotes {
		return `"` + b.String() + `"`
	}
	return b.String()
}

func execLine(argv []string) string {
	words := make([]string, len(argv))
	for i, a := range argv {
		words[i] = quoteWord(a, true)
	}
	return strings.Join(words, " ")
}

// envAssignment renders Environment="KEY=VALUE" with VALUE read back
// literally.
func envAssignment(k, v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "%", "%%")
	return `"` + k + "=" + r.Replace(v) + `"`
}

func secondsValue(d time.Duration) string {
	ms := d.Milliseconds()
	if ms%1000 == 0 {
		return fmt.Sprintf("%ds", ms/1000)
	}
	return fmt.Sprintf("%dms", ms)
}

var protectSystem = map[string]string{"strict": "strict", "full": "full", "basic": "yes", "off": "no"}
var protectHome = map[string]string{"hidden": "yes", "read-only": "read-only", "tmpfs": "tmpfs", "off": "no"}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

type unitWriter struct{ b strings.Builder }

func (w *unitWriter) line(format string, a ...any) { fmt.Fprintf(&w.b, format+"\n", a...) }
func (w *unitWriter) kv(k, v string)               { w.line("%s=%s", k, v) }

// renderService renders the unit of one colour. It is pure: the same config
// gives the same bytes, so comparing with the file on disk decides change.
func renderService(c *config, col Colour) string {
	cc := c.colour[col]
	s := c.service
	var w unitWriter
	w.b.WriteString(header)
	w.line("# Service %s, colour %s, strategy %s.", c.name, col, c.strategy)
	w.line("")
	w.line("[Unit]")
	w.kv("Description", escapeSpecifiers(fmt.Sprintf("%s (%s)", s.description, col)))
	w.kv("After", strings.Join(append([]string{"network.target"}, socketUnits(c, col)...), " "))
	w.line("")
	w.line("[Service]")
	w.kv("Type", s.serviceType)
	w.kv("ExecStart", execLine(cc.command))
	if len(c.sockets) > 0 {
		w.kv("Sockets", strings.Join(socketUnits(c, col), " "))
	}
	for _, kv := range cc.environment {
		w.kv("Environment", envAssignment(kv[0], kv[1]))
	}
	for _, f := range cc.environmentFiles {
		w.kv("EnvironmentFile", escapeSpecifiers(f))
	}
	for _, cr := range cc.credentials {
		w.kv("LoadCredential", cr[0]+":"+escapeSpecifiers(cr[1]))
	}
	if s.user != "" {
		w.kv("User", s.user)
	}
	if s.group != "" {
		w.kv("Group", s.group)
	}
	if cc.workingDirectory != "" {
		w.kv("WorkingDirectory", escapeSpecifiers(cc.workingDirectory))
	}
	w.kv("Restart", s.restart)
	w.kv("RestartSec", secondsValue(s.restartSec))
	w.kv("TimeoutStartSec", secondsValue(s.startTimeout))
	w.kv("TimeoutStopSec", secondsValue(s.drainTimeout))
	writeHardening(&w, s, cc.readWritePaths)
	for _, kv := range cc.serviceOptions {
		w.kv(kv[0], kv[1])
	}
	w.line("")
	w.line("[Install]")
	w.kv("WantedBy", "multi-user.target")
	return w.b.String()
}

// writeSyscallFilter writes the allowed sets on one line and the denied
// ones (given with ~) on another, since a leading ~ applies to a whole
// line; a blocked call fails with EPERM rather than killing the service.
func writeSyscallFilter(w *unitWriter, filter []string) {
	if len(filter) == 0 {
		return
	}
	var allow, deny []string
	for _, f := range filter {
		if d, ok := strings.CutPrefix(f, "~"); ok {
			deny = append(deny, d)
		} else {
			allow = append(allow, f)
		}
	}
	w.kv("SystemCallArchitectures", "native")
	if len(allow) > 0 {
		w.kv("SystemCallFilter", strings.Join(allow, " "))
	}
	if len(deny) > 0 {
		w.kv("SystemCallFilter", "~"+strings.Join(deny, " "))
	}
	w.kv("SystemCallErrorNumber", "EPERM")
}

// renderSocket renders one colour's socket. Both colours' sockets bind the
// same addresses with ReusePort=yes; only the active colour's is enabled,
// and Service= starts that colour if a connection arrives while it is down.
func renderSocket(c *config, so socketConfig, col Colour) string {
	var w unitWriter
	w.b.WriteString(header)
	w.line("# Socket %s of service %s, colour %s (each colour has its own, in one SO_REUSEPORT group).", so.name, c.name, col)
	w.line("")
	w.line("[Unit]")
	w.kv("Description", escapeSpecifiers(fmt.Sprintf("%s socket %s (%s)", c.service.description, so.name, col)))
	w.line("")
	w.line("[Socket]")
	for _, l := range so.listen {
		w.kv("ListenStream", l)
	}
	w.kv("ReusePort", "yes")
	w.kv("FileDescriptorName", so.name)
	w.kv("Service", serviceUnit(c.name, col))
	if so.backlog > 0 {
		w.kv("Backlog", fmt.Sprint(so.backlog))
	}
	w.line("")
	w.line("[Install]")
	w.kv("WantedBy", "sockets.target")
	return w.b.String()
}

// writeHardening writes the service's sandboxing: the hardening options,
// the capabilities it keeps, and the paths it may write.
func writeHardening(w *unitWriter, s serviceConfig, readWritePaths []string) {
	h := s.hardening
	w.kv("NoNewPrivileges", yesNo(h.NoNewPrivileges))
	w.kv("ProtectSystem", protectSystem[h.ProtectSystem])
	w.kv("ProtectHome", protectHome[h.ProtectHome])
	w.kv("PrivateTmp", yesNo(h.PrivateTmp))
	if h.ProtectKernel {
		w.kv("ProtectKernelTunables", "yes")
		w.kv("ProtectKernelModules", "yes")
		w.kv("ProtectKernelLogs", "yes")
		w.kv("ProtectControlGroups", "yes")
	}
	for _, b := range []struct {
		key string
		on  bool
	}{
		{"PrivateDevices", h.PrivateDevices}, {"ProtectClock", h.ProtectClock}, {"ProtectHostname", h.ProtectHostname},
		{"RestrictNamespaces", h.RestrictNamespaces}, {"RestrictSUIDSGID", h.RestrictSUIDSGID},
		{"RestrictRealtime", h.RestrictRealtime}, {"LockPersonality", h.LockPersonality},
		{"MemoryDenyWriteExecute", h.MemoryDenyWriteExecute},
	} {
		if b.on {
			w.kv(b.key, "yes")
		}
	}
	if h.ProtectProc != "" && h.ProtectProc != "default" {
		w.kv("ProtectProc", h.ProtectProc)
	}
	if len(h.AddressFamilies) > 0 {
		w.kv("RestrictAddressFamilies", strings.Join(h.AddressFamilies, " "))
	}
	writeSyscallFilter(w, h.SystemCallFilter)
	caps := strings.Join(h.Capabilities, " ")
	w.kv("CapabilityBoundingSet", caps)
	if caps != "" && s.user != "" && s.user != "root" && s.user != "0" {
		// A service running as a user only holds capabilities it is given
		// as ambient ones.
		w.kv("AmbientCapabilities", caps)
	}
	if len(readWritePaths) > 0 {
		paths := make([]string, len(readWritePaths))
		for i, p := range readWritePaths {
			paths[i] = escapeSpecifiers(p)
		}
		w.kv("ReadWritePaths", strings.Join(paths, " "))
	}
}
