package slackui

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/promotebot/promotebot/promote"
)

// click handles a button click: once per signed click, and only when it
// was made since the build last changed (the domain compares Action.At).
func (h *Handlers) click(ctx context.Context, cb slack.InteractionCallback, act slack.BlockAction) {
	at, ok := clickTime(act.ActionTs)
	if !ok {
		h.logger().Warn("slack click refused: no action_ts", "user", cb.User.ID, "action", act.ActionID)
		return
	}
	a := promote.Action{Kind: promote.ActionKind(act.ActionID), BuildID: act.Value, User: cb.User.ID, At: at}
	if act.ActionID == ActionProdRollbackTo {
		c, ok := decodeChoice(act.Value)
		if !ok {
			h.logger().Warn("slack click refused: unreadable rollback choice", "user", cb.User.ID)
			return
		}
		a.Kind, a.BuildID, a.Image = promote.ActionRollback, c.Build, c.Image
	}
	key := clickKey(cb, act)
	channel := cb.Channel.ID
	if channel == "" {
		channel = cb.Container.ChannelID
	}
	switch a.Kind {
	case promote.ActionApprove, promote.ActionDeploy, promote.ActionClose, promote.ActionTeardown, promote.ActionKeep:
		h.actRecorded(ctx, a, key, channel)
	case promote.ActionReject:
		h.later(func(ctx context.Context) {
			if h.first(ctx, a, key, channel) {
				h.askReason(ctx, a, channel, cb.TriggerID)
			}
		})
	case promote.ActionRollback:
		h.later(func(ctx context.Context) {
			if h.first(ctx, a, key, channel) {
				h.askRollback(ctx, a, channel, cb.TriggerID)
			}
		})
	}
}

// actRecorded carries out a after the answer, and holds the answer
// (within Slack's 3 s) until a is recorded, so that a 200 means it is kept
// across a crash.
func (h *Handlers) actRecorded(ctx context.Context, a promote.Action, key, channel string) {
	recorded := make(chan struct{})
	h.later(func(ctx context.Context) { h.act(ctx, a, key, channel, recorded) })
	timer := time.NewTimer(answerWithin)
	defer timer.Stop()
	select {
	case <-recorded:
	case <-timer.C:
	case <-ctx.Done():
	}
}

// act carries out a click not handled before, closes recorded, and tells
// the person if it was refused.
func (h *Handlers) act(ctx context.Context, a promote.Action, key, channel string, recorded chan<- struct{}) {
	if !h.first(ctx, a, key, channel) {
		close(recorded)
		return
	}
	_, err := h.Actor.Act(ctx, a)
	close(recorded)
	h.tell(ctx, a, channel, err)
}

// first records the click key and reports whether it is new. A click seen
// before (Slack delivering it again, or a captured request replayed) does
// nothing and tells nobody: its clicker was already answered.
func (h *Handlers) first(ctx context.Context, a promote.Action, key, channel string) bool {
	if h.Clicks == nil {
		h.logger().Error("slack click refused: no record of clicks is configured", "user", a.User, "action", a.Kind)
		return false
	}
	first, err := h.Clicks.FirstClick(ctx, key, time.Now())
	if err != nil {
		h.tell(ctx, a, channel, err)
		return false
	}
	if !first {
		h.logger().Warn("slack click already handled: ignored", "build", a.BuildID, "user", a.User, "action", a.Kind)
	}
	return first
}

// clickKey identifies a click by what Slack signed of it (the same in a
// replay of the request and in Slack's own retries), as a digest: the
// record keeps nothing a person wrote.
func clickKey(cb slack.InteractionCallback, act slack.BlockAction) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{cb.APIAppID, cb.Team.ID, cb.User.ID, cb.TriggerID,
		act.ActionID, act.BlockID, act.Value, act.ActionTs}, "\x00")))
	return hex.EncodeToString(sum[:])
}

// clickTime reads Slack's action_ts: seconds, a dot, and a fraction
// ("1700000000.000100").
func clickTime(ts string) (time.Time, bool) {
	sec, frac, ok := strings.Cut(ts, ".")
	if !ok || !digits(sec) || !digits(frac) || len(sec) > 12 || len(frac) > 9 {
		return time.Time{}, false
	}
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	ns, err := strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(s, ns).UTC(), true
}

func digits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
