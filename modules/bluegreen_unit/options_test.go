package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chezlepro/sovereign/internal/ansible/ansibletest"
	"github.com/chezlepro/sovereign/internal/health"
)

// baseOptions is a valid socket-strategy configuration with every default
// the runtime would fill in.
func baseOptions() *Options {
	return &Options{
		Name: "webapp", State: "present", Strategy: "socket",
		Command:     []string{"/opt/webapp/{colour}/webapp", "--colour", "{colour}", "--health-listen", "127.0.0.1:{health_port}"},
		ServiceType: "notify", Restart: "on-failure", RestartSec: 1, StartTimeout: 90, DrainTimeout: 30,
		Sockets: []Socket{{Name: "http", Listen: []string{"0.0.0.0:8080"}}},
		ColourVars: &ColourVars{
			Blue:  map[string]any{"health_port": int64(9001)},
			Green: map[string]any{"health_port": int64(9002)},
		},
		Health:           &Health{URL: "http://127.0.0.1:{health_port}/healthz", Status: 200, Interval: 0.5, Timeout: 30, AttemptTimeout: 2, Successes: 3},
		ReuseportMigrate: true, LockTimeout: 60, HistorySize: 20, JournalLines: 30,
		Hardening: defaultHardening(),
	}
}

func mustConfig(t *testing.T, o *Options) *config {
	t.Helper()
	c, err := newConfig(o)
	if err != nil {
		t.Fatalf("newConfig: %v", err)
	}
	return c
}

func TestConfigSubstitutesPerColour(t *testing.T) {
	o := baseOptions()
	o.Environment = map[string]any{"COLOUR": "{colour}", "PORT": int64(8080), "DEBUG": false, "RATIO": 0.5}
	o.WorkingDirectory = "/opt/webapp/{colour}"
	o.EnvironmentFiles = []string{"-/etc/webapp/{colour}.env"}
	o.Hardening = &Hardening{ProtectSystem: "strict", ProtectHome: "hidden", ReadWritePaths: []string{"/var/lib/webapp/{colour}"}}
	o.Health.BodyRegex = `^ok .*colour={colour} x{2}`
	c := mustConfig(t, o)
	g := c.colour[Green]
	if re := g.gate.Check.BodyRegex.String(); re != `^ok .*colour=green x{2}` {
		t.Errorf("green body_regex %q", re)
	}
	if want := []string{"/opt/webapp/green/webapp", "--colour", "green", "--health-listen", "127.0.0.1:9002"}; !reflect.DeepEqual(g.command, want) {
		t.Errorf("green command %q", g.command)
	}
	if want := [][2]string{{"COLOUR", "green"}, {"DEBUG", "false"}, {"PORT", "8080"}, {"RATIO", "0.5"}}; !reflect.DeepEqual(g.environment, want) {
		t.Errorf("green env %q", g.environment)
	}
	if g.workingDirectory != "/opt/webapp/green" || g.environmentFiles[0] != "-/etc/webapp/green.env" || g.readWritePaths[0] != "/var/lib/webapp/green" {
		t.Errorf("paths: %+v", g)
	}
	if c.colour[Blue].gate.Check.URL != "http://127.0.0.1:9001/healthz" || c.colour[Blue].gate.Check.Kind != health.HTTP {
		t.Errorf("blue gate %+v", c.colour[Blue].gate.Check)
	}
	if c.colour[Blue].gate.Interval != 500*time.Millisecond || c.colour[Blue].gate.Successes != 3 {
		t.Errorf("gate timing %+v", c.colour[Blue].gate)
	}
}

func TestConfigRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(o *Options)
		want string
	}{
		{"name with slash", func(o *Options) { o.Name = "../etc" }, `name "../etc" is not a valid service name`},
		{"name with space", func(o *Options) { o.Name = "web app" }, "is not a valid service name"},
		{"name with newline", func(o *Options) { o.Name = "web\napp" }, "is not a valid service name"},
		{"name with template @", func(o *Options) { o.Name = "web@1" }, "is not a valid service name"},
		{"name dot-dot", func(o *Options) { o.Name = "a..b" }, "is not a valid service name"},
		{"bad colour", func(o *Options) { o.Active = "red" }, `colour "red": must be blue or green`},
		{"relative binary", func(o *Options) { o.Command[0] = "webapp" }, `command[0] "webapp" must be an absolute path`},
		{"escaping binary", func(o *Options) { o.Command[0] = "/opt/webapp/../../bin/sh" }, `must not contain ".." components`},
		{"escaping through a var", func(o *Options) {
			o.Command[0] = "/opt/{d}/webapp"
			o.ColourVars.Blue["d"] = "../x"
			o.ColourVars.Green["d"] = "g"
		}, `command[0] "/opt/../x/webapp" must not contain ".." components (colour blue)`},
		{"unclean path", func(o *Options) { o.WorkingDirectory = "/opt//webapp/" }, "is not a clean path"},
		{"relative working dir", func(o *Options) { o.WorkingDirectory = "opt" }, "working_directory \"opt\" must be an absolute path"},
		{"path with space", func(o *Options) { o.EnvironmentFiles = []string{"/etc/a b"} }, "must not contain spaces or quotes"},
		{"newline in env value", func(o *Options) { o.Environment = map[string]any{"A": "x\nExecStartPre=/bin/evil"} }, "environment.A contains a control character"},
		{"newline in argument", func(o *Options) { o.Command = append(o.Command, "a\n[Service]") }, "command[5] contains a control character"},
		{"carriage return in description", func(o *Options) { o.Description = "a\rb" }, "description contains a control character"},
		{"trailing backslash", func(o *Options) { o.Description = `web\` }, "ends with a backslash"},
		{"newline in colour var", func(o *Options) { o.ColourVars.Green["health_port"] = "1\nUser=root" }, "colour_vars.green.health_port contains a control character"},
		{"bad env key", func(o *Options) { o.Environment = map[string]any{"A B": "x"} }, `environment key "A B" is not a variable name`},
		{"list env value", func(o *Options) { o.Environment = map[string]any{"A": []any{"x"}} }, "environment.A must be a string, number or boolean"},
		{"unknown placeholder", func(o *Options) { o.Command = append(o.Command, "{colur}") }, "command[5] uses unknown placeholder {colur} (known: {colour}, {health_port}, {name}, {other})"},
		{"lone semicolon", func(o *Options) { o.Command = append(o.Command, ";", "/bin/evil") }, "lone ';'"},
		{"bad user", func(o *Options) { o.User = "root\nGroup=0" }, "is not a valid user or group name"},
		{"bad capability", func(o *Options) {
			o.Hardening = defaultHardening()
			o.Hardening.Capabilities = []string{"net_admin"}
		}, "is not a capability name"},
		{"managed key in service_options", func(o *Options) { o.ServiceOptions = map[string]any{"ExecStartPre": "/bin/true", "User": "root"} }, "service_options may not set User: use the user option"},
		{"bad service_options key", func(o *Options) { o.ServiceOptions = map[string]any{"exec start": "x"} }, "is not a systemd directive name"},
		{"newline in service_options", func(o *Options) { o.ServiceOptions = map[string]any{"LimitNOFILE": "1\nUser=root"} }, "service_options.LimitNOFILE contains a control character"},
		{"no command", func(o *Options) { o.Command = nil }, "command is required with state=present"},
		{"no health", func(o *Options) { o.Health = nil }, "health is required with state=present"},
		{"two health checks", func(o *Options) { o.Health.Address = "127.0.0.1:1" }, "exactly one of url, address or command"},
		{"bad health url", func(o *Options) { o.Health.URL = "127.0.0.1/healthz" }, "must start with http://"},
		{"bad regex", func(o *Options) { o.Health.BodyRegex = "(" }, "health.body_regex"},
		{"relative health command", func(o *Options) { o.Health.URL = ""; o.Health.Command = []string{"curl"} }, "must be an absolute path"},
		{"zero successes", func(o *Options) { o.Health.Successes = 0 }, "at least 1"},
		{"socket without sockets", func(o *Options) { o.Sockets = nil }, "strategy socket needs sockets"},
		{"sockets with reuseport", func(o *Options) { o.Strategy = "reuseport" }, "sockets only apply to strategy socket"},
		{"bad listen", func(o *Options) { o.Sockets[0].Listen = []string{"0.0.0.0:99999"} }, "the port must be 1-65535"},
		{"listen host name", func(o *Options) { o.Sockets[0].Listen = []string{"example.com:80"} }, "the address must be numeric"},
		{"listen newline", func(o *Options) { o.Sockets[0].Listen = []string{"80\nExecStartPre=/x"} }, "contains a control character"},
		{"bad socket name", func(o *Options) { o.Sockets[0].Name = "a:b" }, "sockets[0].name \"a:b\" is not valid"},
		{"duplicate socket", func(o *Options) { o.Sockets = append(o.Sockets, o.Sockets[0]) }, "is given twice"},
		{"keep_warm exclusive", func(o *Options) { o.Strategy = "exclusive"; o.Sockets = nil; o.KeepWarm = true }, "keep_warm cannot be used with strategy exclusive"},
		{"negative drain", func(o *Options) { o.DrainTimeout = -1 }, "drain_timeout must be between 0 and 86400"},
		{"builtin colour var", func(o *Options) { o.ColourVars.Blue["colour"] = "x" }, "is built in and cannot be set"},
		{"active with query", func(o *Options) { o.State = "query"; o.Active = "blue" }, "only apply to state=present"},
		// D19: TimeoutSec= sets both timeouts the module owns.
		{"TimeoutSec in service_options", func(o *Options) { o.ServiceOptions = map[string]any{"TimeoutSec": "3"} }, "service_options may not set TimeoutSec: use the start_timeout and drain_timeout options"},
		// D17: systemd cannot load a unit with a 2 MB line; execve refuses a
		// variable longer than 128 KiB.
		{"2 MB environment value", func(o *Options) { o.Environment = map[string]any{"BIG": strings.Repeat("x", 2<<20)} }, "environment.BIG is 2097152 bytes"},
		{"200 KiB argument", func(o *Options) { o.Command = append(o.Command, strings.Repeat("x", 200<<10)) }, "command[5] is 204800 bytes"},
		// Validation that used to wait until gate time.
		{"health address port out of range", func(o *Options) { o.Health.URL = ""; o.Health.Address = "127.0.0.1:99999" }, `health address "127.0.0.1:99999": the port must be 1-65535`},
		{"health address without port", func(o *Options) { o.Health.URL = ""; o.Health.Address = "127.0.0.1:" }, "the port must be 1-65535"},
		{"health url without host", func(o *Options) { o.Health.URL = "http://" }, `health url "http://" has no host`},
		{"health url unparsable", func(o *Options) { o.Health.URL = "http://[::1" }, `health url "http://[::1"`},
		{"health url bad port", func(o *Options) { o.Health.URL = "http://127.0.0.1:99999/x" }, "the port must be 1-65535"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := baseOptions()
			tc.mod(o)
			_, err := newConfig(o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant an error containing %q", err, tc.want)
			}
		})
	}
}

func TestQueryNeedsNoServiceOptions(t *testing.T) {
	c, err := newConfig(&Options{Name: "webapp", State: "query", Strategy: "socket", HistorySize: 20, JournalLines: 30, LockTimeout: 60})
	if err != nil || c.state != "query" {
		t.Fatalf("%v", err)
	}
}

// defaultHardening is the hardening a task gets when it gives none: the
// sidecar's defaults, applied by the controller's validator.
func defaultHardening() *Hardening {
	var o Options
	if err := ansibletest.Defaults("bluegreen_unit", map[string]any{"name": "x"}, &o); err != nil {
		panic(err)
	}
	return o.Hardening
}

func TestCheckListen(t *testing.T) {
	for l, ok := range map[string]bool{
		"8080": true, "0.0.0.0:80": true, "[::]:443": true, "127.0.0.1:0": false, "[::1:80": false,
		":80": false, "80x": false, "10.0.0.1:http": false,
	} {
		if err := checkListen("l", l); (err == nil) != ok {
			t.Errorf("%q: %v", l, err)
		}
	}
}
