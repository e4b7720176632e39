package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chezlepro/sovereign/internal/ansible"
	"github.com/chezlepro/sovereign/internal/ansible/ansibletest"
)

// D1: a URL's user:password@ never reaches a file or the result, with or
// without no_log, and the files that record sources are 0600.
func TestURLPasswordIsNeverWrittenNorReturned(t *testing.T) {
	f := newFixture(t)
	body := []byte("#!/bin/sh\necho private registry\n")
	sum := sha(body)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "deploy" || p != "s3cr3t-pw" {
			http.Error(w, "auth", http.StatusUnauthorized)
			return
		}
		w.Write(body)
	}))
	defer srv.Close()
	url := strings.Replace(srv.URL, "http://", "http://deploy:s3cr3t-pw@", 1) + "/app"
	args := map[string]any{"url": url, "checksum": "sha256:" + sum, "version": "1.0", "root": f.root, "slot": "green"}

	for _, extra := range []map[string]any{{"_ansible_check_mode": true, "_ansible_diff": true}, {"_ansible_diff": true}, {"_ansible_no_log": true}} {
		a := map[string]any{}
		for k, v := range args {
			a[k] = v
		}
		for k, v := range extra {
			a[k] = v
		}
		var out bytes.Buffer
		p, msg := ansibletest.WriteArgs(t, "binary_stage", a)
		if msg != "" {
			t.Fatalf("run %v refused: %s", extra, msg)
		}
		ansible.Execute(module(), []string{"binary_stage", p}, &out)
		if strings.Contains(out.String(), `"failed": true`) || strings.Contains(out.String(), `"failed":true`) {
			t.Fatalf("run %v failed: %s", extra, out.String())
		}
		if strings.Contains(out.String(), "s3cr3t-pw") {
			t.Errorf("run %v: result shows the password: %s", extra, out.String())
		}
	}
	// A failed download names the URL without the password either.
	bad := map[string]any{}
	for k, v := range args {
		bad[k] = v
	}
	bad["url"], bad["version"] = strings.Replace(url, "/app", "/app", 1)+"?x=1", "2.0"
	bad["checksum"] = "sha256:" + strings.Repeat("1", 64)
	if res := execModule(t, bad); res["failed"] != true || strings.Contains(res["msg"].(string), "s3cr3t-pw") {
		t.Errorf("failed download: %v", res)
	}

	for _, p := range []string{
		filepath.Join(f.root, ".binary_stage", "history.json"),
		filepath.Join(f.root, "releases", "1.0-"+sum[:12], metaName),
	} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "s3cr3t-pw") || strings.Contains(string(data), "deploy:") {
			t.Errorf("%s keeps the URL's userinfo:\n%s", p, data)
		}
		if !strings.Contains(string(data), strings.TrimPrefix(srv.URL, "http://")+"/app") {
			t.Errorf("%s does not record the URL without its userinfo:\n%s", p, data)
		}
		if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s is %v, want 0600 (a URL's query may hold a token)", p, fi.Mode().Perm())
		}
	}
}

func TestStripUserinfo(t *testing.T) {
	for in, want := range map[string]string{
		"https://u:p@host/a?b=c":     "https://host/a?b=c",
		"https://u@host:8443/a":      "https://host:8443/a",
		"http://host/a":              "http://host/a",
		"/opt/build/app":             "/opt/build/app",
		"https://u:p%40x@[::1]:80/z": "https://[::1]:80/z",
	} {
		if got := stripUserinfo(in); got != want {
			t.Errorf("stripUserinfo(%q) = %q, want %q", in, got, want)
		}
	}
}
