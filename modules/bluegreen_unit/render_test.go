package main

import (
	"strings"
	"testing"
	"time"
)

func TestQuoteWord(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"--port", "--port"},
		{"", `""`},
		{"a b", `"a b"`},
		{`say "hi"`, `"say \"hi\""`},
		{`C:\path`, `C:\\path`},
		{"100%", "100%%"},
		{"$HOME", "$$HOME"},
		{"${X}", "$${X}"},
		{"it's", `"it's"`},
		{"a;b", `"a;b"`},
		{"tab\there", "\"tab\there\""},
	} {
		if got := quoteWord(tc.in, true); got != tc.want {
			t.Errorf("quoteWord(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestEnvAssignment(t *testing.T) {
	for _, tc := range []struct{ k, v, want string }{
		{"A", "plain", `"A=plain"`},
		{"A", "with space", `"A=with space"`},
		{"A", `q"uote`, `"A=q\"uote"`},
		{"A", `back\slash`, `"A=back\\slash"`},
		{"A", "50%", `"A=50%%"`},
		{"A", "$NOT_EXPANDED", `"A=$NOT_EXPANDED"`},
	} {
		if got := envAssignment(tc.k, tc.v); got != tc.want {
			t.Errorf("envAssignment(%q, %q) = %s, want %s", tc.k, tc.v, got, tc.want)
		}
	}
}

func TestSecondsValue(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0s", time.Second: "1s", 1500 * time.Millisecond: "1500ms", 90 * time.Second: "90s"} {
		if got := secondsValue(d); got != want {
			t.Errorf("%s: %s want %s", d, got, want)
		}
	}
}

func TestRenderServiceFull(t *testing.T) {
	o := baseOptions()
	o.Description = "Demo web app 100%"
	o.User, o.Group = "webapp", "webapp"
	o.WorkingDirectory = "/opt/webapp/{colour}"
	o.Environment = map[string]any{"COLOUR": "{colour}", "GREETING": `hello "world"`}
	o.EnvironmentFiles = []string{"-/etc/webapp/{colour}.env"}
	o.Hardening = &Hardening{NoNewPrivileges: true, ProtectSystem: "strict", ProtectHome: "read-only", PrivateTmp: true, ProtectKernel: true,
		Capabilities: []string{"CAP_NET_BIND_SERVICE"}, ReadWritePaths: []string{"/var/lib/webapp"}}
	o.ServiceOptions = map[string]any{"LimitNOFILE": int64(65536)}
	got := renderService(mustConfig(t, o), Green)
	want := `# Managed by chezlepro.sovereign.bluegreen_unit: changes made here are overwritten.
# Service webapp, colour green, strategy socket.

[Unit]
Description=Demo web app 100%% (green)
After=network.target webapp-green-http.socket

[Service]
Type=notify
ExecStart=/opt/webapp/green/webapp --colour green --health-listen 127.0.0.1:9002
Sockets=webapp-green-http.socket
Environment="COLOUR=green"
Environment="GREETING=hello \"world\""
EnvironmentFile=-/etc/webapp/green.env
User=webapp
Group=webapp
WorkingDirectory=/opt/webapp/green
Restart=on-failure
RestartSec=1s
TimeoutStartSec=90s
TimeoutStopSec=30s
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
AmbientCapabilities=CAP_NET_BIND_SERVICE
ReadWritePaths=/var/lib/webapp
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
`
	if got != want {
		t.Fatalf("rendered:\n%s\nwant:\n%s", got, want)
	}
}

func TestRenderServiceDefaultsAndRelaxed(t *testing.T) {
	o := baseOptions()
	o.Strategy, o.Sockets = "reuseport", nil
	o.ServiceType = "simple"
	c := mustConfig(t, o)
	got := renderService(c, Blue)
	for _, line := range []string{
		"After=network.target\n", "Type=simple\n", "NoNewPrivileges=yes\n", "ProtectSystem=strict\n", "ProtectHome=yes\n",
		"PrivateTmp=yes\n", "ProtectKernelTunables=yes\n", "CapabilityBoundingSet=\n",
		"ProtectKernelLogs=yes\n", "PrivateDevices=yes\n", "ProtectClock=yes\n", "ProtectHostname=yes\n",
		"RestrictNamespaces=yes\n", "RestrictSUIDSGID=yes\n", "RestrictRealtime=yes\n", "LockPersonality=yes\n",
		"MemoryDenyWriteExecute=yes\n", "ProtectProc=invisible\n", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n",
		"SystemCallArchitectures=native\n", "SystemCallFilter=@system-service\n", "SystemCallFilter=~@privileged @resources\n",
		"SystemCallErrorNumber=EPERM\n",
	} {
		if !strings.Contains(got, line) {
			t.Errorf("default unit lacks %q:\n%s", line, got)
		}
	}
	for _, absent := range []string{"Sockets=", "AmbientCapabilities", "User=", "ReadWritePaths"} {
		if strings.Contains(got, absent) {
			t.Errorf("default unit has %q", absent)
		}
	}
	o.Hardening = &Hardening{ProtectSystem: "off", ProtectHome: "off"}
	relaxed := renderService(mustConfig(t, o), Blue)
	for _, line := range []string{"NoNewPrivileges=no\n", "ProtectSystem=no\n", "ProtectHome=no\n", "PrivateTmp=no\n"} {
		if !strings.Contains(relaxed, line) {
			t.Errorf("relaxed unit lacks %q", line)
		}
	}
	for _, absent := range []string{"ProtectKernel", "PrivateDevices", "ProtectClock", "ProtectHostname", "ProtectProc", "Restrict",
		"LockPersonality", "MemoryDenyWriteExecute", "SystemCall"} {
		if strings.Contains(relaxed, absent) {
			t.Errorf("relaxed hardening still writes %s", absent)
		}
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	o := baseOptions()
	o.Environment = map[string]any{"Z": "1", "A": "2", "M": "3"}
	o.ServiceOptions = map[string]any{"LimitNOFILE": "1024", "CPUQuota": "50%"}
	first := renderService(mustConfig(t, o), Blue)
	for i := 0; i < 20; i++ {
		if renderService(mustConfig(t, o), Blue) != first {
			t.Fatal("rendering depends on map order")
		}
	}
}

// Injection attempts that pass validation (they have no newline) must still
// come out as one literal value.
func TestRenderKeepsHostileValuesLiteral(t *testing.T) {
	o := baseOptions()
	o.Command = []string{"/opt/webapp/{colour}/webapp", `--x=" ; /bin/sh -c 'id'`, "%n", "$PATH"}
	o.Environment = map[string]any{"A": `" Environment="B=1`}
	got := renderService(mustConfig(t, o), Blue)
	if !strings.Contains(got, `ExecStart=/opt/webapp/blue/webapp "--x=\" ; /bin/sh -c 'id'" %%n $$PATH`+"\n") {
		t.Errorf("ExecStart not quoted:\n%s", got)
	}
	if !strings.Contains(got, `Environment="A=\" Environment=\"B=1"`+"\n") {
		t.Errorf("Environment not quoted:\n%s", got)
	}
}

func TestRenderSocket(t *testing.T) {
	o := baseOptions()
	backlog := 4096
	o.Sockets = []Socket{{Name: "web", Listen: []string{"0.0.0.0:80", "[::]:80"}, Backlog: &backlog}}
	c := mustConfig(t, o)
	got := renderSocket(c, c.sockets[0], Green)
	want := `# Managed by chezlepro.sovereign.bluegreen_unit: changes made here are overwritten.
# Socket web of service webapp, colour green (each colour has its own, in one SO_REUSEPORT group).

[Unit]
Description=webapp socket web (green)

[Socket]
ListenStream=0.0.0.0:80
ListenStream=[::]:80
ReusePort=yes
FileDescriptorName=web
Service=webapp-green.service
Backlog=4096

[Install]
WantedBy=sockets.target
`
	if got != want {
		t.Fatalf("rendered:\n%s\nwant:\n%s", got, want)
	}
}

// Secrets go to the service as systemd credentials, not as environment
// values anyone can read with systemctl show.
func TestRenderCredentials(t *testing.T) {
	o := baseOptions()
	o.Credentials = []Credential{{Name: "db-password", Path: "/etc/webapp/{colour}/db-password"}}
	got := renderService(mustConfig(t, o), Green)
	if !strings.Contains(got, "\nLoadCredential=db-password:/etc/webapp/green/db-password\n") {
		t.Fatalf("no LoadCredential line:\n%s", got)
	}
	for _, bad := range []Credential{{Name: "a:b", Path: "/x"}, {Name: "ok", Path: "relative"}, {Name: "ok", Path: "/a/../b"}, {Name: "", Path: "/x"}} {
		o.Credentials = []Credential{bad}
		if _, err := newConfig(o); err == nil {
			t.Errorf("credential %+v accepted", bad)
		}
	}
	o.Credentials = nil
	o.ServiceOptions = map[string]any{"LoadCredential": "x:/y"}
	if _, err := newConfig(o); err == nil || !strings.Contains(err.Error(), "use the credentials option") {
		t.Errorf("LoadCredential in service_options: %v", err)
	}
}
