package ansible

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// counter is a toy module on the lifecycle: it raises a number to a wanted
// value, and each stage writes its name to a trace.
type counterOpts struct {
	Want int `json:"want"`
}

type counterMachine struct {
	value   int
	trace   []string
	bumpOn  string // another run sets value to Want while this one waits for the lock
	failAt  string // the stage that fails
	opened  int
	closed  int
	locked  bool
	applied int
}

type counterResult struct {
	Value  int    `json:"value"`
	Trace  string `json:"trace"`
	Locked bool   `json:"locked"`
}

func counterStages(m *counterMachine) Stages[counterOpts, int, int, int, int] {
	step := func(name string) error {
		m.trace = append(m.trace, name)
		if m.failAt == name {
			return errors.New(name + " failed")
		}
		return nil
	}
	return Stages[counterOpts, int, int, int, int]{
		Resolve: func(_ *Context, o *counterOpts) (int, error) {
			if o.Want < 0 {
				return 0, fmt.Errorf("want must be >= 0, got %d", o.Want)
			}
			return o.Want, step("resolve")
		},
		Open: func(ctx context.Context, _ int) (context.Context, func(), error) {
			m.opened++
			return ctx, func() { m.closed++ }, step("open")
		},
		Observe: func(context.Context, int) (int, error) { return m.value, step("observe") },
		Plan:    func(want, value int) (int, error) { return want - value, step("plan") },
		Changes: func(_, delta int) bool { return delta != 0 },
		Lock: func(context.Context, int) (func(), error) {
			if err := step("lock"); err != nil {
				return nil, err
			}
			m.locked = true
			if m.bumpOn == "lock" {
				m.value += 1000
			}
			return func() { m.locked = false; m.trace = append(m.trace, "unlock") }, nil
		},
		Apply: func(_ context.Context, _ int, _ int, delta int) (int, error) {
			if !m.locked {
				return 0, errors.New("applied without the lock")
			}
			m.applied++
			if err := step("apply"); err != nil {
				return 0, err
			}
			m.value += delta
			return delta, nil
		},
		Report: func(actx *Context, run *Run[int, int, int, int]) (*Result, error) {
			m.trace = append(m.trace, "report")
			return &Result{
				Changed: run.Applied && run.Err == nil,
				Values:  counterResult{Value: run.Obs + run.Done, Trace: strings.Join(m.trace, " "), Locked: run.Locked},
			}, run.Err
		},
	}
}

func counterModule(m *counterMachine) Module[counterOpts] {
	return Module[counterOpts]{Name: "counter", SupportsCheckMode: true, Run: Lifecycle(counterStages(m))}
}

func TestLifecycleOrder(t *testing.T) {
	for _, tc := range []struct {
		name, args string
		m          counterMachine
		trace      string
		changed    bool
		msg        string
		value      float64
	}{
		{"apply", `{"want": 3}`, counterMachine{}, "resolve open observe plan lock observe plan apply unlock report", true, "", 3},
		{"no change: no lock", `{"want": 3}`, counterMachine{value: 3}, "resolve open observe plan report", false, "", 3},
		{"check mode: the first plan", `{"want": 3, "_ansible_check_mode": true}`, counterMachine{}, "resolve open observe plan report", false, "", 0},
		{"done by another run meanwhile", `{"want": 1000}`, counterMachine{bumpOn: "lock"}, "resolve open observe plan lock observe plan unlock report", false, "", 1000},
		{"planned again under the lock", `{"want": 5}`, counterMachine{bumpOn: "lock"}, "resolve open observe plan lock observe plan apply unlock report", true, "", 5},
		{"lock fails: reported", `{"want": 3}`, counterMachine{failAt: "lock"}, "resolve open observe plan lock report", false, "lock failed", 0},
		{"apply fails: reported", `{"want": 3}`, counterMachine{failAt: "apply"}, "resolve open observe plan lock observe plan apply unlock report", false, "apply failed", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.m
			r := execArgs(t, counterModule(&m), tc.args)
			assert.Equal(t, tc.trace, r.out["trace"])
			assert.Equal(t, tc.changed, r.out["changed"])
			assert.Equal(t, tc.value, r.out["value"])
			if tc.msg != "" {
				assert.Equal(t, tc.msg, r.out["msg"])
				assert.Equal(t, 1, r.status)
			} else {
				assert.Equal(t, 0, r.status, r.out["msg"])
			}
			assert.Equal(t, 1, m.opened)
			assert.Equal(t, 1, m.closed, "what Open set up is closed")
			assert.False(t, m.locked, "the lock is released")
		})
	}
}

func TestLifecycleEarlyErrorsHaveNoValues(t *testing.T) {
	for stage, want := range map[string]string{"resolve": "resolve failed", "open": "open failed", "observe": "observe failed", "plan": "plan failed"} {
		m := counterMachine{failAt: stage}
		r := execArgs(t, counterModule(&m), `{"want": 3}`)
		assert.Equal(t, want, r.out["msg"], stage)
		assert.NotContains(t, r.out, "trace", stage)
		assert.Equal(t, 0, m.applied, stage)
	}
	m := counterMachine{}
	r := execArgs(t, counterModule(&m), `{"want": -1}`)
	assert.Equal(t, "want must be >= 0, got -1", r.out["msg"])
	assert.Empty(t, m.trace, "refused before anything is looked at")
}

func TestLifecycleFailureStaysAFailure(t *testing.T) {
	m := counterMachine{failAt: "apply"}
	s := counterStages(&m)
	s.Report = func(*Context, *Run[int, int, int, int]) (*Result, error) { return &Result{}, nil }
	r := execArgs(t, Module[counterOpts]{Name: "c", Run: Lifecycle(s)}, `{"want": 2}`)
	assert.Equal(t, 1, r.status)
	assert.Equal(t, "apply failed", r.out["msg"])
}

func TestLifecycleDeclaredWrongly(t *testing.T) {
	s := counterStages(&counterMachine{})
	s.Lock = nil
	r := execArgs(t, Module[counterOpts]{Name: "c", Run: Lifecycle(s)}, `{"want": 2}`)
	assert.Equal(t, "module declared wrongly: a lifecycle stage other than Open is nil", r.out["msg"])
}

func TestTypedValues(t *testing.T) {
	m := Module[struct{}]{Name: "t", Run: func(*Context, *struct{}) (*Result, error) {
		return &Result{Values: counterResult{Value: 7, Trace: "x"}}, nil
	}}
	r := execArgs(t, m, `{}`)
	assert.Equal(t, 7.0, r.out["value"])
	assert.Equal(t, false, r.out["locked"])

	got, err := ValuesMap(counterResult{Value: 7})
	assert.NoError(t, err)
	assert.Equal(t, map[string]any{"value": int64(7), "trace": "", "locked": false}, got)

	m = Module[struct{}]{Name: "t", Run: func(*Context, *struct{}) (*Result, error) {
		return &Result{Values: []string{"not", "an", "object"}}, nil
	}}
	r = execArgs(t, m, `{}`)
	assert.Equal(t, 1, r.status)
	assert.Equal(t, "module t returned values that are not a JSON object: json: cannot unmarshal array into Go value of type map[string]interface {}", r.out["msg"])
}
