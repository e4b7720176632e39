package main

import (
	"strings"
	"testing"
)

func TestRegisterLine(t *testing.T) {
	got, err := registerLine("/run/chezlepro-arm64/aarch64-binfmt-P")
	if err != nil {
		t.Fatal(err)
	}
	// Debian's /usr/lib/binfmt.d/qemu-aarch64.conf, but for the path.
	want := `:qemu-aarch64:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:` +
		`\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:` +
		`/run/chezlepro-arm64/aarch64-binfmt-P:POF`
	if got != want {
		t.Errorf("registerLine:\n got %s\nwant %s", got, want)
	}
}

func TestRegisterLineRefuses(t *testing.T) {
	for _, tc := range []struct{ path, wantErr string }{
		{"aarch64-binfmt-P", "want an absolute path"},
		{"/usr/bin/qemu-aarch64-static", "must end in -binfmt-P"},
		{"/a:b/aarch64-binfmt-P", "no ':'"},
		{"/a\n/aarch64-binfmt-P", "no ':' or newline"},
	} {
		_, err := registerLine(tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("registerLine(%q) = %v, want an error containing %q", tc.path, err, tc.wantErr)
		}
	}
}
