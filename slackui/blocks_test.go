package slackui

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/promotebot/promotebot/promote"
)

var update = flag.Bool("update", false, "rewrite golden files")

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

const buildID = "b-0001"

func testProject() promote.Project {
	return promote.Project{
		ID: "hello", Name: "Hello Service", URL: "https://hello.example.com", Channel: "C0HELLO",
		QA: []string{"UQA1", "SQAGROUP"}, Owners: []string{"UOWN1"},
		Image: "registry.example.com/acme/hello", Path: "apps/hello", RequiredApprovals: 2,
	}
}

// testView is a build of hello's feature/login branch in state s, with
// whatever that state implies already filled in.
func testView(s promote.State) promote.BuildView {
	b := promote.Build{
		ID: buildID, Project: "hello", Image: "registry.example.com/acme/hello:1.4.0",
		Kind: promote.KindBranch, Target: "feature/login",
		Commit: "0123456789abcdef0123456789abcdef01234567", Author: "Jane Doe",
		BuildURL: "https://ci.example.com/acme/hello/builds/42",
		State:    s, Environment: "qa/branch-feature-login",
		URL:       "https://feature-login.branch.hello.example.com",
		QACommit:  "89abcdef0123456789abcdef0123456789abcdef",
		CreatedAt: t0, UpdatedAt: t0.Add(90 * time.Minute),
	}
	v := promote.BuildView{Project: testProject(), QAMembers: []string{"UQA1", "UQA2"}}
	switch s {
	case promote.StateReceived:
		b.Environment, b.URL, b.QACommit = "", "", ""
	case promote.StateDeploying:
		b.URL, b.QACommit = "", ""
	case promote.StateQAFailed:
		b.URL, b.QACommit = "", ""
		b.Error = "kustomize build apps/hello/overlays/qa/branch-feature-login: no matches for Id Deployment"
	case promote.StateApproved, promote.StatePromoting, promote.StatePromoteFailed, promote.StatePromoted,
		promote.StateRolledBack:
		v.Approvals = []promote.Approval{approval("UQA1", promote.Approve, ""), approval("UQA2", promote.Approve, "")}
		b.PromotedBy = "UOWN1"
	case promote.StateRejected:
		v.Approvals = []promote.Approval{approval("UQA1", promote.Approve, ""),
			approval("UQA2", promote.Reject, "Login button does nothing on Safari")}
	case promote.StateClosed:
		b.ClosedBy = "UOWN1"
	case promote.StateSuperseded:
		b.SupersededBy = "b-0002"
		v.SupersededByImage = "registry.example.com/acme/hello:1.4.1"
	}
	switch s {
	case promote.StatePromoting:
		b.PullRequest = "https://github.com/acme/deploy-config/pull/42"
	case promote.StatePromoteFailed:
		b.Error = "merge pull request #42: 405 Required status check \"render\" is failing"
	case promote.StatePromoted, promote.StateRolledBack:
		b.PullRequest = "https://github.com/acme/deploy-config/pull/42"
		b.ProductionCommit = "fedcba9876543210fedcba9876543210fedcba98"
		v.ProductionCommitURL = "https://github.com/acme/deploy-config/commit/fedcba9876543210fedcba9876543210fedcba98"
	}
	if s == promote.StateRolledBack {
		b.Rollback = ownerRollback()
		b.Rollback.Commit = rollbackCommit
	}
	v.Build = b
	return v
}

func approval(user string, verdict promote.Verdict, reason string) promote.Approval {
	return promote.Approval{BuildID: buildID, User: user, Name: strings.ToLower(user), Verdict: verdict,
		Reason: reason, At: t0.Add(30 * time.Minute)}
}

func post(role promote.MessageRole, recipient string, v promote.BuildView) promote.Post {
	return promote.Post{Role: role, Recipient: recipient, View: v}
}

// with returns v changed by f, for one-off cases.
func with(v promote.BuildView, f func(*promote.BuildView)) promote.BuildView {
	f(&v)
	return v
}

func messageJSON(m Message) map[string]any {
	return map[string]any{"text": m.Text, "blocks": m.Blocks}
}

// encode is json.MarshalIndent without HTML escaping, so that golden files
// show Slack's own escaping (&lt;, <@U…>) as Slack receives it.
func encode(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatalf("encode: %v", err)
	}
	return buf.Bytes()
}

func goldenCases() map[string]any {
	owner := func(s promote.State) any {
		return messageJSON(Render(post(promote.MessageOwner, "UOWN1", testView(s))))
	}
	channel := func(v promote.BuildView) any { return messageJSON(Render(post(promote.MessageChannel, "", v))) }
	qaPending := testView(promote.StateQAReady)
	qaPending.Approvals = []promote.Approval{approval("UQA2", promote.Approve, "")}
	status := promote.StatusView{
		Project: testProject(),
		Production: &promote.Build{ID: "b-0000", Image: "registry.example.com/acme/hello:1.3.2",
			State: promote.StatePromoted, PromotedBy: "UOWN1", UpdatedAt: t0.Add(-48 * time.Hour),
			PullRequest: "https://github.com/acme/deploy-config/pull/41"},
		QA: []promote.BuildView{
			with(testView(promote.StateQAReady), func(v *promote.BuildView) {
				v.Approvals = []promote.Approval{approval("UQA1", promote.Approve, "")}
			}),
			with(testView(promote.StateApproved), func(v *promote.BuildView) {
				v.Build.ID, v.Build.Target, v.Build.Kind = "b-0003", "v1.3.3", promote.KindTag
				v.Build.Image = "registry.example.com/acme/hello:1.3.3"
				v.Build.Environment, v.Build.URL = "qa/tag-v1-3-3", "https://v1-3-3.tag.hello.example.com"
			}),
		},
	}
	rollout := func(s promote.State, env promote.RolloutEnv, st promote.RolloutStatus, timedOut bool) promote.BuildView {
		return rolloutView(s, env, true, testRollout(st, timedOut))
	}
	rollouts := status
	live := rollout(promote.StatePromoted, promote.RolloutProduction, promote.RolloutHealthy, false).Build
	rollouts.Production = &live
	rollouts.Feedback, rollouts.RolloutTimeout = true, testTimeout
	rollouts.QA = []promote.BuildView{
		rollout(promote.StateQAReady, promote.RolloutQA, promote.RolloutDegraded, false),
		with(status.QA[1], func(v *promote.BuildView) {
			v.Feedback, v.RolloutTimeout = true, testTimeout
			v.Build.Rollout.QA = testRollout(promote.RolloutSynced, false)
		}),
	}
	rb := rollbackVariants()
	options := optionsMessages(testOptions())
	rollbackModal, _ := RollbackModal(testChoice(), rollbackView(promote.StatePromoted, nil))
	return map[string]any{
		"owner-promoted-rollback":      messageJSON(Render(post(promote.MessageOwner, "UOWN1", rb["offered"]))),
		"production-degraded-rollback": messageJSON(Render(post(promote.MessageProduction, "", rb["offered-degraded"]))),
		"production-rollback":          messageJSON(Render(post(promote.MessageProduction, "", rb["offered"]))),
		"owner-rollback-pending":       messageJSON(Render(post(promote.MessageOwner, "UOWN1", rb["pending"]))),
		"production-rollback-failed":   messageJSON(Render(post(promote.MessageProduction, "", rb["failed"]))),
		"channel-rolled-back":          channel(rb["rolled-back"]),
		"owner-rolled-back-auto":       messageJSON(Render(post(promote.MessageOwner, "UOWN1", rb["rolled-back-auto"]))),
		"rollback":                     messageJSON(Render(post(promote.MessageRollback, "", rb["rolled-back"]))),
		"rollback-auto":                messageJSON(Render(post(promote.MessageRollback, "", rb["rolled-back-auto"]))),
		"rollback-modal":               rollbackModal,
		"rollback-options":             messageJSON(options["choices"]),
		"rollback-options-no-current":  messageJSON(options["no-current"]),
		"channel-received":             channel(testView(promote.StateReceived)),
		"channel-qa-degraded-timed-out": channel(rollout(promote.StateQAReady, promote.RolloutQA,
			promote.RolloutDegraded, true)),
		"channel-promoted-live": channel(rollout(promote.StatePromoted, promote.RolloutProduction,
			promote.RolloutHealthy, false)),
		"owner-qa-synced": messageJSON(Render(post(promote.MessageOwner, "UOWN1",
			rollout(promote.StateQAReady, promote.RolloutQA, promote.RolloutSynced, false)))),
		"owner-promoted-timed-out": messageJSON(Render(post(promote.MessageOwner, "UOWN1",
			rollout(promote.StatePromoted, promote.RolloutProduction, promote.RolloutSynced, true)))),
		"qa-timed-out": messageJSON(Render(post(promote.MessageQA, "UQA1",
			rollout(promote.StateQAReady, promote.RolloutQA, promote.RolloutPending, true)))),
		"production-degraded": messageJSON(Render(post(promote.MessageProduction, "",
			rollout(promote.StatePromoted, promote.RolloutProduction, promote.RolloutDegraded, false)))),
		"status-rollouts": messageJSON(StatusMessage(rollouts)),
		"channel-qa-ready-commit-url": channel(with(testView(promote.StateQAReady), func(v *promote.BuildView) {
			v.CommitURL = "https://github.com/acme/deploy-config/commit/89abcdef0123456789abcdef0123456789abcdef"
			v.Approvals = []promote.Approval{approval("UQA1", promote.Approve, "")}
		})),
		"channel-rejected":       channel(testView(promote.StateRejected)),
		"channel-qa-failed":      channel(testView(promote.StateQAFailed)),
		"channel-promoted":       channel(testView(promote.StatePromoted)),
		"channel-closed":         channel(testView(promote.StateClosed)),
		"channel-superseded":     channel(testView(promote.StateSuperseded)),
		"owner-deploying":        owner(promote.StateDeploying),
		"owner-qa-ready-needs-2": owner(promote.StateQAReady),
		"owner-approved":         owner(promote.StateApproved),
		"owner-rejected":         owner(promote.StateRejected),
		"owner-promoting":        owner(promote.StatePromoting),
		"owner-promote-failed":   owner(promote.StatePromoteFailed),
		"owner-promoted":         owner(promote.StatePromoted),
		"owner-closed":           owner(promote.StateClosed),
		"qa-pending":             messageJSON(Render(post(promote.MessageQA, "UQA1", qaPending))),
		"qa-after-approve":       messageJSON(Render(post(promote.MessageQA, "UQA2", qaPending))),
		"qa-after-reject":        messageJSON(Render(post(promote.MessageQA, "UQA2", testView(promote.StateRejected)))),
		"qa-superseded":          messageJSON(Render(post(promote.MessageQA, "UQA1", testView(promote.StateSuperseded)))),
		"verdict-reply-approve":  messageJSON(Render(promote.Post{Role: promote.MessageVerdictReply, Approval: approval("UQA1", promote.Approve, "")})),
		"verdict-reply-reject":   messageJSON(Render(promote.Post{Role: promote.MessageVerdictReply, Approval: approval("UQA2", promote.Reject, "Login button does nothing on Safari")})),
		"production":             messageJSON(Render(post(promote.MessageProduction, "", testView(promote.StatePromoted)))),
		"unknown-role":           messageJSON(Render(post("nonsense", "", testView(promote.StateQAReady)))),
		"reject-modal":           RejectModal(buildID, testView(promote.StateQAReady)),
		"status":                 messageJSON(StatusMessage(status)),
		"status-empty":           messageJSON(StatusMessage(promote.StatusView{Project: testProject()})),
		"help":                   messageJSON(HelpMessage()),
		"ephemeral":              messageJSON(Ephemeral("Only owners of Hello Service can deploy <!channel> builds.")),
	}
}

func TestGolden(t *testing.T) {
	cases := goldenCases()
	for name, v := range envGoldenCases() {
		cases[name] = v
	}
	for name, v := range cases {
		t.Run(name, func(t *testing.T) {
			// Decoded and encoded again, because slack-go's own MarshalJSON
			// methods escape < and > inside some blocks.
			got := encode(t, decode(t, v))
			path := filepath.Join("testdata", "golden", name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./slackui/ -run Golden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the golden file (-update rewrites it)\ngot:\n%s", path, got)
			}
		})
	}
}

// everyMessage renders every role in every state, with view adjusting the
// view first.
func everyMessage(view func(promote.State) promote.BuildView) map[string]Message {
	ms := map[string]Message{}
	roles := []promote.MessageRole{promote.MessageChannel, promote.MessageOwner, promote.MessageQA,
		promote.MessageProduction, promote.MessageRollback, promote.MessageExpiry, "nonsense"}
	for _, s := range promote.States {
		v := view(s)
		for _, r := range roles {
			ms[string(r)+"/"+string(s)] = Render(post(r, "UQA1", v))
		}
		ms["qa-voter/"+string(s)] = Render(post(promote.MessageQA, "UQA2", v))
		for name, ev := range envVariants(v) {
			for _, r := range []promote.MessageRole{promote.MessageChannel, promote.MessageOwner,
				promote.MessageQA, promote.MessageExpiry} {
				ms[name+"/"+string(r)+"/"+string(s)] = Render(post(r, "UQA1", ev))
			}
		}
		ms["status/"+string(s)] = StatusMessage(promote.StatusView{Project: v.Project, Production: &v.Build,
			QA: []promote.BuildView{v, v}})
	}
	for _, a := range []promote.Approval{approval("UQA1", promote.Approve, ""),
		approval("UQA2", promote.Reject, "reason"), approval("UQA3", "shrug", "")} {
		ms["verdict/"+string(a.Verdict)] = Render(promote.Post{Role: promote.MessageVerdictReply, Approval: a})
	}
	ms["help"] = HelpMessage()
	ms["ephemeral"] = Ephemeral("no")
	ms["ephemeral-empty"] = Ephemeral("")
	ms["status-empty"] = StatusMessage(promote.StatusView{})
	ms["empty-post"] = Render(promote.Post{})
	return ms
}

// decode is a message as Slack receives it, as generic JSON.
func decode(t *testing.T, v any) any {
	t.Helper()
	var out any
	if err := json.Unmarshal(encode(t, v), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// walk calls f on every JSON object in v.
func walk(v any, f func(map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		f(x)
		for _, c := range x {
			walk(c, f)
		}
	case []any:
		for _, c := range x {
			walk(c, f)
		}
	}
}

func buttons(t *testing.T, m Message) []map[string]any {
	var bs []map[string]any
	walk(decode(t, m.Blocks), func(o map[string]any) {
		if o["type"] == "button" {
			bs = append(bs, o)
		}
	})
	return bs
}

func hasActions(t *testing.T, m Message) bool {
	for _, b := range decode(t, m.Blocks).([]any) {
		if b.(map[string]any)["type"] == "actions" {
			return true
		}
	}
	return false
}

func TestButtonsCarryOnlyTheBuildID(t *testing.T) {
	allowed := map[string]bool{ActionQAApprove: true, ActionQAReject: true, ActionProdDeploy: true,
		ActionBuildClose: true, ActionOpenQA: true, ActionProdRollback: true, ActionQATeardown: true,
		ActionQAKeep: true}
	ms := everyMessage(testView)
	for k, m := range rollbackMessages(rollbackVariants()) {
		ms["rollback/"+k] = m
	}
	for name, m := range ms {
		for _, b := range buttons(t, m) {
			if b["value"] != buildID {
				t.Errorf("%s: button %v has value %v, want the build id only", name, b["action_id"], b["value"])
			}
			if id, _ := b["action_id"].(string); !allowed[id] {
				t.Errorf("%s: unexpected action_id %q", name, id)
			}
		}
	}

	type want struct{ style, confirm string }
	check := func(name string, m Message, wants map[string]want) {
		t.Helper()
		got := map[string]bool{}
		for _, b := range buttons(t, m) {
			id := b["action_id"].(string)
			got[id] = true
			w, ok := wants[id]
			if !ok {
				t.Errorf("%s: unexpected button %s", name, id)
				continue
			}
			if style, _ := b["style"].(string); style != w.style {
				t.Errorf("%s: %s style %q, want %q", name, id, style, w.style)
			}
			confirm := ""
			if c, ok := b["confirm"].(map[string]any); ok {
				confirm = c["confirm"].(map[string]any)["text"].(string)
			}
			if confirm != w.confirm {
				t.Errorf("%s: %s confirm button %q, want %q", name, id, confirm, w.confirm)
			}
		}
		for id := range wants {
			if !got[id] {
				t.Errorf("%s: no %s button", name, id)
			}
		}
	}
	ownerButtons := map[string]want{ActionProdDeploy: {"primary", "Deploy"}, ActionBuildClose: {"danger", "Close"}}
	for _, s := range []promote.State{promote.StateQAReady, promote.StateApproved, promote.StatePromoteFailed} {
		check("owner/"+string(s), Render(post(promote.MessageOwner, "UOWN1", testView(s))), ownerButtons)
	}
	check("owner/rejected", Render(post(promote.MessageOwner, "UOWN1", testView(promote.StateRejected))),
		map[string]want{ActionBuildClose: {"danger", "Close"}})
	qaButtons := map[string]want{ActionQAApprove: {"primary", ""}, ActionQAReject: {"danger", ""}, ActionOpenQA: {}}
	for _, s := range []promote.State{promote.StateQAReady, promote.StateApproved} {
		check("qa/"+string(s), Render(post(promote.MessageQA, "UQA3", testView(s))), qaButtons)
	}
	check("channel/qa-ready", Render(post(promote.MessageChannel, "", testView(promote.StateQAReady))),
		map[string]want{ActionOpenQA: {}})

	confirm := buttons(t, Render(post(promote.MessageOwner, "UOWN1", testView(promote.StateApproved))))[0]["confirm"]
	text := confirm.(map[string]any)["text"].(map[string]any)["text"]
	if text != "Deploy registry.example.com/acme/hello:1.4.0 to production?" {
		t.Errorf("deploy confirmation says %q", text)
	}
}

func TestNoActionsOnceDecided(t *testing.T) {
	for _, s := range []promote.State{promote.StateReceived, promote.StateDeploying, promote.StateQAFailed,
		promote.StatePromoting, promote.StatePromoted, promote.StateClosed, promote.StateSuperseded} {
		for _, role := range []promote.MessageRole{promote.MessageOwner, promote.MessageQA} {
			m := Render(post(role, "UQA1", testView(s)))
			if hasActions(t, m) || len(buttons(t, m)) > 0 {
				t.Errorf("%s/%s: has buttons: %s", role, s, encode(t, m.Blocks))
			}
		}
	}
	// A QA member who has given a verdict has nothing left to press.
	for _, s := range []promote.State{promote.StateQAReady, promote.StateApproved, promote.StateRejected} {
		v := testView(s)
		v.Approvals = append(v.Approvals, approval("UQA9", promote.Approve, ""))
		if m := Render(post(promote.MessageQA, "UQA9", v)); hasActions(t, m) || len(buttons(t, m)) > 0 {
			t.Errorf("qa after verdict in %s: has buttons", s)
		}
	}
	// Nor does one whose build someone else rejected.
	if m := Render(post(promote.MessageQA, "UQA3", testView(promote.StateRejected))); hasActions(t, m) {
		t.Errorf("qa on a rejected build: has buttons")
	}
	// A rejected build offers Deploy to no one, in no message.
	for name, m := range everyMessage(testView) {
		if !strings.HasSuffix(name, "/"+string(promote.StateRejected)) {
			continue
		}
		for _, b := range buttons(t, m) {
			if b["action_id"] == ActionProdDeploy {
				t.Errorf("%s: a rejected build has a Deploy button", name)
			}
		}
	}
	// The channel drops its QA link once the build is in production, closed or superseded.
	for _, s := range []promote.State{promote.StatePromoted, promote.StateClosed, promote.StateSuperseded} {
		if m := Render(post(promote.MessageChannel, "", testView(s))); len(buttons(t, m)) > 0 {
			t.Errorf("channel/%s: has buttons", s)
		}
	}
}

const hostile = "<!channel> *x* <https://evil|click> & <@U0ADMIN>"

func hostileView(s promote.State) promote.BuildView {
	v := testView(s)
	v.Build.Image, v.Build.Target, v.Build.Author = hostile, hostile, hostile
	v.Build.Environment, v.Build.Commit, v.Build.BuildURL = hostile, hostile, hostile
	v.Build.URL, v.Build.PullRequest, v.Build.ProductionCommit = hostile, hostile, hostile
	v.Build.QACommit, v.CommitURL, v.ProductionCommitURL = hostile, hostile, "javascript:alert(1)"
	v.Build.Error, v.SupersededByImage, v.Project.Name = hostile, hostile, hostile
	v.Build.PromotedBy, v.Build.ClosedBy = hostile, hostile
	v.QAMembers = []string{hostile}
	v.Approvals = append(v.Approvals, approval("UQA3", promote.Reject, hostile), approval(hostile, promote.Approve, ""))
	v.Feedback = true
	v.Build.Rollout.QA = &promote.Rollout{Status: promote.RolloutDegraded, Revision: hostile, Message: hostile,
		TimedOut: true}
	v.Build.Rollout.Production = &promote.Rollout{Status: promote.RolloutSynced, Revision: hostile, TimedOut: true}
	v.RollbackTo = hostile
	v.Env = &promote.Environment{Project: hostile, Kind: promote.KindBranch, Target: hostile, Name: hostile,
		URL: hostile, BuildID: buildID, Image: hostile, ActiveAt: t0, WarnedAt: t0.Add(time.Hour), Teardown: hostile}
	v.Build.Rollback = &promote.Rollback{Image: hostile, By: hostile, ByName: hostile, Reason: hostile,
		PullRequest: hostile, Commit: hostile, Error: hostile}
	return v
}

// assertInert fails when a message (as JSON) holds a live mention or link
// from hostile text.
func assertInert(t *testing.T, name string, v any) {
	t.Helper()
	// Every string as Slack decodes it: slack-go writes < as \u003c in places.
	out := string(encode(t, decode(t, v)))
	for _, bad := range []string{"<!channel>", "<https://evil", "<@U0ADMIN>", "javascript:", "*x* <"} {
		if strings.Contains(out, bad) {
			t.Errorf("%s: %q is not escaped in\n%s", name, bad, out)
		}
	}
}

func TestUntrustedTextIsEscaped(t *testing.T) {
	ms := everyMessage(hostileView)
	ms["verdict/hostile"] = Render(promote.Post{Role: promote.MessageVerdictReply, Approval: approval(hostile, promote.Reject, hostile)})
	ms["ephemeral/hostile"] = Ephemeral(hostile)
	for name, m := range ms {
		assertInert(t, name, messageJSON(m))
	}
	assertInert(t, "modal", RejectModal(buildID, hostileView(promote.StateQAReady)))
	// Identifiers are code spans, so that mrkdwn shows them as typed.
	m := Render(post(promote.MessageChannel, "", hostileView(promote.StateQAReady)))
	out := string(encode(t, decode(t, m.Blocks)))
	if want := "`&lt;!channel&gt; *x* &lt;https://evil|click&gt; &amp; &lt;@U0ADMIN&gt;`"; !strings.Contains(out, want) {
		t.Errorf("the target is not shown as escaped code %s:\n%s", want, out)
	}
}

func TestEscapeAndCut(t *testing.T) {
	cases := []struct{ in, want string }{
		{"a & b", "a &amp; b"},
		{"<!channel>", "&lt;!channel&gt;"},
		{"&amp;", "&amp;amp;"},
		{"plain", "plain"},
	}
	for _, c := range cases {
		if got := escape(c.in); got != c.want {
			t.Errorf("escape(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := escapeClip("ab<cd", 5); got != "ab…" {
		t.Errorf("escapeClip cut inside an entity: %q", got)
	}
	if got := clip("see <https://example.com/a|a link> now", 20); got != "see …" {
		t.Errorf("clip cut inside a link: %q", got)
	}
	if got := clip("x```"+strings.Repeat("e", 50)+"```", 20); strings.Count(got, "```")%2 != 0 {
		t.Errorf("clip left a code block open: %q", got)
	}
	for id, want := range map[string]string{"U123": "<@U123>", "W9": "<@W9>", "SQA": "<!subteam^SQA>",
		"": "someone", "<!here>": "&lt;!here&gt;"} {
		if got := mention(id); got != want {
			t.Errorf("mention(%q) = %q, want %q", id, got, want)
		}
	}
	if got := when(t0); got != "<!date^1795428000^{date_short_pretty} {time}|2026-11-23T10:00:00Z>" {
		t.Errorf("when = %q", got)
	}
	if got := prRef("https://github.com/acme/deploy-config/pull/42"); got != "<https://github.com/acme/deploy-config/pull/42|#42>" {
		t.Errorf("prRef = %q", got)
	}
	if got := link("https://x.example/?a=1&b=2|3", "l"); got != "<https://x.example/?a=1&amp;b=2%7C3|l>" {
		t.Errorf("link = %q", got)
	}
}

func TestRejectModal(t *testing.T) {
	m := RejectModal(buildID, testView(promote.StateQAReady))
	if m.Type != slack.VTModal || m.CallbackID != RejectCallbackID || m.PrivateMetadata != buildID {
		t.Fatalf("modal %+v", m)
	}
	in, ok := m.Blocks.BlockSet[1].(*slack.InputBlock)
	if !ok || in.BlockID != RejectReasonBlockID || !in.Optional {
		t.Fatalf("reason block %+v", m.Blocks.BlockSet[1])
	}
	el := in.Element.(*slack.PlainTextInputBlockElement)
	if el.ActionID != RejectReasonActionID || !el.Multiline || el.MaxLength != 500 {
		t.Errorf("reason input %+v", el)
	}
}
