// Package ansible is the runtime every chezlepro.sovereign module is built on:
// it reads the args file ansible-core uploads, decodes it strictly into the
// module's options struct, calls the module, and prints exactly one JSON
// object back, with no_log values masked everywhere.
//
// The options are declared once, in the module's sidecar documentation
// (plugins/modules/NAME.yml): the action plugin validates the task's
// arguments against it on the controller with ansible-core's own validator,
// applies the defaults and converts the types. The options struct only says
// how to read the result, with json tags:
//
//	type Options struct {
//	    Root    ansible.Path      `json:"root"`    // type: path, expanded here
//	    Keep    int               `json:"keep"`    // its default comes from the sidecar
//	    Timeout *int              `json:"timeout"` // nil when not given
//	    Env     map[string]string `json:"env"`
//	    Gate    *Gate             `json:"gate"`    // dict with suboptions
//	}
//
// A key the struct does not have, or a value of the wrong JSON type, fails
// the task naming it; docscheck keeps the struct's keys and types those of
// the sidecar.
package ansible

import "sync"

// Module describes one module: its name, whether it honours check mode, and
// the function that does the work.
type Module[O any] struct {
	// Name is the short module name used in messages ("binary_stage").
	Name string
	// SupportsCheckMode: when false and _ansible_check_mode is true, the
	// runtime answers {"skipped": true, "msg": "remote module (NAME) does not
	// support check mode"} without calling Run, exactly as Python modules do.
	SupportsCheckMode bool
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
// values, emitted as top-level keys of the JSON object: the module's typed
// result (a struct with json tags, which docscheck.CompareReturns holds to
// the sidecar's RETURN), or a map[string]any. Keys that collide with the
// runtime's own (changed, failed, msg, diff, warnings, deprecations,
// skipped, invocation) are rejected as a programming error.
type Result struct {
	Changed bool
	Msg     string
	Diff    []Diff // emitted only when ctx.Diff; one element is emitted as an object
	Values  any
}

// The entry points Main and Execute are in runtime.go. no_log values (those
// the controller found, URL passwords in any argument, and what Run passes
// to Context.Hide) are masked in everything printed: a value that is exactly
// a secret becomes "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER", a secret inside a
// longer string becomes "********", as ansible-core's remove_values does.
