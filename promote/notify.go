package promote

import (
	"context"
	"time"
)

// BuildView is everything a message about a build shows, as the bot knows it
// when the message is written. Slack's Block Kit builders (package slackui)
// turn it into the messages people see.
type BuildView struct {
	Build   Build
	Project Project
	// Approvals are the QA verdicts so far, oldest first.
	Approvals []Approval
	// QAMembers are the users asked to do QA (user groups expanded).
	QAMembers []string
	// CommitURL links to the build's QA commit, when the config repository
	// has a web view (GitHub); empty otherwise.
	CommitURL string
	// ProductionCommitURL links to the production change, likewise.
	ProductionCommitURL string
	// SupersededByImage is the newer build's image, once superseded.
	SupersededByImage string
	// Feedback tells whether Argo CD or Flux report rollouts to the bot
	// (events secret or argocd.apiURL set); without it, Build.Rollout stays
	// pending and messages say no cluster feedback is configured.
	Feedback bool
	// RolloutTimeout is rollout.timeout, for messages about a rollout that
	// timed out.
	RolloutTimeout time.Duration
	// Env is the build's QA environment, when it has one: the expiry
	// warning and the teardown speak of it.
	Env *Environment
	// TTL is the project's qaTTL (0: environments do not expire).
	TTL time.Duration
	// RollbackTo is the image the Roll back button restores (the production
	// image before this build's), shown to owners of the build production
	// runs; empty means no Roll back button.
	RollbackTo string
}

// Approved counts the approving verdicts.
func (v BuildView) Approved() int {
	n := 0
	for _, a := range v.Approvals {
		if a.Verdict == Approve {
			n++
		}
	}
	return n
}

// Rejections returns the rejecting verdicts.
func (v BuildView) Rejections() []Approval {
	var rs []Approval
	for _, a := range v.Approvals {
		if a.Verdict == Reject {
			rs = append(rs, a)
		}
	}
	return rs
}

// Post is a message to post or to update: its role and recipient identify it
// among a build's messages (see Message).
type Post struct {
	Role      MessageRole
	Recipient string // the user of a DM; empty for the channel
	View      BuildView
	// Approval is the verdict a MessageVerdictReply tells of.
	Approval Approval
}

// Notifier shows builds to people (package slackui, through Slack's Web API).
// Errors are classified like the config repository's: a *RetryAfterError
// says when to try again (Slack's 429), a permanent error (IsPermanent) is a failure no retry
// can fix (an unknown channel, a revoked token), anything else is retried
// with backoff.
type Notifier interface {
	// Post posts p: in the project's channel, in the recipient's DM, or as a
	// threaded reply under parent (channel and ts of the message replied
	// to). It returns the conversation and ts of the new message.
	Post(ctx context.Context, p Post, parent *Message) (channel, ts string, err error)
	// Update rewrites the message at channel/ts to show p.
	Update(ctx context.Context, channel, ts string, p Post) error
}

// Person is a Slack user as the directory knows them.
type Person struct {
	ID    string
	Name  string // display name, or real name
	Email string
}

// Directory answers who people are and who is in a user group (package
// slackui: users.info and usergroups.users.list, cached).
type Directory interface {
	Person(ctx context.Context, userID string) (Person, error)
	GroupMembers(ctx context.Context, groupID string) ([]string, error)
}

// RetryAfterError is a failure that says when to try again (a rate limit).
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return "retry after " + e.After.String() + ": " + e.Err.Error()
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// StatusView is what `/promote status <project>` shows.
type StatusView struct {
	Project Project
	// Production is the build last promoted, if any: its image, when
	// (UpdatedAt) and by whom (PromotedBy).
	Production *Build
	// QA holds the newest build of each QA environment that is still
	// deployed (qa-ready, approved, rejected, promoting, promote-failed),
	// newest first.
	QA []BuildView
	// Feedback and RolloutTimeout are as in BuildView.
	Feedback       bool
	RolloutTimeout time.Duration
}
