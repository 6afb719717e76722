package slackui

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/promotebot/promotebot/promote"
	"github.com/promotebot/promotebot/slackui/slacktest"
)

const clientToken = "xoxb-client-test"

func newTestClient(t *testing.T) (*Client, *slacktest.Server) {
	t.Helper()
	fake := slacktest.NewServer(t, clientToken)
	fake.AddChannel("C0HELLO")
	fake.AddUser(slacktest.User{ID: "UQA1", Name: "ada", RealName: "Ada Lovelace", Email: "ada@example.com"})
	fake.AddUser(slacktest.User{ID: "UOWN1", Name: "olga", RealName: "Olga", Email: "olga@example.com"})
	fake.AddGroup("S0QA", "UQA1", "UQA2")
	return NewClient(clientToken, fake.URL, nil), fake
}

func testPost(role promote.MessageRole, recipient string, state promote.State) promote.Post {
	return promote.Post{Role: role, Recipient: recipient, View: promote.BuildView{
		Build: promote.Build{ID: "B1", Project: "hello", Image: "registry.example.com/acme/hello:1.0.0",
			Kind: promote.KindBranch, Target: "main", State: state, URL: "https://main.branch.hello.example.com"},
		Project: promote.Project{ID: "hello", Channel: "C0HELLO", Owners: []string{"UOWN1"}, RequiredApprovals: 1},
	}}
}

func TestClientPostsUpdatesAndReplies(t *testing.T) {
	c, fake := newTestClient(t)
	ctx := context.Background()
	ch, ts, err := c.Post(ctx, testPost(promote.MessageChannel, "", promote.StateDeploying), nil)
	if err != nil || ch != "C0HELLO" || ts == "" {
		t.Fatalf("channel post = %s %s %v", ch, ts, err)
	}
	dm, dts, err := c.Post(ctx, testPost(promote.MessageOwner, "UOWN1", promote.StateQAReady), nil)
	if err != nil || !strings.HasPrefix(dm, "D") {
		t.Fatalf("owner DM = %s %s %v", dm, dts, err)
	}
	reply := testPost(promote.MessageVerdictReply, "UOWN1/UQA1", promote.StateApproved)
	reply.Approval = promote.Approval{User: "UQA1", Verdict: promote.Approve}
	if _, _, err := c.Post(ctx, reply, &promote.Message{Channel: dm, TS: dts}); err != nil {
		t.Fatalf("reply: %v", err)
	}
	if err := c.Update(ctx, ch, ts, testPost(promote.MessageChannel, "", promote.StateQAReady)); err != nil {
		t.Fatalf("update: %v", err)
	}
	m, ok := fake.Message(ch, ts)
	if !ok || m.Updated != 1 || !strings.Contains(string(m.Blocks), "open_qa") {
		t.Fatalf("channel message after update: %+v", m)
	}
	replies := 0
	for _, m := range fake.Messages(dm) {
		if m.ThreadTS == dts {
			replies++
		}
	}
	if replies != 1 {
		t.Fatalf("%d replies under the owner's DM, want 1", replies)
	}
	// Every post names its build, role and recipient in its metadata.
	var metas []string
	for _, call := range fake.Calls("chat.postMessage") {
		metas = append(metas, call.Params["metadata"])
	}
	want := []string{
		`{"event_type":"promotebot_message","event_payload":{"build_id":"B1","project":"hello","recipient":"","role":"channel"}}`,
		`{"event_type":"promotebot_message","event_payload":{"build_id":"B1","project":"hello","recipient":"UOWN1","role":"owner"}}`,
		`{"event_type":"promotebot_message","event_payload":{"build_id":"B1","project":"hello","recipient":"UOWN1/UQA1","role":"verdict-reply"}}`,
	}
	if !slices.Equal(metas, want) {
		t.Errorf("metadata of the posts:\n%s\nwant\n%s", strings.Join(metas, "\n"), strings.Join(want, "\n"))
	}
}

// TestClientErrors: Slack's failures are sorted for the job queue.
func TestClientErrors(t *testing.T) {
	c, fake := newTestClient(t)
	ctx := context.Background()
	post := testPost(promote.MessageChannel, "", promote.StateDeploying)

	fake.Fail("chat.postMessage", slacktest.Failure{Status: 429, RetryAfter: 7})
	_, _, err := c.Post(ctx, post, nil)
	var ra *promote.RetryAfterError
	if !errors.As(err, &ra) || ra.After != 7*time.Second {
		t.Fatalf("429: %v, want RetryAfterError of 7s", err)
	}
	fake.Fail("chat.postMessage", slacktest.Failure{Status: 503})
	if _, _, err := c.Post(ctx, post, nil); err == nil || promote.IsPermanent(err) || errors.As(err, &ra) {
		t.Fatalf("503: %v, want a transient error", err)
	}
	fake.Fail("chat.postMessage", slacktest.Failure{Error: "internal_error"})
	if _, _, err := c.Post(ctx, post, nil); err == nil || promote.IsPermanent(err) {
		t.Fatalf("ok:false internal_error: %v, want a transient error", err)
	}
	post.View.Project.Channel = "C0GONE"
	if _, _, err := c.Post(ctx, post, nil); !promote.IsPermanent(err) || !strings.Contains(err.Error(), "channel_not_found") {
		t.Fatalf("unknown channel: %v, want a permanent error", err)
	}
	if err := c.Update(ctx, "C0HELLO", "1.2", post); !promote.IsPermanent(err) {
		t.Fatalf("update of a message that is gone: %v, want a permanent error", err)
	}
	bad := NewClient("xoxb-wrong", fake.URL, nil)
	_, _, err = bad.Post(ctx, testPost(promote.MessageChannel, "", promote.StateDeploying), nil)
	if !promote.IsPermanent(err) || strings.Contains(err.Error(), "xoxb-wrong") {
		t.Fatalf("bad token: %v, want a permanent error without the token", err)
	}
}

// TestDirectoryCaches: people and groups are asked once, then cached until
// their time runs out.
func TestDirectoryCaches(t *testing.T) {
	c, fake := newTestClient(t)
	ctx := context.Background()
	now := time.Now()
	c.now = func() time.Time { return now }
	for range 3 {
		members, err := c.GroupMembers(ctx, "S0QA")
		if err != nil || strings.Join(members, ",") != "UQA1,UQA2" {
			t.Fatalf("GroupMembers = %v, %v", members, err)
		}
		p, err := c.Person(ctx, "UQA1")
		if err != nil || p.Name != "ada" || p.Email != "ada@example.com" {
			t.Fatalf("Person = %+v, %v", p, err)
		}
	}
	if n, m := len(fake.Calls("usergroups.users.list")), len(fake.Calls("users.info")); n != 1 || m != 1 {
		t.Fatalf("calls: %d usergroups.users.list, %d users.info; want 1 each", n, m)
	}
	now = now.Add(groupTTL + time.Second)
	if _, err := c.GroupMembers(ctx, "S0QA"); err != nil {
		t.Fatal(err)
	}
	if n := len(fake.Calls("usergroups.users.list")); n != 2 {
		t.Fatalf("after the TTL: %d calls, want 2", n)
	}
	if _, err := c.GroupMembers(ctx, "S0NOPE"); !promote.IsPermanent(err) {
		t.Fatalf("unknown group: %v, want a permanent error", err)
	}
}
