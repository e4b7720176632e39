package ansible

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeEnv reads args files from files; withHome fixes the environment path
// expansion sees: HOME=/home/me, user "ops" lives in /srv/ops.
func fakeEnv(files map[string]string) env {
	return env{readFile: func(p string) ([]byte, error) {
		if c, ok := files[p]; ok {
			return []byte(c), nil
		}
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}}
}

func withHome(t *testing.T) {
	vars := map[string]string{"HOME": "/home/me", "APP": "shop", "EMPTY": ""}
	homes := map[string]string{"": "/home/me", "ops": "/srv/ops/", "root": "/"}
	env, home := lookupEnv, homeOf
	lookupEnv = func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	homeOf = func(u string) (string, bool) { h, ok := homes[u]; return h, ok }
	t.Cleanup(func() { lookupEnv, homeOf = env, home })
}

type execResult struct {
	status int
	out    map[string]any
	stdout string
	stderr string
}

// execArgs runs module m with args (the file's content; "" = no file given).
func execArgs[O any](t *testing.T, m Module[O], args string) execResult {
	t.Helper()
	files := map[string]string{"/tmp/args": args}
	var stdout, stderr bytes.Buffer
	status := execute(m, []string{"AnsiballZ_test", "/tmp/args"}, &stdout, &stderr, fakeEnv(files))
	return parseRun(t, status, stdout.String(), stderr.String())
}

func parseRun(t *testing.T, status int, stdout, stderr string) execResult {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(stdout)))
	var out map[string]any
	require.NoError(t, dec.Decode(&out), "stdout must be one JSON object: %q", stdout)
	require.False(t, dec.More(), "stdout must hold exactly one JSON object: %q", stdout)
	return execResult{status: status, out: out, stdout: stdout, stderr: stderr}
}
