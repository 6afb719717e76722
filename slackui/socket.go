package slackui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/promotebot/promotebot/promote"
)

// socketTransient are the error codes of apps.connections.open worth
// retrying; any other code (invalid_auth, not_allowed_token_type for a bot
// token given as the app token, missing_scope, …) is a configuration
// mistake that no retry fixes.
var socketTransient = map[string]bool{
	"internal_error": true, "fatal_error": true, "service_unavailable": true,
	"request_timeout": true, "ratelimited": true, "team_added_to_org": true,
}

// socketTooLong replaces a slash command's answer that Slack would drop:
// Socket Mode acknowledgements must stay under 20 KB.
var socketTooLong = map[string]any{"response_type": "ephemeral",
	"text": "The answer is too long to show here; ask an owner to look at the logs."}

// RunSocketMode serves Slack's button clicks, dialog submissions and the
// /promote command over Socket Mode instead of a public Request URL: with
// the app-level token (xapp-…) it asks apps.connections.open at apiURL
// (https://slack.com/api/ or a test server; it must end in "/") for a
// websocket URL, receives the envelopes on that websocket, and
// acknowledges each with the answer an HTTP route would have written
// (h.Interaction, h.Command). There is no signature to verify in Socket
// Mode: the websocket itself was opened with the app token, so
// h.SigningSecret is not used. Each envelope is handled on its own
// goroutine, so a slow one does not hold the others past Slack's 3 s.
//
// Dropped connections, Slack's disconnect requests and transient errors
// are retried with backoff. A refused app token (invalid_auth, a bot token
// in its place, …) is permanent: RunSocketMode returns an error for which
// promote.IsPermanent holds. It returns nil when ctx ends. Tokens are never
// logged, nor the websocket URL's ticket.
func RunSocketMode(ctx context.Context, appToken, botToken, apiURL string, h *Handlers, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if !strings.HasPrefix(appToken, "xapp-") {
		return promote.Permanent(errors.New("slack socket mode: the app-level token must start with xapp-"))
	}
	api := slack.New(botToken, slack.OptionAPIURL(apiURL), slack.OptionAppLevelToken(appToken),
		slack.OptionHTTPClient(&http.Client{Timeout: callTimeout}))
	s := &socketSession{client: socketmode.New(api), h: h, log: log}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- s.client.RunContext(runCtx) }()

	var err error
	ended := false
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case rerr := <-runErr:
			ended = true
			if ctx.Err() == nil {
				// RunContext gives up only on a refused token.
				err = promote.Permanent(fmt.Errorf("slack socket mode: apps.connections.open: %w", redactURLErr(rerr)))
			}
			break loop
		case evt := <-s.client.Events:
			if err = s.dispatch(runCtx, evt); err != nil {
				break loop
			}
		}
	}
	stop()
	if !ended {
		<-runErr
	}
	s.wg.Wait()
	return err
}

// socketSession is one RunSocketMode: the client and the envelopes being
// answered.
type socketSession struct {
	client *socketmode.Client
	h      *Handlers
	log    *slog.Logger
	wg     sync.WaitGroup
}

// dispatch answers an envelope or logs a connection event; it returns an
// error for a connection that can never succeed.
func (s *socketSession) dispatch(ctx context.Context, evt socketmode.Event) error {
	switch evt.Type {
	case socketmode.EventTypeInteractive:
		cb, ok := evt.Data.(slack.InteractionCallback)
		if !ok || cb.User.ID == "" {
			s.log.Warn("slack socket mode: interaction names no user; ignored")
			s.ack(ctx, evt.Request, nil, nil)
			return nil
		}
		s.answer(ctx, evt.Request, nil, func(ctx context.Context) any { return s.h.Interaction(ctx, cb) })
	case socketmode.EventTypeSlashCommand:
		cmd, ok := evt.Data.(slack.SlashCommand)
		if !ok {
			s.ack(ctx, evt.Request, nil, nil)
			return nil
		}
		s.answer(ctx, evt.Request, socketTooLong, func(ctx context.Context) any { return s.h.Command(ctx, cmd) })
	case socketmode.EventTypeConnecting:
		if ev, ok := evt.Data.(*slack.ConnectingEvent); ok {
			s.log.Debug("slack socket mode connecting", "attempt", ev.Attempt, "connection", ev.ConnectionCount)
		}
	case socketmode.EventTypeConnected:
		if ev, ok := evt.Data.(*socketmode.ConnectedEvent); ok {
			s.log.Info("slack socket mode connected", "connection", ev.ConnectionCount)
		}
	case socketmode.EventTypeConnectionError:
		return s.connectionError(evt)
	case socketmode.EventTypeInvalidAuth:
		return promote.Permanent(errors.New("slack socket mode: apps.connections.open: the app-level token was refused"))
	case socketmode.EventTypeHello:
		if evt.Request != nil {
			s.log.Debug("slack socket mode hello", "connections", evt.Request.NumConnections)
		}
	case socketmode.EventTypeIncomingError, socketmode.EventTypeErrorWriteFailed, socketmode.EventTypeErrorBadMessage:
		s.log.Warn("slack socket mode", "event", string(evt.Type), "err", socketEventErr(evt.Data))
	default:
		// events_api and whatever Slack adds: not ours, but unacknowledged
		// envelopes are delivered again.
		s.ack(ctx, evt.Request, nil, nil)
	}
	return nil
}

// connectionError logs a failed attempt to connect, which socketmode
// retries; it returns an error when Slack refused the app token.
func (s *socketSession) connectionError(evt socketmode.Event) error {
	ev, ok := evt.Data.(*slack.ConnectionErrorEvent)
	if !ok {
		return nil
	}
	var se slack.SlackErrorResponse
	if errors.As(ev.ErrorObj, &se) && !socketTransient[se.Err] {
		return promote.Permanent(fmt.Errorf("slack socket mode: apps.connections.open: %w", ev.ErrorObj))
	}
	s.log.Warn("slack socket mode: cannot connect", "attempt", ev.Attempt, "retry_in", ev.Backoff, "err", redactURLErr(ev.ErrorObj))
	return nil
}

// answer computes an envelope's answer on its own goroutine and
// acknowledges the envelope with it; fallback replaces an answer Slack
// would drop for its size (nil: an empty acknowledgement).
func (s *socketSession) answer(ctx context.Context, req *socketmode.Request, fallback any, f func(context.Context) any) {
	s.wg.Go(func() {
		s.ack(ctx, req, f(ctx), fallback)
	})
}

// ack acknowledges req with payload (nil: none). An acknowledgement that
// cannot be sent is retried with fallback, so that Slack at least stops
// delivering the envelope again.
func (s *socketSession) ack(ctx context.Context, req *socketmode.Request, payload, fallback any) {
	if req == nil || req.EnvelopeID == "" {
		return // hello carries no envelope
	}
	err := s.client.AckCtx(ctx, req.EnvelopeID, payload)
	if err != nil && payload != nil && ctx.Err() == nil {
		s.log.Warn("slack socket mode: answer not sent", "envelope", req.EnvelopeID, "type", req.Type, "err", err)
		err = s.client.AckCtx(ctx, req.EnvelopeID, fallback)
	}
	if err != nil {
		s.log.Warn("slack socket mode: acknowledgement not sent", "envelope", req.EnvelopeID, "type", req.Type, "err", err)
	}
}

// socketEventErr is the cause carried by socketmode's error events.
func socketEventErr(data any) error {
	switch d := data.(type) {
	case *slack.IncomingEventError:
		return redactURLErr(d.ErrorObj)
	case *socketmode.ErrorWriteFailed:
		return redactURLErr(d.Cause)
	case *socketmode.ErrorBadMessage:
		return redactURLErr(d.Cause) // not d.Message: payloads carry a verification token
	}
	return fmt.Errorf("unexpected %T", data)
}

// redactURLErr keeps only the scheme and host of a URL in err: the websocket
// URL Slack hands out carries a ticket that opens a connection.
func redactURLErr(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	origin := "[url]"
	if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
		origin = u.Scheme + "://" + u.Host
	}
	return fmt.Errorf("%s %s: %w", ue.Op, origin, ue.Err)
}
