package ansible

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestMasker(t *testing.T) {
	m := newMasker(map[string]struct{}{"abc": {}, "abcdef": {}, "42": {}, "1.0": {}})
	tree := map[string]any{
		"exact":      "abc",
		"inside":     "x-abcdef-y abc",
		"untouched":  "ab",
		"num":        json.Number("1420"),
		"float":      json.Number("1"), // Python would print 1.0
		"other":      json.Number("7"),
		"bool":       true,
		"null":       nil,
		"list":       []any{"abc", "zabcz", json.Number("42")},
		"abc":        "key names are left alone",
		"nested_map": map[string]any{"k": "abcdef"},
	}
	assert.Equal(t, map[string]any{
		"exact":      noLogPlaceholder,
		"inside":     "x-********-y ********",
		"untouched":  "ab",
		"num":        noLogPlaceholder,
		"float":      noLogPlaceholder,
		"other":      json.Number("7"),
		"bool":       true,
		"null":       nil,
		"list":       []any{noLogPlaceholder, "z********z", noLogPlaceholder},
		"abc":        "key names are left alone",
		"nested_map": map[string]any{"k": noLogPlaceholder},
	}, m.mask(tree))
}

func TestMaskerLongestFirst(t *testing.T) {
	m := newMasker(map[string]struct{}{"pass": {}, "password123": {}})
	assert.Equal(t, "my ******** is", m.mask("my password123 is"), "the longer secret is masked whole, not leaving 'word123'")
}

func TestMaskerEmpty(t *testing.T) {
	m := newMasker(map[string]struct{}{})
	v := map[string]any{"a": "b"}
	assert.Equal(t, v, m.mask(v))
}

func TestPythonSpellings(t *testing.T) {
	for f, want := range map[float64]string{
		1: "1.0", 0.5: "0.5", -2: "-2.0", 1e16: "1e+16", 1.5e-7: "1.5e-07", 123456.789: "123456.789", 1e100: "1e+100",
		1234567.5: "1234567.5", 1e15: "1000000000000000.0", 0.0001: "0.0001", 1e-5: "1e-05", 0: "0.0",
		-1e-300: "-1e-300", 5e-324: "5e-324",
	} {
		assert.Equal(t, want, pyFloat(f), f)
	}
}

func TestMaskerShortSecretsLikeAnsibleCore(t *testing.T) {
	// remove_values masks every occurrence, however short the secret: a
	// one-letter no_log value mangles text, but never leaks.
	m := newMasker(map[string]struct{}{"v": {}})
	assert.Equal(t, "********alue", m.mask("value"))
}

func TestMaskerOverlapsAndStars(t *testing.T) {
	m := newMasker(map[string]struct{}{"abc": {}, "cde": {}})
	assert.Equal(t, "x********y", m.mask("xabcdey"), "overlapping secrets are hidden whole")
	assert.Equal(t, "******** ********", m.mask("abc abc"))

	// Secrets made of stars must not feed on the mask: the result stays
	// as long as one mask per covered stretch.
	stars := map[string]struct{}{}
	for n := 1; n <= 12; n++ {
		stars[strings.Repeat("*", n)] = struct{}{}
	}
	m = newMasker(stars)
	assert.Equal(t, "a********b", m.mask("a"+strings.Repeat("*", 40)+"b"))
}

// Context.Hide masks a secret that is only part of an option's value (a
// URL's password) in the invocation and in every returned value.
func TestContextHide(t *testing.T) {
	type opts struct {
		URL string `json:"url"`
	}
	m := Module[opts]{Name: "hide", Run: func(ctx *Context, o *opts) (*Result, error) {
		ctx.Hide("pw")
		ctx.Hide("")
		return &Result{Msg: "got " + o.URL, Values: map[string]any{"url": o.URL}}, errors.New("failed for " + o.URL)
	}}
	dir := t.TempDir()
	args := filepath.Join(dir, "args")
	if err := os.WriteFile(args, []byte(`{"url": "https://u:pw@host/x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	Execute(m, []string{"hide", args}, &out)
	if strings.Contains(out.String(), "pw") || !strings.Contains(out.String(), "https://u:********@host/x") {
		t.Fatalf("password not masked: %s", out.String())
	}
}
