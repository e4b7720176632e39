package ansible

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/txtar"
)

// fuzzModule echoes its decoded options, so encoding and masking see every
// value; it never panics, so "module panicked" in its output is a runtime bug.
func fuzzModule() Module[exampleOptions] {
	m := exampleModule()
	m.Run = func(ctx *Context, o *exampleOptions) (*Result, error) {
		ctx.Warn("name is " + o.Name)
		return &Result{Changed: o.Force, Msg: o.Src, Diff: []Diff{{Before: o.Content, After: o.Password}},
			Values: map[string]any{"options": o}}, nil
	}
	return m
}

// FuzzDecode: any bytes in must give a decoded struct or an error, never a
// panic, and Execute must print exactly one JSON object with no_log values
// masked.
func FuzzDecode(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/script/*.txtar")
	for _, s := range seeds {
		a, err := txtar.ParseFile(s)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range a.Files {
			if strings.HasSuffix(file.Name, ".json") && !strings.HasPrefix(file.Name, "want") {
				f.Add(file.Data)
			}
		}
	}
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `{"name": "x", "_ansible_diff": 1, "password": 5, "content": "5"}`,
		`{"name": "x", "gate": "{\"kind\": \"tcp\", \"headers\": \"x=1\"}"}`,
		`{"name": "x", "ratio": "1e400", "keep_releases": -0, "extra": "a=1 'b=2"}`,
		`{"name": "x", "files": "a,b", "env": "k=\\", "password": "*", "_chezlepro_no_log_values": ["*"]}`,
		`{"name": "x", "password": "hunter2", "behave": "change", "_chezlepro_no_log_values": ["hunter2", 5]}`,
		`{"name": "x", "gate": {"kind": 5}, "_chezlepro_no_log_values": ["x"]}`,
		// Secrets made of stars must not feed on the mask text.
		`{"name": "x", "password": "*", "src": "**********", "gate": {"kind": "tcp", "token": "**", "headers": [
			{"name": "a", "value": "***"}, {"name": "b", "value": "****"}, {"name": "c", "value": "*****"},
			{"name": "d", "value": "******"}, {"name": "e", "value": "*******"}, {"name": "f", "value": "*********"}]},
		 "_chezlepro_no_log_values": ["*", "**", "***", "****", "*****", "******", "*******", "*********"]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// A hang is a bug too: crash the worker so the input is kept.
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				panic(fmt.Sprintf("input took over 10s: %q", data))
			}
		}()
		// The no_log values the controller would have sent.
		var secrets []string
		if params, err := decodeObject(data); err == nil {
			if in, _, err := parseInternal(params); err == nil {
				secrets = in.noLogValues
			}
		}

		var stdout, stderr bytes.Buffer
		status := execute(fuzzModule(), []string{"x", "/tmp/args"}, &stdout, &stderr, fakeEnv(map[string]string{"/tmp/args": string(data)}))
		dec := json.NewDecoder(bytes.NewReader(stdout.Bytes()))
		var out map[string]any
		if err := dec.Decode(&out); err != nil {
			t.Fatalf("stdout is not a JSON object: %v\n%s", err, stdout.String())
		}
		if dec.More() || !strings.HasSuffix(stdout.String(), "}\n") || strings.Count(stdout.String(), "\n") != 1 {
			t.Fatalf("stdout is not exactly one JSON object on one line: %q", stdout.String())
		}
		if _, ok := out["changed"].(bool); !ok {
			t.Fatalf("changed missing: %s", stdout.String())
		}
		failed := out["failed"] == true
		if failed != (status == 1) {
			t.Fatalf("status %d but failed=%v", status, failed)
		}
		if failed {
			if msg, _ := out["msg"].(string); msg == "" || strings.Contains(msg, "panicked") {
				t.Fatalf("bad failure message %q; stderr:\n%s", msg, stderr.String())
			}
		}
		for _, s := range secrets {
			if strings.Contains(noLogPlaceholder+noLogMask, s) || strings.Contains(s, "*") {
				continue // masking text itself may contain it
			}
			if leak := findString(out, s); leak != "" {
				t.Fatalf("no_log value %q leaked in %q", s, leak)
			}
		}
	})
}

// findString returns a string value (not a key) of tree containing s.
func findString(tree any, s string) string {
	switch x := tree.(type) {
	case string:
		if strings.Contains(x, s) {
			return x
		}
	case []any:
		for _, e := range x {
			if l := findString(e, s); l != "" {
				return l
			}
		}
	case map[string]any:
		for _, e := range x {
			if l := findString(e, s); l != "" {
				return l
			}
		}
	case float64:
		if strings.Contains(pyFloat(x), s) || strings.Contains(strings.TrimSuffix(pyFloat(x), ".0"), s) {
			return pyFloat(x)
		}
	}
	return ""
}
