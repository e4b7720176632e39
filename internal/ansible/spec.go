package ansible

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// kind is how a value is converted; it mirrors Ansible's option types, plus
// kindStruct for dicts with suboptions.
type kind int

const (
	kindStr kind = iota
	kindPath
	kindInt
	kindFloat
	kindBool
	kindList
	kindDict
	kindStruct
	kindRaw
)

var kindNames = map[kind]string{
	kindStr: "str", kindPath: "path", kindInt: "int", kindFloat: "float", kindBool: "bool",
	kindList: "list", kindDict: "dict", kindStruct: "dict", kindRaw: "raw",
}

func (k kind) String() string { return kindNames[k] }

// valueType describes how to convert and store one value of a Go type.
type valueType struct {
	kind   kind
	goType reflect.Type // the declared Go type (may be a pointer)
	elem   *valueType   // list elements and dict values
	sub    *structSpec  // kindStruct
}

// option is one declared option: its public description plus what decoding needs.
type option struct {
	spec  OptionSpec // Suboptions left empty here; see structSpec.describe
	index int        // field index in the parent struct
	vt    *valueType
	def   any // normalized default; nil when none
}

// structSpec is the set of options declared by one struct type.
type structSpec struct {
	typ    reflect.Type
	opts   []*option
	byName map[string]*option // canonical names and aliases
}

var specCache sync.Map // reflect.Type -> *structSpec or error

// Describe lists the options O declares, as the docs check compares them with
// plugins/modules/NAME.yml. It fails on an invalid declaration (bad tag, type
// without an Ansible equivalent, default not among choices...).
func Describe[O any]() ([]OptionSpec, error) {
	ss, err := specOf(reflect.TypeOf((*O)(nil)).Elem())
	if err != nil {
		return nil, err
	}
	return ss.describe(), nil
}

func (ss *structSpec) describe() []OptionSpec {
	out := make([]OptionSpec, 0, len(ss.opts))
	for _, o := range ss.opts {
		s := o.spec
		// Copies, so a caller cannot change the cached declaration.
		s.Choices = append([]string(nil), s.Choices...)
		s.Aliases = append([]string(nil), s.Aliases...)
		if l, ok := s.Default.([]string); ok {
			s.Default = append([]string{}, l...)
		}
		if sub := o.vt.structSub(); sub != nil {
			s.Suboptions = sub.describe()
		}
		out = append(out, s)
	}
	return out
}

// structSub returns the suboptions of a dict option or a list of dicts.
func (vt *valueType) structSub() *structSpec {
	if vt.kind == kindStruct {
		return vt.sub
	}
	if vt.kind == kindList && vt.elem.kind == kindStruct {
		return vt.elem.sub
	}
	return nil
}

func specOf(t reflect.Type) (*structSpec, error) {
	if v, ok := specCache.Load(t); ok {
		if err, isErr := v.(error); isErr {
			return nil, err
		}
		return v.(*structSpec), nil
	}
	ss, err := buildStructSpec(t, nil)
	if err != nil {
		err = fmt.Errorf("invalid options declaration %s: %w", t, err)
		specCache.Store(t, err)
		return nil, err
	}
	specCache.Store(t, ss)
	return ss, nil
}

// buildStructSpec reads the tags of struct t. seen guards against recursive
// types, which could not be described as finite suboptions.
func buildStructSpec(t reflect.Type, seen []reflect.Type) (*structSpec, error) {
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("options type must be a struct, got %s", t)
	}
	for _, s := range seen {
		if s == t {
			return nil, fmt.Errorf("recursive options type %s", t)
		}
	}
	seen = append(seen, t)
	ss := &structSpec{typ: t, byName: map[string]*option{}}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, ok := f.Tag.Lookup("ansible")
		if !ok || name == "-" {
			continue
		}
		if !f.IsExported() {
			return nil, fmt.Errorf("field %s: unexported field has an ansible tag", f.Name)
		}
		o, err := buildOption(f, name, seen)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", f.Name, err)
		}
		o.index = i
		for _, n := range append([]string{o.spec.Name}, o.spec.Aliases...) {
			if _, dup := ss.byName[n]; dup {
				return nil, fmt.Errorf("field %s: name %q declared twice", f.Name, n)
			}
			ss.byName[n] = o
		}
		ss.opts = append(ss.opts, o)
	}
	return ss, nil
}

func buildOption(f reflect.StructField, name string, seen []reflect.Type) (*option, error) {
	if !validName(name) {
		return nil, fmt.Errorf("invalid option name %q", name)
	}
	typeTag := f.Tag.Get("type")
	switch typeTag {
	case "", "path", "raw":
	default:
		return nil, fmt.Errorf("unsupported type tag %q (only path and raw override the Go type)", typeTag)
	}
	vt, err := typeOf(f.Type, typeTag, seen)
	if err != nil {
		return nil, err
	}
	o := &option{vt: vt, spec: OptionSpec{Name: name, Type: vt.kind.String()}}
	if vt.kind == kindList {
		o.spec.Elements = vt.elem.kind.String()
	}
	if o.spec.Required, err = boolTag(f, "required"); err != nil {
		return nil, err
	}
	if o.spec.NoLog, err = boolTag(f, "no_log"); err != nil {
		return nil, err
	}
	if a, ok := f.Tag.Lookup("aliases"); ok {
		for _, alias := range strings.Split(a, ",") {
			if !validName(alias) {
				return nil, fmt.Errorf("invalid alias %q", alias)
			}
			o.spec.Aliases = append(o.spec.Aliases, alias)
		}
	}
	if c, ok := f.Tag.Lookup("choices"); ok {
		if err := o.setChoices(c); err != nil {
			return nil, err
		}
	}
	if d, ok := f.Tag.Lookup("default"); ok {
		if err := o.setDefault(d); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// validName keeps option names to what a YAML task can spell without quoting
// and what messages can list unambiguously.
func validName(n string) bool {
	if n == "" || strings.HasPrefix(n, "_ansible") {
		return false
	}
	for _, r := range n {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func boolTag(f reflect.StructField, key string) (bool, error) {
	v, ok := f.Tag.Lookup(key)
	if !ok {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("tag %s:%q: want true or false", key, v)
	}
	return b, nil
}

func (o *option) setChoices(c string) error {
	leaf := o.vt
	if leaf.kind == kindList {
		leaf = leaf.elem
	}
	switch leaf.kind {
	case kindStr, kindPath, kindInt, kindFloat:
	default:
		return fmt.Errorf("choices on a %s option", o.spec.Type)
	}
	for _, choice := range strings.Split(c, ",") {
		v, err := convertScalar(leaf, choice)
		if err != nil {
			return fmt.Errorf("choice %q: %w", choice, err)
		}
		o.spec.Choices = append(o.spec.Choices, choiceKey(v))
	}
	return nil
}

func (o *option) setDefault(d string) error {
	if o.spec.Required {
		// As ansible-core: a required option with a default is a contradiction.
		return fmt.Errorf("required and default are mutually exclusive")
	}
	switch o.vt.kind {
	case kindStruct, kindDict, kindRaw:
		return fmt.Errorf("default on a %s option is not supported", o.vt.kind)
	case kindList:
		if o.vt.elem.kind == kindStruct || o.vt.elem.kind == kindDict || o.vt.elem.kind == kindList || o.vt.elem.kind == kindRaw {
			return fmt.Errorf("default on a list of %s is not supported", o.vt.elem.kind)
		}
		parts := []string{}
		list := []any{}
		if d != "" {
			parts = strings.Split(d, ",")
		}
		for _, p := range parts {
			v, err := convertScalar(o.vt.elem, p)
			if err != nil {
				return fmt.Errorf("default %q: %w", d, err)
			}
			list = append(list, v)
		}
		if err := o.checkChoices(list); err != nil {
			return fmt.Errorf("default: %w", err)
		}
		o.def = rawOf(list)
		o.spec.Default = parts
		return nil
	}
	v, err := convertScalar(o.vt, d)
	if err != nil {
		return fmt.Errorf("default %q: %w", d, err)
	}
	if err := o.checkChoices(v); err != nil {
		return fmt.Errorf("default: %w", err)
	}
	o.def = rawOf(v)
	o.spec.Default = v
	if i, ok := v.(int64); ok {
		o.spec.Default = int(i)
	}
	return nil
}

// rawOf turns a converted default back into the form JSON decoding yields,
// so a default goes through exactly the conversion a given value would.
func rawOf(v any) any {
	switch x := v.(type) {
	case int64:
		return json.Number(strconv.FormatInt(x, 10))
	case float64:
		return json.Number(strconv.FormatFloat(x, 'g', -1, 64))
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = rawOf(e)
		}
		return out
	}
	return v
}

// convertScalar converts a tag string (default, choice) for a scalar type.
// Paths are not expanded: the default is expanded at decode time, like a value.
func convertScalar(vt *valueType, s string) (any, error) {
	switch vt.kind {
	case kindStr, kindPath:
		return s, nil
	case kindInt:
		return toInt(s, vt.goType)
	case kindFloat:
		return toFloat(s)
	case kindBool:
		return toBool(s)
	}
	return nil, fmt.Errorf("%s is not a scalar type", vt.kind)
}

func typeOf(t reflect.Type, typeTag string, seen []reflect.Type) (*valueType, error) {
	vt := &valueType{goType: t}
	base := t
	if base.Kind() == reflect.Pointer {
		base = base.Elem()
		if base.Kind() == reflect.Pointer {
			return nil, fmt.Errorf("pointer to pointer type %s", t)
		}
	}
	if typeTag == "raw" {
		if base.Kind() != reflect.Interface || base.NumMethod() != 0 {
			return nil, fmt.Errorf("type:\"raw\" needs an any field, got %s", t)
		}
	}
	switch base.Kind() {
	case reflect.String:
		vt.kind = kindStr
		if typeTag == "path" {
			vt.kind = kindPath
		}
		return vt, nil
	case reflect.Interface:
		if base.NumMethod() != 0 {
			return nil, fmt.Errorf("interface type %s (only any is supported)", t)
		}
		vt.kind = kindRaw
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		vt.kind = kindInt
	case reflect.Float32, reflect.Float64:
		vt.kind = kindFloat
	case reflect.Bool:
		vt.kind = kindBool
	case reflect.Slice:
		if t.Kind() == reflect.Pointer {
			return nil, fmt.Errorf("pointer to slice type %s (a nil slice already means absent)", t)
		}
		elem, err := typeOf(base.Elem(), typeTag, seen)
		if err != nil {
			return nil, err
		}
		vt.kind, vt.elem = kindList, elem
		return vt, nil
	case reflect.Map:
		if t.Kind() == reflect.Pointer {
			return nil, fmt.Errorf("pointer to map type %s (a nil map already means absent)", t)
		}
		if base.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("map key type must be string in %s", t)
		}
		elem, err := typeOf(base.Elem(), typeTag, seen)
		if err != nil {
			return nil, err
		}
		vt.kind, vt.elem = kindDict, elem
		return vt, nil
	case reflect.Struct:
		sub, err := buildStructSpec(base, seen)
		if err != nil {
			return nil, err
		}
		vt.kind, vt.sub = kindStruct, sub
	default:
		return nil, fmt.Errorf("unsupported Go type %s", t)
	}
	if typeTag == "path" {
		return nil, fmt.Errorf("type:\"path\" needs a string field, got %s", t)
	}
	return vt, nil
}
