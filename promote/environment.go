package promote

import (
	"context"
	"fmt"
	"time"
)

// Environment is a QA environment: one per project, kind and target, as
// long as it lives (a new build of a torn-down target brings it back).
type Environment struct {
	Project string
	Kind    Kind
	Target  string
	// Name is "qa/<env>", its overlay's folder below overlays/.
	Name string
	URL  string
	// BuildID and Image are the newest build's.
	BuildID string
	Image   string
	// CreatedAt is when its first build was accepted.
	CreatedAt time.Time
	// ActiveAt is its last activity: a new build, a click on one of its
	// builds, a Keep. projects[].qaTTL counts from it.
	ActiveAt time.Time
	// WarnedAt is when owners and QA were told it will expire (zero: not
	// since the last activity).
	WarnedAt time.Time
	// Teardown says why it was torn down ("" while it lives):
	// "branch-deleted", "tag-deleted", "expired" or "by <name> <slack:U…>".
	Teardown string
	// TornDownAt is when the teardown was asked.
	TornDownAt time.Time
	// Commit is the teardown's commit, once made ("" when there was no
	// folder left to remove).
	Commit string
	// Removed is set once the teardown is done in git.
	Removed bool
}

// Live reports whether the environment was not torn down.
func (e Environment) Live() bool { return e.Teardown == "" }

// EnvLimitError refuses a build for a new target when its project has
// projects[].maxQAEnvironments environments already.
type EnvLimitError struct {
	Limit int
	// Idle are the project's environments, idle longest first.
	Idle []Environment
}

func (e *EnvLimitError) Error() string {
	return fmt.Sprintf("the project has %d QA environments, its limit (projects[].maxQAEnvironments)", e.Limit)
}

// Environments keeps the QA environments (package promote/store).
type Environments interface {
	// ReserveEnvironment records e as active at now: a new environment, or
	// one that exists (alive or torn down, which brings it back), updated
	// with e's name, URL, build and image. A new or torn-down one is
	// refused with an *EnvLimitError when limit > 0 and the project has
	// limit live environments already; the count and the insert are one
	// step, so concurrent calls cannot pass the limit together.
	ReserveEnvironment(ctx context.Context, e Environment, limit int, now time.Time) (Environment, error)
	// CreateInEnvironment is Builds.Create that also reserves the new
	// build's environment (its Environment and URL) within limit, as
	// ReserveEnvironment does, in the same transaction: a build refused by
	// the limit is not stored. A build already stored (the same Key)
	// changes nothing.
	CreateInEnvironment(ctx context.Context, b Build, limit int, jobs ...Job) (stored Build, created bool, superseded []Build, err error)
	// Environment returns the environment of a project's kind and target,
	// or ErrNotFound.
	Environment(ctx context.Context, project string, kind Kind, target string) (Environment, error)
	// Environments lists a project's live environments (every project's
	// for ""), idle longest first.
	Environments(ctx context.Context, project string) ([]Environment, error)
	// FirstEnvironments is Environments, at most limit of them.
	FirstEnvironments(ctx context.Context, project string, limit int) ([]Environment, error)
	// CountEnvironments counts the live environments of each project (of
	// project alone unless it is ""); projects without any are left out.
	CountEnvironments(ctx context.Context, project string) (map[string]int, error)
	// EditEnvironment lets change edit an environment (not its key) under
	// a lock and enqueues jobs, atomically; an error from change changes
	// nothing. ErrNotFound when there is none.
	EditEnvironment(ctx context.Context, project string, kind Kind, target string,
		change func(*Environment) error, jobs ...Job) (Environment, error)
}

// EnvironmentRepo removes QA environments from the config repository
// (package gitops).
type EnvironmentRepo interface {
	// TearDownQA removes p's QA overlay e.Name in one commit carrying
	// Promotebot-Environment: <e.Name> and Promotebot-Teardown: <reason>,
	// once however often it is asked (since: when it was asked). Only a
	// folder the bot made for e's kind and target (its promotebot.dev/kind
	// and promotebot.dev/target annotations) is removed; any other is
	// refused with an error wrapping ErrNotOurs. A folder that is gone
	// already is no change: commit "" and no error.
	TearDownQA(ctx context.Context, p Project, e Environment, reason string, since time.Time) (commit string, err error)
}

// ErrNotOurs is a QA folder the bot did not make for that target: it is
// never removed.
var ErrNotOurs = NewPermanent("the QA folder was not made by promotebot for this target")

// ListedEnvironments bounds the environments an EnvironmentsView lists;
// the others are only counted.
const ListedEnvironments = 40

// EnvironmentsView is what `/promote envs <project>` shows.
type EnvironmentsView struct {
	Project Project
	// Environments are the live ones, idle longest first: the first
	// ListedEnvironments of them.
	Environments []Environment
	// Total counts the live ones, listed or not.
	Total int
	// TTL is projects[].qaTTL (0: environments do not expire).
	TTL time.Duration
}

// Expires is when e expires under ttl; zero when it does not.
func (e Environment) Expires(ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return e.ActiveAt.Add(ttl)
}
