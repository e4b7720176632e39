package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"go/version"
	"sort"
	"strings"
)

// goMod is what an offline build needs to know about a go.mod file.
type goMod struct {
	Module    string
	Go        string // the go directive, like "1.25" or "1.22.3"
	Toolchain string // the toolchain directive, like "go1.25.4", or ""
	Requires  []modVersion
}

type modVersion struct {
	Path    string
	Version string
}

// parseGoMod reads the directives this module cares about. It is not a full
// go.mod parser: it reads module, go, toolchain and require (single lines and
// blocks) and skips everything else.
func parseGoMod(data []byte) (goMod, error) {
	var m goMod
	block := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if block != "" {
			if f[0] == ")" {
				block = ""
				continue
			}
			if block == "require" {
				if len(f) < 2 {
					return m, fmt.Errorf("go.mod line %d: malformed requirement %q", n, strings.TrimSpace(line))
				}
				m.Requires = append(m.Requires, modVersion{unquote(f[0]), f[1]})
			}
			continue
		}
		if len(f) >= 2 && f[len(f)-1] == "(" {
			block = f[0]
			continue
		}
		switch f[0] {
		case "module":
			if len(f) >= 2 {
				m.Module = unquote(f[1])
			}
		case "go":
			if len(f) != 2 {
				return m, fmt.Errorf("go.mod line %d: malformed go directive %q", n, strings.TrimSpace(line))
			}
			m.Go = f[1]
		case "toolchain":
			if len(f) == 2 {
				m.Toolchain = f[1]
			}
		case "require":
			if len(f) < 3 {
				return m, fmt.Errorf("go.mod line %d: malformed requirement %q", n, strings.TrimSpace(line))
			}
			m.Requires = append(m.Requires, modVersion{unquote(f[1]), f[2]})
		}
	}
	return m, sc.Err()
}

func unquote(s string) string { return strings.Trim(s, "\"`") }

// vendored is one "# path version" entry of vendor/modules.txt.
type vendored struct {
	Version  string
	Explicit bool
}

// parseModulesTxt reads vendor/modules.txt: "# path version [=> replacement]"
// headers, each followed by "## explicit[; go X]" when go.mod requires the
// module directly.
func parseModulesTxt(data []byte) map[string]vendored {
	out := map[string]vendored{}
	cur := ""
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "## "):
			if cur != "" {
				for _, part := range strings.Split(strings.TrimPrefix(line, "## "), ";") {
					if strings.TrimSpace(part) == "explicit" {
						v := out[cur]
						v.Explicit = true
						out[cur] = v
					}
				}
			}
		case strings.HasPrefix(line, "# "):
			f := strings.Fields(strings.TrimPrefix(line, "# "))
			cur = ""
			if len(f) == 0 {
				continue
			}
			v := vendored{}
			if len(f) >= 2 && f[1] != "=>" {
				v.Version = f[1]
			}
			cur = f[0]
			out[cur] = v
		}
	}
	return out
}

// Offline problems found before the build starts. They are errors wrapped with
// the details, so callers can tell them apart with errors.Is.
var (
	ErrNoVendor         = errors.New("no vendor/ directory")
	ErrInconsistentVend = errors.New("inconsistent vendoring")
	ErrToolchainTooOld  = errors.New("toolchain older than go.mod asks for")
)

// checkVendor compares go.mod's requirements with vendor/modules.txt the way
// an offline build will: every requirement must be vendored at the required
// version and marked explicit, and nothing explicit may be left over. It is
// deliberately conservative (it only reports what go build would also
// reject). modulesTxt is nil when vendor/modules.txt does not exist.
func checkVendor(dir string, m goMod, modulesTxt []byte) error {
	if len(m.Requires) == 0 {
		return nil // nothing to vendor
	}
	if modulesTxt == nil {
		return fmt.Errorf("%w in %s: go.mod requires %d module(s) (%s) and the build is offline (GOFLAGS=-mod=vendor, GOPROXY=off), so it cannot download them; run `go mod vendor` where the network is allowed and commit vendor/ into the mirror (force-add it if .gitignore lists it)",
			ErrNoVendor, dir, len(m.Requires), firstPaths(m.Requires, 3))
	}
	have := parseModulesTxt(modulesTxt)
	var problems []string
	want := map[string]bool{}
	for _, r := range m.Requires {
		want[r.Path] = true
		v, ok := have[r.Path]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s %s is required but not vendored", r.Path, r.Version))
		case v.Version != "" && v.Version != r.Version:
			problems = append(problems, fmt.Sprintf("%s is required at %s but vendored at %s", r.Path, r.Version, v.Version))
		case !v.Explicit && versionAtLeast(m.Go, "1.17"):
			problems = append(problems, fmt.Sprintf("%s %s is required but vendor/modules.txt does not mark it explicit", r.Path, r.Version))
		}
	}
	var extra []string
	for p, v := range have {
		if v.Explicit && !want[p] {
			extra = append(extra, p)
		}
	}
	sort.Strings(extra)
	for _, p := range extra {
		problems = append(problems, fmt.Sprintf("%s is vendored as explicit but go.mod does not require it", p))
	}
	if len(problems) == 0 {
		return nil
	}
	more := ""
	if len(problems) > 5 {
		more = fmt.Sprintf(" (and %d more)", len(problems)-5)
		problems = problems[:5]
	}
	return fmt.Errorf("%w in %s: vendor/modules.txt does not match go.mod: %s%s; run `go mod vendor` and commit the result into the mirror",
		ErrInconsistentVend, dir, strings.Join(problems, "; "), more)
}

// checkToolchain fails when go.mod's go directive asks for a newer Go than
// the local toolchain: with GOTOOLCHAIN=local the go command would stop
// instead of downloading one.
func checkToolchain(dir string, m goMod, local string) error {
	if m.Go == "" || local == "" {
		return nil
	}
	need := "go" + m.Go
	if !version.IsValid(need) || !version.IsValid(local) {
		return nil
	}
	if version.Compare(local, need) >= 0 {
		return nil
	}
	hint := ""
	if m.Toolchain != "" {
		hint = fmt.Sprintf(" (it also suggests toolchain %s)", m.Toolchain)
	}
	return fmt.Errorf("%w: %s/go.mod asks for go >= %s%s but the local toolchain is %s, and the offline build (GOTOOLCHAIN=local) will not download another; install a newer Go on the build host or point go_binary at one",
		ErrToolchainTooOld, dir, m.Go, hint, local)
}

// versionAtLeast compares two go directive values ("1.17", "1.21.3").
func versionAtLeast(have, want string) bool {
	if have == "" {
		return false
	}
	return version.Compare("go"+have, "go"+want) >= 0
}

func firstPaths(ms []modVersion, n int) string {
	var p []string
	for i, m := range ms {
		if i == n {
			p = append(p, fmt.Sprintf("and %d more", len(ms)-n))
			break
		}
		p = append(p, m.Path)
	}
	return strings.Join(p, ", ")
}
