package localslack

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/promotebot/promotebot/slackui"
)

const (
	testToken   = "xoxb-local-test"
	testSigning = "local-signing-secret"
)

var (
	quinn = Person{ID: "UQA", Name: "Quinn", Label: "Quinn (QA)", Email: "quinn@localhost"}
	olive = Person{ID: "UOWN", Name: "Olive", Label: "Olive (owner)", Email: "olive@localhost"}
)

// fixture is a local Slack with its API and page served, and a fake bot
// that records what the page sends it, verified as slackui verifies it.
type fixture struct {
	slack     *Slack
	api, page string
	client    *slack.Client

	mu       sync.Mutex
	received []slack.InteractionCallback
	answer   string // the bot's next answer body
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureAt(t, nil)
}

// newFixtureAt is newFixture with the clock now (nil: time.Now).
func newFixtureAt(t *testing.T, now func() time.Time) *fixture {
	t.Helper()
	f := &fixture{slack: New(Options{Token: testToken, SigningSecret: testSigning, People: []Person{quinn, olive},
		Channels: []Channel{{ID: "CDEPLOY", Name: "deploys"}}, Now: now})}
	bot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Error(err)
			return
		}
		if err := slackui.Verify(r.Header, body, testSigning); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		cb, err := slackui.DecodeInteraction(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.received = append(f.received, cb)
		answer := f.answer
		f.answer = ""
		f.mu.Unlock()
		if answer != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		if _, err := io.WriteString(w, answer); err != nil {
			t.Error(err)
		}
	}))
	t.Cleanup(bot.Close)
	api := httptest.NewServer(f.slack.API())
	t.Cleanup(api.Close)
	page := httptest.NewServer(f.slack.Page())
	t.Cleanup(page.Close)
	f.slack.SetInteractionURL(bot.URL + "/slack/interactions")
	f.api, f.page = api.URL+"/api/", page.URL
	f.client = slack.New(testToken, slack.OptionAPIURL(f.api))
	return f
}

func (f *fixture) interactions() []slack.InteractionCallback {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]slack.InteractionCallback{}, f.received...)
}

func (f *fixture) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get(f.page + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
	}
	return string(b)
}

func (f *fixture) post(t *testing.T, path string, v url.Values) int {
	t.Helper()
	resp, err := http.PostForm(f.page+path, v)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode
}

var hidden = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// formWith returns the fields of the first form in page holding want.
func formWith(t *testing.T, page, open, want string) url.Values {
	t.Helper()
	for _, part := range strings.Split(page, open)[1:] {
		part, _, _ = strings.Cut(part, "</form>")
		if !strings.Contains(part, want) {
			continue
		}
		v := url.Values{}
		for _, m := range hidden.FindAllStringSubmatch(part, -1) {
			v.Set(m[1], html.UnescapeString(m[2]))
		}
		return v
	}
	t.Fatalf("no form with %q in:\n%s", want, page)
	return nil
}

// TestWebAPIWithSlackGo: slack-go, as the bot uses it, gets Slack's
// answers.
func TestWebAPIWithSlackGo(t *testing.T) {
	f := newFixture(t)
	if _, err := slack.New("xoxb-wrong", slack.OptionAPIURL(f.api)).AuthTest(); err == nil ||
		err.Error() != "invalid_auth" {
		t.Fatalf("wrong token: %v", err)
	}
	auth, err := f.client.AuthTest()
	if err != nil || auth.UserID != BotUserID {
		t.Fatalf("auth.test: %+v %v", auth, err)
	}
	ch, _, _, err := f.client.OpenConversation(&slack.OpenConversationParameters{Users: []string{"UQA"}})
	if err != nil || ch.ID != "DQA" {
		t.Fatalf("conversations.open: %+v %v", ch, err)
	}
	_, ts, err := f.client.PostMessage("DQA", slack.MsgOptionText("hello", false))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.client.PostMessage("DQA", slack.MsgOptionText("reply", false), slack.MsgOptionTS(ts)); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := f.client.UpdateMessage("DQA", ts, slack.MsgOptionText("hello, *again*", false)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.client.PostMessage("CNOPE", slack.MsgOptionText("x", false)); err == nil ||
		err.Error() != "channel_not_found" {
		t.Fatalf("unknown channel: %v", err)
	}
	if _, err := f.client.PostEphemeral("CDEPLOY", "UOWN", slack.MsgOptionText("only Olive", false)); err != nil {
		t.Fatal(err)
	}
	u, err := f.client.GetUserInfo("UOWN")
	if err != nil || u.Profile.DisplayName != "Olive" || u.Profile.Email != "olive@localhost" {
		t.Fatalf("users.info: %+v %v", u, err)
	}
	if _, err := f.client.GetUserGroupMembers("SNONE"); err == nil {
		t.Fatal("usergroups.users.list of an unknown group succeeded")
	}
	if _, err := f.client.OpenView("made-up", slack.ModalViewRequest{Type: slack.VTModal}); err == nil ||
		err.Error() != "invalid_trigger_id" {
		t.Fatalf("views.open with a made-up trigger: %v", err)
	}

	qa, owner := f.get(t, "/?as=UQA"), f.get(t, "/?as=UOWN")
	if !strings.Contains(qa, "hello, <b>again</b>") || !strings.Contains(qa, "(edited)") ||
		!strings.Contains(qa, `<div class="replies">`) || strings.Contains(qa, "only Olive") {
		t.Errorf("Quinn's page:\n%s", qa)
	}
	if strings.Contains(owner, "hello") || !strings.Contains(owner, "only Olive") {
		t.Errorf("Olive's page:\n%s", owner)
	}
}

// TestClickAndDialog: a click is a signed block_actions payload from the
// person viewing; the dialog the bot opens for it shows to them and submits
// a signed view_submission; the bot's errors show in the dialog.
func TestClickAndDialog(t *testing.T) {
	f := newFixture(t)
	confirm := slack.NewConfirmationBlockObject(
		slack.NewTextBlockObject(slack.PlainTextType, "Reject?", false, false),
		slack.NewTextBlockObject(slack.PlainTextType, `Say "why"`, false, false),
		slack.NewTextBlockObject(slack.PlainTextType, "Yes", false, false),
		slack.NewTextBlockObject(slack.PlainTextType, "No", false, false))
	btn := slack.NewButtonBlockElement("qa_reject", "b-1", slack.NewTextBlockObject(slack.PlainTextType, "Reject", false, false)).
		WithStyle(slack.StyleDanger).WithConfirm(confirm)
	_, ts, err := f.client.PostMessage("UQA", slack.MsgOptionText("build", false),
		slack.MsgOptionBlocks(slack.NewActionBlock("", btn)))
	if err != nil {
		t.Fatal(err)
	}
	page := f.get(t, "/?as=UQA")
	if !strings.Contains(page, `class="btn danger" data-action="qa_reject" data-value="b-1" data-confirm="Reject?`+
		"\n\n"+`Say &#34;why&#34;">Reject</button>`) {
		t.Errorf("the button:\n%s", page)
	}
	click := formWith(t, page, `<form class="act"`, `data-action="qa_reject"`)

	forged := url.Values{}
	for k, v := range click {
		forged[k] = v
	}
	forged.Set("csrf", "guess")
	if code := f.post(t, "/click", forged); code != http.StatusForbidden {
		t.Errorf("click without the page's token: %d", code)
	}
	if code := f.post(t, "/click", click); code != http.StatusOK {
		t.Fatalf("click: %d", code)
	}
	got := f.interactions()
	if len(got) != 1 {
		t.Fatalf("the bot got %d interactions", len(got))
	}
	cb := got[0]
	act := cb.ActionCallback.BlockActions
	if cb.Type != slack.InteractionTypeBlockActions || cb.User.ID != "UQA" || cb.Channel.ID != "DQA" ||
		cb.TriggerID == "" || cb.Container.MessageTs != ts || len(act) != 1 || act[0].ActionID != "qa_reject" ||
		act[0].Value != "b-1" || act[0].ActionTs == "" {
		t.Fatalf("block_actions: %+v", cb)
	}

	// Olive cannot click on Quinn's message.
	steal := url.Values{}
	for k, v := range click {
		steal[k] = v
	}
	steal.Set("as", "UOWN")
	f.post(t, "/click", steal)
	if n := len(f.interactions()); n != 1 {
		t.Errorf("a click on someone else's DM reached the bot")
	}
	if !strings.Contains(f.get(t, "/?as=UOWN"), "That message is gone.") {
		t.Error("Olive is not told why nothing happened")
	}

	input := slack.NewPlainTextInputBlockElement(nil, "reason")
	input.Multiline = true
	modal := slack.ModalViewRequest{Type: slack.VTModal, CallbackID: "qa_reject_reason", PrivateMetadata: "b-1",
		Title:  slack.NewTextBlockObject(slack.PlainTextType, "Reject build", false, false),
		Submit: slack.NewTextBlockObject(slack.PlainTextType, "Reject", false, false),
		Blocks: slack.Blocks{BlockSet: []slack.Block{slack.NewInputBlock("reason",
			slack.NewTextBlockObject(slack.PlainTextType, "Reason", false, false), nil, input).WithOptional(true)}}}
	if _, err := f.client.OpenView(cb.TriggerID, modal); err != nil {
		t.Fatalf("views.open: %v", err)
	}
	if _, err := f.client.OpenView(cb.TriggerID, modal); err == nil || err.Error() != "exchanged_trigger_id" {
		t.Errorf("a trigger used twice: %v", err)
	}
	if strings.Contains(f.get(t, "/?as=UOWN"), `action="/submit"`) {
		t.Error("Olive sees Quinn's dialog")
	}
	page = f.get(t, "/?as=UQA")
	if !strings.Contains(page, `<textarea rows="3" name="v.reason.reason"></textarea>`) {
		t.Fatalf("the dialog:\n%s", page)
	}
	submit := formWith(t, page, `<form method="post" action="/submit"`, "Reject build")
	submit.Set("v.reason.reason", "it & <that>")
	f.mu.Lock()
	f.answer = `{"response_action":"errors","errors":{"reason":"Only QA of *shop* can reject"}}`
	f.mu.Unlock()
	f.post(t, "/submit", submit)
	got = f.interactions()
	sub := got[len(got)-1]
	if sub.Type != slack.InteractionTypeViewSubmission || sub.User.ID != "UQA" || sub.View.CallbackID != "qa_reject_reason" ||
		sub.View.PrivateMetadata != "b-1" || sub.View.State == nil ||
		sub.View.State.Values["reason"]["reason"].Value != "it & <that>" {
		t.Fatalf("view_submission: %+v", sub.View)
	}
	if page = f.get(t, "/?as=UQA"); !strings.Contains(page, `<span class="error">Only QA of <b>shop</b> can reject</span>`) {
		t.Fatalf("the refusal is not shown in the dialog:\n%s", page)
	}
	f.post(t, "/submit", submit)
	if page = f.get(t, "/?as=UQA"); strings.Contains(page, `action="/submit"`) {
		t.Fatalf("the dialog stayed open after the bot took it:\n%s", page)
	}
}

// TestRenderEscapes: nothing from a message becomes markup or a script
// link, and the page forbids scripts but its own.
func TestRenderEscapes(t *testing.T) {
	f := newFixture(t)
	evil := `<script>alert(1)</script>`
	blocks := `[{"type":"section","text":{"type":"mrkdwn","text":"&lt;img src=x onerror=alert(1)&gt; <javascript:alert(1)|click> <https://ok.example/?a=1&amp;b=2|fine> *` + "\\\"><script>x</script>" + `*"},` +
		`"accessory":{"type":"button","text":{"type":"plain_text","text":"` + "\\\"><b>" + `"},"url":"javascript:alert(1)","action_id":"x"}},` +
		`{"type":"context","elements":[{"type":"plain_text","text":"` + "</span><script>" + `"}]},` +
		`{"type":"actions","elements":[{"type":"button","action_id":"a\"><script>","value":"v' onclick='x","text":{"type":"plain_text","text":"<i>go</i>"}}]},` +
		`{"type":"` + "<svg onload=alert(1)>" + `"}]`
	resp, err := http.PostForm(f.api+"chat.postMessage",
		url.Values{"token": {testToken}, "channel": {"UQA"}, "text": {evil}, "blocks": {blocks}})
	if err != nil {
		t.Fatal(err)
	}
	var posted struct{ OK bool }
	if err := json.NewDecoder(resp.Body).Decode(&posted); err != nil || !posted.OK {
		t.Fatalf("post the blocks: %v %+v", err, posted)
	}
	resp.Body.Close()
	if _, _, err := f.client.PostMessage("CDEPLOY", slack.MsgOptionText("```"+evil+"```\n`"+evil+"`", false)); err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(f.page + "/?as=UQA")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("Content-Security-Policy: %q", csp)
	}
	for _, bad := range []string{"<script>", "<img", "<svg", `href="javascript`, "<i>go", "' onclick='"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page holds %q:\n%s", bad, page)
		}
	}
	for _, good := range []string{
		"&lt;img src=x onerror=alert(1)&gt;",
		"click", // the label of a link that is not made
		`<a href="https://ok.example/?a=1&amp;b=2" target="_blank" rel="noopener noreferrer">fine</a>`,
		`<span class="btn">&#34;&gt;&lt;b&gt;</span>`,
		"<pre>&lt;script&gt;alert(1)&lt;/script&gt;</pre>",
		"<code>&lt;script&gt;alert(1)&lt;/script&gt;</code>",
		"&lt;/span&gt;&lt;script&gt;",
		"[&lt;svg onload=alert(1)&gt; block]",
	} {
		if !strings.Contains(page, good) {
			t.Errorf("the page does not hold %q:\n%s", good, page)
		}
	}
	req, err := http.NewRequest(http.MethodGet, f.page+"/?as=UQA", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "rebound.example:80"
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("a request for another host name: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	var state struct {
		Version int    `json:"version"`
		Feed    string `json:"feed"`
	}
	if err := json.Unmarshal([]byte(f.get(t, "/state?as=UQA")), &state); err != nil {
		t.Fatal(err)
	}
	if state.Version == 0 || !strings.Contains(page, state.Feed) {
		t.Errorf("/state is not the page's feed: %+v", state)
	}
}

func TestMrkdwn(t *testing.T) {
	names := func(kind, id string) string {
		if id == "UQA" {
			return "Quinn"
		}
		return id
	}
	for _, tc := range []struct{ in, want string }{
		{"*bold* _it_ ~gone~", "<b>bold</b> <i>it</i> <s>gone</s>"},
		{"snake_case_name and 2*3*4", "snake_case_name and 2*3*4"},
		{"a `*code*` b", "a <code>*code*</code> b"},
		{":rocket: <@UQA> and <@UX|x>", "🚀 <span class=\"mention\">@Quinn</span> and <span class=\"mention\">@UX</span>"},
		{"<!date^1700000000^{date_short_pretty} {time}|2023-11-14T22:13:20Z>", "<time>today 5:13 PM</time>"},
		{"<https://x.example/a|*#12*>", `<a href="https://x.example/a" target="_blank" rel="noopener noreferrer"><b>#12</b></a>`},
		{"one\ntwo", "one<br>two"},
		{"a &amp; b &lt;c&gt;", "a &amp; b &lt;c&gt;"},
		{":not_an_emoji: x", ":not_an_emoji: x"},
	} {
		r := &renderer{name: names, now: time.Date(2023, 11, 14, 20, 0, 0, 0, est)}
		r.mrkdwn(tc.in)
		if got := r.b.String(); got != tc.want {
			t.Errorf("mrkdwn(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
