package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// Linux file capabilities live in the security.capability extended
// attribute as a struct vfs_cap_data (include/uapi/linux/capability.h),
// little-endian. Writing it directly needs CAP_SETFCAP but no libcap tools.
const (
	capXattr = "security.capability"

	vfsCapRevisionMask   = 0xFF000000
	vfsCapRevision1      = 0x01000000 // 32-bit sets, 12 bytes
	vfsCapRevision2      = 0x02000000 // 64-bit sets, 20 bytes
	vfsCapRevision3      = 0x03000000 // revision 2 plus the namespace root uid, 24 bytes
	vfsCapFlagsEffective = 0x000001
)

// capNames maps capability numbers to names (linux/capability.h, up to
// CAP_CHECKPOINT_RESTORE, Linux 5.9).
var capNames = []string{
	"chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid",
	"setpcap", "linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw",
	"ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct",
	"sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time", "sys_tty_config", "mknod",
	"lease", "audit_write", "audit_control", "setfcap", "mac_override", "mac_admin", "syslog",
	"wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
}

// capSet is a file capability set: the permitted bits, which this module
// always marks effective as well (setcap's "+ep"), and the inheritable bits
// (only ever read, to report what is on a file).
type capSet struct {
	Permitted   uint64
	Inheritable uint64
	Effective   bool
}

func (c capSet) empty() bool { return c.Permitted == 0 && c.Inheritable == 0 && !c.Effective }

// String renders the set the way getcap(8) does, e.g. "cap_net_bind_service=ep".
func (c capSet) String() string {
	if c.empty() {
		return "none"
	}
	var names []string
	for i := range 64 {
		if (c.Permitted|c.Inheritable)&(1<<i) != 0 {
			names = append(names, capName(i))
		}
	}
	flags := ""
	if c.Effective {
		flags += "e"
	}
	if c.Inheritable != 0 {
		flags += "i"
	}
	if c.Permitted != 0 {
		flags += "p"
	}
	return strings.Join(names, ",") + "=" + flags
}

func capName(i int) string {
	if i < len(capNames) {
		return "cap_" + capNames[i]
	}
	return fmt.Sprintf("cap_%d", i)
}

// parseCaps turns ["cap_net_bind_service", ...] into a permitted+effective
// set. Names are case-insensitive, "cap_" is optional, and setcap's "+ep" or
// "=ep" suffix is accepted (no other flags: this module grants +ep only).
func parseCaps(names []string) (capSet, error) {
	var c capSet
	for _, raw := range names {
		n := strings.ToLower(strings.TrimSpace(raw))
		if base, flags, ok := strings.Cut(n, "+"); ok {
			n = base
			if flags != "ep" && flags != "pe" {
				return capSet{}, fmt.Errorf("capability %q: only +ep (permitted and effective) is supported", raw)
			}
		} else if base, flags, ok := strings.Cut(n, "="); ok {
			n = base
			if flags != "ep" && flags != "pe" {
				return capSet{}, fmt.Errorf("capability %q: only =ep (permitted and effective) is supported", raw)
			}
		}
		n = strings.TrimPrefix(n, "cap_")
		idx := -1
		for i, known := range capNames {
			if known == n {
				idx = i
				break
			}
		}
		if idx < 0 {
			return capSet{}, fmt.Errorf("unknown capability %q (want a name such as cap_net_bind_service)", raw)
		}
		c.Permitted |= 1 << idx
	}
	c.Effective = c.Permitted != 0
	return c, nil
}

// encode returns the VFS_CAP_REVISION_2 attribute value.
func (c capSet) encode() []byte {
	b := make([]byte, 20)
	magic := uint32(vfsCapRevision2)
	if c.Effective {
		magic |= vfsCapFlagsEffective
	}
	binary.LittleEndian.PutUint32(b[0:], magic)
	binary.LittleEndian.PutUint32(b[4:], uint32(c.Permitted))
	binary.LittleEndian.PutUint32(b[8:], uint32(c.Inheritable))
	binary.LittleEndian.PutUint32(b[12:], uint32(c.Permitted>>32))
	binary.LittleEndian.PutUint32(b[16:], uint32(c.Inheritable>>32))
	return b
}

// decodeCaps reads any revision of the attribute (the kernel may hand back
// revision 3 inside a user namespace).
func decodeCaps(b []byte) (capSet, error) {
	if len(b) < 4 {
		return capSet{}, fmt.Errorf("%s attribute of %d bytes is too short", capXattr, len(b))
	}
	magic := binary.LittleEndian.Uint32(b)
	var c capSet
	c.Effective = magic&vfsCapFlagsEffective != 0
	switch rev := magic & vfsCapRevisionMask; {
	case rev == vfsCapRevision1 && len(b) == 12:
		c.Permitted = uint64(binary.LittleEndian.Uint32(b[4:]))
		c.Inheritable = uint64(binary.LittleEndian.Uint32(b[8:]))
	case rev == vfsCapRevision2 && len(b) == 20, rev == vfsCapRevision3 && len(b) == 24:
		c.Permitted = uint64(binary.LittleEndian.Uint32(b[4:])) | uint64(binary.LittleEndian.Uint32(b[12:]))<<32
		c.Inheritable = uint64(binary.LittleEndian.Uint32(b[8:])) | uint64(binary.LittleEndian.Uint32(b[16:]))<<32
	default:
		return capSet{}, fmt.Errorf("%s attribute: unknown revision %#x with %d bytes", capXattr, rev, len(b))
	}
	return c, nil
}

// readCaps returns the capabilities set on path (empty when none).
func readCaps(path string) (capSet, error) {
	buf := make([]byte, 64)
	n, err := syscall.Getxattr(path, capXattr, buf)
	switch {
	case errors.Is(err, syscall.ENODATA), errors.Is(err, syscall.ENOTSUP):
		return capSet{}, nil
	case err != nil:
		return capSet{}, fmt.Errorf("read %s of %s: %w", capXattr, path, err)
	}
	c, err := decodeCaps(buf[:n])
	if err != nil {
		return capSet{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// writeCaps makes the capabilities of path exactly c (removing the
// attribute when c is empty) and reads them back.
func writeCaps(path string, c capSet) error {
	if c.empty() {
		err := syscall.Removexattr(path, capXattr)
		if err != nil && !errors.Is(err, syscall.ENODATA) && !errors.Is(err, syscall.ENOTSUP) {
			return fmt.Errorf("remove capabilities of %s: %w", path, err)
		}
	} else if err := syscall.Setxattr(path, capXattr, c.encode(), 0); err != nil {
		hint := ""
		switch {
		case errors.Is(err, syscall.EPERM):
			hint = " (setting file capabilities needs CAP_SETFCAP: run as root)"
		case errors.Is(err, syscall.ENOTSUP):
			hint = " (this filesystem does not support security extended attributes)"
		}
		return fmt.Errorf("set capabilities %s on %s: %w%s", c, path, err, hint)
	}
	got, err := readCaps(path)
	if err != nil {
		return err
	}
	if got.Permitted != c.Permitted || got.Effective != c.Effective || got.Inheritable != c.Inheritable {
		return fmt.Errorf("capabilities of %s read back as %s, want %s", path, got, c)
	}
	return nil
}
