package feedback

import (
	"fmt"
	"strings"
	"time"

	"github.com/promotebot/promotebot/promote"
)

// The triggers the templates of examples/argocd/notifications.yaml name in
// their body's "trigger" (their Argo CD triggers are on-promotebot-<name>).
const (
	triggerSyncSucceeded  = "sync-succeeded"
	triggerSyncFailed     = "sync-failed"
	triggerHealthDegraded = "health-degraded"
	triggerDeployed       = "deployed"
)

// Argo CD's values of status.operationState.phase, status.sync.status and
// status.health.status that the mapping reads.
const (
	phaseSucceeded = "Succeeded"
	phaseFailed    = "Failed"
	phaseError     = "Error"
	syncSynced     = "Synced"
	healthHealthy  = "Healthy"
	healthDegraded = "Degraded"
)

// appState is what the bot reads of an Argo CD Application, whether a
// notification's body told it (argoBody) or the API (apiApplication): one
// mapping serves both, so that they agree.
type appState struct {
	Name, Namespace string
	// RepoURL is spec.source.repoURL.
	RepoURL string
	// Path is spec.source.path; empty for a multi-source Application
	// (spec.sources), which the bot does not follow.
	Path string
	// Revision is status.sync.revision: the commit the live state was last
	// compared with (equal to it when Sync is Synced).
	Revision string
	// OperationRevision is status.operationState.syncResult.revision: the
	// commit the last sync applied.
	OperationRevision string
	// Sync is status.sync.status: Synced, OutOfSync, Unknown.
	Sync string
	// Health is status.health.status: Healthy, Progressing, Degraded,
	// Suspended, Missing, Unknown.
	Health string
	// HealthMessage is status.health.message (often empty).
	HealthMessage string
	// HealthSince is status.health.lastTransitionTime (Argo CD 2.11 and
	// later); zero when absent.
	HealthSince time.Time
	// Degraded are "<kind>/<name>: <message>" for each of
	// status.resources whose health is Degraded (Argo CD before 3.0 keeps
	// resource health there).
	Degraded []string
	// Phase is status.operationState.phase: Running, Terminating, Failed,
	// Error, Succeeded; empty before the first sync.
	Phase string
	// OperationMessage is status.operationState.message.
	OperationMessage string
	// FinishedAt is status.operationState.finishedAt.
	FinishedAt time.Time
}

// event reads the state as trigger tells it to: a notification's trigger,
// or "" for a state polled from the API, which is read as the trigger it
// would have fired (a failed sync first, then degraded health, then a
// sync). at is the time of the event when the state has none of its own.
// ignored says why a state is not recorded.
func (a appState) event(source, trigger string, at time.Time) (ev promote.ClusterEvent, ignored string) {
	object := a.Namespace + "/" + a.Name
	if trigger == "" {
		trigger = a.polledTrigger()
		if trigger == "" {
			return ev, fmt.Sprintf("Application %s: operation %q, sync %s, health %s: nothing to record yet",
				object, a.Phase, a.Sync, a.Health)
		}
	}
	var (
		status   promote.RolloutStatus
		revision string
		message  string
		when     time.Time
	)
	switch trigger {
	case triggerSyncFailed:
		if a.Phase != phaseFailed && a.Phase != phaseError {
			return ev, a.mismatch(object, trigger)
		}
		status, revision, when = promote.RolloutDegraded, first(a.OperationRevision, a.Revision), a.FinishedAt
		message = first(a.OperationMessage, a.healthMessage(), "sync "+a.Phase)
	case triggerHealthDegraded:
		if a.Health != healthDegraded {
			return ev, a.mismatch(object, trigger)
		}
		status, revision, when = promote.RolloutDegraded, a.liveRevision(), a.HealthSince
		message = first(a.healthMessage(), a.OperationMessage, "health Degraded")
	case triggerSyncSucceeded:
		switch {
		case a.Phase != phaseSucceeded && (a.Phase != "" || a.Sync != syncSynced):
			return ev, a.mismatch(object, trigger)
		case a.Health == healthHealthy && a.freshHealth():
			status, revision, when = promote.RolloutHealthy, a.liveRevision(), a.HealthSince
		default:
			status, revision, when = promote.RolloutSynced, first(a.OperationRevision, a.Revision), a.FinishedAt
		}
	case triggerDeployed:
		// The trigger's condition checked the health is not older than
		// the sync, where Argo CD tells when it changed.
		if a.Phase != phaseSucceeded || a.Health != healthHealthy {
			return ev, a.mismatch(object, trigger)
		}
		status, revision = promote.RolloutHealthy, a.liveRevision()
		when = a.HealthSince
		if when.IsZero() {
			when = a.FinishedAt
		}
	default:
		return ev, fmt.Sprintf("Application %s: unknown trigger %q", object, trigger)
	}
	if a.Path == "" {
		return ev, fmt.Sprintf("Application %s: no spec.source.path; multi-source Applications are not followed", object)
	}
	commit, ok := commitOf(revision)
	if !ok {
		return ev, fmt.Sprintf("Application %s: revision %q is not a git commit", object, revision)
	}
	if when.IsZero() {
		when = at
	}
	ev = promote.ClusterEvent{Source: source, Object: object, Path: a.Path, Revision: commit, Status: status, At: when}
	if status == promote.RolloutDegraded {
		ev.Message = clip(message)
	}
	return ev, ""
}

// polledTrigger is the trigger a polled state would have fired, "" for
// none (a sync running, health progressing after no sync, …).
func (a appState) polledTrigger() string {
	switch {
	case a.Phase == phaseFailed || a.Phase == phaseError:
		return triggerSyncFailed
	case a.Health == healthDegraded:
		return triggerHealthDegraded
	case a.Phase == phaseSucceeded || (a.Phase == "" && a.Sync == syncSynced):
		return triggerSyncSucceeded
	}
	return ""
}

func (a appState) mismatch(object, trigger string) string {
	return fmt.Sprintf("Application %s: trigger %s, but operation %q and health %s", object, trigger, a.Phase, a.Health)
}

// liveRevision is the commit the live state is built from: the compared
// revision while the Application is Synced, else the last sync's.
func (a appState) liveRevision() string {
	if a.Sync == syncSynced || a.OperationRevision == "" {
		return a.Revision
	}
	return a.OperationRevision
}

// freshHealth tells whether the health was assessed after the last sync
// finished. Argo CD writes a sync's success before it looks at the health
// again, so a Healthy read just then can be the previous revision's
// (argo-cd #9070). Without lastTransitionTime nothing tells, and the
// health is not trusted.
func (a appState) freshHealth() bool {
	if a.HealthSince.IsZero() {
		return a.Phase == "" // never synced by an operation: nothing it could predate
	}
	return a.FinishedAt.IsZero() || !a.HealthSince.Before(a.FinishedAt)
}

func (a appState) healthMessage() string {
	if a.HealthMessage != "" {
		return a.HealthMessage
	}
	return strings.Join(a.Degraded, "; ")
}

// sameRepo tells whether two repository URLs name the same repository, as
// Argo CD compares them: case, a trailing slash and ".git" aside.
func sameRepo(a, b string) bool {
	norm := func(u string) string {
		u = strings.ToLower(strings.TrimSpace(u))
		return strings.TrimSuffix(strings.TrimSuffix(u, "/"), ".git")
	}
	return norm(a) == norm(b)
}

// first returns the first of ss that is not empty.
func first(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// parseStamp reads one of Argo CD's times (RFC 3339); empty is zero.
func parseStamp(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s is not an RFC 3339 time: %w", field, err)
	}
	return t, nil
}
