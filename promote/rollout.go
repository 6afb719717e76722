package promote

import (
	"context"
	"time"
)

// RolloutStatus is what the cluster reported of a build's commit in one
// environment (docs/contracts.md, Cluster feedback).
type RolloutStatus string

// The statuses of a rollout, in the order they usually come.
const (
	// RolloutPending: committed; no controller has reported it yet.
	RolloutPending RolloutStatus = "pending"
	// RolloutSynced: a controller applied a revision that holds the build.
	RolloutSynced RolloutStatus = "synced"
	// RolloutHealthy: it runs and the controller finds it healthy.
	RolloutHealthy RolloutStatus = "healthy"
	// RolloutDegraded: the sync failed or the workload is unhealthy; the
	// controller's message says why.
	RolloutDegraded RolloutStatus = "degraded"
)

// Rollout is the record of one build's commit in one environment.
type Rollout struct {
	Status RolloutStatus `json:"status"`
	// Revision is the config-repository commit the status was reported for.
	Revision string `json:"revision,omitempty"`
	// Message is the controller's, for a degraded rollout.
	Message string `json:"message,omitempty"`
	// At is when the status was recorded.
	At time.Time `json:"at"`
	// Since is when the build's commit was made (the rollout began).
	Since time.Time `json:"since"`
	// Commit, when set, is the commit the rollout began with, when it is
	// not the build's own (a rollback that restored the build's image).
	Commit string `json:"commit,omitempty"`
	// Reported is the controller's own time for the event that set the
	// status, when it sent one: an event reported earlier is out of order.
	Reported time.Time `json:"reported,omitzero"`
	// TimedOut is set once rollout.timeout passed without a healthy signal.
	TimedOut bool `json:"timedOut,omitempty"`
	// AutoRestored is set on a production rollout that an automatic
	// rollback began: autoRollback does not act on it again.
	AutoRestored bool `json:"autoRestored,omitempty"`
	// Steps are the statuses it went through, oldest first.
	Steps []RolloutStep `json:"steps,omitempty"`
}

// RolloutStep is one status of a rollout, with when and why.
type RolloutStep struct {
	Status   RolloutStatus `json:"status"`
	Revision string        `json:"revision,omitempty"`
	Message  string        `json:"message,omitempty"`
	Source   string        `json:"source,omitempty"` // "flux", "argocd", "argocd-api"
	At       time.Time     `json:"at"`
}

// maxRolloutSteps bounds a rollout's steps: a workload that flaps between
// healthy and degraded keeps its first steps and its latest ones.
const maxRolloutSteps = 20

// Rollouts are a build's rollout records: QA once its overlay was
// committed, production once its promotion was.
type Rollouts struct {
	QA         *Rollout `json:"qa,omitempty"`
	Production *Rollout `json:"production,omitempty"`
}

// RolloutEnv names the environment a rollout record is for.
type RolloutEnv string

// The two environments a build rolls out to.
const (
	RolloutQA         RolloutEnv = "qa"
	RolloutProduction RolloutEnv = "production"
)

// Of returns the record for env, nil when there is none.
func (r Rollouts) Of(env RolloutEnv) *Rollout {
	if env == RolloutProduction {
		return r.Production
	}
	return r.QA
}

// ClusterEvent is what Argo CD or Flux told the bot about one object they
// reconcile: the config-repository path it is built from, the revision
// they applied, and what became of it.
type ClusterEvent struct {
	// Source is "flux", "argocd" (its notifications) or "argocd-api"
	// (polling).
	Source string
	// Object names the controller's object, for logs: a Kustomization
	// "flux-system/hello-qa", an Application "argocd/hello-qa-feature-x".
	Object string
	// Path is the config-repository folder the object reconciles, relative
	// to the repository root ("apps/hello/overlays/qa", "./apps/hello").
	Path string
	// Revision is the config-repository commit (40 hex digits).
	Revision string
	// Status is synced, healthy or degraded; never pending.
	Status RolloutStatus
	// Message is the controller's, kept for degraded.
	Message string
	// At is the controller's time for the event; zero when it sent none.
	At time.Time
}

// Observation is what the bot made of a ClusterEvent.
type Observation struct {
	// Outcome is "applied" (a rollout record changed), "repeat" (nothing
	// new), "stale" (an older revision or an older report), "pending"
	// (the revision does not hold a build there yet), or "ignored" (a path
	// the bot does not deploy to).
	Outcome string `json:"outcome"`
	// Builds are the builds whose records changed.
	Builds []string `json:"builds"`
}

// The outcomes of an Observation (and the metric's outcome label).
const (
	OutcomeApplied = "applied"
	OutcomeRepeat  = "repeat"
	OutcomeStale   = "stale"
	OutcomePending = "pending"
	OutcomeIgnored = "ignored"
)

// Observer takes cluster events in (Service.Observe): the event endpoints
// and the Argo CD poller hand it what they decoded.
type Observer interface {
	Observe(ctx context.Context, ev ClusterEvent) (Observation, error)
}

// Revisions answers what a revision of the config repository holds
// (package gitops). Both fetch a revision the clone does not have yet; a
// revision the remote does not have either is an error wrapping
// ErrUnknownRevision.
type Revisions interface {
	// Contains reports whether commit is revision or one of its ancestors.
	Contains(ctx context.Context, revision, commit string) (bool, error)
	// Pins reports whether, at revision, the overlay of env ("qa/<env>"
	// or "production") of project p sets the project's image to image.
	Pins(ctx context.Context, p Project, revision, env, image string) (bool, error)
}

// ErrUnknownRevision is a revision neither the clone nor the remote has.
var ErrUnknownRevision = NewPermanent("unknown revision")
