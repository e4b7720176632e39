// Package ansibletest gives Go tests the arguments a task would give a
// module: checked against its sidecar and completed with the defaults by the
// collection's own controller code (plugins/plugin_utils/argument_spec.py,
// run with ansible-core's validator), not by a copy of it in Go.
package ansibletest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// The validator runs in one Python process per test binary, fed one request
// a line: starting Python per call would cost a third of a second each.
const serve = `
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("argument_spec", sys.argv[1])
m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)
for line in sys.stdin:
    req = json.loads(line)
    try:
        out = {"params": m.validate(req["module"], req["args"])}
    except m.ArgumentsError as e:
        out = {"error": str(e)}
    print(json.dumps(out), flush=True)
`

var (
	mu     sync.Mutex
	stdin  io.Writer
	stdout *bufio.Reader
	start  error
)

// python is Debian's, which ansible-core is installed for (a python3 earlier
// in PATH, pyenv's, may lack it); CHEZLEPRO_PYTHON overrides it.
func python() string {
	if p := os.Getenv("CHEZLEPRO_PYTHON"); p != "" {
		return p
	}
	return "/usr/bin/python3"
}

func started() error {
	if stdin != nil || start != nil {
		return start
	}
	_, here, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(here), "..", "..", "..", "plugins", "plugin_utils", "argument_spec.py")
	cmd := exec.Command(python(), "-c", serve, script)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err == nil {
		var out io.ReadCloser
		if out, err = cmd.StdoutPipe(); err == nil {
			stdout = bufio.NewReader(out)
			err = cmd.Start()
		}
	}
	if err != nil {
		start = fmt.Errorf("start the argument validator (%s): %w", python(), err)
		return start
	}
	stdin = in
	return nil
}

// ErrInvalid wraps the validator's message for arguments it refuses.
var ErrInvalid = errors.New("invalid arguments")

// Validate returns module's validated arguments, as the action plugin sends
// them to the binary; arguments the controller refuses give an error wrapping
// ErrInvalid whose text is the task's failure message. A validator that
// cannot run fails the test.
func Validate(t testing.TB, module string, args map[string]any) (map[string]any, error) {
	t.Helper()
	params, err := validate(module, args)
	if err != nil && !errors.Is(err, ErrInvalid) {
		t.Fatal(err)
	}
	return params, err
}

func validate(module string, args map[string]any) (map[string]any, error) {
	mu.Lock()
	defer mu.Unlock()
	if err := started(); err != nil {
		return nil, err
	}
	req, err := json.Marshal(map[string]any{"module": module, "args": args})
	if err != nil {
		return nil, fmt.Errorf("encode the arguments: %w", err)
	}
	if _, err := stdin.Write(append(req, '\n')); err != nil {
		return nil, fmt.Errorf("argument validator: %w", err)
	}
	line, err := stdout.ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("argument validator: %w", err)
	}
	var out struct {
		Params map[string]any `json:"params"`
		Error  string         `json:"error"`
	}
	if err := json.Unmarshal(line, &out); err != nil {
		return nil, fmt.Errorf("argument validator answered %q: %w", line, err)
	}
	if out.Error != "" {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, out.Error)
	}
	return out.Params, nil
}

// Message is the task's msg for an error of Validate.
func Message(err error) string {
	s := err.Error()
	if p := ErrInvalid.Error() + ": "; len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

// Defaults decodes into v the validated arguments of a task giving only
// required: the module's options with every default the sidecar declares.
func Defaults(module string, required map[string]any, v any) error {
	params, err := validate(module, required)
	if err != nil {
		return err
	}
	b, err := json.Marshal(params)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// WriteArgs writes the args file ansible-core would upload for a task giving
// args (its _ansible_* keys passed through) and returns its path, or "" and
// the task's failure message when the controller refuses the arguments.
func WriteArgs(t testing.TB, module string, args map[string]any) (path, failed string) {
	t.Helper()
	user, internal := map[string]any{}, map[string]any{}
	for k, v := range args {
		if strings.HasPrefix(k, "_ansible_") {
			internal[k] = v
		} else {
			user[k] = v
		}
	}
	params, err := Validate(t, module, user)
	if err != nil {
		return "", Message(err)
	}
	for k, v := range internal {
		params[k] = v
	}
	b, err := json.Marshal(params)
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "args")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, ""
}

// Failed is the result the action plugin returns for refused arguments.
func Failed(msg string) []byte {
	b, _ := json.Marshal(map[string]any{"changed": false, "failed": true, "msg": msg})
	return b
}
