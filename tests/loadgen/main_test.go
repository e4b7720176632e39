package main

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A server that answers three requests per connection, then reads the next
// one and closes without a word, as a server closing an idle kept-alive
// connection does when the client's request crosses the close.
func closingServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				r := bufio.NewReader(c)
				for i := 0; i < 4; i++ {
					req, err := http.ReadRequest(r)
					if err != nil || i == 3 {
						return
					}
					req.Body.Close()
					c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 24\r\n\r\nversion=v1 colour=blue\r\n"))
				}
			}(c)
		}
	}()
	return "http://" + ln.Addr().String() + "/"
}

func TestNoRetryFailsWhatNetHTTPRetries(t *testing.T) {
	url := closingServer(t)
	cfg := config{targets: []string{url}, concurrency: 2, rate: 500, timeout: time.Second, duration: 300 * time.Millisecond, keepAlive: true}
	if r := run(context.Background(), cfg); r.Failed != 0 || r.OK == 0 || r.Retried == 0 || r.RetriedOK != r.Retried || r.Targets[0].Retried != r.Retried {
		t.Fatalf("net/http retries: want no failure and every retry counted and answered, got %d of %d failed, %d of %d retries answered: %v",
			r.Failed, r.Sent, r.RetriedOK, r.Retried, r.Targets[0].Errors)
	}
	cfg.noRetry = true
	r := run(context.Background(), cfg)
	if r.Failed == 0 || r.Targets[0].Errors[errNotRetried.Error()] != r.Failed || !r.NoRetry || r.Retried != 0 {
		t.Fatalf("-noretry: want every failure counted as not retried, got %d of %d: %v", r.Failed, r.Sent, r.Targets[0].Errors)
	}
}

func TestNoRetryNeedsKeepAlive(t *testing.T) {
	if _, err := parseFlags([]string{"-target", "http://x/", "-noretry"}); err == nil || err.Error() != "-noretry needs -keepalive: a new connection per request is never retried" {
		t.Fatalf("got %v", err)
	}
}

// -rate 0 (the benchmark's closed loop) sends far more than a paced load
// of the same duration, and a healthy server fails none of it.
func TestRateZeroIsUnpaced(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("version=v1 colour=blue\n")) }))
	defer srv.Close()
	cfg := config{targets: []string{srv.URL + "/"}, concurrency: 2, rate: 20, timeout: time.Second, duration: 300 * time.Millisecond}
	paced := run(context.Background(), cfg)
	cfg.rate = 0
	unpaced := run(context.Background(), cfg)
	if paced.Failed != 0 || unpaced.Failed != 0 || paced.Sent > 10 || unpaced.Sent < 10*paced.Sent || unpaced.Targets[0].Served["v1/blue"].Count != unpaced.OK {
		t.Fatalf("paced %d sent (%d failed), unpaced %d sent (%d failed)", paced.Sent, paced.Failed, unpaced.Sent, unpaced.Failed)
	}
}

func TestFailuresAreNamed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/"
	ln.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer srv.Close()
	cfg := config{targets: []string{closed, srv.URL + "/"}, concurrency: 1, rate: 0, timeout: time.Second, duration: 100 * time.Millisecond}
	r := run(context.Background(), cfg)
	refused, unavailable := r.Targets[0], r.Targets[1]
	if refused.Failed == 0 || refused.Errors["connection refused"] != refused.Failed || len(refused.Failures) != min(maxFailures, int(refused.Failed)) ||
		unavailable.Failed == 0 || unavailable.Errors["status 503"] != unavailable.Failed || r.OK != 0 {
		t.Fatalf("%+v %+v", refused, unavailable)
	}
}

func TestFlagErrors(t *testing.T) {
	for args, want := range map[string]string{
		"-rate -1":       "-rate must be 0 (no pacing) to 100000",
		"-concurrency 0": "-concurrency must be 1-1000",
	} {
		argv := append([]string{"-target", "http://x/"}, strings.Fields(args)...)
		if _, err := parseFlags(argv); err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %s", args, err, want)
		}
	}
	if _, err := parseFlags(nil); err == nil || err.Error() != "give at least one -target URL" {
		t.Errorf("no target: got %v", err)
	}
}
