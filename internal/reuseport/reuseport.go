// Package reuseport steers the kernel's choice among the sockets of an
// SO_REUSEPORT group, so that a colour being brought up gets no connection
// before its health gate passes, and the old colour gets none once the new
// one has passed (its accept queue then empties before it stops).
//
// The kernel keeps a group's sockets in an array, appended in the order they
// listen; a classic BPF program attached to the group (SO_ATTACH_REUSEPORT_CBPF)
// returns the index of the socket that takes a new connection, and an index
// out of range falls back to the usual hash. So while only the old colour
// listens, its N sockets are indices 0..N-1, and the new colour's M sockets
// that join later are N..N+M-1. The program is attached through a duplicate
// of one member socket taken from the serving process with pidfd_getfd(2)
// (Linux 5.6+, root), and the duplicate is closed at once: holding it would
// keep a socket of a stopped colour in the group.
package reuseport

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Group identifies the listening sockets bound to one local address and
// port in one address family: what the kernel groups under SO_REUSEPORT
// (for one user, in one network namespace).
type Group struct {
	Family string // tcp or tcp6
	Addr   string // local address and port: 0.0.0.0:8080, [::]:8080
}

func (g Group) String() string { return g.Family + " " + g.Addr }

// Socket is one listening socket held open by a process.
type Socket struct {
	Group Group
	PID   int
	FD    int
	// MPTCP: a Multipath TCP socket (what Go 1.24+ listens with by
	// default); the kernel cannot steer those.
	MPTCP bool
	// Reuseport: bound with SO_REUSEPORT (true when it cannot be read).
	Reuseport bool
}

// procAddr turns /proc/net/tcp* notation (hex, each 32-bit word in host
// order, little-endian here) into address:port; "" when unparsable.
func procAddr(s string) string {
	hostHex, portHex, ok := strings.Cut(s, ":")
	port, perr := strconv.ParseUint(portHex, 16, 16)
	raw, herr := hex.DecodeString(hostHex)
	if !ok || perr != nil || herr != nil || (len(raw) != 4 && len(raw) != 16) {
		return ""
	}
	ip := make(net.IP, len(raw))
	for i := 0; i < len(raw); i += 4 {
		ip[i], ip[i+1], ip[i+2], ip[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	return net.JoinHostPort(ip.String(), strconv.FormatUint(port, 10))
}

// listenGroups parses /proc/net/tcp or tcp6 text: the group of every socket
// in state LISTEN (0A).
func listenGroups(family string, text string) []Group {
	var out []Group
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// sl local rem st ...
		if len(f) < 4 || f[3] != "0A" {
			continue
		}
		if a := procAddr(f[1]); a != "" {
			out = append(out, Group{Family: family, Addr: a})
		}
	}
	return out
}

// Proc reads processes and sockets from a /proc tree.
type Proc struct{ Root string }

// Listening returns the listening TCP sockets held by the given processes,
// sorted by group, PID and fd; a socket shared by several descriptors or
// processes counts once. Each candidate is looked at through a duplicate
// (pidfd_getfd) closed at once.
func (p Proc) Listening(pids []int) ([]Socket, error) {
	var out []Socket
	seen := map[string]bool{}
	for _, pid := range pids {
		// Under load a server holds many sockets, nearly all connections:
		// skip those known not to listen without a look.
		skip, err := p.notListening(pid)
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(p.Root, strconv.Itoa(pid), "fd")
		ents, err := os.ReadDir(dir)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // the process exited meanwhile
			}
			return nil, fmt.Errorf("reading the descriptors of process %d: %w", pid, err)
		}
		for _, e := range ents {
			target, err := os.Readlink(filepath.Join(dir, e.Name()))
			if err != nil || !strings.HasPrefix(target, "socket:[") || seen[target] || skip[target] {
				continue
			}
			fd, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			s := Socket{PID: pid, FD: fd}
			listening := false
			err = withSocket(s, func(dup int) error {
				var err error
				listening, s.Group, s.MPTCP, err = describe(dup)
				if listening {
					v, gerr := unix.GetsockoptInt(dup, unix.SOL_SOCKET, unix.SO_REUSEPORT)
					s.Reuseport = gerr != nil || v != 0
				}
				return err
			})
			if errors.Is(err, unix.EBADF) || errors.Is(err, unix.ESRCH) {
				continue // closed, or the process exited, since the listing
			}
			if err != nil {
				return nil, err
			}
			if listening {
				seen[target] = true
				out = append(out, s)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Group != b.Group {
			return a.Group.String() < b.Group.String()
		}
		if a.PID != b.PID {
			return a.PID < b.PID
		}
		return a.FD < b.FD
	})
	return out, nil
}

// notListening are sockets of pid's network namespace known not to listen
// on a TCP port, as /proc/PID/fd links name them ("socket:[INODE]"): unix
// sockets (the journal's stdout, D-Bus) and TCP connections. Whatever is
// left (listeners, and Multipath TCP sockets, which /proc/net/tcp* does not
// list under their own inode) is looked at one by one.
func (p Proc) notListening(pid int) (map[string]bool, error) {
	out := map[string]bool{}
	for _, f := range []struct {
		name  string
		inode int // field index
	}{{"unix", 6}, {"tcp", 9}, {"tcp6", 9}} {
		b, err := os.ReadFile(filepath.Join(p.Root, strconv.Itoa(pid), "net", f.name))
		if errors.Is(err, os.ErrNotExist) {
			continue // the process exited meanwhile, or no IPv6
		}
		if err != nil {
			return nil, fmt.Errorf("reading the sockets of process %d: %w", pid, err)
		}
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) <= f.inode || (f.name != "unix" && fields[3] == "0A") {
				continue
			}
			out["socket:["+fields[f.inode]+"]"] = true
		}
	}
	return out, nil
}

// describe tells whether fd is a listening TCP socket, and its group.
func describe(fd int) (listening bool, g Group, mptcp bool, err error) {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil || typ != unix.SOCK_STREAM {
		return false, g, false, nil // not a socket we steer (or gone)
	}
	acc, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	if err != nil || acc != 1 {
		return false, g, false, nil
	}
	proto, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return false, g, false, fmt.Errorf("getsockname: %w", err)
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		g = Group{Family: "tcp", Addr: net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))}
	case *unix.SockaddrInet6:
		g = Group{Family: "tcp6", Addr: net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))}
	default:
		return false, g, false, nil // a unix socket
	}
	return true, g, proto == unix.IPPROTO_MPTCP, nil
}

// ListenCount counts every listening socket of each group in the network
// namespace of process pid, whoever holds it.
func (p Proc) ListenCount(pid int) (map[Group]int, error) {
	out := map[Group]int{}
	for _, fam := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(filepath.Join(p.Root, strconv.Itoa(pid), "net", fam))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && fam == "tcp6" {
				continue
			}
			return nil, fmt.Errorf("reading the listening sockets: %w", err)
		}
		for _, g := range listenGroups(fam, string(b)) {
			out[g]++
		}
	}
	return out, nil
}

// CgroupPeers returns the processes in the same cgroup as pid (pid
// included): every process of a systemd service.
func (p Proc) CgroupPeers(pid int) ([]int, error) {
	want, err := os.ReadFile(filepath.Join(p.Root, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return nil, fmt.Errorf("reading the cgroup of process %d: %w", pid, err)
	}
	ents, err := os.ReadDir(p.Root)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(p.Root, e.Name(), "cgroup"))
		if err == nil && string(b) == string(want) {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out, nil
}

// ByGroup counts sockets per group and keeps the first of each.
func ByGroup(socks []Socket) (count map[Group]int, first map[Group]Socket) {
	count, first = map[Group]int{}, map[Group]Socket{}
	for _, s := range socks {
		if count[s.Group] == 0 {
			first[s.Group] = s
		}
		count[s.Group]++
	}
	return count, first
}

// ErrNotReuseport is returned when the socket was not bound with SO_REUSEPORT.
var ErrNotReuseport = errors.New("the socket is not in an SO_REUSEPORT group")

// ErrMPTCP is returned for a Multipath TCP listener: the kernel has no
// steering for those. Go 1.24+ listens with MPTCP by default; the
// environment variable GODEBUG=multipathtcp=0 turns that off.
var ErrMPTCP = errors.New("the socket is a Multipath TCP socket, which the kernel cannot steer (Go 1.24+ listens with MPTCP by default: GODEBUG=multipathtcp=0 turns that off)")

// Classic BPF ancillary data: the CPU handling the packet.
const (
	skfAdOff = 0xfffff000 // SKF_AD_OFF, -0x1000 as the uint32 the filter holds
	skfAdCPU = 36
	bpfRet   = 0x06
)

// program sends each new connection to one of the sockets at indices
// base..base+count-1, spread by the CPU that handles the SYN.
func program(base, count int) []unix.SockFilter {
	return []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: skfAdOff + skfAdCPU},
		{Code: unix.BPF_ALU | unix.BPF_MOD | unix.BPF_K, K: uint32(count)},
		{Code: unix.BPF_ALU | unix.BPF_ADD | unix.BPF_K, K: uint32(base)},
		{Code: bpfRet | unix.BPF_A},
	}
}

// withSocket runs f on a duplicate of the socket, closed afterwards.
func withSocket(s Socket, f func(fd int) error) error {
	pidfd, err := unix.PidfdOpen(s.PID, 0)
	if err != nil {
		return fmt.Errorf("pidfd_open of process %d: %w", s.PID, err)
	}
	defer unix.Close(pidfd)
	fd, err := unix.PidfdGetfd(pidfd, s.FD, 0)
	if err != nil {
		return fmt.Errorf("pidfd_getfd of descriptor %d of process %d: %w", s.FD, s.PID, err)
	}
	defer unix.Close(fd)
	return f(fd)
}

// Steer makes the group of s send new connections to the sockets at
// indices base..base+count-1.
func Steer(s Socket, base, count int) error {
	if count < 1 || base < 0 {
		return fmt.Errorf("steering %s: bad socket range %d+%d", s.Group, base, count)
	}
	return withSocket(s, func(fd int) error {
		prog := program(base, count)
		fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
		err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF, &fprog)
		if errors.Is(err, unix.EINVAL) {
			return ErrNotReuseport
		}
		if errors.Is(err, unix.EOPNOTSUPP) {
			return ErrMPTCP
		}
		if err != nil {
			return fmt.Errorf("attaching the steering program to %s: %w", s.Group, err)
		}
		return nil
	})
}

// Release removes the steering program of the group of s: the kernel
// spreads new connections by hash again. A group without one is fine.
func Release(s Socket) error {
	return withSocket(s, func(fd int) error {
		err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DETACH_REUSEPORT_BPF, 0)
		if err == nil || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINVAL) {
			return nil
		}
		return fmt.Errorf("detaching the steering program of %s: %w", s.Group, err)
	})
}
