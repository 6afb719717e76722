package slackui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/promotebot/promotebot/promote"
)

// maxSlackBody bounds what is read of a request from Slack.
const maxSlackBody = 1 << 20

// answerWithin is how long a synchronous answer may take: Slack gives 3 s.
// (A variable only so that tests can shorten it.)
var answerWithin = 2500 * time.Millisecond

// workTimeout bounds the work done after a click was answered.
const workTimeout = 30 * time.Second

// Actor is the domain behind the buttons and the slash command
// (*promote.Service).
type Actor interface {
	Act(ctx context.Context, a promote.Action) (promote.Build, error)
	Allowed(ctx context.Context, a promote.Action) error
	View(ctx context.Context, id string) (promote.BuildView, error)
	Status(ctx context.Context, project string) (promote.StatusView, error)
	// RollbackOptions is what /promote rollback offers for project: the
	// build production runs and earlier production images, newest first.
	// Unknown project → *promote.Refusal.
	RollbackOptions(ctx context.Context, project, user string) (promote.RollbackOptions, error)
	// Environments is what /promote envs <project> shows. Unknown project → *promote.Refusal.
	Environments(ctx context.Context, project string) (promote.EnvironmentsView, error)
}

// Responder answers a person directly (*Client).
type Responder interface {
	Ephemeral(ctx context.Context, channel, user, text string) error
	OpenView(ctx context.Context, triggerID string, v slack.ModalViewRequest) error
}

// Handlers serve Slack's requests: button clicks and dialog submissions
// (POST /slack/interactions) and the /promote command (POST /slack/commands).
// Each request's signature is checked over the raw body, with a 5-minute
// window on its timestamp, before anything in it is read.
type Handlers struct {
	// SigningSecret is the Slack app's signing secret; empty refuses all.
	SigningSecret string
	Actor         Actor
	Slack         Responder
	Logger        *slog.Logger
	// Background is the server's lifetime: work done after an answer runs
	// under it.
	Background context.Context
	// Clicks remembers the clicks already handled (the store), so that a
	// signed request acts once, on every replica and after a restart; nil
	// refuses all clicks.
	Clicks promote.Clicks
	// Installed tells which workspace, enterprise and app the bot is;
	// requests naming others are refused, and so is every request when it
	// is nil or cannot tell.
	Installed Installed
	// Now tells the time for the ages /promote envs shows (time.Now when
	// nil).
	Now func() time.Time

	wg sync.WaitGroup
}

// Installed tells where the bot is installed (*Client, from auth.test).
type Installed interface {
	Installation(ctx context.Context) (Installation, error)
}

// Interactions serves POST /slack/interactions.
func (h *Handlers) Interactions() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := h.verified(w, r)
		if !ok {
			return
		}
		cb, err := DecodeInteraction(body)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		answer := h.Interaction(r.Context(), cb)
		if answer == nil {
			w.WriteHeader(http.StatusOK)
			return
		}
		writeJSON(w, http.StatusOK, answer)
	})
}

// Commands serves POST /slack/commands.
func (h *Handlers) Commands() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := h.verified(w, r)
		if !ok {
			return
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "malformed form"})
			return
		}
		cmd := slack.SlashCommand{Command: form.Get("command"), Text: form.Get("text"),
			UserID: form.Get("user_id"), ChannelID: form.Get("channel_id"), TeamID: form.Get("team_id"),
			EnterpriseID: form.Get("enterprise_id"), APIAppID: form.Get("api_app_id")}
		writeJSON(w, http.StatusOK, h.Command(r.Context(), cmd))
	})
}

// verified checks Slack's headers and the declared length, then reads the
// body and checks Slack's signature over it: nothing of a request that
// could not be genuine is read.
func (h *Handlers) verified(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if err := checkHeaders(r.Header, h.SigningSecret); err != nil {
		h.logger().Warn("slack request refused", "err", err, "remote", r.RemoteAddr)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": err.Error()})
		return nil, false
	}
	if r.ContentLength > maxSlackBody {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "body too large"})
		return nil, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxSlackBody+1))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unreadable body"})
		return nil, false
	}
	if len(body) > maxSlackBody {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "body too large"})
		return nil, false
	}
	if err := Verify(r.Header, body, h.SigningSecret); err != nil {
		h.logger().Warn("slack request refused", "err", err, "remote", r.RemoteAddr)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": err.Error()})
		return nil, false
	}
	return body, true
}

// Verify checks a request's Slack signature (v0 HMAC-SHA256 of
// "v0:timestamp:body" with secret) and that its timestamp is within 5
// minutes.
func Verify(header http.Header, body []byte, secret string) error {
	if secret == "" {
		return errors.New("no Slack signing secret is configured")
	}
	sv, err := slack.NewSecretsVerifier(header, secret)
	if err != nil {
		return fmt.Errorf("slack signature: %w", err)
	}
	if _, err := sv.Write(body); err != nil {
		return fmt.Errorf("slack signature: %w", err)
	}
	if err := sv.Ensure(); err != nil {
		return fmt.Errorf("slack signature: %w", err)
	}
	return nil
}

// DecodeInteraction reads an interaction payload (the form field "payload"
// holding JSON).
func DecodeInteraction(body []byte) (slack.InteractionCallback, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return slack.InteractionCallback{}, errors.New("malformed form")
	}
	raw := form.Get("payload")
	if raw == "" {
		return slack.InteractionCallback{}, errors.New("no payload")
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(raw), &cb); err != nil {
		return slack.InteractionCallback{}, errors.New("malformed payload")
	}
	if cb.User.ID == "" {
		return slack.InteractionCallback{}, errors.New("payload names no user")
	}
	return cb, nil
}

// Interaction handles a verified interaction and returns the answer to
// send back at once (nil for an empty 200). One from another workspace,
// enterprise or app does nothing. Button clicks, and the rollback dialog's
// submission, are answered once they are recorded (or after answerWithin)
// and their refusals told afterwards; the reject dialog's submission is
// carried out before the answer, so that a refusal shows in the dialog.
func (h *Handlers) Interaction(ctx context.Context, cb slack.InteractionCallback) any {
	if h.foreign(ctx, string(cb.Type), cb.User.ID, cb.Team.ID, cb.Enterprise.ID, cb.APIAppID) {
		return nil
	}
	switch cb.Type {
	case slack.InteractionTypeBlockActions:
		if len(cb.ActionCallback.BlockActions) == 0 || cb.ActionCallback.BlockActions[0] == nil {
			return nil
		}
		h.click(ctx, cb, *cb.ActionCallback.BlockActions[0])
	case slack.InteractionTypeViewSubmission:
		switch cb.View.CallbackID {
		case RejectCallbackID:
			return h.reject(ctx, cb)
		case RollbackCallbackID:
			return h.rollback(ctx, cb)
		}
	}
	return nil
}

// askReason opens the dialog asking why QA rejects, if they may.
func (h *Handlers) askReason(ctx context.Context, a promote.Action, channel, trigger string) {
	if err := h.Actor.Allowed(ctx, a); err != nil {
		h.tell(ctx, a, channel, err)
		return
	}
	v, err := h.Actor.View(ctx, a.BuildID)
	if err == nil {
		err = h.Slack.OpenView(ctx, trigger, RejectModal(a.BuildID, v))
	}
	if err != nil {
		h.logger().Error("open reject dialog", "build", a.BuildID, "user", a.User, "err", err)
		h.tell(ctx, a, channel, fmt.Errorf("could not open the dialog: %w", err))
	}
}

// reject records a rejection from the dialog; a refusal shows in it.
func (h *Handlers) reject(ctx context.Context, cb slack.InteractionCallback) any {
	reason := inputValue(cb.View.State, RejectReasonBlockID, RejectReasonActionID)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), answerWithin)
	defer cancel()
	a := promote.Action{Kind: promote.ActionReject, BuildID: cb.View.PrivateMetadata, User: cb.User.ID, Reason: reason}
	_, err := h.Actor.Act(ctx, a)
	if err == nil {
		return nil
	}
	var r *promote.Refusal
	msg := "Something went wrong; try again."
	if errors.As(err, &r) {
		msg = r.Reason
	} else {
		h.logger().Error("reject", "build", a.BuildID, "user", a.User, "err", err)
	}
	return map[string]any{"response_action": "errors", "errors": map[string]string{"reason": msg}}
}

// inputValue is what was typed in a dialog's input, trimmed; "" for none.
func inputValue(st *slack.ViewState, blockID, actionID string) string {
	if st == nil {
		return ""
	}
	return strings.TrimSpace(st.Values[blockID][actionID].Value)
}

// tell shows a refusal or failure to the person who clicked.
func (h *Handlers) tell(ctx context.Context, a promote.Action, channel string, err error) {
	if err == nil {
		return
	}
	var r *promote.Refusal
	text := "Something went wrong; try again in a moment."
	if errors.As(err, &r) {
		text = r.Reason
		h.logger().Info("action refused", "build", a.BuildID, "user", a.User, "action", a.Kind, "reason", r.Reason)
	} else {
		h.logger().Error("action failed", "build", a.BuildID, "user", a.User, "action", a.Kind, "err", err)
	}
	if channel == "" {
		return
	}
	if err := h.Slack.Ephemeral(ctx, channel, a.User, text); err != nil {
		h.logger().Warn("ephemeral answer", "user", a.User, "err", err)
	}
}

// notHere answers a command from another workspace, enterprise or app.
const notHere = "This promotebot does not serve this workspace or app; nothing was done."

// Command answers /promote: `status <project>`, `rollback <project>`,
// `envs <project>`, or help; a command from another workspace, enterprise
// or app, only that it is not served here. The answer is written within
// Slack's 3 s.
func (h *Handlers) Command(ctx context.Context, cmd slack.SlashCommand) map[string]any {
	fields := strings.Fields(cmd.Text)
	m := HelpMessage()
	if h.foreign(ctx, "slash_command", cmd.UserID, cmd.TeamID, cmd.EnterpriseID, cmd.APIAppID) {
		m = Ephemeral(notHere)
	} else if len(fields) >= 1 {
		ctx, cancel := context.WithTimeout(ctx, answerWithin)
		defer cancel()
		switch fields[0] {
		case "status":
			m = h.status(ctx, fields[1:])
		case "rollback":
			m = h.rollbackOptions(ctx, fields[1:], cmd.UserID)
		case "envs":
			m = h.environments(ctx, fields[1:])
		}
	}
	return map[string]any{"response_type": "ephemeral", "text": m.Text, "blocks": m.Blocks}
}

// status answers `/promote status <project>`.
func (h *Handlers) status(ctx context.Context, args []string) Message {
	if len(args) == 0 {
		return Ephemeral("Which project? `/promote status <project>`")
	}
	v, err := h.Actor.Status(ctx, args[0])
	if err != nil {
		return h.commandFailed(err, "Could not read the status; try again.", "status", args[0])
	}
	return StatusMessage(v)
}

// environments answers `/promote envs <project>`.
func (h *Handlers) environments(ctx context.Context, args []string) Message {
	if len(args) == 0 {
		return Ephemeral("Which project? `/promote envs <project>`")
	}
	v, err := h.Actor.Environments(ctx, args[0])
	if err != nil {
		return h.commandFailed(err, "Could not list the QA environments; try again.", "envs", args[0])
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	return EnvironmentsMessage(v, now())
}

// commandFailed is the answer to a command the domain did not answer: a
// refusal's reason (mrkdwn the domain escaped), or failed, the error
// logged and not shown.
func (h *Handlers) commandFailed(err error, failed, command, project string) Message {
	var r *promote.Refusal
	if errors.As(err, &r) {
		return Notice(r.Reason)
	}
	h.logger().Error(command, "project", project, "err", err)
	return Ephemeral(failed)
}

// later runs f after the answer, under the server's lifetime.
func (h *Handlers) later(f func(ctx context.Context)) {
	bg := h.Background
	if bg == nil {
		bg = context.Background()
	}
	h.wg.Go(func() {
		ctx, cancel := context.WithTimeout(bg, workTimeout)
		defer cancel()
		f(ctx)
	})
}

// Wait waits for the work started after answers.
func (h *Handlers) Wait() { h.wg.Wait() }

func (h *Handlers) logger() *slog.Logger {
	if h.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Logger
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		http.Error(w, `{"error":"could not encode the answer"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if _, err := w.Write(buf.Bytes()); err != nil {
		return // the client went away; nothing more to do
	}
}
