package slackui

import (
	"strings"

	"github.com/slack-go/slack"

	"github.com/promotebot/promotebot/promote"
)

// The action ids of the buttons promotebot puts in messages (docs/contracts.md
// contract). Every button's value is the build id and nothing else, but for
// ActionProdRollbackTo's.
const (
	ActionQAApprove  = "qa_approve"
	ActionQAReject   = "qa_reject"
	ActionProdDeploy = "prod_deploy"
	ActionBuildClose = "build_close"
	// ActionProdRollback is the Roll back button of the build production
	// runs (owners); it opens the rollback dialog.
	ActionProdRollback = "prod_rollback"
	// ActionProdRollbackTo is a button of /promote rollback's answer: it
	// opens the rollback dialog for one earlier image. Its value is a
	// RollbackChoice (build and image) as JSON.
	ActionProdRollbackTo = "prod_rollback_to"
	// ActionQATeardown is the Tear down button of a build whose QA
	// environment lives (owners); it asks to confirm first.
	ActionQATeardown = "qa_teardown"
	// ActionQAKeep is the Keep button of an expiry warning (owners and QA).
	ActionQAKeep = "qa_keep"
	// ActionOpenQA is the link button to a build's QA URL; Slack still sends
	// an interaction for it, which needs only an acknowledgement.
	ActionOpenQA = "open_qa"
)

// The reject modal's identifiers: its callback id, and the block and action
// ids of its reason input.
const (
	RejectCallbackID     = "qa_reject_reason"
	RejectReasonBlockID  = "reason"
	RejectReasonActionID = "reason"
)

// Message is a Slack message: Block Kit blocks, and the plain-text fallback
// Slack shows in notifications and reads to screen readers.
type Message struct {
	Text   string
	Blocks []slack.Block
}

// Render turns a post about a build into the message for its role. An
// unknown role gets a plain message with the build's facts.
func Render(p promote.Post) Message {
	switch p.Role {
	case promote.MessageChannel:
		return channelMessage(p.View)
	case promote.MessageOwner:
		return ownerMessage(p.View)
	case promote.MessageQA:
		return qaMessage(p.View, p.Recipient)
	case promote.MessageVerdictReply:
		return verdictReply(p.Approval)
	case promote.MessageProduction:
		return productionMessage(p.View)
	case promote.MessageRollback:
		return rollbackMessage(p.View)
	case promote.MessageExpiry:
		return expiryMessage(p.View)
	}
	return factsMessage(p.View)
}

// Ephemeral is a one-section message, for refusals and answers only the
// asker sees. text is shown as written: it is escaped, so it can neither
// mention nor format; Slack still links bare URLs in it.
func Ephemeral(text string) Message {
	if strings.TrimSpace(text) == "" {
		text = "Done."
	}
	body := escapeClip(text, maxSectionText)
	return Message{
		Text: body,
		Blocks: []slack.Block{
			slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, body, false, false), nil, nil),
		},
	}
}

// Notice is Ephemeral for text the bot wrote in Slack's mrkdwn (mentions
// such as <@U…> stay live): a promote.Refusal's reason, whose untrusted
// parts the domain escaped. It is only clipped to Slack's limits.
func Notice(mrkdwn string) Message {
	if strings.TrimSpace(mrkdwn) == "" {
		mrkdwn = "Done."
	}
	body := clip(mrkdwn, maxSectionText)
	return Message{
		Text: body,
		Blocks: []slack.Block{
			slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, body, false, false), nil, nil),
		},
	}
}

// HelpMessage explains the slash command and the buttons.
func HelpMessage() Message {
	usage := "*promotebot* takes builds from QA to production through the config repository.\n" +
		"• `/promote status &lt;project&gt;`: what is in production, on each QA environment, " +
		"and what is waiting for approvals\n" +
		"• `/promote rollback &lt;project&gt;`: what production runs, and the earlier production " +
		"images an owner can put back in its place\n" +
		"• `/promote envs &lt;project&gt;`: the project's QA environments: target, image, age, " +
		"last activity, URL and when each expires\n" +
		"• `/promote help`: this message"
	buttons := "*The buttons*\n" +
		"• *Approve* / *Reject* (QA, in your direct message): your verdict on a build; " +
		"Reject asks for an optional reason, which the owners see.\n" +
		"• *Deploy to production* (owners): once enough QA members approved, changes the " +
		"production overlay through a pull request and merges it.\n" +
		"• *Close* (owners): drops the build; its buttons go away and an open pull request is closed.\n" +
		"• *Roll back* (owners, on the build in production): asks you to confirm, with an optional " +
		"reason, then puts the production image before it back; the commit and the channel show who and why.\n" +
		"• *Tear down QA environment* (owners, while a build's QA environment lives): asks you to confirm, " +
		"then removes the environment from the config repository and closes its builds.\n" +
		"• *Keep* (owners and QA, in the warning that an idle QA environment expires): counts as activity, " +
		"so the environment is not torn down for being idle.\n" +
		"• *Open QA*: opens the build's QA environment."
	return Message{
		Text: "promotebot: /promote status &lt;project&gt;, /promote rollback &lt;project&gt;, " +
			"/promote envs &lt;project&gt;, /promote help",
		Blocks: []slack.Block{
			slack.NewSectionBlock(md(usage, maxSectionText), nil, nil),
			slack.NewSectionBlock(md(buttons, maxSectionText), nil, nil),
		},
	}
}

// verdictReply is the reply under an owner's message telling of a verdict.
func verdictReply(a promote.Approval) Message {
	var text, body string
	switch a.Verdict {
	case promote.Approve:
		text = mention(a.User) + " approved this build"
		body = ":white_check_mark: " + text
	case promote.Reject:
		text = mention(a.User) + " rejected this build"
		body = ":x: " + text
		if r := strings.TrimSpace(a.Reason); r != "" {
			text += ": " + plain(r, maxShortReason)
			body += ": " + prose(r, maxReason)
		}
	default:
		text = mention(a.User) + " gave a verdict: " + plain(string(a.Verdict), maxInline)
		body = text
	}
	return Message{
		Text:   clip(text, maxSectionText),
		Blocks: []slack.Block{slack.NewSectionBlock(md(body, maxSectionText), nil, nil)},
	}
}

// productionMessage is the channel's "new production deployment", with
// what the cluster reported of it and the Roll back button; a failing
// rollout comes first, the button beside it.
func productionMessage(v promote.BuildView) Message {
	b := v.Build
	text := "New production deployment of " + plain(projectName(v), maxInline) + " by " + mention(b.PromotedBy)
	body := ":rocket: New production deployment of " + escapeClip(projectName(v), maxInline) +
		" by " + mention(b.PromotedBy) + "\n" + code(b.Image) + " from " + targetRef(b)
	prod := productionRollout(v)
	rb, rbText := rollbackLine(b)
	if rbText != "" {
		text += ". " + rbText
	}
	d := draft{text: withAlerts(text, prod)}
	btn := d.productionAlerts(prod, rollbackButton(v))
	d.section(body + lineAfter(prod.line) + lineAfter(rb))
	d.context(
		joinNonEmpty(" · ", labelled("Pull request", prRef(b.PullRequest)),
			labelled("Production commit", commitRef(v.ProductionCommitURL, b.ProductionCommit))),
		rollbackRefs(b),
		tally(v),
		rollbackOffer(v),
	)
	d.actions(btn)
	return d.message()
}

// factsMessage shows a build whose message role is unknown.
func factsMessage(v promote.BuildView) Message {
	b := v.Build
	d := draft{text: plain(b.Image, maxInline) + " (" + plain(string(b.State), maxInline) + ")"}
	d.section(code(b.Image) + ": " + escapeClip(string(b.State), maxInline))
	d.add(facts(v, true))
	return d.message()
}

// draft collects a message's blocks.
type draft struct {
	text   string
	blocks []slack.Block
}

func (d *draft) add(b slack.Block) {
	if b != nil {
		d.blocks = append(d.blocks, b)
	}
}

// section adds a mrkdwn section.
func (d *draft) section(text string) {
	d.add(slack.NewSectionBlock(md(text, maxSectionText), nil, nil))
}

// context adds a context block of the non-empty parts, if any.
func (d *draft) context(parts ...string) {
	var els []slack.MixedElement
	for _, p := range parts {
		if p != "" && len(els) < 10 {
			els = append(els, md(p, maxFieldText))
		}
	}
	if len(els) > 0 {
		d.add(slack.NewContextBlock("", els...))
	}
}

func (d *draft) message() Message {
	text := d.text
	if text == "" {
		text = "promotebot"
	}
	return Message{Text: clip(text, maxSectionText), Blocks: d.blocks}
}

// joinNonEmpty joins the non-empty parts with sep.
func joinNonEmpty(sep string, parts ...string) string {
	var ps []string
	for _, p := range parts {
		if p != "" {
			ps = append(ps, p)
		}
	}
	return strings.Join(ps, sep)
}

// labelled is "label value", or "" without a value.
func labelled(label, value string) string {
	if value == "" {
		return ""
	}
	return label + " " + value
}
