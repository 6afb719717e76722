package promote

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// WaitError says a job waits on something outside (GitHub's checks or
// reviews): it runs again after After, or sooner when a webhook hurries it,
// and no attempt is counted.
type WaitError struct {
	After  time.Duration
	Reason string
}

func (e *WaitError) Error() string { return "waiting: " + e.Reason }

// maxRebuilds bounds how often one run rebuilds a pull request's branch on
// a base that keeps moving.
const maxRebuilds = 3

// promotion is what a promote job works with.
type promotion struct {
	b        Build
	p        Project
	approved []Approval
	promoter Person
}

// PRBranch is the branch of a build's pull request.
func PRBranch(b Build) string { return "promotebot/" + b.Project + "/" + b.ID }

// promote changes production for a build an owner deployed: straight on the
// config branch, or through a pull request when there is a Forge. A closed
// build's pull request is closed.
func (s *Service) promote(ctx context.Context, id string) error {
	b, err := s.Store.Get(ctx, id)
	if err != nil {
		return fmt.Errorf("promote %s: %w", id, err)
	}
	if b.State == StateClosed && s.Forge != nil && b.PullRequest != "" {
		return s.closePR(ctx, b)
	}
	if b.State != StatePromoting {
		return nil // done already, or closed meanwhile
	}
	pr, err := s.gather(ctx, b)
	if err != nil || pr == nil {
		return err
	}
	if s.Forge != nil {
		return s.promotePR(ctx, *pr)
	}
	commit, err := s.Repo.Promote(ctx, pr.p, b, pr.approved, pr.promoter)
	if IsPermanent(err) {
		return s.fail(ctx, id, EventPromoteFailed, err)
	}
	if err != nil {
		return fmt.Errorf("promote %s: %w", id, err)
	}
	return s.promoted(ctx, b, commit, "")
}

// gather loads what a promotion needs; nil when the build failed for good.
func (s *Service) gather(ctx context.Context, b Build) (*promotion, error) {
	p, ok := s.Config.Project(b.Project)
	if !ok {
		return nil, s.fail(ctx, b.ID, EventPromoteFailed, fmt.Errorf("project %s is no longer configured", b.Project))
	}
	approvals, err := s.Store.Approvals(ctx, b.ID)
	if err != nil {
		return nil, err
	}
	pr := &promotion{b: b, p: p, promoter: s.person(ctx, b.PromotedBy)}
	for _, a := range approvals {
		if a.Verdict == Approve {
			pr.approved = append(pr.approved, a)
		}
	}
	return pr, nil
}

// promoted records that production changed.
func (s *Service) promoted(ctx context.Context, b Build, commit, mergedBy string) error {
	now := s.Now()
	_, err := s.Store.Apply(ctx, b.ID, EventPromoted, func(nb *Build) error {
		nb.ProductionCommit, nb.Error, nb.MergedBy = commit, "", mergedBy
		nb.Rollout.Production = pendingRollout(now)
		return nil
	}, s.committedJobs(RolloutProduction, now, true)...)
	s.Logger.Info("promoted", "build", b.ID, "commit", commit, "by", b.PromotedBy, "merged_by", mergedBy)
	return s.settled(err)
}

// prChange is a production change made through a pull request: a
// promotion or a rollback. Its functions say what is particular to it.
type prChange struct {
	b      Build
	branch string
	url    string // the pull request, once opened
	// build (re)builds the branch on the config branch's tip.
	build func(ctx context.Context) (PromotionCommit, error)
	// request is the pull request to open for commit c.
	request func(c PromotionCommit) PRRequest
	// opened records the pull request's URL.
	opened func(ctx context.Context, url string) error
	// landed records the change as made (sha: the merge, or the tip when
	// production already had it; mergedBy: a person who merged it).
	landed func(ctx context.Context, sha, mergedBy string) error
	// failed ends the change for good.
	failed func(ctx context.Context, err error) error
	// dropped tells whether the change is no longer wanted (an owner closed
	// the build): its pull request is then closed instead of merged.
	dropped func(ctx context.Context) (bool, error)
}

// promotePR opens (once) and merges the build's pull request.
func (s *Service) promotePR(ctx context.Context, pr promotion) error {
	b := pr.b
	return s.throughPR(ctx, prChange{
		b: b, branch: PRBranch(b), url: b.PullRequest,
		build: func(ctx context.Context) (PromotionCommit, error) {
			return s.Repo.PromoteBranch(ctx, pr.p, b, pr.approved, pr.promoter, PRBranch(b))
		},
		request: func(c PromotionCommit) PRRequest {
			return PRRequest{Head: PRBranch(b), Base: s.Branch, Title: prTitle(pr),
				Body: PRBody(pr.b, pr.p, pr.approved, pr.promoter, c.Diff)}
		},
		opened: func(ctx context.Context, url string) error {
			_, err := s.Store.Edit(ctx, b.ID, func(nb *Build) error {
				nb.PullRequest = url
				return nil
			}, notifyJob())
			return err
		},
		landed: func(ctx context.Context, sha, mergedBy string) error { return s.promoted(ctx, b, sha, mergedBy) },
		failed: func(ctx context.Context, err error) error { return s.fail(ctx, b.ID, EventPromoteFailed, err) },
		dropped: func(ctx context.Context) (bool, error) {
			now, err := s.Store.Get(ctx, b.ID)
			if err != nil {
				return false, fmt.Errorf("promote %s: %w", b.ID, err)
			}
			if now.State != StateClosed {
				return false, nil
			}
			return true, s.closePR(ctx, now)
		},
	})
}

// throughPR opens (once) and merges a change's pull request. Every step
// looks at what is already there first, so a retry, a restart or a second
// job never opens a second pull request nor merges twice.
func (s *Service) throughPR(ctx context.Context, ch prChange) error {
	var cur PR
	var commit PromotionCommit
	if n := PRNumber(ch.url); n > 0 {
		got, err := s.Forge.PR(ctx, n)
		if err != nil {
			return s.forgeErr(ctx, ch, err)
		}
		cur = got
	} else {
		c, err := ch.build(ctx)
		if err != nil {
			return s.forgeErr(ctx, ch, err)
		}
		if c.Unchanged {
			return ch.landed(ctx, c.SHA, "") // production already runs the image
		}
		commit = c
		opened, err := s.Forge.OpenPR(ctx, ch.request(c))
		if err != nil {
			return s.forgeErr(ctx, ch, err)
		}
		cur = opened
		// Merge only the commit the bot pushed: if someone pushed onto the
		// branch meanwhile, GitHub answers 409 and the branch is rebuilt.
		cur.HeadSHA = c.SHA
		if err := ch.opened(ctx, opened.URL); err != nil {
			return err
		}
		s.Logger.Info("pull request opened", "build", ch.b.ID, "pr", opened.URL)
	}
	return s.mergePR(ctx, ch, cur, commit)
}

// mergePR merges an open pull request, respecting what people did on GitHub.
func (s *Service) mergePR(ctx context.Context, ch prChange, cur PR, commit PromotionCommit) error {
	for rebuilt := 0; ; rebuilt++ {
		switch {
		case cur.Merged:
			return ch.landed(ctx, cur.MergeSHA, cur.MergedBy)
		case !cur.Open:
			return ch.failed(ctx, fmt.Errorf("pull request %s was closed on GitHub without merging", cur.URL))
		}
		if commit.Subject == "" { // after a restart: rebuild the message
			c, err := ch.build(ctx)
			if err != nil {
				return s.forgeErr(ctx, ch, err)
			}
			commit = c
			cur.HeadSHA = c.SHA
		}
		// An owner may have closed the build while this job worked: then
		// the pull request is closed instead (a Close during the merge call
		// itself loses to the merge, which is then recorded).
		if dropped, err := ch.dropped(ctx); dropped || err != nil {
			return err
		}
		sha, err := s.Forge.Merge(ctx, cur.Number, cur.HeadSHA, commit.Subject, mergeMessage(cur, commit))
		switch {
		case err == nil:
			if cerr := s.Forge.Close(ctx, 0, ch.branch); cerr != nil {
				s.Logger.Warn("delete merged branch", "build", ch.b.ID, "err", cerr)
			}
			return ch.landed(ctx, sha, "")
		case errors.Is(err, ErrNotMergeable):
			return s.waitForGitHub(ctx, ch.b, cur, err)
		case errors.Is(err, ErrHeadMoved) && rebuilt < maxRebuilds:
			// The base moved or conflicts: the same edit on the new tip.
			c, rerr := ch.build(ctx)
			if rerr != nil {
				return s.forgeErr(ctx, ch, rerr)
			}
			if c.Unchanged {
				return ch.landed(ctx, c.SHA, "")
			}
			commit, cur.HeadSHA = c, c.SHA
			s.Logger.Info("pull request branch rebuilt", "build", ch.b.ID, "head", c.SHA)
		default:
			return s.forgeErr(ctx, ch, err)
		}
		if cur, err = s.Forge.PR(ctx, cur.Number); err != nil {
			return s.forgeErr(ctx, ch, err)
		}
		cur.HeadSHA = commit.SHA
	}
}

// waitForGitHub tells the owner why GitHub will not merge yet (once per
// reason) and waits for a webhook or the next poll.
func (s *Service) waitForGitHub(ctx context.Context, b Build, cur PR, cause error) error {
	reason := fmt.Sprintf("GitHub will not merge %s yet: %v", cur.URL, cause)
	if b.Error != reason {
		nb, err := s.Store.Edit(ctx, b.ID, func(nb *Build) error {
			nb.Error = reason
			return nil
		}, notifyJob())
		if err != nil {
			return err
		}
		b = nb
	}
	// Poll less often the longer GitHub keeps it waiting (a webhook still
	// makes it look at once): PollPR, then up to half the wait so far, at
	// most 5 minutes.
	after := min(max(s.PollPR, s.Now().Sub(b.UpdatedAt)/2), 5*time.Minute)
	return &WaitError{After: after, Reason: reason}
}

// forgeErr ends the change on a permanent failure, else returns err for a
// retry.
func (s *Service) forgeErr(ctx context.Context, ch prChange, err error) error {
	if IsPermanent(err) {
		return ch.failed(ctx, err)
	}
	return fmt.Errorf("production change of %s: %w", ch.b.ID, err)
}

// closePR closes a closed build's pull request and deletes its branch. A
// pull request that was merged meanwhile (the bot's merge won the race with
// the Close, or a person merged) is recorded as the promotion it was.
func (s *Service) closePR(ctx context.Context, b Build) error {
	if n := PRNumber(b.PullRequest); n > 0 {
		pr, err := s.Forge.PR(ctx, n)
		if err != nil && !IsPermanent(err) {
			return err
		}
		if err == nil && pr.Merged {
			s.Logger.Info("closed build's pull request was merged: recorded as promoted", "build", b.ID, "pr", pr.URL)
			return s.promoted(ctx, b, pr.MergeSHA, pr.MergedBy)
		}
	}
	if err := s.Forge.Close(ctx, PRNumber(b.PullRequest), PRBranch(b)); err != nil && !IsPermanent(err) {
		return err
	}
	s.Logger.Info("pull request closed", "build", b.ID, "pr", b.PullRequest)
	return nil
}

// PRNumber reads the number at the end of a pull request's URL (…/pull/N);
// 0 when there is none.
func PRNumber(url string) int {
	i := strings.LastIndex(url, "/pull/")
	if i < 0 {
		return 0
	}
	n, err := strconv.Atoi(url[i+len("/pull/"):])
	if err != nil {
		return 0
	}
	return n
}

func prTitle(pr promotion) string {
	return fmt.Sprintf("Promote %s to production: %s", pr.p.ID, pr.b.Image)
}

// mergeMessage is the merge commit's message: the promotion's trailers, so
// that the merge itself says who approved and who promoted.
func mergeMessage(cur PR, c PromotionCommit) string {
	return fmt.Sprintf("Merges %s.\n\n%s", cur.URL, c.Trailers)
}
