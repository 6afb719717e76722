package promote

import (
	"context"
	"time"
)

// Rollback is a request to put an earlier production image back in place
// of a build's: an owner's (Roll back, /promote rollback) or autoRollback's.
// It is kept on the build it replaces.
type Rollback struct {
	// Image is the image restored: one that was in production before.
	Image string `json:"image"`
	// By is the owner's Slack user id; empty when autoRollback asked.
	By string `json:"by,omitempty"`
	// ByName is the owner's name as Slack knew it ("promotebot" for
	// autoRollback).
	ByName string `json:"byName"`
	// Reason is the owner's, optional; autoRollback's is the controller's
	// message.
	Reason string `json:"reason,omitempty"`
	// Auto is set when autoRollback asked.
	Auto bool `json:"auto,omitempty"`
	// At is when it was asked.
	At time.Time `json:"at"`
	// PullRequest is its pull request, in pull-request mode.
	PullRequest string `json:"pullRequest,omitempty"`
	// Commit is the production change, once it landed.
	Commit string `json:"commit,omitempty"`
	// Error says why it failed for good; an owner may then ask again.
	Error string `json:"error,omitempty"`
}

// Pending reports whether the rollback was asked and has not ended.
func (r *Rollback) Pending() bool { return r != nil && r.Commit == "" && r.Error == "" }

// RollbackChange is what the config repository commits for a rollback.
type RollbackChange struct {
	// Of is the build production runs now, whose image is replaced.
	Of Build
	// Image is the image restored.
	Image string
	// By is the owner; for autoRollback, Name "promotebot" and no ID.
	By Person
	// Reason is written as Promotebot-Reason when there is one.
	Reason string
	// At is when it was asked: the change cannot have landed before (it
	// bounds the search that makes it happen once).
	At time.Time
}

// ProductionChange is one change of a project's production image, as the
// config repository's history tells it.
type ProductionChange struct {
	Image  string
	Commit string
	At     time.Time
	// Build is the change's Promotebot-Build trailer, when it has one.
	Build string
	// RollbackOf is its Promotebot-Rollback-Of trailer, when it was a
	// rollback.
	RollbackOf string
}

// ErrProductionMoved is a rollback whose build production no longer runs:
// a later change replaced it first.
var ErrProductionMoved = NewPermanent("production no longer runs that build's image")

// ProductionRepo is the config repository's production side beyond
// promotions (package gitops): what production ran, and putting it back.
type ProductionRepo interface {
	// ProductionHistory lists the last changes of p's production image,
	// newest first, at most limit, from the config branch's history (so it
	// works after the store was restored from a backup).
	ProductionHistory(ctx context.Context, p Project, limit int) ([]ProductionChange, error)
	// Rollback sets p's production image back to r.Image, in place, with
	// the render check, committed straight to the config branch with
	// Promotebot-Rollback-Of, Promotebot-Image, Promoted-by and (when
	// given) Promotebot-Reason, exactly once however often it is asked. A
	// production overlay that no longer pins r.Of's image is
	// ErrProductionMoved. It returns the commit.
	Rollback(ctx context.Context, p Project, r RollbackChange) (commit string, err error)
	// RollbackBranch is Rollback onto branch (a pull request's head), built
	// on the config branch's tip.
	RollbackBranch(ctx context.Context, p Project, r RollbackChange, branch string) (PromotionCommit, error)
}

// RollbackOptions is what `/promote rollback <project>` offers: the build
// production runs, and the earlier production images it may go back to,
// newest first.
type RollbackOptions struct {
	Project Project
	// Current is the build production runs; nil when none is known.
	Current *Build
	// Choices are earlier production images, newest first, each once; the
	// image production runs is not among them.
	Choices []ProductionChange
}
