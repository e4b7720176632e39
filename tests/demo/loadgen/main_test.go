package main

import (
	"bufio"
	"context"
	"net"
	"net/http"
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
	if r := run(context.Background(), cfg); r.Failed != 0 || r.OK == 0 {
		t.Fatalf("net/http retries: want no failure, got %d of %d: %v", r.Failed, r.Sent, r.Targets[0].Errors)
	}
	cfg.noRetry = true
	r := run(context.Background(), cfg)
	if r.Failed == 0 || r.Targets[0].Errors[errNotRetried.Error()] != r.Failed || !r.NoRetry {
		t.Fatalf("-noretry: want every failure counted as not retried, got %d of %d: %v", r.Failed, r.Sent, r.Targets[0].Errors)
	}
}

func TestNoRetryNeedsKeepAlive(t *testing.T) {
	if _, err := parseFlags([]string{"-target", "http://x/", "-noretry"}); err == nil || err.Error() != "-noretry needs -keepalive: a new connection per request is never retried" {
		t.Fatalf("got %v", err)
	}
}
