// Package ansible is the runtime every chezlepro.sovereign module is built on:
// it reads the args file ansible-core uploads, decodes it into a typed options
// struct declared with struct tags, calls the module, and prints exactly one
// JSON object back, with no_log values masked everywhere.
//
// Options are declared on a struct:
//
//	type Options struct {
//	    Name    string            `ansible:"name" required:"true"`
//	    Dest    string            `ansible:"dest" type:"path" aliases:"path"`
//	    State   string            `ansible:"state" choices:"present,absent" default:"present"`
//	    Keep    int               `ansible:"keep_releases" default:"5"`
//	    Force   bool              `ansible:"force"`
//	    Timeout *int              `ansible:"timeout"`          // nil when not given
//	    Env     map[string]string `ansible:"env"`              // dict of str
//	    Extra   map[string]any    `ansible:"extra"`            // raw dict
//	    Args    []string          `ansible:"args"`             // list of str
//	    Token   string            `ansible:"token" no_log:"true"`
//	    Gate    *Gate             `ansible:"gate"`             // dict with suboptions
//	    Files   []File            `ansible:"files"`            // list of dicts with suboptions
//	}
//
// Go types map to Ansible types: string=str (type:"path" for path),
// int/int64=int, float64=float, bool=bool, []T=list, map[string]T=dict,
// struct or *struct=dict with suboptions, any=raw. Pointers to scalars are
// left nil when the option is absent and has no default.
package ansible

import "sync"

// Module describes one module: its name, whether it honours check mode, the
// option groups that cannot be expressed on a single field, and the function
// that does the work.
type Module[O any] struct {
	// Name is the short module name used in messages ("binary_stage").
	Name string
	// SupportsCheckMode: when false and _ansible_check_mode is true, the
	// runtime answers {"skipped": true, "msg": "remote module (NAME) does not
	// support check mode"} without calling Run, exactly as Python modules do.
	SupportsCheckMode bool
	// Groups of top-level option names (as named in the ansible tag).
	MutuallyExclusive [][]string
	RequiredTogether  [][]string
	RequiredOneOf     [][]string
	// Run does the work. A non-nil error fails the task with msg set to the
	// error text; values in the returned Result (if non-nil) are still
	// returned alongside, so a failed flip can report its gate result.
	Run func(ctx *Context, opts *O) (*Result, error)
}

// Context carries what ansible-core told the module about this invocation.
type Context struct {
	ModuleName string // from _ansible_module_name, else Module.Name
	CheckMode  bool   // _ansible_check_mode
	Diff       bool   // _ansible_diff
	NoLog      bool   // _ansible_no_log
	Verbosity  int    // _ansible_verbosity
	TmpDir     string // _ansible_tmpdir ("" when null)

	mu           sync.Mutex // Warn, Deprecate and Hide may be called from several goroutines
	warnings     []string
	deprecations []Deprecation
	noLog        map[string]struct{} // the runtime's no_log values, shared with its masker
}

// Hide masks v in everything printed, exactly as a no_log option's value is
// masked: for a secret that is only part of an option's value, such as the
// password of a URL, so the rest of that value stays readable.
func (c *Context) Hide(v string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v != "" && c.noLog != nil {
		c.noLog[v] = struct{}{}
	}
}

// Warn adds a warning shown by ansible-playbook after the task.
func (c *Context) Warn(msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.warnings = append(c.warnings, msg)
}

// Deprecate adds a deprecation notice.
func (c *Context) Deprecate(msg, version string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deprecations = append(c.deprecations, Deprecation{Msg: msg, Version: version, CollectionName: "chezlepro.sovereign"})
}

// Deprecation is one entry of the result's "deprecations" list.
type Deprecation struct {
	Msg            string `json:"msg"`
	Version        string `json:"version,omitempty"`
	CollectionName string `json:"collection_name,omitempty"`
}

// Diff is one before/after pair shown by ansible-playbook --diff.
type Diff struct {
	Before       string `json:"before"`
	After        string `json:"after"`
	BeforeHeader string `json:"before_header,omitempty"`
	AfterHeader  string `json:"after_header,omitempty"`
}

// Result is what a module returns. Values holds the module-specific return
// values; they are emitted as top-level keys of the JSON object. Keys that
// collide with the runtime's own (changed, failed, msg, diff, warnings,
// deprecations, skipped, invocation) are rejected as a programming error.
type Result struct {
	Changed bool
	Msg     string
	Diff    []Diff // emitted only when ctx.Diff; one element is emitted as an object
	Values  map[string]any
}

// The entry points Main, Execute (runtime.go) and Describe (spec.go) are
// documented where they are defined.
//
// Decoding rules worth knowing when writing a module:
//   - A null value counts as absent: the default applies, a required option fails.
//   - A dict option (struct) that is absent stays zero (nil for *struct): its
//     suboptions' defaults apply only when the dict is given, as in ansible-core.
//   - Every problem in the arguments is reported at once (*ArgsError), worded
//     like ansible-core, with nested options named by path ("gate.kind",
//     "files[1].path").
//   - no_log values are masked in everything printed: a value that is exactly
//     a secret becomes "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER", a secret inside
//     a longer string becomes "********", as ansible-core's remove_values does.

// OptionSpec describes one declared option, derived from struct tags.
type OptionSpec struct {
	Name       string
	Type       string // str, path, int, float, bool, list, dict, raw
	Elements   string // for lists: the element type ("str", "int", "dict", ...)
	Required   bool
	Default    any // nil when none; string, int, float64, bool or []string
	Choices    []string
	Aliases    []string
	NoLog      bool
	Suboptions []OptionSpec // for dicts (struct) and lists of dicts ([]struct)
}
