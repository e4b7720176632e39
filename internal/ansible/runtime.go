package ansible

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/user"
	"runtime/debug"
	"sort"
	"strings"
)

// Main runs m as a process: os.Args in, one JSON object on stdout, exit
// status 0 on success and 1 on failure (ansible-core ignores it when the JSON
// parses).
func Main[O any](m Module[O]) {
	out := os.Stdout
	// A stray fmt.Println in module code must not corrupt the one JSON
	// object: whatever Go code writes to os.Stdout goes to stderr.
	os.Stdout = os.Stderr
	os.Exit(Execute(m, os.Args, out))
}

// Execute is Main without the process: argv[1] names the args file. It
// returns the exit status. Panic stacks go to os.Stderr, never to stdout.
func Execute[O any](m Module[O], argv []string, stdout io.Writer) int {
	return execute(m, argv, stdout, os.Stderr, hostEnv())
}

// env is what the runtime reads from the machine, injected for tests.
type env struct {
	readFile func(string) ([]byte, error)
}

func hostEnv() env {
	return env{readFile: os.ReadFile}
}

func osLookupEnv(k string) (string, bool) { return os.LookupEnv(k) }

// lookupHome mirrors Python's expanduser: $HOME for the current user, else
// the passwd database.
func lookupHome(name string) (string, bool) {
	if name == "" {
		if h, ok := lookupEnv("HOME"); ok {
			return h, true
		}
		u, err := user.Current()
		if err != nil {
			return "", false
		}
		return u.HomeDir, true
	}
	u, err := user.Lookup(name)
	if err != nil {
		return "", false
	}
	return u.HomeDir, true
}

// reservedKeys are the runtime's own result keys; Result.Values may not use them.
var reservedKeys = []string{"changed", "deprecations", "diff", "failed", "invocation", "msg", "skipped", "warnings"}

// response is everything that goes into the one JSON object printed.
type response struct {
	changed, failed, skipped bool
	msg                      string
	diffOn                   bool
	diff                     []Diff
	ctx                      *Context // warnings and deprecations
	invocation               any      // module_args; nil when arguments were never read
	values                   map[string]any
	noLog                    map[string]struct{}
}

func (r *response) fail(format string, a ...any) {
	r.failed = true
	r.msg = fmt.Sprintf(format, a...)
}

func execute[O any](m Module[O], argv []string, stdout, stderr io.Writer, e env) int {
	r := &response{ctx: &Context{ModuleName: m.Name}, noLog: map[string]struct{}{}}
	func() {
		defer func() {
			if p := recover(); p != nil {
				fmt.Fprintf(stderr, "panic: %v\n\n%s", p, debug.Stack())
				r.fail("module panicked: %v", p)
			}
		}()
		run(m, argv, e, r)
	}()
	b := r.safeEncode(stderr)
	_, _ = stdout.Write(b)
	if r.failed {
		return 1
	}
	return 0
}

func run[O any](m Module[O], argv []string, e env, r *response) {
	if len(argv) < 2 {
		r.fail("missing the arguments file: run as %s ARGS_FILE (ansible-core passes the path of a JSON file)", m.Name)
		return
	}
	raw, err := e.readFile(argv[1])
	if err != nil {
		r.fail("cannot read the arguments file: %v", err)
		return
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		r.fail("the arguments file %s is empty", argv[1])
		return
	}
	params, err := decodeObject(raw)
	if err != nil {
		r.fail("cannot parse the arguments file %s: %v", argv[1], err)
		return
	}
	in, userParams, err := parseInternal(params)
	if err != nil {
		r.fail("%v", err)
		return
	}
	ctx := r.ctx
	ctx.CheckMode, ctx.Diff, ctx.NoLog, ctx.Verbosity, ctx.TmpDir = in.checkMode, in.diff, in.noLog, in.verbosity, in.tmpDir
	if in.moduleName != "" {
		ctx.ModuleName = in.moduleName
	}
	r.diffOn = in.diff
	r.invocation = plain(userParams) // as validated on the controller

	if m.Run == nil {
		r.fail("module %s is declared wrongly: Module.Run is nil", m.Name)
		return
	}

	noLog := map[string]struct{}{}
	for _, v := range in.noLogValues {
		if v != "" {
			noLog[v] = struct{}{}
		}
	}
	addURLPasswords(noLog, userParams)
	r.noLog, ctx.noLog = noLog, noLog
	opts := new(O)
	if err := decodeOptions(userParams, opts); err != nil {
		r.fail("%v", err)
		return
	}

	if ctx.CheckMode && !m.SupportsCheckMode {
		r.skipped = true
		r.msg = fmt.Sprintf("remote module (%s) does not support check mode", m.Name)
		return
	}

	res, err := m.Run(ctx, opts)
	if res != nil {
		r.changed, r.msg, r.diff = res.Changed, res.Msg, res.Diff
		values, verr := ValuesMap(res.Values)
		if verr != nil && err == nil {
			err = fmt.Errorf("module %s returned values that are not a JSON object: %w", m.Name, verr)
		}
		r.values = values
	}
	if err != nil {
		r.fail("%s", err.Error())
	}
	if bad := reservedIn(r.values); len(bad) > 0 {
		for _, k := range bad {
			delete(r.values, k)
		}
		prefix := ""
		if r.failed {
			prefix = r.msg + "; "
		}
		r.fail("%smodule %s returned reserved result keys in Result.Values: %s (reserved: %s, and any _ansible_ key)",
			prefix, m.Name, strings.Join(bad, ", "), strings.Join(reservedKeys, ", "))
	}
}

// ValuesMap is a Result's Values as the top-level keys they become: a
// map[string]any as it is, a typed result through its json tags (numbers as
// int64 or float64). Tests read typed results through it, as a playbook
// would see them.
func ValuesMap(v any) (map[string]any, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		return v, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return plain(m).(map[string]any), nil
}

func reservedIn(values map[string]any) []string {
	var bad []string
	for k := range values {
		if strings.HasPrefix(k, "_ansible_") {
			bad = append(bad, k)
			continue
		}
		for _, r := range reservedKeys {
			if k == r {
				bad = append(bad, k)
			}
		}
	}
	sort.Strings(bad)
	return bad
}

// internal holds the _ansible_* keys the runtime honours.
type internal struct {
	checkMode, diff, noLog bool
	verbosity              int
	moduleName, tmpDir     string
	noLogValues            []string
}

// parseInternal splits the _ansible_* keys (and the controller's no_log
// values) off the user's parameters. Keys it does not know are accepted
// silently: newer ansible-core versions add more.
func parseInternal(params map[string]any) (internal, map[string]any, error) {
	var in internal
	user := make(map[string]any, len(params))
	for k, v := range params {
		if k != noLogValuesKey && !strings.HasPrefix(k, "_ansible_") {
			user[k] = v
			continue
		}
		var err error
		switch k {
		case noLogValuesKey:
			err = decodeInternal(v, &in.noLogValues)
		case "_ansible_check_mode":
			err = decodeInternal(v, &in.checkMode)
		case "_ansible_diff":
			err = decodeInternal(v, &in.diff)
		case "_ansible_no_log":
			err = decodeInternal(v, &in.noLog)
		case "_ansible_verbosity":
			err = decodeInternal(v, &in.verbosity)
		case "_ansible_module_name":
			err = decodeInternal(v, &in.moduleName)
		case "_ansible_tmpdir":
			err = decodeInternal(v, &in.tmpDir)
		}
		if err != nil {
			return in, nil, fmt.Errorf("invalid internal parameter %s: %w", k, err)
		}
	}
	return in, user, nil
}

// decodeInternal decodes one internal value; null leaves the zero value.
func decodeInternal(v any, dst any) error {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err == nil {
		err = json.Unmarshal(b, dst)
	}
	return err
}

// safeEncode is encode, surviving a panic in a return value's MarshalJSON.
func (r *response) safeEncode(stderr io.Writer) (b []byte) {
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(stderr, "panic while encoding the result: %v\n\n%s", p, debug.Stack())
			r.values = nil
			prefix := ""
			if r.failed {
				prefix = r.msg + "; "
			}
			r.fail("%smodule panicked while encoding its return values: %v", prefix, p)
			b = r.encode()
		}
	}()
	return r.encode()
}

// encode renders the one JSON object, masking no_log values everywhere. It
// never fails: an unencodable return value turns into a failure message.
func (r *response) encode() []byte {
	top := map[string]any{"changed": r.changed}
	if r.failed {
		top["failed"] = true
	}
	if r.skipped {
		top["skipped"] = true
	}
	if r.msg != "" || r.failed {
		top["msg"] = r.msg
	}
	if r.diffOn && len(r.diff) > 0 {
		if len(r.diff) == 1 {
			top["diff"] = r.diff[0]
		} else {
			top["diff"] = r.diff
		}
	}
	// Snapshot under the lock: a goroutine Run left behind may still warn.
	r.ctx.mu.Lock()
	warnings := append([]string(nil), r.ctx.warnings...)
	deprecations := append([]Deprecation(nil), r.ctx.deprecations...)
	noLog := make(map[string]struct{}, len(r.noLog))
	for v := range r.noLog {
		noLog[v] = struct{}{}
	}
	r.ctx.mu.Unlock()
	if len(warnings) > 0 {
		top["warnings"] = warnings
	}
	if len(deprecations) > 0 {
		top["deprecations"] = deprecations
	}
	if r.invocation != nil {
		top["invocation"] = map[string]any{"module_args": r.invocation}
	}
	for k, v := range r.values {
		top[k] = v
	}
	b, err := marshalMasked(top, newMasker(noLog))
	if err != nil {
		// Return values that cannot be JSON (NaN, channels...) are a module
		// bug: report it, keeping everything else.
		for k := range r.values {
			delete(top, k)
		}
		top["failed"] = true
		msg := fmt.Sprintf("cannot encode the module's return values: %v", err)
		if r.failed {
			msg = r.msg + "; " + msg
		}
		top["msg"] = msg
		b, err = marshalMasked(top, newMasker(noLog))
		if err != nil {
			b = []byte(`{"changed": false, "failed": true, "msg": "cannot encode the module result"}` + "\n")
		}
		r.failed = true
	}
	return b
}

// marshalMasked encodes v, re-reads it as a plain JSON tree (so every Go type
// is masked the same way and every object's keys come out sorted, structs
// included), masks it and encodes it again.
func marshalMasked(v any, m *masker) ([]byte, error) {
	b, err := marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, err
	}
	return marshal(m.mask(tree))
}

func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep <, > and & readable in messages
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
