package slackui

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/promotebot/promotebot/promote"
)

// fakeActor records what the handlers ask of the domain and answers as set.
type fakeActor struct {
	actErr, allowErr, viewErr, statusErr, optionsErr, envsErr error
	view                                                      promote.BuildView
	status                                                    promote.StatusView
	options                                                   promote.RollbackOptions
	envs                                                      promote.EnvironmentsView
	// gate, when set, holds Act and Environments until it is closed.
	gate chan struct{}

	mu      sync.Mutex
	calls   actorCalls
	ctxErrs []error // ctx.Err() seen by Act once it got through the gate
}

type actorCalls struct {
	Acts, Allowed   []promote.Action
	Views, Statuses []string
	// Options are the RollbackOptions calls, as "project user".
	Options []string
	// Envs are the projects Environments was asked of.
	Envs []string
}

var _ Actor = (*fakeActor)(nil)

func (f *fakeActor) Act(ctx context.Context, a promote.Action) (promote.Build, error) {
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
		}
	}
	f.mu.Lock()
	f.calls.Acts = append(f.calls.Acts, a)
	f.ctxErrs = append(f.ctxErrs, ctx.Err())
	f.mu.Unlock()
	if f.actErr != nil {
		return promote.Build{}, f.actErr
	}
	return promote.Build{ID: a.BuildID}, nil
}

func (f *fakeActor) Allowed(_ context.Context, a promote.Action) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls.Allowed = append(f.calls.Allowed, a)
	return f.allowErr
}

func (f *fakeActor) View(_ context.Context, id string) (promote.BuildView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls.Views = append(f.calls.Views, id)
	return f.view, f.viewErr
}

func (f *fakeActor) Status(_ context.Context, project string) (promote.StatusView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls.Statuses = append(f.calls.Statuses, project)
	return f.status, f.statusErr
}

func (f *fakeActor) RollbackOptions(_ context.Context, project, user string) (promote.RollbackOptions, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls.Options = append(f.calls.Options, project+" "+user)
	return f.options, f.optionsErr
}

func (f *fakeActor) Environments(ctx context.Context, project string) (promote.EnvironmentsView, error) {
	f.mu.Lock()
	f.calls.Envs = append(f.calls.Envs, project)
	f.mu.Unlock()
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return promote.EnvironmentsView{}, ctx.Err()
		}
	}
	return f.envs, f.envsErr
}

func (f *fakeActor) snapshot() actorCalls {
	f.mu.Lock()
	defer f.mu.Unlock()
	return actorCalls{Acts: slices.Clone(f.calls.Acts), Allowed: slices.Clone(f.calls.Allowed),
		Views: slices.Clone(f.calls.Views), Statuses: slices.Clone(f.calls.Statuses),
		Options: slices.Clone(f.calls.Options), Envs: slices.Clone(f.calls.Envs)}
}

type ephemeralCall struct{ Channel, User, Text string }

type openViewCall struct {
	Trigger string
	View    slack.ModalViewRequest
}

// fakeResponder records what the handlers tell people.
type fakeResponder struct {
	openErr error

	mu         sync.Mutex
	ephemerals []ephemeralCall
	opened     []openViewCall
}

var _ Responder = (*fakeResponder)(nil)

func (f *fakeResponder) Ephemeral(_ context.Context, channel, user, text string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ephemerals = append(f.ephemerals, ephemeralCall{channel, user, text})
	return nil
}

func (f *fakeResponder) OpenView(_ context.Context, trigger string, v slack.ModalViewRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opened = append(f.opened, openViewCall{trigger, v})
	return f.openErr
}

func (f *fakeResponder) snapshot() ([]ephemeralCall, []openViewCall) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ephemerals), slices.Clone(f.opened)
}

// testInstallation is where the handlers under test are installed: the
// workspace and app of clickJSON, viewSubmissionJSON and commandForm.
var testInstallation = Installation{TeamID: "T0PROMOTE", AppID: "A0PROMOTE"}

// fixedInstallation answers Installation with in, or err.
type fixedInstallation struct {
	in  Installation
	err error
}

func (f fixedInstallation) Installation(context.Context) (Installation, error) { return f.in, f.err }

// memClicks is promote.Clicks in memory, for one Handlers.
type memClicks struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (m *memClicks) FirstClick(_ context.Context, key string, _ time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[string]bool{}
	}
	first := !m.seen[key]
	m.seen[key] = true
	return first, nil
}

func newHandlers(a *fakeActor, r *fakeResponder) *Handlers {
	return &Handlers{SigningSecret: testSecret, Actor: a, Slack: r, Clicks: &memClicks{},
		Installed: fixedInstallation{in: testInstallation}}
}

// serve sends body with header to h as Slack would.
func serve(ctx context.Context, h http.Handler, header http.Header, body []byte) *httptest.ResponseRecorder {
	r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/slack/interactions", bytes.NewReader(body))
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// serveSigned sends body to h, signed now with testSecret.
func serveSigned(h http.Handler, body []byte) *httptest.ResponseRecorder {
	return serve(context.Background(), h, sign(testSecret, time.Now(), body), body)
}

// click is a button click; the zero fields take the defaults of clickJSON.
type click struct{ actionID, value, actionTS, trigger, team, enterprise, app string }

// clickJSON is a block_actions payload as Slack sends it, from
// testInstallation unless told otherwise, with fields the handler must not
// read: the user's names and home team, a top-level value and the
// message's input state.
func clickJSON(c click) string {
	if c.actionTS == "" {
		c.actionTS = "1700000000.000100"
	}
	if c.trigger == "" {
		c.trigger = "T1"
	}
	if c.team == "" {
		c.team = testInstallation.TeamID
	}
	if c.app == "" {
		c.app = testInstallation.AppID
	}
	enterprise := "null"
	if c.enterprise != "" {
		enterprise = fmt.Sprintf(`{"id":%q,"name":"Acme"}`, c.enterprise)
	}
	return fmt.Sprintf(`{"type":"block_actions",`+
		`"user":{"id":"UQA1","username":"mallory","name":"Mallory <@U0ADMIN>","team_id":"TEVIL"},`+
		`"api_app_id":%q,"token":"legacy-verification-token",`+
		`"container":{"type":"message","message_ts":"1700000000.000050","channel_id":"D0QA1","is_ephemeral":false},`+
		`"trigger_id":%q,"team":{"id":%q,"domain":"acme"},"enterprise":%s,"is_enterprise_install":false,`+
		`"channel":{"id":"D0QA1","name":"directmessage"},`+
		`"message":{"type":"message","user":"U0BOT","ts":"1700000000.000050","text":"hello is ready for QA"},`+
		`"state":{"values":{"reason":{"reason":{"type":"plain_text_input","value":"injected reason"}}}},`+
		`"response_url":"https://hooks.slack.com/actions/T0/1/abc","value":"OTHER-BUILD","reason":"injected",`+
		`"actions":[{"action_id":%q,"block_id":"b","text":{"type":"plain_text","text":"Go","emoji":true},`+
		`"value":%q,"style":"primary","type":"button","action_ts":%q}]}`,
		c.app, c.trigger, c.team, enterprise, c.actionID, c.value, c.actionTS)
}

// viewSubmissionJSON is the reject dialog's submission; state is the raw
// "state" object, or "" for none.
func viewSubmissionJSON(callbackID, metadata, state string) string {
	st := ""
	if state != "" {
		st = `"state":` + state + `,`
	}
	return fmt.Sprintf(`{"type":"view_submission","team":{"id":"T0PROMOTE","domain":"example"},`+
		`"user":{"id":"UQA1","username":"ada","name":"ada","team_id":"T0PROMOTE"},"api_app_id":"A0PROMOTE",`+
		`"token":"legacy-verification-token","trigger_id":"T2",`+
		`"view":{"id":"V1","team_id":"T0PROMOTE","type":"modal","private_metadata":%q,"callback_id":%q,%s`+
		`"blocks":[{"type":"input","block_id":"reason","optional":true,`+
		`"label":{"type":"plain_text","text":"Reason"},`+
		`"element":{"type":"plain_text_input","action_id":"reason","multiline":true}}],`+
		`"hash":"1700000000.abc","title":{"type":"plain_text","text":"Reject build"},"app_id":"A0PROMOTE"},`+
		`"response_urls":[],"is_enterprise_install":false,"enterprise":null}`,
		metadata, callbackID, st)
}

func reasonState(value string) string {
	return fmt.Sprintf(`{"values":{"reason":{"reason":{"type":"plain_text_input","value":%q}}}}`, value)
}

// form is an interaction's body: the payload JSON in the form field "payload".
func form(payload string) []byte {
	return []byte(url.Values{"payload": {payload}}.Encode())
}
