package docscheck

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type sub struct {
	Kind  string `ansible:"kind" required:"true" choices:"http,tcp"`
	Retry int    `ansible:"retries" default:"3"`
}

type opts struct {
	Name    string         `ansible:"name" required:"true" aliases:"id,label"`
	Dest    string         `ansible:"dest" type:"path"`
	State   string         `ansible:"state" choices:"present,absent" default:"present"`
	Keep    int            `ansible:"keep" default:"5"`
	Ratio   float64        `ansible:"ratio" default:"0.5"`
	Force   bool           `ansible:"force" default:"true"`
	Ports   []int          `ansible:"ports" default:"80,443" choices:"80,443,8080"`
	Token   string         `ansible:"token" no_log:"true"`
	Env     map[string]any `ansible:"env"`
	Gate    *sub           `ansible:"gate"`
	Steps   []sub          `ansible:"steps"`
	Payload any            `ansible:"payload"`
}

// matching is the DOCUMENTATION of opts, written the way module authors do
// (type str left implicit, yes for true, choices in another order).
const matching = `
module: sample
short_description: test
options:
  name:
    description: the name
    required: true
    aliases: [label, id]
  dest:
    type: path
  state:
    choices: [absent, present]
    default: present
  keep:
    type: int
    default: 5
  ratio:
    type: float
    default: 0.5
  force:
    type: bool
    default: yes
  ports:
    type: list
    elements: int
    default: [80, 443]
    choices: [443, 80, 8080]
  token:
    type: str
  env:
    type: dict
  gate:
    type: dict
    suboptions:
      kind:
        required: true
        choices: [http, tcp]
      retries:
        type: int
        default: "3"
  steps:
    type: list
    elements: dict
    suboptions:
      kind:
        type: str
        required: true
        choices: [tcp, http]
      retries:
        type: int
        default: 3
  payload:
    type: raw
`

// recorder is a testing.TB that records failures instead of failing, so the
// checker's own failures can be asserted.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func writeSidecar(t *testing.T, doc string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("DOCUMENTATION:\n")
	for _, line := range strings.Split(strings.TrimPrefix(doc, "\n"), "\n") {
		b.WriteString("  " + line + "\n")
	}
	b.WriteString("EXAMPLES: |\n  - name: x\nRETURN:\n  path:\n    description: x\n    type: str\n    returned: always\n")
	p := filepath.Join(t.TempDir(), "sample.yml")
	require.NoError(t, os.WriteFile(p, []byte(b.String()), 0o600))
	return p
}

func TestCompareMatching(t *testing.T) {
	r := &recorder{}
	Compare[opts](r, writeSidecar(t, matching))
	assert.Empty(t, r.errors)
}

func TestCompareReportsEachDifference(t *testing.T) {
	cases := []struct {
		name, old, new, want string
	}{
		{"missing option", "  payload:\n    type: raw\n", "", "option payload is declared in Go but not documented"},
		{"extra option", "  payload:\n    type: raw\n", "  payload:\n    type: raw\n  bogus:\n    type: str\n", "option bogus is documented but not declared in Go"},
		{"type", "  dest:\n    type: path\n", "  dest:\n    type: str\n", "option dest: type: documented str, Go declares path"},
		{"implicit str type", "  dest:\n    type: path\n", "  dest:\n    description: x\n", "option dest: type: documented str, Go declares path"},
		{"elements", "    elements: int\n    default: [80, 443]", "    elements: str\n    default: [80, 443]", "option ports: elements: documented str, Go declares int"},
		{"elements missing", "    elements: dict\n    suboptions:", "    suboptions:", "option steps: elements: documented (none), Go declares dict"},
		{"required", "    description: the name\n    required: true", "    description: the name", "option name: required: documented false, Go declares true"},
		{"default value", "    default: 5\n", "    default: 6\n", "option keep: default: documented 6, Go declares 5"},
		{"default absent", "    default: present\n", "\n", "option state: default: documented (none), Go declares present"},
		{"default extra", "  dest:\n    type: path\n", "  dest:\n    type: path\n    default: /tmp\n", "option dest: default: documented /tmp, Go declares (none)"},
		{"default bool", "    default: yes", "    default: no", "option force: default: documented false, Go declares true"},
		{"default list", "    default: [80, 443]", "    default: [80]", "option ports: default: documented [80], Go declares [80, 443]"},
		{"choices", "    choices: [absent, present]", "    choices: [absent, present, latest]", "option state: choices: documented [absent latest present], Go declares [absent present]"},
		{"list choices", "    choices: [443, 80, 8080]", "    choices: [443, 80]", "option ports: choices: documented [443 80], Go declares [443 80 8080]"},
		{"aliases", "    aliases: [label, id]", "    aliases: [label]", "option name: aliases: documented [label], Go declares [id label]"},
		{"suboption missing", "      retries:\n        type: int\n        default: \"3\"\n", "", "option gate.retries is declared in Go but not documented"},
		{"suboption type", "      retries:\n        type: int\n        default: 3\n", "      retries:\n        type: str\n        default: 3\n", "option steps.retries: type: documented str, Go declares int"},
		{"suboption required", "      kind:\n        required: true\n        choices: [http, tcp]", "      kind:\n        choices: [http, tcp]", "option gate.kind: required: documented false, Go declares true"},
		{"suboptions undocumented", "    type: dict\n    suboptions:\n      kind:\n        required: true\n        choices: [http, tcp]\n      retries:\n        type: int\n        default: \"3\"\n", "    type: dict\n", "option gate.kind is declared in Go but not documented"},
		{"suboptions on a plain dict", "  env:\n    type: dict\n", "  env:\n    type: dict\n    suboptions:\n      x:\n        type: str\n", "option env.x is documented but not declared in Go"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, 1, strings.Count(matching, c.old), "the edit must apply exactly once")
			r := &recorder{}
			Compare[opts](r, writeSidecar(t, strings.Replace(matching, c.old, c.new, 1)))
			require.NotEmpty(t, r.errors)
			assert.Contains(t, strings.Join(r.errors, "\n"), c.want)
		})
	}
}

func TestCompareBadSidecar(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
		return p
	}
	ret := "RETURN:\n  path: {type: str}\n"
	for path, want := range map[string]string{
		filepath.Join(dir, "missing.yml"):                                                "read sidecar",
		write("string.yml", "DOCUMENTATION: |\n  options: {}\n"+ret):                     "top-level DOCUMENTATION must be a YAML mapping",
		write("string-return.yml", "DOCUMENTATION:\n  options: {}\nRETURN: |\n  x: 1\n"): "top-level RETURN must be a YAML mapping",
		write("no-return.yml", "DOCUMENTATION:\n  options: {}\n"):                        "no top-level RETURN",
		write("bad-yaml.yml", "DOCUMENTATION:\n  options: [\n"):                          "parse sidecar",
		write("bad-shape.yml", "DOCUMENTATION:\n  options: [1, 2]\n"+ret):                "parse DOCUMENTATION",
	} {
		r := &recorder{}
		Compare[opts](r, path)
		require.Len(t, r.errors, 1, path)
		assert.Contains(t, r.errors[0], want, path)
	}
}

func TestCompareBadDeclaration(t *testing.T) {
	type bad struct {
		C chan int `ansible:"c"`
	}
	r := &recorder{}
	Compare[bad](r, writeSidecar(t, matching))
	require.Len(t, r.errors, 1)
	assert.Contains(t, r.errors[0], "unsupported Go type chan int")
}
