// Command webapp is the demo service of chezlepro.sovereign's blue/green
// tests: a small HTTP server that says which version and colour it is, has a
// health endpoint, takes its listening socket from systemd or binds it
// itself (optionally with SO_REUSEPORT), tells systemd when it is ready, and
// drains on SIGTERM. Flags make it misbehave on purpose, so tests can see a
// health gate fail and a crash on start.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// version is set at build time: -ldflags "-X main.version=1.2.3".
var version = "dev"

type config struct {
	listen       string
	healthListen string
	reusePort    bool
	fdName       string
	colour       string
	broken       string
	grace        time.Duration
	readyDelay   time.Duration
	accessLog    bool
}

func parseFlags(args []string, getenv func(string) string) (config, error) {
	var c config
	fs := flag.NewFlagSet("webapp", flag.ContinueOnError)
	fs.StringVar(&c.listen, "listen", ":8080", "address to bind when systemd passes no socket")
	fs.StringVar(&c.healthListen, "health-listen", "", "extra address serving only /healthz (one per colour)")
	fs.BoolVar(&c.reusePort, "reuseport", false, "bind -listen with SO_REUSEPORT, so two instances share the port")
	fs.StringVar(&c.fdName, "fd-name", "http", "name of the systemd socket to serve (LISTEN_FDNAMES)")
	def := getenv("COLOUR")
	if def == "" {
		def = "none"
	}
	fs.StringVar(&c.colour, "colour", def, "colour this instance reports (default $COLOUR)")
	fs.StringVar(&c.broken, "broken", getenv("WEBAPP_BROKEN"), "misbehave on purpose: health (healthz answers 500) or start (exit 1 at start)")
	fs.DurationVar(&c.grace, "grace", 10*time.Second, "how long in-flight requests may take after SIGTERM")
	fs.DurationVar(&c.readyDelay, "ready-delay", 0, "wait this long before serving and reporting ready (a slow start)")
	fs.BoolVar(&c.accessLog, "access-log", false, "log every request")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch c.broken {
	case "", "health", "start":
	default:
		return c, fmt.Errorf("-broken %q: want health or start", c.broken)
	}
	return c, nil
}

func main() {
	logger := log.New(os.Stdout, "", 0)
	c, err := parseFlags(os.Args[1:], os.Getenv)
	if err != nil {
		logger.Printf("webapp: %v", err)
		os.Exit(2)
	}
	if err := run(c, logger); err != nil {
		logger.Printf("webapp colour=%s version=%s: %v", c.colour, version, err)
		os.Exit(1)
	}
}

type app struct {
	c        config
	log      *log.Logger
	draining atomic.Bool
	served   atomic.Int64
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", a.healthz)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a.served.Add(1)
		if a.c.accessLog {
			a.log.Printf("%s %s %s", r.RemoteAddr, r.Method, r.URL.Path)
		}
		// ?delay=300ms makes a slow request, to watch a drain finish it.
		if d, err := time.ParseDuration(r.URL.Query().Get("delay")); err == nil && d > 0 && d <= 30*time.Second {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "version=%s colour=%s pid=%d\n", version, a.c.colour, os.Getpid())
	})
	return mux
}

func (a *app) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	switch {
	case a.c.broken == "health":
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, "broken on purpose version=%s colour=%s\n", version, a.c.colour)
	case a.draining.Load():
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "draining version=%s colour=%s\n", version, a.c.colour)
	default:
		fmt.Fprintf(w, "ok version=%s colour=%s\n", version, a.c.colour)
	}
}

func healthOnly(a *app) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", a.healthz)
	return mux
}

func run(c config, logger *log.Logger) error {
	a := &app{c: c, log: logger}
	prefix := fmt.Sprintf("webapp colour=%s version=%s pid=%d", c.colour, version, os.Getpid())
	if c.broken == "start" {
		return errors.New("exiting at start on purpose (-broken start)")
	}
	if c.readyDelay > 0 {
		logger.Printf("%s: starting slowly (%s)", prefix, c.readyDelay)
		time.Sleep(c.readyDelay)
	}

	ln, how, err := listener(c)
	if err != nil {
		return err
	}
	var conns connCounter
	web := newServer(a.routes())
	web.ConnState = conns.hook
	mainDone := make(chan struct{})
	errs := make(chan error, 2)
	go func() {
		defer close(mainDone)
		if err := web.Serve(ln); err != nil && !a.draining.Load() {
			errs <- err
		}
	}()
	var health *http.Server
	if c.healthListen != "" {
		hl, err := net.Listen("tcp", c.healthListen)
		if err != nil {
			return fmt.Errorf("health listener: %w", err)
		}
		health = newServer(healthOnly(a))
		go func() {
			if err := health.Serve(hl); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- err
			}
		}()
	}
	logger.Printf("%s: serving on %s (%s)%s", prefix, ln.Addr(), how, healthNote(c))
	if err := sdNotify("READY=1\nSTATUS=serving " + how); err != nil {
		logger.Printf("%s: sd_notify: %v", prefix, err)
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case s := <-sig:
		logger.Printf("%s: %s: draining, in-flight requests have %s", prefix, s, c.grace)
	case err := <-errs:
		return err
	}
	_ = sdNotify("STOPPING=1")
	ctx, cancel := context.WithTimeout(context.Background(), c.grace)
	defer cancel()
	open := drain(ctx, a, web, ln, mainDone, &conns)
	logger.Printf("%s: stopped accepting; %d connections still open were served", prefix, open)
	var firstErr error
	for _, s := range []*http.Server{web, health} {
		if s == nil {
			continue
		}
		if err := s.Shutdown(ctx); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	logger.Printf("%s: stopped after serving %d requests", prefix, a.served.Load())
	if firstErr != nil {
		return fmt.Errorf("drain: %w", firstErr)
	}
	return nil
}

// drain stops accepting and lets every connection already accepted be
// answered, then returns how many were open when accepting stopped.
//
// http.Server.Shutdown alone loses requests: a connection accepted just
// before it whose request is read just after is closed without an answer
// (net/http checks shuttingDown() after reading a request). So, in order:
// close our listener (a socket from systemd stays open in systemd and in the
// other colour, and connections not yet accepted wait in its queue for them;
// with SO_REUSEPORT and net.ipv4.tcp_migrate_req=1 the kernel hands our
// queue to the other colour); wait for Serve to return, so every accepted
// connection is counted; turn keep-alives off, which closes idle connections
// and makes each busy one close after its current response; then wait for
// the count to reach zero (bounded by ctx). Shutdown then finds nothing left.
func drain(ctx context.Context, a *app, srv *http.Server, ln net.Listener, served <-chan struct{}, conns *connCounter) int64 {
	a.draining.Store(true)
	ln.Close()
	select {
	case <-served:
	case <-ctx.Done():
	}
	open := conns.open.Load()
	srv.SetKeepAlivesEnabled(false)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for conns.open.Load() > 0 {
		select {
		case <-ctx.Done():
			return open
		case <-tick.C:
		}
	}
	return open
}

// connCounter counts a server's open connections through its ConnState hook.
type connCounter struct{ open atomic.Int64 }

func (c *connCounter) hook(_ net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		c.open.Add(1)
	case http.StateClosed, http.StateHijacked:
		c.open.Add(-1)
	}
}

func healthNote(c config) string {
	if c.healthListen == "" {
		return ""
	}
	return ", health on " + c.healthListen
}

func newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
}

// listener takes the socket systemd passed, else binds c.listen.
func listener(c config) (net.Listener, string, error) {
	fds, err := listenFDs(os.Getenv, os.Getpid())
	if err != nil {
		return nil, "", err
	}
	for _, v := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		os.Unsetenv(v)
	}
	if len(fds) > 0 {
		pick := fds[0]
		for _, f := range fds {
			if f.name == c.fdName {
				pick = f
			}
		}
		for _, f := range fds {
			syscall.CloseOnExec(f.fd)
		}
		file := os.NewFile(uintptr(pick.fd), pick.name)
		ln, err := net.FileListener(file)
		file.Close() // FileListener holds its own duplicate
		if err != nil {
			return nil, "", fmt.Errorf("socket from systemd (fd %d %q): %w", pick.fd, pick.name, err)
		}
		return ln, fmt.Sprintf("socket activation, fd %d %q", pick.fd, pick.name), nil
	}
	if c.reusePort {
		ln, err := listenReusePort(c.listen)
		return ln, "bound with SO_REUSEPORT", err
	}
	ln, err := net.Listen("tcp", c.listen)
	return ln, "bound", err
}

type passedFD struct {
	fd   int
	name string
}

// listenFDs implements sd_listen_fds(3) by hand: LISTEN_PID must be us,
// LISTEN_FDS counts descriptors from 3, LISTEN_FDNAMES names them.
func listenFDs(getenv func(string) string, pid int) ([]passedFD, error) {
	p, n := getenv("LISTEN_PID"), getenv("LISTEN_FDS")
	if p == "" || n == "" {
		return nil, nil
	}
	var lpid, count int
	if _, err := fmt.Sscanf(p, "%d", &lpid); err != nil {
		return nil, fmt.Errorf("LISTEN_PID %q: %w", p, err)
	}
	if lpid != pid {
		return nil, nil // meant for another process
	}
	if _, err := fmt.Sscanf(n, "%d", &count); err != nil || count < 0 || count > 1024 {
		return nil, fmt.Errorf("LISTEN_FDS %q is not a count", n)
	}
	var names []string
	if v := getenv("LISTEN_FDNAMES"); v != "" {
		names = strings.Split(v, ":")
	}
	out := make([]passedFD, count)
	for i := range out {
		out[i] = passedFD{fd: 3 + i, name: "unknown"}
		if i < len(names) {
			out[i].name = names[i]
		}
	}
	return out, nil
}

// sdNotify implements sd_notify(3) by hand: one datagram to NOTIFY_SOCKET
// (a path, or an abstract name starting with '@'). Without NOTIFY_SOCKET it
// does nothing.
func sdNotify(state string) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	if addr[0] == '@' {
		addr = "\x00" + addr[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(state))
	return err
}
