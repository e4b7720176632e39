package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestParseCaps(t *testing.T) {
	tests := []struct {
		in   []string
		want uint64
		err  string
	}{
		{nil, 0, ""},
		{[]string{"cap_net_bind_service"}, 1 << 10, ""},
		{[]string{"CAP_NET_BIND_SERVICE"}, 1 << 10, ""},
		{[]string{"net_bind_service+ep"}, 1 << 10, ""},
		{[]string{"cap_net_bind_service=ep", "cap_net_raw"}, 1<<10 | 1<<13, ""},
		{[]string{"cap_checkpoint_restore"}, 1 << 40, ""},
		{[]string{"cap_net_bind_service+i"}, 0, "only +ep"},
		{[]string{"cap_net_bind_service=p"}, 0, "only =ep"},
		{[]string{"cap_fly"}, 0, "unknown capability"},
	}
	for _, tc := range tests {
		got, err := parseCaps(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseCaps(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got.Permitted != tc.want || got.Effective != (tc.want != 0) || got.Inheritable != 0 {
			t.Errorf("parseCaps(%q) = %+v, %v; want permitted %#x", tc.in, got, err, tc.want)
		}
	}
}

// The encoding must be byte for byte what setcap writes: this is the
// attribute `setcap cap_net_bind_service+ep FILE` leaves (getfattr -e hex).
func TestCapsEncodingMatchesSetcap(t *testing.T) {
	c, _ := parseCaps([]string{"cap_net_bind_service"})
	want, _ := hex.DecodeString("0100000200040000000000000000000000000000")
	if got := c.encode(); !bytes.Equal(got, want) {
		t.Fatalf("encode = %x, want %x", got, want)
	}
	back, err := decodeCaps(want)
	if err != nil || back != c {
		t.Fatalf("decode = %+v, %v; want %+v", back, err, c)
	}
	if s := c.String(); s != "cap_net_bind_service=ep" {
		t.Fatalf("String = %q", s)
	}
}

func TestDecodeCapsRevisions(t *testing.T) {
	high, _ := parseCaps([]string{"cap_bpf", "cap_chown"})
	v2 := high.encode()
	v3 := append(append([]byte{}, v2...), 0, 0, 0, 0) // + root uid 0
	v3[3] = 0x03
	v1, _ := hex.DecodeString("010000010100000000000000")
	for name, tc := range map[string]struct {
		in   []byte
		want capSet
		err  string
	}{
		"revision 2": {v2, high, ""},
		"revision 3": {v3, high, ""},
		"revision 1": {v1, capSet{Permitted: 1, Effective: true}, ""},
		"truncated":  {v2[:10], capSet{}, "unknown revision"},
		"too short":  {v2[:2], capSet{}, "too short"},
	} {
		got, err := decodeCaps(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error = %v, want %q", name, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: decode = %+v, %v; want %+v", name, got, err, tc.want)
		}
	}
}

// On the real filesystem: write, read back, replace and remove the
// attribute. Needs CAP_SETFCAP and security xattrs on the temp dir's
// filesystem.
func TestWriteCapsOnRealFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(p, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, _ := parseCaps([]string{"cap_net_bind_service"})
	if err := writeCaps(p, c); err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOTSUP) {
			t.Skipf("cannot set file capabilities here (needs root and xattr support): %v", err)
		}
		t.Fatal(err)
	}
	got, err := readCaps(p)
	if err != nil || got != c {
		t.Fatalf("readCaps = %+v, %v; want %+v", got, err, c)
	}
	two, _ := parseCaps([]string{"cap_net_bind_service", "cap_net_raw"})
	if err := writeCaps(p, two); err != nil {
		t.Fatal(err)
	}
	if got, _ := readCaps(p); got != two {
		t.Fatalf("after replace: %+v, want %+v", got, two)
	}
	if err := writeCaps(p, capSet{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := readCaps(p); !got.empty() {
		t.Fatalf("after removal: %+v", got)
	}
	// Removing what is not there is fine too.
	if err := writeCaps(p, capSet{}); err != nil {
		t.Fatal(err)
	}
}
