package reuseport

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// listener is a real TCP listener of this process, counting what it accepts.
type listener struct {
	ln    net.Listener
	sock  Socket
	mu    sync.Mutex
	count int
}

func listen(t *testing.T, addr string, reuse bool) *listener {
	return listenMPTCP(t, addr, reuse, false)
}

func listenMPTCP(t *testing.T, addr string, reuse, mptcp bool) *listener {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if reuse {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	lc.SetMultipathTCP(mptcp)
	ln, err := lc.Listen(context.Background(), "tcp4", addr)
	require.NoError(t, err)
	l := &listener{ln: ln}
	rc, err := ln.(*net.TCPListener).SyscallConn()
	require.NoError(t, err)
	require.NoError(t, rc.Control(func(fd uintptr) {
		l.sock = Socket{Group: Group{Family: "tcp", Addr: ln.Addr().String()}, PID: os.Getpid(), FD: int(fd)}
	}))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.mu.Lock()
			l.count++
			l.mu.Unlock()
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close() })
	return l
}

func (l *listener) take() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.count
	l.count = 0
	return n
}

// dial opens n connections and waits until the listeners accepted them all;
// it returns how many each got.
func dial(t *testing.T, addr string, n int, ls ...*listener) []int {
	t.Helper()
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp4", addr)
		require.NoError(t, err)
		_ = c.Close()
	}
	got := make([]int, len(ls))
	deadline := time.Now().Add(5 * time.Second)
	for {
		total := 0
		for i, l := range ls {
			got[i] += l.take()
			total += got[i]
		}
		if total >= n || time.Now().After(deadline) {
			require.Equal(t, n, total, "connections accepted")
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSteerOnRealSockets(t *testing.T) {
	old := listen(t, "127.0.0.1:0", true)
	addr := old.ln.Addr().String()

	// Before the new one listens: hold new connections on index 0.
	require.NoError(t, Steer(old.sock, 0, 1))
	neu := listen(t, addr, true)
	assert.Equal(t, []int{40, 0}, dial(t, addr, 40, old, neu), "held on the old socket while the new one listens")

	// Move: the new socket is index 1.
	require.NoError(t, Steer(neu.sock, 1, 1))
	assert.Equal(t, []int{0, 40}, dial(t, addr, 40, old, neu), "moved to the new socket")

	// Released: the kernel's hash spreads them again.
	require.NoError(t, Release(neu.sock))
	spread := dial(t, addr, 64, old, neu)
	assert.Positive(t, spread[0], "hash spreading after release: %v", spread)
	assert.Positive(t, spread[1], "hash spreading after release: %v", spread)
	require.NoError(t, Release(neu.sock), "releasing twice is fine")

	// An index out of range falls back to the hash: steered to index 1,
	// then the old socket closes and the new one moves to index 0.
	require.NoError(t, Steer(neu.sock, 1, 1))
	require.NoError(t, old.ln.Close())
	assert.Equal(t, []int{40}, dial(t, addr, 40, neu), "out of range after the old socket closed: all to the survivor")
}

func TestSteerSpreadsOverSeveralSockets(t *testing.T) {
	a := listen(t, "127.0.0.1:0", true)
	addr := a.ln.Addr().String()
	b := listen(t, addr, true)
	require.NoError(t, Steer(a.sock, 0, 2))
	c := listen(t, addr, true)
	got := dial(t, addr, 30, a, b, c)
	assert.Zero(t, got[2], "the third socket is outside 0..1: %v", got)
}

func TestSteerRefusesASocketWithoutReuseport(t *testing.T) {
	l := listen(t, "127.0.0.1:0", false)
	assert.ErrorIs(t, Steer(l.sock, 0, 1), ErrNotReuseport)
	assert.ErrorContains(t, Steer(l.sock, 0, 0), "bad socket range")
}

func TestSteerNamesAProcessThatIsGone(t *testing.T) {
	err := Steer(Socket{PID: 1 << 22, FD: 3, Group: Group{Family: "tcp", Addr: "0100007F:1F90"}}, 0, 1)
	assert.ErrorContains(t, err, "pidfd_open of process 4194304")
}

func TestSteerRefusesMultipathTCP(t *testing.T) {
	l := listenMPTCP(t, "127.0.0.1:0", true, true)
	plain := listenMPTCP(t, "127.0.0.1:0", false, true)
	socks, err := Proc{Root: "/proc"}.Listening([]int{os.Getpid()})
	require.NoError(t, err)
	i, j := indexOf(socks, l.sock.FD), indexOf(socks, plain.sock.FD)
	require.True(t, i >= 0 && j >= 0, "listeners %d and %d in %v", l.sock.FD, plain.sock.FD, socks)
	if !socks[i].MPTCP {
		t.Skip("this kernel has no Multipath TCP: Go fell back to TCP")
	}
	assert.ErrorIs(t, Steer(socks[i], 0, 1), ErrMPTCP)
	assert.True(t, socks[i].Reuseport, "SO_REUSEPORT read back from an MPTCP socket")
	assert.False(t, socks[j].Reuseport, "an MPTCP socket without SO_REUSEPORT (a colour's own health port, say)")
}

func TestListeningFindsTheProcessSockets(t *testing.T) {
	a := listen(t, "127.0.0.1:0", true)
	b := listen(t, a.ln.Addr().String(), true)
	other := listen(t, "127.0.0.1:0", false)
	conn, err := net.Dial("tcp4", other.ln.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	ul, err := net.Listen("unix", filepath.Join(t.TempDir(), "sock"))
	require.NoError(t, err)
	defer ul.Close()
	socks, err := Proc{Root: "/proc"}.Listening([]int{os.Getpid()})
	require.NoError(t, err)
	count, first := ByGroup(socks)
	g := Group{Family: "tcp", Addr: a.ln.Addr().String()}
	assert.Equal(t, 2, count[g], "two listeners on %s in %v", g, socks)
	assert.Equal(t, a.sock.FD, first[g].FD)
	assert.Equal(t, b.sock.FD, socks[indexOf(socks, b.sock.FD)].FD)
	assert.Equal(t, 1, count[Group{Family: "tcp", Addr: other.ln.Addr().String()}])
	assert.True(t, socks[indexOf(socks, a.sock.FD)].Reuseport)
	assert.False(t, socks[indexOf(socks, other.sock.FD)].Reuseport)
	for _, s := range socks {
		assert.NotEqual(t, conn.LocalAddr().String(), s.Group.Addr, "a connected socket is not listening")
		assert.Contains(t, []string{"tcp", "tcp6"}, s.Group.Family, "no unix socket: %v", s)
	}
	all, err := Proc{Root: "/proc"}.ListenCount(os.Getpid())
	require.NoError(t, err)
	assert.Equal(t, 2, all[g], "/proc/net/tcp sees both")
}

func indexOf(socks []Socket, fd int) int {
	for i, s := range socks {
		if s.FD == fd {
			return i
		}
	}
	return -1
}

func TestListenGroupsParsesProcNetTCP(t *testing.T) {
	tcp := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0016 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 99 1 0000000000000000 100 0 0 10 0
   2: zz:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5 1 0000000000000000 100 0 0 10 0
`
	assert.Equal(t, []Group{{Family: "tcp", Addr: "0.0.0.0:8080"}}, listenGroups("tcp", tcp), "only parsable LISTEN sockets")
	assert.Equal(t, "127.0.0.1:22", procAddr("0100007F:0016"))
	assert.Equal(t, "[::]:443", procAddr("00000000000000000000000000000000:01BB"))
	assert.Equal(t, "[::1]:443", procAddr("00000000000000000000000001000000:01BB"))
	assert.Equal(t, "", procAddr("0100007F"))
}

func TestCgroupPeersOnAFakeProc(t *testing.T) {
	root := t.TempDir()
	mk := func(pid int, cg string) {
		d := filepath.Join(root, fmt.Sprint(pid))
		require.NoError(t, os.MkdirAll(d, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(d, "cgroup"), []byte(cg), 0o644))
	}
	mk(10, "0::/system.slice/web-blue.service\n")
	mk(11, "0::/system.slice/web-blue.service\n")
	mk(20, "0::/system.slice/web-green.service\n")
	require.NoError(t, os.MkdirAll(filepath.Join(root, "self"), 0o755))
	p := Proc{Root: root}
	peers, err := p.CgroupPeers(10)
	require.NoError(t, err)
	assert.Equal(t, []int{10, 11}, peers)
	_, err = p.CgroupPeers(99)
	assert.ErrorContains(t, err, "reading the cgroup of process 99")
}
