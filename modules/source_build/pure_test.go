package main

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseLsRemote(t *testing.T) {
	out := "aaaa\trefs/heads/main\nbbbb\trefs/tags/v1\ncccc\trefs/tags/v1^{}\ndddd\trefs/tags/light\neeee\trefs/heads/v1\n"
	cases := []struct {
		version              string
		kind, object, commit string
		warn                 bool
	}{
		{"v1", kindTag, "bbbb", "cccc", true},
		{"light", kindTag, "dddd", "dddd", false},
		{"main", kindBranch, "aaaa", "aaaa", false},
		{"refs/heads/v1", kindBranch, "eeee", "eeee", false},
		{"refs/tags/v1", kindTag, "bbbb", "cccc", false},
	}
	for _, c := range cases {
		r, w, err := parseLsRemote(c.version, out)
		if err != nil {
			t.Fatalf("%s: %v", c.version, err)
		}
		if r.Kind != c.kind || r.Object != c.object || r.Commit != c.commit || (len(w) > 0) != c.warn {
			t.Errorf("%s: got %+v warnings %v", c.version, r, w)
		}
	}
	if _, _, err := parseLsRemote("nope", out); !errors.Is(err, ErrUnknownVersion) {
		t.Errorf("unknown version: %v", err)
	}
}

func TestParseStatusZ(t *testing.T) {
	got := parseStatusZ(" M main.go\x00?? new.txt\x00R  b.go\x00a.go\x00")
	want := []string{"M main.go", "?? new.txt", "R b.go"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}
	if len(parseStatusZ("")) != 0 {
		t.Fatal("clean tree must give no entries")
	}
}

func validOptions() *Options {
	return &Options{
		Repo: "git://forge/traefik.git", Version: "v1", Dest: "/src/traefik/blue", Store: "/var/lib/builds",
		Update: true, Verify: "none", Package: ".", Ldflags: defaultLdflags, Timeout: 60, Offline: true,
		Isolation: "auto", Keep: 5, LockTimeout: 1,
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name   string
		change func(o *Options)
		want   string // "" = valid
	}{
		{"defaults", func(o *Options) {}, ""},
		{"relative dest", func(o *Options) { o.Dest = "src" }, "dest must be an absolute path"},
		{"option-like repo", func(o *Options) { o.Repo = "--upload-pack=touch /tmp/x" }, "must not start with '-'"},
		{"store in dest", func(o *Options) { o.Store = "/src/traefik/blue/out" }, "must not be inside the work tree"},
		{"bad version", func(o *Options) { o.Version = "v1 --upload-pack=x" }, "not a valid tag"},
		{"option-like version", func(o *Options) { o.Version = "--all" }, "not a valid tag"},
		{"chdir escapes", func(o *Options) { o.Chdir = "../green" }, "chdir must be a path inside"},
		{"command without artifacts", func(o *Options) { o.Command = []string{"make", "binary"} }, "needs artifacts"},
		{"artifacts with go recipe", func(o *Options) { o.Artifacts = []string{"x"} }, "artifacts is only for a command recipe"},
		{"go options with command", func(o *Options) {
			o.Command, o.Artifacts, o.Tags = []string{"make"}, []string{"dist/x"}, []string{"netgo"}
		}, "tags only apply to the Go recipe"},
		{"same artifact names", func(o *Options) {
			o.Command, o.Artifacts = []string{"make"}, []string{"a/x", "b/x"}
		}, "share the file name x"},
		{"unknown placeholder", func(o *Options) { o.VersionVars = map[string]string{"main.v": "{date}"} }, "unknown placeholder {date}"},
		{"verify without keyring", func(o *Options) { o.Verify = "tag" }, "needs keyring"},
		{"keyring without verify", func(o *Options) { o.Keyring = "/k" }, "verify_signature is none"},
		{"offline GOPROXY", func(o *Options) { o.Env = map[string]string{"GOPROXY": "https://proxy.golang.org"} }, "contradicts offline"},
		{"offline -mod=mod", func(o *Options) { o.Env = map[string]string{"GOFLAGS": "-mod=mod"} }, "contradicts offline"},
		{"online GOPROXY ok", func(o *Options) { o.Offline = false; o.Env = map[string]string{"GOPROXY": "direct"} }, ""},
		{"bad env name", func(o *Options) { o.Env = map[string]string{"A-B": "x"} }, "not a valid environment variable"},
		{"keep 0", func(o *Options) { o.Keep = 0 }, "keep must be at least 1"},
		{"package pattern", func(o *Options) { o.Package = "./..." }, "one main package"},
		{"bad name", func(o *Options) { o.Name = "../x" }, "plain file name"},
		// D4, D5, D18: no "..", no / or system directory.
		{"dest with ..", func(o *Options) { o.Dest = "/a/../b" }, `dest: "/a/../b" has a '..' element`},
		{"store with ..", func(o *Options) { o.Store = "/var/lib/x/../../../etc" }, `store: "/var/lib/x/../../../etc" has a '..' element`},
		{"store /", func(o *Options) { o.Store = "/" }, `store: "/" is / or a system directory`},
		{"store /var/lib", func(o *Options) { o.Store = "/var/lib/" }, `store: "/var/lib/" is / or a system directory`},
		{"dest /", func(o *Options) { o.Dest = "/" }, `dest: "/" is / or a system directory`},
		{"dest /etc", func(o *Options) { o.Dest = "/etc" }, `dest: "/etc" is / or a system directory`},
		{"dest /lib64", func(o *Options) { o.Dest = "/lib64" }, "system directory"},
		{"dest /usr/local", func(o *Options) { o.Dest = "//usr/local" }, "system directory"},
		{"dest below /etc ok", func(o *Options) { o.Dest = "/etc/chezlepro/src" }, ""},
		{"dest in store", func(o *Options) { o.Dest = "/var/lib/builds/x" }, "must not be inside the store"},
		// D12: nothing the user gives reaches a command as a flag.
		{"option-like package", func(o *Options) { o.Package = "-toolexec=/tmp/x.sh" }, `package: "-toolexec=/tmp/x.sh" must not start with '-'`},
		{"option-like tag", func(o *Options) { o.Tags = []string{"netgo", "-x"} }, `tags: "-x" is not a build tag`},
		{"tag with comma", func(o *Options) { o.Tags = []string{"a,b"} }, `tags: "a,b" is not a build tag`},
		{"bad goarch", func(o *Options) { o.GOARCH = "amd64 -x" }, `goarch: "amd64 -x"`},
		{"option-like keyring", func(o *Options) { o.Verify, o.Keyring = "tag", "-k" }, `keyring: "-k" must be an absolute path`},
		// Repository syntax, checked before git could wait on it.
		{"fd remote helper", func(o *Options) { o.Repo = "fd::0" }, `repo: "fd::0"`},
		{"ext remote helper", func(o *Options) { o.Repo = "ext::sh -c touch% /tmp/x" }, "remote helper"},
		{"unknown scheme", func(o *Options) { o.Repo = "gopher://forge/x.git" }, "scheme gopher"},
		{"relative path repo", func(o *Options) { o.Repo = "forge/x.git" }, "absolute path"},
		{"repo with newline", func(o *Options) { o.Repo = "https://forge/x.git\n" }, "control character"},
		{"scp-like repo ok", func(o *Options) { o.Repo = "git@forge.lan:tools/agent.git" }, ""},
		{"local repo ok", func(o *Options) { o.Repo = "/srv/git/x.git" }, ""},
		{"file repo ok", func(o *Options) { o.Repo = "file:///srv/git/x.git" }, ""},
		{"https repo with password ok", func(o *Options) { o.Repo = "https://u:pw@forge.lan/x.git" }, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := validOptions()
			c.change(o)
			_, err := resolveOptions(*o)
			if c.want == "" {
				if err != nil {
					t.Fatalf("unexpected: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

func TestDefaultName(t *testing.T) {
	cases := []struct {
		repo, pkg string
		command   []string
		artifacts []string
		want      string
	}{
		{"git://forge/traefik.git", ".", nil, nil, "traefik"},
		{"https://forge/x/traefik.git/", "./cmd/traefik", nil, nil, "traefik"},
		{"git@forge:webapp", ".", nil, nil, "webapp"},
		{"/srv/git/tools.git", ".", []string{"make"}, []string{"dist/agent"}, "agent"},
	}
	for _, c := range cases {
		o := validOptions()
		o.Repo, o.Package, o.Command, o.Artifacts = c.repo, c.pkg, c.command, c.artifacts
		req, err := resolveOptions(*o)
		if err != nil {
			t.Fatal(err)
		}
		if req.Name != c.want {
			t.Errorf("%s %s: name %q, want %q", c.repo, c.pkg, req.Name, c.want)
		}
	}
}

func TestRecipeHashAndChanges(t *testing.T) {
	req, err := resolveOptions(*validOptions())
	if err != nil {
		t.Fatal(err)
	}
	o := &req.Options
	a := newRecipe(o, "go1.26.8")
	if a.hash() != newRecipe(o, "go1.26.8").hash() {
		t.Fatal("the same options must give the same hash")
	}
	o2 := *o
	o2.GOARCH = "arm64"
	b := newRecipe(&o2, "go1.26.9")
	if a.hash() == b.hash() {
		t.Fatal("a different arch and toolchain must change the hash")
	}
	ch := strings.Join(recipeChanges(a, b), ", ")
	if !strings.Contains(ch, `goarch ("`+o.GOARCH+`" -> "arm64")`) || !strings.Contains(ch, `go_version ("go1.26.8" -> "go1.26.9")`) {
		t.Fatalf("changes: %s", ch)
	}
	// {version} only counts when a version var uses it: a branch and a tag
	// at the same commit share a build otherwise.
	o3 := *o
	o3.Version = "main"
	if newRecipe(&o3, "go1.26.8").hash() != a.hash() {
		t.Fatal("the version must not be part of the recipe when no version var uses it")
	}
	o3.VersionVars = map[string]string{"main.version": "{version}"}
	o4 := o3
	o4.Version = "v1"
	if newRecipe(&o3, "go1.26.8").hash() == newRecipe(&o4, "go1.26.8").hash() {
		t.Fatal("the version must be part of the recipe when a version var uses it")
	}
}

func TestLdflagsAndArgv(t *testing.T) {
	r := recipe{Kind: "go", Package: "./cmd/traefik", Output: "traefik", Ldflags: "-s -w", Tags: []string{"a", "b"},
		VersionVars: map[string]string{"pkg/version.Version": "{version}", "pkg/version.BuildDate": "{commit_time}", "pkg/version.Codename": "le pro"}}
	v := buildVars{Version: "v3.7.9", Commit: "0123456789abcdef0123456789abcdef01234567", CommitTime: time.Unix(0, 0)}
	got := r.ldflagsFor(v)
	want := "-s -w -X pkg/version.BuildDate=1970-01-01T00:00:00Z -X 'pkg/version.Codename=le pro' -X pkg/version.Version=v3.7.9 -buildid="
	if got != want {
		t.Fatalf("ldflags\n got %s\nwant %s", got, want)
	}
	argv := r.argv("/go/bin/go", "/out", v)
	if strings.Join(argv, " ") != "/go/bin/go build -trimpath -ldflags "+want+" -tags a,b -o /out/traefik -- ./cmd/traefik" {
		t.Fatalf("argv %q", argv)
	}
	if quoteFlag(`a='b'`) != `"a='b'"` {
		t.Fatalf("single quotes must be carried in double quotes: %s", quoteFlag(`a='b'`))
	}
}

func TestBuildEnv(t *testing.T) {
	r := recipe{Offline: true, GOOS: "linux", GOARCH: "arm64", Env: map[string]string{"GOFLAGS": "-tags=x", "VERSION": "1"}}
	inherited := []string{"PATH=/usr/bin", "HOME=/root", "GOFLAGS=-mod=mod", "GOPROXY=https://proxy", "GOCACHE=/c", "CGO_CFLAGS=-O3", "GOAMD64=v3", "SOURCE_DATE_EPOCH=1"}
	full, set := r.buildEnv(inherited, "/usr/local/go/bin/go", "/store", time.Unix(1700000000, 0))
	env := map[string]string{}
	for _, kv := range full {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := env[k]; dup {
			t.Fatalf("duplicate %s", k)
		}
		env[k] = v
	}
	want := map[string]string{
		"GOFLAGS": "-mod=vendor -tags=x", "GOPROXY": "off", "GOTOOLCHAIN": "local", "GOOS": "linux", "GOARCH": "arm64",
		"CGO_ENABLED": "0", "SOURCE_DATE_EPOCH": "1700000000", "VERSION": "1", "GOCACHE": "/c", "HOME": "/root",
		"PATH": "/usr/local/go/bin:/usr/bin", "GOTMPDIR": "/store/.gotmp",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s=%q, want %q", k, env[k], v)
		}
	}
	for _, k := range []string{"CGO_CFLAGS", "GOAMD64"} {
		if _, ok := env[k]; ok {
			t.Errorf("inherited %s must be dropped", k)
		}
	}
	if set["GOPROXY"] != "off" || set["VERSION"] != "1" || set["PATH"] != "" {
		t.Errorf("recorded env: %v", set)
	}
	// A GOTMPDIR of the operator's is theirs to choose.
	if full, _ := r.buildEnv(append(inherited, "GOTMPDIR=/scratch"), "", "/store", time.Unix(0, 0)); !slices.Contains(full, "GOTMPDIR=/scratch") {
		t.Errorf("inherited GOTMPDIR dropped: %v", full)
	}
	// No HOME and no GOCACHE: the go command would refuse to build.
	full, _ = recipe{}.buildEnv([]string{"PATH=/bin"}, "", "/store", time.Unix(0, 0))
	if !strings.Contains(strings.Join(full, " "), "GOCACHE=/store/.gocache") {
		t.Errorf("no cache set without HOME: %v", full)
	}
}

func TestPruneSelect(t *testing.T) {
	entries := []*manifest{{Key: "e"}, {Key: "d"}, {Key: "c"}, {Key: "b"}, {Key: "a"}} // newest first
	cases := []struct {
		keep    int
		current string
		want    string
	}{
		{5, "e", ""},
		{2, "e", "c b a"},
		{1, "e", "d c b a"},
		{2, "a", "d c b"}, // the current build is kept even when it is the oldest
		{3, "x", "c b a"}, // x is not listed yet: it counts as one kept
	}
	for _, c := range cases {
		if got := strings.Join(pruneSelect(entries, c.keep, c.current), " "); got != c.want {
			t.Errorf("keep %d current %s: drop %q, want %q", c.keep, c.current, got, c.want)
		}
	}
}

func TestDiagnose(t *testing.T) {
	withVendor, noVendor := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(withVendor, "vendor"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(withVendor, "vendor", "modules.txt"), []byte("# example.com/greet v1.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	inconsistent := "go: inconsistent vendoring in /src:\n\texample.com/greet@v1.0.0: is explicitly required in go.mod, but not marked as explicit in vendor/modules.txt\n\texample.com/x@v1.0.0: is explicitly required in go.mod, but vendor/modules.txt indicates example.com/x@v1.0.1\n\n\tTo ignore the vendor directory, use -mod=readonly or -mod=mod.\n"
	cases := []struct {
		name, log, root, want string
		not                   []string
	}{
		{"no vendor", inconsistent, noVendor, "no vendor/ directory in " + noVendor, nil},
		{"another go.mod", inconsistent, withVendor, "vendor/modules.txt was made for another go.mod (go said: example.com/greet@v1.0.0: is explicitly required in go.mod, but not marked as explicit in vendor/modules.txt; example.com/x@v1.0.0: is explicitly required", []string{"To ignore"}},
		{"no module root", inconsistent, "", "made for another go.mod", nil},
		{"toolchain", "go: go.mod requires go >= 1.99 (running go 1.26.8; GOTOOLCHAIN=local)", withVendor, "toolchain is older", []string{"vendor"}},
		{"not vendored", "main.go:5:2: cannot find module providing package example.com/greet: import lookup disabled by -mod=vendor", "", "not vendored", nil},
		{"proxy off", "go: example.com/greet@v1.0.0: module lookup disabled by GOPROXY=off", "", "not vendored", nil},
		{"dns", "fatal: unable to access 'https://forge/x.git/': Could not resolve host: forge", "", "tried to reach the network (isolation: netns)", nil},
		{"unreachable", "bash: connect: Network is unreachable", "", "tried to reach the network", nil},
		// A full disk is the cause of whatever else the log says.
		{"disk full", "# example.com/big\ncompile: writing output: write $WORK/b2460/_pkg_.a: no space left on device\ngo: inconsistent vendoring in /src:", withVendor, "no space left on / (writing /big/tmp/go-build/b2460/_pkg_.a)", []string{"vendor", "toolchain"}},
		{"disk full, cp", "cp: error writing '/no/such/dir/out': No space left on device", "", "no space left on / (writing /no/such/dir/out)", nil},
		{"syntax error", "main.go:3: syntax error", withVendor, "", nil},
	}
	for _, c := range cases {
		got := diagnose(c.log, diagContext{Isolation: "netns", ModuleRoot: c.root, Env: []string{"GOTMPDIR=/big/tmp"}})
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: diagnosis %q, want %q", c.name, got, c.want)
		}
		for _, n := range c.not {
			if strings.Contains(got, n) {
				t.Errorf("%s: diagnosis %q must not mention %q", c.name, got, n)
			}
		}
	}
}

func TestLookPathIn(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notexec"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=/root", "PATH=/nonexistent:" + dir}
	if p, err := lookPathIn("go", env); err != nil || p != filepath.Join(dir, "go") {
		t.Errorf("go: %q %v", p, err)
	}
	if _, err := lookPathIn("notexec", env); err == nil || !strings.Contains(err.Error(), `"notexec" not found in the build's PATH (/nonexistent:`+dir+")") {
		t.Errorf("notexec: %v", err)
	}
	if p, err := lookPathIn("./x.sh", env); err != nil || p != "./x.sh" {
		t.Errorf("a path is taken as it is: %q %v", p, err)
	}
}

func TestGPGStatus(t *testing.T) {
	good := "[GNUPG:] NEWSIG\n[GNUPG:] KEY_CONSIDERED ABCD 0\n[GNUPG:] GOODSIG 1234ABCD Release <rel@forge>\n[GNUPG:] VALIDSIG ABCDEF0123456789 2026-01-01 0 4 0 22 8 00 ABCDEF0123456789\n[GNUPG:] TRUST_UNDEFINED 0 pgp\n"
	s := parseGPGStatus(good)
	if s.Fingerprint != "ABCDEF0123456789" || s.Signer != "Release <rel@forge>" {
		t.Fatalf("good signature: %+v", s)
	}
	cases := []struct{ status, want string }{
		{"[GNUPG:] NEWSIG\n[GNUPG:] ERRSIG 1234ABCD 22 8 00 1700000000 9 -\n[GNUPG:] NO_PUBKEY 1234ABCD\n", "not in the keyring"},
		{"[GNUPG:] BADSIG 1234ABCD Release\n", "bad signature"},
		{"[GNUPG:] EXPKEYSIG 1234ABCD Release\n[GNUPG:] VALIDSIG ABCD\n", "expired"},
		{"[GNUPG:] REVKEYSIG 1234ABCD Release\n", "revoked"},
		{"", "not signed"},
		{"error: no signature found\n", "not signed"},
	}
	for _, c := range cases {
		if parseGPGStatus(c.status).Fingerprint != "" {
			t.Errorf("%q must not count as a good signature", c.status)
		}
		if got := explainGPGStatus(c.status); !strings.Contains(got, c.want) {
			t.Errorf("%q: %q, want %q", c.status, got, c.want)
		}
	}
}

func TestChooseIsolation(t *testing.T) {
	ok := func() error { return nil }
	denied := func() error { return errors.New("operation not permitted") }
	cases := []struct {
		isolation string
		offline   bool
		probe     func() error
		want      string
		fails     bool
	}{
		{"auto", true, ok, isoNetns, false},
		{"auto", true, denied, isoNone, false},
		{"auto", false, ok, isoNone, false},
		{"netns", true, ok, isoNetns, false},
		{"netns", false, ok, isoNetns, false},
		{"netns", true, denied, "", true},
		{"none", true, ok, isoNone, false},
	}
	for _, c := range cases {
		got, detail, err := chooseIsolation(c.isolation, c.offline, c.probe)
		if (err != nil) != c.fails || got != c.want {
			t.Errorf("%s offline=%v: %q %q %v", c.isolation, c.offline, got, detail, err)
		}
		if got == isoNone && c.probe != nil && c.isolation == "auto" && c.offline && !strings.Contains(detail, "operation not permitted") {
			t.Errorf("a fallback must say why: %q", detail)
		}
	}
}

func TestShellQuote(t *testing.T) {
	got := shellQuote([]string{"go", "build", "-ldflags", "-s -w -X 'main.v=a b'", "", "./cmd/x"})
	want := `go build -ldflags '-s -w -X '\''main.v=a b'\''' '' ./cmd/x`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestCredentials(t *testing.T) {
	for in, want := range map[string]string{
		"https://u:p%40ss@forge/x.git": "https://forge/x.git",
		"https://token@forge/x.git":    "https://forge/x.git",
		// An ssh user name is a login, not a credential; a password is.
		"ssh://git@forge/x.git":        "ssh://git@forge/x.git",
		"ssh://git:pw@forge/x.git":     "ssh://git@forge/x.git",
		"git+ssh://git:pw@forge/x.git": "git+ssh://git@forge/x.git",
		"git@forge:x.git":              "git@forge:x.git",
		"/srv/git/x.git":               "/srv/git/x.git",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
	if got := credentialSecrets("https://u:p%40ss@forge/x.git"); strings.Join(got, " ") != "https://u:p%40ss@forge/x.git u:p%40ss p%40ss p@ss" {
		t.Errorf("credentialSecrets: %q", got)
	}
	if got := credentialSecrets("https://u:p@ss@forge/x.git"); strings.Join(got, " ") != "https://u:p@ss@forge/x.git u:p@ss p@ss p@ss" {
		t.Errorf("credentialSecrets of a password with a raw @: %q", got)
	}
	if got := credentialSecrets("/srv/git/x.git"); got != nil {
		t.Errorf("no userinfo, no secret: %q", got)
	}
	// Masking the user "git" would mask every "git" in the output.
	if got := credentialSecrets("ssh://git@forge/x.git"); got != nil {
		t.Errorf("an ssh user name is no secret: %q", got)
	}
	if got := credentialSecrets("ssh://git:pw@forge/x.git"); strings.Join(got, " ") != "ssh://git:pw@forge/x.git git:pw pw pw" {
		t.Errorf("credentialSecrets of an ssh URL with a password: %q", got)
	}
	o := validOptions()
	o.Repo = "https://u:pw@forge/x.git"
	if req, err := resolveOptions(*o); err != nil || req.Repo != "https://forge/x.git" || req.repoWithAuth != "https://u:pw@forge/x.git" {
		t.Errorf("resolveOptions: %v %+v", err, req)
	} else if o.Repo != "https://u:pw@forge/x.git" {
		t.Errorf("resolveOptions changed the options as given: %q", o.Repo)
	}
}
