package slackui

import (
	"context"
	"errors"
	"fmt"

	"github.com/slack-go/slack"

	"github.com/promotebot/promotebot/promote"
)

// Installation is where the bot's app is installed: one workspace (in an
// Enterprise Grid organization, one of its workspaces) and the app itself.
// A request signed with the app's secret but naming another workspace,
// enterprise or app is not for this bot, and is refused.
type Installation struct {
	TeamID       string // T…
	EnterpriseID string // E…, empty outside Enterprise Grid
	AppID        string // A…
}

// Admit returns nil when a request from team, enterprise and app is for
// this installation, or says what differs. An app installed across a whole
// organization is not served (the manifest sets org_deploy_enabled: false):
// such a request names no team of ours.
func (in Installation) Admit(team, enterprise, app string) error {
	switch {
	case app != in.AppID:
		return fmt.Errorf("app %q is not this bot's %s", app, in.AppID)
	case team != in.TeamID:
		return fmt.Errorf("workspace %q is not this bot's %s", team, in.TeamID)
	case enterprise != in.EnterpriseID:
		return fmt.Errorf("enterprise %q is not this bot's %q", enterprise, in.EnterpriseID)
	}
	return nil
}

// Installation asks Slack once where the bot token belongs: auth.test gives
// the workspace, the enterprise and the bot, bots.info the bot's app
// (auth.test does not name it). Once known it is kept; a failure is asked
// again next time. A token that is not a bot's, or an answer without a
// workspace (an organization-wide install), is a permanent error.
func (c *Client) Installation(ctx context.Context) (Installation, error) {
	c.mu.Lock()
	in := c.installation
	c.mu.Unlock()
	if in != nil {
		return *in, nil
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	auth, err := c.api.AuthTestContext(ctx)
	if err != nil {
		return Installation{}, apiError("auth.test", err)
	}
	if auth.BotID == "" || auth.TeamID == "" {
		return Installation{}, promote.Permanent(errors.New(
			"slack auth.test: the token names no bot or no workspace: a bot token of an app installed in one workspace is needed"))
	}
	bot, err := c.api.GetBotInfoContext(ctx, slack.GetBotInfoParameters{Bot: auth.BotID})
	if err != nil {
		return Installation{}, apiError("bots.info", err)
	}
	if bot.AppID == "" {
		return Installation{}, promote.Permanent(fmt.Errorf("slack bots.info: bot %s names no app", auth.BotID))
	}
	got := Installation{TeamID: auth.TeamID, EnterpriseID: auth.EnterpriseID, AppID: bot.AppID}
	c.mu.Lock()
	c.installation = &got
	c.mu.Unlock()
	c.log.Info("slack installation", "team", got.TeamID, "enterprise", got.EnterpriseID, "app", got.AppID)
	return got, nil
}

// foreign reports (and logs) a request naming another workspace, enterprise
// or app than the bot's own: a request signed with the app's secret from
// wherever else it is installed, or by whoever holds the secret. The bot's
// own installation not known yet (Slack unreachable) refuses too.
func (h *Handlers) foreign(ctx context.Context, kind, user, team, enterprise, app string) bool {
	err := errors.New("the bot's installation is not configured")
	if h.Installed != nil {
		ctx, cancel := context.WithTimeout(ctx, answerWithin)
		defer cancel()
		var in Installation
		if in, err = h.Installed.Installation(ctx); err == nil {
			err = in.Admit(team, enterprise, app)
		}
	}
	if err == nil {
		return false
	}
	h.logger().Warn("slack request from elsewhere refused", "type", kind, "user", user, "team", team,
		"enterprise", enterprise, "app", app, "reason", err)
	return true
}
