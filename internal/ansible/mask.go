package ansible

import (
	"encoding/json"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// addURLPasswords records the password of every URL in the arguments
// (scheme://user:password@host), in any option, as a no_log value: a
// credential inside a repository or download URL must not be echoed, not
// even when decoding fails before the module could say so. ansible-core's
// heuristic_log_sanitize does the same for what it logs.
func addURLPasswords(set map[string]struct{}, v any) {
	switch x := v.(type) {
	case string:
		if !strings.Contains(x, "@") {
			return
		}
		u, err := url.Parse(x)
		if err != nil || u.Scheme == "" || u.User == nil {
			return
		}
		if pw, ok := u.User.Password(); ok && pw != "" {
			set[pw] = struct{}{}
			if _, rest, ok := strings.Cut(x, "://"); ok {
				if userinfo, _, ok := strings.Cut(rest, "@"); ok {
					if _, raw, ok := strings.Cut(userinfo, ":"); ok && raw != "" {
						set[raw] = struct{}{} // as written, %-escapes and all
					}
				}
			}
		}
	case []any:
		for _, e := range x {
			addURLPasswords(set, e)
		}
	case map[string]any:
		for _, e := range x {
			addURLPasswords(set, e)
		}
	}
}

// noLogPlaceholder replaces a value that is exactly a no_log value;
// noLogMask replaces a no_log value found inside a longer string. Both are
// what ansible-core's remove_values writes.
const (
	noLogPlaceholder = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
	noLogMask        = "********"
)

// masker is ansible-core's remove_values over a JSON tree (values from
// encoding/json with UseNumber). Differences, on purpose: keys are left alone
// (as remove_values does) and booleans/nulls are never replaced, so that a
// short secret cannot turn "changed": false into a string.
type masker struct {
	set     map[string]struct{}
	ordered []string // longest first, so a secret containing another is masked whole
}

func newMasker(values map[string]struct{}) *masker {
	m := &masker{set: values}
	for v := range values {
		m.ordered = append(m.ordered, v)
	}
	sort.Slice(m.ordered, func(i, j int) bool {
		if len(m.ordered[i]) != len(m.ordered[j]) {
			return len(m.ordered[i]) > len(m.ordered[j])
		}
		return m.ordered[i] < m.ordered[j]
	})
	return m
}

func (m *masker) empty() bool { return len(m.ordered) == 0 }

func (m *masker) mask(v any) any {
	if m.empty() {
		return v
	}
	switch x := v.(type) {
	case string:
		return m.maskString(x)
	case json.Number:
		// Check Go's spelling and Python's (1 vs 1.0): the secret was
		// recorded the way ansible-core prints it.
		forms := []string{string(x)}
		if f, err := strconv.ParseFloat(string(x), 64); err == nil {
			forms = append(forms, pyFloat(f))
		}
		for _, s := range forms {
			for _, secret := range m.ordered {
				if strings.Contains(s, secret) {
					return noLogPlaceholder
				}
			}
		}
		return x
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = m.mask(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = m.mask(e)
		}
		return out
	}
	return v
}

// maskString replaces, in one pass over the original text, every stretch
// covered by an occurrence of any secret with one mask. ansible-core
// replaces secret after secret instead, which re-scans its own "********"
// (a secret containing "*" then grows the text eightfold per secret) and
// can leave part of two overlapping secrets visible.
func (m *masker) maskString(s string) string {
	if _, ok := m.set[s]; ok {
		return noLogPlaceholder
	}
	var covered []bool
	for _, secret := range m.ordered {
		end := 0 // everything before end is already marked
		for i := 0; i < len(s); {
			j := strings.Index(s[i:], secret)
			if j < 0 {
				break
			}
			start := i + j
			if covered == nil {
				covered = make([]bool, len(s))
			}
			for k := max(start, end); k < start+len(secret); k++ {
				covered[k] = true
			}
			end = max(end, start+len(secret))
			i = start + 1
		}
	}
	if covered == nil {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if !covered[i] {
			b.WriteByte(s[i])
			continue
		}
		if i == 0 || !covered[i-1] {
			b.WriteString(noLogMask)
		}
	}
	return b.String()
}
