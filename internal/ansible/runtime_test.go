package ansible

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// allInternalKeys are the _ansible_* keys ansible-core 2.14 sends, plus
// newer ones.
const allInternalKeys = `"_ansible_check_mode": false, "_ansible_debug": false, "_ansible_diff": false,
	"_ansible_keep_remote_files": false, "_ansible_module_name": "chezlepro.sovereign.example_linux_amd64",
	"_ansible_no_log": false, "_ansible_remote_tmp": "~/.ansible/tmp", "_ansible_selinux_special_fs": ["fuse", "nfs"],
	"_ansible_shell_executable": "/bin/sh", "_ansible_socket": null, "_ansible_string_conversion_action": "warn",
	"_ansible_syslog_facility": "LOG_USER", "_ansible_tmpdir": null, "_ansible_verbosity": 0,
	"_ansible_version": "2.14.18", "_ansible_ignore_unknown_opts": false, "_ansible_target_log_info": null,
	"_ansible_some_future_key": {"x": [1]}`

func TestExecuteSuccess(t *testing.T) {
	withHome(t)
	r := execArgs(t, exampleModule(), `{"name": "web", "dest": "~/rel", "state": "present", "keep_releases": 5, "ratio": 0.5,
		"force": null, "gate": null, `+allInternalKeys+`}`)
	assert.Equal(t, 0, r.status)
	assert.Equal(t, map[string]any{
		"changed": false,
		"name":    "web",
		"dest":    "/home/me/rel",
		"summary": "web/present/5",
		"invocation": map[string]any{"module_args": map[string]any{
			"name": "web", "dest": "~/rel", "state": "present", "keep_releases": 5.0, "ratio": 0.5, "force": nil, "gate": nil,
		}},
	}, r.out)
	assert.True(t, strings.HasSuffix(r.stdout, "}\n"))
	assert.Empty(t, r.stderr)
}

func TestPathExpansion(t *testing.T) {
	withHome(t)
	for in, want := range map[string]string{
		"~/rel": "/home/me/rel", "~": "/home/me", "~ops/x": "/srv/ops/x", "~root": "/", "~nobody/x": "~nobody/x",
		"$APP/x": "shop/x", "${APP}x": "shopx", "$NOPE/x": "$NOPE/x", "/a/$EMPTY/b": "/a//b", "a~/b": "a~/b",
	} {
		var p Path
		require.NoError(t, json.Unmarshal([]byte(strconv.Quote(in)), &p))
		assert.Equal(t, want, string(p), in)
	}
	var p Path
	assert.Error(t, json.Unmarshal([]byte(`5`), &p), "a path is a JSON string")
}

func TestExecuteBadInputs(t *testing.T) {
	via := " (arguments reach the module through its action plugin, "
	cases := []struct {
		name, args, msg string
	}{
		{"empty file", "", "the arguments file /tmp/args is empty"},
		{"blank file", " \n\t", "the arguments file /tmp/args is empty"},
		{"malformed", `{"name": `, "cannot parse the arguments file /tmp/args: unexpected EOF"},
		{"not json", `name=web`, "cannot parse the arguments file /tmp/args: invalid character 'a' in literal null (expecting 'u')"},
		{"list", `["name"]`, "cannot parse the arguments file /tmp/args: expected a JSON object, got array"},
		{"string", `"name"`, "cannot parse the arguments file /tmp/args: expected a JSON object, got string"},
		{"null", `null`, "cannot parse the arguments file /tmp/args: expected a JSON object, got null"},
		{"two objects", `{} {}`, "cannot parse the arguments file /tmp/args: unexpected data after the JSON object"},
		{"trailing junk", `{"name": "x"} junk`, "cannot parse the arguments file /tmp/args: unexpected data after the JSON object"},
		{"bad check mode", `{"name": "x", "_ansible_check_mode": "maybe"}`, "invalid internal parameter _ansible_check_mode: json: cannot unmarshal string into Go value of type bool"},
		{"bad verbosity", `{"name": "x", "_ansible_verbosity": "loud"}`, "invalid internal parameter _ansible_verbosity: json: cannot unmarshal string into Go value of type int"},
		{"bad tmpdir", `{"name": "x", "_ansible_tmpdir": 5}`, "invalid internal parameter _ansible_tmpdir: json: cannot unmarshal number into Go value of type string"},
		{"bad no_log values", `{"name": "x", "_chezlepro_no_log_values": "pw"}`, "invalid internal parameter _chezlepro_no_log_values: json: cannot unmarshal string into Go value of type []string"},
		{"unsupported", `{"name": "x", "nme": "y"}`, `unsupported parameter "nme"` + via + "which checks them against the documented options)"},
		{"unsupported nested", `{"name": "x", "gate": {"kynd": "tcp"}}`, `unsupported parameter "kynd"` + via + "which checks them against the documented options)"},
		{"wrong type", `{"name": "x", "keep_releases": "many"}`, "argument 'keep_releases' is a JSON string where the module reads int" + via + "which converts them)"},
		{"wrong type nested", `{"name": "x", "gate": {"timeout": 1.5}}`, "argument 'gate.timeout' is a JSON number 1.5 where the module reads int" + via + "which converts them)"},
		{"wrong type in list", `{"name": "x", "files": [{"path": 5}]}`, "argument 'files.path' is a JSON number where the module reads string" + via + "which converts them)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := execArgs(t, exampleModule(), c.args)
			assert.Equal(t, 1, r.status)
			assert.Equal(t, true, r.out["failed"])
			assert.Equal(t, false, r.out["changed"])
			assert.Equal(t, c.msg, r.out["msg"])
			assert.Empty(t, r.stderr)
		})
	}
}

func TestInvocationOnBadArgumentsEchoesWhatWasGiven(t *testing.T) {
	r := execArgs(t, exampleModule(), `{"name": "x", "keep_releases": "many", "password": "s3cret!", "_ansible_diff": true,
		"_chezlepro_no_log_values": ["s3cret!"]}`)
	assert.Equal(t, map[string]any{"module_args": map[string]any{
		"name": "x", "keep_releases": "many", "password": noLogPlaceholder,
	}}, r.out["invocation"])
}

func TestExecuteMissingArgvAndFile(t *testing.T) {
	var out, errOut bytes.Buffer
	status := execute(exampleModule(), []string{"AnsiballZ_example"}, &out, &errOut, hostEnv())
	r := parseRun(t, status, out.String(), errOut.String())
	assert.Equal(t, 1, r.status)
	assert.Equal(t, map[string]any{"changed": false, "failed": true,
		"msg": "missing the arguments file: run as example ARGS_FILE (ansible-core passes the path of a JSON file)"}, r.out)

	missing := filepath.Join(t.TempDir(), "args")
	out.Reset()
	status = Execute(exampleModule(), []string{"x", missing}, &out)
	r = parseRun(t, status, out.String(), "")
	assert.Equal(t, 1, r.status)
	assert.Equal(t, "cannot read the arguments file: open "+missing+": no such file or directory", r.out["msg"])

	dir := t.TempDir()
	out.Reset()
	status = Execute(exampleModule(), []string{"x", dir}, &out)
	r = parseRun(t, status, out.String(), "")
	assert.Equal(t, "cannot read the arguments file: read "+dir+": is a directory", r.out["msg"])
}

func TestExecuteRealFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "args")
	require.NoError(t, os.WriteFile(p, []byte(`{"name": "web", "behave": "change"}`), 0o600))
	var out bytes.Buffer
	status := Execute(exampleModule(), []string{"x", p}, &out)
	r := parseRun(t, status, out.String(), "")
	assert.Equal(t, 0, r.status)
	assert.Equal(t, true, r.out["changed"])
}

func TestContextFromInternalKeys(t *testing.T) {
	type seen struct {
		ModuleName             string
		CheckMode, Diff, NoLog bool
		Verbosity              int
		TmpDir                 string
	}
	var got seen
	m := Module[struct{}]{Name: "ctx", SupportsCheckMode: true, Run: func(ctx *Context, _ *struct{}) (*Result, error) {
		got = seen{ctx.ModuleName, ctx.CheckMode, ctx.Diff, ctx.NoLog, ctx.Verbosity, ctx.TmpDir}
		return nil, nil
	}}
	r := execArgs(t, m, `{"_ansible_check_mode": true, "_ansible_diff": true, "_ansible_no_log": true,
		"_ansible_verbosity": 3, "_ansible_module_name": "chezlepro.sovereign.ctx", "_ansible_tmpdir": "/tmp/ansible-x"}`)
	assert.Equal(t, 0, r.status)
	assert.Equal(t, map[string]any{"changed": false, "invocation": map[string]any{"module_args": map[string]any{}}}, r.out)
	assert.Equal(t, seen{ModuleName: "chezlepro.sovereign.ctx", CheckMode: true, Diff: true, NoLog: true, Verbosity: 3, TmpDir: "/tmp/ansible-x"}, got)

	r = execArgs(t, m, `{"_ansible_tmpdir": null, "_ansible_module_name": null}`)
	assert.Equal(t, 0, r.status)
	assert.Equal(t, seen{ModuleName: "ctx"}, got, "defaults: module name from Module.Name, no tmpdir")
}

func TestCheckModeNotSupportedSkipsWithoutRunning(t *testing.T) {
	called := false
	m := exampleModule()
	m.SupportsCheckMode = false
	m.Run = func(*Context, *exampleOptions) (*Result, error) { called = true; return nil, nil }
	r := execArgs(t, m, `{"name": "web", "password": "pw-123", "_ansible_check_mode": true, "_chezlepro_no_log_values": ["pw-123"]}`)
	assert.False(t, called)
	assert.Equal(t, 0, r.status)
	assert.Equal(t, false, r.out["changed"])
	assert.Equal(t, true, r.out["skipped"])
	assert.Equal(t, "remote module (example) does not support check mode", r.out["msg"])
	assert.NotContains(t, r.out, "failed")
	assert.Equal(t, noLogPlaceholder, r.out["invocation"].(map[string]any)["module_args"].(map[string]any)["password"])

	// Bad arguments fail even in check mode, as in ansible-core.
	r = execArgs(t, m, `{"name": 5, "_ansible_check_mode": true}`)
	assert.Equal(t, true, r.out["failed"])
	assert.Contains(t, r.out["msg"], "argument 'name' is a JSON number")
	assert.False(t, called)
}

func TestCheckModeSupported(t *testing.T) {
	r := execArgs(t, exampleModule(), `{"name": "web", "behave": "change", "_ansible_check_mode": true}`)
	assert.Equal(t, false, r.out["changed"], "the example reports no change in check mode")
	assert.NotContains(t, r.out, "skipped")
	assert.Equal(t, "updated web with password ", r.out["msg"])
}

func TestDiffEmission(t *testing.T) {
	r := execArgs(t, exampleModule(), `{"name": "web", "dest": "/d", "behave": "change"}`)
	assert.NotContains(t, r.out, "diff", "no diff without _ansible_diff")

	r = execArgs(t, exampleModule(), `{"name": "web", "dest": "/d", "behave": "change", "_ansible_diff": true}`)
	assert.Equal(t, map[string]any{"before": "old\n", "after": "new \n", "before_header": "/d", "after_header": "/d"}, r.out["diff"])

	r = execArgs(t, exampleModule(), `{"name": "web", "behave": "change", "_ansible_diff": true, "gate": {"kind": "tcp"}}`)
	assert.Equal(t, []any{
		map[string]any{"before": "old\n", "after": "new \n"},
		map[string]any{"before": "gate: none\n", "after": "gate: tcp\n"},
	}, r.out["diff"], "several diffs are a list; empty headers are omitted")

	r = execArgs(t, exampleModule(), `{"name": "web", "_ansible_diff": true}`)
	assert.NotContains(t, r.out, "diff", "an empty diff is omitted")
}

func TestMaskingEverywhere(t *testing.T) {
	r := execArgs(t, exampleModule(), `{"name": "web", "dest": "/srv/hunter2x", "password": "hunter2", "behave": "change",
		"gate": {"kind": "http", "url": "https://h/?t=tok-42", "token": "tok-42", "headers": [{"name": "Auth", "value": "Bearer zz9"}]},
		"_ansible_diff": true, "_chezlepro_no_log_values": ["hunter2", "tok-42", "Bearer zz9"]}`)
	require.Equal(t, 0, r.status, r.stdout)
	assert.NotContains(t, r.stdout, "hunter2")
	assert.NotContains(t, r.stdout, "tok-42")
	assert.NotContains(t, r.stdout, "zz9")
	assert.Equal(t, "updated web with password ********", r.out["msg"])
	assert.Equal(t, "/srv/********x", r.out["dest"], "return values are masked")
	diffs := r.out["diff"].([]any)
	assert.Equal(t, "new ********\n", diffs[0].(map[string]any)["after"])
	assert.Equal(t, "/srv/********x", diffs[0].(map[string]any)["before_header"])
	args := r.out["invocation"].(map[string]any)["module_args"].(map[string]any)
	assert.Equal(t, noLogPlaceholder, args["password"], "a whole no_log value becomes the ansible-core placeholder")
	gate := args["gate"].(map[string]any)
	assert.Equal(t, noLogPlaceholder, gate["token"])
	assert.Equal(t, "https://h/?t=********", gate["url"], "a no_log value inside another string is starred")
	assert.Equal(t, noLogPlaceholder, gate["headers"].([]any)[0].(map[string]any)["value"])
	assert.Equal(t, "Auth", gate["headers"].([]any)[0].(map[string]any)["name"])

	r = execArgs(t, exampleModule(), `{"name": "web", "password": "hunter2", "behave": "warn", "_chezlepro_no_log_values": ["hunter2"]}`)
	assert.Equal(t, []any{"token ******** expires soon"}, r.out["warnings"])
	assert.Equal(t, []any{map[string]any{"msg": "option keep_releases will be renamed", "version": "2.0.0", "collection_name": "chezlepro.sovereign"}}, r.out["deprecations"])

	r = execArgs(t, exampleModule(), `{"name": "web", "password": "hunter2", "behave": "fail_with_values", "_chezlepro_no_log_values": ["hunter2"]}`)
	assert.Equal(t, map[string]any{"status": 503.0, "secret_echo": noLogPlaceholder}, r.out["gate_result"])

	// A secret that is a number masks numbers that contain it, and the
	// message of a failure that quotes it.
	r = execArgs(t, exampleModule(), `{"name": "web", "password": "503", "behave": "fail_with_values", "_chezlepro_no_log_values": ["503"]}`)
	assert.Equal(t, map[string]any{"status": noLogPlaceholder, "secret_echo": noLogPlaceholder}, r.out["gate_result"])
	assert.Equal(t, false, r.out["changed"], "booleans are never masked")

	r = execArgs(t, exampleModule(), `{"name": "hunter2", "behave": "fail", "_chezlepro_no_log_values": ["hunter2"]}`)
	assert.Equal(t, "cannot stage ********: disk full", r.out["msg"], "error messages are masked")

	// Without the controller's list, an option is not a secret.
	r = execArgs(t, exampleModule(), `{"name": "web", "password": "hunter2", "behave": "warn"}`)
	assert.Equal(t, []any{"token hunter2 expires soon"}, r.out["warnings"])
}

func TestRunPanics(t *testing.T) {
	r := execArgs(t, exampleModule(), `{"name": "web", "password": "hunter2", "behave": "panic"}`)
	assert.Equal(t, 1, r.status)
	assert.Equal(t, true, r.out["failed"])
	assert.Equal(t, "module panicked: assignment to entry in nil map", r.out["msg"])
	assert.Equal(t, []any{"about to panic"}, r.out["warnings"], "what was said before the panic is kept")
	assert.Contains(t, r.out, "invocation")
	assert.NotContains(t, r.stdout, "goroutine")
	assert.Contains(t, r.stderr, "panic: assignment to entry in nil map")
	assert.Contains(t, r.stderr, "runExample", "the stack goes to stderr")

	m := Module[struct{}]{Name: "p", Run: func(*Context, *struct{}) (*Result, error) { panic(errors.New("boom hunter2")) }}
	r = execArgs(t, m, `{}`)
	assert.Equal(t, "module panicked: boom hunter2", r.out["msg"])
}

func TestRunErrors(t *testing.T) {
	r := execArgs(t, exampleModule(), `{"name": "web", "behave": "fail"}`)
	assert.Equal(t, 1, r.status)
	assert.Equal(t, "cannot stage web: disk full", r.out["msg"])
	assert.NotContains(t, r.out, "summary", "a nil Result returns no values")

	r = execArgs(t, exampleModule(), `{"name": "web", "behave": "fail_with_values"}`)
	assert.Equal(t, "gate failed for web", r.out["msg"])
	assert.Equal(t, map[string]any{"status": 503.0, "secret_echo": ""}, r.out["gate_result"], "values are returned alongside the error")
}

func TestReservedKeys(t *testing.T) {
	r := execArgs(t, exampleModule(), `{"name": "web", "state": "present", "keep_releases": 5, "behave": "reserved"}`)
	assert.Equal(t, 1, r.status)
	assert.Equal(t, "module example returned reserved result keys in Result.Values: changed, msg (reserved: changed, deprecations, diff, failed, invocation, msg, skipped, warnings, and any _ansible_ key)", r.out["msg"])
	assert.Equal(t, false, r.out["changed"])
	assert.Equal(t, "web/present/5", r.out["summary"], "other values are kept")

	m := Module[struct{}]{Name: "r", Run: func(*Context, *struct{}) (*Result, error) {
		return &Result{Values: map[string]any{"_ansible_no_log": true, "ansible_facts": map[string]any{"x": 1}}}, errors.New("also failed")
	}}
	r = execArgs(t, m, `{}`)
	assert.Equal(t, "also failed; module r returned reserved result keys in Result.Values: _ansible_no_log (reserved: changed, deprecations, diff, failed, invocation, msg, skipped, warnings, and any _ansible_ key)", r.out["msg"])
	assert.Equal(t, map[string]any{"x": 1.0}, r.out["ansible_facts"])
}

type panicky struct{}

func (panicky) MarshalJSON() ([]byte, error) { panic("marshal boom") }

func TestUnencodableValues(t *testing.T) {
	r := execArgs(t, exampleModule(), `{"name": "web", "behave": "nan"}`)
	assert.Equal(t, 1, r.status)
	assert.Equal(t, "cannot encode the module's return values: json: unsupported value: NaN", r.out["msg"])
	assert.NotContains(t, r.out, "summary")

	m := Module[struct{}]{Name: "u", Run: func(*Context, *struct{}) (*Result, error) {
		return &Result{Changed: true, Values: map[string]any{"p": panicky{}}}, nil
	}}
	r = execArgs(t, m, `{}`)
	assert.Equal(t, 1, r.status)
	assert.Equal(t, "module panicked while encoding its return values: marshal boom", r.out["msg"])
	assert.Equal(t, true, r.out["changed"])
	assert.Contains(t, r.stderr, "marshal boom")
}

func TestNilResult(t *testing.T) {
	m := Module[struct{}]{Name: "n", Run: func(*Context, *struct{}) (*Result, error) { return nil, nil }}
	r := execArgs(t, m, `{}`)
	assert.Equal(t, 0, r.status)
	assert.Equal(t, map[string]any{"changed": false, "invocation": map[string]any{"module_args": map[string]any{}}}, r.out)
}

func TestModuleDeclaredWrongly(t *testing.T) {
	m := exampleModule()
	m.Run = nil
	r := execArgs(t, m, `{"name": "x"}`)
	assert.Equal(t, "module example is declared wrongly: Module.Run is nil", r.out["msg"])
	assert.Equal(t, 1, r.status)
}

func TestOutputIsOneCompactObjectWithSortedKeys(t *testing.T) {
	r := execArgs(t, exampleModule(), `{"name": "<b>&", "behave": "warn"}`)
	assert.Equal(t, 1, strings.Count(r.stdout, "\n"))
	assert.True(t, strings.HasPrefix(r.stdout, `{"changed":false,"deprecations":`), r.stdout)
	assert.Contains(t, r.stdout, `"name":"<b>&"`, "no HTML escaping: messages stay readable")
	var again map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &again))
}

func TestWarningsFromGoroutines(t *testing.T) {
	m := Module[struct{}]{Name: "g", Run: func(ctx *Context, _ *struct{}) (*Result, error) {
		var wg sync.WaitGroup
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx.Warn("w")
				ctx.Deprecate("d", "1.0.0")
			}()
		}
		wg.Wait()
		return nil, nil
	}}
	r := execArgs(t, m, `{}`)
	assert.Len(t, r.out["warnings"], 50)
	assert.Len(t, r.out["deprecations"], 50)
}

// A URL's password is masked wherever the URL is echoed, even when the
// arguments do not decode and the module never runs.
func TestURLPasswordsMasked(t *testing.T) {
	for _, args := range []string{
		`{"name": "x", "src": "https://u:hunter%32@forge/x.git"}`,
		`{"src": "https://u:hunter%32@forge/x.git", "unknown": 1}`,
		`{"name": "x", "files": [{"path": "/a", "src": "git://u:hunter%32@forge/x"}]}`,
	} {
		r := execArgs(t, exampleModule(), args)
		assert.NotContains(t, r.stdout, "hunter%32", args)
		assert.NotContains(t, r.stdout, "hunter2", args)
	}
}
