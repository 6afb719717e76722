package promote

import (
	"context"
	"errors"
	"fmt"
)

// notify brings a build's Slack messages up to date with the build: the
// channel announcement, the owners' and QA's DMs once it reached QA, a reply
// under each owner's DM per QA verdict, and the production announcement.
// Each message posted is recorded at once, so a retry updates it rather than
// posting it again; what was already said (replies, the announcement) is
// never said twice.
func (s *Service) notify(ctx context.Context, id string) error {
	if s.Notifier == nil {
		return nil
	}
	view, owners, err := s.view(ctx, id)
	if err != nil || view.Build.ID == "" {
		return err
	}
	msgs, err := s.Store.Messages(ctx, id)
	if err != nil {
		return err
	}
	n := &notification{s: s, msgs: map[string]Message{}}
	for _, m := range msgs {
		n.msgs[msgKey(m.Role, m.Recipient)] = m
	}
	b := view.Build
	n.sync(ctx, Post{Role: MessageChannel, View: view}, true)
	if b.QACommit != "" && s.askNow(b) { // it reached QA: the people who decide are told
		for _, o := range owners {
			n.sync(ctx, Post{Role: MessageOwner, Recipient: o, View: view}, true)
		}
		for _, q := range view.QAMembers {
			n.sync(ctx, Post{Role: MessageQA, Recipient: q, View: view}, true)
		}
		for _, a := range view.Approvals {
			for _, o := range owners {
				n.reply(ctx, o, a, view)
			}
		}
	}
	if e := view.Env; e != nil {
		// The expiry warning: posted once warned, updated when kept or torn
		// down.
		warn := e.Live() && !e.WarnedAt.IsZero()
		seen := map[string]bool{}
		for _, r := range append(append([]string(nil), owners...), view.QAMembers...) {
			if seen[r] {
				continue
			}
			seen[r] = true
			p := Post{Role: MessageExpiry, Recipient: r, View: view}
			if _, posted := n.msgs[msgKey(p.Role, p.Recipient)]; posted || warn {
				n.sync(ctx, p, true)
			}
		}
	}
	if b.State == StatePromoted || b.State == StateRolledBack {
		// Updated as the rollout goes and once rolled back, so that its
		// Roll back button is there only while it applies.
		n.sync(ctx, Post{Role: MessageProduction, View: view}, true)
	}
	if b.State == StateRolledBack {
		n.sync(ctx, Post{Role: MessageRollback, View: view}, false)
	}
	return n.outcome()
}

// askNow reports whether QA and owners are asked about a build that
// reached QA: at once, or with rollout.waitForHealthy once the cluster
// reported its QA environment healthy, or rollout.timeout passed, or the
// build moved on without waiting (a policy that needs no approval).
func (s *Service) askNow(b Build) bool {
	if !s.Config.Rollout.WaitForHealthy || !s.Feedback || b.State != StateQAReady {
		return true
	}
	r := b.Rollout.QA
	return r == nil || r.Status == RolloutHealthy || r.TimedOut
}

// View is what the messages about build id show (the Reject dialog shows it
// too).
func (s *Service) View(ctx context.Context, id string) (BuildView, error) {
	v, _, err := s.view(ctx, id)
	return v, err
}

// view gathers what the messages about build id show, and the owners to
// tell. A build of a project no longer configured has an empty view.
func (s *Service) view(ctx context.Context, id string) (BuildView, []string, error) {
	b, err := s.Store.Get(ctx, id)
	if err != nil {
		return BuildView{}, nil, err
	}
	p, ok := s.Config.Project(b.Project)
	if !ok {
		s.Logger.Warn("notify: project no longer configured", "build", id, "project", b.Project)
		return BuildView{}, nil, nil
	}
	v := BuildView{Build: b, Project: p, Feedback: s.Feedback, RolloutTimeout: s.Config.Rollout.Timeout, TTL: p.QATTL}
	if b.Environment != "" {
		e, err := s.Store.Environment(ctx, b.Project, b.Kind, b.Target)
		switch {
		case err == nil && e.BuildID == b.ID:
			v.Env = &e
		case err != nil && !errors.Is(err, ErrNotFound):
			return BuildView{}, nil, err
		}
	}
	if v.RollbackTo, err = s.rollbackTo(ctx, b, p); err != nil {
		return BuildView{}, nil, err
	}
	if v.Approvals, err = s.Store.Approvals(ctx, id); err != nil {
		return BuildView{}, nil, err
	}
	if v.QAMembers, err = s.expand(ctx, p.QA); err != nil {
		return BuildView{}, nil, err
	}
	owners, err := s.expand(ctx, p.Owners)
	if err != nil {
		return BuildView{}, nil, err
	}
	if s.CommitURL != nil {
		if b.QACommit != "" {
			v.CommitURL = s.CommitURL(b.QACommit)
		}
		if b.ProductionCommit != "" {
			v.ProductionCommitURL = s.CommitURL(b.ProductionCommit)
		}
	}
	if b.SupersededBy != "" {
		if nb, err := s.Store.Get(ctx, b.SupersededBy); err == nil {
			v.SupersededByImage = nb.Image
		}
	}
	return v, owners, nil
}

func msgKey(role MessageRole, recipient string) string { return string(role) + "\x00" + recipient }

// notification is one run of notify: the build's recorded messages and the
// failures met so far.
type notification struct {
	s    *Service
	msgs map[string]Message
	errs []error
	// limited is set once Slack asked to wait: no more calls this run.
	limited bool
}

// sync posts p, or updates it when it was posted before and update is set.
func (n *notification) sync(ctx context.Context, p Post, update bool) {
	if n.limited {
		return
	}
	if m, ok := n.msgs[msgKey(p.Role, p.Recipient)]; ok {
		if update {
			n.fail(n.s.Notifier.Update(ctx, m.Channel, m.TS, p))
		}
		return
	}
	n.post(ctx, p, nil)
}

// reply tells owner, under their DM, of QA verdict a, once.
func (n *notification) reply(ctx context.Context, owner string, a Approval, v BuildView) {
	parent, ok := n.msgs[msgKey(MessageOwner, owner)]
	recipient := owner + "/" + a.User
	if _, done := n.msgs[msgKey(MessageVerdictReply, recipient)]; done || !ok {
		return
	}
	n.post(ctx, Post{Role: MessageVerdictReply, Recipient: recipient, View: v, Approval: a}, &parent)
}

func (n *notification) post(ctx context.Context, p Post, parent *Message) {
	if n.limited {
		return
	}
	channel, ts, err := n.s.Notifier.Post(ctx, p, parent)
	if err != nil {
		n.fail(err)
		return
	}
	m, _, err := n.s.Store.SaveMessage(ctx, Message{BuildID: p.View.Build.ID, Role: p.Role, Recipient: p.Recipient,
		Channel: channel, TS: ts})
	if err != nil {
		n.fail(fmt.Errorf("record %s message: %w", p.Role, err))
		return
	}
	n.msgs[msgKey(m.Role, m.Recipient)] = m
}

func (n *notification) fail(err error) {
	if err == nil {
		return
	}
	n.errs = append(n.errs, err)
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		n.limited = true
	}
}

// outcome is what the job makes of the failures: a rate limit first (its
// Retry-After decides when to run again), then transient failures (retried);
// failures no retry can fix are logged and the job ends.
func (n *notification) outcome() error {
	var transient []error
	for _, err := range n.errs {
		var ra *RetryAfterError
		if errors.As(err, &ra) {
			return err
		}
		if IsPermanent(err) {
			n.s.Logger.Warn("slack refused a message", "err", err)
			continue
		}
		transient = append(transient, err)
	}
	return errors.Join(transient...)
}
