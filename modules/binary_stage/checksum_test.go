package main

import (
	"strings"
	"testing"
)

func TestParseChecksum(t *testing.T) {
	const a = "5a02056235e67bcc24c6adfb28a20c99330a44e732d8e0f07d5c264785ce9df8"
	const b = "0000000000000000000000000000000000000000000000000000000000000001"
	tests := []struct {
		name, in, want, err string
	}{
		{"prefixed", "sha256:" + a, a, ""},
		{"prefixed upper case", "SHA256:" + strings.ToUpper(a), a, ""},
		{"surrounding space", "  sha256:" + a + "\n", a, ""},
		{"checksum file line", a + "  traefik", a, ""},
		{"binary marker", a + " *traefik", a, ""},
		{"whole file picks by name", b + "  other\n" + a + "  traefik\n", a, ""},
		{"whole file with directory names", b + "  dist/other\n" + a + "  dist/traefik\n", a, ""},
		{"whole file without our name", b + "  other\n" + a + "  third\n", "", `no line for "traefik"`},
		{"md5 refused", "md5:d41d8cd98f00b204e9800998ecf8427e", "", "only sha256 is supported"},
		{"short hex", "sha256:abc", "", "64 hexadecimal digits"},
		{"non hex", "sha256:" + strings.Repeat("g", 64), "", "64 hexadecimal digits"},
		{"bare word", "latest", "", "want sha256:<64 hex digits>"},
		{"empty", "  ", "", "checksum is empty"},
		{"three fields", a + "  traefik extra", "", "want sha256:<64 hex digits>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseChecksum(tc.in, "traefik")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("parseChecksum(%q) error = %v, want one containing %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("parseChecksum(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}
