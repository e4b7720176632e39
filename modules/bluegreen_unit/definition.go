package main

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// The definition is what the units are rendered from: every option but the
// service's name, what this run is asked to do (state, active, action) and
// how it runs (lock_timeout, journal_lines, history_size, metrics_dir). It
// is recorded in the state file at every apply, so that a rollback, a flip or a start
// given only the name runs exactly what was deployed, as the same user,
// instead of a definition re-typed from memory.

// definitionOf is o's definition as recorded: JSON of the Options with the
// per-run fields cleared, keyed by option name (records written before the
// options had json tags are keyed by Go field name: readDefinition reads both).
func definitionOf(o *Options) (json.RawMessage, error) {
	d := *o
	d.Name, d.State, d.Active, d.Action = "", "", "", ""
	d.LockTimeout, d.JournalLines, d.HistorySize, d.MetricsDir = 0, 0, 0, ""
	b, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("record the definition: %w", err)
	}
	return b, nil
}

// givenDefinition lists the definition options given in o; options with a
// default cannot be told apart from absent ones and are not listed (hardening
// included: the action plugin applies its defaults when it is absent).
func givenDefinition(o *Options) []string {
	var given []string
	for name, set := range map[string]bool{
		"command": len(o.Command) > 0, "sockets": len(o.Sockets) > 0, "health": o.Health != nil,
		"colour_vars": o.ColourVars != nil, "environment": len(o.Environment) > 0,
		"environment_files": len(o.EnvironmentFiles) > 0, "user": o.User != "", "group": o.Group != "",
		"credentials":       len(o.Credentials) > 0,
		"working_directory": o.WorkingDirectory != "", "description": o.Description != "",
		"service_options": len(o.ServiceOptions) > 0,
	} {
		if set {
			given = append(given, name)
		}
	}
	slices.Sort(given)
	return given
}

// effectiveOptions decides which definition this run applies. Pure: o is
// what the task gave, recorded the definition of the last apply (nil when
// none). With no definition given, the recorded one is used whole; a given
// definition must be complete (command included), and one that would drop
// the recorded user (the service would then run as root) is refused: it
// must say user: root to mean it.
func effectiveOptions(o *Options, recorded json.RawMessage) (*Options, error) {
	if o.State != "present" {
		return o, nil
	}
	given := givenDefinition(o)
	if len(given) == 0 {
		if recorded == nil {
			return o, nil // newConfig names what is missing
		}
		d, err := readDefinition(recorded)
		if err != nil {
			return nil, fmt.Errorf("the definition recorded in the state file does not parse (give the whole definition): %w", err)
		}
		if d.Hardening == nil {
			// Recorded without hardening: it ran with the defaults, which
			// the action plugin has just applied to o.
			d.Hardening = o.Hardening
		}
		d.Name, d.State, d.Active, d.Action = o.Name, o.State, o.Active, o.Action
		d.LockTimeout, d.JournalLines, d.HistorySize, d.MetricsDir = o.LockTimeout, o.JournalLines, o.HistorySize, o.MetricsDir
		return d, nil
	}
	if len(o.Command) == 0 {
		return nil, fmt.Errorf("a definition must be given in full (command, and everything else it needs) or not at all: %s given without command; "+
			"give only name with active or action to reuse the definition recorded at the last apply", strings.Join(given, ", "))
	}
	if recorded != nil && o.User == "" {
		var d Options
		if err := json.Unmarshal(recorded, &d); err == nil && d.User != "" {
			return nil, fmt.Errorf("the definition recorded at the last apply runs %s as user %q; this one gives no user, so the service would run as root: "+
				"give user: root to mean it, the user to keep it, or only name with active or action to reuse the recorded definition", o.Name, d.User)
		}
	}
	return o, nil
}

// readDefinition reads a recorded definition, keyed by option name or, in
// records of earlier versions, by Go field name.
func readDefinition(recorded json.RawMessage) (*Options, error) {
	var tree any
	if err := json.Unmarshal(recorded, &tree); err != nil {
		return nil, err
	}
	b, err := json.Marshal(optionKeys(reflect.TypeFor[Options](), tree))
	if err != nil {
		return nil, err
	}
	var d Options
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// optionKeys renames the Go field names of struct t in v to the fields'
// json names, recursively; other keys are left alone.
func optionKeys(t reflect.Type, v any) any {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		if list, ok := v.([]any); ok && t.Kind() == reflect.Slice {
			for i, e := range list {
				list[i] = optionKeys(t.Elem(), e)
			}
			return list
		}
		t = t.Elem()
	}
	m, ok := v.(map[string]any)
	if !ok || t.Kind() != reflect.Struct {
		return v
	}
	out := make(map[string]any, len(m))
	for k, e := range m {
		if f, found := t.FieldByName(k); found {
			if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
				out[name] = optionKeys(f.Type, e)
				continue
			}
		}
		if f, found := fieldByJSONName(t, k); found {
			e = optionKeys(f.Type, e)
		}
		out[k] = e
	}
	return out
}

func fieldByJSONName(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		if n, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); n == name {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}
