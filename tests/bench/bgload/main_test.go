package main

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func runFor(o options, d time.Duration) summary {
	stop := make(chan struct{})
	go func() { time.Sleep(d); close(stop) }()
	return run(o, stop)
}

func TestBothClientsAgainstAHealthyServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) }))
	defer srv.Close()
	s := runFor(options{addr: srv.Listener.Addr().String(), newconn: 2, keepalive: 2, timeout: time.Second, keep: 10}, 300*time.Millisecond)
	if s.Failed != 0 || s.NewConn.Requests == 0 || s.KeepAlive.Requests == 0 || s.Requests != s.NewConn.Requests+s.KeepAlive.Requests {
		t.Fatalf("%+v", s)
	}
}

// A server that closes every kept-alive connection after a few requests
// without saying so (as one does when it closes idle connections during a
// drain): the keep-alive client must retry once and lose nothing.
func TestKeepAliveRetriesOnAClosedIdleConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var served atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				r := bufio.NewReader(c)
				for i := 0; i < 3; i++ {
					req, err := http.ReadRequest(r)
					if err != nil {
						return
					}
					req.Body.Close()
					served.Add(1)
					c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"))
				}
				// Close without Connection: close, possibly with the next
				// request already sent.
			}(c)
		}
	}()
	s := runFor(options{addr: ln.Addr().String(), keepalive: 2, timeout: time.Second, keep: 10}, 300*time.Millisecond)
	if s.Failed != 0 || s.Retries == 0 || s.RetriedOK != s.Retries {
		t.Fatalf("want retries that all succeed and no failure: %+v", s)
	}
	// The client that does not retry fails those requests, counted apart:
	// the retrying clients still lose nothing.
	s = runFor(options{addr: ln.Addr().String(), keepalive: 2, noretry: 2, timeout: time.Second, keep: 10}, 300*time.Millisecond)
	if s.Failed != 0 || s.NoRetry.Requests == 0 || s.NoRetry.Failed == 0 || s.Requests != s.NewConn.Requests+s.KeepAlive.Requests ||
		len(s.Classes) != 0 || s.NoRetryCls["eof"]+s.NoRetryCls["reset"] != s.NoRetry.Failed {
		t.Fatalf("want noretry failures on their own keys only: %+v", s)
	}
}

func TestFailuresAreClassified(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	s := runFor(options{addr: addr, newconn: 1, keepalive: 1, timeout: time.Second, keep: 3}, 100*time.Millisecond)
	if s.Failed == 0 || s.Failed != s.Requests || s.Classes["refused"] != s.Failed || len(s.Failures) != 3 {
		t.Fatalf("%+v", s)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer srv.Close()
	s = runFor(options{addr: srv.Listener.Addr().String(), newconn: 1, timeout: time.Second, keep: 1}, 100*time.Millisecond)
	if s.Failed == 0 || s.Classes["status-503"] != s.Failed || !strings.Contains(s.Failures[0].Error, "status 503") {
		t.Fatalf("%+v", s)
	}
}
