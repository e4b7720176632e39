package ansible

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// The arguments arrive validated: the collection's action plugin checks them
// on the controller against the module's sidecar documentation
// (plugins/plugin_utils/argument_spec.py), converts them and applies the
// defaults. Here they are only decoded, strictly, into the module's options
// struct (json tags): an unknown key or a mistyped value is a failed result
// naming it, never a guess.

// noLogValuesKey holds the no_log values the controller found; the runtime
// masks them in everything it prints.
const noLogValuesKey = "_chezlepro_no_log_values"

// decodeObject parses the args file: one JSON object, numbers kept exact.
func decodeObject(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); dec.More() || err == nil {
		return nil, errors.New("unexpected data after the JSON object")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("expected a JSON object, got %s", jsonKind(v))
	}
	return m, nil
}

// decodeOptions fills opts from the user's parameters, refusing unknown keys
// and values of the wrong JSON type.
func decodeOptions(params map[string]any, opts any) error {
	b, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("cannot re-encode the arguments: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err = dec.Decode(opts)
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &typeErr):
		return fmt.Errorf("argument '%s' is a JSON %s where the module reads %s (arguments reach the module through its action plugin, which converts them)",
			typeErr.Field, typeErr.Value, typeErr.Type)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return fmt.Errorf("unsupported parameter %s (arguments reach the module through its action plugin, which checks them against the documented options)",
			strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return fmt.Errorf("cannot decode the arguments: %w", err)
}

func jsonKind(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	case nil:
		return "null"
	case []any:
		return "array"
	}
	return "object"
}

// plain turns json.Numbers into int64 or float64, for the invocation echo.
func plain(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		if f, err := x.Float64(); err == nil && !math.IsInf(f, 0) {
			return f
		}
		return string(x) // out of float64 range: keep the digits
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = plain(e)
		}
		return out
	}
	return v
}

// Path is an option of type path: ~ and $VARS are expanded on the target,
// where the module runs, as ansible-core's type path does in a module.
type Path string

// UnmarshalJSON expands the path as Python's expanduser(expandvars(s)).
func (p *Path) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*p = Path(expandUser(expandVars(s, lookupEnv), homeOf))
	return nil
}

// lookupEnv and homeOf read the machine; tests replace them.
var (
	lookupEnv = osLookupEnv
	homeOf    = lookupHome
)

var varRe = regexp.MustCompile(`\$([A-Za-z0-9_]+|\{[^}]*\})`)

// expandVars is Python's os.path.expandvars: unknown variables stay as written.
func expandVars(s string, getenv func(string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	last := 0
	for _, m := range varRe.FindAllStringSubmatchIndex(s, -1) {
		name := s[m[2]:m[3]]
		if strings.HasPrefix(name, "{") {
			name = name[1 : len(name)-1]
		}
		val, ok := getenv(name)
		if !ok {
			continue
		}
		b.WriteString(s[last:m[0]])
		b.WriteString(val)
		last = m[1]
	}
	b.WriteString(s[last:])
	return b.String()
}

// expandUser is Python's os.path.expanduser: ~ and ~user at the start.
func expandUser(s string, home func(user string) (string, bool)) string {
	if !strings.HasPrefix(s, "~") {
		return s
	}
	i := strings.Index(s, "/")
	if i < 0 {
		i = len(s)
	}
	h, ok := home(s[1:i])
	if !ok {
		return s
	}
	h = strings.TrimRight(h, "/")
	if out := h + s[i:]; out != "" {
		return out
	}
	return "/"
}

// pyFloat renders a float as Python's str() does: how the controller wrote a
// no_log number, which the masker must recognise in Go's spelling too.
func pyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	sci := strconv.FormatFloat(f, 'e', -1, 64)
	_, e, _ := strings.Cut(sci, "e")
	exp, _ := strconv.Atoi(e)
	if exp >= -4 && exp < 16 {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	mant, _, _ := strings.Cut(sci, "e")
	sign, digits := e[:1], strings.TrimLeft(e[1:], "0")
	if len(digits) < 2 {
		digits = strings.Repeat("0", 2-len(digits)) + digits
	}
	return mant + "e" + sign + digits
}
