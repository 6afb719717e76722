package slackui

import (
	"github.com/slack-go/slack"

	"github.com/promotebot/promotebot/promote"
)

// channelMessage is the announcement in the project's channel, updated in
// place as the build moves on.
func channelMessage(v promote.BuildView) Message {
	switch v.Build.State {
	case promote.StateReceived, promote.StateDeploying, "":
		return channelDeploying(v)
	case promote.StateQAFailed:
		return channelQAFailed(v)
	case promote.StateClosed, promote.StateSuperseded:
		return channelEnded(v)
	}
	return channelDeployed(v)
}

// channelDeploying: CI reported the build and the QA deploy is under way.
func channelDeploying(v promote.BuildView) Message {
	b := v.Build
	qa := qaRollout(v)
	d := draft{text: "Build complete, deploying " + plain(b.Image, maxInline) + " to " + envPlain(b) + "…"}
	d.section(":hourglass_flowing_sand: Build complete, deploying " + code(b.Image) + " to " + envRef(b) + "…" +
		lineAfter(qa.line))
	d.alerts(qa)
	d.text = withAlerts(d.text, qa)
	if b.Error != "" { // a transient failure: the bot is retrying
		d.text += " " + plain(b.Error, maxPlainError)
		d.context(":warning: " + escape(clip(b.Error, maxPlainError)))
	}
	d.add(facts(v, false))
	return d.message()
}

// channelQAFailed: the QA deploy failed for good.
func channelQAFailed(v promote.BuildView) Message {
	b := v.Build
	qa := qaRollout(v)
	d := draft{text: withAlerts("Deploying "+plain(b.Image, maxInline)+" to "+envPlain(b)+" failed: "+
		plain(b.Error, maxPlainError), qa)}
	d.section(":x: Deploying " + code(b.Image) + " to " + envRef(b) + " failed:\n" + codeBlock(b.Error) +
		lineAfter(qa.line))
	d.alerts(qa)
	d.add(facts(v, false))
	return d.message()
}

// channelDeployed: the build is on QA, and perhaps further along. What
// the cluster reported comes under the headline; a failing production
// rollout comes first of all.
func channelDeployed(v promote.BuildView) Message {
	b := v.Build
	qa, prod := qaRollout(v), productionRollout(v)
	head := "Deployed " + code(b.Image) + " to " + envRef(b) + lineAfter(qa.line)
	text := "Deployed " + plain(b.Image, maxInline) + " to " + envPlain(b)
	switch b.State {
	case promote.StateApproved:
		head += "\n:white_check_mark: Approved, waiting for an owner to deploy it to production"
		text += ": approved"
	case promote.StateRejected:
		head += "\n:x: Rejected by QA"
		text += ": rejected"
	case promote.StatePromoting:
		head += "\n:rocket: Deploying to production… (asked by " + mention(b.PromotedBy) + ")"
		text += ": deploying to production"
	case promote.StatePromoteFailed:
		head += "\n:x: Deploying to production failed:\n" + codeBlock(b.Error)
		text += ": deploying to production failed"
	case promote.StatePromoted, promote.StateRolledBack:
		head += "\n:rocket: Promoted to production" + spaceWhen(promotedAt(b)) + " by " + mention(b.PromotedBy)
		if b.MergedBy != "" {
			head += " (merged on GitHub by " + code(b.MergedBy) + ")"
		}
		rb, rbText := rollbackLine(b)
		head += lineAfter(prod.line) + lineAfter(rb)
		text += ", promoted to production by " + mention(b.PromotedBy)
		if rbText != "" {
			text += ". " + rbText
		}
	}
	var accessory *slack.Accessory
	if btn := openQAButton(b); btn != nil && b.State != promote.StatePromoted && b.State != promote.StateRolledBack {
		accessory = slack.NewAccessory(btn)
	}
	d := draft{text: withAlerts(text, prod, qa)}
	d.alerts(prod)
	d.add(slack.NewSectionBlock(md(head, maxSectionText), nil, accessory))
	d.alerts(qa)
	d.add(facts(v, false))
	var refs string
	switch b.State {
	case promote.StatePromoted, promote.StatePromoting, promote.StateRolledBack:
		refs = joinNonEmpty(" · ", productionRefs(v), rollbackRefs(b))
	}
	d.context(labelled("Config commit", commitRef(v.CommitURL, b.QACommit)), tally(v), rejectedBy(v), refs)
	return d.message()
}

// channelEnded: an owner closed the build, the teardown of its QA
// environment did, or a newer build replaced it.
func channelEnded(v promote.BuildView) Message {
	b := v.Build
	head := code(b.Image) + " from " + targetRef(b) + "\n"
	text := plain(b.Image, maxInline) + ": "
	switch {
	case closedByTeardown(b):
		closed := teardownClosed(v)
		head += closed + spaceWhen(b.UpdatedAt)
		text = plain(b.Image, maxInline) + " — " + closed
	case b.State == promote.StateClosed:
		head += "Closed by " + mention(b.ClosedBy) + spaceWhen(b.UpdatedAt)
		text += "closed by " + mention(b.ClosedBy)
	default:
		head += "Superseded by " + supersededBy(v)
		text += "superseded by " + supersededByPlain(v)
	}
	d := draft{text: text}
	d.section(head)
	d.add(facts(v, false))
	d.context(labelled("Config commit", commitRef(v.CommitURL, b.QACommit)), tally(v), rejectedBy(v))
	return d.message()
}
