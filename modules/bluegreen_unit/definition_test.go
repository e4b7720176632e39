package main

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

// Rollback as root: rollback, flip and query with only name reuse the
// definition recorded at the last apply, user and service type included.
func TestModuleActionsWithOnlyNameReuseTheRecordedDefinition(t *testing.T) {
	h := newHarness(t)
	h.mustOK(h.run(args(map[string]any{"active": "blue", "user": "webapp"})))
	h.mustOK(h.run(args(map[string]any{"active": "green", "user": "webapp"})))
	blue, green := h.unitFile("webapp-blue.service"), h.unitFile("webapp-green.service")

	for _, step := range []struct{ action, active string }{{"rollback", "blue"}, {"flip", "green"}} {
		r := h.run(map[string]any{"name": "webapp", "action": step.action})
		h.mustOK(r)
		if r.str("active") != step.active || r.str("action") != step.action {
			t.Fatalf("%s with only name: %v", step.action, r)
		}
		if h.unitFile("webapp-blue.service") != blue || h.unitFile("webapp-green.service") != green {
			t.Fatalf("%s with only name rewrote the units:\n%s", step.action, h.unitFile("webapp-blue.service"))
		}
	}
	if !strings.Contains(blue, "\nUser=webapp\n") || !strings.Contains(blue, "\nType=notify\n") {
		t.Fatalf("units lost the user or type:\n%s", blue)
	}
	q := h.run(map[string]any{"name": "webapp", "state": "query"})
	h.mustOK(q)
	if q.str("active") != "green" {
		t.Fatalf("query: %v", q)
	}
	if fi, err := os.Stat(statePath(h.env.stateDir, "webapp")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file (it records environment values) must be 0600: %v %v", fi.Mode(), err)
	}
}

// A definition that drops user is refused before anything changes; one that
// names another user is applied and the diff shows it.
func TestModuleDefinitionDroppingUserIsRefused(t *testing.T) {
	h := newHarness(t)
	h.mustOK(h.run(args(map[string]any{"active": "blue", "user": "webapp"})))
	before := h.unitFile("webapp-blue.service")
	h.fake.Reset()

	r := h.run(args(map[string]any{"action": "flip"}))
	if !r.bool("failed") || !strings.Contains(r.str("msg"), `runs webapp as user "webapp"`) || !strings.Contains(r.str("msg"), "user: root") {
		t.Fatalf("a definition without user was not refused: %v", r)
	}
	r = h.run(args(map[string]any{"active": "green"}))
	if !r.bool("failed") || h.unitFile("webapp-blue.service") != before || len(h.fake.Mutating()) != 0 {
		t.Fatalf("a definition without user changed something: %v %q", r, h.fake.Calls)
	}
	r = h.run(map[string]any{"name": "webapp", "active": "green", "user": "other"})
	if !r.bool("failed") || !strings.Contains(r.str("msg"), "in full") {
		t.Fatalf("a partial definition was not refused: %v", r)
	}

	r = h.run(args(map[string]any{"active": "blue", "user": "root"}), "diff")
	h.mustOK(r)
	if !strings.Contains(h.unitFile("webapp-blue.service"), "\nUser=root\n") || !strings.Contains(diffText(r), "User=webapp") {
		t.Fatalf("explicit user change not applied or not in the diff: %v", r["diff"])
	}
}

func diffText(r result) string {
	var b strings.Builder
	switch d := r["diff"].(type) {
	case []any:
		for _, e := range d {
			m, _ := e.(map[string]any)
			b.WriteString(m["before"].(string) + m["after"].(string))
		}
	case map[string]any:
		b.WriteString(d["before"].(string) + d["after"].(string))
	}
	return b.String()
}

// Records written before the options had json tags are keyed by Go field
// name, and hold a null hardening when the task gave none: they read back
// whole, the hardening being the defaults the controller applied to this task.
func TestDefinitionRecordedByEarlierVersions(t *testing.T) {
	legacy := `{"Name":"","State":"","Active":"","Action":"","Strategy":"socket","Command":["/opt/w/{colour}/w"],
		"Description":"web","ServiceType":"notify","User":"webapp","Group":"","WorkingDirectory":"/srv/w",
		"Environment":{"A":"1"},"EnvironmentFiles":["/etc/w.env"],"Credentials":[{"Name":"tls","Path":"/etc/w.pem"}],
		"Restart":"always","RestartSec":2,"StartTimeout":90,"DrainTimeout":30,"Hardening":null,
		"ServiceOptions":{"LimitNOFILE":"65536"},"Sockets":[{"Name":"http","Listen":["8080"],"Backlog":128}],
		"ColourVars":{"Blue":{"port":9001},"Green":{"port":9002}},
		"Health":{"URL":"http://127.0.0.1:{port}/","Status":200,"BodyRegex":"ok","Address":"","Command":null,
			"Interval":0.5,"Timeout":30,"AttemptTimeout":2,"Successes":3},
		"KeepWarm":false,"StopDelay":0,"ReuseportMigrate":true,"ReuseportSteer":true,
		"LockTimeout":0,"HistorySize":0,"JournalLines":0,"MetricsDir":""}`
	given := &Options{Name: "webapp", State: "present", Action: "rollback", Hardening: defaultHardening(),
		LockTimeout: 60, HistorySize: 20, JournalLines: 30}
	got, err := effectiveOptions(given, json.RawMessage(legacy))
	if err != nil {
		t.Fatal(err)
	}
	if got.WorkingDirectory != "/srv/w" || got.ServiceType != "notify" || got.RestartSec != 2 || got.User != "webapp" ||
		len(got.EnvironmentFiles) != 1 || len(got.Credentials) != 1 || got.Credentials[0].Path != "/etc/w.pem" ||
		len(got.Sockets) != 1 || got.Sockets[0].Backlog == nil || *got.Sockets[0].Backlog != 128 ||
		got.ColourVars == nil || got.ColourVars.Green["port"] != 9002.0 || got.Health == nil || got.Health.BodyRegex != "ok" ||
		got.ServiceOptions["LimitNOFILE"] != "65536" || !got.ReuseportSteer || got.Action != "rollback" {
		t.Fatalf("legacy record read as %+v", got)
	}
	if got.Hardening != given.Hardening {
		t.Fatalf("a record without hardening must take the task's (the defaults): %+v", got.Hardening)
	}

	// A record of this version reads back the same.
	rec, err := definitionOf(got)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rec), `"working_directory":"/srv/w"`) {
		t.Fatalf("records are keyed by option name: %s", rec)
	}
	again, err := effectiveOptions(given, rec)
	if err != nil || !reflect.DeepEqual(again, got) {
		t.Fatalf("round trip:\n got %+v\nwant %+v (%v)", again, got, err)
	}
}
