package promote

import (
	"errors"
	"fmt"
	"time"
)

// Kind is what a build was made from: a branch or a tag.
type Kind string

// The kinds of target CI may report.
const (
	KindBranch Kind = "branch"
	KindTag    Kind = "tag"
)

// Build is one image CI reported for a project's branch or tag, and everything
// promotebot has done with it since.
type Build struct {
	ID       string
	Project  string
	Image    string
	Kind     Kind
	Target   string
	Commit   string // source commit, when CI sent it
	Author   string // who made the commit, when CI sent it
	BuildURL string // CI link, when CI sent it
	// BuiltAt is when CI built the image, when it said (builtAt).
	BuiltAt time.Time

	State            State
	Environment      string // "qa/<env>" once known
	URL              string // QA URL once known
	QACommit         string
	PullRequest      string
	ProductionCommit string
	Error            string // why the last step failed, for people
	SupersededBy     string // the newer build's id
	PromotedBy       string // Slack user id of the owner who asked to deploy
	ClosedBy         string // Slack user id of the owner who closed the build
	MergedBy         string // GitHub login of a person who merged the pull request
	// Rollout is what Argo CD or Flux reported of the build's QA and
	// production commits.
	Rollout Rollouts
	// Rollback is the latest request to put an earlier image back in place
	// of this build's in production.
	Rollback *Rollback
	// Deployments are the GitHub Deployments that mirror the build on its
	// project's source repository (projects[].sourceRepository).
	Deployments BuildDeployments

	CreatedAt time.Time
	UpdatedAt time.Time
}

// Key identifies a build for idempotency: the same project, image, kind and
// target reported again is the same build.
func (b Build) Key() string {
	return fmt.Sprintf("%s\x00%s\x00%s\x00%s", b.Project, b.Image, b.Kind, b.Target)
}

// Verdict is a QA member's decision on a build.
type Verdict string

// The verdicts QA can give.
const (
	Approve Verdict = "approved"
	Reject  Verdict = "rejected"
)

// Approval is one QA member's verdict on a build.
type Approval struct {
	BuildID string
	User    string // Slack user id
	Name    string // Slack display name at the time
	Verdict Verdict
	Reason  string // optional, for rejections
	At      time.Time
}

// MessageRole says what a Slack message about a build is for.
type MessageRole string

// The Slack messages the bot keeps about a build.
const (
	MessageChannel MessageRole = "channel" // the announcement in the project's channel
	MessageOwner   MessageRole = "owner"   // an owner's DM
	MessageQA      MessageRole = "qa"      // a QA member's DM
	// MessageVerdictReply is the reply under an owner's DM telling of a QA
	// verdict; its recipient is "<owner>/<QA member>".
	MessageVerdictReply MessageRole = "verdict-reply"
	// MessageProduction is the channel's "new production deployment".
	MessageProduction MessageRole = "production"
	// MessageRollback is the channel's "<@owner> rolled back <project> from
	// <image> to <image>: <reason>", posted once the rollback landed.
	MessageRollback MessageRole = "rollback"
	// MessageExpiry is a DM to an owner or a QA member: the build's QA
	// environment expires soon (projects[].qaTTL), with Keep.
	MessageExpiry MessageRole = "expiry"
)

// Message is a Slack message posted about a build: where it is, so that it
// can be updated in place, and so that it is not posted again.
type Message struct {
	BuildID   string
	Role      MessageRole
	Recipient string // the user of a DM; empty for the channel announcement
	Channel   string // the conversation the message is in (a DM's is not the user id)
	TS        string // Slack's timestamp of the message, its id in Channel
	At        time.Time
}

// JobKind names a kind of durable work.
type JobKind string

// The kinds of work the bot does from its queue.
const (
	JobDeployQA JobKind = "deploy-qa"
	JobPromote  JobKind = "promote"
	JobNotify   JobKind = "notify"
	// JobRolloutTimeout looks, rollout.timeout after a commit, whether the
	// cluster reported it healthy; Payload is the RolloutEnv.
	JobRolloutTimeout JobKind = "rollout-timeout"
	// JobRollback carries out the build's Rollback.
	JobRollback JobKind = "rollback"
	// JobAutoRollback looks, rollout.degradedFor after production was
	// reported degraded, whether it still is, and rolls back
	// (projects[].autoRollback).
	JobAutoRollback JobKind = "auto-rollback"
	// JobTeardown removes a QA environment from the config repository and
	// closes its active builds; Payload is {"kind","target"}.
	JobTeardown JobKind = "teardown"
	// JobDeployments brings the build's GitHub Deployments up to date
	// (Service.Deployments); the notify job queues it when one is behind.
	JobDeployments JobKind = "deployments"
)

// Job is durable pending work about a build: claimed with a lease, retried
// with backoff, ended exactly once.
type Job struct {
	ID       int64
	Kind     JobKind
	BuildID  string
	Payload  string // kind-specific, JSON
	RunAt    time.Time
	Attempts int
	LastErr  string
	// Coalesce, when enqueued, skips this job if one of the same kind for
	// the same build is queued and not started yet.
	Coalesce bool
}

// ErrNotFound is returned for a build or job that does not exist.
var ErrNotFound = errors.New("not found")
