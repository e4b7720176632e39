package ansible

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type scalarOpts struct {
	S   string  `ansible:"s"`
	I   int     `ansible:"i"`
	I8  int8    `ansible:"i8"`
	U   uint    `ansible:"u"`
	F   float64 `ansible:"f"`
	B   bool    `ansible:"b"`
	PI  *int    `ansible:"pi"`
	PB  *bool   `ansible:"pb"`
	PS  *string `ansible:"ps"`
	Raw any     `ansible:"raw"`
}

func TestBoolAcceptsAnsibleBooleans(t *testing.T) {
	truthy := []string{`"y"`, `"yes"`, `"on"`, `"1"`, `"true"`, `"t"`, `1`, `1.0`, `true`, `"YES"`, `"True"`, `" on "`, `"T"`}
	falsy := []string{`"n"`, `"no"`, `"off"`, `"0"`, `"false"`, `"f"`, `0`, `0.0`, `false`, `"NO"`, `"False"`, `"Off"`, `"F"`}
	for _, v := range truthy {
		d := decodeJSON[scalarOpts](t, `{"b": `+v+`, "pb": `+v+`}`, groups{}, convWarn)
		require.NoError(t, d.err, v)
		assert.True(t, d.opts.B, v)
		assert.True(t, *d.opts.PB, v)
		assert.Equal(t, true, d.args["b"], v)
	}
	for _, v := range falsy {
		d := decodeJSON[scalarOpts](t, `{"b": `+v+`, "pb": `+v+`}`, groups{}, convWarn)
		require.NoError(t, d.err, v)
		assert.False(t, d.opts.B, v)
		require.NotNil(t, d.opts.PB, v)
		assert.False(t, *d.opts.PB, v)
	}
}

func TestBoolRejectsOthers(t *testing.T) {
	valid := "'y', 'yes', 'on', '1', 'true', 't', 1, 1.0, True, 'n', 'no', 'off', '0', 'false', 'f', 0, 0.0, False"
	cases := map[string]string{
		`"maybe"`: "argument 'b' is of type str and we were unable to convert to bool: The value 'maybe' is not a valid boolean.  Valid booleans include: " + valid,
		`""`:      "argument 'b' is of type str and we were unable to convert to bool: The value '' is not a valid boolean.  Valid booleans include: " + valid,
		`2`:       "argument 'b' is of type int and we were unable to convert to bool: The value '2' is not a valid boolean.  Valid booleans include: " + valid,
		`0.5`:     "argument 'b' is of type float and we were unable to convert to bool: The value '0.5' is not a valid boolean.  Valid booleans include: " + valid,
		`[true]`:  "argument 'b' is of type list and we were unable to convert to bool: list cannot be converted to a bool",
		`{}`:      "argument 'b' is of type dict and we were unable to convert to bool: dict cannot be converted to a bool",
	}
	for in, want := range cases {
		d := decodeJSON[scalarOpts](t, `{"b": `+in+`}`, groups{}, convWarn)
		assert.Equal(t, []string{want}, problems(t, d.err), in)
	}
}

func TestIntConversions(t *testing.T) {
	d := decodeJSON[scalarOpts](t, `{"i": "42", "i8": -128, "u": " 7 ", "pi": 0}`, groups{}, convWarn)
	require.NoError(t, d.err)
	assert.Equal(t, 42, d.opts.I)
	assert.Equal(t, int8(-128), d.opts.I8)
	assert.Equal(t, uint(7), d.opts.U)
	require.NotNil(t, d.opts.PI)
	assert.Equal(t, 0, *d.opts.PI)
	assert.Equal(t, int64(42), d.args["i"])

	cases := map[string]string{
		`{"i": "abc"}`:                  "argument 'i' is of type str and we were unable to convert to int: 'abc' cannot be converted to an int",
		`{"i": 1.5}`:                    "argument 'i' is of type float and we were unable to convert to int: float cannot be converted to an int",
		`{"i": 2.0}`:                    "argument 'i' is of type float and we were unable to convert to int: float cannot be converted to an int",
		`{"i": true}`:                   "argument 'i' is of type bool and we were unable to convert to int: bool cannot be converted to an int",
		`{"i": [1]}`:                    "argument 'i' is of type list and we were unable to convert to int: list cannot be converted to an int",
		`{"i8": 128}`:                   "argument 'i8' is of type int and we were unable to convert to int: 128 is out of range for int8",
		`{"u": -1}`:                     "argument 'u' is of type int and we were unable to convert to int: -1 is out of range for uint",
		`{"i": 99999999999999999999}`:   "argument 'i' is of type int and we were unable to convert to int: 99999999999999999999 is out of range for an int",
		`{"i": "99999999999999999999"}`: "argument 'i' is of type str and we were unable to convert to int: '99999999999999999999' is out of range for an int",
	}
	for in, want := range cases {
		d := decodeJSON[scalarOpts](t, in, groups{}, convWarn)
		assert.Equal(t, []string{want}, problems(t, d.err), in)
	}
}

func TestFloatConversions(t *testing.T) {
	for in, want := range map[string]float64{`1.5`: 1.5, `"2.5"`: 2.5, `3`: 3, `" 1e3 "`: 1000} {
		d := decodeJSON[scalarOpts](t, `{"f": `+in+`}`, groups{}, convWarn)
		require.NoError(t, d.err, in)
		assert.Equal(t, want, d.opts.F, in)
	}
	cases := map[string]string{
		`"nan"`:   "argument 'f' is of type str and we were unable to convert to float: 'nan' cannot be converted to a finite float",
		`"inf"`:   "argument 'f' is of type str and we were unable to convert to float: 'inf' cannot be converted to a finite float",
		`1e999`:   "argument 'f' is of type float and we were unable to convert to float: 1e999 cannot be converted to a finite float",
		`"x"`:     "argument 'f' is of type str and we were unable to convert to float: 'x' cannot be converted to a finite float",
		`false`:   "argument 'f' is of type bool and we were unable to convert to float: bool cannot be converted to a float",
		`{"a":1}`: "argument 'f' is of type dict and we were unable to convert to float: dict cannot be converted to a float",
	}
	for in, want := range cases {
		d := decodeJSON[scalarOpts](t, `{"f": `+in+`}`, groups{}, convWarn)
		assert.Equal(t, []string{want}, problems(t, d.err), in)
	}
}

func TestStringConversionAction(t *testing.T) {
	d := decodeJSON[scalarOpts](t, `{"s": 8080, "ps": true}`, groups{}, convWarn)
	require.NoError(t, d.err)
	assert.Equal(t, "8080", d.opts.S)
	assert.Equal(t, "True", *d.opts.PS, "Python's str(True)")
	assert.Equal(t, []string{
		"The value 8080 (type int) in a string field was converted to '8080' (type string) for option 's'. If this does not look like what you expect, quote the entire value to ensure it does not change.",
		"The value True (type bool) in a string field was converted to 'True' (type string) for option 'ps'. If this does not look like what you expect, quote the entire value to ensure it does not change.",
	}, d.warnings)

	d = decodeJSON[scalarOpts](t, `{"s": 1.50}`, groups{}, convIgnore)
	require.NoError(t, d.err)
	assert.Equal(t, "1.50", d.opts.S)
	assert.Empty(t, d.warnings)

	d = decodeJSON[scalarOpts](t, `{"s": 8080}`, groups{}, convError)
	assert.Equal(t, []string{"argument 's' is of type int and we were unable to convert to str: 8080 is not a string and conversion is not allowed"}, problems(t, d.err))
	assert.Empty(t, d.warnings)

	d = decodeJSON[scalarOpts](t, `{"s": ["a"]}`, groups{}, convIgnore)
	assert.Equal(t, []string{"argument 's' is of type list and we were unable to convert to str: list cannot be converted to a str"}, problems(t, d.err))
}

func TestNullMeansAbsentAndPointersStayNil(t *testing.T) {
	d := decodeJSON[scalarOpts](t, `{"s": null, "pi": null, "raw": null}`, groups{}, convWarn)
	require.NoError(t, d.err)
	assert.Nil(t, d.opts.PI)
	assert.Nil(t, d.opts.PB)
	assert.Nil(t, d.opts.Raw)
	for _, k := range []string{"s", "i", "i8", "u", "f", "b", "pi", "pb", "ps", "raw"} {
		v, ok := d.args[k]
		assert.True(t, ok, "every option appears in module_args: %s", k)
		assert.Nil(t, v, k)
	}
}

func TestRawBecomesPlainGoValues(t *testing.T) {
	d := decodeJSON[scalarOpts](t, `{"raw": {"n": 3, "f": 1.5, "l": [1, "x", true, null], "big": 1e400}}`, groups{}, convWarn)
	require.NoError(t, d.err)
	assert.Equal(t, map[string]any{"n": int64(3), "f": 1.5, "l": []any{int64(1), "x", true, nil}, "big": "1e400"}, d.opts.Raw)
}

type collOpts struct {
	L     []string          `ansible:"l"`
	LI    []int             `ansible:"li"`
	LP    []string          `ansible:"lp" type:"path"`
	D     map[string]string `ansible:"d"`
	DI    map[string]int    `ansible:"di"`
	DA    map[string]any    `ansible:"da"`
	Named []state           `ansible:"named" choices:"on,off"`
}

type state string

func TestListConversions(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{`["a", "b"]`, []string{"a", "b"}},
		{`"a,b,c"`, []string{"a", "b", "c"}},
		{`"single"`, []string{"single"}},
		{`""`, []string{""}}, // as Python's "".split(",")
		{`"a, b"`, []string{"a", " b"}},
		{`42`, []string{"42"}},
		{`[]`, []string{}},
	}
	for _, c := range cases {
		d := decodeJSON[collOpts](t, `{"l": `+c.in+`}`, groups{}, convIgnore)
		require.NoError(t, d.err, c.in)
		assert.Equal(t, c.want, d.opts.L, c.in)
	}
	d := decodeJSON[collOpts](t, `{"li": "1,2", "lp": "~/a,$APP/b", "named": ["on"]}`, groups{}, convWarn)
	require.NoError(t, d.err)
	assert.Equal(t, []int{1, 2}, d.opts.LI)
	assert.Equal(t, []string{"/home/me/a", "shop/b"}, d.opts.LP)
	assert.Equal(t, []state{"on"}, d.opts.Named)
	assert.Equal(t, []any{int64(1), int64(2)}, d.args["li"])

	d = decodeJSON[collOpts](t, `{"l": {"a": 1}, "li": [1, "x", 3.5]}`, groups{}, convWarn)
	assert.Equal(t, []string{
		"argument 'l' is of type dict and we were unable to convert to list: dict cannot be converted to a list",
		"argument 'li[1]' is of type str and we were unable to convert to int: 'x' cannot be converted to an int",
		"argument 'li[2]' is of type float and we were unable to convert to int: float cannot be converted to an int",
	}, problems(t, d.err))

	d = decodeJSON[collOpts](t, `{"l": [1, "b"]}`, groups{}, convWarn)
	require.NoError(t, d.err)
	assert.Equal(t, []string{"1", "b"}, d.opts.L)
	require.Len(t, d.warnings, 1)
	assert.Contains(t, d.warnings[0], "for option 'l[0]'")
}

func TestDictConversions(t *testing.T) {
	cases := []struct {
		in   string
		want map[string]string
	}{
		{`{"a": "1", "b": "x y"}`, map[string]string{"a": "1", "b": "x y"}},
		{`"{\"a\": \"1\"}"`, map[string]string{"a": "1"}},
		{`"a=1 b=2"`, map[string]string{"a": "1", "b": "2"}},
		{`"a=1,b=2, c=3"`, map[string]string{"a": "1", "b": "2", "c": "3"}},
		{`"msg='hello world' path=\"/a b\" eq=x=y"`, map[string]string{"msg": "hello world", "path": "/a b", "eq": "x=y"}},
		{`"k=a\\ b"`, map[string]string{"k": "a b"}},
		{`"empty="`, map[string]string{"empty": ""}},
		{`{}`, map[string]string{}},
	}
	for _, c := range cases {
		d := decodeJSON[collOpts](t, `{"d": `+c.in+`}`, groups{}, convIgnore)
		require.NoError(t, d.err, c.in)
		assert.Equal(t, c.want, d.opts.D, c.in)
	}
	d := decodeJSON[collOpts](t, `{"di": "a=1 b=2", "da": "{\"n\": 1, \"l\": [true]}"}`, groups{}, convWarn)
	require.NoError(t, d.err)
	assert.Equal(t, map[string]int{"a": 1, "b": 2}, d.opts.DI)
	assert.Equal(t, map[string]any{"n": int64(1), "l": []any{true}}, d.opts.DA)

	bad := map[string]string{
		`"just text"`:   "argument 'd' is of type str and we were unable to convert to dict: dictionary requested, could not parse JSON or key=value",
		`"{not json"`:   "argument 'd' is of type str and we were unable to convert to dict: unable to evaluate string as dictionary: invalid character 'n' looking for beginning of object key string",
		`"{\"a\":1} x"`: "argument 'd' is of type str and we were unable to convert to dict: unable to evaluate string as dictionary: unexpected data after the JSON object",
		`"a=1 oops"`:    "argument 'd' is of type str and we were unable to convert to dict: 'oops' is not a key=value pair",
		`["a"]`:         "argument 'd' is of type list and we were unable to convert to dict: list cannot be converted to a dict",
		`{"a": [1]}`:    "argument 'd.a' is of type list and we were unable to convert to str: list cannot be converted to a str",
	}
	for in, want := range bad {
		d := decodeJSON[collOpts](t, `{"d": `+in+`}`, groups{}, convWarn)
		assert.Equal(t, []string{want}, problems(t, d.err), in)
	}
}

type pathOpts struct {
	P  string  `ansible:"p" type:"path"`
	PP *string `ansible:"pp" type:"path" default:"~/.cache/$APP"`
}

func TestPathExpansion(t *testing.T) {
	cases := map[string]string{
		`"~"`:           "/home/me",
		`"~/x"`:         "/home/me/x",
		`"~ops/x"`:      "/srv/ops/x",
		`"~root"`:       "/",
		`"~nobody/x"`:   "~nobody/x",
		`"$APP/x"`:      "shop/x",
		`"${APP}x"`:     "shopx",
		`"$UNSET/x"`:    "$UNSET/x",
		`"${UNSET}"`:    "${UNSET}",
		`"a$EMPTY/b"`:   "a/b",
		`"$HOME/~"`:     "/home/me/~",
		`"~/$APP"`:      "/home/me/shop",
		`"/plain/path"`: "/plain/path",
		`"$"`:           "$",
		`"${}"`:         "${}",
		`1234`:          "1234",
		`"x/~/y"`:       "x/~/y",
	}
	for in, want := range cases {
		d := decodeJSON[pathOpts](t, `{"p": `+in+`}`, groups{}, convError)
		require.NoError(t, d.err, in)
		assert.Equal(t, want, d.opts.P, in)
		assert.Equal(t, want, d.args["p"], in)
		assert.Empty(t, d.warnings, "paths convert silently, as check_type_path does")
	}
	d := decodeJSON[pathOpts](t, `{}`, groups{}, convWarn)
	require.NoError(t, d.err)
	require.NotNil(t, d.opts.PP)
	assert.Equal(t, "/home/me/.cache/shop", *d.opts.PP, "defaults are expanded too")
}

func TestRequiredDefaultsChoicesAliases(t *testing.T) {
	d := decodeJSON[exampleOptions](t, `{"name": "web", "path": "/srv/web"}`, groups{}, convWarn)
	require.NoError(t, d.err)
	assert.Equal(t, "/srv/web", d.opts.Dest, "alias path sets dest")
	assert.Equal(t, "present", d.opts.State)
	assert.Equal(t, 5, d.opts.Keep)
	assert.Equal(t, 0.5, d.opts.Ratio)
	assert.Equal(t, "/srv/web", d.args["dest"], "module_args uses the canonical name")
	assert.NotContains(t, d.args, "path")
	assert.Equal(t, int64(5), d.args["keep_releases"])
	assert.Nil(t, d.opts.Gate)
	assert.Nil(t, d.args["gate"])

	d = decodeJSON[exampleOptions](t, `{}`, groups{}, convWarn)
	assert.Equal(t, []string{"missing required arguments: name"}, problems(t, d.err))

	d = decodeJSON[exampleOptions](t, `{"name": "x", "state": "latest", "ports": [80, 22, "8080", 21]}`, groups{}, convWarn)
	assert.Equal(t, []string{
		"value of state must be one of: present, absent, got: latest",
		"value of ports must be one or more of: 80, 443, 8080. Got no match for: 22, 21",
	}, problems(t, d.err))

	d = decodeJSON[exampleOptions](t, `{"name": "x", "dest": "/a", "path": "/b", "target": "/c"}`, groups{}, convWarn)
	assert.Equal(t, []string{"option dest is given under several names (dest, path, target); use only one"}, problems(t, d.err))

	d = decodeJSON[exampleOptions](t, `{"name": "x", "target": "/b", "path": "/c"}`, groups{}, convWarn)
	assert.Equal(t, []string{"option dest is given under several names (path, target); use only one"}, problems(t, d.err))

	d = decodeJSON[exampleOptions](t, `{"name": "x", "dest": null, "path": "/b"}`, groups{}, convWarn)
	require.NoError(t, d.err, "a null canonical name does not collide with its alias")
	assert.Equal(t, "/b", d.opts.Dest)
}

func TestUnsupportedParameters(t *testing.T) {
	d := decodeJSON[exampleOptions](t, `{"name": "x", "zeta": 1, "alpha": 2}`, groups{}, convWarn)
	assert.Equal(t, []string{
		"Unsupported parameters for (test) module: alpha, zeta. Supported parameters include: args, behave, content, data, dest, env, extra, files, force, gate, keep_releases, name, password, ports, ratio, src, state, timeout (path, target).",
	}, problems(t, d.err))

	d = decodeJSON[exampleOptions](t, `{"name": "x", "gate": {"kind": "tcp", "port": 1}, "files": [{"path": "/a"}, {"path": "/b", "owner": "me"}], "state": "bad"}`, groups{}, convWarn)
	assert.Equal(t, []string{
		"Unsupported parameters for (test) module: gate.port. Supported parameters include: expect_status, headers, kind, timeout, token, url.",
		"Unsupported parameters for (test) module: files[1].owner. Supported parameters include: mode, path.",
		"value of state must be one of: present, absent, got: bad",
	}, problems(t, d.err), "unsupported parameters come first, then the rest")

	d = decodeJSON[exampleOptions](t, `{"name": "x", "_ansible_check_mode": true}`, groups{}, convWarn)
	assert.Contains(t, problems(t, d.err)[0], "Unsupported parameters for (test) module: _ansible_check_mode.",
		"the decoder sees user parameters only: the runtime strips _ansible_* keys before")
}

func TestNestedOptions(t *testing.T) {
	d := decodeJSON[exampleOptions](t, `{"name": "x",
		"gate": {"kind": "http", "url": "http://h/", "expect_status": "200,204", "headers": [{"name": "A", "value": "v"}]},
		"files": [{"path": "~/a", "mode": "0644"}, {"path": "/b"}]}`, groups{}, convWarn)
	require.NoError(t, d.err)
	require.NotNil(t, d.opts.Gate)
	assert.Equal(t, exampleGate{Kind: "http", URL: "http://h/", Timeout: 30, Expect: []int{200, 204}, Headers: []header{{Name: "A", Value: "v"}}}, *d.opts.Gate)
	require.Len(t, d.opts.Files, 2)
	assert.Equal(t, "/home/me/a", d.opts.Files[0].Path)
	require.NotNil(t, d.opts.Files[0].Mode)
	assert.Equal(t, 644, *d.opts.Files[0].Mode)
	assert.Nil(t, d.opts.Files[1].Mode)
	assert.Equal(t, map[string]any{
		"kind": "http", "url": "http://h/", "timeout": int64(30), "token": nil,
		"expect_status": []any{int64(200), int64(204)},
		"headers":       []any{map[string]any{"name": "A", "value": "v"}},
	}, d.args["gate"])

	d = decodeJSON[exampleOptions](t, `{"name": "x", "gate": "kind=tcp timeout=5"}`, groups{}, convWarn)
	require.NoError(t, d.err, "a dict with suboptions also accepts k=v")
	assert.Equal(t, 5, d.opts.Gate.Timeout)

	d = decodeJSON[exampleOptions](t, `{"name": "x",
		"gate": {"url": "u", "timeout": "soon", "headers": [{"value": "v"}, "oops"]},
		"files": [{"mode": 1}, {"path": "/b", "mode": "rw"}, 7]}`, groups{}, convWarn)
	assert.Equal(t, []string{
		"missing required arguments: gate.kind",
		"argument 'gate.timeout' is of type str and we were unable to convert to int: 'soon' cannot be converted to an int",
		"missing required arguments: gate.headers[0].name",
		"argument 'gate.headers[1]' is of type str and we were unable to convert to dict: dictionary requested, could not parse JSON or key=value",
		"missing required arguments: files[0].path",
		"argument 'files[1].mode' is of type str and we were unable to convert to int: 'rw' cannot be converted to an int",
		"argument 'files[2]' is of type int and we were unable to convert to dict: int cannot be converted to a dict",
	}, problems(t, d.err))

	d = decodeJSON[exampleOptions](t, `{"name": "x", "gate": {"kind": "udp"}}`, groups{}, convWarn)
	assert.Equal(t, []string{"value of gate.kind must be one of: http, tcp, command, got: udp"}, problems(t, d.err))

	d = decodeJSON[exampleOptions](t, `{"name": "x", "gate": [1]}`, groups{}, convWarn)
	assert.Equal(t, []string{"argument 'gate' is of type list and we were unable to convert to dict: list cannot be converted to a dict"}, problems(t, d.err))
}

func TestGroups(t *testing.T) {
	type gOpts struct {
		A string `ansible:"a"`
		B string `ansible:"b" aliases:"bee"`
		C string `ansible:"c"`
		D string `ansible:"d" default:"dee"`
	}
	g := groups{
		mutuallyExclusive: [][]string{{"a", "b"}, {"a", "c"}},
		requiredTogether:  [][]string{{"b", "c"}},
		requiredOneOf:     [][]string{{"a", "b"}},
	}
	cases := []struct {
		in   string
		want []string
	}{
		{`{"a": "1"}`, nil},
		{`{"b": "1", "c": "1"}`, nil},
		{`{"a": "1", "bee": "1", "c": "1"}`, []string{"parameters are mutually exclusive: a|b, a|c"}},
		{`{"a": "1", "b": null}`, nil},
		{`{"bee": "1"}`, []string{"parameters are required together: b, c"}},
		{`{"c": "1"}`, []string{"parameters are required together: b, c", "one of the following is required: a, b"}},
		{`{}`, []string{"one of the following is required: a, b"}},
	}
	for _, c := range cases {
		d := decodeJSON[gOpts](t, c.in, g, convWarn)
		if c.want == nil {
			assert.NoError(t, d.err, c.in)
			continue
		}
		assert.Equal(t, c.want, problems(t, d.err), c.in)
	}
	// A default counts as given for required_one_of, as in ansible-core.
	d := decodeJSON[gOpts](t, `{}`, groups{requiredOneOf: [][]string{{"a", "d"}}}, convWarn)
	assert.NoError(t, d.err)
}

func TestNoLogValuesCollected(t *testing.T) {
	d := decodeJSON[exampleOptions](t, `{"name": "x", "password": "hunter2",
		"gate": {"kind": "tcp", "token": "tok", "headers": [{"name": "A", "value": "hv"}, {"name": "B", "value": ""}]},
		"files": [{"path": "/a"}]}`, groups{}, convWarn)
	require.NoError(t, d.err)
	assert.Equal(t, map[string]struct{}{"hunter2": {}, "tok": {}, "hv": {}}, d.noLog, "empty strings are never secrets")

	type numOpts struct {
		Pin  int      `ansible:"pin" no_log:"true"`
		Keys []string `ansible:"keys" no_log:"true"`
		Flag bool     `ansible:"flag" no_log:"true"`
		F    float64  `ansible:"f" no_log:"true"`
		Bad  int      `ansible:"bad" no_log:"true"`
	}
	n := decodeJSON[numOpts](t, `{"pin": "0042", "keys": "k1,k2", "flag": true, "f": 2, "bad": "s3cret"}`, groups{}, convWarn)
	require.Error(t, n.err)
	assert.Equal(t, map[string]struct{}{
		"0042": {}, "42": {}, // as given and as converted
		"k1,k2": {}, "k1": {}, "k2": {},
		"2": {}, "2.0": {},
		"s3cret": {}, // a value failing conversion is still masked in the error
	}, n.noLog)
}

func TestNamedTypesAndUints(t *testing.T) {
	type named struct {
		S state            `ansible:"s" default:"on"`
		M map[state]uint16 `ansible:"m"`
	}
	d := decodeJSON[named](t, `{"m": {"a": 65535}}`, groups{}, convWarn)
	require.NoError(t, d.err)
	assert.Equal(t, state("on"), d.opts.S)
	assert.Equal(t, map[state]uint16{"a": 65535}, d.opts.M)
	d = decodeJSON[named](t, `{"m": {"a": 65536}}`, groups{}, convWarn)
	assert.Equal(t, []string{"argument 'm.a' is of type int and we were unable to convert to int: 65536 is out of range for uint16"}, problems(t, d.err))
}

func TestAllProblemsReportedTogether(t *testing.T) {
	d := decodeJSON[exampleOptions](t, `{"bogus": 1, "keep_releases": "x", "state": "gone"}`, groups{}, convWarn)
	got := problems(t, d.err)
	assert.Equal(t, []string{
		"Unsupported parameters for (test) module: bogus. Supported parameters include: args, behave, content, data, dest, env, extra, files, force, gate, keep_releases, name, password, ports, ratio, src, state, timeout (path, target).",
		"missing required arguments: name",
		"value of state must be one of: present, absent, got: gone",
		"argument 'keep_releases' is of type str and we were unable to convert to int: 'x' cannot be converted to an int",
	}, got)
	assert.Equal(t, fmt.Sprint(got[0], " ", got[1], "; ", got[2], "; ", got[3]), d.err.Error(),
		"problems are joined with '; ', or a space after one that ends a sentence")
}
