package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/promotebot/promotebot/gitops/forge/githubtest"
	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/slackui"
	"github.com/promotebot/promotebot/slackui/slacktest"
)

// attackBot is serve with two projects in pull-request mode, Slack and
// GitHub faked: hello (QA UQA1, owner UOWN1) and world (QA UQA2, owner
// UOWN2). UEVE is in the workspace and has no role.
type attackBot struct {
	base, remote string
	fake         *slacktest.Server
	gh           *githubtest.Server
	// ids names the builds: w1 (world, qa-ready), w2 (world, approved),
	// h1 (hello, promoting: its merge waits for GitHub), once set up.
	ids map[string]string
}

// attack is one hostile request and what the bot must answer. Whatever the
// answer, nothing may change: no build, no ref of the config repository, no
// GitHub write and no Slack message beyond the one ephemeral refusal (eph,
// shown to ephTo) when one is expected.
type attack struct {
	name  string
	setup func(t *testing.T, b *attackBot) // runs before the "before" snapshot
	send  func(t *testing.T, b *attackBot) (int, string)
	want  int
	body  string // in the answer, when set
	eph   string // in the one ephemeral answer, when set
	ephTo string
}

func TestAttacks(t *testing.T) {
	skipIfShort(t, "three dozen attacks on a real server, each watched for 250 ms in which nothing may change, about 17 s")
	b := startAttackBot(t)
	hello := `{"project":"hello","image":"registry.example.com/acme/hello:9.9.9","type":"branch","target":"attack/one"}`
	withTarget := func(target string) string {
		return `{"project":"hello","image":"registry.example.com/acme/hello:9.9.9","type":"branch","target":` +
			strconv.Quote(target) + `}`
	}
	withImage := func(image string) string {
		return `{"project":"hello","image":"` + image + `","type":"branch","target":"attack/one"}`
	}
	approveW1 := func(t *testing.T, user string) string {
		return atkClickBody(t, user, "qa_approve", b.ids["w1"], "D"+user[1:])
	}
	hookBody := func(b *attackBot) string {
		return `{"action":"completed","check_suite":{"head_branch":"promotebot/hello/` + b.ids["h1"] + `","conclusion":"success"}}`
	}

	attacks := []attack{
		// Slack: the signature and its 5-minute window are checked before the
		// payload is read. Each payload would be obeyed if it were genuine.
		{name: "slack/forged signature", want: 401, send: func(t *testing.T, b *attackBot) (int, string) {
			body := approveW1(t, "UQA2")
			return atkSlack(t, b.base+"/slack/interactions", body, body, "wrong-signing-secret", time.Now())
		}},
		{name: "slack/replayed 6 minutes later", want: 401, send: func(t *testing.T, b *attackBot) (int, string) {
			body := approveW1(t, "UQA2")
			return atkSlack(t, b.base+"/slack/interactions", body, body, slackSigning, time.Now().Add(-6*time.Minute))
		}},
		{name: "slack/timestamp 6 minutes ahead", want: 401, send: func(t *testing.T, b *attackBot) (int, string) {
			body := approveW1(t, "UQA2")
			return atkSlack(t, b.base+"/slack/interactions", body, body, slackSigning, time.Now().Add(6*time.Minute))
		}},
		{name: "slack/body tampered after signing", want: 401, send: func(t *testing.T, b *attackBot) (int, string) {
			return atkSlack(t, b.base+"/slack/interactions", approveW1(t, "UEVE"), approveW1(t, "UQA2"), slackSigning, time.Now())
		}},
		{name: "slack/no signature", want: 401, send: func(t *testing.T, b *attackBot) (int, string) {
			return atkSend(t, http.MethodPost, b.base+"/slack/interactions", approveW1(t, "UQA2"),
				map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
		}},
		{name: "slack/forged slash command", want: 401, send: func(t *testing.T, b *attackBot) (int, string) {
			body := "command=%2Fpromote&text=status+world&user_id=UEVE&channel_id=C0WORLD" + slashFrom
			return atkSlack(t, b.base+"/slack/commands", body, body, "wrong-signing-secret", time.Now())
		}},

		// Buttons carry only a build id; who may act comes from the config.
		{name: "button/hello's QA approves a world build", want: 200, send: atkClick("UQA1", "qa_approve", "w1"),
			eph: "Only QA of world (<@UQA2>) can approve this build.", ephTo: "UQA1"},
		{name: "button/hello's QA rejects a world build", want: 200, send: atkClick("UQA1", "qa_reject", "w1"),
			eph: "Only QA of world (<@UQA2>) can reject this build.", ephTo: "UQA1"},
		{name: "button/hello's QA deploys a world build", want: 200, send: atkClick("UQA1", "prod_deploy", "w2"),
			eph: "Only owners of world (<@UOWN2>) can deploy this build.", ephTo: "UQA1"},
		{name: "button/hello's owner deploys an approved world build", want: 200, send: atkClick("UOWN1", "prod_deploy", "w2"),
			eph: "Only owners of world (<@UOWN2>) can deploy this build.", ephTo: "UOWN1"},
		{name: "button/hello's owner closes a world build", want: 200, send: atkClick("UOWN1", "build_close", "w2"),
			eph: "Only owners of world (<@UOWN2>) can close this build.", ephTo: "UOWN1"},
		{name: "button/stranger approves", want: 200, send: atkClick("UEVE", "qa_approve", "w1"),
			eph: "Only QA of world (<@UQA2>) can approve this build.", ephTo: "UEVE"},
		{name: "button/stranger rejects", want: 200, send: atkClick("UEVE", "qa_reject", "w1"),
			eph: "Only QA of world (<@UQA2>) can reject this build.", ephTo: "UEVE"},
		{name: "button/stranger deploys", want: 200, send: atkClick("UEVE", "prod_deploy", "w2"),
			eph: "Only owners of world (<@UOWN2>) can deploy this build.", ephTo: "UEVE"},
		{name: "button/stranger closes", want: 200, send: atkClick("UEVE", "build_close", "w2"),
			eph: "Only owners of world (<@UOWN2>) can close this build.", ephTo: "UEVE"},
		{name: "button/stranger submits the reject dialog", want: 200, body: "Only QA of world",
			send: func(t *testing.T, b *attackBot) (int, string) {
				raw, err := json.Marshal(fromSlack(map[string]any{
					"type": "view_submission", "user": map[string]string{"id": "UEVE"},
					"view": map[string]any{"callback_id": slackui.RejectCallbackID, "private_metadata": b.ids["w1"],
						"state": map[string]any{"values": map[string]any{slackui.RejectReasonBlockID: map[string]any{
							slackui.RejectReasonActionID: map[string]string{"type": "plain_text_input", "value": "evil"}}}}},
				}))
				if err != nil {
					t.Fatal(err)
				}
				body := "payload=" + url.QueryEscape(string(raw))
				return atkSlack(t, b.base+"/slack/interactions", body, body, slackSigning, time.Now())
			}},
		{name: "button/value names no build", want: 200, eph: "This build is not known", ephTo: "UQA2",
			send: func(t *testing.T, b *attackBot) (int, string) {
				return click(t, b.base, "UQA2", "qa_approve", "x' OR '1'='1", "DQA2"), ""
			}},
		{name: "button/unknown action", want: 200, send: func(t *testing.T, b *attackBot) (int, string) {
			return click(t, b.base, "UQA2", "admin_override", b.ids["w1"], "DQA2"), ""
		}},

		// CI: authenticated first, then bounded, then checked against the
		// project; nothing refused reaches git.
		{name: "ci/HMAC with another key", want: 401, send: atkCI(hello, map[string]string{
			"X-Promotebot-Signature-256": "sha256=" + atkHMAC("not-the-webhook-secret", hello)})},
		{name: "ci/HMAC of another body", want: 401, send: atkCI(hello, map[string]string{
			"X-Promotebot-Signature-256": "sha256=" + atkHMAC(webhookSecret, withTarget("attack/two"))})},
		{name: "ci/no credentials", want: 401, send: atkCI(hello, nil)},
		{name: "ci/bearer of another secret", want: 401, send: atkCI(hello, map[string]string{
			"Authorization": "Bearer " + githubWebhookSecret})},
		{name: "ci/build-complete without credentials", want: 401, send: func(t *testing.T, b *attackBot) (int, string) {
			return atkSend(t, http.MethodPost, b.base+"/build-complete",
				"project=hello&image=registry.example.com%2Facme%2Fhello%3A9.9.9&type=branch&target=attack%2Fone",
				map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
		}},
		{name: "ci/read a build without credentials", want: 401, send: func(t *testing.T, b *attackBot) (int, string) {
			return atkSend(t, http.MethodGet, b.base+"/v1/builds/"+b.ids["w1"], "", nil)
		}},
		{name: "ci/body of 65 KiB", want: 413, send: atkCI(`{"project":"hello","pad":"`+strings.Repeat("a", 65<<10)+`"}`,
			map[string]string{"Authorization": "Bearer " + webhookSecret})},
		{name: "ci/body of 65 KiB without a length", want: 413, send: func(t *testing.T, b *attackBot) (int, string) {
			body := io.MultiReader(strings.NewReader(`{"pad":"`), strings.NewReader(strings.Repeat("a", 65<<10)))
			req, err := http.NewRequest(http.MethodPost, b.base+"/v1/builds", body) // ContentLength unknown: chunked
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+webhookSecret)
			req.Header.Set("Content-Type", "application/json")
			return atkDo(t, req)
		}},
		{name: "ci/unknown project", want: 404, send: atkCI(
			`{"project":"nope","image":"registry.example.com/acme/nope:1","type":"branch","target":"attack/one"}`, atkBearer)},
		{name: "ci/image from a foreign registry", want: 400, send: atkCI(withImage("evil.example.com/acme/hello:1"), atkBearer)},
		{name: "ci/image of another repository", want: 400, send: atkCI(withImage("registry.example.com/acme/world:1"), atkBearer)},
		{name: "ci/image with a newline", want: 400,
			send: atkCI(withImage(`registry.example.com/acme/hello:1\nimages:`), atkBearer)},
		{name: "ci/target ../../etc/passwd", want: 400, send: atkCI(withTarget("../../etc/passwd"), atkBearer)},
		{name: "ci/target feature/../../x", want: 400, send: atkCI(withTarget("feature/../../x"), atkBearer)},
		{name: "ci/target with YAML lines", want: 400, send: atkCI(withTarget("a\nimages:\n- name: evil"), atkBearer)},
		{name: "ci/target x: y", want: 400, send: atkCI(withTarget("x: y"), atkBearer)},
		// A target that reads as another (issue 13): invisible characters
		// always, other scripts' look-alikes unless the project allows them.
		{name: "ci/target \\ufeffmain (a BOM, reads main)", want: 400, send: atkCI(withTarget("\ufeffmain"), atkBearer)},
		{name: "ci/target ma\\u200bin (a zero-width space)", want: 400, send: atkCI(withTarget("ma\u200bin"), atkBearer)},
		{name: "ci/target m\\u0430in (a Cyrillic a)", want: 400, send: atkCI(withTarget("m\u0430in"), atkBearer)},
		// Links that read as one host and lead to another, or carry a password.
		{name: "ci/buildURL with user information", want: 400, body: "must not carry user information", send: atkCI(
			`{"project":"hello","image":"registry.example.com/acme/hello:9.9.9","type":"branch","target":"attack/one",`+
				`"buildURL":"https://ci.example.com@evil.example.net/run/1"}`, atkBearer)},
		{name: "ci/commit link with a password", want: 400, body: "must not carry user information", send: atkCI(
			`{"project":"hello","image":"registry.example.com/acme/hello:9.9.9","type":"branch","target":"attack/one",`+
				`"commit":"https://bot:hunter2@git.example.com/acme/hello/commit/1"}`, atkBearer)},

		// GitHub: deliveries are verified before they are read; a forged one
		// does not make the bot look at its waiting promotion again.
		{name: "github/signed with another secret", setup: atkWaitingPromotion, want: 401,
			send: func(t *testing.T, b *attackBot) (int, string) {
				return atkGitHub(t, b.base, hookBody(b), "sha256="+atkHMAC("not-the-secret", hookBody(b)))
			}},
		{name: "github/no signature", want: 401, send: func(t *testing.T, b *attackBot) (int, string) {
			return atkGitHub(t, b.base, hookBody(b), "")
		}},
		{name: "github/body changed after signing", want: 401, send: func(t *testing.T, b *attackBot) (int, string) {
			signed := `{"action":"completed","check_suite":{"head_branch":"feature/x","conclusion":"success"}}`
			return atkGitHub(t, b.base, hookBody(b), "sha256="+atkHMAC(githubWebhookSecret, signed))
		}},
	}

	attacks = append(attacks, requestAttacks(hookBody)...)

	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			if a.setup != nil {
				a.setup(t, b)
				b.quiet(t)
			}
			before := b.snapshot(t)
			code, answer := a.send(t, b)
			if code != a.want || !strings.Contains(answer, a.body) {
				t.Fatalf("answer %d %s, want %d with %q", code, answer, a.want, a.body)
			}
			eph := before.slack["chat.postEphemeral"]
			if a.eph != "" {
				eph++
				waitFor(t, "the refusal", func() bool { return len(b.fake.Calls("chat.postEphemeral")) >= eph })
				got := b.fake.Calls("chat.postEphemeral")[eph-1].Params
				if !strings.Contains(got["text"], a.eph) || got["user"] != a.ephTo {
					t.Errorf("ephemeral to %s: %q, want to %s: %q", got["user"], got["text"], a.ephTo, a.eph)
				}
			}
			time.Sleep(250 * time.Millisecond) // room for an effect that should not come
			after := b.snapshot(t)
			before.slack["chat.postEphemeral"] = eph
			if diff := before.diff(after); diff != "" {
				t.Errorf("the attack changed something:\n%s", diff)
			}
		})
	}

	// The same requests, genuine, are obeyed: the refusals above were the
	// checks at work, not a bot that does nothing.
	t.Run("controls", func(t *testing.T) {
		if code := click(t, b.base, "UQA2", "qa_approve", b.ids["w1"], "DQA2"); code != http.StatusOK {
			t.Fatalf("genuine click: %d", code)
		}
		waitState(t, b.base, b.ids["w1"], "approved")
		if b.ids["h1"] == "" {
			t.Skip("the GitHub attacks did not run")
		}
		if code := githubEvent(t, b.base, "check_suite", hookBody(b), githubWebhookSecret); code != http.StatusOK {
			t.Fatalf("genuine delivery: %d", code)
		}
		waitState(t, b.base, b.ids["h1"], "promoted")
	})

	// Someone who may push branches to the config repository, but not to
	// its main branch, pushes a commit of theirs onto the bot's pull-request
	// branch right after the bot pushed it (a hook stands in for winning
	// that race, once). The bot must merge only what it wrote.
	t.Run("github/a push onto the bot's branch is not merged", func(t *testing.T) {
		gittest.InstallHook(t, b.remote, "post-receive", `#!/bin/sh
[ -e mallory-done ] && exit 0
while read old new ref; do
  case "$ref" in refs/heads/promotebot/world/*)
    touch mallory-done
    blob=$(echo unreviewed | git hash-object -w --stdin)
    tree=$( (git ls-tree "$new"; printf '100644 blob %s\tmallory.txt\n' "$blob") | git mktree)
    commit=$(echo unreviewed | git -c user.name=mallory -c user.email=mallory@example.com commit-tree "$tree" -p "$new")
    git update-ref "$ref" "$commit" "$new"
  esac
done
`)
		click(t, b.base, "UOWN2", "prod_deploy", b.ids["w2"], "DOWN2")
		var v map[string]any
		waitFor(t, "the promotion to end", func() bool {
			v = getBuild(t, b.base, b.ids["w2"])
			return v["state"] == "promoted" || v["state"] == "promote-failed"
		})
		if _, ok := gittest.ReadFile(t, b.remote, "main", "mallory.txt"); ok {
			t.Errorf("a commit the bot did not write reached production through its pull request (build %v):\n%s",
				v["state"], gittest.Git(t, b.remote, "log", "--format=%h %an: %s", "-3", "main"))
		}
	})

	t.Run("secrets stay out of error paths", testSecretsInErrorPaths)
}

// startAttackBot starts the two-project bot with w1 in QA and w2 approved.
func startAttackBot(t *testing.T) *attackBot {
	t.Helper()
	b := &attackBot{fake: slacktest.NewServer(t, slackToken), ids: map[string]string{}}
	b.fake.AddChannel("C0HELLO")
	b.fake.AddChannel("C0WORLD")
	for _, id := range []string{"UQA1", "UOWN1", "UQA2", "UOWN2", "UEVE"} {
		b.fake.AddUser(slacktest.User{ID: id, Name: strings.ToLower(id[1:])})
	}
	b.remote = gittest.NewRemote(t, atkTwoProjectSeed(t))
	b.gh = githubtest.NewServer(t, b.remote, "acme", "deploy-config", githubToken)
	config := filepath.Join(t.TempDir(), "config.yaml")
	yaml := `listen: 127.0.0.1:0
dataDir: ` + filepath.Join(t.TempDir(), "data") + `
gitops:
  repo: ` + b.remote + `
slack:
  apiURL: ` + b.fake.URL + `
github:
  repository: acme/deploy-config
  apiURL: ` + b.gh.URL + `
projects:
- id: hello
  url: https://hello.example.com
  channel: C0HELLO
  qa: [UQA1]
  owners: [UOWN1]
  image: registry.example.com/acme/hello
  path: apps/hello
- id: world
  url: https://world.example.com
  channel: C0WORLD
  qa: [UQA2]
  owners: [UOWN2]
  image: registry.example.com/acme/world
  path: apps/world
`
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	b.base, _ = serveConfig(t, config, map[string]string{
		"PROMOTEBOT_SLACK_BOT_TOKEN":       slackToken,
		"PROMOTEBOT_SLACK_SIGNING_SECRET":  slackSigning,
		"PROMOTEBOT_GITHUB_TOKEN":          githubToken,
		"PROMOTEBOT_GITHUB_WEBHOOK_SECRET": githubWebhookSecret,
	})
	b.ids["w1"] = b.qaReady(t, `{"project":"world","image":"registry.example.com/acme/world:1.0.0","type":"branch","target":"feature/one"}`)
	b.ids["w2"] = b.qaReady(t, `{"project":"world","image":"registry.example.com/acme/world:2.0.0","type":"branch","target":"feature/two"}`)
	waitFor(t, "world's DMs", func() bool { return len(b.fake.Messages("DQA2")) == 2 && len(b.fake.Messages("DOWN2")) == 2 })
	click(t, b.base, "UQA2", "qa_approve", b.ids["w2"], "DQA2")
	waitState(t, b.base, b.ids["w2"], "approved")
	b.quiet(t)
	return b
}

// atkWaitingPromotion sets up h1: approved, deployed by its owner, and its
// pull request waiting because GitHub refuses the merge (a required check).
func atkWaitingPromotion(t *testing.T, b *attackBot) {
	t.Helper()
	b.gh.Fail(githubtest.RouteMergePull, githubtest.Failure{Status: 405, Message: `Required status check "ci" is expected.`})
	id := b.qaReady(t, `{"project":"hello","image":"registry.example.com/acme/hello:5.0.0","type":"branch","target":"feature/pr"}`)
	waitFor(t, "hello's DMs", func() bool { return len(b.fake.Messages("DQA1")) > 0 && len(b.fake.Messages("DOWN1")) > 0 })
	click(t, b.base, "UQA1", "qa_approve", id, "DQA1")
	waitState(t, b.base, id, "approved")
	click(t, b.base, "UOWN1", "prod_deploy", id, "DOWN1")
	waitFor(t, "the merge to wait", func() bool {
		v := getBuild(t, b.base, id)
		return v["state"] == "promoting" && strings.Contains(v["error"].(string), `Required status check "ci"`)
	})
	b.ids["h1"] = id
}

// atkTwoProjectSeed is testdata/configrepo with a second app, world, made
// from hello.
func atkTwoProjectSeed(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "..", "testdata", "configrepo"))); err != nil {
		t.Fatal(err)
	}
	hello := filepath.Join(dir, "apps", "hello")
	rename := strings.NewReplacer("hello", "world", "Hello", "World")
	err := filepath.WalkDir(hello, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(hello, p)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, "apps", "world", rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, []byte(rename.Replace(string(data))), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// qaReady reports a build with the right credentials and waits for its QA
// deploy.
func (b *attackBot) qaReady(t *testing.T, body string) string {
	t.Helper()
	code, accepted := postBuild(t, b.base, body)
	if code != http.StatusAccepted {
		t.Fatalf("POST %s: %d %v", body, code, accepted)
	}
	id := accepted["id"].(string)
	waitState(t, b.base, id, "qa-ready")
	return id
}

// quiet waits until neither Slack nor GitHub has been called for 400 ms:
// the jobs queued by a setup have run.
func (b *attackBot) quiet(t *testing.T) {
	t.Helper()
	last, since := -1, time.Now()
	waitFor(t, "the bot to be quiet", func() bool {
		n := len(b.fake.Calls()) + len(b.gh.Calls())
		if n != last {
			last, since = n, time.Now()
		}
		return time.Since(since) > 400*time.Millisecond
	})
}

// atkState is what an attack must not change.
type atkState struct {
	refs   string            // every ref of the config repository
	builds map[string]string // build name → state, approvals, pull request, production commit
	slack  map[string]int    // Slack calls that write, by method
	github int               // GitHub calls other than GET
}

// slackWrites are the Slack methods that show something to someone.
var slackWrites = map[string]bool{"chat.postMessage": true, "chat.update": true, "chat.delete": true,
	"chat.postEphemeral": true, "views.open": true, "views.update": true, "views.push": true}

func (b *attackBot) snapshot(t *testing.T) atkState {
	t.Helper()
	s := atkState{refs: gittest.Git(t, b.remote, "for-each-ref"), builds: map[string]string{}, slack: map[string]int{}}
	for name, id := range b.ids {
		v := getBuild(t, b.base, id)
		s.builds[name] = fmt.Sprintf("state %v, %d verdicts, PR %q, production %q",
			v["state"], len(v["approvals"].([]any)), v["pullRequest"], v["productionCommit"])
	}
	for _, c := range b.fake.Calls() {
		if slackWrites[c.Method] {
			s.slack[c.Method]++
		}
	}
	for _, c := range b.gh.Calls() {
		if c.Method != http.MethodGet {
			s.github++
		}
	}
	return s
}

// diff describes how after differs from s, or is "".
func (s atkState) diff(after atkState) string {
	var d []string
	if s.refs != after.refs {
		d = append(d, fmt.Sprintf("config repository refs:\n%s\nthen:\n%s", s.refs, after.refs))
	}
	for name, v := range s.builds {
		if after.builds[name] != v {
			d = append(d, fmt.Sprintf("build %s: %s, then %s", name, v, after.builds[name]))
		}
	}
	for m := range slackWrites {
		if s.slack[m] != after.slack[m] {
			d = append(d, fmt.Sprintf("Slack %s calls: %d, then %d", m, s.slack[m], after.slack[m]))
		}
	}
	if s.github != after.github {
		d = append(d, fmt.Sprintf("GitHub writes: %d, then %d", s.github, after.github))
	}
	return strings.Join(d, "\n")
}

// atkClick sends a genuinely signed click by user on the named build.
func atkClick(user, action, build string) func(*testing.T, *attackBot) (int, string) {
	return func(t *testing.T, b *attackBot) (int, string) {
		return click(t, b.base, user, action, b.ids[build], "D"+user[1:]), ""
	}
}

// atkClickBody is the form body Slack sends for a click.
func atkClickBody(t *testing.T, user, action, value, channel string) string {
	t.Helper()
	now := time.Now()
	raw, err := json.Marshal(fromSlack(map[string]any{
		"type": "block_actions", "user": map[string]string{"id": user},
		"trigger_id": "trigger-" + strconv.FormatInt(now.UnixNano(), 10), "channel": map[string]string{"id": channel},
		"actions": []map[string]string{{"action_id": action, "block_id": "b", "value": value, "type": "button",
			"action_ts": actionTS(now)}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	return "payload=" + url.QueryEscape(string(raw))
}

// atkSlack sends sent with Slack's headers for signed, signed with secret
// at ts.
func atkSlack(t *testing.T, u, signed, sent, secret string, ts time.Time) (int, string) {
	t.Helper()
	stamp := strconv.FormatInt(ts.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:%s", stamp, signed)
	return atkSend(t, http.MethodPost, u, sent, map[string]string{
		"Content-Type":              "application/x-www-form-urlencoded",
		"X-Slack-Request-Timestamp": stamp,
		"X-Slack-Signature":         "v0=" + hex.EncodeToString(mac.Sum(nil)),
	})
}

var atkBearer = map[string]string{"Authorization": "Bearer " + webhookSecret}

// atkCI posts body to the CI webhook as JSON with headers.
func atkCI(body string, headers map[string]string) func(*testing.T, *attackBot) (int, string) {
	return func(t *testing.T, b *attackBot) (int, string) {
		h := map[string]string{"Content-Type": "application/json"}
		for k, v := range headers {
			h[k] = v
		}
		return atkSend(t, http.MethodPost, b.base+"/v1/builds", body, h)
	}
}

// atkGitHub sends a check_suite delivery with sig as X-Hub-Signature-256
// (none when empty).
func atkGitHub(t *testing.T, base, body, sig string) (int, string) {
	t.Helper()
	h := map[string]string{"Content-Type": "application/json", "X-GitHub-Event": "check_suite"}
	if sig != "" {
		h["X-Hub-Signature-256"] = sig
	}
	return atkSend(t, http.MethodPost, base+"/github/webhook", body, h)
}

func atkHMAC(secret, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	return hex.EncodeToString(mac.Sum(nil))
}

func atkSend(t *testing.T, method, u, body string, headers map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return atkDo(t, req)
}

func atkDo(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// testSecretsInErrorPaths runs a bot whose every secret is set, with the
// config repository behind smart HTTP and Basic auth, then makes its pushes
// fail with answers that echo the credentials they were sent, and forges
// requests on every route. No secret (nor the git password Basic-encoded,
// as it travels) may show in the logs, any HTTP answer, Slack or git.
func testSecretsInErrorPaths(t *testing.T) {
	secrets := map[string]string{
		"PROMOTEBOT_WEBHOOK_SECRET":        "whsec-secret-CI-4711",
		"PROMOTEBOT_SLACK_BOT_TOKEN":       "xoxb-secret-TOKEN",
		"PROMOTEBOT_SLACK_SIGNING_SECRET":  "signing-secret-SLACK-42",
		"PROMOTEBOT_GITHUB_TOKEN":          "ghp-secret-GH-TOKEN",
		"PROMOTEBOT_GITHUB_WEBHOOK_SECRET": "ghwh-secret-HOOK-99",
		"PROMOTEBOT_GIT_USERNAME":          "bot",
		"PROMOTEBOT_GIT_PASSWORD":          "s3cr3t-pass-XYZ",
	}
	password, ci := secrets["PROMOTEBOT_GIT_PASSWORD"], secrets["PROMOTEBOT_WEBHOOK_SECRET"]
	fake := slacktest.NewServer(t, secrets["PROMOTEBOT_SLACK_BOT_TOKEN"])
	fake.AddChannel("C0HELLO")
	fake.AddUser(slacktest.User{ID: "UQA1", Name: "ada"})
	fake.AddUser(slacktest.User{ID: "UOWN1", Name: "olga"})
	remote := gittest.NewRemote(t, filepath.Join("..", "..", "testdata", "configrepo"))
	gh := githubtest.NewServer(t, remote, "acme", "deploy-config", secrets["PROMOTEBOT_GITHUB_TOKEN"])
	srv := gittest.NewServer(t, filepath.Dir(remote), "bot", password)

	// The git server answers with what it was sent: at start-up 500 (the
	// clone is retried), then for pushes 500, 503, and a report refusing
	// the update. (A 401 or 403 is a refusal of the credentials: permanent,
	// it fails the build at once; see the clone package's tests.)
	var startup atomic.Bool
	var pushes atomic.Int32
	startup.Store(true)
	srv.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		echo := "ECHO Authorization: " + r.Header.Get("Authorization") + " password=" + password
		if startup.Load() {
			http.Error(w, echo, http.StatusInternalServerError)
			return true
		}
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/"+gittest.ReceivePack) {
			return false
		}
		n := pushes.Add(1)
		if n <= 0 {
			return false
		}
		push, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read push: %v", err)
		}
		pkt := func(line string) string { return fmt.Sprintf("%04x%s", len(line)+4, line) }
		switch n {
		case 1:
			http.Error(w, echo, http.StatusInternalServerError)
		case 2:
			http.Error(w, echo, http.StatusServiceUnavailable)
		default:
			// A refusal as git sends it: the status report, and the hook's
			// words on the side band when the client asked for it.
			w.Header().Set("Content-Type", "application/x-git-receive-pack-result")
			report := pkt("unpack ok\n") + pkt("ng refs/heads/main pre-receive hook declined: "+echo+"\n") + "0000"
			if strings.Contains(string(push[:min(len(push), 300)]), "side-band-64k") {
				report = pkt("\x02hook: "+echo+"\n") + pkt("\x01"+report) + "0000"
			}
			fmt.Fprint(w, report)
		}
		return true
	})

	config := helloConfig(t, srv.RepoURL(remote), "slack:\n  apiURL: "+fake.URL+
		"\ngithub:\n  repository: acme/deploy-config\n  apiURL: "+gh.URL+"\n")
	base, logs := serveConfig(t, config, secrets)
	bearer := map[string]string{"Authorization": "Bearer " + ci, "Content-Type": "application/json"}
	waitFor(t, "a failed clone", func() bool { return strings.Contains(logs.String(), "config repo unreachable") })
	_, readyWhileDown := get(t, base+"/readyz")
	startup.Store(false)

	report := func(body string) string {
		t.Helper()
		code, answer := atkSend(t, http.MethodPost, base+"/v1/builds", body, bearer)
		var out map[string]any
		if err := json.Unmarshal([]byte(answer), &out); err != nil || code != http.StatusAccepted {
			t.Fatalf("POST: %d %s", code, answer)
		}
		return out["id"].(string)
	}
	view := func(id string) (map[string]any, string) {
		t.Helper()
		code, answer := atkSend(t, http.MethodGet, base+"/v1/builds/"+id, "", bearer)
		var out map[string]any
		if err := json.Unmarshal([]byte(answer), &out); err != nil || code != http.StatusOK {
			t.Fatalf("GET: %d %s", code, answer)
		}
		return out, answer
	}

	// One build that gets through (its commit is read below), then one whose
	// pushes fail: 500 and 503 are retried, the refusal fails the build.
	pushes.Store(-100)
	good := report(`{"project":"hello","image":"registry.example.com/acme/hello:1.0.0","type":"tag","target":"v1.0.0"}`)
	waitFor(t, "the first QA deploy", func() bool { b, _ := view(good); return b["state"] == "qa-ready" })
	pushes.Store(0)
	bad := report(`{"project":"hello","image":"registry.example.com/acme/hello:2.0.0","type":"branch","target":"leak/one"}`)
	var failed map[string]any
	var failedAnswer string
	waitFor(t, "the failed QA deploy", func() bool {
		failed, failedAnswer = view(bad)
		return failed["state"] == "qa-failed"
	})
	if !strings.Contains(failed["error"].(string), "ECHO") || !strings.Contains(failed["error"].(string), "(remote: hook: ") {
		t.Fatalf("the build's error does not carry the git server's answer and the hook's words: %v", failed["error"])
	}
	waitFor(t, "Slack to hear of the failure", func() bool {
		for _, m := range fake.Messages("C0HELLO") {
			if strings.Contains(m.Text+string(m.Blocks), "ECHO") {
				return true
			}
		}
		return false
	})

	// Forged calls on every route, each of which logs why it was refused.
	var answers []string
	for _, r := range []struct{ path, body, header, value string }{
		{"/v1/builds", "{}", "Authorization", "Bearer " + password},
		{"/v1/builds", "{}", "X-Promotebot-Signature-256", "sha256=" + atkHMAC(password, "{}")},
		{"/slack/interactions", "payload=%7B%7D", "X-Slack-Signature", "v0=" + atkHMAC(password, "payload=%7B%7D")},
		{"/slack/commands", "text=help", "X-Slack-Signature", "v0=00"},
		{"/github/webhook", "{}", "X-Hub-Signature-256", "sha256=" + atkHMAC(password, "{}")},
	} {
		code, answer := atkSend(t, http.MethodPost, base+r.path, r.body, map[string]string{r.header: r.value,
			"Content-Type": "application/json", "X-Slack-Request-Timestamp": strconv.FormatInt(time.Now().Unix(), 10)})
		if code != http.StatusUnauthorized {
			t.Errorf("forged POST %s: %d %s", r.path, code, answer)
		}
		answers = append(answers, answer)
	}
	_, goodAnswer := view(good)
	_, ready := get(t, base+"/readyz")
	_, metrics := get(t, base+"/metrics")
	var slack strings.Builder
	for _, c := range fake.Calls() {
		fmt.Fprintf(&slack, "%s %v\n", c.Method, c.Params)
	}
	var commits strings.Builder
	for _, c := range gittest.Log(t, remote, "--all") {
		fmt.Fprintf(&commits, "%s\n%s\n\n", c.Subject, c.Body)
	}
	if !strings.Contains(commits.String(), "Promotebot-Build: "+good) {
		t.Fatalf("the good build's commit is not in the remote:\n%s", commits.String())
	}
	var github strings.Builder
	for _, c := range gh.Calls() {
		fmt.Fprintf(&github, "%s %s %s\n", c.Method, c.Path, c.Body)
	}

	places := []struct{ name, text string }{
		{"logs", logs.String()},
		{"GET /v1/builds of the failed build", failedAnswer},
		{"GET /v1/builds of the deployed build", goodAnswer},
		{"/readyz while the git server failed", readyWhileDown},
		{"/readyz", ready},
		{"/metrics", metrics},
		{"answers to forged calls", strings.Join(answers, "\n")},
		{"Slack calls", slack.String()},
		{"commit messages", commits.String()},
		{"GitHub calls", github.String()},
	}
	values := map[string]string{"git password, Basic-encoded": base64.StdEncoding.EncodeToString([]byte("bot:" + password))}
	for name, v := range secrets {
		if name != "PROMOTEBOT_GIT_USERNAME" {
			values[name] = v
		}
	}
	for _, p := range places {
		t.Run(p.name, func(t *testing.T) {
			for name, v := range values {
				if strings.Contains(p.text, v) {
					i := strings.Index(p.text, v)
					t.Errorf("%s is in the %s: …%s…", name, p.name, p.text[max(0, i-200):min(len(p.text), i+len(v)+40)])
				}
			}
		})
	}
}
