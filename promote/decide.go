package promote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// ActionKind is what a person asks of a build from Slack; the values are
// the buttons' action_id (docs/contracts.md, Slack actions).
type ActionKind string

// The actions people take on builds.
const (
	ActionApprove ActionKind = "qa_approve"
	ActionReject  ActionKind = "qa_reject"
	ActionDeploy  ActionKind = "prod_deploy"
	ActionClose   ActionKind = "build_close"
	// ActionRollback puts an earlier production image back in place of the
	// build's (owners only; the build is the one production runs).
	ActionRollback ActionKind = "prod_rollback"
	// ActionTeardown removes the build's QA environment (owners).
	ActionTeardown ActionKind = "qa_teardown"
	// ActionKeep resets the expiry clock of the build's QA environment
	// (owners and QA).
	ActionKeep ActionKind = "qa_keep"
)

// Action is a person's decision on a build. Only what Slack signed is in
// it: who (User), what (Kind), on which build and when; the rest is the
// bot's.
type Action struct {
	Kind    ActionKind
	BuildID string
	User    string // Slack user id
	Reason  string // for a rejection or a rollback, optional
	// Image is the image a rollback restores: chosen in /promote rollback,
	// or named by the Roll back dialog; empty means the production image
	// before the build's.
	Image string
	// At is when the person clicked (Slack's action_ts); a click made
	// before the build last changed state is refused. Zero skips the check
	// (a dialog's submission carries no such time).
	At time.Time
}

// Refusal is an action refused for a reason the person should read (not
// allowed, too early, too late); nothing changed. Reason is Slack mrkdwn:
// mentions (<@U…>) are live, and text from elsewhere (targets, errors,
// what someone typed) is escaped with Plain.
type Refusal struct {
	Reason string
}

func (r *Refusal) Error() string { return r.Reason }

// Plain escapes text for Slack's mrkdwn (&, <, >), so that text from CI or
// from a person can neither mention, link nor break a message.
func Plain(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func refusef(format string, args ...any) *Refusal {
	return &Refusal{Reason: fmt.Sprintf(format, args...)}
}

// Act carries out a person's action on a build: it checks that they may
// (config's qa and owners, user groups expanded; no self-approval), that the
// build is in a state where the action makes sense and the policy allows it,
// then records it and queues the work (Slack updates; the production change).
// A *Refusal says why nothing changed. Safe to call twice: the second call of
// the same action is refused (already approved, already deploying …).
func (s *Service) Act(ctx context.Context, a Action) (Build, error) {
	b, p, err := s.actionTarget(ctx, a)
	if err != nil {
		return Build{}, err
	}
	var nb Build
	switch a.Kind {
	case ActionApprove, ActionReject:
		nb, err = s.verdict(ctx, a, b, p)
	case ActionDeploy:
		nb, err = s.deploy(ctx, a, b, p)
	case ActionRollback:
		return s.requestRollback(ctx, a, b, p)
	case ActionTeardown:
		return s.tearDownByOwner(ctx, a, b)
	case ActionKeep:
		return s.keep(ctx, a, b)
	default:
		return s.close(ctx, a, b)
	}
	if err == nil { // a decision on a build is activity in its environment
		s.touch(ctx, b)
	}
	return nb, err
}

// Allowed reports, without changing anything, whether Act(a) would get
// past the permission and state checks (the Reject button asks before it
// opens the reason dialog).
func (s *Service) Allowed(ctx context.Context, a Action) error {
	b, p, err := s.actionTarget(ctx, a)
	if err != nil {
		return err
	}
	switch a.Kind {
	case ActionApprove, ActionReject:
		return s.canGiveVerdict(ctx, a, b, p)
	case ActionRollback:
		_, err := s.rollbackTarget(ctx, a, b, p)
		return err
	}
	return nil
}

// actionTarget loads the build and checks the person may take the action.
func (s *Service) actionTarget(ctx context.Context, a Action) (Build, Project, error) {
	var who []string
	var role string
	switch a.Kind {
	case ActionApprove, ActionReject:
		role = "QA"
	case ActionDeploy, ActionClose, ActionRollback, ActionTeardown:
		role = "owners"
	case ActionKeep:
		role = "owners or QA"
	default:
		return Build{}, Project{}, refusef("Unknown action.")
	}
	b, err := s.Store.Get(ctx, a.BuildID)
	if errors.Is(err, ErrNotFound) {
		return Build{}, Project{}, refusef("This build is not known to promotebot.")
	}
	if err != nil {
		return Build{}, Project{}, err
	}
	p, ok := s.Config.Project(b.Project)
	if !ok {
		return Build{}, Project{}, refusef("Project %s is no longer configured.", b.Project)
	}
	switch role {
	case "QA":
		who = p.QA
	case "owners":
		who = p.Owners
	default:
		who = append(append([]string(nil), p.Owners...), p.QA...)
	}
	member, err := s.isMember(ctx, a.User, who)
	if err != nil {
		return Build{}, Project{}, fmt.Errorf("check %s of %s: %w", role, p.ID, err)
	}
	if !member {
		return Build{}, Project{}, refusef("Only %s of %s (%s) can %s this build.", role, p.DisplayName(), mentions(who), verb(a.Kind))
	}
	if err := s.stale(ctx, a, b); err != nil {
		return Build{}, Project{}, err
	}
	return b, p, nil
}

// stale refuses a click made before the build last changed state: it was
// made on what no longer is, or it is a captured request sent again (a
// Deploy click replayed after its promotion failed would try it again).
func (s *Service) stale(ctx context.Context, a Action, b Build) error {
	if a.At.IsZero() {
		return nil
	}
	h, err := s.Store.History(ctx, b.ID)
	if err != nil {
		return fmt.Errorf("when did %s change: %w", b.ID, err)
	}
	changed := b.CreatedAt
	if len(h) > 0 {
		changed = h[len(h)-1].At
	}
	if !a.At.Before(changed) {
		return nil
	}
	return refusef("This build changed since you clicked: it became %s at %s. Look at its message again, and click there if that still applies.",
		b.State, changed.UTC().Format("15:04:05 MST"))
}

func verb(k ActionKind) string {
	switch k {
	case ActionApprove:
		return "approve"
	case ActionReject:
		return "reject"
	case ActionDeploy:
		return "deploy"
	case ActionRollback:
		return "roll back"
	case ActionTeardown:
		return "tear down the QA environment of"
	case ActionKeep:
		return "keep the QA environment of"
	default:
		return "close"
	}
}

// isMember tells whether user is one of entries, directly or through a
// user group.
func (s *Service) isMember(ctx context.Context, user string, entries []string) (bool, error) {
	members, err := s.expand(ctx, entries)
	if err != nil {
		return false, err
	}
	for _, m := range members {
		if m == user {
			return true, nil
		}
	}
	return false, nil
}

// expand resolves user groups (S…) into their members, keeping order and
// dropping repeats.
func (s *Service) expand(ctx context.Context, entries []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(u string) {
		if !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	for _, e := range entries {
		if !strings.HasPrefix(e, "S") {
			add(e)
			continue
		}
		if s.Directory == nil {
			return nil, fmt.Errorf("user group %s: no Slack directory to resolve it", e)
		}
		members, err := s.Directory.GroupMembers(ctx, e)
		if err != nil {
			return nil, fmt.Errorf("user group %s: %w", e, err)
		}
		for _, m := range members {
			add(m)
		}
	}
	return out, nil
}

// mentions formats ids for Slack: <@U…>, <!subteam^S…>.
func mentions(ids []string) string {
	out := make([]string, len(ids))
	for i, id := range ids {
		if strings.HasPrefix(id, "S") {
			out[i] = "<!subteam^" + id + ">"
		} else {
			out[i] = "<@" + id + ">"
		}
	}
	return strings.Join(out, ", ")
}

// gone explains why nothing can be done any more on a build, or is nil.
func gone(b Build) *Refusal {
	switch b.State {
	case StateSuperseded:
		return refusef("This build was superseded by a newer build of %s %s.", b.Kind, Plain(b.Target))
	case StateClosed:
		return refusef("This build was closed by <@%s>.", b.ClosedBy)
	case StatePromoted:
		return refusef("This build is already in production (deployed by <@%s>).", b.PromotedBy)
	case StatePromoting:
		return refusef("This build is being deployed to production (asked by <@%s>).", b.PromotedBy)
	case StateRolledBack:
		return refusef("This build was rolled back from production (by %s).", rollbackBy(b.Rollback))
	case StateReceived, StateDeploying:
		return refusef("This build is not deployed to QA yet.")
	case StateQAFailed:
		return refusef("This build's QA deploy failed: %s", Plain(b.Error))
	}
	return nil
}

func (s *Service) canGiveVerdict(ctx context.Context, a Action, b Build, p Project) error {
	if r := gone(b); r != nil {
		return r
	}
	if a.Kind == ActionApprove && b.Author != "" && !p.AllowSelfApproval && s.Directory != nil {
		person, err := s.Directory.Person(ctx, a.User)
		if err != nil {
			return fmt.Errorf("who is %s: %w", a.User, err)
		}
		if IsAuthor(b.Author, person) {
			return refusef("You wrote this build (%s), so you cannot approve it; someone else in QA must.", Plain(b.Author))
		}
	}
	approvals, err := s.Store.Approvals(ctx, b.ID)
	if err != nil {
		return err
	}
	for _, v := range approvals {
		if v.User == a.User {
			return refusef("You already %s this build.", v.Verdict)
		}
	}
	return nil
}

// verdict records a QA member's approval or rejection and moves the build
// when the policy is now met, or blocked.
func (s *Service) verdict(ctx context.Context, a Action, b Build, p Project) (Build, error) {
	if err := s.canGiveVerdict(ctx, a, b, p); err != nil {
		return Build{}, err
	}
	v := Verdict(Approve)
	if a.Kind == ActionReject {
		v = Reject
	}
	added, err := s.Store.AddApproval(ctx, Approval{BuildID: b.ID, User: a.User, Name: s.person(ctx, a.User).Name,
		Verdict: v, Reason: a.Reason},
		notifyJob())
	if err != nil {
		return Build{}, err
	}
	if !added {
		return Build{}, refusef("You already gave your verdict on this build (a double click?).")
	}
	s.log().Info("qa verdict", "build", b.ID, "user", a.User, "verdict", v)
	return s.applyPolicy(ctx, b.ID, p)
}

// applyPolicy moves a build to approved once enough QA approved and nobody
// rejected, and to rejected after any rejection. It is safe to repeat.
func (s *Service) applyPolicy(ctx context.Context, id string, p Project) (Build, error) {
	approvals, err := s.Store.Approvals(ctx, id)
	if err != nil {
		return Build{}, err
	}
	view := BuildView{Approvals: approvals}
	ev := Event("")
	switch {
	case len(view.Rejections()) > 0:
		ev = EventRejected
	case view.Approved() >= p.RequiredApprovals:
		ev = EventApproved
	}
	b, err := s.Store.Get(ctx, id)
	if err != nil || ev == "" {
		return b, err
	}
	if _, err := Next(b.State, ev); err != nil {
		return b, nil // already there, or past it
	}
	nb, err := s.Store.Apply(ctx, id, ev, nil, notifyJob())
	if err := s.settled(err); err != nil {
		return Build{}, err
	}
	if nb.ID == "" {
		return s.Store.Get(ctx, id)
	}
	return nb, nil
}

// deploy starts the production change of an approved build.
func (s *Service) deploy(ctx context.Context, a Action, b Build, p Project) (Build, error) {
	switch b.State {
	case StateApproved, StatePromoteFailed:
	case StateQAReady:
		approvals, err := s.Store.Approvals(ctx, b.ID)
		if err != nil {
			return Build{}, err
		}
		n := BuildView{Approvals: approvals}.Approved()
		return Build{}, refusef("%s needs %d QA approval(s) before it can go to production; it has %d.",
			p.DisplayName(), p.RequiredApprovals, n)
	case StateRejected:
		return Build{}, refusef("QA rejected this build: deploy is blocked until a new build.")
	default:
		if r := gone(b); r != nil {
			return Build{}, r
		}
		return Build{}, refusef("This build cannot be deployed now (%s).", b.State)
	}
	if err := s.rollbackUnderWay(ctx, p); err != nil {
		return Build{}, err
	}
	nb, err := s.Store.Apply(ctx, b.ID, EventPromote, func(nb *Build) error {
		nb.PromotedBy, nb.Error = a.User, ""
		return nil
	}, Job{Kind: JobPromote}, notifyJob())
	var te *TransitionError
	if errors.As(err, &te) {
		// Someone was quicker (a double click, another owner).
		if cur, gerr := s.Store.Get(ctx, b.ID); gerr == nil {
			if r := gone(cur); r != nil {
				return Build{}, r
			}
		}
		return Build{}, refusef("This build cannot be deployed now.")
	}
	if err != nil {
		return Build{}, err
	}
	s.log().Info("deploy to production asked", "build", b.ID, "user", a.User)
	s.wake()
	return nb, nil
}

// close ends a build at an owner's request.
func (s *Service) close(ctx context.Context, a Action, b Build) (Build, error) {
	jobs := []Job{notifyJob()}
	if b.State == StatePromoting {
		if s.Forge == nil {
			return Build{}, refusef("This build is being deployed to production right now; it cannot be closed.")
		}
		jobs = append(jobs, Job{Kind: JobPromote}) // closes the pull request
	}
	if b.State.Final() {
		return Build{}, gone(b)
	}
	nb, err := s.Store.Apply(ctx, b.ID, EventClose, func(nb *Build) error {
		nb.ClosedBy = a.User
		return nil
	}, jobs...)
	var te *TransitionError
	if errors.As(err, &te) {
		if cur, gerr := s.Store.Get(ctx, b.ID); gerr == nil && gone(cur) != nil {
			return Build{}, gone(cur)
		}
		return Build{}, refusef("This build cannot be closed now.")
	}
	if err != nil {
		return Build{}, err
	}
	s.log().Info("build closed", "build", b.ID, "user", a.User)
	return nb, nil
}

// notifyJob is the job that brings a build's Slack messages up to date.
func notifyJob() Job { return Job{Kind: JobNotify, Coalesce: true} }

// IsAuthor tells whether a build's author, as CI reported it (a Slack id, an
// e-mail, a name, or git's "Name <email>"), is person.
func IsAuthor(author string, person Person) bool {
	author = strings.TrimSpace(author)
	if author == "" {
		return false
	}
	candidates := []string{person.ID, person.Email, person.Name}
	parts := []string{author}
	if name, rest, ok := strings.Cut(author, "<"); ok {
		parts = append(parts, strings.TrimSpace(name), strings.TrimSuffix(strings.TrimSpace(rest), ">"))
	}
	for _, p := range parts {
		for _, c := range candidates {
			if p != "" && c != "" && strings.EqualFold(p, c) {
				return true
			}
		}
	}
	return false
}

// person is who id is, for names in trailers; only the id when the
// directory is missing or cannot say (the action still goes ahead).
func (s *Service) person(ctx context.Context, id string) Person {
	if s.Directory == nil {
		return Person{ID: id}
	}
	p, err := s.Directory.Person(ctx, id)
	if err != nil {
		s.log().Warn("slack name unknown", "user", id, "err", err)
		return Person{ID: id}
	}
	return p
}

// log is the Service's logger, also before Run set the defaults.
func (s *Service) log() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}
