// Command loadgen, the one load generator of the tests, sends a steady stream
// of HTTP GET requests to one or more targets until it is stopped (SIGTERM or
// SIGINT) or -duration ends, then writes what happened as JSON: per target,
// requests sent, answered (200 and a body naming a version), failed and why,
// which version and colour served them, when the serving version changed,
// GETs that net/http sent again on a new connection, and latencies.
//
// `make demo`, the pipeline e2e playbooks, test-traefik and test-rebuild run
// it inside the lab (on h1, against the app hosts) while a flip happens, to
// count the requests served and failed during the flip. The bluegreen_unit
// benchmark runs three at once with -rate 0 (as fast as each worker can):
// a new connection per request, -keepalive, and -keepalive -noretry.
// "transitions" counts how often two consecutive answers came from different
// versions: more than one means both colours served for a while.
// By default each request opens a new TCP connection, so every request
// goes through the listening socket that the flip hands over.
//
// With -keepalive, Go's net/http (like browsers) sends a GET again on a new
// connection when the server closed the kept-alive one while it was idle;
// such a request succeeds and is counted in "retried" (and "retried_ok" when
// that second try was answered). -noretry makes that request fail instead ("not
// retried: ..."), which is what a client that does not retry sees.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/signal"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/chezlepro/sovereign/internal/fsutil"
)

type targetList []string

func (t *targetList) String() string     { return strings.Join(*t, ",") }
func (t *targetList) Set(v string) error { *t = append(*t, v); return nil }

type config struct {
	targets     []string
	concurrency int
	rate        float64
	timeout     time.Duration
	duration    time.Duration
	keepAlive   bool
	noRetry     bool
	out         string
}

// Served counts the answers of one version and colour, and when the first
// and the last of them came (milliseconds since the start).
type Served struct {
	Count   int64 `json:"count"`
	FirstMS int64 `json:"first_ms"`
	LastMS  int64 `json:"last_ms"`
}

// Failure is one failed request: when it started and what went wrong.
type Failure struct {
	AtMS  int64  `json:"at_ms"`
	Error string `json:"error"`
}

// maxFailures is how many failures a target keeps in detail.
const maxFailures = 20

// TargetReport is what happened to one target.
type TargetReport struct {
	URL         string             `json:"url"`
	Sent        int64              `json:"sent"`
	OK          int64              `json:"ok"`
	Failed      int64              `json:"failed"`
	Errors      map[string]int64   `json:"errors"`
	Failures    []Failure          `json:"first_failures"`
	Served      map[string]*Served `json:"served"`
	Transitions int64              `json:"transitions"`
	Retried     int64              `json:"retried"`
	RetriedOK   int64              `json:"retried_ok"`
	LatencyMS   map[string]int64   `json:"latency_ms"`
}

// Report is the JSON output.
type Report struct {
	Started     string          `json:"started"`
	DurationMS  int64           `json:"duration_ms"`
	Concurrency int             `json:"concurrency"`
	Rate        float64         `json:"rate_per_target"`
	KeepAlive   bool            `json:"keepalive"`
	NoRetry     bool            `json:"noretry"`
	Targets     []*TargetReport `json:"targets"`
	Sent        int64           `json:"sent"`
	OK          int64           `json:"ok"`
	Failed      int64           `json:"failed"`
	Retried     int64           `json:"retried"`
	RetriedOK   int64           `json:"retried_ok"`
}

type target struct {
	mu        sync.Mutex
	rep       TargetReport
	last      string
	latencies []time.Duration
}

var bodyRe = regexp.MustCompile(`version=(\S+) colour=(\S+)`)

func main() {
	c, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	rep := run(ctx, c)
	b, _ := json.MarshalIndent(rep, "", "  ")
	b = append(b, '\n')
	if c.out == "" {
		os.Stdout.Write(b)
		return
	}
	if err := fsutil.WriteFileAtomic(c.out, b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	var c config
	var targets targetList
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.Var(&targets, "target", "URL to request (repeat for several targets)")
	fs.IntVar(&c.concurrency, "concurrency", 4, "requests in flight per target")
	fs.Float64Var(&c.rate, "rate", 100, "requests per second per target (0: no pacing, each worker sends its next request as soon as one ends)")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Second, "time limit of one request")
	fs.DurationVar(&c.duration, "duration", 0, "stop after this long (0: at SIGTERM or SIGINT)")
	fs.BoolVar(&c.keepAlive, "keepalive", false, "reuse connections instead of one new connection per request")
	fs.BoolVar(&c.noRetry, "noretry", false, "with -keepalive: fail a request that net/http would send again on a new connection")
	fs.StringVar(&c.out, "out", "", "write the JSON report here (default stdout)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.targets = targets
	switch {
	case len(c.targets) == 0:
		return c, errors.New("give at least one -target URL")
	case c.concurrency < 1 || c.concurrency > 1000:
		return c, errors.New("-concurrency must be 1-1000")
	case c.rate < 0 || c.rate > 100000:
		return c, errors.New("-rate must be 0 (no pacing) to 100000")
	case c.noRetry && !c.keepAlive:
		return c, errors.New("-noretry needs -keepalive: a new connection per request is never retried")
	}
	return c, nil
}

func run(ctx context.Context, c config) *Report {
	if c.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.duration)
		defer cancel()
	}
	client := &http.Client{
		Timeout: c.timeout,
		Transport: &http.Transport{
			DisableKeepAlives:   !c.keepAlive,
			MaxIdleConnsPerHost: c.concurrency,
			DialContext:         (&net.Dialer{Timeout: c.timeout}).DialContext,
		},
	}
	start := time.Now()
	ts := make([]*target, len(c.targets))
	var wg sync.WaitGroup
	for i, u := range c.targets {
		t := &target{rep: TargetReport{URL: u, Errors: map[string]int64{}, Failures: []Failure{}, Served: map[string]*Served{}}}
		ts[i] = t
		tokens := make(chan struct{}, c.concurrency)
		wg.Add(1)
		go func() { // pace: one token per 1/rate, never more than the workers can take
			defer wg.Done()
			defer close(tokens)
			if c.rate == 0 { // no pacing: a token whenever a worker is free
				for {
					select {
					case <-ctx.Done():
						return
					case tokens <- struct{}{}:
					}
				}
			}
			tick := time.NewTicker(time.Duration(float64(time.Second) / c.rate))
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					select {
					case tokens <- struct{}{}:
					default:
					}
				}
			}
		}()
		for w := 0; w < c.concurrency; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range tokens {
					t.do(client, start, c.noRetry)
				}
			}()
		}
	}
	wg.Wait()
	rep := &Report{Started: start.UTC().Format(time.RFC3339Nano), DurationMS: time.Since(start).Milliseconds(),
		Concurrency: c.concurrency, Rate: c.rate, KeepAlive: c.keepAlive, NoRetry: c.noRetry}
	for _, t := range ts {
		t.rep.LatencyMS = percentiles(t.latencies)
		rep.Targets = append(rep.Targets, &t.rep)
		rep.Sent += t.rep.Sent
		rep.OK += t.rep.OK
		rep.Failed += t.rep.Failed
		rep.Retried += t.rep.Retried
		rep.RetriedOK += t.rep.RetriedOK
	}
	return rep
}

// do sends one request. Once sent, a request is always counted, also when
// the generator is being stopped: a request cut short is a failure.
func (t *target) do(client *http.Client, start time.Time, noRetry bool) {
	t0 := time.Now()
	served, errKind, detail, retried := get(client, t.rep.URL, noRetry)
	d := time.Since(t0)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rep.Sent++
	t.latencies = append(t.latencies, d)
	if retried {
		t.rep.Retried++
		if errKind == "" {
			t.rep.RetriedOK++
		}
	}
	if errKind != "" {
		t.rep.Failed++
		t.rep.Errors[errKind]++
		if len(t.rep.Failures) < maxFailures {
			t.rep.Failures = append(t.rep.Failures, Failure{AtMS: t0.Sub(start).Milliseconds(), Error: detail})
		}
		return
	}
	t.rep.OK++
	at := t0.Sub(start).Milliseconds()
	sv := t.rep.Served[served]
	if sv == nil {
		sv = &Served{FirstMS: at}
		t.rep.Served[served] = sv
	}
	sv.Count++
	sv.LastMS = at
	if t.last != "" && served != t.last {
		t.rep.Transitions++
	}
	t.last = served
}

// errNotRetried cancels a request that net/http was about to send again.
var errNotRetried = errors.New("not retried: the server closed the kept-alive connection")

// get returns "VERSION/COLOUR" of the answer, or the kind of failure and
// its details, and whether the transport sent the request again on a new
// connection. With noRetry, a request that takes a second connection (the
// transport retrying it) is cancelled and fails.
func get(client *http.Client, url string, noRetry bool) (served, kind, detail string, retried bool) {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	conns := 0 // GotConn runs on the request's own round trip, one call at a time
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) {
		if conns++; conns > 1 && noRetry {
			cancel(errNotRetried)
		}
	}})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", "bad request", err.Error(), false
	}
	resp, err := client.Do(req)
	retried = conns > 1 && !noRetry
	if err != nil {
		if errors.Is(context.Cause(ctx), errNotRetried) {
			return "", errNotRetried.Error(), err.Error(), false
		}
		return "", errorKind(err), err.Error(), retried
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", "read body: " + errorKind(err), err.Error(), retried
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Sprintf("status %d", resp.StatusCode), strings.TrimSpace(string(body)), retried
	}
	m := bodyRe.FindSubmatch(body)
	if m == nil {
		return "", "unexpected body", strings.TrimSpace(string(body)), retried
	}
	return string(m[1]) + "/" + string(m[2]), "", "", retried
}

func errorKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed early"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "other: " + err.Error()
}

func percentiles(ds []time.Duration) map[string]int64 {
	out := map[string]int64{}
	if len(ds) == 0 {
		return out
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	at := func(q float64) int64 { return ds[int(q*float64(len(ds)-1))].Milliseconds() }
	out["p50"], out["p99"], out["max"] = at(0.5), at(0.99), ds[len(ds)-1].Milliseconds()
	return out
}
