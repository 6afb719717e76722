package slackui

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/promotebot/promotebot/promote"
)

const testSecret = "8f742231b10e8888abcd99yyyzzz85a5"

// sign returns the headers Slack sends with body: the v0 signature of
// "v0:<ts>:<body>" under secret.
func sign(secret string, ts time.Time, body []byte) http.Header {
	return signStamp(secret, strconv.FormatInt(ts.Unix(), 10), body)
}

// signStamp is sign with the timestamp header written as given.
func signStamp(secret, stamp string, body []byte) http.Header {
	mac := hmac.New(sha256.New, []byte(secret))
	// hash.Hash's Write never returns an error.
	mac.Write(append([]byte("v0:"+stamp+":"), body...))
	h := http.Header{}
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	h.Set("X-Slack-Request-Timestamp", stamp)
	h.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	return h
}

func TestInteractionsVerifySignature(t *testing.T) {
	body := form(clickJSON(click{actionID: "qa_approve", value: "BUILD1"}))
	tampered := bytes.Clone(body)
	tampered[bytes.Index(tampered, []byte("BUILD1"))+5] = '2'
	big := append(bytes.Clone(body), "&pad="+strings.Repeat("a", maxSlackBody)...)
	exact := append(bytes.Clone(body), "&pad="+strings.Repeat("a", maxSlackBody-len(body)-len("&pad="))...)
	now := time.Now()
	signed := sign(testSecret, now, body)
	withoutHeader := func(key string) http.Header { h := signed.Clone(); h.Del(key); return h }
	withHeader := func(key, value string) http.Header { h := signed.Clone(); h.Set(key, value); return h }
	stamp := strconv.FormatInt(now.Unix(), 10)

	tests := []struct {
		name     string
		secret   string // the Handlers' SigningSecret
		header   http.Header
		body     []byte
		want     int
		wantActs int
	}{
		{"valid", testSecret, signed, body, http.StatusOK, 1},
		{"4 minutes old", testSecret, sign(testSecret, now.Add(-4*time.Minute), body), body, http.StatusOK, 1},
		{"body of exactly 1 MiB", testSecret, sign(testSecret, now, exact), exact, http.StatusOK, 1},
		{"no headers", testSecret, http.Header{}, body, http.StatusUnauthorized, 0},
		{"no signature", testSecret, withoutHeader("X-Slack-Signature"), body, http.StatusUnauthorized, 0},
		{"no timestamp", testSecret, withoutHeader("X-Slack-Request-Timestamp"), body, http.StatusUnauthorized, 0},
		{"signed with another secret", testSecret, sign("another", now, body), body, http.StatusUnauthorized, 0},
		{"signature not hex", testSecret, withHeader("X-Slack-Signature", "v0=zz"), body, http.StatusUnauthorized, 0},
		{"signature without v0=", testSecret, withHeader("X-Slack-Signature", strings.TrimPrefix(signed.Get("X-Slack-Signature"), "v0=")),
			body, http.StatusUnauthorized, 0},
		{"one byte of the body changed", testSecret, signed, tampered, http.StatusUnauthorized, 0},
		{"timestamp changed after signing", testSecret, withHeader("X-Slack-Request-Timestamp", strconv.FormatInt(now.Unix()+1, 10)),
			body, http.StatusUnauthorized, 0},
		{"timestamp 6 minutes old", testSecret, sign(testSecret, now.Add(-6*time.Minute), body), body, http.StatusUnauthorized, 0},
		{"timestamp 6 minutes ahead", testSecret, sign(testSecret, now.Add(6*time.Minute), body), body, http.StatusUnauthorized, 0},
		{"timestamp not a number", testSecret, signStamp(testSecret, stamp+"x", body), body, http.StatusUnauthorized, 0},
		{"no secret configured", "", signed, body, http.StatusUnauthorized, 0},
		{"no secret configured, signed with none", "", sign("", now, body), body, http.StatusUnauthorized, 0},
		{"body over 1 MiB", testSecret, sign(testSecret, now, big), big, http.StatusRequestEntityTooLarge, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, r := &fakeActor{}, &fakeResponder{}
			h := newHandlers(a, r)
			h.SigningSecret = tt.secret
			w := serve(context.Background(), h.Interactions(), tt.header, tt.body)
			h.Wait()
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d (body %q)", w.Code, tt.want, w.Body.String())
			}
			calls := a.snapshot()
			if len(calls.Acts) != tt.wantActs || len(calls.Allowed) != 0 {
				t.Errorf("actor got %+v, want %d Act calls", calls, tt.wantActs)
			}
			if eph, opened := r.snapshot(); len(eph)+len(opened) != 0 {
				t.Errorf("responder called: %v %v", eph, opened)
			}
			if tt.want != http.StatusOK {
				if ct := w.Header().Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q", ct)
				}
				if strings.Contains(w.Body.String(), testSecret) {
					t.Errorf("answer shows the secret: %s", w.Body)
				}
			}
		})
	}
}

// TestClickAnsweredOnceRecorded: the 200 waits for the click to be
// recorded, so that Slack's answer means it survives a crash; a slow
// record is answered anyway within Slack's 3 s and finishes afterwards, not
// under the request's context.
func TestClickAnsweredOnceRecorded(t *testing.T) {
	defer func(d time.Duration) { answerWithin = d }(answerWithin)
	answerWithin = 300 * time.Millisecond
	for _, kind := range []promote.ActionKind{promote.ActionApprove, promote.ActionDeploy, promote.ActionClose} {
		t.Run(string(kind)+"/recorded", func(t *testing.T) {
			a, r := &fakeActor{}, &fakeResponder{}
			h := newHandlers(a, r)
			body := form(clickJSON(click{actionID: string(kind), value: "BUILD1"}))
			w := serveSigned(h.Interactions(), body)
			// Read before Wait: the Act must have happened before the answer.
			got := a.snapshot()
			h.Wait()
			if w.Code != http.StatusOK || w.Body.Len() != 0 {
				t.Errorf("answer %d %q, want an empty 200", w.Code, w.Body.String())
			}
			want := []promote.Action{{Kind: kind, BuildID: "BUILD1", User: "UQA1", At: time.Unix(1700000000, 100000).UTC()}}
			if !slices.Equal(got.Acts, want) || len(got.Allowed)+len(got.Views) != 0 {
				t.Fatalf("when answered, the actor had %+v, want Act %+v only", got, want)
			}
			if eph, opened := r.snapshot(); len(eph)+len(opened) != 0 {
				t.Errorf("responder called after a success: %v %v", eph, opened)
			}
		})
		t.Run(string(kind)+"/slow", func(t *testing.T) {
			gate := make(chan struct{})
			a, r := &fakeActor{gate: gate}, &fakeResponder{}
			h := newHandlers(a, r)
			body := form(clickJSON(click{actionID: string(kind), value: "BUILD1"}))
			// The request's context ends once the answer is written, as in
			// net/http; the work must not run under it.
			ctx, cancel := context.WithCancel(context.Background())
			answered := make(chan *httptest.ResponseRecorder, 1)
			start := time.Now()
			go func() { answered <- serve(ctx, h.Interactions(), sign(testSecret, time.Now(), body), body) }()
			select {
			case w := <-answered:
				if w.Code != http.StatusOK || w.Body.Len() != 0 {
					t.Errorf("answer %d %q, want an empty 200", w.Code, w.Body.String())
				}
				if took := time.Since(start); took < answerWithin {
					t.Errorf("answered after %v, before the record or answerWithin", took)
				}
			case <-time.After(10 * time.Second):
				close(gate)
				cancel()
				t.Fatal("the answer waited for the work past answerWithin")
			}
			cancel()
			close(gate)
			h.Wait()
			a.mu.Lock()
			ctxErr := a.ctxErrs[0]
			a.mu.Unlock()
			if ctxErr != nil {
				t.Errorf("the work ran under the request's context: %v", ctxErr)
			}
		})
	}
}

func TestClickRefusedOrFailedTellsTheClicker(t *testing.T) {
	const reason = "Only owners of hello can deploy this build."
	const leak = "https://x-access-token:ghs_s3cret@github.com/acme/config.git"
	tests := []struct {
		name     string
		err      error
		want     string // the ephemeral's text; "" for none
		wantNone string // text the ephemeral must not contain
	}{
		{"refusal", &promote.Refusal{Reason: reason}, reason, ""},
		{"wrapped refusal", fmt.Errorf("deploy BUILD1: %w", &promote.Refusal{Reason: reason}), reason, ""},
		{"failure", errors.New("push " + leak + ": connection reset"), "", leak},
		{"success", nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, r := &fakeActor{actErr: tt.err}, &fakeResponder{}
			h := newHandlers(a, r)
			w := serveSigned(h.Interactions(), form(clickJSON(click{actionID: "prod_deploy", value: "BUILD1"})))
			h.Wait()
			if w.Code != http.StatusOK || w.Body.Len() != 0 {
				t.Fatalf("answer %d %q, want an empty 200", w.Code, w.Body.String())
			}
			eph, opened := r.snapshot()
			if len(opened) != 0 {
				t.Errorf("opened views: %v", opened)
			}
			switch {
			case tt.err == nil:
				if len(eph) != 0 {
					t.Errorf("told %v after a success", eph)
				}
			case tt.want != "":
				if want := []ephemeralCall{{"D0QA1", "UQA1", tt.want}}; !slices.Equal(eph, want) {
					t.Errorf("told %v, want %v", eph, want)
				}
			default:
				if len(eph) != 1 || eph[0].Channel != "D0QA1" || eph[0].User != "UQA1" || eph[0].Text == "" {
					t.Fatalf("told %v, want one generic message to UQA1 in D0QA1", eph)
				}
				if strings.Contains(eph[0].Text, tt.wantNone) || strings.Contains(eph[0].Text, "connection reset") {
					t.Errorf("the message shows the error: %q", eph[0].Text)
				}
			}
		})
	}
}

func TestClickDeliveredTwiceActsOnce(t *testing.T) {
	a, r := &fakeActor{}, &fakeResponder{}
	h := newHandlers(a, r)
	body := form(clickJSON(click{actionID: "qa_approve", value: "BUILD1"}))
	first := serveSigned(h.Interactions(), body)
	retry := sign(testSecret, time.Now(), body)
	retry.Set("X-Slack-Retry-Num", "1")
	retry.Set("X-Slack-Retry-Reason", "http_timeout")
	second := serve(context.Background(), h.Interactions(), retry, body)
	h.Wait()
	for i, w := range []*httptest.ResponseRecorder{first, second} {
		if w.Code != http.StatusOK || w.Body.Len() != 0 {
			t.Errorf("delivery %d: answer %d %q, want an empty 200", i+1, w.Code, w.Body.String())
		}
	}
	if n := len(a.snapshot().Acts); n != 1 {
		t.Fatalf("Act called %d times for one click delivered twice", n)
	}

	// A new click on the same button is not a duplicate.
	again := form(clickJSON(click{actionID: "qa_approve", value: "BUILD1", actionTS: "1700000009.000200", trigger: "T9"}))
	serveSigned(h.Interactions(), again)
	h.Wait()
	if n := len(a.snapshot().Acts); n != 2 {
		t.Errorf("Act called %d times after a second click, want 2", n)
	}
}

func TestRejectClickOpensTheDialog(t *testing.T) {
	const reason = "You are not in hello's QA group."
	rejectAction := promote.Action{Kind: promote.ActionReject, BuildID: "BUILD1", User: "UQA1", At: time.Unix(1700000000, 100000).UTC()}
	tests := []struct {
		name      string
		actor     *fakeActor
		openErr   error
		wantViews []string
		wantOpen  bool
		wantTell  string // exact text, "generic" for any text without the error's, "" for none
	}{
		{name: "allowed", actor: &fakeActor{view: testView(promote.StateQAReady)}, wantViews: []string{"BUILD1"}, wantOpen: true},
		{name: "refused", actor: &fakeActor{allowErr: &promote.Refusal{Reason: reason}}, wantTell: reason},
		{name: "view fails", actor: &fakeActor{viewErr: errors.New("database is locked")},
			wantViews: []string{"BUILD1"}, wantTell: "generic"},
		{name: "views.open fails", actor: &fakeActor{view: testView(promote.StateQAReady)},
			openErr: errors.New("slack views.open: expired_trigger_id"), wantViews: []string{"BUILD1"}, wantOpen: true, wantTell: "generic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, r := tt.actor, &fakeResponder{openErr: tt.openErr}
			h := newHandlers(a, r)
			w := serveSigned(h.Interactions(), form(clickJSON(click{actionID: "qa_reject", value: "BUILD1"})))
			h.Wait()
			if w.Code != http.StatusOK || w.Body.Len() != 0 {
				t.Fatalf("answer %d %q, want an empty 200", w.Code, w.Body.String())
			}
			calls := a.snapshot()
			if len(calls.Acts) != 0 || !slices.Equal(calls.Allowed, []promote.Action{rejectAction}) ||
				!slices.Equal(calls.Views, tt.wantViews) {
				t.Errorf("actor got %+v, want Allowed(%+v) and View %v", calls, rejectAction, tt.wantViews)
			}
			eph, opened := r.snapshot()
			if tt.wantOpen {
				if len(opened) != 1 {
					t.Fatalf("opened %d views, want 1", len(opened))
				}
				v := opened[0]
				if v.Trigger != "T1" || v.View.CallbackID != RejectCallbackID || v.View.PrivateMetadata != "BUILD1" ||
					v.View.Type != slack.VTModal {
					t.Errorf("opened trigger %q, view type %q callback %q metadata %q", v.Trigger, v.View.Type,
						v.View.CallbackID, v.View.PrivateMetadata)
				}
			} else if len(opened) != 0 {
				t.Errorf("opened %v", opened)
			}
			switch tt.wantTell {
			case "":
				if len(eph) != 0 {
					t.Errorf("told %v", eph)
				}
			case "generic":
				if len(eph) != 1 || eph[0].Text == "" || strings.Contains(eph[0].Text, "locked") ||
					strings.Contains(eph[0].Text, "trigger") {
					t.Errorf("told %v, want one generic message", eph)
				}
			default:
				if want := []ephemeralCall{{"D0QA1", "UQA1", tt.wantTell}}; !slices.Equal(eph, want) {
					t.Errorf("told %v, want %v", eph, want)
				}
			}
		})
	}
}

func TestRejectSubmission(t *testing.T) {
	const refusal = "This build was already promoted."
	tests := []struct {
		name     string
		payload  string
		actErr   error
		wantActs []promote.Action
		want     map[string]any // the JSON answer; nil for an empty 200
	}{
		{"reason trimmed", viewSubmissionJSON(RejectCallbackID, "BUILD1", reasonState("  broken login  ")), nil,
			[]promote.Action{{Kind: promote.ActionReject, BuildID: "BUILD1", User: "UQA1", Reason: "broken login"}}, nil},
		{"blank reason", viewSubmissionJSON(RejectCallbackID, "BUILD1", reasonState(" \n ")), nil,
			[]promote.Action{{Kind: promote.ActionReject, BuildID: "BUILD1", User: "UQA1"}}, nil},
		{"no state", viewSubmissionJSON(RejectCallbackID, "BUILD1", ""), nil,
			[]promote.Action{{Kind: promote.ActionReject, BuildID: "BUILD1", User: "UQA1"}}, nil},
		{"refused", viewSubmissionJSON(RejectCallbackID, "BUILD1", reasonState("x")), &promote.Refusal{Reason: refusal},
			[]promote.Action{{Kind: promote.ActionReject, BuildID: "BUILD1", User: "UQA1", Reason: "x"}},
			map[string]any{"response_action": "errors", "errors": map[string]any{"reason": refusal}}},
		{"failed", viewSubmissionJSON(RejectCallbackID, "BUILD1", reasonState("x")), errors.New("disk full at /var/lib/secret"),
			[]promote.Action{{Kind: promote.ActionReject, BuildID: "BUILD1", User: "UQA1", Reason: "x"}},
			map[string]any{"response_action": "errors", "errors": map[string]any{"reason": "Something went wrong; try again."}}},
		{"another dialog", viewSubmissionJSON("other_dialog", "BUILD1", reasonState("x")), nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, r := &fakeActor{actErr: tt.actErr}, &fakeResponder{}
			h := newHandlers(a, r)
			w := serveSigned(h.Interactions(), form(tt.payload))
			// Carried out before the answer: no h.Wait() here.
			if got := a.snapshot().Acts; !slices.Equal(got, tt.wantActs) {
				t.Errorf("Act got %+v, want %+v", got, tt.wantActs)
			}
			if w.Code != http.StatusOK {
				t.Fatalf("status %d (%s)", w.Code, w.Body)
			}
			if tt.want == nil {
				if w.Body.Len() != 0 {
					t.Errorf("answer %q, want empty", w.Body.String())
				}
			} else {
				var got map[string]any
				if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
					t.Fatalf("answer %q: %v", w.Body.String(), err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("answer %v, want %v", got, tt.want)
				}
			}
			h.Wait()
			if eph, opened := r.snapshot(); len(eph)+len(opened) != 0 {
				t.Errorf("responder called: %v %v", eph, opened)
			}
		})
	}
}

func TestMalformedInteractions(t *testing.T) {
	const user = `"user":{"id":"UQA1"}`
	tests := []struct {
		name string
		body string
		want int // 400, or 200 with an empty body
	}{
		{"empty body", "", http.StatusBadRequest},
		{"no payload field", "foo=bar", http.StatusBadRequest},
		{"empty payload", "payload=", http.StatusBadRequest},
		{"malformed form", "payload=%zz", http.StatusBadRequest},
		{"payload not JSON", "payload=not+json", http.StatusBadRequest},
		{"payload a JSON array", string(form(`[1,2]`)), http.StatusBadRequest},
		{"payload JSON null", string(form(`null`)), http.StatusBadRequest},
		{"no user", string(form(`{"type":"block_actions","actions":[{"action_id":"qa_approve","block_id":"b","value":"BUILD1"}]}`)),
			http.StatusBadRequest},
		{"user without id", string(form(`{"type":"block_actions","user":{"name":"ada"},` +
			`"actions":[{"action_id":"qa_approve","block_id":"b","value":"BUILD1"}]}`)), http.StatusBadRequest},
		{"actions not a list", string(form(`{"type":"block_actions",` + user + `,"actions":"qa_approve"}`)), http.StatusBadRequest},
		{"unknown type", string(form(`{"type":"shortcut",` + user + `,"callback_id":"qa_approve"}`)), http.StatusOK},
		{"no type", string(form(`{` + user + `,"actions":[{"action_id":"qa_approve","block_id":"b","value":"BUILD1"}]}`)), http.StatusOK},
		{"legacy interactive_message", string(form(`{"type":"interactive_message",` + user +
			`,"actions":[{"name":"qa_approve","value":"BUILD1"}]}`)), http.StatusOK},
		{"block_actions without actions", string(form(`{"type":"block_actions",` + user + `}`)), http.StatusOK},
		{"block_actions with empty actions", string(form(`{"type":"block_actions",` + user + `,"actions":[]}`)), http.StatusOK},
		{"block_actions with a null action", string(form(`{"type":"block_actions",` + user + `,"actions":[null]}`)), http.StatusOK},
		{"action without block_id", string(form(`{"type":"block_actions",` + user +
			`,"actions":[{"action_id":"qa_approve","value":"BUILD1"}]}`)), http.StatusOK},
		{"action without action_id", string(form(`{"type":"block_actions",` + user +
			`,"actions":[{"block_id":"b","value":"BUILD1"}]}`)), http.StatusOK},
		{"open_qa link button", string(form(clickJSON(click{actionID: ActionOpenQA, value: "BUILD1"}))), http.StatusOK},
		{"view_closed", string(form(`{"type":"view_closed",` + user + `,"view":{"callback_id":"qa_reject_reason"}}`)), http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, r := &fakeActor{}, &fakeResponder{}
			h := newHandlers(a, r)
			w := serveSigned(h.Interactions(), []byte(tt.body))
			h.Wait()
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d (%s)", w.Code, tt.want, w.Body)
			}
			if tt.want == http.StatusOK && w.Body.Len() != 0 {
				t.Errorf("answer %q, want empty", w.Body.String())
			}
			if calls := a.snapshot(); !reflect.DeepEqual(calls, actorCalls{}) {
				t.Errorf("actor called: %+v", calls)
			}
			if eph, opened := r.snapshot(); len(eph)+len(opened) != 0 {
				t.Errorf("responder called: %v %v", eph, opened)
			}
		})
	}
}

// commandForm is the body Slack posts for /promote text.
func commandForm(text string) []byte {
	return []byte(url.Values{
		"token": {"legacy-verification-token"}, "team_id": {"T0PROMOTE"}, "team_domain": {"example"},
		"channel_id": {"C0HELLO"}, "channel_name": {"hello"}, "user_id": {"UOWN1"}, "user_name": {"grace"},
		"command": {"/promote"}, "text": {text}, "api_app_id": {"A0PROMOTE"}, "is_enterprise_install": {"false"},
		"response_url": {"https://hooks.slack.com/commands/T0/1/abc"}, "trigger_id": {"T3"},
	}.Encode())
}

// commandAnswer is the JSON the command handler should write for m.
func commandAnswer(t *testing.T, m Message) map[string]any {
	t.Helper()
	raw, err := json.Marshal(map[string]any{"response_type": "ephemeral", "text": m.Text, "blocks": m.Blocks})
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCommands(t *testing.T) {
	status := promote.StatusView{Project: testProject(), QA: []promote.BuildView{testView(promote.StateQAReady)}}
	// A Refusal's reason is mrkdwn the domain escaped: it is shown as is.
	const refusal = `No project "a&lt;b&gt;". Projects: hello.`
	tests := []struct {
		name         string
		text         string
		actor        *fakeActor
		want         Message
		wantStatuses []string
	}{
		{"status", "status hello", &fakeActor{status: status}, StatusMessage(status), []string{"hello"}},
		{"status, spaced", "  status   hello  ", &fakeActor{status: status}, StatusMessage(status), []string{"hello"}},
		{"status without project", "status", &fakeActor{}, Ephemeral("Which project? `/promote status <project>`"), nil},
		{"help", "help", &fakeActor{}, HelpMessage(), nil},
		{"no text", "", &fakeActor{}, HelpMessage(), nil},
		{"unknown subcommand", "deploy hello", &fakeActor{}, HelpMessage(), nil},
		{"unknown project", "status a<b>", &fakeActor{statusErr: &promote.Refusal{Reason: refusal}}, Notice(refusal), []string{"a<b>"}},
		{"status fails", "status hello", &fakeActor{statusErr: errors.New("pq: password authentication failed for user promotebot")},
			Ephemeral("Could not read the status; try again."), []string{"hello"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, r := tt.actor, &fakeResponder{}
			h := newHandlers(a, r)
			w := serveSigned(h.Commands(), commandForm(tt.text))
			if w.Code != http.StatusOK {
				t.Fatalf("status %d (%s)", w.Code, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var got map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("answer %q: %v", w.Body.String(), err)
			}
			if want := commandAnswer(t, tt.want); !reflect.DeepEqual(got, want) {
				t.Errorf("answer\n%s\nwant\n%v", w.Body, want)
			}
			if strings.Contains(w.Body.String(), "password") {
				t.Errorf("answer shows the error: %s", w.Body)
			}
			if calls := a.snapshot(); !slices.Equal(calls.Statuses, tt.wantStatuses) ||
				len(calls.Acts)+len(calls.Allowed)+len(calls.Options)+len(calls.Envs) != 0 {
				t.Errorf("actor got %+v, want Status %v", calls, tt.wantStatuses)
			}
		})
	}
}

func TestCommandsVerifySignature(t *testing.T) {
	body := commandForm("status hello")
	tampered := commandForm("status hellp")
	now := time.Now()
	tests := []struct {
		name   string
		header http.Header
		body   []byte
	}{
		{"no headers", http.Header{}, body},
		{"signed with another secret", sign("another", now, body), body},
		{"body changed", sign(testSecret, now, body), tampered},
		{"timestamp 6 minutes old", sign(testSecret, now.Add(-6*time.Minute), body), body},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &fakeActor{}
			h := newHandlers(a, &fakeResponder{})
			w := serve(context.Background(), h.Commands(), tt.header, tt.body)
			if w.Code != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", w.Code)
			}
			if calls := a.snapshot(); !reflect.DeepEqual(calls, actorCalls{}) {
				t.Errorf("actor called: %+v", calls)
			}
		})
	}
}
