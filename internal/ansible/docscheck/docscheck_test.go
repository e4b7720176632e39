package docscheck

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chezlepro/sovereign/internal/ansible"
)

// recorder collects Errorf calls.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Errorf(f string, a ...any) { r.errs = append(r.errs, fmt.Sprintf(f, a...)) }

type gate struct {
	Kind string `json:"kind"`
	Port *int   `json:"port"`
}

type good struct {
	Root  ansible.Path      `json:"root"`
	Name  string            `json:"name"`
	Keep  int               `json:"keep"`
	Ratio float64           `json:"ratio"`
	Force bool              `json:"force"`
	Mode  any               `json:"mode"`
	Args  []string          `json:"args"`
	Env   map[string]string `json:"env"`
	Gate  *gate             `json:"gate"`
	Gates []gate            `json:"gates"`
}

const sidecar = `DOCUMENTATION:
  options:
    root: {type: path}
    name: {}
    keep: {type: int, default: 5}
    ratio: {type: float}
    force: {type: bool}
    mode: {type: raw}
    args: {type: list, elements: str}
    env: {type: dict}
    gate:
      type: dict
      suboptions:
        kind: {type: str, choices: [tcp, http]}
        port: {type: int}
    gates:
      type: list
      elements: dict
      suboptions:
        kind: {}
        port: {type: int}
RETURN: {}
`

// check runs one of the comparisons on a sidecar written from doc.
func check(t *testing.T, doc string, comparison func(testing.TB, string)) []string {
	p := filepath.Join(t.TempDir(), "m.yml")
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &recorder{TB: t}
	comparison(r, p)
	return r.errs
}

func compare[O any](t *testing.T, doc string) []string { return check(t, doc, Compare[O]) }

func TestAgreeing(t *testing.T) {
	if errs := compare[good](t, sidecar); len(errs) > 0 {
		t.Fatalf("unexpected differences: %q", errs)
	}
}

func TestDifferences(t *testing.T) {
	type bad struct {
		Root  string         `json:"root"`  // path needs ansible.Path
		Name  int            `json:"name"`  // str
		Keep  float64        `json:"keep"`  // int
		Extra bool           `json:"extra"` // not documented
		Args  []int          `json:"args"`  // list of str
		Gate  map[string]any `json:"gate"`  // dict with suboptions
		Gates []struct {
			Kind string `json:"kind"`
		} `json:"gates"` // port missing
	}
	errs := strings.Join(compare[bad](t, sidecar), "\n")
	for _, want := range []string{
		"option root: documented type path, Go has string",
		"option name: documented type str, Go has int",
		"option keep: documented type int, Go has float64",
		`field Extra (json "extra") is not a documented option`,
		"option args[]: documented type str, Go has int",
		"option gate: a dict with documented keys needs a struct field",
		`option gates[].port is documented but no field has json tag "port"`,
		"option ratio is documented but no field",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("missing %q in:\n%s", want, errs)
		}
	}
}

func TestSidecarShape(t *testing.T) {
	errs := compare[good](t, "DOCUMENTATION: |\n  options: {}\nRETURN: {}\n")
	if len(errs) != 1 || !strings.Contains(errs[0], "top-level DOCUMENTATION must be a YAML mapping") {
		t.Fatalf("got %q", errs)
	}
}

const returnsSidecar = `DOCUMENTATION: {options: {}}
RETURN:
  release: {type: str, returned: always}
  size: {type: int, returned: when known}
  staged: {type: bool}
  removed: {type: list, elements: str}
  gate:
    type: dict
    contains:
      passed: {type: bool}
      attempts: {type: int}
  units: {type: dict}
  smoke: {type: raw}
`

type goodGate struct {
	Passed   bool `json:"passed"`
	Attempts int  `json:"attempts"`
}

type goodResult struct {
	Release string            `json:"release"`
	Size    *int64            `json:"size,omitempty"`
	Staged  bool              `json:"staged"`
	Removed []string          `json:"removed"`
	Gate    *goodGate         `json:"gate,omitempty"`
	Units   map[string]string `json:"units"`
	Smoke   any               `json:"smoke"`
	hidden  int               //nolint:unused // unexported: not a return value
}

func compareReturns[R any](t *testing.T, doc string) []string {
	return check(t, doc, CompareReturns[R])
}

func TestReturnsAgreeing(t *testing.T) {
	if errs := compareReturns[goodResult](t, returnsSidecar); len(errs) > 0 {
		t.Fatalf("unexpected differences: %q", errs)
	}
}

func TestReturnsDifferences(t *testing.T) {
	type bad struct {
		Release int      `json:"release"` // str
		Size    string   `json:"size"`    // int
		Extra   bool     `json:"extra"`   // not documented
		Removed []int    `json:"removed"` // list of str
		Gate    struct { // attempts missing
			Passed bool `json:"passed"`
		} `json:"gate"`
		Units []string `json:"units"` // dict
		Smoke any      `json:"smoke"`
	}
	errs := strings.Join(compareReturns[bad](t, returnsSidecar), "\n")
	for _, want := range []string{
		"return value release: documented type str, Go has int",
		"return value size: documented type int, Go has string",
		`field Extra (json "extra") is not a documented return value`,
		"return value removed[]: documented type str, Go has int",
		`return value gate.attempts is documented but no field has json tag "attempts"`,
		"return value units: documented type dict, Go has []string",
		"return value staged is documented but no field",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("missing %q in:\n%s", want, errs)
		}
	}
}
