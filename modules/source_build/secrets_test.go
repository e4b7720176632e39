package main

import (
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// httpForge serves the mirror over smart HTTP (git http-backend as CGI),
// only to user:password, as a forge with access control would.
func httpForge(t *testing.T, m *mirror, user, password string) string {
	t.Helper()
	backend := "/usr/lib/git-core/git-http-backend"
	if _, err := os.Stat(backend); err != nil {
		t.Fatal("no " + backend + ": Debian package git (tests/setup.sh check installs it)")
	}
	h := &cgi.Handler{Path: backend, Env: []string{"GIT_PROJECT_ROOT=" + filepath.Dir(m.Path), "GIT_HTTP_EXPORT_ALL=1"}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="forge"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/" + filepath.Base(m.Path)
}

// D6: a repo URL's password and env values are secrets: they are in no file
// the module writes (manifest, build log, the work tree's git config), in
// no result or message, not even of a failed build; files that may hold
// them are 0600; and the recipe hash still follows an env value.
func TestSecretsAreNotKept(t *testing.T) {
	t.Parallel()
	const password, token = "s3cr3t-pw", "t0ken-value"
	m := newMirror(t)
	url := httpForge(t, m, "builder", password)
	authURL := strings.Replace(url, "http://", "http://builder:"+password+"@", 1)
	dir := t.TempDir()
	a := buildArgs(t, m, dir, "v1")
	a["repo"] = authURL
	a["env"] = map[string]any{"API_TOKEN": token}

	r := mustSucceed(t, runModule(t, a, false))
	failing := commandArgs(t, m, dir, []string{"sh", "-c", "echo token is $API_TOKEN; exit 1"}, "x")
	failing["repo"], failing["env"] = authURL, map[string]any{"API_TOKEN": token}
	f := mustFail(t, runModule(t, failing, false), "exit status 1")

	for name, res := range map[string]result{"build": r, "failed build": f} {
		for _, secret := range []string{password, token} {
			if out := resultJSON(t, res); strings.Contains(out, secret) {
				t.Errorf("%s: the result holds %q: %s", name, secret, out)
			}
		}
	}
	if r.str("repo") != url {
		t.Errorf("result repo %q, want %q (without userinfo)", r.str("repo"), url)
	}
	// Every file the module wrote: store, failure logs, work tree's .git.
	for _, root := range []string{filepath.Join(dir, "store"), filepath.Join(dir, "src", ".git")} {
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.Contains(p, "/objects/") {
				return nil
			}
			b, _ := os.ReadFile(p)
			for _, secret := range []string{password, token} {
				// A failed build's log holds what the build printed (it echoed
				// the token): only its header is the module's.
				if strings.Contains(p, "/failed/") {
					b = []byte(strings.ReplaceAll(string(b), "token is "+token, ""))
				}
				if strings.Contains(string(b), secret) {
					t.Errorf("%s holds %q", p, secret)
				}
			}
			return nil
		})
	}
	if b, _ := os.ReadFile(f.str("log")); !strings.Contains(string(b), "# env: API_TOKEN="+redactedValue) {
		t.Errorf("the failed build's log header does not record the env key redacted:\n%s", b)
	}
	for _, log := range append([]string{filepath.Join(filepath.Dir(r.str("manifest_path")), "build.log")}, f.str("log")) {
		if info, err := os.Stat(log); err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("build log %s: %v %v, want mode 0600", log, info.Mode(), err)
		}
	}

	// Another token value is another recipe: the hash follows the values
	// it no longer records.
	a["env"] = map[string]any{"API_TOKEN": token + "2"}
	c := mustSucceed(t, runModule(t, a, true))
	if c.str("recipe_hash") == r.str("recipe_hash") || !c.bool("would_build") {
		t.Errorf("a changed env value must change the recipe hash: %s %s", c.str("recipe_hash"), r.str("recipe_hash"))
	}
}
