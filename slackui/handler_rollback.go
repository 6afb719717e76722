package slackui

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/promotebot/promotebot/promote"
)

// askRollback opens the dialog confirming a rollback, if the person may
// roll back: of the image they chose in /promote rollback (a.Image), or of
// the one before the build's (the view's RollbackTo). The dialog keeps
// that image, so that its submission puts back what the person saw.
func (h *Handlers) askRollback(ctx context.Context, a promote.Action, channel, trigger string) {
	if err := h.Actor.Allowed(ctx, a); err != nil {
		h.tell(ctx, a, channel, err)
		return
	}
	v, err := h.Actor.View(ctx, a.BuildID)
	if err != nil {
		h.logger().Error("open rollback dialog", "build", a.BuildID, "user", a.User, "err", err)
		h.tell(ctx, a, channel, fmt.Errorf("could not open the dialog: %w", err))
		return
	}
	c := RollbackChoice{Build: a.BuildID, Image: a.Image, Channel: channel}
	if c.Image == "" {
		c.Image = v.RollbackTo
	}
	if c.Image == "" {
		h.tell(ctx, a, channel, &promote.Refusal{Reason: "No earlier production image is known to put back."})
		return
	}
	m, ok := RollbackModal(c, v)
	if !ok {
		h.tell(ctx, a, channel, &promote.Refusal{Reason: "That image's name is too long to confirm in Slack."})
		return
	}
	if err := h.Slack.OpenView(ctx, trigger, m); err != nil {
		h.logger().Error("open rollback dialog", "build", a.BuildID, "user", a.User, "err", err)
		h.tell(ctx, a, channel, fmt.Errorf("could not open the dialog: %w", err))
	}
}

// rollback carries out the rollback dialog's submission: the image it
// names, in place of its build's, with the reason typed. The dialog
// closes once that is recorded; a refusal is told in the conversation the
// dialog was opened from.
func (h *Handlers) rollback(ctx context.Context, cb slack.InteractionCallback) any {
	c, ok := decodeChoice(cb.View.PrivateMetadata)
	if !ok {
		h.logger().Warn("rollback dialog refused: unreadable private_metadata", "user", cb.User.ID)
		return map[string]any{"response_action": "errors", "errors": map[string]string{
			RollbackReasonBlockID: "This dialog cannot be read; close it and click Roll back again."}}
	}
	a := promote.Action{Kind: promote.ActionRollback, BuildID: c.Build, User: cb.User.ID, Image: c.Image,
		Reason: inputValue(cb.View.State, RollbackReasonBlockID, RollbackReasonActionID)}
	h.actRecorded(ctx, a, submissionKey(cb), c.Channel)
	return nil
}

// submissionKey identifies a dialog's submission by what Slack signed of
// it (the same in Slack's retries and in a replay), as a digest.
func submissionKey(cb slack.InteractionCallback) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{cb.APIAppID, cb.Team.ID, cb.User.ID,
		string(cb.Type), cb.View.CallbackID, cb.View.ID, cb.View.Hash, cb.View.PrivateMetadata}, "\x00")))
	return hex.EncodeToString(sum[:])
}

// rollbackOptions answers `/promote rollback <project>`.
func (h *Handlers) rollbackOptions(ctx context.Context, args []string, user string) Message {
	if len(args) == 0 {
		return Ephemeral("Which project? `/promote rollback <project>`")
	}
	o, err := h.Actor.RollbackOptions(ctx, args[0], user)
	if err != nil {
		return h.commandFailed(err, "Could not read production's history; try again.", "rollback options", args[0])
	}
	return RollbackMessage(o)
}
