// Package docscheck fails a test when a module's options struct cannot read
// what its sidecar documentation (plugins/modules/NAME.yml) declares: every
// documented option must be a json-tagged field of the matching Go type, and
// every field a documented option. The sidecar holds everything else
// (defaults, choices, required, no_log), which the controller applies.
package docscheck

import (
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/chezlepro/sovereign/internal/ansible"
)

// docOption is what of an option's documentation says how it is decoded,
// or of a return value's how it is encoded.
type docOption struct {
	Type       string               `yaml:"type"`
	Elements   string               `yaml:"elements"`
	Suboptions map[string]docOption `yaml:"suboptions"`
	Contains   map[string]docOption `yaml:"contains"` // of a return value
}

// kind names what is compared in messages.
type kind struct {
	noun string // "option", "return value"
	sub  func(docOption) map[string]docOption
}

var (
	options = kind{"option", func(d docOption) map[string]docOption { return d.Suboptions }}
	returns = kind{"return value", func(d docOption) map[string]docOption { return d.Contains }}
)

// Compare reports through t.Errorf every difference between the options
// documented in sidecarPath and the json-tagged fields of O.
func Compare[O any](t testing.TB, sidecarPath string) {
	t.Helper()
	top, ok := readSidecar(t, sidecarPath)
	if !ok {
		return
	}
	var doc struct {
		Options map[string]docOption `yaml:"options"`
	}
	node := top["DOCUMENTATION"]
	if err := node.Decode(&doc); err != nil {
		t.Errorf("docscheck: parse DOCUMENTATION of %s: %v", sidecarPath, err)
		return
	}
	for _, d := range diffStruct(options, reflect.TypeFor[O](), doc.Options, "") {
		t.Errorf("docscheck: %s: %s", sidecarPath, d)
	}
}

// CompareReturns reports through t.Errorf every difference between the
// return values documented in sidecarPath's RETURN and the json-tagged
// fields of R, the module's typed result: names, types, and the contains
// of dicts that document them.
func CompareReturns[R any](t testing.TB, sidecarPath string) {
	t.Helper()
	top, ok := readSidecar(t, sidecarPath)
	if !ok {
		return
	}
	var doc map[string]docOption
	node := top["RETURN"]
	if err := node.Decode(&doc); err != nil {
		t.Errorf("docscheck: parse RETURN of %s: %v", sidecarPath, err)
		return
	}
	for _, d := range diffStruct(returns, reflect.TypeFor[R](), doc, "") {
		t.Errorf("docscheck: %s: %s", sidecarPath, d)
	}
}

// readSidecar parses the sidecar's top level.
func readSidecar(t testing.TB, sidecarPath string) (map[string]yaml.Node, bool) {
	t.Helper()
	raw, err := os.ReadFile(sidecarPath)
	if err != nil {
		t.Errorf("docscheck: %v", err)
		return nil, false
	}
	// ansible-doc reads DOCUMENTATION and RETURN as YAML mappings; given a
	// string holding YAML, ansible-doc 2.14 fails.
	var top map[string]yaml.Node
	if err := yaml.Unmarshal(raw, &top); err != nil {
		t.Errorf("docscheck: parse %s: %v", sidecarPath, err)
		return nil, false
	}
	for _, key := range []string{"DOCUMENTATION", "RETURN"} {
		if node, ok := top[key]; !ok || node.Kind != yaml.MappingNode {
			t.Errorf("docscheck: %s: top-level %s must be a YAML mapping", sidecarPath, key)
			return nil, false
		}
	}
	return top, true
}

// diffStruct compares one level; prefix is "" or "hardening.".
func diffStruct(k kind, st reflect.Type, docs map[string]docOption, prefix string) []string {
	var out []string
	fields := map[string]reflect.Type{}
	for i := 0; i < st.NumField(); i++ {
		f := st.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = f.Type
		if _, ok := docs[name]; !ok {
			out = append(out, fmt.Sprintf("field %s (json %q) is not a documented %s", f.Name, prefix+name, k.noun))
		}
	}
	names := make([]string, 0, len(docs))
	for n := range docs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		ft, ok := fields[n]
		if !ok {
			out = append(out, fmt.Sprintf("%s %s%s is documented but no field has json tag %q", k.noun, prefix, n, n))
			continue
		}
		out = append(out, diffType(k, ft, docs[n].Type, docs[n].Elements, k.sub(docs[n]), prefix+n)...)
	}
	return out
}

var pathType = reflect.TypeFor[ansible.Path]()

// diffType says whether Go type t reads values of the documented type.
func diffType(k kind, t reflect.Type, typ, elements string, sub map[string]docOption, name string) []string {
	if t.Kind() == reflect.Pointer && t.Elem().Kind() != reflect.Pointer {
		t = t.Elem() // nil when not given
	}
	if typ == "" {
		typ = "str" // ansible-core's default type
	}
	ok := false
	switch typ {
	case "str":
		ok = t.Kind() == reflect.String && t != pathType
	case "path":
		ok = t == pathType
	case "int":
		ok = t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64
	case "float":
		ok = t.Kind() == reflect.Float64
	case "bool":
		ok = t.Kind() == reflect.Bool
	case "raw":
		ok = t.Kind() == reflect.Interface
	case "dict", "complex":
		if len(sub) > 0 {
			if t.Kind() != reflect.Struct {
				return []string{fmt.Sprintf("%s %s: a dict with documented keys needs a struct field, Go has %s", k.noun, name, t)}
			}
			return diffStruct(k, t, sub, name+".")
		}
		ok = t.Kind() == reflect.Map && t.Key().Kind() == reflect.String
	case "list":
		if t.Kind() != reflect.Slice {
			return []string{fmt.Sprintf("%s %s: documented list, Go has %s", k.noun, name, t)}
		}
		if elements == "" {
			elements = "raw"
		}
		return diffType(k, t.Elem(), elements, "", sub, name+"[]")
	}
	if !ok {
		return []string{fmt.Sprintf("%s %s: documented type %s, Go has %s", k.noun, name, typ, t)}
	}
	return nil
}
