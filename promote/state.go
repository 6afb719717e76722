package promote

import "fmt"

// State is where a build is in its life; the names are a contract
// (docs/contracts.md, States).
type State string

// The states of docs/contracts.md.
const (
	StateReceived      State = "received"
	StateDeploying     State = "deploying"
	StateQAReady       State = "qa-ready"
	StateQAFailed      State = "qa-failed"
	StateApproved      State = "approved"
	StateRejected      State = "rejected"
	StatePromoting     State = "promoting"
	StatePromoted      State = "promoted"
	StatePromoteFailed State = "promote-failed"
	StateClosed        State = "closed"
	StateSuperseded    State = "superseded"
	StateRolledBack    State = "rolled-back"
)

// States lists every state, in the order of the flow.
var States = []State{
	StateReceived, StateDeploying, StateQAReady, StateQAFailed, StateApproved, StateRejected,
	StatePromoting, StatePromoted, StatePromoteFailed, StateClosed, StateSuperseded, StateRolledBack,
}

// Event is something that happens to a build.
type Event string

// The events that move a build between states.
const (
	EventDeploy        Event = "deploy"         // the QA deploy job starts
	EventDeployed      Event = "deployed"       // the QA overlay was pushed
	EventDeployFailed  Event = "deploy-failed"  // the QA deploy failed for good
	EventApproved      Event = "approved"       // the approval policy is now met
	EventRejected      Event = "rejected"       // a QA member rejected the build
	EventPromote       Event = "promote"        // an owner asked to deploy to production
	EventPromoted      Event = "promoted"       // production changed in git
	EventPromoteFailed Event = "promote-failed" // the promotion failed for good
	EventClose         Event = "close"          // an owner closed the build
	EventSupersede     Event = "supersede"      // a newer build for the same target arrived
	EventRolledBack    Event = "rolled-back"    // a rollback put an earlier image back in production
	EventRestored      Event = "restored"       // a rollback put this build's image back in production
)

// Events lists every event.
var Events = []Event{
	EventDeploy, EventDeployed, EventDeployFailed, EventApproved, EventRejected,
	EventPromote, EventPromoted, EventPromoteFailed, EventClose, EventSupersede, EventRolledBack, EventRestored,
}

// transitions is the whole state machine: from a state, what each event
// leads to. A pair that is not listed is illegal.
var transitions = map[State]map[Event]State{
	StateReceived: {
		EventDeploy:    StateDeploying,
		EventClose:     StateClosed,
		EventSupersede: StateSuperseded,
	},
	StateDeploying: {
		EventDeployed:     StateQAReady,
		EventDeployFailed: StateQAFailed,
		EventClose:        StateClosed,
		EventSupersede:    StateSuperseded,
	},
	StateQAReady: {
		EventApproved:  StateApproved,
		EventRejected:  StateRejected,
		EventClose:     StateClosed,
		EventSupersede: StateSuperseded,
	},
	StateQAFailed: {
		EventDeploy:    StateDeploying, // an operator retries the deploy
		EventClose:     StateClosed,
		EventSupersede: StateSuperseded,
	},
	StateApproved: {
		EventRejected:  StateRejected, // a later rejection blocks deploy
		EventPromote:   StatePromoting,
		EventClose:     StateClosed,
		EventSupersede: StateSuperseded,
	},
	StateRejected: {
		EventClose:     StateClosed,
		EventSupersede: StateSuperseded,
	},
	StatePromoting: {
		EventPromoted:      StatePromoted,
		EventPromoteFailed: StatePromoteFailed,
		EventClose:         StateClosed, // closes the open pull request
	},
	StatePromoteFailed: {
		EventPromote:   StatePromoting, // an owner tries again
		EventClose:     StateClosed,
		EventSupersede: StateSuperseded,
	},
	StateClosed: {
		// Pull-request mode: the merge was already under way (or a person
		// merged) when the owner closed the build. Production changed, so
		// the record says so.
		EventPromoted: StatePromoted,
	},
	StatePromoted: {
		EventRolledBack: StateRolledBack,
	},
	StateRolledBack: {
		EventRestored: StatePromoted, // a later rollback put its image back
	},
	// superseded is final.
}

// TransitionError is an event that is not allowed in a build's state.
type TransitionError struct {
	From  State
	Event Event
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("a build that is %s cannot take %q", e.From, e.Event)
}

// Next returns the state event leads to from s, or a *TransitionError.
func Next(s State, e Event) (State, error) {
	to, ok := transitions[s][e]
	if !ok {
		return s, &TransitionError{From: s, Event: e}
	}
	return to, nil
}

// Final reports whether a build in s is done: it can no longer be deployed,
// closed or superseded. (Production's later history still moves a promoted
// build: a rollback; and a closed one may learn that its pull request had
// been merged: see transitions.)
func (s State) Final() bool { return !s.Active() && s != StatePromoting }

// Active reports whether a build in s still has work or decisions ahead and
// so can be superseded by a newer build.
func (s State) Active() bool {
	_, ok := transitions[s][EventSupersede]
	return ok
}
