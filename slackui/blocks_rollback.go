package slackui

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/promotebot/promotebot/promote"
)

// The rollback dialog's identifiers: its callback id, and the block and
// action ids of its reason input.
const (
	RollbackCallbackID     = "prod_rollback_confirm"
	RollbackReasonBlockID  = "reason"
	RollbackReasonActionID = "reason"
)

const (
	// maxChoice is the longest RollbackChoice as JSON: what a button's
	// value takes (a dialog's private_metadata takes 3000).
	maxChoice = 2000
	// maxRollbackChoices is how many earlier images /promote rollback
	// lists, one block each, within Slack's 50 blocks.
	maxRollbackChoices = 20
)

// RollbackChoice is what a rollback restores: Image, put back in
// production in place of the image of Build, the build production runs.
// As JSON it is the value of a /promote rollback button (without Channel)
// and the rollback dialog's private_metadata, so that the submission
// restores the image the owner was shown even if production moved since.
type RollbackChoice struct {
	Build string `json:"build"`
	Image string `json:"image"`
	// Channel is the conversation the dialog was opened from: a refusal
	// of the submission is told there.
	Channel string `json:"channel,omitempty"`
}

// encode is c as JSON, or false when it is longer than Slack lets a
// button's value be.
func (c RollbackChoice) encode() (string, bool) {
	raw, err := json.Marshal(c)
	if err != nil || len(raw) > maxChoice {
		return "", false
	}
	return string(raw), true
}

// decodeChoice reads an encoded RollbackChoice; false unless it names a
// build and an image.
func decodeChoice(s string) (RollbackChoice, bool) {
	var c RollbackChoice
	if len(s) > maxChoice+100 || json.Unmarshal([]byte(s), &c) != nil || c.Build == "" || c.Image == "" {
		return RollbackChoice{}, false
	}
	return c, true
}

// rollbackButton is the Roll back button of the build production runs, or
// nil: it is there while an earlier image is known (RollbackTo) and no
// rollback of the build is under way. Its value is the build id.
func rollbackButton(v promote.BuildView) *slack.ButtonBlockElement {
	b := v.Build
	if v.RollbackTo == "" || b.State != promote.StatePromoted || b.Rollback.Pending() {
		return nil
	}
	return slack.NewButtonBlockElement(ActionProdRollback, b.ID, pt("Roll back", maxButtonText)).
		WithStyle(slack.StyleDanger)
}

// rollbackOffer says what the Roll back button does, when there is one.
func rollbackOffer(v promote.BuildView) string {
	if rollbackButton(v) == nil {
		return ""
	}
	return "*Roll back* (owners) puts " + code(v.RollbackTo) + " back in production"
}

// productionAlerts adds the production rollout's alerts, with btn (the
// Roll back button, or nil) beside them: a failing production is when it
// is wanted. It returns btn when there were no alerts to put it beside,
// for the message's actions.
func (d *draft) productionAlerts(prod rolloutReport, btn *slack.ButtonBlockElement) *slack.ButtonBlockElement {
	if len(prod.alerts) == 0 {
		return btn
	}
	var accessory *slack.Accessory
	if btn != nil {
		accessory = slack.NewAccessory(btn)
	}
	d.add(slack.NewSectionBlock(md(strings.Join(prod.alerts, "\n"), maxSectionText), nil, accessory))
	return nil
}

// actions adds an actions block of the buttons that are not nil, if any.
func (d *draft) actions(btns ...*slack.ButtonBlockElement) {
	var els []slack.BlockElement
	for _, b := range btns {
		if b != nil {
			els = append(els, b)
		}
	}
	if len(els) > 0 {
		d.add(slack.NewActionBlock("", els...))
	}
}

// rollbackLine tells of the build's rollback, in mrkdwn and for the
// fallback text: done (rolled-back), or under way or failed (a promoted
// build); "" when there is nothing to tell.
func rollbackLine(b promote.Build) (line, text string) {
	r := b.Rollback
	switch {
	case b.State == promote.StateRolledBack && r == nil:
		return ":rewind: Rolled back", "Rolled back"
	case b.State == promote.StateRolledBack:
		why, whyPlain := rollbackReason(b)
		by := rollbackBy(r)
		if r.Auto {
			by += " (autoRollback)"
		}
		return ":rewind: Rolled back by " + by + " to " + code(r.Image) + why,
			"Rolled back by " + by + " to " + plain(r.Image, maxInline) + whyPlain
	case b.State != promote.StatePromoted || r == nil:
		return "", ""
	case r.Error != "":
		return ":x: Rollback failed: " + codeSpan(squash(r.Error), maxErrorText),
			"Rollback failed: " + plain(r.Error, maxPlainError)
	case r.Pending() && r.Auto:
		return ":rewind: Rolling back to " + code(r.Image) + " (autoRollback)",
			"Rolling back to " + plain(r.Image, maxInline) + " (autoRollback)"
	case r.Pending():
		return ":rewind: Rolling back to " + code(r.Image) + " (asked by " + rollbackBy(r) + ")",
			"Rolling back to " + plain(r.Image, maxInline) + " (asked by " + rollbackBy(r) + ")"
	}
	return "", ""
}

// rollbackBy names who asked for the rollback: the owner, or promotebot
// for autoRollback.
func rollbackBy(r *promote.Rollback) string {
	switch {
	case r.Auto:
		return "promotebot"
	case r.By != "":
		return mention(r.By)
	case strings.TrimSpace(r.ByName) != "":
		return escapeClip(strings.TrimSpace(oneLine(r.ByName)), maxInline)
	}
	return "someone"
}

// rollbackReason is ": <reason>" for an owner's rollback with a reason,
// " (production degraded: <controller message>)" for autoRollback's, in
// mrkdwn and for the fallback text; "" without one.
func rollbackReason(b promote.Build) (why, text string) {
	r := b.Rollback
	if r.Auto {
		msg := r.Reason
		if strings.TrimSpace(msg) == "" && b.Rollout.Production != nil {
			msg = b.Rollout.Production.Message
		}
		return " (production degraded: " + controllerMessage(msg, maxRolloutMessage) + ")",
			" (production degraded: " + controllerMessagePlain(msg) + ")"
	}
	if strings.TrimSpace(r.Reason) == "" {
		return "", ""
	}
	return ": " + prose(r.Reason, maxReason), ": " + prose(r.Reason, maxShortReason)
}

// rollbackRefs is "Rollback pull request #n · Rollback commit abc1234",
// while the rollback is news: done, under way or failed (not once a later
// rollback put the build back).
func rollbackRefs(b promote.Build) string {
	if line, _ := rollbackLine(b); line == "" || b.Rollback == nil {
		return ""
	}
	return joinNonEmpty(" · ",
		labelled("Rollback pull request", prRef(b.Rollback.PullRequest)),
		labelled("Rollback commit", commitRef("", b.Rollback.Commit)))
}

// rollbackMessage is the channel's news of a rollback, from the view of
// the build it replaced: "<@owner> rolled back <project> from `<image>` to
// `<image>`: <reason>".
func rollbackMessage(v promote.BuildView) Message {
	b, r := v.Build, v.Build.Rollback
	name := escapeClip(oneLine(projectName(v)), maxInline)
	by, to, toPlain := "someone", "an earlier image", "an earlier image"
	var why, whyPlain string
	if r != nil {
		by, to, toPlain = rollbackBy(r), code(r.Image), plain(r.Image, maxInline)
		why, whyPlain = rollbackReason(b)
	}
	d := draft{text: by + " rolled back " + name + " from " + plain(b.Image, maxInline) + " to " + toPlain + whyPlain}
	d.section(by + " rolled back " + name + " from " + code(b.Image) + " to " + to + why)
	d.context(rollbackRefs(b))
	return d.message()
}

// RollbackModal is the dialog a Roll back button opens: it names the image
// put back (c.Image) and the one it replaces (v's), and takes an optional
// one-line reason, up to 500 characters, which the commit and the channel
// show. Its private_metadata is c as JSON; false when c is too long for
// Slack to carry.
func RollbackModal(c RollbackChoice, v promote.BuildView) (slack.ModalViewRequest, bool) {
	meta, ok := c.encode()
	if !ok {
		return slack.ModalViewRequest{}, false
	}
	input := slack.NewPlainTextInputBlockElement(
		pt("Why? The commit and the channel will show it.", maxHeaderText), RollbackReasonActionID).
		WithMaxLength(maxReason)
	reason := slack.NewInputBlock(RollbackReasonBlockID, pt("Reason", maxFieldText), nil, input).WithOptional(true)
	ask := "Put " + code(c.Image) + " back in production in place of " + code(v.Build.Image) + "?"
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      RollbackCallbackID,
		PrivateMetadata: meta,
		Title:           pt("Roll back production", maxModalTitle),
		Submit:          pt("Roll back", maxModalTitle),
		Close:           pt("Cancel", maxModalTitle),
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewSectionBlock(md(ask, maxSectionText), nil, nil),
			slack.NewContextBlock("", md("Project: "+escapeClip(oneLine(projectName(v)), maxInline), maxFieldText)),
			reason,
		}},
	}, true
}

// RollbackMessage answers `/promote rollback <project>`: the image
// production runs, and the earlier ones newest first, each with a button
// that opens the rollback dialog.
func RollbackMessage(o promote.RollbackOptions) Message {
	name := projectName(promote.BuildView{Project: o.Project})
	if name == "" {
		name = "Unknown project"
	}
	var d draft
	d.add(slack.NewHeaderBlock(pt(escapeClip(oneLine(name), maxHeaderText), maxHeaderText)))
	cur := o.Current
	if cur == nil {
		d.section("Nothing to roll back: no build of " + escapeClip(oneLine(name), maxInline) +
			" is known to run in production.")
		d.text = plain(name, maxInline) + ": nothing to roll back, no build is known to run in production"
		return d.message()
	}
	line, linePlain := rollbackLine(*cur)
	d.section(":rocket: *Production* runs " + code(cur.Image) + statusSince(promotedAt(*cur)) +
		" by " + mention(cur.PromotedBy) + lineAfter(line))
	d.text = plain(name, maxInline) + ": production runs " + plain(cur.Image, maxInline)
	if linePlain != "" {
		d.text += ". " + linePlain
	}
	if len(o.Choices) == 0 {
		d.section("*Earlier production images*: none in the config repository's history")
		d.text += "; no earlier image"
		return d.message()
	}
	d.text += "; " + countImages(len(o.Choices))
	offer := cur.State == promote.StatePromoted && !cur.Rollback.Pending()
	d.section("*Earlier production images*, newest first")
	for _, c := range o.Choices[:min(len(o.Choices), maxRollbackChoices)] {
		d.add(choiceBlock(cur.ID, c, offer))
	}
	var more string
	if n := len(o.Choices) - maxRollbackChoices; n > 0 {
		more = fmt.Sprintf("…and %d older", n)
	}
	note := "Each button asks you to confirm, with an optional reason; the channel is told."
	if !offer {
		note = "No rollback can be asked now: production runs no promoted build, or a rollback is under way."
	}
	d.context(more, note)
	return d.message()
}

// choiceBlock is one earlier production image: the image, when it went
// in, its commit, whether that change was itself a rollback, and (when
// offer) the button that puts it back in place of build's.
func choiceBlock(build string, c promote.ProductionChange, offer bool) *slack.SectionBlock {
	parts := []string{code(c.Image)}
	if !c.At.IsZero() {
		parts = append(parts, when(c.At))
	}
	if c.Commit != "" {
		parts = append(parts, code(shortSHA(c.Commit)))
	}
	if c.RollbackOf != "" {
		parts = append(parts, ":rewind: rollback")
	}
	var accessory *slack.Accessory
	if offer {
		if value, ok := (RollbackChoice{Build: build, Image: c.Image}).encode(); ok {
			accessory = slack.NewAccessory(slack.NewButtonBlockElement(ActionProdRollbackTo, value,
				pt("Roll back to this", maxButtonText)))
		} else {
			parts = append(parts, "_too long to choose here_")
		}
	}
	return slack.NewSectionBlock(md(strings.Join(parts, " · "), maxSectionText), nil, accessory)
}

// countImages is "1 earlier image", "n earlier images".
func countImages(n int) string {
	if n == 1 {
		return "1 earlier image"
	}
	return fmt.Sprintf("%d earlier images", n)
}
