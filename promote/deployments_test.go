package promote_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/promotebot/promotebot/promote"
)

// fakeDeployments is GitHub's Deployments API as the domain sees it: it
// keeps the deployments made and records every call.
type fakeDeployments struct {
	mu    sync.Mutex
	calls []string                    // "create …", "find …", "status …", in call order
	made  []promote.DeploymentRequest // deployment id n is made[n-1]
	posts []promote.DeploymentStatus
	// fail are the answers of the next calls of a method ("create",
	// "find", "status"), in order; a nil entry lets the call through.
	fail map[string][]error
	// lost makes the next CreateDeployment create the deployment and then
	// fail, as a connection cut before GitHub's answer arrives.
	lost bool
}

// failure returns the queued answer of method's next call.
func (f *fakeDeployments) failure(method string) error {
	q := f.fail[method]
	if len(q) == 0 {
		return nil
	}
	f.fail[method] = q[1:]
	return q[0]
}

func (f *fakeDeployments) failNext(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail == nil {
		f.fail = map[string][]error{}
	}
	f.fail[method] = append(f.fail[method], err)
}

func (f *fakeDeployments) CreateDeployment(_ context.Context, repo string, r promote.DeploymentRequest) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("create %s %s ref=%s transient=%t production=%t",
		repo, r.Environment, r.Ref, r.Transient, r.Production))
	if err := f.failure("create"); err != nil {
		return 0, err
	}
	f.made = append(f.made, r)
	if f.lost {
		f.lost = false
		return 0, errors.New("read tcp: connection reset by peer")
	}
	return int64(len(f.made)), nil
}

func (f *fakeDeployments) FindDeployment(_ context.Context, repo string, r promote.DeploymentRequest) (int64, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("find %s %s ref=%s", repo, r.Environment, r.Ref))
	if err := f.failure("find"); err != nil {
		return 0, false, err
	}
	for i, m := range f.made {
		if m.Ref == r.Ref && m.Environment == r.Environment && m.BuildID == r.BuildID {
			return int64(i + 1), true, nil
		}
	}
	return 0, false, nil
}

func (f *fakeDeployments) CreateDeploymentStatus(_ context.Context, repo string, id int64, st promote.DeploymentStatus) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("status %s %d %s %s", repo, id, st.State, st.EnvironmentURL))
	if err := f.failure("status"); err != nil {
		return err
	}
	if id < 1 || int(id) > len(f.made) {
		return promote.Permanent(fmt.Errorf("deployment %d: 404 Not Found", id))
	}
	f.posts = append(f.posts, st)
	return nil
}

// took returns the calls made since the last took.
func (f *fakeDeployments) took(seen *int) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := append([]string{}, f.calls[*seen:]...)
	*seen = len(f.calls)
	return out
}

// deployFlow is a service whose project names its source repository, with
// a fake of its Deployments API.
type deployFlow struct {
	s     *promote.Service
	st    promote.Store
	clock *clock
	gh    *fakeDeployments
	revs  *fakeRevisions
	seen  int // calls already looked at
}

const (
	qaCreate   = "create acme/hello qa/branch-x ref=5ca1ab1e transient=true production=false"
	prodCreate = "create acme/hello production ref=5ca1ab1e transient=false production=true"
	qaURL      = "https://x.branch.hello.example.com"
	prodURL    = "https://hello.example.com"
)

func newDeployFlow(t *testing.T, feedback bool) *deployFlow {
	t.Helper()
	s, st, c := newService(t, &fakeRepo{})
	f := &deployFlow{s: s, st: st, clock: c, gh: &fakeDeployments{}, revs: newRevisions()}
	s.Config.Projects[0].SourceRepository = "acme/hello"
	s.Deployments, s.Directory = f.gh, newDirectory()
	s.CommitURL = func(sha string) string { return "https://github.com/acme/deploy-config/commit/" + sha }
	if feedback {
		s.Feedback, s.Revisions = true, f.revs
		s.Config.Rollout = promote.RolloutConfig{Timeout: 10 * time.Minute}
	}
	return f
}

// accept stores a build of branch x made from commit, as the webhook does,
// and runs the jobs that follow.
func (f *deployFlow) accept(t *testing.T, image, commit string) promote.Build {
	t.Helper()
	b, _, _, err := f.st.Create(context.Background(), promote.Build{Project: "hello", Image: image,
		Kind: promote.KindBranch, Target: "x", Commit: commit},
		promote.Job{Kind: promote.JobDeployQA}, promote.Job{Kind: promote.JobNotify, Coalesce: true})
	if err != nil {
		t.Fatal(err)
	}
	drain(t, f.s)
	return get(t, f.st, b.ID)
}

// act takes an action on build id as user and runs the jobs that follow.
func (f *deployFlow) act(t *testing.T, kind promote.ActionKind, user, id string) {
	t.Helper()
	if _, err := f.s.Act(context.Background(), promote.Action{Kind: kind, BuildID: id, User: user, Reason: "why"}); err != nil {
		t.Fatalf("%s: %v", kind, err)
	}
	drain(t, f.s)
}

// observe reports what the cluster runs at the config commit rev and runs
// the jobs that follow.
func (f *deployFlow) observe(t *testing.T, path, rev string, status promote.RolloutStatus) {
	t.Helper()
	if _, err := f.s.Observe(context.Background(), promote.ClusterEvent{Source: "flux", Path: path, Revision: rev,
		Status: status, Message: "CrashLoopBackOff"}); err != nil {
		t.Fatal(err)
	}
	drain(t, f.s)
}

// want fails unless the calls since the last want are exactly calls.
func (f *deployFlow) want(t *testing.T, step string, calls ...string) {
	t.Helper()
	if got := f.gh.took(&f.seen); !slices.Equal(got, calls) {
		t.Errorf("%s: calls\n\t%q\nwant\n\t%q", step, got, calls)
	}
}

// renotify queues the notification of build id, as any change does, and
// runs the jobs.
func (f *deployFlow) renotify(t *testing.T, id string) {
	t.Helper()
	if _, err := f.st.Edit(context.Background(), id, nil, promote.Job{Kind: promote.JobNotify, Coalesce: true}); err != nil {
		t.Fatal(err)
	}
	drain(t, f.s)
}

func status(id int, state promote.DeploymentState, url string) string {
	return fmt.Sprintf("status acme/hello %d %s %s", id, state, url)
}

// TestDeploymentsWithoutFeedback: without Argo CD or Flux a deployment is a
// success once committed; QA first, then production.
func TestDeploymentsWithoutFeedback(t *testing.T) {
	f := newDeployFlow(t, false)
	b := f.accept(t, "registry.example.com/acme/hello:1", "5ca1ab1e")
	f.want(t, "committed to QA", qaCreate, status(1, promote.DeploymentSuccess, qaURL))
	if d := get(t, f.st, b.ID).Deployments; d.Production != nil ||
		*d.QA != (promote.Deployment{Environment: "qa/branch-x", ID: 1, State: promote.DeploymentSuccess}) {
		t.Fatalf("records %+v", d)
	}
	if got, want := f.gh.made[0], (promote.DeploymentRequest{Ref: "5ca1ab1e", Environment: "qa/branch-x", Transient: true,
		Description: "registry.example.com/acme/hello:1", BuildID: b.ID}); got != want {
		t.Errorf("deployment %+v, want %+v", got, want)
	}
	if got := f.gh.posts[0]; got.LogURL != "https://github.com/acme/deploy-config/commit/c0ffee" || got.Description == "" {
		t.Errorf("status %+v, want the QA commit as its log", got)
	}
	f.renotify(t, b.ID)
	f.want(t, "nothing changed")

	f.act(t, promote.ActionApprove, "UQA1", b.ID)
	f.want(t, "approved: QA runs the same")
	f.act(t, promote.ActionDeploy, "UOWN1", b.ID)
	f.want(t, "promoted", prodCreate, status(2, promote.DeploymentSuccess, prodURL))
	if got := f.gh.posts[1].LogURL; got != "https://github.com/acme/deploy-config/commit/beef"+b.ID {
		t.Errorf("production status log %q, want the production commit", got)
	}
}

// TestDeploymentsFollowTheRollout: with cluster feedback, a status follows
// each change of what the cluster reports, once.
func TestDeploymentsFollowTheRollout(t *testing.T) {
	f := newDeployFlow(t, true)
	image := "registry.example.com/acme/hello:1"
	f.revs.commit("c0ffee", []string{"root"}, "qa/branch-x", image)
	b := f.accept(t, image, "5ca1ab1e")
	f.want(t, "committed to QA", qaCreate, status(1, promote.DeploymentInProgress, qaURL))

	qa := "apps/hello/overlays/qa"
	f.observe(t, qa, "c0ffee", promote.RolloutSynced)
	f.want(t, "synced: still in progress")
	f.observe(t, qa, "c0ffee", promote.RolloutHealthy)
	f.want(t, "healthy", status(1, promote.DeploymentSuccess, qaURL))
	f.observe(t, qa, "c0ffee", promote.RolloutHealthy)
	f.want(t, "healthy again: Flux repeats itself")
	f.observe(t, qa, "c0ffee", promote.RolloutDegraded)
	f.want(t, "degraded", status(1, promote.DeploymentFailure, qaURL))
	f.observe(t, qa, "c0ffee", promote.RolloutHealthy)
	f.want(t, "healthy once more", status(1, promote.DeploymentSuccess, qaURL))

	f.act(t, promote.ActionApprove, "UQA1", b.ID)
	f.act(t, promote.ActionDeploy, "UOWN1", b.ID)
	f.want(t, "promoted", prodCreate, status(2, promote.DeploymentInProgress, prodURL))
	f.revs.commit("beef"+b.ID, []string{"c0ffee"}, "production", image)
	prod := "apps/hello/overlays/production"
	f.observe(t, prod, "beef"+b.ID, promote.RolloutDegraded)
	f.want(t, "production degraded", status(2, promote.DeploymentFailure, prodURL))
	f.observe(t, prod, "beef"+b.ID, promote.RolloutHealthy)
	f.want(t, "production healthy", status(2, promote.DeploymentSuccess, prodURL))
	d := get(t, f.st, b.ID).Deployments
	if d.QA.State != promote.DeploymentSuccess || d.Production.State != promote.DeploymentSuccess || d.Production.ID != 2 {
		t.Errorf("records %+v %+v", d.QA, d.Production)
	}
}

// TestDeploymentsInactive: a superseded or closed build's QA deployment,
// and the QA deployment of a build whose environment was torn down, are
// made inactive, once; a build superseded before its deployment was made
// gets none.
func TestDeploymentsInactive(t *testing.T) {
	f := newDeployFlow(t, false)
	b1 := f.accept(t, "registry.example.com/acme/hello:1", "5ca1ab1e")
	f.want(t, "b1 in QA", qaCreate, status(1, promote.DeploymentSuccess, qaURL))
	b2 := f.accept(t, "registry.example.com/acme/hello:2", "0ddba11")
	f.want(t, "b2 supersedes b1",
		"create acme/hello qa/branch-x ref=0ddba11 transient=true production=false", status(2, promote.DeploymentSuccess, qaURL),
		status(1, promote.DeploymentInactive, qaURL))
	f.act(t, promote.ActionClose, "UOWN1", b2.ID)
	f.want(t, "b2 closed", status(2, promote.DeploymentInactive, qaURL))
	f.renotify(t, b1.ID)
	f.renotify(t, b2.ID)
	f.want(t, "inactive is said once")

	// Superseded before the deploy job ran: nothing to mirror.
	b3, _, _, err := f.st.Create(context.Background(), promote.Build{Project: "hello", Image: "registry.example.com/acme/hello:3",
		Kind: promote.KindBranch, Target: "x", Commit: "ba5eba11"}, promote.Job{Kind: promote.JobDeployQA})
	if err != nil {
		t.Fatal(err)
	}
	b4 := f.accept(t, "registry.example.com/acme/hello:4", "f01dab1e")
	f.want(t, "b4 supersedes b3 before it deployed",
		"create acme/hello qa/branch-x ref=f01dab1e transient=true production=false", status(3, promote.DeploymentSuccess, qaURL))
	if d := get(t, f.st, b3.ID).Deployments; d.QA != nil {
		t.Errorf("b3 records %+v", d.QA)
	}

	// b4 goes to production; then its QA environment is torn down: its QA
	// deployment becomes inactive, production stays.
	f.act(t, promote.ActionApprove, "UQA1", b4.ID)
	f.act(t, promote.ActionDeploy, "UOWN1", b4.ID)
	f.want(t, "b4 promoted", "create acme/hello production ref=f01dab1e transient=false production=true",
		status(4, promote.DeploymentSuccess, prodURL))
	ctx := context.Background()
	if _, err := f.st.ReserveEnvironment(ctx, promote.Environment{Project: "hello", Kind: promote.KindBranch, Target: "x",
		Name: "qa/branch-x", URL: qaURL, BuildID: b4.ID, Image: b4.Image}, 0, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.TearDown(ctx, "hello", promote.KindBranch, "x", promote.TeardownBranchDeleted); err != nil {
		t.Fatal(err)
	}
	drain(t, f.s)
	f.want(t, "b4's environment torn down", status(3, promote.DeploymentInactive, qaURL))
	if d := get(t, f.st, b4.ID).Deployments; d.QA.State != promote.DeploymentInactive || d.Production.State != promote.DeploymentSuccess {
		t.Errorf("b4 records %+v %+v", d.QA, d.Production)
	}
}

// TestDeploymentsRolledBack: the production deployment of a build rolled
// back becomes inactive; the build production runs again keeps its own.
func TestDeploymentsRolledBack(t *testing.T) {
	f := newDeployFlow(t, false)
	prod := &fakeProduction{}
	f.s.Production = prod
	var builds []promote.Build
	for i, commit := range []string{"5ca1ab1e", "0ddba11"} {
		b := f.accept(t, fmt.Sprintf("registry.example.com/acme/hello:%d", i+1), commit)
		f.clock.Add(time.Minute)
		f.act(t, promote.ActionApprove, "UQA1", b.ID)
		f.act(t, promote.ActionDeploy, "UOWN1", b.ID)
		b = get(t, f.st, b.ID)
		prod.promoted(b)
		builds = append(builds, b)
	}
	f.want(t, "two builds promoted",
		qaCreate, status(1, promote.DeploymentSuccess, qaURL), prodCreate, status(2, promote.DeploymentSuccess, prodURL),
		"create acme/hello qa/branch-x ref=0ddba11 transient=true production=false", status(3, promote.DeploymentSuccess, qaURL),
		"create acme/hello production ref=0ddba11 transient=false production=true", status(4, promote.DeploymentSuccess, prodURL))
	f.clock.Add(time.Minute)
	f.act(t, promote.ActionRollback, "UOWN1", builds[1].ID)
	if got := get(t, f.st, builds[1].ID); got.State != promote.StateRolledBack {
		t.Fatalf("build is %s after the rollback", got.State)
	}
	f.want(t, "rolled back", status(4, promote.DeploymentInactive, prodURL))
	if d := get(t, f.st, builds[0].ID).Deployments; d.Production.State != promote.DeploymentSuccess {
		t.Errorf("the restored build's production deployment is %s", d.Production.State)
	}
}

// failingEdits is a Store whose Edit fails, once, when it would record the
// id of a deployment: a crash between GitHub's answer and the record.
type failingEdits struct {
	promote.Store
	mu   sync.Mutex
	done bool
}

func (f *failingEdits) Edit(ctx context.Context, id string, change func(*promote.Build) error, jobs ...promote.Job) (promote.Build, error) {
	return f.Store.Edit(ctx, id, func(nb *promote.Build) error {
		if change != nil {
			if err := change(nb); err != nil {
				return err
			}
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if d := nb.Deployments.QA; !f.done && d != nil && d.ID != 0 {
			f.done = true
			return errors.New("disk I/O error")
		}
		return nil
	}, jobs...)
}

// TestDeploymentsCreatedOnce: a run that stops after GitHub made the
// deployment, before the bot recorded its id, does not make a second one:
// the next run finds it.
func TestDeploymentsCreatedOnce(t *testing.T) {
	for name, setup := range map[string]func(f *deployFlow){
		"answer lost":         func(f *deployFlow) { f.gh.lost = true },
		"record failed":       func(f *deployFlow) { f.s.Store = &failingEdits{Store: f.st} },
		"create failed first": func(f *deployFlow) { f.gh.failNext("create", errors.New("502 Bad Gateway")) },
	} {
		t.Run(name, func(t *testing.T) {
			f := newDeployFlow(t, false)
			setup(f)
			b := f.accept(t, "registry.example.com/acme/hello:1", "5ca1ab1e")
			f.clock.Add(10 * time.Minute) // the retry's backoff
			drain(t, f.s)
			wantCalls := []string{qaCreate, "find acme/hello qa/branch-x ref=5ca1ab1e", status(1, promote.DeploymentSuccess, qaURL)}
			if name == "create failed first" { // not made: made by the retry
				wantCalls = []string{qaCreate, "find acme/hello qa/branch-x ref=5ca1ab1e", qaCreate, status(1, promote.DeploymentSuccess, qaURL)}
			}
			f.want(t, name, wantCalls...)
			if len(f.gh.made) != 1 {
				t.Errorf("%d deployments made, want 1", len(f.gh.made))
			}
			if d := get(t, f.st, b.ID).Deployments.QA; d == nil || d.ID != 1 || d.State != promote.DeploymentSuccess {
				t.Errorf("record %+v", d)
			}
		})
	}
}

// TestDeploymentsRefusedOrLimited: a refusal (an unknown commit) is recorded
// and not tried again; a rate limit waits for its time, and holds up
// neither the notification nor production's deployment.
func TestDeploymentsRefusedOrLimited(t *testing.T) {
	f := newDeployFlow(t, false)
	slack := &fakeNotifier{}
	f.s.Notifier = slack
	f.gh.failNext("create", promote.Permanent(errors.New("github create deployment: 422 No ref found for: 5ca1ab1e")))
	b := f.accept(t, "registry.example.com/acme/hello:1", "5ca1ab1e")
	f.want(t, "refused", qaCreate)
	if d := get(t, f.st, b.ID).Deployments.QA; d == nil || d.ID != 0 || d.Refused == "" {
		t.Fatalf("record %+v, want the refusal", d)
	}
	f.renotify(t, b.ID)
	f.want(t, "not tried again")

	f.act(t, promote.ActionApprove, "UQA1", b.ID)
	f.gh.failNext("status", &promote.RetryAfterError{After: 30 * time.Minute, Err: errors.New("github: 403 secondary rate limit")})
	posts, _ := slack.recorded()
	f.act(t, promote.ActionDeploy, "UOWN1", b.ID)
	f.want(t, "rate limited", prodCreate, status(1, promote.DeploymentSuccess, prodURL))
	if p, _ := slack.recorded(); len(p) == len(posts) {
		t.Error("the production announcement waited for GitHub's rate limit")
	}
	f.clock.Add(20 * time.Minute)
	drain(t, f.s)
	f.want(t, "before Retry-After")
	f.clock.Add(11 * time.Minute)
	drain(t, f.s)
	f.want(t, "after Retry-After", status(1, promote.DeploymentSuccess, prodURL))
}

// TestDeploymentsNeedACommitAndARepository: without a commit from CI, or
// without projects[].sourceRepository, nothing is mirrored and no job is
// queued for it.
func TestDeploymentsNeedACommitAndARepository(t *testing.T) {
	for name, setup := range map[string]func(f *deployFlow) string{
		"no commit":     func(*deployFlow) string { return "" },
		"no repository": func(f *deployFlow) string { f.s.Config.Projects[0].SourceRepository = ""; return "5ca1ab1e" },
	} {
		t.Run(name, func(t *testing.T) {
			f := newDeployFlow(t, false)
			b, _, _, err := f.st.Create(context.Background(), promote.Build{Project: "hello", Image: "registry.example.com/acme/hello:1",
				Kind: promote.KindBranch, Target: "x", Commit: setup(f)}, promote.Job{Kind: promote.JobDeployQA})
			if err != nil {
				t.Fatal(err)
			}
			if n := drain(t, f.s); n != 2 {
				t.Errorf("%d jobs ran, want 2: the deploy and its notification", n)
			}
			f.want(t, name)
			if d := get(t, f.st, b.ID).Deployments; d.QA != nil || d.Production != nil {
				t.Errorf("records %+v", d)
			}
		})
	}
}
