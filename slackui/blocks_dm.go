package slackui

import (
	"strings"

	"github.com/slack-go/slack"

	"github.com/promotebot/promotebot/promote"
)

// ownerMessage is an owner's direct message: the build, what the cluster
// reported of it, who does QA, the tally, and Deploy and Close while the
// build can still take them, Roll back once it is in production, Tear
// down while its QA environment lives. A failing production rollout comes
// first, Roll back beside it.
func ownerMessage(v promote.BuildView) Message {
	b := v.Build
	qa, prod := qaRollout(v), productionRollout(v)
	head, text := ownerHeadline(v)
	rb, rbText := rollbackLine(b)
	if rbText != "" {
		text += ". " + rbText
	}
	d := draft{text: withAlerts(text, prod, qa)}
	rollback := d.productionAlerts(prod, rollbackButton(v))
	d.section(head + lineAfter(qa.line) + lineAfter(prod.line) + lineAfter(rb))
	d.alerts(qa)
	d.add(facts(v, onQA(b.State)))
	d.context(labelled("QA:", mentions(v.QAMembers)), tally(v))
	teardown := teardownButton(v)
	switch b.State {
	case promote.StateQAReady, promote.StateApproved, promote.StatePromoteFailed:
		d.actions(deployButton(b), closeButton(b), teardown)
	case promote.StateRejected:
		// Only a new build lifts a rejection (the service refuses Deploy):
		// closing is all that is left to do.
		d.actions(closeButton(b), teardown)
	case promote.StatePromoted:
		d.actions(rollback, teardown)
	default:
		d.actions(teardown)
	}
	d.context(ownerNote(v))
	return d.message()
}

// ownerHeadline is the owner message's first section and fallback text.
func ownerHeadline(v promote.BuildView) (head, text string) {
	b := v.Build
	img, imgPlain := code(b.Image), plain(b.Image, maxInline)
	switch b.State {
	case promote.StateReceived, promote.StateDeploying, "":
		return ":hourglass_flowing_sand: Deploying " + img + " to " + envRef(b) + "…",
			"Deploying " + imgPlain + " to " + envPlain(b) + "…"
	case promote.StateQAFailed:
		return ":x: Deploying " + img + " to " + envRef(b) + " failed:\n" + codeBlock(b.Error),
			"Deploying " + imgPlain + " to " + envPlain(b) + " failed: " + plain(b.Error, maxPlainError)
	case promote.StateQAReady:
		return "New build of " + escapeClip(projectName(v), maxInline) + " ready for QA: " + img + " on " + envRef(b),
			"New build of " + plain(projectName(v), maxInline) + " ready for QA: " + imgPlain
	case promote.StateApproved:
		return ":white_check_mark: " + img + " is approved and ready for production",
			imgPlain + " is approved and ready for production"
	case promote.StateRejected:
		return ":x: " + img + " was rejected by QA", imgPlain + " was rejected by QA"
	case promote.StatePromoting:
		return ":rocket: Deploying " + img + " to production… (asked by " + mention(b.PromotedBy) + ")",
			"Deploying " + imgPlain + " to production…"
	case promote.StatePromoteFailed:
		return ":x: Deploying " + img + " to production failed:\n" + codeBlock(b.Error),
			"Deploying " + imgPlain + " to production failed: " + plain(b.Error, maxPlainError)
	case promote.StatePromoted, promote.StateRolledBack:
		return ":rocket: " + mention(b.PromotedBy) + " deployed " + img + " to production" + spaceWhen(promotedAt(b)),
			mention(b.PromotedBy) + " deployed " + imgPlain + " to production"
	case promote.StateClosed:
		if closedByTeardown(b) {
			closed := teardownClosed(v)
			return ":wastebasket: " + img + " on " + envRef(b) + "\n" + closed + spaceWhen(b.UpdatedAt),
				imgPlain + " on " + envPlain(b) + " — " + closed
		}
		return img + " was closed by " + mention(b.ClosedBy) + spaceWhen(b.UpdatedAt),
			imgPlain + " was closed by " + mention(b.ClosedBy)
	case promote.StateSuperseded:
		return img + " was superseded by " + supersededBy(v),
			imgPlain + " was superseded by " + supersededByPlain(v)
	}
	return img + ": " + escapeClip(string(b.State), maxInline), imgPlain + ": " + plain(string(b.State), maxInline)
}

// ownerNote says why there are no buttons, or what stands in the way.
func ownerNote(v promote.BuildView) string {
	b := v.Build
	switch b.State {
	case promote.StateReceived, promote.StateDeploying, "":
		return "Deploy and Close appear once the build is on QA."
	case promote.StateQAFailed:
		return "Nothing to deploy: the QA deploy failed. A new build brings the buttons back."
	case promote.StateQAReady:
		return needsMore(v)
	case promote.StateRejected:
		return rejectedBlocking(v)
	case promote.StatePromoting:
		return joinNonEmpty(" · ", productionRefs(v), labelled("Waiting:", prose(b.Error, maxShortReason)))
	case promote.StatePromoteFailed:
		return "You can try again, or close the build."
	case promote.StatePromoted:
		return joinNonEmpty(" · ", productionRefs(v), rollbackRefs(b), rollbackOffer(v))
	case promote.StateRolledBack:
		return joinNonEmpty(" · ", productionRefs(v), rollbackRefs(b))
	case promote.StateSuperseded:
		return "Nothing left to do here: the newer build has its own message."
	case promote.StateClosed:
		if closedByTeardown(b) {
			return "A new build of " + targetRef(b) + " brings the QA environment back."
		}
	}
	return ""
}

// closeButton is the Close button, asking to confirm.
func closeButton(b promote.Build) *slack.ButtonBlockElement {
	return slack.NewButtonBlockElement(ActionBuildClose, b.ID, pt("Close", maxButtonText)).
		WithStyle(slack.StyleDanger).
		WithConfirm(slack.NewConfirmationBlockObject(
			pt("Close this build?", maxConfirmTitle),
			pt("Close "+plain(b.Image, 150)+"? Owners and QA can no longer act on it, and an open pull request is closed.",
				maxConfirmText),
			pt("Close", maxConfirmButton),
			pt("Cancel", maxConfirmButton)).WithStyle(slack.StyleDanger))
}

// deployButton is the Deploy to production button, asking to confirm.
func deployButton(b promote.Build) *slack.ButtonBlockElement {
	return slack.NewButtonBlockElement(ActionProdDeploy, b.ID, pt("Deploy to production", maxButtonText)).
		WithStyle(slack.StylePrimary).
		WithConfirm(slack.NewConfirmationBlockObject(
			pt("Deploy to production?", maxConfirmTitle),
			pt("Deploy "+plain(b.Image, 150)+" to production?", maxConfirmText),
			pt("Deploy", maxConfirmButton),
			pt("Cancel", maxConfirmButton)).WithStyle(slack.StylePrimary))
}

// qaMessage is a QA member's direct message: the build, the QA URL, a
// warning when the QA environment may not run the build, and Approve and
// Reject until they have given their verdict.
func qaMessage(v promote.BuildView, recipient string) Message {
	b := v.Build
	mine, voted := verdictOf(v, recipient)
	canVote := !voted && (b.State == promote.StateQAReady || b.State == promote.StateApproved)
	head, text := qaHeadline(v, voted)
	if b.State == promote.StateRolledBack {
		rb, rbText := rollbackLine(b)
		head += "\n" + rb
		text += ". " + rbText
	}
	warnings := qaWarnings(v)
	switch {
	case voted:
		line, linePlain := yourVerdict(mine)
		head += "\n" + line
		text += ". " + linePlain
	case canVote:
		head += "\nPlease test it, then approve or reject it."
	}
	d := draft{text: withAlerts(text, warnings)}
	d.section(head)
	d.alerts(warnings)
	d.add(facts(v, onQA(b.State) && !canVote))
	if canVote {
		d.add(qaActions(b))
	}
	note := ""
	if !voted {
		note = qaNote(v)
	}
	d.context(tally(v), note)
	return d.message()
}

// qaHeadline is the QA message's first section and fallback text; voted
// says whether the recipient already gave their verdict.
func qaHeadline(v promote.BuildView, voted bool) (head, text string) {
	b := v.Build
	img, imgPlain := code(b.Image), plain(b.Image, maxInline)
	switch b.State {
	case promote.StateReceived, promote.StateDeploying, "":
		return ":hourglass_flowing_sand: Deploying " + img + " to " + envRef(b) + "…",
			"Deploying " + imgPlain + " to " + envPlain(b) + "…"
	case promote.StateQAFailed:
		return ":x: Deploying " + img + " to " + envRef(b) + " failed",
			"Deploying " + imgPlain + " to " + envPlain(b) + " failed"
	case promote.StateQAReady, promote.StateApproved:
		if voted {
			return img + " on " + envRef(b), imgPlain + " on " + envPlain(b)
		}
		return "Ready for QA: " + img + " on " + envRef(b),
			"Ready for QA: " + imgPlain + " on " + envPlain(b)
	case promote.StateRejected:
		return ":x: " + img + " was rejected", imgPlain + " was rejected"
	case promote.StatePromoting, promote.StatePromoteFailed:
		return ":rocket: " + img + " is on its way to production", imgPlain + " is on its way to production"
	case promote.StatePromoted:
		return ":rocket: " + mention(b.PromotedBy) + " deployed " + img + " to production" + spaceWhen(promotedAt(b)),
			mention(b.PromotedBy) + " deployed " + imgPlain + " to production"
	}
	return ownerHeadline(v)
}

// qaNote says why a QA member without a verdict has no buttons.
func qaNote(v promote.BuildView) string {
	switch v.Build.State {
	case promote.StateReceived, promote.StateDeploying, "":
		return "Approve and Reject appear once the build is on QA."
	case promote.StateQAFailed:
		return "Nothing to test: the QA deploy failed."
	case promote.StateRejected:
		return rejectedBy(v) + ". No verdict needed from you."
	}
	return ""
}

// qaActions are Approve, Reject (which opens the reason modal) and the QA link.
func qaActions(b promote.Build) *slack.ActionBlock {
	els := []slack.BlockElement{
		slack.NewButtonBlockElement(ActionQAApprove, b.ID, pt("Approve", maxButtonText)).WithStyle(slack.StylePrimary),
		slack.NewButtonBlockElement(ActionQAReject, b.ID, pt("Reject", maxButtonText)).WithStyle(slack.StyleDanger),
	}
	if btn := openQAButton(b); btn != nil {
		els = append(els, btn)
	}
	return slack.NewActionBlock("", els...)
}

// verdictOf is the recipient's latest verdict, if they gave one.
func verdictOf(v promote.BuildView, user string) (promote.Approval, bool) {
	for i := len(v.Approvals) - 1; i >= 0; i-- {
		if user != "" && v.Approvals[i].User == user {
			return v.Approvals[i], true
		}
	}
	return promote.Approval{}, false
}

// yourVerdict tells a QA member what they decided, in mrkdwn and in plain
// text.
func yourVerdict(a promote.Approval) (line, text string) {
	if a.Verdict == promote.Approve {
		return ":white_check_mark: You approved this build" + spaceWhen(a.At), "You approved this build"
	}
	line, text = ":x: You rejected this build"+spaceWhen(a.At), "You rejected this build"
	if r := strings.TrimSpace(a.Reason); r != "" {
		line += ": " + prose(r, maxReason)
		text += ": " + plain(r, maxShortReason)
	}
	return line, text
}
