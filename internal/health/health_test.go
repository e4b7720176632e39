package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func fastGate(c Check, successes int, timeout time.Duration) Gate {
	if c.AttemptTimeout == 0 {
		c.AttemptTimeout = time.Second
	}
	return Gate{Check: c, Interval: 10 * time.Millisecond, Timeout: timeout, Successes: successes}
}

func TestHTTPPassesAfterConsecutiveSuccesses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok colour=green version=2")
	}))
	defer srv.Close()
	g := fastGate(Check{Kind: HTTP, URL: srv.URL, ExpectStatus: 200, BodyRegex: regexp.MustCompile(`colour=green`)}, 3, 5*time.Second)
	res := Run(context.Background(), g, g.Check.Prober(), nil)
	if !res.Passed || res.Attempts != 3 || res.Successes != 3 || res.Reason != "passed" {
		t.Fatalf("want a pass after exactly 3 attempts, got %+v", res)
	}
	if res.Last[2].Status != 200 || res.Last[2].N != 3 {
		t.Fatalf("last attempt not recorded: %+v", res.Last)
	}
}

func TestHTTPFailures(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		body    string
		want    int
		re      string
		inError string
	}{
		{"wrong status", 500, "broken", 200, "", "status 500, want 200; body: broken"},
		{"body mismatch", 200, "ok colour=blue", 200, `colour=green`, `body does not match "colour=green"`},
		{"expected 503 gets 200", 200, "ok", 503, "", "status 200, want 503"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.body)
			}))
			defer srv.Close()
			c := Check{Kind: HTTP, URL: srv.URL, ExpectStatus: tc.want}
			if tc.re != "" {
				c.BodyRegex = regexp.MustCompile(tc.re)
			}
			g := fastGate(c, 2, 200*time.Millisecond)
			start := time.Now()
			res := Run(context.Background(), g, g.Check.Prober(), nil)
			if res.Passed {
				t.Fatalf("gate passed: %+v", res)
			}
			if !strings.Contains(res.Reason, tc.inError) || !strings.HasPrefix(res.Reason, "no 2 consecutive successes within 200ms") {
				t.Fatalf("reason %q lacks %q", res.Reason, tc.inError)
			}
			if el := time.Since(start); el > 400*time.Millisecond {
				t.Fatalf("gate ran %s, past its 200ms timeout", el)
			}
			if res.Attempts < 2 || len(res.Last) > keepAttempts {
				t.Fatalf("attempts %d, kept %d", res.Attempts, len(res.Last))
			}
		})
	}
}

func TestFlappingResetsConsecutiveCount(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// ok, ok, fail, ok, ok, ok
		if n.Add(1) == 3 {
			w.WriteHeader(503)
		}
	}))
	defer srv.Close()
	g := fastGate(Check{Kind: HTTP, URL: srv.URL, ExpectStatus: 200}, 3, 5*time.Second)
	res := Run(context.Background(), g, g.Check.Prober(), nil)
	if !res.Passed || res.Attempts != 6 {
		t.Fatalf("want a pass at attempt 6 (the failure at 3 resets the count), got %+v", res)
	}
}

func TestTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	g := fastGate(Check{Kind: TCP, Address: addr}, 2, 2*time.Second)
	if res := Run(context.Background(), g, g.Check.Prober(), nil); !res.Passed {
		t.Fatalf("tcp gate on a listening port failed: %+v", res)
	}
	ln.Close()
	g.Timeout = 100 * time.Millisecond
	res := Run(context.Background(), g, g.Check.Prober(), nil)
	if res.Passed || !strings.Contains(res.Reason, "refused") {
		t.Fatalf("tcp gate on a closed port: %+v", res)
	}
}

func TestCommand(t *testing.T) {
	g := fastGate(Check{Kind: Command, Command: []string{"/bin/sh", "-c", "exit 0"}}, 1, time.Second)
	if res := Run(context.Background(), g, g.Check.Prober(), nil); !res.Passed {
		t.Fatalf("exit 0: %+v", res)
	}
	g = fastGate(Check{Kind: Command, Command: []string{"/bin/sh", "-c", "echo not ready; exit 3"}}, 1, 50*time.Millisecond)
	res := Run(context.Background(), g, g.Check.Prober(), nil)
	if res.Passed || !strings.Contains(res.Reason, "exit status 3; output: not ready") {
		t.Fatalf("exit 3: %+v", res)
	}
	g = fastGate(Check{Kind: Command, Command: []string{"/bin/sleep", "5"}, AttemptTimeout: 50 * time.Millisecond}, 1, 120*time.Millisecond)
	start := time.Now()
	res = Run(context.Background(), g, g.Check.Prober(), nil)
	if res.Passed || time.Since(start) > 2*time.Second {
		t.Fatalf("a hanging command must be cut at the attempt timeout: %+v after %s", res, time.Since(start))
	}
}

type scripted struct {
	results []bool
	n       int
}

func (s *scripted) Probe(ctx context.Context) Attempt {
	ok := s.results[s.n%len(s.results)]
	s.n++
	return Attempt{OK: ok, Detail: fmt.Sprintf("scripted %v", ok)}
}

func TestAbortEndsGateAtOnce(t *testing.T) {
	g := Gate{Check: Check{Kind: TCP, Address: "x:1", AttemptTimeout: time.Second}, Interval: time.Second, Timeout: time.Minute, Successes: 1}
	calls := 0
	start := time.Now()
	res := Run(context.Background(), g, &scripted{results: []bool{false}}, func(context.Context) error {
		calls++
		return errors.New("unit webapp-green.service is failed (exit-code)")
	})
	if res.Passed || res.Reason != "aborted: unit webapp-green.service is failed (exit-code)" || calls != 1 || res.Attempts != 1 {
		t.Fatalf("abort: %+v calls=%d", res, calls)
	}
	if time.Since(start) > 500*time.Millisecond {
		t.Fatal("abort must not wait for the interval")
	}
}

func TestAbortNotCalledAfterSuccess(t *testing.T) {
	g := Gate{Check: Check{Kind: TCP, Address: "x:1", AttemptTimeout: time.Second}, Interval: time.Millisecond, Timeout: time.Minute, Successes: 2}
	res := Run(context.Background(), g, &scripted{results: []bool{true}}, func(context.Context) error {
		return errors.New("must not be called")
	})
	if !res.Passed {
		t.Fatalf("%+v", res)
	}
}

func TestContextCancel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	g := Gate{Check: Check{Kind: TCP, Address: "x:1", AttemptTimeout: time.Second}, Interval: 20 * time.Millisecond, Timeout: time.Minute, Successes: 1}
	res := Run(ctx, g, &scripted{results: []bool{false}}, nil)
	if res.Passed || !strings.HasPrefix(res.Reason, "interrupted:") {
		t.Fatalf("%+v", res)
	}
}

func TestValidate(t *testing.T) {
	ok := Check{Kind: HTTP, URL: "http://127.0.0.1:1/h", ExpectStatus: 200, AttemptTimeout: time.Second}
	for _, tc := range []struct {
		name string
		g    Gate
		want string
	}{
		{"ok", Gate{Check: ok, Interval: 1, Timeout: 1, Successes: 1}, ""},
		{"bad scheme", Gate{Check: Check{Kind: HTTP, URL: "ftp://x", ExpectStatus: 200, AttemptTimeout: 1}, Interval: 1, Timeout: 1, Successes: 1}, "must start with http://"},
		{"bad status", Gate{Check: Check{Kind: HTTP, URL: "http://x", ExpectStatus: 42, AttemptTimeout: 1}, Interval: 1, Timeout: 1, Successes: 1}, "not an HTTP status"},
		{"bad address", Gate{Check: Check{Kind: TCP, Address: "nocolon", AttemptTimeout: 1}, Interval: 1, Timeout: 1, Successes: 1}, "must be host:port"},
		{"empty command", Gate{Check: Check{Kind: Command, AttemptTimeout: 1}, Interval: 1, Timeout: 1, Successes: 1}, "command is empty"},
		{"zero successes", Gate{Check: ok, Interval: 1, Timeout: 1}, "at least 1"},
		{"zero interval", Gate{Check: ok, Timeout: 1, Successes: 1}, "interval must be positive"},
		{"unknown kind", Gate{Check: Check{Kind: "udp", AttemptTimeout: 1}, Interval: 1, Timeout: 1, Successes: 1}, "unknown health check kind"},
	} {
		err := tc.g.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}

// proberFunc adapts a function to Prober.
type proberFunc func(ctx context.Context) Attempt

func (f proberFunc) Probe(ctx context.Context) Attempt { return f(ctx) }

func TestReasonNamesTheLastCompleteAttemptWhenTheGateCutsTheFinalOne(t *testing.T) {
	calls := 0
	p := proberFunc(func(ctx context.Context) Attempt {
		calls++
		if calls == 1 {
			return Attempt{OK: false, Detail: "status 503"}
		}
		<-ctx.Done() // hangs until the gate's deadline cuts it
		return Attempt{OK: false, Detail: "context deadline exceeded"}
	})
	g := fastGate(Check{Kind: Command, Command: []string{"x"}, AttemptTimeout: time.Hour}, 1, 80*time.Millisecond)
	res := Run(context.Background(), g, p, nil)
	if res.Passed {
		t.Fatal("gate passed")
	}
	want := "last complete attempt: status 503; the final one was cut by the gate's timeout (context deadline exceeded)"
	if !strings.Contains(res.Reason, want) {
		t.Fatalf("reason %q lacks %q", res.Reason, want)
	}
	if !res.Last[len(res.Last)-1].CutByGate || res.Last[0].CutByGate {
		t.Fatalf("cut_by_gate marks: %+v", res.Last)
	}
}
