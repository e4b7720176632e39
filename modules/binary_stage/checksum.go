package main

import (
	"fmt"
	"path"
	"strings"
)

// parseChecksum reads the checksum option. Accepted forms:
//
//	sha256:<64 hex>
//	<64 hex>  <name>            (a line of a sha256sum checksum file; "*name" too)
//	several such lines          (a whole checksum file: the line whose name is
//	                             want is used)
//
// It returns the lower-case hex digest. want is the base name of the source
// (src, url path or manifest artifact) used to pick a line from a file.
func parseChecksum(s, want string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("checksum is empty")
	}
	if algo, hex, ok := strings.Cut(s, ":"); ok && !strings.ContainsAny(algo, " \t\n") {
		if !strings.EqualFold(algo, "sha256") {
			return "", fmt.Errorf("checksum %q: only sha256 is supported, got %q", s, algo)
		}
		if !isSHA256Hex(hex) {
			return "", fmt.Errorf("checksum %q: want sha256: followed by 64 hexadecimal digits", s)
		}
		return strings.ToLower(hex), nil
	}
	type entry struct{ hex, name string }
	var entries []entry
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 || !isSHA256Hex(fields[0]) {
			return "", fmt.Errorf("checksum %q: want sha256:<64 hex digits> or a checksum file line \"<64 hex digits>  <name>\"", s)
		}
		entries = append(entries, entry{strings.ToLower(fields[0]), strings.TrimPrefix(fields[1], "*")})
	}
	switch {
	case len(entries) == 1:
		return entries[0].hex, nil
	case len(entries) == 0:
		return "", fmt.Errorf("checksum %q holds no checksum line", s)
	}
	var names []string
	for _, e := range entries {
		if e.name == want || path.Base(e.name) == want {
			return e.hex, nil
		}
		names = append(names, e.name)
	}
	return "", fmt.Errorf("checksum file lists %s but no line for %q", strings.Join(names, ", "), want)
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
