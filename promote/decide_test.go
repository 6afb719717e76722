package promote_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promotebot/promotebot/promote"
)

// fakeDirectory knows a few people and one user group.
type fakeDirectory struct {
	groups map[string][]string
	people map[string]promote.Person
}

func newDirectory() *fakeDirectory {
	return &fakeDirectory{
		groups: map[string][]string{"S0QA": {"UQA2", "UQA3"}},
		people: map[string]promote.Person{
			"UQA1":  {ID: "UQA1", Name: "Ada", Email: "ada@example.com"},
			"UQA2":  {ID: "UQA2", Name: "Bob", Email: "bob@example.com"},
			"UQA3":  {ID: "UQA3", Name: "Cy", Email: "cy@example.com"},
			"UOWN1": {ID: "UOWN1", Name: "Olga", Email: "olga@example.com"},
			"UOWN2": {ID: "UOWN2", Name: "Otto", Email: "otto@example.com"},
		},
	}
}

func (d *fakeDirectory) Person(_ context.Context, id string) (promote.Person, error) {
	p, ok := d.people[id]
	if !ok {
		return promote.Person{}, fmt.Errorf("%w: user_not_found", promote.ErrInvalid)
	}
	return p, nil
}

func (d *fakeDirectory) GroupMembers(_ context.Context, id string) ([]string, error) {
	return d.groups[id], nil
}

// fakeNotifier records what it is asked and fails as told.
type fakeNotifier struct {
	mu    sync.Mutex
	posts []string // "role recipient state"
	edits []string // "channel/ts state"
	next  int
	fail  []error
}

func (f *fakeNotifier) failure() error {
	if len(f.fail) == 0 {
		return nil
	}
	err := f.fail[0]
	f.fail = f.fail[1:]
	return err
}

func (f *fakeNotifier) Post(_ context.Context, p promote.Post, parent *promote.Message) (string, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failure(); err != nil {
		return "", "", err
	}
	f.next++
	entry := fmt.Sprintf("%s %s %s", p.Role, p.Recipient, p.View.Build.State)
	if parent != nil {
		entry += " under " + parent.TS
	}
	f.posts = append(f.posts, entry)
	channel := p.View.Project.Channel
	if p.Recipient != "" {
		channel = "D" + p.Recipient
	}
	return channel, fmt.Sprintf("1700000000.%06d", f.next), nil
}

func (f *fakeNotifier) Update(_ context.Context, channel, ts string, p promote.Post) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failure(); err != nil {
		return err
	}
	f.edits = append(f.edits, fmt.Sprintf("%s/%s %s", channel, ts, p.View.Build.State))
	return nil
}

func (f *fakeNotifier) recorded() ([]string, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.posts...), append([]string(nil), f.edits...)
}

// flow is a service with Slack fakes and a build deployed to QA.
type flow struct {
	s     *promote.Service
	st    promote.Store
	repo  *fakeRepo
	slack *fakeNotifier
	clock *clock
	build promote.Build
}

func newFlow(t *testing.T, author string) *flow {
	t.Helper()
	repo := &fakeRepo{}
	s, st, c := newService(t, repo)
	f := &flow{s: s, st: st, repo: repo, slack: &fakeNotifier{}, clock: c}
	s.Notifier, s.Directory = f.slack, newDirectory()
	b, _, _, err := st.Create(context.Background(), promote.Build{Project: "hello", Image: "registry.example.com/acme/hello:1",
		Kind: promote.KindBranch, Target: "x", Author: author}, promote.Job{Kind: promote.JobDeployQA}, promote.Job{Kind: promote.JobNotify, Coalesce: true})
	if err != nil {
		t.Fatal(err)
	}
	drain(t, s)
	f.build = get(t, st, b.ID)
	if f.build.State != promote.StateQAReady {
		t.Fatalf("build is %s after deploy", f.build.State)
	}
	return f
}

func (f *flow) act(kind promote.ActionKind, user string) (promote.Build, error) {
	return f.s.Act(context.Background(), promote.Action{Kind: kind, BuildID: f.build.ID, User: user, Reason: "looks off"})
}

func wantRefusal(t *testing.T, err error, contains string) {
	t.Helper()
	var r *promote.Refusal
	if !errors.As(err, &r) || !strings.Contains(r.Reason, contains) {
		t.Fatalf("err = %v, want a refusal saying %q", err, contains)
	}
}

func TestActWhoMay(t *testing.T) {
	f := newFlow(t, "")
	_, err := f.act(promote.ActionApprove, "UOWN1")
	wantRefusal(t, err, "Only QA of hello (<@UQA1>, <!subteam^S0QA>) can approve")
	_, err = f.act(promote.ActionDeploy, "UQA1")
	wantRefusal(t, err, "Only owners of hello")
	_, err = f.act(promote.ActionClose, "UNOBODY")
	wantRefusal(t, err, "Only owners of hello")
	_, err = f.s.Act(context.Background(), promote.Action{Kind: promote.ActionApprove, BuildID: "nope", User: "UQA1"})
	wantRefusal(t, err, "not known")
	_, err = f.s.Act(context.Background(), promote.Action{Kind: "qa_delete", BuildID: f.build.ID, User: "UQA1"})
	wantRefusal(t, err, "Unknown action")
	// A member of the QA user group may approve.
	if b, err := f.act(promote.ActionApprove, "UQA3"); err != nil || b.State != promote.StateApproved {
		t.Fatalf("approve by a group member = %s, %v", b.State, err)
	}
	if h, err := f.st.History(context.Background(), f.build.ID); err != nil || h[len(h)-1].To != promote.StateApproved {
		t.Fatalf("history %+v %v", h, err)
	}
}

func TestActSelfApproval(t *testing.T) {
	for _, author := range []string{"ada@example.com", "Ada", "Ada Lovelace <ADA@example.com>", "UQA1"} {
		f := newFlow(t, author)
		_, err := f.act(promote.ActionApprove, "UQA1")
		wantRefusal(t, err, "you cannot approve it")
		if _, err := f.act(promote.ActionReject, "UQA1"); err != nil {
			t.Fatalf("the author rejecting their own build: %v", err)
		}
	}
	f := newFlow(t, "ada@example.com")
	p := f.s.Config.Projects[0]
	p.AllowSelfApproval = true
	f.s.Config = &promote.Config{Projects: []promote.Project{p}}
	if _, err := f.act(promote.ActionApprove, "UQA1"); err != nil {
		t.Fatalf("self-approval allowed by config: %v", err)
	}
}

func TestActPolicyAndDeploy(t *testing.T) {
	f := newFlow(t, "")
	p := f.s.Config.Projects[0]
	p.RequiredApprovals = 2
	f.s.Config = &promote.Config{Projects: []promote.Project{p}}

	if _, err := f.act(promote.ActionApprove, "UQA1"); err != nil {
		t.Fatal(err)
	}
	_, err := f.act(promote.ActionApprove, "UQA1")
	wantRefusal(t, err, "already approved")
	_, err = f.act(promote.ActionDeploy, "UOWN1")
	wantRefusal(t, err, "needs 2 QA approval(s)")
	b, err := f.act(promote.ActionApprove, "UQA2")
	if err != nil || b.State != promote.StateApproved {
		t.Fatalf("second approval = %s, %v", b.State, err)
	}
	b, err = f.act(promote.ActionDeploy, "UOWN2")
	if err != nil || b.State != promote.StatePromoting || b.PromotedBy != "UOWN2" {
		t.Fatalf("deploy = %+v, %v", b, err)
	}
	_, err = f.act(promote.ActionDeploy, "UOWN1")
	wantRefusal(t, err, "being deployed to production (asked by <@UOWN2>)")
	_, err = f.act(promote.ActionClose, "UOWN1")
	wantRefusal(t, err, "cannot be closed")
	drain(t, f.s)
	b = get(t, f.st, f.build.ID)
	if b.State != promote.StatePromoted || b.ProductionCommit != "beef"+b.ID {
		t.Fatalf("after the promote job: %+v", b)
	}
	if len(f.repo.promotions) != 1 || f.repo.promotions[0].promoter.Name != "Otto" || len(f.repo.promotions[0].approvals) != 2 ||
		f.repo.promotions[0].approvals[0].Name != "Ada" {
		t.Fatalf("promotions %+v", f.repo.promotions)
	}
	_, err = f.act(promote.ActionApprove, "UQA3")
	wantRefusal(t, err, "already in production (deployed by <@UOWN2>)")
}

func TestActRejectBlocksDeploy(t *testing.T) {
	f := newFlow(t, "")
	if _, err := f.act(promote.ActionApprove, "UQA2"); err != nil {
		t.Fatal(err)
	}
	b, err := f.act(promote.ActionReject, "UQA1")
	if err != nil || b.State != promote.StateRejected {
		t.Fatalf("reject = %s, %v", b.State, err)
	}
	as, err := f.st.Approvals(context.Background(), b.ID)
	if err != nil || len(as) != 2 || as[1].Reason != "looks off" || as[1].Name != "Ada" {
		t.Fatalf("approvals %+v %v", as, err)
	}
	_, err = f.act(promote.ActionDeploy, "UOWN1")
	wantRefusal(t, err, "deploy is blocked until a new build")
	if b, err := f.act(promote.ActionClose, "UOWN1"); err != nil || b.State != promote.StateClosed || b.ClosedBy != "UOWN1" {
		t.Fatalf("close = %+v, %v", b, err)
	}
	_, err = f.act(promote.ActionClose, "UOWN2")
	wantRefusal(t, err, "closed by <@UOWN1>")
}

func TestActConcurrentDeploys(t *testing.T) {
	f := newFlow(t, "")
	if _, err := f.act(promote.ActionApprove, "UQA1"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, refused := 0, 0
	for i := range 10 {
		wg.Go(func() {
			_, err := f.act(promote.ActionDeploy, []string{"UOWN1", "UOWN2"}[i%2])
			var r *promote.Refusal
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.As(err, &r):
				refused++
			default:
				t.Errorf("deploy: %v", err)
			}
		})
	}
	wg.Wait()
	if ok != 1 || refused != 9 {
		t.Fatalf("%d deploys went through and %d were refused; want 1 and 9", ok, refused)
	}
	drain(t, f.s)
	if len(f.repo.promotions) != 1 {
		t.Fatalf("%d promotions, want 1", len(f.repo.promotions))
	}
}

func TestActTooEarly(t *testing.T) {
	repo := &fakeRepo{}
	s, st, _ := newService(t, repo)
	s.Directory = newDirectory()
	b := accept(t, st, "registry.example.com/acme/hello:1")
	_, err := s.Act(context.Background(), promote.Action{Kind: promote.ActionApprove, BuildID: b.ID, User: "UQA1"})
	wantRefusal(t, err, "not deployed to QA yet")
	if err := s.Allowed(context.Background(), promote.Action{Kind: promote.ActionReject, BuildID: b.ID, User: "UQA1"}); err == nil {
		t.Fatal("Allowed a rejection before QA")
	}
}

// TestNotifyFlow follows the Slack side of a build: the channel message is
// posted once and then updated; DMs go to the owners and to QA (group
// expanded) once the build is in QA; each verdict is told under each owner's
// DM once; production is announced once.
func TestNotifyFlow(t *testing.T) {
	f := newFlow(t, "")
	posts, edits := f.slack.recorded()
	want := []string{
		"channel  qa-ready", // the deploy ran before the first notification
		"owner UOWN1 qa-ready", "owner UOWN2 qa-ready",
		"qa UQA1 qa-ready", "qa UQA2 qa-ready", "qa UQA3 qa-ready",
	}
	if strings.Join(posts, "\n") != strings.Join(want, "\n") || len(edits) != 0 {
		t.Fatalf("posts:\n%s\nedits %v", strings.Join(posts, "\n"), edits)
	}
	if _, err := f.act(promote.ActionApprove, "UQA2"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.act(promote.ActionDeploy, "UOWN1"); err != nil {
		t.Fatal(err)
	}
	drain(t, f.s)
	posts, _ = f.slack.recorded()
	want = append(want,
		"verdict-reply UOWN1/UQA2 promoting under 1700000000.000002", // one notification for both
		"verdict-reply UOWN2/UQA2 promoting under 1700000000.000003",
		"production  promoted",
	)
	if strings.Join(posts, "\n") != strings.Join(want, "\n") {
		t.Fatalf("posts:\n%s\nwant:\n%s", strings.Join(posts, "\n"), strings.Join(want, "\n"))
	}
	msgs, err := f.st.Messages(context.Background(), f.build.ID)
	if err != nil || len(msgs) != len(want) {
		t.Fatalf("recorded messages %d %v, want %d", len(msgs), err, len(want))
	}
}

// TestNotifyRetries: a failing Slack call leaves the messages posted so far
// recorded, so the retry posts only the rest; a rate limit's Retry-After
// decides when the retry runs.
func TestNotifyRetries(t *testing.T) {
	repo := &fakeRepo{}
	s, st, c := newService(t, repo)
	slack := &fakeNotifier{fail: []error{nil, nil, &promote.RetryAfterError{After: 30 * time.Second, Err: errors.New("ratelimited")}}}
	s.Notifier, s.Directory = slack, newDirectory()
	b := accept(t, st, "registry.example.com/acme/hello:1")
	runOnce(t, s) // deploy
	// The notification: the channel and UOWN1's DM, then the rate limit.
	runOnce(t, s)
	if posts, _ := slack.recorded(); len(posts) != 2 {
		t.Fatalf("posts before the rate limit: %v", posts)
	}
	c.Add(20 * time.Second)
	if runOnce(t, s) {
		t.Fatal("retried before Retry-After")
	}
	c.Add(15 * time.Second)
	runOnce(t, s)
	posts, _ := slack.recorded()
	if len(posts) != 6 || posts[0] != "channel  qa-ready" || posts[1] != "owner UOWN1 qa-ready" || posts[2] != "owner UOWN2 qa-ready" {
		t.Fatalf("posts after the retry:\n%s", strings.Join(posts, "\n"))
	}
	// A message Slack will never take (ErrInvalid) does not hold the rest up.
	slack.fail = []error{fmt.Errorf("%w: channel_not_found", promote.ErrInvalid)}
	if _, err := s.Act(context.Background(), promote.Action{Kind: promote.ActionApprove, BuildID: b.ID, User: "UQA1"}); err != nil {
		t.Fatal(err)
	}
	drain(t, s)
	if n, err := st.Pending(context.Background()); err != nil || n != 0 {
		t.Fatalf("pending %d %v", n, err)
	}
}

func TestRefusalsEscapeWhatOthersWrote(t *testing.T) {
	if got := promote.Plain("<!channel> & <https://evil|x>"); got != "&lt;!channel&gt; &amp; &lt;https://evil|x&gt;" {
		t.Fatalf("Plain = %q", got)
	}
	s, _, _ := newService(t, &fakeRepo{})
	_, err := s.Status(context.Background(), "<!here>")
	wantRefusal(t, err, `No project "&lt;!here&gt;". Projects: hello.`)
}

// TestVerdictCrashBeforePolicy: the approval was recorded (with its
// notification job) but the process died before the policy moved the build;
// the job moves it.
func TestVerdictCrashBeforePolicy(t *testing.T) {
	f := newFlow(t, "")
	added, err := f.st.AddApproval(context.Background(), promote.Approval{BuildID: f.build.ID, User: "UQA1", Name: "Ada",
		Verdict: promote.Approve}, promote.Job{Kind: promote.JobNotify, Coalesce: true})
	if err != nil || !added {
		t.Fatalf("AddApproval: %v %v", added, err)
	}
	if b := get(t, f.st, f.build.ID); b.State != promote.StateQAReady {
		t.Fatalf("before the job: %s", b.State)
	}
	drain(t, f.s)
	if b := get(t, f.st, f.build.ID); b.State != promote.StateApproved {
		t.Fatalf("after the job: %s, want approved", b.State)
	}
}
