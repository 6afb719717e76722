package promote

import (
	"context"
	"errors"
	"time"
)

// Transition is one recorded move of a build between states.
type Transition struct {
	From, To State
	Event    Event
	At       time.Time
}

// Builds keeps builds and their state history. Every change is atomic with
// the jobs it enqueues, so accepted work is never lost nor done twice.
type Builds interface {
	// Create stores b as received, with jobs, in one transaction, assigning
	// its ID (time-ordered, URL-safe) and times. If a build with the same Key
	// exists it returns that one, created false, and stores nothing. Older
	// active builds of the same project, kind and target are superseded in
	// the same transaction (state superseded, SupersededBy the new id) and
	// returned. The target's environment, when one is recorded
	// (ReserveEnvironment), comes to name the new build, its name, URL and
	// image. Jobs without a BuildID get the new build's id; a zero RunAt
	// is due at once. Each superseded build also gets the JobNotify jobs, so
	// that its messages come to say it was superseded.
	Create(ctx context.Context, b Build, jobs ...Job) (stored Build, created bool, superseded []Build, err error)
	// Get returns a build, or ErrNotFound.
	Get(ctx context.Context, id string) (Build, error)
	// Apply moves a build by ev under a row lock: it computes Next, lets change
	// edit the build's other fields, stores it, records the Transition and
	// enqueues jobs, atomically. An illegal event returns a *TransitionError
	// and changes nothing; so does an error from change.
	Apply(ctx context.Context, id string, ev Event, change func(*Build) error, jobs ...Job) (Build, error)
	// Edit lets change edit a build's fields other than its identity and
	// state, under a row lock, and enqueues jobs, atomically; no transition
	// is recorded.
	Edit(ctx context.Context, id string, change func(*Build) error, jobs ...Job) (Build, error)
	// History returns a build's transitions, oldest first.
	History(ctx context.Context, id string) ([]Transition, error)
	// Find lists a project's builds in any of states, newest first, at most
	// limit of them.
	Find(ctx context.Context, project string, states []State, limit int) ([]Build, error)
	// FindTarget lists the builds of one project, kind and target in any
	// of states, newest first, at most limit of them: what Find would give
	// filtered to the target, however many builds the project has.
	FindTarget(ctx context.Context, project string, kind Kind, target string, states []State, limit int) ([]Build, error)
	// CountByState counts builds in each state; states without builds are
	// left out.
	CountByState(ctx context.Context) (map[State]int, error)
}

// Approvals keeps QA verdicts: one per user and build.
type Approvals interface {
	// AddApproval records a verdict and enqueues jobs (as Create does), in
	// one transaction; a second verdict by the same user on the same build
	// is refused with added false and changes nothing.
	AddApproval(ctx context.Context, a Approval, jobs ...Job) (added bool, err error)
	// Approvals lists a build's verdicts, oldest first.
	Approvals(ctx context.Context, buildID string) ([]Approval, error)
}

// Messages keeps where the Slack messages about each build are.
type Messages interface {
	// SaveMessage records a posted message. If one is recorded for the same
	// build, role and recipient, it is kept and returned with added false.
	SaveMessage(ctx context.Context, m Message) (stored Message, added bool, err error)
	// Messages lists a build's messages, oldest first.
	Messages(ctx context.Context, buildID string) ([]Message, error)
}

// ClickMemory is how long a handled click is remembered: well beyond the
// 5 minutes in which Slack's signature on it is accepted, so that a
// captured request cannot act again while it still passes the check.
const ClickMemory = time.Hour

// Clicks remembers the Slack clicks already handled, so that one signed
// request acts once: replicas share the record, and it survives restarts.
type Clicks interface {
	// FirstClick records the click key as handled at now and reports
	// whether it is the first time; of concurrent calls with one key, one
	// alone is first. Records older than ClickMemory are forgotten.
	FirstClick(ctx context.Context, key string, now time.Time) (first bool, err error)
}

// ErrLeaseLost is returned when a worker ends a job whose lease it no longer
// holds (it expired and another worker claimed the job).
var ErrLeaseLost = errors.New("job lease lost")

// Jobs is the durable queue of pending work.
type Jobs interface {
	// Claim leases the oldest due job to worker until now+lease; ok is false
	// when none is due. Two workers never hold the same job at once.
	Claim(ctx context.Context, worker string, lease time.Duration, now time.Time) (j Job, ok bool, err error)
	// Extend moves the end of a held lease to until (a heartbeat while the
	// job runs); ErrLeaseLost when the worker no longer holds it.
	Extend(ctx context.Context, id int64, worker string, until time.Time) error
	// Complete removes a job the worker holds.
	Complete(ctx context.Context, id int64, worker string) error
	// Retry releases a held job to run again at at, counting the attempt.
	Retry(ctx context.Context, id int64, worker string, at time.Time, reason string) error
	// Postpone releases a held job to run again at at without counting an
	// attempt: it waits on something outside (GitHub's checks, a review).
	Postpone(ctx context.Context, id int64, worker string, at time.Time, reason string) error
	// Hurry makes the waiting (not running) jobs of kind for a build due
	// now, and reports whether there was one.
	Hurry(ctx context.Context, buildID string, kind JobKind) (bool, error)
	// Fail ends a held job for good, keeping the reason.
	Fail(ctx context.Context, id int64, worker, reason string) error
	// Pending counts the jobs not yet completed or failed.
	Pending(ctx context.Context) (int, error)
}

// Replicas are the bot's processes sharing one store (several with
// PostgreSQL): each beats, independently of its work, and the jobs of one
// whose heartbeat stopped are taken up after a short grace instead of when
// each job's lease ends. A job's own lease stays what keeps two replicas
// from running it at once.
type Replicas interface {
	// Beat records that replica is alive at now.
	Beat(ctx context.Context, replica string, now time.Time) error
	// ReleaseDead ends the leases held by replicas (a lease's holder is
	// "<replica>/<n>") whose last beat is older than now-grace, so that
	// their jobs can be claimed at once; it returns how many.
	ReleaseDead(ctx context.Context, grace time.Duration, now time.Time) (int, error)
	// Leave forgets replica's heartbeat (a graceful shutdown).
	Leave(ctx context.Context, replica string) error
}

// Store is everything promotebot keeps: embedded SQLite by default,
// PostgreSQL for several replicas (package promote/store).
type Store interface {
	Builds
	Approvals
	Messages
	Jobs
	Clicks
	Environments
	Replicas
	// Ping tells whether the store answers (for /readyz).
	Ping(ctx context.Context) error
	// Close releases the store.
	Close() error
}
