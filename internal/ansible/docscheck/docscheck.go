// Package docscheck fails a test when a module's sidecar documentation
// (plugins/modules/NAME.yml) and its Go options struct disagree, so the docs
// users read in ansible-doc are the options the binary really accepts.
package docscheck

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/chezlepro/sovereign/internal/ansible"
)

// docOption is one entry of DOCUMENTATION.options, as ansible-doc reads it.
type docOption struct {
	Type       string               `yaml:"type"`
	Elements   string               `yaml:"elements"`
	Required   bool                 `yaml:"required"`
	Default    any                  `yaml:"default"`
	Choices    []any                `yaml:"choices"`
	Aliases    []string             `yaml:"aliases"`
	Suboptions map[string]docOption `yaml:"suboptions"`
}

type documentation struct {
	Options map[string]docOption `yaml:"options"`
}

// Compare reports through t.Errorf every difference between the options
// documented in sidecarPath and those O declares (ansible.Describe[O]).
func Compare[O any](t testing.TB, sidecarPath string) {
	t.Helper()
	specs, err := ansible.Describe[O]()
	if err != nil {
		t.Errorf("docscheck: %v", err)
		return
	}
	doc, err := load(sidecarPath)
	if err != nil {
		t.Errorf("docscheck: %v", err)
		return
	}
	for _, d := range diff(specs, doc.Options, "") {
		t.Errorf("docscheck: %s: %s", sidecarPath, d)
	}
}

func load(path string) (*documentation, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read sidecar: %w", err)
	}
	// ansible-core reads a sidecar's DOCUMENTATION and RETURN as YAML
	// mappings; given a string holding YAML, ansible-doc 2.14 fails with
	// "'AnsibleUnicode' object does not support item assignment".
	var top map[string]yaml.Node
	if err := yaml.Unmarshal(raw, &top); err != nil {
		return nil, fmt.Errorf("parse sidecar %s: %w", path, err)
	}
	for _, key := range []string{"DOCUMENTATION", "RETURN"} {
		node, ok := top[key]
		if !ok {
			return nil, fmt.Errorf("%s: no top-level %s", path, key)
		}
		if node.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s: top-level %s must be a YAML mapping, as ansible-doc reads sidecar docs (not a string holding YAML)", path, key)
		}
	}
	node := top["DOCUMENTATION"]
	var doc documentation
	if err := node.Decode(&doc); err != nil {
		return nil, fmt.Errorf("parse DOCUMENTATION of %s: %w", path, err)
	}
	return &doc, nil
}

// diff lists the differences at one level; prefix is "" or "gate.".
func diff(specs []ansible.OptionSpec, docs map[string]docOption, prefix string) []string {
	var out []string
	declared := map[string]bool{}
	for _, s := range specs {
		declared[s.Name] = true
		name := prefix + s.Name
		d, ok := docs[s.Name]
		if !ok {
			out = append(out, fmt.Sprintf("option %s is declared in Go but not documented", name))
			continue
		}
		out = append(out, diffOption(s, d, name)...)
	}
	for _, n := range sortedKeys(docs) {
		if !declared[n] {
			out = append(out, fmt.Sprintf("option %s%s is documented but not declared in Go", prefix, n))
		}
	}
	return out
}

func diffOption(s ansible.OptionSpec, d docOption, name string) []string {
	var out []string
	mismatch := func(what string, doc, goVal any) {
		out = append(out, fmt.Sprintf("option %s: %s: documented %v, Go declares %v", name, what, doc, goVal))
	}
	docType := d.Type
	if docType == "" {
		docType = "str" // ansible-core's default type
	}
	if docType != s.Type {
		mismatch("type", docType, s.Type)
	}
	if d.Elements != s.Elements {
		mismatch("elements", quote(d.Elements), quote(s.Elements))
	}
	if d.Required != s.Required {
		mismatch("required", d.Required, s.Required)
	}
	// Scalars inside a list (default items, choices) have the element type.
	leaf := s.Type
	if s.Type == "list" {
		leaf = s.Elements
	}
	if dd, gd := normDefault(d.Default, leaf), normDefault(s.Default, leaf); dd != gd {
		mismatch("default", dd, gd)
	}
	docChoices := make([]string, len(d.Choices))
	for i, c := range d.Choices {
		docChoices[i] = scalar(c, leaf)
	}
	goChoices := make([]string, len(s.Choices))
	for i, c := range s.Choices {
		goChoices[i] = scalar(c, leaf)
	}
	if a, b := sortedCopy(docChoices), sortedCopy(goChoices); !equal(a, b) {
		mismatch("choices", a, b)
	}
	if a, b := sortedCopy(d.Aliases), sortedCopy(s.Aliases); !equal(a, b) {
		mismatch("aliases", a, b)
	}
	// no_log is not compared: it belongs to the argument spec, and
	// validate-modules rejects it in DOCUMENTATION; the Go tag declares it.
	if len(s.Suboptions) > 0 || len(d.Suboptions) > 0 {
		out = append(out, diff(s.Suboptions, d.Suboptions, name+".")...)
	}
	return out
}

// normDefault renders a default so that a documented 5 and a declared 5 (or
// "5" for a str option), yes and true, [] and an empty list compare equal;
// "(none)" stands for no default.
func normDefault(v any, typ string) string {
	switch x := v.(type) {
	case nil:
		return "(none)"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = scalar(e, typ)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case []string:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = scalar(e, typ)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return scalar(v, typ)
}

// scalar renders one scalar value; for bool options YAML 1.1 spellings
// (yes/no) are normalized too.
func scalar(v any, typ string) string {
	switch x := v.(type) {
	case string:
		if typ == "bool" {
			switch strings.ToLower(x) {
			case "yes", "y", "on", "true", "t", "1":
				return "true"
			case "no", "n", "off", "false", "f", "0":
				return "false"
			}
		}
		if typ == "float" {
			if f, err := strconv.ParseFloat(x, 64); err == nil {
				return strconv.FormatFloat(f, 'g', -1, 64)
			}
		}
		if typ == "int" {
			if i, err := strconv.ParseInt(x, 10, 64); err == nil {
				return strconv.FormatInt(i, 10)
			}
		}
		return x
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	}
	return fmt.Sprint(v)
}

func quote(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func sortedCopy(s []string) []string {
	out := append([]string{}, s...)
	sort.Strings(out)
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]docOption) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
