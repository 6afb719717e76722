package slackui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/promotebot/promotebot/promote"
)

// callTimeout bounds one Web API call; a timeout is a transient failure.
const callTimeout = 10 * time.Second

// groupTTL is how long a user group's members and a person's profile are
// trusted before they are asked again.
const groupTTL = 5 * time.Minute

// Client is the bot's side of Slack's Web API: it posts and updates the
// messages about builds (promote.Notifier), tells who people are and who is
// in a user group (promote.Directory, cached), and answers people privately.
type Client struct {
	api *slack.Client
	log *slog.Logger
	now func() time.Time

	mu     sync.Mutex
	groups map[string]cached[[]string]
	people map[string]cached[promote.Person]
	// installation is where the token belongs, once Slack told.
	installation *Installation
}

type cached[T any] struct {
	v  T
	at time.Time
}

var (
	_ promote.Notifier  = (*Client)(nil)
	_ promote.Directory = (*Client)(nil)
)

// NewClient makes a client for the bot token, on the Web API at apiURL
// (https://slack.com/api/ or a test server; it must end in "/").
func NewClient(token, apiURL string, log *slog.Logger) *Client {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	api := slack.New(token, slack.OptionAPIURL(apiURL),
		slack.OptionHTTPClient(&http.Client{Timeout: callTimeout}))
	return &Client{api: api, log: log, now: time.Now,
		groups: map[string]cached[[]string]{}, people: map[string]cached[promote.Person]{}}
}

// Post implements promote.Notifier.
func (c *Client) Post(ctx context.Context, p promote.Post, parent *promote.Message) (string, string, error) {
	channel := p.View.Project.Channel
	var opts []slack.MsgOption
	switch {
	case parent != nil:
		channel = parent.Channel
		opts = append(opts, slack.MsgOptionTS(parent.TS))
	case p.Role == promote.MessageOwner || p.Role == promote.MessageQA:
		dm, err := c.openDM(ctx, p.Recipient)
		if err != nil {
			return "", "", err
		}
		channel = dm
	}
	m := Render(p)
	opts = append(opts, slack.MsgOptionText(m.Text, false), slack.MsgOptionBlocks(m.Blocks...),
		slack.MsgOptionMetadata(MessageMetadata(p)))
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	ch, ts, err := c.api.PostMessageContext(ctx, channel, opts...)
	if err != nil {
		return "", "", apiError("chat.postMessage", err)
	}
	c.log.Info("slack message posted", "build", p.View.Build.ID, "role", p.Role, "recipient", p.Recipient, "ts", ts)
	return ch, ts, nil
}

// MetadataEventType is the event_type of the metadata on every message the
// bot posts.
const MetadataEventType = "promotebot_message"

// MessageMetadata is what each posted message carries as Slack message
// metadata: which build it is about, its role and its recipient, so that
// other apps (and people reading the channel's history through the API) can
// tell the bot's messages apart without parsing their text.
func MessageMetadata(p promote.Post) slack.SlackMetadata {
	return slack.SlackMetadata{EventType: MetadataEventType, EventPayload: map[string]any{
		"build_id": p.View.Build.ID, "project": p.View.Build.Project,
		"role": string(p.Role), "recipient": p.Recipient,
	}}
}

// Update implements promote.Notifier.
func (c *Client) Update(ctx context.Context, channel, ts string, p promote.Post) error {
	m := Render(p)
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, _, _, err := c.api.UpdateMessageContext(ctx, channel, ts,
		slack.MsgOptionText(m.Text, false), slack.MsgOptionBlocks(m.Blocks...))
	if err != nil {
		return apiError("chat.update", err)
	}
	return nil
}

// Ephemeral shows mrkdwn (the bot's own text, see Notice) to user only, in
// channel.
func (c *Client) Ephemeral(ctx context.Context, channel, user, mrkdwn string) error {
	m := Notice(mrkdwn)
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, err := c.api.PostEphemeralContext(ctx, channel, user,
		slack.MsgOptionText(m.Text, false), slack.MsgOptionBlocks(m.Blocks...))
	if err != nil {
		return apiError("chat.postEphemeral", err)
	}
	return nil
}

// OpenView opens a modal for the click that gave triggerID.
func (c *Client) OpenView(ctx context.Context, triggerID string, v slack.ModalViewRequest) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := c.api.OpenViewContext(ctx, triggerID, v); err != nil {
		return apiError("views.open", err)
	}
	return nil
}

func (c *Client) openDM(ctx context.Context, user string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	ch, _, _, err := c.api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{user}})
	if err != nil {
		return "", apiError("conversations.open", err)
	}
	return ch.ID, nil
}

// Person implements promote.Directory (users.info, cached).
func (c *Client) Person(ctx context.Context, id string) (promote.Person, error) {
	if p, ok := lookup(c, c.people, id); ok {
		return p, nil
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	u, err := c.api.GetUserInfoContext(ctx, id)
	if err != nil {
		return promote.Person{}, apiError("users.info", err)
	}
	p := promote.Person{ID: u.ID, Name: u.Profile.DisplayName, Email: u.Profile.Email}
	if p.Name == "" {
		p.Name = u.RealName
	}
	if p.Name == "" {
		p.Name = u.Name
	}
	store(c, c.people, id, p)
	return p, nil
}

// GroupMembers implements promote.Directory (usergroups.users.list, cached
// for five minutes, so that a change of membership counts soon).
func (c *Client) GroupMembers(ctx context.Context, id string) ([]string, error) {
	if m, ok := lookup(c, c.groups, id); ok {
		return m, nil
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	members, err := c.api.GetUserGroupMembersContext(ctx, id)
	if err != nil {
		return nil, apiError("usergroups.users.list", err)
	}
	store(c, c.groups, id, members)
	return members, nil
}

func lookup[T any](c *Client, m map[string]cached[T], key string) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := m[key]
	if !ok || c.now().Sub(e.at) > groupTTL {
		var zero T
		return zero, false
	}
	return e.v, true
}

func store[T any](c *Client, m map[string]cached[T], key string, v T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m[key] = cached[T]{v: v, at: c.now()}
}

// permanentErrors are Slack's error codes that no retry can fix.
var permanentErrors = map[string]bool{
	"channel_not_found": true, "not_in_channel": true, "is_archived": true, "invalid_auth": true,
	"not_authed": true, "account_inactive": true, "token_revoked": true, "token_expired": true,
	"no_permission": true, "missing_scope": true, "user_not_found": true, "users_not_found": true,
	"message_not_found": true, "cant_update_message": true, "edit_window_closed": true,
	"msg_too_long": true, "invalid_blocks": true, "invalid_blocks_format": true, "no_text": true,
	"no_such_subteam": true, "user_not_in_channel": true, "thread_not_found": true,
	"invalid_trigger_id": true, "expired_trigger_id": true, "exchanged_trigger_id": true,
	"invalid_arguments": true, "channel_is_archived": true, "cannot_dm_bot": true,
}

// apiError turns a slack-go failure into the domain's terms where it
// enters: a rate limit says when to retry (*promote.RetryAfterError), an
// error code no retry can fix is permanent (promote.Permanent), anything
// else (5xx, timeouts, connection errors) is retried. Tokens never appear in
// these errors: slack-go sends them in a header.
func apiError(method string, err error) error {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return &promote.RetryAfterError{After: max(rl.RetryAfter, time.Second), Err: fmt.Errorf("slack %s: %w", method, err)}
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) && permanentErrors[se.Err] {
		return promote.Permanent(fmt.Errorf("slack %s: %s", method, se.Err))
	}
	return fmt.Errorf("slack %s: %w", method, err)
}
