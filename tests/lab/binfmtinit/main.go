// Command binfmtinit is the first process of an arm64 lab host (or of a step
// of its rootfs build): it registers qemu-user as the arm64 ELF handler in
// binfmt_misc, then execs the real command (the arm64 systemd) in its place.
//
// Why a program of its own: since Linux 6.7 a user namespace that mounts
// binfmt_misc gets an instance of its own, which only its processes see. The
// lab runs arm64 hosts in a user namespace (nspawn --private-users=identity)
// and registers the handler there, from inside, before anything arm64 runs;
// a handler in the machine's own binfmt_misc would make every amd64 lab on
// the machine run arm64 binaries too (the dispatch e2e relies on its amd64
// hosts refusing them). It is a static amd64 binary, as nothing arm64 can
// run before the handler exists. The F flag opens the interpreter now, so
// it need not stay reachable in the host's file tree afterwards.
//
//	binfmtinit QEMU_PATH COMMAND [ARG...]
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// The ELF header of an arm64 (EM_AARCH64) executable or shared object, and
// the bytes that must match: Debian's qemu-user-static registers the same.
const (
	aarch64Magic = `\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00`
	aarch64Mask  = `\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff`
)

// registerLine is what binfmt_misc's register file takes for the arm64
// handler. Flags: P keeps argv[0] (Debian's qemu knows it from the
// "-binfmt-P" suffix of its name), O hands qemu the open binary, F opens
// qemu at registration.
func registerLine(qemu string) (string, error) {
	if !filepath.IsAbs(qemu) || strings.ContainsAny(qemu, ":\n") {
		return "", fmt.Errorf("qemu path %q: want an absolute path with no ':' or newline", qemu)
	}
	if !strings.HasSuffix(qemu, "-binfmt-P") {
		return "", fmt.Errorf("qemu path %q: its name must end in -binfmt-P, which tells Debian's qemu that argv[0] is kept", qemu)
	}
	return fmt.Sprintf(":qemu-aarch64:M::%s:%s:%s:POF", aarch64Magic, aarch64Mask, qemu), nil
}

// binfmtMount is where the host's own binfmt_misc is usually seen. The
// instance lives as long as it is mounted, so it stays mounted there (inside
// the host, systemd's binfmt_misc automount is off in containers).
const binfmtMount = "/proc/sys/fs/binfmt_misc"

func register(qemu string) error {
	line, err := registerLine(qemu)
	if err != nil {
		return err
	}
	if err := syscall.Mount("binfmt_misc", binfmtMount, "binfmt_misc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount binfmt_misc on %s in this user namespace (Linux 6.7 or later can): %w", binfmtMount, err)
	}
	if err := os.WriteFile(filepath.Join(binfmtMount, "register"), []byte(line), 0); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("register qemu-aarch64 in binfmt_misc: %w", err)
	}
	return nil
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: binfmtinit QEMU_PATH COMMAND [ARG...]")
		os.Exit(2)
	}
	if err := register(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "binfmtinit:", err)
		os.Exit(1)
	}
	err := syscall.Exec(os.Args[2], os.Args[2:], os.Environ())
	fmt.Fprintf(os.Stderr, "binfmtinit: exec %s: %v\n", os.Args[2], err)
	os.Exit(1)
}
