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

	warnings     []string
	deprecations []Deprecation
}

// Warn adds a warning shown by ansible-playbook after the task.
func (c *Context) Warn(msg string) { c.warnings = append(c.warnings, msg) }

// Deprecate adds a deprecation notice.
func (c *Context) Deprecate(msg, version string) {
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

// The entry points, implemented in runtime.go:
//
//	// Main runs m as a process: os.Args in, one JSON object on stdout, exit
//	// status 0 on success and 1 on failure (ansible-core ignores it when the
//	// JSON parses).
//	func Main[O any](m Module[O])
//
//	// Execute is Main without the process: argv[1] names the args file.
//	// It returns the exit status. Used by tests and golden tests.
//	func Execute[O any](m Module[O], argv []string, stdout io.Writer) int
//
//	// Describe lists the options O declares, as the docs check compares them
//	// with plugins/modules/NAME.yml.
//	func Describe[O any]() ([]OptionSpec, error)

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
