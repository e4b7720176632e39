package ansible

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeEnv is a fixed machine: HOME=/home/me, user "ops" lives in /srv/ops.
func fakeEnv(files map[string]string) env {
	vars := map[string]string{"HOME": "/home/me", "APP": "shop", "EMPTY": ""}
	homes := map[string]string{"": "/home/me", "ops": "/srv/ops/", "root": "/"}
	return env{
		readFile: func(p string) ([]byte, error) {
			if c, ok := files[p]; ok {
				return []byte(c), nil
			}
			return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
		},
		getenv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok },
		userHome: func(u string) (string, bool) {
			h, ok := homes[u]
			return h, ok
		},
	}
}

type decoded[O any] struct {
	opts     *O
	args     map[string]any
	warnings []string
	noLog    map[string]struct{}
	err      error
}

// decodeJSON runs the pure decoder on a JSON object of user parameters.
func decodeJSON[O any](t *testing.T, params string, g groups, strConv string) decoded[O] {
	t.Helper()
	p, err := decodeObject([]byte(params))
	require.NoError(t, err)
	ss, err := specOf(reflect.TypeOf((*O)(nil)).Elem())
	require.NoError(t, err)
	e := fakeEnv(nil)
	d := newDecoder("test", strConv, e.getenv, e.userHome)
	opts := new(O)
	args, err := d.decode(ss, g, p, reflect.ValueOf(opts))
	return decoded[O]{opts: opts, args: args, warnings: d.warnings, noLog: d.noLog, err: err}
}

// problems returns the ArgsError's messages (fails when err is another error).
func problems(t *testing.T, err error) []string {
	t.Helper()
	var ae *ArgsError
	require.True(t, errors.As(err, &ae), "want *ArgsError, got %v", err)
	return ae.Problems
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
