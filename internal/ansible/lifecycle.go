package ansible

import (
	"context"
	"errors"
)

// Stages are the pieces of the one lifecycle every module runs in. The
// runtime, not the module, owns their order:
//
//	Resolve → Open → Observe → Plan ─┬─ check mode, or nothing to change ─→ Report
//	                                 └─ Lock → Observe → Plan ─┬─ nothing left to change ─→ Report
//	                                                           └─ Apply → Report
//
// so that check mode shows exactly the plan a real run would start from,
// and a real run acts only on what it saw while holding the lock: another
// run may have done the work while this one waited for it.
type Stages[O, Req, Obs, Plan, Done any] struct {
	// Resolve turns the options into the request: every refusal of bad
	// input, before anything on the machine is changed.
	Resolve func(actx *Context, o *O) (Req, error)
	// Open, optional, returns the context the later stages run under (a
	// deadline) and sets up what they share (a D-Bus connection); its
	// close function runs when the run ends.
	Open func(ctx context.Context, req Req) (context.Context, func(), error)
	// Observe reads the machine and never writes to it.
	Observe func(ctx context.Context, req Req) (Obs, error)
	// Plan is pure: the same request and observation give the same plan.
	Plan func(req Req, obs Obs) (Plan, error)
	// Changes says whether applying the plan would change anything; when
	// it would not, the run reports without taking the lock.
	Changes func(req Req, p Plan) bool
	// Lock serialises the real runs on the same thing.
	Lock func(ctx context.Context, req Req) (unlock func(), err error)
	// Apply carries out the plan. Done says what it did, which on failure
	// is less than the plan.
	Apply func(ctx context.Context, req Req, obs Obs, p Plan) (Done, error)
	// Report turns the run into the task's result. Its error is the task's
	// failure: run.Err, or a message that explains it. A run that failed
	// fails the task even when Report returns no error.
	Report func(actx *Context, run *Run[Req, Obs, Plan, Done]) (*Result, error)
}

// Run is what one run reached, for Report.
type Run[Req, Obs, Plan, Done any] struct {
	Req  Req
	Obs  Obs  // the last observation
	Plan Plan // the plan made from it
	// Locked: Obs and Plan were made again under the lock.
	Locked bool
	// Applied: Apply ran, and Done holds what it did.
	Applied bool
	Done    Done
	// Err ended the run after the first plan (taking the lock, the second
	// look, Apply); nil when the run succeeded.
	Err error
}

// Lifecycle is the Module.Run that calls s's stages in the one order.
// Errors before the first plan fail the task without return values:
// nothing was looked at, or nothing can be said of it.
func Lifecycle[O, Req, Obs, Plan, Done any](s Stages[O, Req, Obs, Plan, Done]) func(*Context, *O) (*Result, error) {
	return func(actx *Context, o *O) (*Result, error) {
		if s.Resolve == nil || s.Observe == nil || s.Plan == nil || s.Changes == nil || s.Lock == nil || s.Apply == nil || s.Report == nil {
			return nil, errors.New("module declared wrongly: a lifecycle stage other than Open is nil")
		}
		req, err := s.Resolve(actx, o)
		if err != nil {
			return nil, err
		}
		ctx := context.Background()
		if s.Open != nil {
			var closeRun func()
			if ctx, closeRun, err = s.Open(ctx, req); err != nil {
				return nil, err
			}
			defer closeRun()
		}
		run := &Run[Req, Obs, Plan, Done]{Req: req}
		if run.Obs, err = s.Observe(ctx, req); err != nil {
			return nil, err
		}
		if run.Plan, err = s.Plan(req, run.Obs); err != nil {
			return nil, err
		}
		if !actx.CheckMode && s.Changes(req, run.Plan) {
			run.Err = lockedRun(ctx, s, run)
		}
		res, err := s.Report(actx, run)
		if err == nil && run.Err != nil {
			err = run.Err
		}
		return res, err
	}
}

// lockedRun takes the lock, looks and plans again, and applies what is
// still to be done.
func lockedRun[O, Req, Obs, Plan, Done any](ctx context.Context, s Stages[O, Req, Obs, Plan, Done], run *Run[Req, Obs, Plan, Done]) error {
	unlock, err := s.Lock(ctx, run.Req)
	if err != nil {
		return err
	}
	defer unlock()
	obs, err := s.Observe(ctx, run.Req)
	if err != nil {
		return err
	}
	p, err := s.Plan(run.Req, obs)
	if err != nil {
		return err
	}
	run.Obs, run.Plan, run.Locked = obs, p, true
	if !s.Changes(run.Req, p) {
		return nil
	}
	run.Done, err = s.Apply(ctx, run.Req, obs, p)
	run.Applied = true
	return err
}
