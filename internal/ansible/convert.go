package ansible

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Scalar conversions follow ansible-core's module_utils/common/validation.py
// check_type_* functions (2.14), on values decoded from JSON with UseNumber:
// string, json.Number, bool, nil, []any, map[string]any.
// Where Python's quirks would silently accept nonsense (bool as int, NaN) we
// reject instead.

// pyType names a JSON value the way ansible-core's messages name Python types.
func pyType(v any) string {
	switch x := v.(type) {
	case string:
		return "str"
	case json.Number:
		if isIntLiteral(string(x)) {
			return "int"
		}
		return "float"
	case bool:
		return "bool"
	case nil:
		return "NoneType"
	case []any:
		return "list"
	case map[string]any:
		return "dict"
	case int64, int:
		return "int"
	case float64:
		return "float"
	}
	return fmt.Sprintf("%T", v)
}

func isIntLiteral(s string) bool { return !strings.ContainsAny(s, ".eE") }

// pyRepr renders a scalar like Python's repr, for messages.
func pyRepr(v any) string {
	switch x := v.(type) {
	case string:
		return "'" + x + "'"
	case bool:
		return pyStr(x)
	case nil:
		return "None"
	}
	return pyStr(v)
}

// pyStr renders a scalar like Python's str(): what ansible-core compares with
// no_log values and what a number becomes when converted to a string.
func pyStr(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return string(x)
	case bool:
		if x {
			return "True"
		}
		return "False"
	case nil:
		return "None"
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	case float64:
		return pyFloat(x)
	}
	return fmt.Sprint(v)
}

// pyFloat formats like Python's repr(float): shortest round-trip digits,
// positional for exponents -4..15, scientific (two-digit exponent) otherwise,
// and always recognizable as a float ("1.0").
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

func toInt(v any, t reflect.Type) (int64, error) {
	var n int64
	switch x := v.(type) {
	case json.Number:
		if !isIntLiteral(string(x)) {
			return 0, fmt.Errorf("%s cannot be converted to an int", pyType(v))
		}
		i, err := strconv.ParseInt(string(x), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s is out of range for an int", x)
		}
		n = i
	case string:
		i, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return 0, fmt.Errorf("%s is out of range for an int", pyRepr(x))
			}
			return 0, fmt.Errorf("%s cannot be converted to an int", pyRepr(x))
		}
		n = i
	default:
		return 0, fmt.Errorf("%s cannot be converted to an int", pyType(v))
	}
	if t != nil {
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if overflows(t, n) {
			return 0, fmt.Errorf("%d is out of range for %s", n, t)
		}
	}
	return n, nil
}

func overflows(t reflect.Type, n int64) bool {
	switch t.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return n < 0 || reflect.New(t).Elem().OverflowUint(uint64(n))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return reflect.New(t).Elem().OverflowInt(n)
	}
	return false
}

func toFloat(v any) (float64, error) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = string(x)
	case string:
		s = strings.TrimSpace(x)
	default:
		return 0, fmt.Errorf("%s cannot be converted to a float", pyType(v))
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) || math.IsNaN(f) || math.IsInf(f, 0) {
		// Non-finite floats cannot be written back as JSON: refuse them here.
		return 0, fmt.Errorf("%s cannot be converted to a finite float", pyRepr(v))
	}
	return f, nil
}

var (
	boolsTrue  = []string{"y", "yes", "on", "1", "true", "t"}
	boolsFalse = []string{"n", "no", "off", "0", "false", "f"}
	validBools = "'y', 'yes', 'on', '1', 'true', 't', 1, 1.0, True, 'n', 'no', 'off', '0', 'false', 'f', 0, 0.0, False"
)

// toBool is ansible-core's boolean(strict=True).
func toBool(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		s := strings.ToLower(strings.TrimSpace(x))
		for _, t := range boolsTrue {
			if s == t {
				return true, nil
			}
		}
		for _, f := range boolsFalse {
			if s == f {
				return false, nil
			}
		}
	case json.Number:
		// Python compares numbers by value: 1 == 1.0 == True.
		if f, err := strconv.ParseFloat(string(x), 64); err == nil {
			switch f {
			case 1:
				return true, nil
			case 0:
				return false, nil
			}
		}
	default:
		return false, fmt.Errorf("%s cannot be converted to a bool", pyType(v))
	}
	return false, fmt.Errorf("The value '%s' is not a valid boolean.  Valid booleans include: %s", pyStr(v), validBools)
}

func toList(v any) ([]any, error) {
	switch x := v.(type) {
	case []any:
		return x, nil
	case string:
		parts := strings.Split(x, ",")
		out := make([]any, len(parts))
		for i, p := range parts {
			out[i] = p
		}
		return out, nil
	case json.Number:
		return []any{string(x)}, nil
	}
	return nil, fmt.Errorf("%s cannot be converted to a list", pyType(v))
}

// toDict accepts a dict, a JSON object string, or ansible-core's
// "k1=v1 k2='v 2',k3=v3" form.
func toDict(v any) (map[string]any, error) {
	switch x := v.(type) {
	case map[string]any:
		return x, nil
	case string:
		if strings.HasPrefix(x, "{") {
			m, err := decodeObject([]byte(x))
			if err != nil {
				return nil, fmt.Errorf("unable to evaluate string as dictionary: %w", err)
			}
			return m, nil
		}
		if strings.Contains(x, "=") {
			return parseKV(x)
		}
		return nil, errors.New("dictionary requested, could not parse JSON or key=value")
	}
	return nil, fmt.Errorf("%s cannot be converted to a dict", pyType(v))
}

// parseKV splits on unquoted commas and spaces, honouring quotes and
// backslash escapes, exactly like check_type_dict.
func parseKV(s string) (map[string]any, error) {
	var fields []string
	var buf strings.Builder
	var quote rune
	escaped := false
	flush := func() {
		if buf.Len() > 0 {
			fields = append(fields, buf.String())
		}
		buf.Reset()
	}
	for _, c := range strings.TrimSpace(s) {
		switch {
		case escaped:
			buf.WriteRune(c)
			escaped = false
		case c == '\\':
			escaped = true
		case quote == 0 && (c == '\'' || c == '"'):
			quote = c
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == ',' || c == ' '):
			flush()
		default:
			buf.WriteRune(c)
		}
	}
	flush()
	out := make(map[string]any, len(fields))
	for _, f := range fields {
		k, val, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("%s is not a key=value pair", pyRepr(f))
		}
		out[k] = val
	}
	return out, nil
}

// decodeObject parses one JSON object, keeping numbers as json.Number so
// ints and floats stay distinct, and refusing trailing data.
func decodeObject(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("unexpected data after the JSON object")
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("unexpected data after the JSON object")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("expected a JSON object, got %s", pyType(v))
	}
	return m, nil
}

// plain turns json.Number into int64 (or float64 when not an integer or too
// large), recursively, so raw values reach modules as ordinary Go values.
func plain(v any) any {
	switch x := v.(type) {
	case json.Number:
		if isIntLiteral(string(x)) {
			if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
				return i
			}
		}
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return string(x)
		}
		if math.IsInf(f, 0) {
			// Out of float64 range: keep the digits rather than lose them.
			return string(x)
		}
		return f
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

// Path expansion: os.path.expanduser(os.path.expandvars(value)), as
// check_type_path does. Unknown variables and users are left as written.

var varRe = regexp.MustCompile(`\$([A-Za-z0-9_]+|\{[^}]*\})`)

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

// choiceKey is the canonical text of a scalar, for comparing with choices.
func choiceKey(v any) string { return pyStr(v) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
