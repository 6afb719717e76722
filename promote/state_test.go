package promote

import (
	"errors"
	"testing"
)

// TestTransitionsExhaustive lists every (state, event) pair: the allowed
// ones with where they lead, every other pair must be refused.
func TestTransitionsExhaustive(t *testing.T) {
	allowed := map[State]map[Event]State{
		StateReceived:      {EventDeploy: StateDeploying, EventClose: StateClosed, EventSupersede: StateSuperseded},
		StateDeploying:     {EventDeployed: StateQAReady, EventDeployFailed: StateQAFailed, EventClose: StateClosed, EventSupersede: StateSuperseded},
		StateQAReady:       {EventApproved: StateApproved, EventRejected: StateRejected, EventClose: StateClosed, EventSupersede: StateSuperseded},
		StateQAFailed:      {EventDeploy: StateDeploying, EventClose: StateClosed, EventSupersede: StateSuperseded},
		StateApproved:      {EventRejected: StateRejected, EventPromote: StatePromoting, EventClose: StateClosed, EventSupersede: StateSuperseded},
		StateRejected:      {EventClose: StateClosed, EventSupersede: StateSuperseded},
		StatePromoting:     {EventPromoted: StatePromoted, EventPromoteFailed: StatePromoteFailed, EventClose: StateClosed},
		StatePromoteFailed: {EventPromote: StatePromoting, EventClose: StateClosed, EventSupersede: StateSuperseded},
		StatePromoted:      {EventRolledBack: StateRolledBack},
		StateClosed:        {EventPromoted: StatePromoted},
		StateSuperseded:    {},
		StateRolledBack:    {EventRestored: StatePromoted},
	}
	if len(allowed) != len(States) {
		t.Fatalf("table covers %d states, there are %d", len(allowed), len(States))
	}
	for _, s := range States {
		for _, e := range Events {
			t.Run(string(s)+"/"+string(e), func(t *testing.T) {
				got, err := Next(s, e)
				want, ok := allowed[s][e]
				if ok {
					if err != nil || got != want {
						t.Fatalf("Next(%s, %s) = %s, %v; want %s", s, e, got, err, want)
					}
					return
				}
				var te *TransitionError
				if !errors.As(err, &te) || te.From != s || te.Event != e || got != s {
					t.Fatalf("Next(%s, %s) = %s, %v; want a TransitionError and no move", s, e, got, err)
				}
			})
		}
	}
}

func TestFinalAndActive(t *testing.T) {
	for _, s := range States {
		final := s == StatePromoted || s == StateClosed || s == StateSuperseded || s == StateRolledBack
		if s.Final() != final {
			t.Errorf("%s.Final() = %t", s, s.Final())
		}
		// A build being promoted is not superseded: its pull request is in flight.
		active := !final && s != StatePromoting
		if s.Active() != active {
			t.Errorf("%s.Active() = %t", s, s.Active())
		}
	}
	if msg := (&TransitionError{From: StatePromoted, Event: EventPromote}).Error(); msg != `a build that is promoted cannot take "promote"` {
		t.Errorf("message %q", msg)
	}
}
