package ansible

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
)

// The example module used by unit, golden and fuzz tests: one option of
// every kind, no_log values, groups, and a Run that can fail or panic on
// request.

type exampleGate struct {
	Kind    string   `ansible:"kind" required:"true" choices:"http,tcp,command"`
	URL     string   `ansible:"url"`
	Timeout int      `ansible:"timeout" default:"30"`
	Token   string   `ansible:"token" no_log:"true"`
	Expect  []int    `ansible:"expect_status"`
	Headers []header `ansible:"headers"`
}

type header struct {
	Name  string `ansible:"name" required:"true"`
	Value string `ansible:"value" no_log:"true"`
}

type exampleFile struct {
	Path string `ansible:"path" type:"path" required:"true"`
	Mode *int   `ansible:"mode"`
}

type exampleOptions struct {
	Name     string            `ansible:"name" required:"true"`
	Dest     string            `ansible:"dest" type:"path" aliases:"path,target"`
	State    string            `ansible:"state" choices:"present,absent" default:"present"`
	Keep     int               `ansible:"keep_releases" default:"5"`
	Ratio    float64           `ansible:"ratio" default:"0.5"`
	Force    bool              `ansible:"force"`
	Timeout  *int              `ansible:"timeout"`
	Env      map[string]string `ansible:"env"`
	Extra    map[string]any    `ansible:"extra"`
	Args     []string          `ansible:"args"`
	Ports    []int             `ansible:"ports" choices:"80,443,8080"`
	Password string            `ansible:"password" no_log:"true"`
	Src      string            `ansible:"src"`
	Content  string            `ansible:"content"`
	Gate     *exampleGate      `ansible:"gate"`
	Files    []exampleFile     `ansible:"files"`
	Data     any               `ansible:"data"`
	Behave   string            `ansible:"behave" choices:"ok,change,fail,panic,fail_with_values,reserved,warn,nan,print"`
	internal int               // untagged: ignored by the runtime
}

func exampleModule() Module[exampleOptions] {
	return Module[exampleOptions]{
		Name:              "example",
		SupportsCheckMode: true,
		MutuallyExclusive: [][]string{{"src", "content"}},
		RequiredTogether:  [][]string{{"env", "extra"}},
		Run:               runExample,
	}
}

func runExample(ctx *Context, o *exampleOptions) (*Result, error) {
	res := &Result{Values: map[string]any{
		"name": o.Name,
		"dest": o.Dest,
	}}
	switch o.Behave {
	case "change":
		res.Changed = !ctx.CheckMode
		res.Msg = fmt.Sprintf("updated %s with password %s", o.Name, o.Password)
		res.Diff = []Diff{{Before: "old\n", After: "new " + o.Password + "\n", BeforeHeader: o.Dest, AfterHeader: o.Dest}}
		if o.Gate != nil {
			res.Diff = append(res.Diff, Diff{Before: "gate: none\n", After: "gate: " + o.Gate.Kind + "\n"})
		}
	case "fail":
		return nil, fmt.Errorf("cannot stage %s: %w", o.Name, errors.New("disk full"))
	case "fail_with_values":
		res.Values["gate_result"] = map[string]any{"status": 503, "secret_echo": o.Password}
		return res, fmt.Errorf("gate failed for %s", o.Name)
	case "panic":
		ctx.Warn("about to panic")
		var m map[string]int
		m["boom"]++ // nil map write: a real runtime panic
	case "reserved":
		res.Values["changed"] = "yes"
		res.Values["msg"] = "hijack"
	case "warn":
		ctx.Warn("token " + o.Password + " expires soon")
		ctx.Deprecate("option keep_releases will be renamed", "2.0.0")
	case "print":
		fmt.Println("stray output from module code")
		os.Stdout.WriteString("{\"changed\": true}\n")
	case "nan":
		res.Values["ratio"] = nanValue()
	}
	res.Values["summary"] = strings.Join([]string{o.Name, o.State, fmt.Sprint(o.Keep)}, "/")
	return res, nil
}

func nanValue() float64 { return math.NaN() }
