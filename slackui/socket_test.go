package slackui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"

	"github.com/promotebot/promotebot/promote"
)

const (
	sockAppToken = "xapp-test"
	sockBotToken = "xoxb-sock-bot"
	sockTicket   = "sockTICKET42"
	// sockHello is what Slack sends first on a new Socket Mode connection.
	sockHello = `{"type":"hello","num_connections":1,"debug_info":{"host":"applink-sock",` +
		`"build_number":1,"approximate_connection_time":18060},"connection_info":{"app_id":"A0SOCK"}}`
	// sockApprove is a QA member's click on Approve in their direct message.
	sockApprove = `{"envelope_id":"e1","type":"interactive","accepts_response_payload":true,"payload":{
		"type":"block_actions","token":"verification-token","api_app_id":"A0SOCK","trigger_id":"111.222.abc",
		"user":{"id":"UQA1","username":"qa","name":"qa","team_id":"T1"},"team":{"id":"T1","domain":"t"},
		"container":{"type":"message","message_ts":"1700000000.000001","channel_id":"D0QA1","is_ephemeral":false},
		"channel":{"id":"D0QA1","name":"directmessage"},"response_url":"https://hooks.slack.com/actions/T1/1/x",
		"actions":[{"action_id":"qa_approve","block_id":"verdict","type":"button","value":"BUILD1",
			"text":{"type":"plain_text","text":"Approve"},"style":"primary","action_ts":"1700000000.000100"}]}}`
	// sockHelp is /promote help.
	sockHelp = `{"envelope_id":"e2","type":"slash_commands","accepts_response_payload":true,"payload":{
		"token":"verification-token","command":"/promote","text":"help","user_id":"UQA1","channel_id":"C1",
		"team_id":"T1","api_app_id":"A0SOCK","is_enterprise_install":"false",
		"response_url":"https://hooks.slack.com/commands/T1/2/y","trigger_id":"333.444.def"}}`
)

// sockActor records the actions it is asked to carry out.
type sockActor struct {
	mu   sync.Mutex
	acts []promote.Action
}

func (a *sockActor) Act(_ context.Context, act promote.Action) (promote.Build, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.acts = append(a.acts, act)
	return promote.Build{}, nil
}

func (a *sockActor) Allowed(context.Context, promote.Action) error { return nil }

func (a *sockActor) View(context.Context, string) (promote.BuildView, error) {
	return promote.BuildView{}, nil
}

func (a *sockActor) Status(context.Context, string) (promote.StatusView, error) {
	return promote.StatusView{}, nil
}

func (a *sockActor) RollbackOptions(context.Context, string, string) (promote.RollbackOptions, error) {
	return promote.RollbackOptions{}, nil
}

func (a *sockActor) Environments(context.Context, string) (promote.EnvironmentsView, error) {
	return promote.EnvironmentsView{}, nil
}

func (a *sockActor) recorded() []promote.Action {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]promote.Action(nil), a.acts...)
}

// sockResponder records what would have been shown to people.
type sockResponder struct {
	mu    sync.Mutex
	calls []string
}

func (r *sockResponder) Ephemeral(_ context.Context, channel, user, text string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "ephemeral "+channel+" "+user+": "+text)
	return nil
}

func (r *sockResponder) OpenView(_ context.Context, triggerID string, _ slack.ModalViewRequest) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "view "+triggerID)
	return nil
}

// sockLog is a log destination safe for concurrent writes.
type sockLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *sockLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *sockLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *sockLog) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// sockSlack is a fake Slack: apps.connections.open and the websocket it
// hands out, which sends hello and then the envelopes, and collects the
// acknowledgements the bot writes back.
type sockSlack struct {
	srv *httptest.Server
	// refusals are the error codes apps.connections.open answers with, one
	// per call, before it accepts the app token.
	refusals  []string
	envelopes []string
	opens     atomic.Int32
	acks      chan map[string]json.RawMessage
	conns     sync.WaitGroup
}

func newSockSlack(t *testing.T, refusals []string, envelopes ...string) *sockSlack {
	t.Helper()
	f := &sockSlack{refusals: refusals, envelopes: envelopes, acks: make(chan map[string]json.RawMessage, 16)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/apps.connections.open", f.open(t))
	mux.HandleFunc("GET /link", f.link(t))
	f.srv = httptest.NewServer(mux)
	// The bot hangs up when its context ends, which is before cleanups run;
	// waiting for the websocket handlers keeps them inside the test.
	t.Cleanup(func() {
		f.srv.Close()
		f.conns.Wait()
	})
	return f
}

func (f *sockSlack) apiURL() string { return f.srv.URL + "/api/" }

func (f *sockSlack) open(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n := int(f.opens.Add(1))
		w.Header().Set("Content-Type", "application/json")
		if got := r.Header.Get("Authorization"); got != "Bearer "+sockAppToken {
			t.Errorf("apps.connections.open: Authorization %q, want the app token", got)
			sockWrite(t, w, `{"ok":false,"error":"invalid_auth"}`)
			return
		}
		if n <= len(f.refusals) {
			sockWrite(t, w, `{"ok":false,"error":"`+f.refusals[n-1]+`"}`)
			return
		}
		sockWrite(t, w, `{"ok":true,"url":"ws://`+r.Host+`/link?ticket=`+sockTicket+`&app_id=A0SOCK"}`)
	}
}

func (f *sockSlack) link(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.conns.Add(1)
		defer f.conns.Done()
		if got := r.URL.Query().Get("ticket"); got != sockTicket {
			t.Errorf("websocket dialled with ticket %q, want %q", got, sockTicket)
		}
		// socketmode dials with the Origin of Slack's own site.
		up := &websocket.Upgrader{CheckOrigin: func(r *http.Request) bool {
			return r.Header.Get("Origin") == "https://api.slack.com"
		}}
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			return
		}
		defer func() {
			if err := conn.Close(); err != nil {
				t.Errorf("close websocket: %v", err)
			}
		}()
		for _, m := range append([]string{sockHello}, f.envelopes...) {
			if err := conn.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
				t.Errorf("send to the bot: %v", err)
				return
			}
		}
		for {
			_, raw, err := conn.ReadMessage()
			if err != nil {
				return // the bot hung up
			}
			var ack map[string]json.RawMessage
			if err := json.Unmarshal(raw, &ack); err != nil {
				t.Errorf("acknowledgement %s: %v", raw, err)
				continue
			}
			select {
			case f.acks <- ack:
			default:
				t.Errorf("acknowledgement %s beyond what the test expects", raw)
			}
		}
	}
}

func sockWrite(t *testing.T, w http.ResponseWriter, body string) {
	if _, err := w.Write([]byte(body)); err != nil {
		t.Errorf("write answer: %v", err)
	}
}

// sockRun starts RunSocketMode; its result arrives on the channel.
func sockRun(ctx context.Context, f *sockSlack, h *Handlers, log *slog.Logger) <-chan error {
	done := make(chan error, 1)
	go func() { done <- RunSocketMode(ctx, sockAppToken, sockBotToken, f.apiURL(), h, log) }()
	return done
}

// sockAcks waits for n acknowledgements, by envelope id.
func sockAcks(t *testing.T, f *sockSlack, done <-chan error, n int) map[string]map[string]json.RawMessage {
	t.Helper()
	got := map[string]map[string]json.RawMessage{}
	deadline := time.After(5 * time.Second)
	for len(got) < n {
		select {
		case ack := <-f.acks:
			var id string
			if err := json.Unmarshal(ack["envelope_id"], &id); err != nil {
				t.Fatalf("acknowledgement without an envelope id: %v", ack)
			}
			if _, dup := got[id]; dup {
				t.Fatalf("envelope %s acknowledged twice", id)
			}
			got[id] = ack
		case err := <-done:
			t.Fatalf("RunSocketMode returned %v before %d acknowledgements (got %d)", err, n, len(got))
		case <-deadline:
			t.Fatalf("%d of %d acknowledgements after 5 s: %v", len(got), n, got)
		}
	}
	return got
}

// sockStop cancels RunSocketMode's context and checks that it returns nil.
func sockStop(t *testing.T, cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("RunSocketMode after cancel = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunSocketMode still running 5 s after its context ended")
	}
}

func TestSocketModeAnswersInteractionsAndCommands(t *testing.T) {
	f := newSockSlack(t, nil, sockApprove, sockHelp)
	actor := &sockActor{}
	logs := &sockLog{}
	h := &Handlers{Actor: actor, Slack: &sockResponder{}, Logger: logs.logger(), Clicks: &memClicks{},
		Installed: fixedInstallation{in: Installation{TeamID: "T1", AppID: "A0SOCK"}}}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := sockRun(ctx, f, h, logs.logger())

	acks := sockAcks(t, f, done, 2)

	if p, ok := acks["e1"]["payload"]; ok {
		t.Errorf("click acknowledged with payload %s, want none", p)
	}
	var help struct {
		ResponseType string            `json:"response_type"`
		Text         string            `json:"text"`
		Blocks       []json.RawMessage `json:"blocks"`
	}
	if err := json.Unmarshal(acks["e2"]["payload"], &help); err != nil {
		t.Fatalf("help acknowledgement %v: %v", acks["e2"], err)
	}
	if help.ResponseType != "ephemeral" || help.Text != HelpMessage().Text || len(help.Blocks) == 0 {
		t.Errorf("help answer = %+v, want ephemeral %q with blocks", help, HelpMessage().Text)
	}

	h.Wait()
	want := []promote.Action{{Kind: promote.ActionApprove, BuildID: "BUILD1", User: "UQA1", At: time.Unix(1700000000, 100000).UTC()}}
	if got := actor.recorded(); len(got) != 1 || got[0] != want[0] {
		t.Errorf("actions = %+v, want %+v", got, want)
	}
	if n := f.opens.Load(); n != 1 {
		t.Errorf("apps.connections.open called %d times, want 1", n)
	}

	sockStop(t, cancel, done)
	out := logs.String()
	if !strings.Contains(out, "slack socket mode connected") {
		t.Errorf("no connection logged:\n%s", out)
	}
	for _, secret := range []string{sockAppToken, sockBotToken, sockTicket, "verification-token"} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains %q:\n%s", secret, out)
		}
	}
}

func TestSocketModeRetriesTransientErrors(t *testing.T) {
	f := newSockSlack(t, []string{"internal_error"}, sockHelp)
	h := &Handlers{Actor: &sockActor{}, Slack: &sockResponder{},
		Installed: fixedInstallation{in: Installation{TeamID: "T1", AppID: "A0SOCK"}}}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := sockRun(ctx, f, h, nil)

	if acks := sockAcks(t, f, done, 1); acks["e2"] == nil {
		t.Errorf("acknowledgements = %v, want e2", acks)
	}
	if n := f.opens.Load(); n != 2 {
		t.Errorf("apps.connections.open called %d times, want 2 (one refusal, one success)", n)
	}
	sockStop(t, cancel, done)
}

func TestSocketModeRefusedTokenIsTerminal(t *testing.T) {
	for _, code := range []string{"invalid_auth", "not_allowed_token_type", "missing_scope"} {
		t.Run(code, func(t *testing.T) {
			// More refusals than a retrying client would get through in 5 s.
			f := newSockSlack(t, []string{code, code, code, code, code, code, code, code})
			h := &Handlers{Actor: &sockActor{}, Slack: &sockResponder{}}
			done := sockRun(t.Context(), f, h, nil)
			select {
			case err := <-done:
				var se slack.SlackErrorResponse
				if !promote.IsPermanent(err) || !errors.As(err, &se) || se.Err != code {
					t.Fatalf("RunSocketMode = %v, want a permanent %s", err, code)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("RunSocketMode still retrying a refused token after 5 s")
			}
			if n := f.opens.Load(); n != 1 {
				t.Errorf("apps.connections.open called %d times, want 1", n)
			}
		})
	}
}

func TestSocketModeRefusesANonAppToken(t *testing.T) {
	err := RunSocketMode(t.Context(), sockBotToken, sockBotToken, "http://127.0.0.1:1/api/", &Handlers{}, nil)
	if !promote.IsPermanent(err) {
		t.Fatalf("RunSocketMode with a bot token as the app token = %v, want a permanent error", err)
	}
	if strings.Contains(err.Error(), sockBotToken) {
		t.Errorf("error %q shows the token", err)
	}
}
