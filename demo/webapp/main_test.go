package main

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the webapp: with WEBAPP_TEST_MAIN=1 it runs
// main, so the tests exercise the real process (signals, inherited fds)
// without building anything.
func TestMain(m *testing.M) {
	if os.Getenv("WEBAPP_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestListenFDs(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []passedFD
		err  bool
	}{
		{"none", map[string]string{}, nil, false},
		{"for another pid", map[string]string{"LISTEN_PID": "99", "LISTEN_FDS": "1"}, nil, false},
		{"two named", map[string]string{"LISTEN_PID": "42", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "http:admin"},
			[]passedFD{{3, "http"}, {4, "admin"}}, false},
		{"unnamed", map[string]string{"LISTEN_PID": "42", "LISTEN_FDS": "1"}, []passedFD{{3, "unknown"}}, false},
		{"bad count", map[string]string{"LISTEN_PID": "42", "LISTEN_FDS": "x"}, nil, true},
		{"bad pid", map[string]string{"LISTEN_PID": "x", "LISTEN_FDS": "1"}, nil, true},
	} {
		got, err := listenFDs(env(tc.env), 42)
		if (err != nil) != tc.err || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %v, %v", tc.name, got, err)
		}
	}
}

func TestFlags(t *testing.T) {
	c, err := parseFlags([]string{"-reuseport", "-listen", ":9"}, func(k string) string { return map[string]string{"COLOUR": "green"}[k] })
	if err != nil || c.colour != "green" || !c.reusePort || c.listen != ":9" || c.grace != 10*time.Second {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err := parseFlags([]string{"-broken", "sometimes"}, func(string) string { return "" }); err == nil {
		t.Fatal("an unknown -broken mode must be refused")
	}
}

func TestHealthz(t *testing.T) {
	for _, tc := range []struct {
		broken   string
		draining bool
		status   int
		body     string
	}{
		{"", false, 200, "ok version=dev colour=blue"},
		{"health", false, 500, "broken on purpose"},
		{"", true, 503, "draining"},
	} {
		a := &app{c: config{colour: "blue", broken: tc.broken}, log: log.New(io.Discard, "", 0)}
		a.draining.Store(tc.draining)
		rec := httptest.NewRecorder()
		a.routes().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.body) {
			t.Errorf("broken=%q draining=%v: %d %q", tc.broken, tc.draining, rec.Code, rec.Body.String())
		}
	}
	a := &app{c: config{colour: "green"}, log: log.New(io.Discard, "", 0)}
	rec := httptest.NewRecorder()
	a.routes().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if !strings.HasPrefix(rec.Body.String(), "version=dev colour=green pid=") {
		t.Fatal(rec.Body.String())
	}
}

func TestSdNotify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	if err := sdNotify("READY=1"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := conn.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("%q %v", buf[:n], err)
	}
	t.Setenv("NOTIFY_SOCKET", "")
	if err := sdNotify("READY=1"); err != nil {
		t.Fatal("without NOTIFY_SOCKET sd_notify must do nothing")
	}
}

// child runs the webapp as a process; with ln it inherits ln's socket as
// fd 3, announced the way systemd does.
type child struct {
	cmd   *exec.Cmd
	lines chan string
}

func startChild(t *testing.T, ln *net.TCPListener, args ...string) *child {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	script := `exec "$0" "$@"`
	if ln != nil {
		// LISTEN_PID must be the webapp's pid: the shell's, kept by exec.
		script = `LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=http exec "$0" "$@"`
	}
	cmd := exec.Command("/bin/sh", append([]string{"-c", script, self}, args...)...)
	cmd.Env = append(os.Environ(), "WEBAPP_TEST_MAIN=1")
	if ln != nil {
		f, err := ln.File()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd.ExtraFiles = []*os.File{f}
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, lines: make(chan string, 1000)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return c
}

// waitLine returns the first output line containing s.
func (c *child) waitLine(t *testing.T, s string) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				t.Fatalf("output ended before %q", s)
			}
			if strings.Contains(l, s) {
				return l
			}
		case <-deadline:
			t.Fatalf("no %q in the output", s)
		}
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestSocketActivationHandover(t *testing.T) {
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() // the test plays systemd: it keeps the socket open
	url := "http://" + ln.Addr().String()

	blue := startChild(t, ln, "-colour", "blue", "-grace", "5s")
	if l := blue.waitLine(t, "serving on"); !strings.Contains(l, `socket activation, fd 3 "http"`) {
		t.Fatalf("blue did not take the passed socket: %s", l)
	}
	if code, body := get(t, url); code != 200 || !strings.Contains(body, "colour=blue") {
		t.Fatalf("%d %s", code, body)
	}

	// A slow request in flight when SIGTERM arrives must complete.
	slow := make(chan string, 1)
	go func() {
		_, body := get(t, url+"/?delay=700ms")
		slow <- body
	}()
	time.Sleep(200 * time.Millisecond)
	blue.cmd.Process.Signal(syscall.SIGTERM)
	if body := <-slow; !strings.Contains(body, "colour=blue") {
		t.Fatalf("in-flight request lost during the drain: %q", body)
	}
	if err := blue.cmd.Wait(); err != nil {
		t.Fatalf("blue exited with %v after a drain", err)
	}

	// No process serves now, but the socket is open: a connection made now
	// waits in the queue and is answered by the next colour.
	queued := make(chan string, 1)
	go func() {
		_, body := get(t, url)
		queued <- body
	}()
	time.Sleep(300 * time.Millisecond)
	green := startChild(t, ln, "-colour", "green")
	green.waitLine(t, "serving on")
	select {
	case body := <-queued:
		if !strings.Contains(body, "colour=green") {
			t.Fatalf("queued request answered by %q", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the queued connection was never served")
	}
}

func TestReusePortAndBrokenStart(t *testing.T) {
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.Addr().String()
	probe.Close()
	blue := startChild(t, nil, "-reuseport", "-listen", addr, "-colour", "blue")
	if l := blue.waitLine(t, "serving on"); !strings.Contains(l, "SO_REUSEPORT") {
		t.Fatal(l)
	}
	green := startChild(t, nil, "-reuseport", "-listen", addr, "-colour", "green")
	green.waitLine(t, "serving on")
	seen := map[string]bool{}
	for i := 0; i < 200 && len(seen) < 2; i++ {
		_, body := get(t, "http://"+addr)
		seen[strings.Fields(body)[1]] = true
	}
	if !seen["colour=blue"] || !seen["colour=green"] {
		t.Fatalf("both instances must share the port: %v", seen)
	}

	broken := startChild(t, nil, "-broken", "start", "-colour", "red")
	line := broken.waitLine(t, "on purpose")
	for range broken.lines {
	}
	err = broken.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("-broken start: %v (%s)", err, line)
	}
}

// Handover under load, as a flip does it: green starts on the shared socket,
// then blue gets SIGTERM, three times over, while clients open a new
// connection per request. No request may fail: a connection blue accepted
// just before SIGTERM must still be answered.
func TestHandoverUnderLoadLosesNothing(t *testing.T) {
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()

	stop := make(chan struct{})
	var requests, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			for {
				select {
				case <-stop:
					return
				default:
				}
				requests.Add(1)
				resp, err := client.Get("http://" + addr + "/")
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	colours := []string{"blue", "green"}
	cur := startChild(t, ln, "-colour", colours[0])
	cur.waitLine(t, "serving on")
	for i := 1; i <= 3; i++ {
		time.Sleep(300 * time.Millisecond)
		next := startChild(t, ln, "-colour", colours[i%2])
		next.waitLine(t, "serving on")
		cur.cmd.Process.Signal(syscall.SIGTERM)
		cur.waitLine(t, "stopped after serving")
		cur.cmd.Wait()
		cur = next
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || requests.Load() < 100 {
		t.Fatalf("%d of %d requests failed during 3 handovers; first: %v", failed.Load(), requests.Load(), firstErr.Load())
	}
	t.Logf("%d requests, none failed, across 3 handovers", requests.Load())
}
