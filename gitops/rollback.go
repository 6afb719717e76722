package gitops

import (
	"context"

	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/gitops/overlay"
	"github.com/promotebot/promotebot/gitops/trailer"
	"github.com/promotebot/promotebot/promote"
)

var _ promote.ProductionRepo = (*ConfigRepo)(nil)

// Rollback implements promote.ProductionRepo: the production overlay's
// image entry is set back to r.Image, in place, and committed to the config
// branch with the Promotebot-Rollback-Of, -Image, -Project and
// -Environment trailers, Promoted-by and, when given, Promotebot-Reason.
// It is made at most once: a commit since r.At that carries
// Promotebot-Rollback-Of: r.Of.ID for production is the rollback, landed
// by an earlier attempt, and is returned. A production overlay that pins
// neither r.Of.Image nor r.Image is promote.ErrProductionMoved, and nothing
// is committed; one that pins r.Image already needs no commit, and the
// commit it is on is returned.
func (c *ConfigRepo) Rollback(ctx context.Context, p promote.Project, r promote.RollbackChange) (string, error) {
	edit, err := rollback(p, r, nil)
	if err != nil {
		return "", err
	}
	once := clone.Once{Since: r.At, Trailers: []trailer.Trailer{
		{Key: trailer.RollbackOf, Value: r.Of.ID},
		{Key: trailer.Environment, Value: trailer.Production},
	}}
	res, err := c.repo.ApplyOnce(ctx, once, edit)
	if err != nil {
		return "", err
	}
	if res.Commit == "" {
		return res.Base, nil
	}
	return res.Commit, nil
}

// RollbackBranch implements promote.ProductionRepo: the same change as
// Rollback, pushed to branch, rebuilt on the config branch's tip; Unchanged
// when production runs r.Image already.
func (c *ConfigRepo) RollbackBranch(ctx context.Context, p promote.Project, r promote.RollbackChange,
	branch string) (promote.PromotionCommit, error) {
	var diff string
	edit, err := rollback(p, r, &diff)
	if err != nil {
		return promote.PromotionCommit{}, err
	}
	res, err := c.repo.ApplyToBranch(ctx, branch, edit)
	if err != nil {
		return promote.PromotionCommit{}, err
	}
	return branchCommit(res, diff), nil
}

// rollback is the production edit of a rollback with its trailers; diff,
// when not nil, receives what it does to the rendered manifests. An image
// the project may not deploy, or a rollback of no build, is the caller's
// mistake (promote.ErrInvalid).
func rollback(p promote.Project, r promote.RollbackChange, diff *string) (clone.Edit, error) {
	meta := overlay.Meta{RollbackOf: r.Of.ID, PromotedBy: trailer.Person(r.By.Name, r.By.ID), Reason: r.Reason}
	edit, err := overlay.RollbackImage(p, r.Of.Image, r.Image, meta, diff)
	if err != nil {
		return nil, promote.Invalid(err)
	}
	return edit, nil
}
