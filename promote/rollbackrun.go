package promote

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// historyDepth is how many production changes a rollback looks back on.
const historyDepth = 20

// autoName is who asks an automatic rollback, in messages and trailers.
const autoName = "promotebot"

// errRollbackMoved ends an Edit whose build moved on since it was read.
var errRollbackMoved = errors.New("the build moved on meanwhile")

// rollbackBy names who asked a rollback, for messages.
func rollbackBy(r *Rollback) string {
	switch {
	case r == nil:
		return "someone"
	case r.Auto:
		return autoName + " (autoRollback)"
	case r.By != "":
		return "<@" + r.By + ">"
	}
	return Plain(r.ByName)
}

// productionSince is when production began to run b's image: its last
// production commit.
func productionSince(b Build) time.Time {
	if r := b.Rollout.Production; r != nil {
		return r.Since
	}
	return b.UpdatedAt
}

// currentProduction is the build production runs: of the project's promoted
// builds, the one whose image went to production last; nil when none.
func (s *Service) currentProduction(ctx context.Context, p Project) (*Build, error) {
	bs, err := s.Store.Find(ctx, p.ID, []State{StatePromoted}, productionCandidates)
	if err != nil {
		return nil, fmt.Errorf("production of %s: %w", p.ID, err)
	}
	var cur *Build
	for i, b := range bs {
		if cur == nil || productionSince(b).After(productionSince(*cur)) {
			cur = &bs[i]
		}
	}
	return cur, nil
}

// earlierImages are the production images before the one production runs,
// newest first, each once, from the config repository's history.
func (s *Service) earlierImages(ctx context.Context, p Project, current string) ([]ProductionChange, error) {
	if s.Production == nil {
		return nil, errors.New("rollback: no config repository history to read")
	}
	changes, err := s.Production.ProductionHistory(ctx, p, historyDepth)
	if err != nil {
		return nil, fmt.Errorf("production history of %s: %w", p.ID, err)
	}
	seen := map[string]bool{current: true}
	var out []ProductionChange
	for _, c := range changes {
		if !seen[c.Image] {
			seen[c.Image] = true
			out = append(out, c)
		}
	}
	return out, nil
}

// RollbackOptions is what `/promote rollback <project>` offers: the build
// production runs and the earlier production images, newest first. Only
// owners are offered them; anyone else, or an unknown project, gets a
// *Refusal.
func (s *Service) RollbackOptions(ctx context.Context, projectID, user string) (RollbackOptions, error) {
	p, ok := s.Config.Project(projectID)
	if !ok {
		return RollbackOptions{}, refusef("No project %q.", Plain(projectID))
	}
	member, err := s.isMember(ctx, user, p.Owners)
	if err != nil {
		return RollbackOptions{}, fmt.Errorf("check owners of %s: %w", p.ID, err)
	}
	if !member {
		return RollbackOptions{}, refusef("Only owners of %s (%s) can roll it back.", p.DisplayName(), mentions(p.Owners))
	}
	cur, err := s.currentProduction(ctx, p)
	if err != nil {
		return RollbackOptions{}, err
	}
	opts := RollbackOptions{Project: p, Current: cur}
	current := ""
	if cur != nil {
		current = cur.Image
	}
	if opts.Choices, err = s.earlierImages(ctx, p, current); err != nil {
		return RollbackOptions{}, err
	}
	return opts, nil
}

// rollbackUnderWay refuses a deploy while a rollback of the project is
// under way: the two would race for the production overlay.
func (s *Service) rollbackUnderWay(ctx context.Context, p Project) error {
	cur, err := s.currentProduction(ctx, p)
	if err != nil || cur == nil || !cur.Rollback.Pending() {
		return err
	}
	return refusef("%s is rolling %s back to `%s`; deploy once it is done.",
		rollbackBy(cur.Rollback), p.DisplayName(), Plain(cur.Rollback.Image))
}

// rollbackTarget checks that build b may be rolled back now (it is what
// production runs, and no rollback or deploy of the project is under way)
// and returns the image the rollback restores: a.Image, which must have
// been in production before, or else the production image before b's.
func (s *Service) rollbackTarget(ctx context.Context, a Action, b Build, p Project) (string, error) {
	if b.State != StatePromoted {
		if r := gone(b); r != nil {
			return "", r
		}
		return "", refusef("Only the build production runs can be rolled back; this one is %s.", b.State)
	}
	if b.Rollback.Pending() {
		return "", refusef("%s is rolling this build back already (to `%s`).", rollbackBy(b.Rollback), Plain(b.Rollback.Image))
	}
	cur, err := s.currentProduction(ctx, p)
	if err != nil {
		return "", err
	}
	if cur == nil || cur.ID != b.ID {
		now := "another build"
		if cur != nil {
			now = "`" + Plain(cur.Image) + "`"
		}
		return "", refusef("A later deploy replaced this build in production: %s runs now. Roll that one back instead.", now)
	}
	promoting, err := s.Store.Find(ctx, p.ID, []State{StatePromoting}, 1)
	if err != nil {
		return "", fmt.Errorf("deploys of %s: %w", p.ID, err)
	}
	if len(promoting) > 0 {
		return "", refusef("A deploy of `%s` to production is under way (asked by <@%s>); roll back once it is done.",
			Plain(promoting[0].Image), promoting[0].PromotedBy)
	}
	earlier, err := s.earlierImages(ctx, p, b.Image)
	if err != nil {
		return "", err
	}
	if a.Image == "" {
		if len(earlier) == 0 {
			return "", refusef("No earlier production image of %s to go back to.", p.DisplayName())
		}
		return earlier[0].Image, nil
	}
	if a.Image == b.Image {
		return "", refusef("`%s` is what production runs already.", Plain(a.Image))
	}
	for _, c := range earlier {
		if c.Image == a.Image {
			return a.Image, nil
		}
	}
	return "", refusef("`%s` was not in production recently: a rollback restores only an image production ran before.", Plain(a.Image))
}

// requestRollback records an owner's rollback of b and queues it.
func (s *Service) requestRollback(ctx context.Context, a Action, b Build, p Project) (Build, error) {
	image, err := s.rollbackTarget(ctx, a, b, p)
	if err != nil {
		return Build{}, err
	}
	who := s.person(ctx, a.User)
	r := &Rollback{Image: image, By: a.User, ByName: who.Name, Reason: strings.Join(strings.Fields(a.Reason), " "), At: s.clock()}
	nb, err := s.askRollback(ctx, b.ID, r)
	if err != nil {
		return Build{}, err
	}
	s.log().Info("rollback asked", "build", b.ID, "user", a.User, "to", image)
	s.wake()
	return nb, nil
}

// askRollback records r on build id and queues its job, unless the build
// moved on or another rollback of it was asked first.
func (s *Service) askRollback(ctx context.Context, id string, r *Rollback) (Build, error) {
	nb, err := s.Store.Edit(ctx, id, func(nb *Build) error {
		if nb.State != StatePromoted || nb.Rollback.Pending() {
			return errRollbackMoved
		}
		nb.Rollback, nb.Error = r, ""
		return nil
	}, Job{Kind: JobRollback}, notifyJob())
	if errors.Is(err, errRollbackMoved) {
		// Someone was quicker (another owner, a double click).
		if cur, gerr := s.Store.Get(ctx, id); gerr == nil && cur.Rollback.Pending() {
			return Build{}, refusef("%s is rolling this build back already (to `%s`).", rollbackBy(cur.Rollback), Plain(cur.Rollback.Image))
		} else if gerr == nil && gone(cur) != nil {
			return Build{}, gone(cur)
		}
		return Build{}, refusef("This build cannot be rolled back now.")
	}
	return nb, err
}

// clock is the Service's time, also before Run set the defaults.
func (s *Service) clock() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// rollback carries out a build's pending rollback: straight on the config
// branch, or through a pull request when there is a Forge. Safe to run
// again at any point: the change is made once, and each record is written
// once.
func (s *Service) rollback(ctx context.Context, id string) error {
	b, err := s.Store.Get(ctx, id)
	if err != nil {
		return fmt.Errorf("rollback %s: %w", id, err)
	}
	if b.State != StatePromoted || !b.Rollback.Pending() {
		return nil // done already
	}
	p, ok := s.Config.Project(b.Project)
	if !ok {
		return s.rollbackFailed(ctx, b, fmt.Errorf("project %s is no longer configured", b.Project))
	}
	if s.Production == nil {
		return s.rollbackFailed(ctx, b, errors.New("no config repository to roll back in"))
	}
	r := b.Rollback
	change := RollbackChange{Of: b, Image: r.Image, By: Person{ID: r.By, Name: r.ByName}, Reason: r.Reason, At: r.At}
	if s.Forge != nil {
		return s.throughPR(ctx, s.rollbackPR(b, p, change))
	}
	commit, err := s.Production.Rollback(ctx, p, change)
	if IsPermanent(err) {
		return s.rollbackFailed(ctx, b, err)
	}
	if err != nil {
		return fmt.Errorf("rollback %s: %w", id, err)
	}
	return s.rolledBack(ctx, b, p, commit)
}

// RollbackBranch is the branch of a build's rollback pull request.
func RollbackBranch(b Build) string { return "promotebot/" + b.Project + "/rollback-" + b.ID }

// rollbackPR is a rollback as a pull request.
func (s *Service) rollbackPR(b Build, p Project, change RollbackChange) prChange {
	branch := RollbackBranch(b)
	return prChange{
		b: b, branch: branch, url: b.Rollback.PullRequest,
		build: func(ctx context.Context) (PromotionCommit, error) {
			return s.Production.RollbackBranch(ctx, p, change, branch)
		},
		request: func(c PromotionCommit) PRRequest {
			body := fmt.Sprintf("Roll back %s in production from `%s` to `%s`, which production ran before.\n\nAsked by %s.",
				p.DisplayName(), b.Image, change.Image, change.By.Name)
			if change.Reason != "" {
				body += "\n\nReason: " + change.Reason
			}
			if c.Diff != "" {
				body += "\n\n```diff\n" + c.Diff + "\n```"
			}
			return PRRequest{Head: branch, Base: s.Branch, Title: fmt.Sprintf("Roll back %s to %s", p.ID, change.Image), Body: body}
		},
		opened: func(ctx context.Context, url string) error {
			_, err := s.Store.Edit(ctx, b.ID, func(nb *Build) error {
				if nb.Rollback == nil {
					return errRollbackMoved
				}
				nb.Rollback.PullRequest = url
				return nil
			}, notifyJob())
			return err
		},
		landed:  func(ctx context.Context, sha, _ string) error { return s.rolledBack(ctx, b, p, sha) },
		failed:  func(ctx context.Context, err error) error { return s.rollbackFailed(ctx, b, err) },
		dropped: func(context.Context) (bool, error) { return false, nil },
	}
}

// rolledBack records a rollback that landed: first the build whose image
// production runs again (when the store knows it), then the build it
// replaced, which becomes rolled-back with the channel told. A crash
// between the two is finished by the job's next run.
func (s *Service) rolledBack(ctx context.Context, b Build, p Project, commit string) error {
	r := b.Rollback
	if err := s.restore(ctx, p, b.ID, r, commit); err != nil {
		return err
	}
	_, err := s.Store.Apply(ctx, b.ID, EventRolledBack, func(nb *Build) error {
		if nb.Rollback == nil {
			return errRollbackMoved
		}
		nb.Rollback.Commit, nb.Error = commit, ""
		return nil
	}, notifyJob())
	if errors.Is(err, errRollbackMoved) {
		return nil
	}
	s.Logger.Info("rolled back", "build", b.ID, "from", b.Image, "to", r.Image, "commit", commit, "auto", r.Auto)
	return s.settled(err)
}

// restore marks the newest build of p whose image r restored as what
// production runs (its production rollout starts again, from the
// rollback's commit), once.
func (s *Service) restore(ctx context.Context, p Project, replaced string, r *Rollback, commit string) error {
	bs, err := s.Store.Find(ctx, p.ID, []State{StatePromoted, StateRolledBack}, qaCandidates)
	if err != nil {
		return fmt.Errorf("restore %s: %w", r.Image, err)
	}
	var back *Build
	for i, b := range bs { // newest first
		if b.Image == r.Image && b.ID != replaced && b.ProductionCommit != "" {
			back = &bs[i]
			break
		}
	}
	if back == nil {
		return nil // production history older than the store: nothing to mark
	}
	if !productionSince(*back).Before(r.At) {
		return nil // restored already, by an earlier run
	}
	now := s.Now()
	change := func(nb *Build) error {
		nb.Rollout.Production = pendingRollout(now)
		nb.Rollout.Production.Commit, nb.Rollout.Production.AutoRestored = commit, r.Auto
		return nil
	}
	jobs := s.committedJobs(RolloutProduction, now, true)
	if back.State == StateRolledBack {
		_, err = s.Store.Apply(ctx, back.ID, EventRestored, change, jobs...)
	} else {
		_, err = s.Store.Edit(ctx, back.ID, change, jobs...)
	}
	return s.settled(err)
}

// rollbackFailed records why a rollback failed for good; an owner may ask
// again.
func (s *Service) rollbackFailed(ctx context.Context, b Build, cause error) error {
	if errors.Is(cause, ErrProductionMoved) {
		cause = fmt.Errorf("a later change replaced %s in production first: %w", b.Image, cause)
	}
	_, err := s.Store.Edit(ctx, b.ID, func(nb *Build) error {
		if !nb.Rollback.Pending() {
			return errRollbackMoved
		}
		nb.Rollback.Error = cause.Error()
		return nil
	}, notifyJob())
	if errors.Is(err, errRollbackMoved) {
		return nil
	}
	s.Logger.Warn("rollback failed", "build", b.ID, "err", cause)
	return err
}

// autoRollback rolls production back by itself (projects[].autoRollback)
// when the build it runs was reported degraded rollout.degradedFor ago and
// still is. It never acts for a failed promotion (only a degraded
// rollout), never twice in a row (not on a build an automatic rollback
// restored, nor on one it rolled back before), and never on a build a
// later deploy replaced.
func (s *Service) autoRollback(ctx context.Context, id string) error {
	b, err := s.Store.Get(ctx, id)
	if err != nil {
		return fmt.Errorf("auto rollback %s: %w", id, err)
	}
	p, ok := s.Config.Project(b.Project)
	r := b.Rollout.Production
	switch {
	case !ok || !p.AutoRollback || b.State != StatePromoted || r == nil:
		return nil
	case r.Status != RolloutDegraded || s.Now().Sub(r.At) < s.Config.Rollout.DegradedFor-time.Second:
		return nil // recovered, or degraded again more recently: a later job looks
	case r.AutoRestored || b.Rollback != nil && b.Rollback.Auto:
		s.Logger.Warn("production degraded, but an automatic rollback acted on it before: left to the owners", "build", id)
		return nil
	}
	cur, err := s.currentProduction(ctx, p)
	if err != nil || cur == nil || cur.ID != b.ID {
		return err
	}
	image, err := s.rollbackTarget(ctx, Action{Kind: ActionRollback}, b, p)
	var refusal *Refusal
	if errors.As(err, &refusal) {
		s.Logger.Warn("automatic rollback not possible", "build", id, "reason", refusal.Reason)
		return nil
	}
	if err != nil {
		return err
	}
	reason := fmt.Sprintf("production degraded for %s", s.Config.Rollout.DegradedFor)
	if r.Message != "" {
		reason += ": " + r.Message
	}
	_, err = s.askRollback(ctx, id, &Rollback{Image: image, ByName: autoName, Reason: reason, Auto: true, At: s.Now()})
	if errors.As(err, &refusal) {
		return nil
	}
	if err == nil {
		s.Logger.Warn("automatic rollback asked", "build", id, "to", image, "reason", reason)
		s.wake()
	}
	return err
}

// rollbackTo is the image the Roll back button of b restores: the
// production image before b's, while b is what production runs and no
// rollback of it is under way; "" otherwise.
func (s *Service) rollbackTo(ctx context.Context, b Build, p Project) (string, error) {
	if b.State != StatePromoted || b.Rollback.Pending() || s.Production == nil {
		return "", nil
	}
	cur, err := s.currentProduction(ctx, p)
	if err != nil || cur == nil || cur.ID != b.ID {
		return "", err
	}
	earlier, err := s.earlierImages(ctx, p, b.Image)
	if err != nil || len(earlier) == 0 {
		// Slack's messages should not wait on the history: no button.
		s.log().Warn("no image to roll back to", "build", b.ID, "err", err)
		return "", nil
	}
	return earlier[0].Image, nil
}
