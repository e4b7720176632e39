package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/chezlepro/sovereign/internal/health"

	"github.com/chezlepro/sovereign/internal/ansible"
)

// Options are the module's arguments. plugins/modules/bluegreen_unit.yml
// documents them; docs_test.go keeps the two in step.
type Options struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	Active   string `json:"active"`
	Action   string `json:"action"`
	Strategy string `json:"strategy"`

	Command          []string       `json:"command"`
	Description      string         `json:"description"`
	ServiceType      string         `json:"service_type"`
	User             string         `json:"user"`
	Group            string         `json:"group"`
	WorkingDirectory string         `json:"working_directory"`
	Environment      map[string]any `json:"environment"`
	EnvironmentFiles []string       `json:"environment_files"`
	Credentials      []Credential   `json:"credentials"`
	Restart          string         `json:"restart"`
	RestartSec       float64        `json:"restart_sec"`
	StartTimeout     float64        `json:"start_timeout"`
	DrainTimeout     float64        `json:"drain_timeout"`
	Hardening        *Hardening     `json:"hardening"`
	ServiceOptions   map[string]any `json:"service_options"`

	Sockets    []Socket    `json:"sockets"`
	ColourVars *ColourVars `json:"colour_vars"`
	Health     *Health     `json:"health"`

	KeepWarm         bool         `json:"keep_warm"`
	StopDelay        float64      `json:"stop_delay"`
	ReuseportMigrate bool         `json:"reuseport_migrate"`
	ReuseportSteer   bool         `json:"reuseport_steer"`
	LockTimeout      float64      `json:"lock_timeout"`
	HistorySize      int          `json:"history_size"`
	JournalLines     int          `json:"journal_lines"`
	MetricsDir       ansible.Path `json:"metrics_dir"`
}

// Hardening holds the sandboxing written into both colours' units. Every
// field is on by default (the sidecar's defaults, applied by the action
// plugin even when hardening is not given); a service that needs more
// relaxes one.
type Hardening struct {
	NoNewPrivileges bool     `json:"no_new_privileges"`
	ProtectSystem   string   `json:"protect_system"`
	ProtectHome     string   `json:"protect_home"`
	PrivateTmp      bool     `json:"private_tmp"`
	ProtectKernel   bool     `json:"protect_kernel"`
	Capabilities    []string `json:"capabilities"`
	ReadWritePaths  []string `json:"read_write_paths"`
	// What makes the default units score "OK" with systemd-analyze
	// security; the sidecar says how to relax each.
	PrivateDevices         bool     `json:"private_devices"`
	ProtectClock           bool     `json:"protect_clock"`
	ProtectHostname        bool     `json:"protect_hostname"`
	ProtectProc            string   `json:"protect_proc"`
	RestrictNamespaces     bool     `json:"restrict_namespaces"`
	RestrictSUIDSGID       bool     `json:"restrict_suid_sgid"`
	RestrictRealtime       bool     `json:"restrict_realtime"`
	LockPersonality        bool     `json:"lock_personality"`
	MemoryDenyWriteExecute bool     `json:"memory_deny_write_execute"`
	AddressFamilies        []string `json:"address_families"`
	SystemCallFilter       []string `json:"system_call_filter"`
}

// Socket is one systemd socket unit shared by both colours (strategy socket).
type Socket struct {
	Name    string   `json:"name"`
	Listen  []string `json:"listen"`
	Backlog *int     `json:"backlog"`
}

// Credential is one systemd credential the service reads from
// $CREDENTIALS_DIRECTORY/NAME (LoadCredential=NAME:PATH).
type Credential struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

// ColourVars are per-colour values substituted for {NAME} placeholders.
type ColourVars struct {
	Blue  map[string]any `json:"blue"`
	Green map[string]any `json:"green"`
}

// Health is the gate a colour must pass before it becomes active.
type Health struct {
	URL            string   `json:"url"`
	Status         int      `json:"status"`
	BodyRegex      string   `json:"body_regex"`
	Address        string   `json:"address"`
	Command        []string `json:"command"`
	Interval       float64  `json:"interval"`
	Timeout        float64  `json:"timeout"`
	AttemptTimeout float64  `json:"attempt_timeout"`
	Successes      int      `json:"successes"`
}

// Colour is blue or green.
type Colour string

// The two colours.
const (
	Blue  Colour = "blue"
	Green Colour = "green"
)

var colours = []Colour{Blue, Green}

// Other returns the other colour.
func (c Colour) Other() Colour {
	if c == Blue {
		return Green
	}
	return Blue
}

func parseColour(s string) (Colour, error) {
	switch Colour(s) {
	case Blue, Green:
		return Colour(s), nil
	}
	return "", fmt.Errorf("colour %q: must be blue or green", s)
}

// config is the validated, resolved form of Options: every placeholder
// substituted per colour, every value checked for what it is written into.
// Building it is pure; render and plan read only this.
type config struct {
	name     string
	state    string
	active   Colour // "" when not given
	action   string
	strategy string
	colour   map[Colour]*colourConfig
	service  serviceConfig
	sockets  []socketConfig

	keepWarm     bool
	stopDelay    time.Duration
	migrate      bool
	steer        bool
	lockTimeout  time.Duration
	historySize  int
	journalLines int
	// definition is recorded in the state file (see definition.go).
	definition json.RawMessage
}

// colourConfig is what differs between colours after substitution.
type colourConfig struct {
	command          []string
	environment      [][2]string // sorted by key
	environmentFiles []string
	credentials      [][2]string // name, path
	workingDirectory string
	readWritePaths   []string
	serviceOptions   [][2]string // sorted by key
	gate             health.Gate
}

type serviceConfig struct {
	description  string
	serviceType  string
	user, group  string
	restart      string
	restartSec   time.Duration
	startTimeout time.Duration
	drainTimeout time.Duration
	hardening    Hardening
}

type socketConfig struct {
	name    string
	listen  []string
	backlog int // 0: systemd's default
}

var (
	nameRe     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	envKeyRe   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	userRe     = regexp.MustCompile(`^([a-z_][a-z0-9_-]{0,30}\$?|[0-9]{1,10})$`)
	capRe      = regexp.MustCompile(`^CAP_[A-Z_]+$`)
	afRe       = regexp.MustCompile(`^AF_[A-Z0-9]+$`)
	syscallRe  = regexp.MustCompile(`^~?@?[a-z0-9_-]+$`)
	optKeyRe   = regexp.MustCompile(`^[A-Z][A-Za-z0-9]+$`)
	sockNameRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$`)
	credNameRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$`)
	varNameRe  = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	// A placeholder starts with a letter or '_', so regexp repetitions such
	// as {2} or {1,3} in health.body_regex are left alone.
	placeRe = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)\}`)
)

// managedKeys are [Service] keys the module writes itself; service_options
// may not set them, so a unit never holds one twice.
var managedKeys = map[string]string{
	"ExecStart": "command", "Type": "service_type", "User": "user", "Group": "group",
	"WorkingDirectory": "working_directory", "Environment": "environment",
	"EnvironmentFile": "environment_files", "Restart": "restart", "RestartSec": "restart_sec",
	"TimeoutStartSec": "start_timeout", "TimeoutStopSec": "drain_timeout", "Sockets": "sockets",
	"TimeoutSec": "start_timeout and drain_timeout", "LoadCredential": "credentials",
	"NoNewPrivileges": "hardening.no_new_privileges", "ProtectSystem": "hardening.protect_system",
	"ProtectHome": "hardening.protect_home", "PrivateTmp": "hardening.private_tmp",
	"ProtectKernelTunables": "hardening.protect_kernel", "ProtectKernelModules": "hardening.protect_kernel",
	"ProtectControlGroups": "hardening.protect_kernel", "CapabilityBoundingSet": "hardening.capabilities",
	"AmbientCapabilities": "hardening.capabilities", "ReadWritePaths": "hardening.read_write_paths",
	"PrivateDevices": "hardening.private_devices", "ProtectClock": "hardening.protect_clock",
	"ProtectHostname": "hardening.protect_hostname", "ProtectProc": "hardening.protect_proc",
	"ProtectKernelLogs": "hardening.protect_kernel", "RestrictNamespaces": "hardening.restrict_namespaces",
	"RestrictSUIDSGID": "hardening.restrict_suid_sgid", "RestrictRealtime": "hardening.restrict_realtime",
	"LockPersonality": "hardening.lock_personality", "MemoryDenyWriteExecute": "hardening.memory_deny_write_execute",
	"RestrictAddressFamilies": "hardening.address_families", "SystemCallFilter": "hardening.system_call_filter",
	"SystemCallArchitectures": "hardening.system_call_filter", "SystemCallErrorNumber": "hardening.system_call_filter",
}

func checkName(name string) error {
	if !nameRe.MatchString(name) || strings.Contains(name, "..") || strings.HasSuffix(name, ".") {
		return fmt.Errorf("name %q is not a valid service name: use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit", name)
	}
	return nil
}

// maxArg is the longest string the kernel passes to a program as one
// argument or environment variable (MAX_ARG_STRLEN, 128 KiB with its NUL);
// every value the units hold is bounded by it, far below the 1 MiB line
// systemd still loads (D17).
const maxArg = 128<<10 - 1

// checkLine rejects what would break out of one line of a unit file:
// control characters (newlines first) and a trailing backslash, which
// continues the line; and values too long to reach the program.
func checkLine(what, v string) error {
	if len(v) > maxArg {
		return fmt.Errorf("%s is %d bytes: at most %d fit in one argument or environment variable (the kernel's MAX_ARG_STRLEN); put large values in a file", what, len(v), maxArg)
	}
	for i, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s contains a control character (%q at byte %d): unit file values must be one line", what, r, i)
		}
	}
	if strings.HasSuffix(v, `\`) {
		return fmt.Errorf("%s ends with a backslash, which would continue the line in a unit file", what)
	}
	return nil
}

// checkPath requires an absolute, clean path that cannot escape upward.
func checkPath(what, p string) error {
	if err := checkLine(what, p); err != nil {
		return err
	}
	if !filepath.IsAbs(p) {
		return fmt.Errorf("%s %q must be an absolute path", what, p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." || part == "." {
			return fmt.Errorf("%s %q must not contain %q components", what, p, part)
		}
	}
	if strings.ContainsAny(p, " \t\"'") {
		return fmt.Errorf("%s %q must not contain spaces or quotes", what, p)
	}
	if filepath.Clean(p) != p {
		return fmt.Errorf("%s %q is not a clean path (want %q)", what, p, filepath.Clean(p))
	}
	return nil
}

// scalar renders a YAML scalar given as a raw value.
func scalar(what string, v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		if x {
			return "true", nil
		}
		return "false", nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case nil:
		return "", fmt.Errorf("%s is null", what)
	}
	return "", fmt.Errorf("%s must be a string, number or boolean, got %T", what, v)
}

func seconds(what string, s float64) (time.Duration, error) {
	if s < 0 || s > 86400 {
		return 0, fmt.Errorf("%s must be between 0 and 86400 seconds, got %v", what, s)
	}
	return time.Duration(s * float64(time.Second)), nil
}

// subst replaces {colour}, {other}, {name} and the colour's colour_vars in s.
// An unknown placeholder is an error, so a typo never reaches a unit file.
func subst(what, s string, vars map[string]string) (string, error) {
	var err error
	out := placeRe.ReplaceAllStringFunc(s, func(m string) string {
		key := m[1 : len(m)-1]
		v, ok := vars[key]
		if !ok && err == nil {
			known := make([]string, 0, len(vars))
			for k := range vars {
				known = append(known, "{"+k+"}")
			}
			sort.Strings(known)
			err = fmt.Errorf("%s uses unknown placeholder %s (known: %s)", what, m, strings.Join(known, ", "))
		}
		return v
	})
	return out, err
}

// newConfig validates opts and resolves them. Every error names the
// option, and every error is reported, phase by phase: how the run runs,
// then for state=present the service, the strategy, the sockets, the
// service options, and last each colour's substitutions.
func newConfig(o *Options) (*config, error) {
	c := &config{
		name: o.Name, state: o.State, action: o.Action, strategy: o.Strategy,
		keepWarm: o.KeepWarm, migrate: o.ReuseportMigrate, steer: o.ReuseportSteer,
		historySize: o.HistorySize, journalLines: o.JournalLines,
		colour: map[Colour]*colourConfig{},
	}
	errs := []error{resolveRun(c, o)}
	if o.State != "present" {
		if o.Action != "" || o.Active != "" {
			errs = append(errs, fmt.Errorf("active and action only apply to state=present, not state=%s", o.State))
		}
		return c, errors.Join(errs...)
	}
	var err error
	c.stopDelay, err = seconds("stop_delay", o.StopDelay)
	errs = append(errs, err)
	c.service, err = resolveService(o)
	errs = append(errs, err, checkStrategy(o))
	c.sockets, err = resolveSockets(o.Sockets)
	errs = append(errs, err)
	optKeys, err := serviceOptionKeys(o.ServiceOptions)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	err = resolveColours(c, o, optKeys)
	return c, err
}

// resolveRun checks what every state shares: the name, the colour asked
// for, and how the run keeps its history, journal and lock.
func resolveRun(c *config, o *Options) error {
	errs := []error{checkName(o.Name)}
	if o.Active != "" {
		col, err := parseColour(o.Active)
		errs = append(errs, err)
		c.active = col
	}
	if o.HistorySize < 1 || o.HistorySize > 1000 {
		errs = append(errs, fmt.Errorf("history_size must be between 1 and 1000, got %d", o.HistorySize))
	}
	if o.JournalLines < 0 || o.JournalLines > 1000 {
		errs = append(errs, fmt.Errorf("journal_lines must be between 0 and 1000, got %d", o.JournalLines))
	}
	var err error
	c.lockTimeout, err = seconds("lock_timeout", o.LockTimeout)
	return errors.Join(append(errs, err)...)
}

// resolveService checks what both colours' services share: type, restart,
// timeouts, description, user and group, and the hardening.
func resolveService(o *Options) (serviceConfig, error) {
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	var s serviceConfig
	var err error
	s.serviceType = o.ServiceType
	s.restart = o.Restart
	if s.restart == "never" {
		s.restart = "no"
	}
	s.restartSec, err = seconds("restart_sec", o.RestartSec)
	add(err)
	s.startTimeout, err = seconds("start_timeout", o.StartTimeout)
	add(err)
	s.drainTimeout, err = seconds("drain_timeout", o.DrainTimeout)
	add(err)
	if s.startTimeout == 0 {
		add(errors.New("start_timeout must be positive"))
	}
	s.description = o.Description
	if s.description == "" {
		s.description = o.Name
	}
	add(checkLine("description", s.description))
	for what, v := range map[string]string{"user": o.User, "group": o.Group} {
		if v != "" && !userRe.MatchString(v) {
			add(fmt.Errorf("%s %q is not a valid user or group name", what, v))
		}
	}
	s.user, s.group = o.User, o.Group
	if o.Hardening == nil {
		// The action plugin applies the sidecar's defaults to an absent hardening.
		add(errors.New("hardening is missing: its defaults come from the module's documentation, applied by the action plugin; run the module through it"))
	} else {
		s.hardening = *o.Hardening
	}
	for _, l := range []struct {
		name, want string
		re         *regexp.Regexp
		values     []string
	}{
		{"capabilities", "a capability name like CAP_NET_BIND_SERVICE", capRe, s.hardening.Capabilities},
		{"address_families", "an address family like AF_INET6", afRe, s.hardening.AddressFamilies},
		{"system_call_filter", "a system call or @set, optionally after ~", syscallRe, s.hardening.SystemCallFilter},
	} {
		for i, v := range l.values {
			if !l.re.MatchString(v) {
				add(fmt.Errorf("hardening.%s[%d] %q is not %s", l.name, i, v, l.want))
			}
		}
	}
	return s, errors.Join(errs...)
}

// checkStrategy checks that state=present has a command and a gate, and
// that the strategy fits the sockets and keep_warm.
func checkStrategy(o *Options) error {
	var errs []error
	if len(o.Command) == 0 {
		errs = append(errs, errors.New("command is required with state=present: the argv of the service, e.g. [/opt/NAME/{colour}/bin/NAME, --flag]"))
	}
	if o.Health == nil {
		errs = append(errs, errors.New("health is required with state=present: the gate a colour must pass before it takes traffic (url, address or command)"))
	}
	switch o.Strategy {
	case "socket":
		if len(o.Sockets) == 0 {
			errs = append(errs, errors.New("strategy socket needs sockets: at least one {name, listen} for systemd to hold"))
		}
	default:
		if len(o.Sockets) > 0 {
			errs = append(errs, fmt.Errorf("sockets only apply to strategy socket, not %s", o.Strategy))
		}
	}
	if o.KeepWarm && o.Strategy == "exclusive" {
		errs = append(errs, errors.New("keep_warm cannot be used with strategy exclusive: the colours cannot run at the same time"))
	}
	return errors.Join(errs...)
}

// resolveSockets checks each socket: a unique name, addresses to listen
// on, a backlog in range.
func resolveSockets(sockets []Socket) ([]socketConfig, error) {
	var out []socketConfig
	var errs []error
	seen := map[string]bool{}
	for i, so := range sockets {
		sc := socketConfig{name: so.Name}
		if !sockNameRe.MatchString(so.Name) {
			errs = append(errs, fmt.Errorf("sockets[%d].name %q is not valid: use letters, digits, '_', '.' or '-' (it becomes FileDescriptorName= and part of the unit name)", i, so.Name))
		}
		if seen[so.Name] {
			errs = append(errs, fmt.Errorf("sockets[%d].name %q is given twice", i, so.Name))
		}
		seen[so.Name] = true
		if len(so.Listen) == 0 {
			errs = append(errs, fmt.Errorf("sockets[%d].listen is empty", i))
		}
		for j, l := range so.Listen {
			errs = append(errs, checkListen(fmt.Sprintf("sockets[%d].listen[%d]", i, j), l))
		}
		sc.listen = so.Listen
		if so.Backlog != nil {
			if *so.Backlog < 1 || *so.Backlog > 1<<20 {
				errs = append(errs, fmt.Errorf("sockets[%d].backlog must be between 1 and 1048576", i))
			}
			sc.backlog = *so.Backlog
		}
		out = append(out, sc)
	}
	return out, errors.Join(errs...)
}

// serviceOptionKeys are service_options' keys, sorted; each must be a
// directive name the module does not write itself.
func serviceOptionKeys(opts map[string]any) ([]string, error) {
	keys := slices.Sorted(maps.Keys(opts))
	var errs []error
	for _, k := range keys {
		if !optKeyRe.MatchString(k) {
			errs = append(errs, fmt.Errorf("service_options key %q is not a systemd directive name", k))
		} else if opt, ok := managedKeys[k]; ok {
			options := "option"
			if strings.Contains(opt, " and ") {
				options = "options"
			}
			errs = append(errs, fmt.Errorf("service_options may not set %s: use the %s %s", k, opt, options))
		}
	}
	return keys, errors.Join(errs...)
}

// resolveColours substitutes each colour's values into c.colour. A problem
// both colours share is reported once; one that only a colour's
// substitution causes names the colour.
func resolveColours(c *config, o *Options, optKeys []string) error {
	perColour := map[Colour][]string{}
	for _, col := range colours {
		cc, err := resolveColour(o, col, optKeys)
		if err != nil {
			perColour[col] = splitErrors(err)
			continue
		}
		c.colour[col] = cc
	}
	var errs []error
	for _, col := range colours {
		for _, msg := range perColour[col] {
			shared := slices.Contains(perColour[col.Other()], msg)
			switch {
			case !shared:
				errs = append(errs, fmt.Errorf("%s (colour %s)", msg, col))
			case col == Blue:
				errs = append(errs, errors.New(msg))
			}
		}
	}
	return errors.Join(errs...)
}

// splitErrors lists the messages of an errors.Join.
func splitErrors(err error) []string {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, splitErrors(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

// checkListen accepts what ListenStream= takes for TCP: PORT, IPv4:PORT or
// [IPv6]:PORT.
func checkListen(what, l string) error {
	if err := checkLine(what, l); err != nil {
		return err
	}
	host, port := "", l
	if strings.Contains(l, ":") {
		i := strings.LastIndex(l, ":")
		host, port = l[:i], l[i+1:]
		if strings.HasPrefix(host, "[") != strings.HasSuffix(host, "]") || host == "" {
			return fmt.Errorf("%s %q: want PORT, ADDRESS:PORT or [IPV6]:PORT", what, l)
		}
		addr, err := netip.ParseAddr(strings.Trim(host, "[]"))
		if err != nil || addr.Is6() != strings.HasPrefix(host, "[") {
			return fmt.Errorf("%s %q: the address must be numeric", what, l)
		}
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%s %q: the port must be 1-65535", what, l)
	}
	return nil
}

func colourVars(o *Options, col Colour) (map[string]string, error) {
	vars := map[string]string{"colour": string(col), "other": string(col.Other()), "name": o.Name}
	if o.ColourVars == nil {
		return vars, nil
	}
	given := o.ColourVars.Blue
	if col == Green {
		given = o.ColourVars.Green
	}
	for k, v := range given {
		what := fmt.Sprintf("colour_vars.%s.%s", col, k)
		if !varNameRe.MatchString(k) {
			return nil, fmt.Errorf("%s: variable names use lower-case letters, digits and '_'", what)
		}
		if _, builtin := vars[k]; builtin {
			return nil, fmt.Errorf("%s: %q is built in and cannot be set", what, k)
		}
		s, err := scalar(what, v)
		if err != nil {
			return nil, err
		}
		if err := checkLine(what, s); err != nil {
			return nil, err
		}
		vars[k] = s
	}
	return vars, nil
}

// resolveColour is what col's units hold once its placeholders are
// substituted, every value checked for what it is written into.
func resolveColour(o *Options, col Colour, optKeys []string) (*colourConfig, error) {
	vars, err := colourVars(o, col)
	if err != nil {
		return nil, err
	}
	s := &substituter{vars: vars}
	cc := &colourConfig{
		command:          s.command(o.Command),
		environment:      s.environment(o.Environment),
		environmentFiles: s.environmentFiles(o.EnvironmentFiles),
		credentials:      s.credentials(o.Credentials),
	}
	if o.WorkingDirectory != "" {
		cc.workingDirectory = s.path("working_directory", o.WorkingDirectory)
	}
	if o.Hardening != nil {
		for i, p := range o.Hardening.ReadWritePaths {
			cc.readWritePaths = append(cc.readWritePaths, s.path(fmt.Sprintf("hardening.read_write_paths[%d]", i), p))
		}
	}
	for _, k := range optKeys {
		what := "service_options." + k
		v, err := scalar(what, o.ServiceOptions[k])
		if err != nil {
			s.fail(err)
			continue
		}
		cc.serviceOptions = append(cc.serviceOptions, [2]string{k, s.line(what, v)})
	}
	if o.Health != nil {
		g, err := resolveGate(o.Health, s.line)
		s.fail(err)
		cc.gate = g
	}
	return cc, errors.Join(s.errs...)
}

// substituter substitutes one colour's placeholders and checks the result,
// collecting every error.
type substituter struct {
	vars map[string]string
	errs []error
}

func (s *substituter) fail(err error) {
	if err != nil {
		s.errs = append(s.errs, err)
	}
}

// line substitutes v, which must stay one line of a unit file.
func (s *substituter) line(what, v string) string { return s.checked(what, v, checkLine) }

// path substitutes v, which must be an absolute, clean path.
func (s *substituter) path(what, v string) string { return s.checked(what, v, checkPath) }

func (s *substituter) checked(what, v string, check func(what, v string) error) string {
	out, err := subst(what, v, s.vars)
	if err == nil {
		err = check(what, out)
	}
	s.fail(err)
	return out
}

// command is the argv: an absolute program, then arguments that are not a
// lone ';' (systemd's command separator).
func (s *substituter) command(argv []string) []string {
	var out []string
	for i, a := range argv {
		what := fmt.Sprintf("command[%d]", i)
		if i == 0 {
			out = append(out, s.path(what, a))
			continue
		}
		v := s.line(what, a)
		if v == ";" {
			s.fail(fmt.Errorf("%s is a lone ';', which systemd reads as a command separator", what))
		}
		out = append(out, v)
	}
	return out
}

// environment is the variables sorted by name, each NAME=VALUE within what
// the kernel passes to a program.
func (s *substituter) environment(env map[string]any) [][2]string {
	var out [][2]string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		what := "environment." + k
		if !envKeyRe.MatchString(k) {
			s.fail(fmt.Errorf("environment key %q is not a variable name", k))
			continue
		}
		v, err := scalar(what, env[k])
		if err != nil {
			s.fail(err)
			continue
		}
		v = s.line(what, v)
		if n := len(k) + 1 + len(v); n > maxArg && len(v) <= maxArg {
			s.fail(fmt.Errorf("%s: %s=VALUE is %d bytes: at most %d fit in one environment variable (the kernel's MAX_ARG_STRLEN)", what, k, n, maxArg))
		}
		out = append(out, [2]string{k, v})
	}
	return out
}

// environmentFiles are absolute paths, each optional when it starts with '-'.
func (s *substituter) environmentFiles(files []string) []string {
	var out []string
	for i, f := range files {
		optional := strings.HasPrefix(f, "-")
		p := s.path(fmt.Sprintf("environment_files[%d]", i), strings.TrimPrefix(f, "-"))
		if optional {
			p = "-" + p
		}
		out = append(out, p)
	}
	return out
}

// credentials are name and absolute path pairs.
func (s *substituter) credentials(creds []Credential) [][2]string {
	var out [][2]string
	for i, cr := range creds {
		what := fmt.Sprintf("credentials[%d]", i)
		if !credNameRe.MatchString(cr.Name) {
			s.fail(fmt.Errorf("%s.name %q is not a credential name: letters, digits, '_', '.' or '-'", what, cr.Name))
		}
		out = append(out, [2]string{cr.Name, s.path(what+".path", cr.Path)})
	}
	return out
}

func resolveGate(h *Health, sub func(what, v string) string) (health.Gate, error) {
	var g health.Gate
	n := 0
	if h.URL != "" {
		n++
		g.Check.Kind = health.HTTP
		g.Check.URL = sub("health.url", h.URL)
		g.Check.ExpectStatus = h.Status
		if h.BodyRegex != "" {
			re, err := regexp.Compile(sub("health.body_regex", h.BodyRegex))
			if err != nil {
				return g, fmt.Errorf("health.body_regex: %w", err)
			}
			g.Check.BodyRegex = re
		}
	}
	if h.Address != "" {
		n++
		g.Check.Kind = health.TCP
		g.Check.Address = sub("health.address", h.Address)
	}
	if len(h.Command) > 0 {
		n++
		g.Check.Kind = health.Command
		for i, a := range h.Command {
			g.Check.Command = append(g.Check.Command, sub(fmt.Sprintf("health.command[%d]", i), a))
		}
		if !filepath.IsAbs(g.Check.Command[0]) {
			return g, fmt.Errorf("health.command[0] %q must be an absolute path", g.Check.Command[0])
		}
	}
	if n != 1 {
		return g, fmt.Errorf("health needs exactly one of url, address or command, got %d", n)
	}
	if h.BodyRegex != "" && h.URL == "" {
		return g, errors.New("health.body_regex needs health.url")
	}
	var err error
	if g.Interval, err = seconds("health.interval", h.Interval); err != nil {
		return g, err
	}
	if g.Timeout, err = seconds("health.timeout", h.Timeout); err != nil {
		return g, err
	}
	if g.Check.AttemptTimeout, err = seconds("health.attempt_timeout", h.AttemptTimeout); err != nil {
		return g, err
	}
	g.Successes = h.Successes
	if err := g.Validate(); err != nil {
		return g, err
	}
	return g, nil
}
