package main

import (
	"bytes"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chezlepro/sovereign/internal/ansible"
)

// validateOnly is the module up to validation: the runtime decodes the
// arguments, resolveOptions checks them, and the invariants below hold for
// whatever it accepts. Nothing touches the disk.
func validateOnly(t *testing.T) ansible.Module[Options] {
	return ansible.Module[Options]{Name: "source_build", SupportsCheckMode: true, Run: func(actx *ansible.Context, o *Options) (*ansible.Result, error) {
		for _, s := range credentialSecrets(o.Repo) {
			actx.Hide(s)
		}
		raw := *o
		req, err := resolveOptions(*o)
		if err != nil {
			return nil, err
		}
		checkAccepted(t, &raw, &req.Options)
		return &ansible.Result{Values: map[string]any{"repo": req.Repo, "dest": req.Dest, "store": req.Store, "raw_repo": raw.Repo}}, nil
	}}
}

// checkAccepted: what validate lets through is safe to act on as root.
func checkAccepted(t *testing.T, raw, o *Options) {
	t.Helper()
	dest, store := string(o.Dest), string(o.Store)
	for opt, p := range map[string]string{"dest": dest, "store": store} {
		if !filepath.IsAbs(p) || filepath.Clean(p) != p || hasDotDot(p) || systemDir(p) {
			t.Fatalf("%s %q accepted", opt, p)
		}
	}
	if store == dest || within(dest, store) || within(store, dest) {
		t.Fatalf("dest %q and store %q overlap", dest, store)
	}
	for _, a := range o.Artifacts {
		p, err := artifactPlace(dest, o.Chdir, a)
		if err != nil || !within(dest, p) {
			t.Fatalf("artifact %q accepted outside %s: %q %v", a, o.Dest, p, err)
		}
	}
	if strings.HasPrefix(o.Repo, "-") || strings.Contains(o.Repo, "::") || redactURL(o.Repo) != o.Repo {
		t.Fatalf("repo %q accepted (given %q)", o.Repo, raw.Repo)
	}
	if len(o.Command) == 0 {
		argv := newRecipe(o, "go1.26.8").argv("/go/bin/go", "/out", buildVars{})
		if argv[len(argv)-2] != "--" || strings.HasPrefix(argv[len(argv)-1], "-") {
			t.Fatalf("package reaches go build as a flag: %q", argv)
		}
		for _, tag := range o.Tags {
			if strings.HasPrefix(tag, "-") || strings.Contains(tag, ",") {
				t.Fatalf("tag %q accepted", tag)
			}
		}
	}
}

// FuzzOptions: any arguments give one JSON answer, never a panic; what
// validate accepts keeps the invariants of checkAccepted; a URL's password
// is in no string of the answer.
func FuzzOptions(f *testing.F) {
	for _, s := range []string{
		`{"repo": "git://forge/x.git", "version": "v1", "dest": "/srv/src/x"}`,
		`{"repo": "https://u:pw@forge/x.git", "version": "v1", "dest": "/srv/src/x", "env": {"TOKEN": "abc"}}`,
		`{"repo": "/srv/git/x.git", "version": "v1", "dest": "/a/../b"}`,
		`{"repo": "/srv/git/x.git", "version": "v1", "dest": "/srv/x", "store": "/"}`,
		`{"repo": "fd::0", "version": "v1", "dest": "/srv/x"}`,
		`{"repo": "/srv/git/x.git", "version": "v1", "dest": "/srv/x", "package": "-toolexec=/tmp/x.sh"}`,
		`{"repo": "/srv/git/x.git", "version": "v1", "dest": "/srv/x", "command": ["false"], "artifacts": ["/etc/passwd"]}`,
		`{"repo": "/srv/git/x.git", "version": "v1", "dest": "/srv/x", "command": ["make"], "artifacts": ["../x", "dist/x"], "chdir": "sub"}`,
		`{"repo": "/srv/git/x.git", "version": "v1", "dest": "/srv/x", "tags": ["netgo", "-x"], "goarch": "amd64"}`,
	} {
		f.Add([]byte(s))
	}
	p := filepath.Join(f.TempDir(), "args.json") // one per process: inputs run one at a time
	f.Fuzz(func(t *testing.T, args []byte) {
		if err := os.WriteFile(p, args, 0o600); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		ansible.Execute(validateOnly(t), []string{"source_build", p}, &out)
		printed := out.String()
		var res map[string]any
		dec := json.NewDecoder(&out)
		if err := dec.Decode(&res); err != nil || dec.More() {
			t.Fatalf("not one JSON object: %v %q", err, printed)
		}
		if msg, _ := res["msg"].(string); strings.Contains(msg, "panicked") {
			t.Fatalf("panic: %s", msg)
		}
		var in struct {
			Repo string `json:"repo"`
		}
		if json.Unmarshal(args, &in) == nil {
			if u, err := url.Parse(in.Repo); err == nil && u.User != nil && u.Scheme != "" {
				if pw, ok := u.User.Password(); ok && len(pw) >= 4 && stringIn(res, pw) {
					t.Fatalf("password %q of repo %q in the answer: %s", pw, in.Repo, printed)
				}
			}
		}
	})
}

// stringIn says whether s occurs in a string value of the JSON tree v.
func stringIn(v any, s string) bool {
	switch x := v.(type) {
	case string:
		return strings.Contains(x, s)
	case []any:
		for _, e := range x {
			if stringIn(e, s) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if stringIn(e, s) {
				return true
			}
		}
	}
	return false
}

// FuzzPaths: an accepted dest or store is absolute, clean, without "..",
// not a system directory, and accepted again as it is; an accepted artifact
// lies inside the work tree.
func FuzzPaths(f *testing.F) {
	for _, s := range [][3]string{
		{"/srv/src/x", "", "dist/x"}, {"/a/../b", ".", "x"}, {"/", "", "/etc/passwd"}, {"/srv/x", "sub", "../x"},
		{"/srv/x/", "a/b", "/srv/x/a/b/c"}, {"//etc", "", "x/../../y"}, {"/lib64", "", "."}, {"/srv/x", "", "/srv/xy/z"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, dest, chdir, a string) {
		d, err := checkPlace("dest", dest)
		if err != nil {
			return
		}
		if !filepath.IsAbs(d) || filepath.Clean(d) != d || hasDotDot(d) || systemDir(d) {
			t.Fatalf("checkPlace(%q) accepted %q", dest, d)
		}
		if again, err := checkPlace("dest", d); err != nil || again != d {
			t.Fatalf("checkPlace is not idempotent on %q: %q %v", d, again, err)
		}
		c := filepath.Clean(chdir)
		if chdir == "" || filepath.IsAbs(c) || hasDotDot(chdir) {
			return // refused by validate
		}
		p, err := artifactPlace(d, c, a)
		if err != nil {
			return
		}
		if !within(d, p) || hasDotDot(p) || filepath.Clean(p) != p {
			t.Fatalf("artifactPlace(%q, %q, %q) = %q, outside the work tree", d, c, a, p)
		}
	})
}

// FuzzRepo: an accepted repo never starts with '-' nor uses a remote
// helper; its redacted form has no userinfo (but an ssh user name) and none
// of the secrets credentialSecrets names.
func FuzzRepo(f *testing.F) {
	for _, s := range []string{
		"git://forge/x.git", "https://u:pw@forge/x.git", "https://tok@forge/x.git", "fd::0", "ext::sh -c x",
		"-u", "git@forge:x.git", "/srv/git/x.git", "file:///srv/x.git", "https://u:p%40ss@forge/x", "http://[::1]:80/x",
		"ssh://git@forge/x.git", "ssh://git:pw@forge/x.git",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, repo string) {
		if checkRepo(repo) != nil {
			return
		}
		if strings.HasPrefix(repo, "-") || strings.Contains(repo, "::") {
			t.Fatalf("repo %q accepted", repo)
		}
		r := redactURL(repo)
		if u, err := url.Parse(r); err == nil && u.Scheme != "" && u.User != nil {
			// Only an ssh URL keeps its user name, and never a password.
			if _, hasPassword := u.User.Password(); hasPassword || !sshSchemes[strings.ToLower(u.Scheme)] {
				t.Fatalf("redactURL(%q) = %q keeps userinfo", repo, r)
			}
		}
		// A secret found only in the userinfo must be gone. Only runs of
		// letters and digits are checked: re-escaping the rest of the URL
		// (" " -> "%20") can make other strings appear.
		for _, s := range credentialSecrets(repo) {
			if len(s) >= 4 && alnum(s) && strings.Count(repo, s) == 1 && strings.Contains(r, s) {
				t.Fatalf("redactURL(%q) = %q keeps secret %q", repo, r, s)
			}
		}
	})
}

func alnum(s string) bool {
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == ""
}
