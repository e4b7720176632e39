package ansible

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// Decoding is pure: params in, typed struct + normalized module args +
// warnings + no_log values out. The environment (for path expansion) is
// injected so tests control it.

// ArgsError is returned when the module arguments do not match the declared
// options. Problems lists every message, unsupported parameters first, in the
// order ansible-core would check them.
type ArgsError struct {
	Problems []string
}

func (e *ArgsError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			// ansible-core's unsupported-parameters message ends a sentence.
			if strings.HasSuffix(e.Problems[i-1], ".") {
				b.WriteString(" ")
			} else {
				b.WriteString("; ")
			}
		}
		b.WriteString(p)
	}
	return b.String()
}

// conversion policy for non-string values given to str options
// (_ansible_string_conversion_action).
const (
	convWarn   = "warn"
	convIgnore = "ignore"
	convError  = "error"
)

type decoder struct {
	module   string // Module.Name, for the unsupported-parameters message
	strConv  string
	getenv   func(string) (string, bool)
	userHome func(user string) (string, bool) // user "" is the current user

	unsupported []string
	problems    []string
	warnings    []string
	noLog       map[string]struct{}
}

type groups struct {
	mutuallyExclusive, requiredTogether, requiredOneOf [][]string
}

func newDecoder(module, strConv string, getenv func(string) (string, bool), userHome func(string) (string, bool)) *decoder {
	return &decoder{module: module, strConv: strConv, getenv: getenv, userHome: userHome, noLog: map[string]struct{}{}}
}

// decode fills dst (a pointer to the options struct) from params and returns
// the normalized arguments (canonical names, defaults applied, absent = nil).
// Errors are collected, not returned early, so one run reports them all.
func (d *decoder) decode(ss *structSpec, g groups, params map[string]any, dst reflect.Value) (map[string]any, error) {
	args := d.decodeStruct(ss, &g, params, "", dst.Elem())
	if len(d.unsupported)+len(d.problems) > 0 {
		return args, &ArgsError{Problems: append(append([]string{}, d.unsupported...), d.problems...)}
	}
	return args, nil
}

func (d *decoder) problem(format string, a ...any) {
	d.problems = append(d.problems, fmt.Sprintf(format, a...))
}

// decodeStruct decodes one level. prefix is "" at the top, "gate." or
// "files[2]." below; g is nil below the top level.
func (d *decoder) decodeStruct(ss *structSpec, g *groups, params map[string]any, prefix string, dst reflect.Value) map[string]any {
	given := d.resolveNames(ss, params, prefix)

	// no_log values are collected from the raw input first, so even a value
	// that fails conversion is masked in the error message.
	for o, raw := range given {
		if o.spec.NoLog {
			d.addNoLog(raw)
		}
	}
	if g != nil {
		d.checkMutuallyExclusive(g.mutuallyExclusive, given, ss)
	}

	var missing []string
	for _, o := range ss.opts {
		if _, ok := given[o]; !ok && o.spec.Required {
			missing = append(missing, prefix+o.spec.Name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		d.problem("missing required arguments: %s", strings.Join(missing, ", "))
	}

	args := make(map[string]any, len(ss.opts))
	for _, o := range ss.opts {
		name := prefix + o.spec.Name
		raw, ok := given[o]
		if !ok && o.def == nil {
			args[o.spec.Name] = nil
			continue
		}
		var norm any
		var rv reflect.Value
		if ok {
			norm, rv, ok = d.value(o.vt, raw, name)
		} else {
			norm, rv, ok = d.value(o.vt, o.def, name)
		}
		if !ok {
			args[o.spec.Name] = nil
			continue
		}
		d.checkChoices(o, norm, name)
		if o.spec.NoLog {
			d.addNoLog(norm)
		}
		args[o.spec.Name] = norm
		dst.Field(o.index).Set(rv)
	}

	if g != nil {
		// As ansible-core, these run after defaults: a default counts as given.
		present := func(n string) bool {
			o := ss.byName[n]
			_, ok := given[o]
			return ok || o.def != nil
		}
		for _, grp := range g.requiredTogether {
			n := 0
			for _, name := range grp {
				if present(name) {
					n++
				}
			}
			if n > 0 && n < len(grp) {
				d.problem("parameters are required together: %s", strings.Join(grp, ", "))
			}
		}
		for _, grp := range g.requiredOneOf {
			found := false
			for _, name := range grp {
				found = found || present(name)
			}
			if !found {
				d.problem("one of the following is required: %s", strings.Join(grp, ", "))
			}
		}
	}
	return args
}

// resolveNames maps each given option (by canonical name or alias) to its raw
// value. A null value counts as absent. Unknown keys are unsupported; an
// option given under several names is an error naming them all.
func (d *decoder) resolveNames(ss *structSpec, params map[string]any, prefix string) map[*option]any {
	given := map[*option]any{}
	usedNames := map[*option][]string{}
	var unknown []string
	for _, k := range sortedKeys(params) {
		o := ss.byName[k]
		if o == nil {
			unknown = append(unknown, prefix+k)
			continue
		}
		if params[k] == nil {
			continue
		}
		given[o] = params[k]
		usedNames[o] = append(usedNames[o], k)
	}
	if len(unknown) > 0 {
		d.unsupported = append(d.unsupported, fmt.Sprintf(
			"Unsupported parameters for (%s) module: %s. Supported parameters include: %s.",
			d.module, strings.Join(unknown, ", "), supportedList(ss)))
	}
	for _, o := range ss.opts {
		if names := usedNames[o]; len(names) > 1 {
			// List them in declaration order: canonical name, then aliases.
			var ordered []string
			for _, n := range append([]string{o.spec.Name}, o.spec.Aliases...) {
				for _, u := range names {
					if u == n {
						ordered = append(ordered, prefix+n)
					}
				}
			}
			d.problem("option %s%s is given under several names (%s); use only one",
				prefix, o.spec.Name, strings.Join(ordered, ", "))
		}
	}
	return given
}

// supportedList renders "a, b, c (alias1, alias2)" as ansible-core does.
func supportedList(ss *structSpec) string {
	var names, aliases []string
	for _, o := range ss.opts {
		names = append(names, o.spec.Name)
		aliases = append(aliases, o.spec.Aliases...)
	}
	sort.Strings(names)
	sort.Strings(aliases)
	s := strings.Join(names, ", ")
	if len(aliases) > 0 {
		s += " (" + strings.Join(aliases, ", ") + ")"
	}
	return s
}

func (d *decoder) checkMutuallyExclusive(groupsList [][]string, given map[*option]any, ss *structSpec) {
	var violated []string
	for _, grp := range groupsList {
		n := 0
		for _, name := range grp {
			if _, ok := given[ss.byName[name]]; ok {
				n++
			}
		}
		if n > 1 {
			violated = append(violated, strings.Join(grp, "|"))
		}
	}
	if len(violated) > 0 {
		d.problem("parameters are mutually exclusive: %s", strings.Join(violated, ", "))
	}
}

func (d *decoder) checkChoices(o *option, norm any, name string) {
	if len(o.spec.Choices) == 0 {
		return
	}
	allowed := map[string]bool{}
	for _, c := range o.spec.Choices {
		allowed[c] = true
	}
	choices := strings.Join(o.spec.Choices, ", ")
	if list, ok := norm.([]any); ok {
		var bad []string
		for _, e := range list {
			if !allowed[choiceKey(e)] {
				bad = append(bad, choiceKey(e))
			}
		}
		if len(bad) > 0 {
			d.problem("value of %s must be one or more of: %s. Got no match for: %s", name, choices, strings.Join(bad, ", "))
		}
		return
	}
	if !allowed[choiceKey(norm)] {
		d.problem("value of %s must be one of: %s, got: %s", name, choices, choiceKey(norm))
	}
}

// checkChoices at declaration time, for defaults.
func (o *option) checkChoices(v any) error {
	d := &decoder{}
	d.checkChoices(o, v, o.spec.Name)
	if len(d.problems) > 0 {
		return fmt.Errorf("%s", d.problems[0])
	}
	return nil
}

// addNoLog records the strings ansible-core's _return_datastructure_name
// would: non-empty strings and numbers (as Python prints them), recursively;
// booleans and nulls are never secrets.
func (d *decoder) addNoLog(v any) {
	switch x := v.(type) {
	case string:
		if x != "" {
			d.noLog[x] = struct{}{}
		}
	case json.Number, int64, float64:
		d.noLog[pyStr(x)] = struct{}{}
	case []any:
		for _, e := range x {
			d.addNoLog(e)
		}
	case map[string]any:
		for _, e := range x {
			d.addNoLog(e)
		}
	}
}

func (d *decoder) typeError(name string, raw any, want kind, err error) {
	d.problem("argument '%s' is of type %s and we were unable to convert to %s: %v", name, pyType(raw), want, err)
}

// value converts raw to vt, returning the normalized value (for invocation
// and masking) and a reflect.Value of vt.goType to store.
func (d *decoder) value(vt *valueType, raw any, name string) (any, reflect.Value, bool) {
	base := vt.goType
	if base.Kind() == reflect.Pointer {
		base = base.Elem()
	}
	norm, rv, ok := d.baseValue(vt, base, raw, name)
	if !ok {
		return nil, reflect.Value{}, false
	}
	if vt.goType.Kind() == reflect.Pointer {
		p := reflect.New(base)
		p.Elem().Set(rv)
		rv = p
	}
	return norm, rv, true
}

func (d *decoder) baseValue(vt *valueType, base reflect.Type, raw any, name string) (any, reflect.Value, bool) {
	rv := reflect.New(base).Elem()
	switch vt.kind {
	case kindStr, kindPath:
		s, ok := d.toStr(raw, name, vt.kind == kindPath)
		if !ok {
			return nil, rv, false
		}
		if vt.kind == kindPath {
			s = expandUser(expandVars(s, d.getenv), d.userHome)
		}
		rv.SetString(s)
		return s, rv, true
	case kindInt:
		i, err := toInt(raw, base)
		if err != nil {
			d.typeError(name, raw, vt.kind, err)
			return nil, rv, false
		}
		if rv.CanInt() {
			rv.SetInt(i)
		} else {
			rv.SetUint(uint64(i))
		}
		return i, rv, true
	case kindFloat:
		f, err := toFloat(raw)
		if err != nil {
			d.typeError(name, raw, vt.kind, err)
			return nil, rv, false
		}
		rv.SetFloat(f)
		return f, rv, true
	case kindBool:
		b, err := toBool(raw)
		if err != nil {
			d.typeError(name, raw, vt.kind, err)
			return nil, rv, false
		}
		rv.SetBool(b)
		return b, rv, true
	case kindList:
		list, err := toList(raw)
		if err != nil {
			d.typeError(name, raw, vt.kind, err)
			return nil, rv, false
		}
		norm := make([]any, 0, len(list))
		rv.Set(reflect.MakeSlice(base, 0, len(list)))
		ok := true
		for i, e := range list {
			n, ev, eok := d.value(vt.elem, e, fmt.Sprintf("%s[%d]", name, i))
			if !eok {
				ok = false
				continue
			}
			norm = append(norm, n)
			rv.Set(reflect.Append(rv, ev))
		}
		return norm, rv, ok
	case kindDict:
		m, err := toDict(raw)
		if err != nil {
			d.typeError(name, raw, vt.kind, err)
			return nil, rv, false
		}
		norm := make(map[string]any, len(m))
		rv.Set(reflect.MakeMapWithSize(base, len(m)))
		ok := true
		for _, k := range sortedKeys(m) {
			n, ev, eok := d.value(vt.elem, m[k], name+"."+k)
			if !eok {
				ok = false
				continue
			}
			norm[k] = n
			rv.SetMapIndex(reflect.ValueOf(k).Convert(base.Key()), ev)
		}
		return norm, rv, ok
	case kindStruct:
		m, err := toDict(raw)
		if err != nil {
			d.typeError(name, raw, vt.kind, err)
			return nil, rv, false
		}
		before := len(d.problems) + len(d.unsupported)
		norm := d.decodeStruct(vt.sub, nil, m, name+".", rv)
		return norm, rv, len(d.problems)+len(d.unsupported) == before
	case kindRaw:
		p := plain(raw)
		if p != nil {
			rv.Set(reflect.ValueOf(p))
		}
		return p, rv, true
	}
	panic(fmt.Sprintf("ansible: unhandled kind %v", vt.kind))
}

// toStr applies _ansible_string_conversion_action to numbers and booleans
// given where a string is expected. Paths convert silently, as
// check_type_path does.
func (d *decoder) toStr(raw any, name string, silent bool) (string, bool) {
	switch x := raw.(type) {
	case string:
		return x, true
	case json.Number, bool:
		s := pyStr(x)
		switch {
		case silent || d.strConv == convIgnore:
		case d.strConv == convError:
			d.problem("argument '%s' is of type %s and we were unable to convert to str: %s is not a string and conversion is not allowed",
				name, pyType(raw), pyRepr(raw))
			return "", false
		default:
			d.warnings = append(d.warnings, fmt.Sprintf(
				"The value %s (type %s) in a string field was converted to %s (type string) for option '%s'. "+
					"If this does not look like what you expect, quote the entire value to ensure it does not change.",
				pyRepr(raw), pyType(raw), pyRepr(s), name))
		}
		return s, true
	}
	d.typeError(name, raw, kindStr, fmt.Errorf("%s cannot be converted to a str", pyType(raw)))
	return "", false
}
