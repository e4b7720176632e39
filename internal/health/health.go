// Package health runs a health gate: one probe (HTTP, TCP or a command),
// repeated at an interval until it has succeeded N times in a row or a
// timeout passes. The outcome is a structured Result a module can return as
// is, so a user sees what was probed, how often, and why it failed.
package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Kind names what a Check probes.
type Kind string

// The kinds of probe.
const (
	HTTP    Kind = "http"
	TCP     Kind = "tcp"
	Command Kind = "command"
)

// maxBody bounds how much of an HTTP body is read and matched.
const maxBody = 64 << 10

// keepAttempts is how many of the last attempts a Result carries.
const keepAttempts = 5

// Check is one probe.
type Check struct {
	Kind Kind
	// HTTP: the URL to GET, the status expected, and an optional regular
	// expression the body must match.
	URL          string
	ExpectStatus int
	BodyRegex    *regexp.Regexp
	// TCP: host:port to connect to.
	Address string
	// Command: argv, run without a shell; exit status 0 is a success.
	Command []string
	// AttemptTimeout bounds each single probe.
	AttemptTimeout time.Duration
}

// Target is what the check probes, for messages.
func (c Check) Target() string {
	switch c.Kind {
	case HTTP:
		return c.URL
	case TCP:
		return c.Address
	case Command:
		return strings.Join(c.Command, " ")
	}
	return ""
}

// Validate reports a check that cannot run.
func (c Check) Validate() error {
	switch c.Kind {
	case HTTP:
		if !strings.HasPrefix(c.URL, "http://") && !strings.HasPrefix(c.URL, "https://") {
			return fmt.Errorf("health url %q must start with http:// or https://", c.URL)
		}
		// Found now rather than after a whole gate timeout of failed probes.
		u, err := url.Parse(c.URL)
		if err != nil {
			return fmt.Errorf("health url %q: %w", c.URL, err)
		}
		if u.Hostname() == "" {
			return fmt.Errorf("health url %q has no host", c.URL)
		}
		if p := u.Port(); p != "" {
			if err := checkPort(p); err != nil {
				return fmt.Errorf("health url %q: %w", c.URL, err)
			}
		}
		if c.ExpectStatus < 100 || c.ExpectStatus > 599 {
			return fmt.Errorf("health status %d is not an HTTP status", c.ExpectStatus)
		}
	case TCP:
		_, port, err := net.SplitHostPort(c.Address)
		if err != nil {
			return fmt.Errorf("health address %q must be host:port: %w", c.Address, err)
		}
		if err := checkPort(port); err != nil {
			return fmt.Errorf("health address %q: %w", c.Address, err)
		}
	case Command:
		if len(c.Command) == 0 || c.Command[0] == "" {
			return errors.New("health command is empty")
		}
	default:
		return fmt.Errorf("unknown health check kind %q", c.Kind)
	}
	if c.AttemptTimeout <= 0 {
		return errors.New("health attempt timeout must be positive")
	}
	return nil
}

// checkPort accepts a TCP port number, 1-65535.
func checkPort(p string) error {
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("the port must be 1-65535, got %q", p)
	}
	return nil
}

// Attempt is the outcome of one probe.
type Attempt struct {
	N         int    `json:"n"`
	OK        bool   `json:"ok"`
	Detail    string `json:"detail"`
	Status    int    `json:"status,omitempty"`
	LatencyMS int64  `json:"latency_ms"`
	// AtMS is when the probe started, in ms since the gate started.
	AtMS int64 `json:"at_ms"`
	// CutByGate: the gate's own timeout, not the attempt's, ended this
	// probe, so its detail says little about the service.
	CutByGate bool `json:"cut_by_gate,omitempty"`
}

// Prober runs one probe. Probe must return within ctx's deadline.
type Prober interface {
	Probe(ctx context.Context) Attempt
}

// Prober returns the prober that runs c.
func (c Check) Prober() Prober { return checkProber{c} }

type checkProber struct{ c Check }

func (p checkProber) Probe(ctx context.Context) Attempt {
	switch p.c.Kind {
	case HTTP:
		return probeHTTP(ctx, p.c)
	case TCP:
		return probeTCP(ctx, p.c.Address)
	case Command:
		return probeCommand(ctx, p.c.Command)
	}
	return Attempt{Detail: fmt.Sprintf("unknown check kind %q", p.c.Kind)}
}

func probeHTTP(ctx context.Context, c Check) Attempt {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL, nil)
	if err != nil {
		return Attempt{Detail: err.Error()}
	}
	// A fresh connection per probe: a kept-alive connection could reach a
	// process that is no longer the one being checked.
	client := &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		return Attempt{Detail: err.Error()}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	a := Attempt{Status: resp.StatusCode}
	if err != nil {
		a.Detail = fmt.Sprintf("status %d, reading body: %v", resp.StatusCode, err)
		return a
	}
	if resp.StatusCode != c.ExpectStatus {
		a.Detail = fmt.Sprintf("status %d, want %d; body: %s", resp.StatusCode, c.ExpectStatus, snippet(body))
		return a
	}
	if c.BodyRegex != nil && !c.BodyRegex.Match(body) {
		a.Detail = fmt.Sprintf("status %d but body does not match %q; body: %s", resp.StatusCode, c.BodyRegex.String(), snippet(body))
		return a
	}
	a.OK = true
	a.Detail = fmt.Sprintf("status %d", resp.StatusCode)
	return a
}

func probeTCP(ctx context.Context, addr string) Attempt {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return Attempt{Detail: err.Error()}
	}
	conn.Close()
	return Attempt{OK: true, Detail: "connected to " + addr}
}

func probeCommand(ctx context.Context, argv []string) Attempt {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout = &limitedWriter{w: &out, n: maxBody}
	cmd.Stderr = cmd.Stdout
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err != nil {
		return Attempt{Detail: fmt.Sprintf("%v; output: %s", err, snippet(out.Bytes()))}
	}
	return Attempt{OK: true, Detail: "exit status 0"}
}

// snippet returns the start of b on one line, for messages.
func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	if s == "" {
		return "(empty)"
	}
	return s
}

type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	n := len(p)
	if l.n <= 0 {
		return n, nil
	}
	if len(p) > l.n {
		p = p[:l.n]
	}
	l.n -= len(p)
	_, err := l.w.Write(p)
	return n, err
}

// Gate repeats a probe until Successes consecutive successes, or fails once
// Timeout has passed.
type Gate struct {
	Check     Check
	Interval  time.Duration
	Timeout   time.Duration
	Successes int
}

// Validate reports a gate that cannot run.
func (g Gate) Validate() error {
	if err := g.Check.Validate(); err != nil {
		return err
	}
	if g.Interval <= 0 {
		return errors.New("health interval must be positive")
	}
	if g.Timeout <= 0 {
		return errors.New("health timeout must be positive")
	}
	if g.Successes < 1 {
		return errors.New("health successes must be at least 1")
	}
	return nil
}

// Result is the outcome of a gate.
type Result struct {
	Passed     bool   `json:"passed"`
	Kind       Kind   `json:"type"`
	Target     string `json:"target"`
	Attempts   int    `json:"attempts"`
	Successes  int    `json:"consecutive_successes"`
	Required   int    `json:"required_successes"`
	DurationMS int64  `json:"duration_ms"`
	// Reason says why the gate ended: "passed", a timeout with the last
	// failure, or what aborted it.
	Reason string    `json:"reason"`
	Last   []Attempt `json:"last_attempts"`
}

// Summary is one line for a failure message.
func (r Result) Summary() string {
	return fmt.Sprintf("health gate %s %s: %s (%d attempts, %d/%d consecutive successes, %d ms)",
		r.Kind, r.Target, r.Reason, r.Attempts, r.Successes, r.Required, r.DurationMS)
}

// Run runs the gate with prober p. abort, when not nil, is called after
// every failed attempt; a non-nil error ends the gate at once (the unit
// being checked died, say) and becomes the reason. Run returns when the gate
// passes, fails, or ctx ends; it never sleeps past the gate's timeout.
func Run(ctx context.Context, g Gate, p Prober, abort func(context.Context) error) Result {
	start := time.Now()
	deadline := start.Add(g.Timeout)
	res := Result{Kind: g.Check.Kind, Target: g.Check.Target(), Required: g.Successes}
	finish := func(passed bool, reason string) Result {
		res.Passed = passed
		res.Reason = reason
		res.DurationMS = time.Since(start).Milliseconds()
		return res
	}
	for {
		remaining := time.Until(deadline)
		per := g.Check.AttemptTimeout
		shortened := false
		if per > remaining {
			per, shortened = remaining, true
		}
		if per <= 0 {
			return finish(false, timeoutReason(g, res))
		}
		actx, cancel := context.WithTimeout(ctx, per)
		t0 := time.Now()
		a := p.Probe(actx)
		a.CutByGate = shortened && !a.OK && errors.Is(actx.Err(), context.DeadlineExceeded)
		cancel()
		res.Attempts++
		a.N = res.Attempts
		a.LatencyMS = time.Since(t0).Milliseconds()
		a.AtMS = t0.Sub(start).Milliseconds()
		res.Last = append(res.Last, a)
		if len(res.Last) > keepAttempts {
			res.Last = res.Last[len(res.Last)-keepAttempts:]
		}
		if a.OK {
			res.Successes++
			if res.Successes >= g.Successes {
				return finish(true, "passed")
			}
		} else {
			res.Successes = 0
			if abort != nil {
				if err := abort(ctx); err != nil {
					return finish(false, "aborted: "+err.Error())
				}
			}
		}
		if ctx.Err() != nil {
			return finish(false, "interrupted: "+ctx.Err().Error())
		}
		if time.Until(deadline) < g.Interval {
			return finish(false, timeoutReason(g, res))
		}
		timer := time.NewTimer(g.Interval)
		select {
		case <-ctx.Done():
			timer.Stop()
			return finish(false, "interrupted: "+ctx.Err().Error())
		case <-timer.C:
		}
	}
}

func timeoutReason(g Gate, res Result) string {
	reason := fmt.Sprintf("no %d consecutive successes within %s", g.Successes, g.Timeout)
	n := len(res.Last)
	if n == 0 {
		return reason
	}
	last := res.Last[n-1]
	if last.CutByGate {
		// Say what the service answered when it had the time to answer.
		for i := n - 2; i >= 0; i-- {
			if !res.Last[i].CutByGate {
				return reason + "; last complete attempt: " + res.Last[i].Detail +
					"; the final one was cut by the gate's timeout (" + last.Detail + ")"
			}
		}
	}
	return reason + "; last attempt: " + last.Detail
}
