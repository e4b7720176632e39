// Command bgload is the load generator of the bluegreen_unit benchmark. It
// runs two kinds of HTTP/1.1 clients against one address until SIGTERM (or
// -duration), then prints one JSON summary:
//
//   - newconn: a new TCP connection per request (Connection: close);
//   - keepalive: one kept-alive connection per worker; a GET that fails on a
//     reused connection before any byte of the response arrived (the server
//     closed it while idle) is retried once on a new connection, as common
//     HTTP clients do for idempotent requests;
//   - noretry (-noretry N, none by default): the same kept-alive client
//     without that retry, as a client that does not retry (or a request that
//     is not idempotent) sees it. Its requests and failures are counted on
//     their own keys, never in requests and failed.
//
// A request counts as failed when it (and its one retry) did not end with a
// 200 response. Failures are classified and the first ones kept with their
// time, so they can be lined up with the flips.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type failure struct {
	AtMS   int64  `json:"at_ms"`
	Client string `json:"client"`
	Class  string `json:"class"`
	Error  string `json:"error"`
}

type summary struct {
	Addr        string           `json:"addr"`
	DurationMS  int64            `json:"duration_ms"`
	StartUnixMS int64            `json:"start_unix_ms"`
	Requests    int64            `json:"requests"`
	Failed      int64            `json:"failed"`
	NewConn     clientStats      `json:"newconn"`
	KeepAlive   clientStats      `json:"keepalive"`
	NoRetry     clientStats      `json:"noretry"`
	Retries     int64            `json:"keepalive_retries"`
	RetriedOK   int64            `json:"keepalive_retries_ok"`
	Classes     map[string]int64 `json:"failure_classes"`
	NoRetryCls  map[string]int64 `json:"noretry_failure_classes"`
	Failures    []failure        `json:"first_failures"`
	RPS         float64          `json:"rps"`
}

type clientStats struct {
	Requests int64 `json:"requests"`
	Failed   int64 `json:"failed"`
}

type recorder struct {
	start     time.Time
	mu        sync.Mutex
	classes   map[string]int64
	noretry   map[string]int64 // the noretry client's classes, apart
	failures  []failure
	keep      int
	retries   atomic.Int64
	retriedOK atomic.Int64
}

func (r *recorder) fail(client string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := classify(err)
	if client == "noretry" {
		r.noretry[c]++
	} else {
		r.classes[c]++
	}
	if len(r.failures) < r.keep {
		r.failures = append(r.failures, failure{AtMS: time.Since(r.start).Milliseconds(), Client: client, Class: c, Error: err.Error()})
	}
}

// classify names a failure the way the benchmark reports it.
func classify(err error) string {
	var se *statusError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("status-%d", se.code)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "other"
}

type statusError struct{ code int }

func (e *statusError) Error() string { return fmt.Sprintf("status %d", e.code) }

// conn is one client connection with its reader.
type conn struct {
	c    net.Conn
	r    *bufio.Reader
	used int // requests completed on it
}

func dial(addr string, timeout time.Duration) (*conn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	return &conn{c: c, r: bufio.NewReaderSize(c, 4096)}, nil
}

// errNoResponse wraps a failure that happened before any byte of the
// response was read: the only kind a client may retry blindly.
type errNoResponse struct{ err error }

func (e *errNoResponse) Error() string { return e.err.Error() }
func (e *errNoResponse) Unwrap() error { return e.err }

// roundTrip sends one GET and reads the whole response. It returns whether
// the server asked to close the connection.
func (k *conn) roundTrip(host string, keepAlive bool, timeout time.Duration) (closeAfter bool, err error) {
	k.c.SetDeadline(time.Now().Add(timeout))
	req := "GET / HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: bgload\r\n"
	if !keepAlive {
		req += "Connection: close\r\n"
	}
	if _, err := io.WriteString(k.c, req+"\r\n"); err != nil {
		return true, &errNoResponse{err}
	}
	if _, err := k.r.Peek(1); err != nil {
		return true, &errNoResponse{err}
	}
	resp, err := http.ReadResponse(k.r, nil)
	if err != nil {
		return true, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return true, err
	}
	k.used++
	if resp.StatusCode != http.StatusOK {
		return resp.Close, &statusError{resp.StatusCode}
	}
	return resp.Close || !keepAlive, nil
}

type options struct {
	addr      string
	newconn   int
	keepalive int
	noretry   int
	timeout   time.Duration
	keep      int
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "", "host:port to load")
	flag.IntVar(&o.newconn, "newconn", 4, "workers opening a new connection per request")
	flag.IntVar(&o.keepalive, "keepalive", 4, "workers on kept-alive connections")
	flag.IntVar(&o.noretry, "noretry", 0, "workers on kept-alive connections that never retry (counted apart)")
	duration := flag.Duration("duration", 0, "stop after this long (0: at SIGTERM or SIGINT)")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Second, "per request")
	flag.IntVar(&o.keep, "keep-failures", 200, "failures kept with their time and error")
	pidFile := flag.String("pidfile", "", "write our pid here once running")
	flag.Parse()
	if o.addr == "" {
		fmt.Fprintln(os.Stderr, "bgload: -addr is required")
		os.Exit(2)
	}
	stop := make(chan struct{})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		if *duration > 0 {
			select {
			case <-sig:
			case <-time.After(*duration):
			}
		} else {
			<-sig
		}
		close(stop)
	}()
	if *pidFile != "" {
		if err := os.WriteFile(*pidFile, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bgload:", err)
			os.Exit(1)
		}
	}
	out, _ := json.Marshal(run(o, stop))
	fmt.Println(strings.TrimSpace(string(out)))
}

// run loads o.addr until stop is closed.
func run(o options, stop <-chan struct{}) summary {
	host := o.addr
	rec := &recorder{start: time.Now(), classes: map[string]int64{}, noretry: map[string]int64{}, keep: o.keep}
	var nc, nf, kc, kf, rc, rf atomic.Int64
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	var wg sync.WaitGroup
	for i := 0; i < o.newconn; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stopped() {
				nc.Add(1)
				k, err := dial(o.addr, o.timeout)
				if err == nil {
					_, err = k.roundTrip(host, false, o.timeout)
					k.c.Close()
				}
				if err != nil {
					nf.Add(1)
					rec.fail("newconn", err)
				}
			}
		}()
	}
	keepAliveWorkers := func(n int, client string, retry bool, count, failed *atomic.Int64) {
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var k *conn
				for !stopped() {
					count.Add(1)
					var err error
					k, err = keepAliveGet(k, host, o.addr, o.timeout, retry, rec)
					if err != nil {
						failed.Add(1)
						rec.fail(client, err)
					}
				}
				if k != nil {
					k.c.Close()
				}
			}()
		}
	}
	keepAliveWorkers(o.keepalive, "keepalive", true, &kc, &kf)
	keepAliveWorkers(o.noretry, "noretry", false, &rc, &rf)
	wg.Wait()
	el := time.Since(rec.start)
	s := summary{
		Addr: o.addr, DurationMS: el.Milliseconds(), StartUnixMS: rec.start.UnixMilli(),
		NewConn: clientStats{nc.Load(), nf.Load()}, KeepAlive: clientStats{kc.Load(), kf.Load()}, NoRetry: clientStats{rc.Load(), rf.Load()},
		Retries: rec.retries.Load(), RetriedOK: rec.retriedOK.Load(), Classes: rec.classes, NoRetryCls: rec.noretry, Failures: rec.failures,
	}
	s.Requests = s.NewConn.Requests + s.KeepAlive.Requests
	s.Failed = s.NewConn.Failed + s.KeepAlive.Failed
	s.RPS = float64(s.Requests) / el.Seconds()
	sort.Slice(s.Failures, func(i, j int) bool { return s.Failures[i].AtMS < s.Failures[j].AtMS })
	return s
}

// keepAliveGet does one GET on k (dialling when k is nil) and returns the
// connection to use next (nil when it was closed). With retry, a GET that
// failed on a reused connection before any response byte is sent again once.
func keepAliveGet(k *conn, host, addr string, timeout time.Duration, retry bool, rec *recorder) (*conn, error) {
	if k == nil {
		var err error
		if k, err = dial(addr, timeout); err != nil {
			return nil, err
		}
	}
	closeAfter, err := k.roundTrip(host, true, timeout)
	var nr *errNoResponse
	if retry && err != nil && k.used > 0 && errors.As(err, &nr) {
		// The server closed the idle connection under us: retry the GET once
		// on a new connection.
		rec.retries.Add(1)
		k.c.Close()
		if k, err = dial(addr, timeout); err != nil {
			return nil, err
		}
		closeAfter, err = k.roundTrip(host, true, timeout)
		if err == nil {
			rec.retriedOK.Add(1)
		}
	}
	if closeAfter || err != nil {
		k.c.Close()
		return nil, err
	}
	return k, nil
}
