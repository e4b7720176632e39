package ansible

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
)

// The example module used by unit, golden and fuzz tests: one option of
// every kind and a Run that can fail or panic on request. Its arguments are
// written as the controller sends them: validated, defaults applied, with
// the no_log values under _chezlepro_no_log_values.

type exampleGate struct {
	Kind    string   `json:"kind"`
	URL     string   `json:"url"`
	Timeout int      `json:"timeout"`
	Token   string   `json:"token"`
	Expect  []int    `json:"expect_status"`
	Headers []header `json:"headers"`
}

type header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type exampleFile struct {
	Path Path `json:"path"`
	Mode *int `json:"mode"`
}

type exampleOptions struct {
	Name     string            `json:"name"`
	Dest     Path              `json:"dest"`
	State    string            `json:"state"`
	Keep     int               `json:"keep_releases"`
	Ratio    float64           `json:"ratio"`
	Force    bool              `json:"force"`
	Timeout  *int              `json:"timeout"`
	Env      map[string]string `json:"env"`
	Extra    map[string]any    `json:"extra"`
	Args     []string          `json:"args"`
	Ports    []int             `json:"ports"`
	Password string            `json:"password"`
	Src      string            `json:"src"`
	Content  string            `json:"content"`
	Gate     *exampleGate      `json:"gate"`
	Files    []exampleFile     `json:"files"`
	Data     any               `json:"data"`
	Behave   string            `json:"behave"`
	internal int               // untagged and unexported: never decoded
}

func exampleModule() Module[exampleOptions] {
	return Module[exampleOptions]{
		Name:              "example",
		SupportsCheckMode: true,
		Run:               runExample,
	}
}

func runExample(ctx *Context, o *exampleOptions) (*Result, error) {
	values := map[string]any{
		"name": o.Name,
		"dest": string(o.Dest),
	}
	res := &Result{Values: values}
	switch o.Behave {
	case "change":
		res.Changed = !ctx.CheckMode
		res.Msg = fmt.Sprintf("updated %s with password %s", o.Name, o.Password)
		res.Diff = []Diff{{Before: "old\n", After: "new " + o.Password + "\n", BeforeHeader: string(o.Dest), AfterHeader: string(o.Dest)}}
		if o.Gate != nil {
			res.Diff = append(res.Diff, Diff{Before: "gate: none\n", After: "gate: " + o.Gate.Kind + "\n"})
		}
	case "fail":
		return nil, fmt.Errorf("cannot stage %s: %w", o.Name, errors.New("disk full"))
	case "fail_with_values":
		values["gate_result"] = map[string]any{"status": 503, "secret_echo": o.Password}
		return res, fmt.Errorf("gate failed for %s", o.Name)
	case "panic":
		ctx.Warn("about to panic")
		var m map[string]int
		m["boom"]++ // nil map write: a real runtime panic
	case "reserved":
		values["changed"] = "yes"
		values["msg"] = "hijack"
	case "warn":
		ctx.Warn("token " + o.Password + " expires soon")
		ctx.Deprecate("option keep_releases will be renamed", "2.0.0")
	case "print":
		fmt.Println("stray output from module code")
		os.Stdout.WriteString("{\"changed\": true}\n")
	case "nan":
		values["ratio"] = nanValue()
	}
	values["summary"] = strings.Join([]string{o.Name, o.State, fmt.Sprint(o.Keep)}, "/")
	return res, nil
}

func nanValue() float64 { return math.NaN() }
