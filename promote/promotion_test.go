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

// fakeForge is a GitHub that records what it is asked.
type fakeForge struct {
	mu     sync.Mutex
	prs    map[int]*promote.PR
	heads  map[string]int
	opened int
	merges int
	closed []string
	// mergeErrs are returned by the next Merge calls, in order.
	mergeErrs []error
	// failOpen is returned by OpenPR once.
	failOpen error
	// beforeMerge and onPR, when set, run at the start of Merge and PR
	// (without the lock): a person acting meanwhile.
	beforeMerge, onPR func()
}

func newForge() *fakeForge {
	return &fakeForge{prs: map[int]*promote.PR{}, heads: map[string]int{}}
}

func (f *fakeForge) OpenPR(_ context.Context, r promote.PRRequest) (promote.PR, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n, ok := f.heads[r.Head]; ok {
		return *f.prs[n], nil
	}
	if err := f.failOpen; err != nil {
		f.failOpen = nil
		return promote.PR{}, err
	}
	f.opened++
	n := len(f.prs) + 1
	f.prs[n] = &promote.PR{Number: n, URL: fmt.Sprintf("https://github.example.com/acme/deploy/pull/%d", n), HeadSHA: "head-" + r.Head, Open: true}
	f.heads[r.Head] = n
	return *f.prs[n], nil
}

func (f *fakeForge) PR(_ context.Context, n int) (promote.PR, error) {
	if f.onPR != nil {
		f.onPR()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	pr, ok := f.prs[n]
	if !ok {
		return promote.PR{}, fmt.Errorf("%w: no PR %d", promote.ErrInvalid, n)
	}
	return *pr, nil
}

func (f *fakeForge) Merge(_ context.Context, n int, head, _, _ string) (string, error) {
	if f.beforeMerge != nil {
		f.beforeMerge()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.mergeErrs) > 0 {
		err := f.mergeErrs[0]
		f.mergeErrs = f.mergeErrs[1:]
		if err != nil {
			return "", err
		}
	}
	pr := f.prs[n]
	if pr.Merged || !pr.Open || head != pr.HeadSHA {
		return "", fmt.Errorf("%w: not mergeable", promote.ErrHeadMoved)
	}
	f.merges++
	pr.Merged, pr.Open, pr.MergeSHA = true, false, "merge-"+head
	return pr.MergeSHA, nil
}

func (f *fakeForge) Close(_ context.Context, n int, branch string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if pr, ok := f.prs[n]; ok {
		pr.Open = false
	}
	f.closed = append(f.closed, fmt.Sprintf("%d %s", n, branch))
	return nil
}

func (f *fakeForge) set(n int, change func(*promote.PR)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f.prs[n])
}

// prFlow is a flow in pull-request mode, approved and deployed by UOWN1.
func prFlow(t *testing.T, forge *fakeForge) *flow {
	t.Helper()
	f := newFlow(t, "")
	f.s.Forge = forge
	if _, err := f.act(promote.ActionApprove, "UQA1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.act(promote.ActionDeploy, "UOWN1"); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestPRRetryNeverOpensTwice: a merge that fails (GitHub down) is retried
// by a later run, which finds the pull request it opened.
func TestPRRetryNeverOpensTwice(t *testing.T) {
	forge := newForge()
	forge.mergeErrs = []error{errors.New("502 bad gateway")}
	f := prFlow(t, forge)
	drain(t, f.s)
	if b := get(t, f.st, f.build.ID); b.State != promote.StatePromoting || !strings.HasSuffix(b.PullRequest, "/pull/1") {
		t.Fatalf("after a failed merge: %+v", b)
	}
	f.clock.Add(10 * time.Minute)
	drain(t, f.s)
	b := get(t, f.st, f.build.ID)
	if b.State != promote.StatePromoted || b.ProductionCommit != "merge-head-promotebot/hello/"+b.ID || forge.opened != 1 || forge.merges != 1 {
		t.Fatalf("after the retry: %+v; opened %d, merged %d", b, forge.opened, forge.merges)
	}
}

// TestPRCrashBeforeRecorded: the pull request was opened but the bot died
// before recording it; the next run finds it by its head.
func TestPRCrashBeforeRecorded(t *testing.T) {
	forge := newForge()
	f := prFlow(t, forge)
	if _, err := forge.OpenPR(context.Background(), promote.PRRequest{Head: promote.PRBranch(f.build)}); err != nil {
		t.Fatal(err)
	}
	drain(t, f.s)
	if b := get(t, f.st, f.build.ID); b.State != promote.StatePromoted || forge.opened != 1 {
		t.Fatalf("build %+v, %d PRs opened", b, forge.opened)
	}
}

// TestPRWaitsThenPersonCloses: GitHub will not merge; the owner is told
// why; then a person closes the PR on GitHub: the promotion fails, saying so.
func TestPRWaitsThenPersonCloses(t *testing.T) {
	forge := newForge()
	forge.mergeErrs = []error{fmt.Errorf("merge #1: %w: Review required", promote.ErrNotMergeable)}
	f := prFlow(t, forge)
	drain(t, f.s)
	b := get(t, f.st, f.build.ID)
	if b.State != promote.StatePromoting || !strings.Contains(b.Error, "Review required") {
		t.Fatalf("while waiting: %+v", b)
	}
	if runOnce(t, f.s) {
		t.Fatal("the waiting job ran before its poll")
	}
	forge.set(1, func(pr *promote.PR) { pr.Open = false })
	if hurried, err := f.st.Hurry(context.Background(), b.ID, promote.JobPromote); err != nil || !hurried {
		t.Fatalf("Hurry = %v, %v", hurried, err)
	}
	drain(t, f.s)
	b = get(t, f.st, f.build.ID)
	if b.State != promote.StatePromoteFailed || !strings.Contains(b.Error, "closed on GitHub") {
		t.Fatalf("after the person closed it: %+v", b)
	}
}

// TestPRCloseButton: Close while the pull request waits closes it and
// deletes its branch.
func TestPRCloseButton(t *testing.T) {
	forge := newForge()
	forge.mergeErrs = []error{fmt.Errorf("%w: checks pending", promote.ErrNotMergeable)}
	f := prFlow(t, forge)
	drain(t, f.s)
	b, err := f.act(promote.ActionClose, "UOWN1")
	if err != nil || b.State != promote.StateClosed {
		t.Fatalf("close = %+v, %v", b, err)
	}
	drain(t, f.s)
	if len(forge.closed) != 1 || forge.closed[0] != "1 promotebot/hello/"+b.ID || forge.merges != 0 {
		t.Fatalf("closed %v, merges %d", forge.closed, forge.merges)
	}
}

// states lists a build's history of states.
func states(t *testing.T, st promote.Store, id string) []promote.State {
	t.Helper()
	h, err := st.History(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []promote.State
	for _, tr := range h {
		out = append(out, tr.To)
	}
	return out
}

// TestPRCloseDuringTheMerge: the owner closes the build while GitHub is
// merging its pull request. The merge wins (it cannot be taken back), and
// the build says so: promoted, after having been closed.
func TestPRCloseDuringTheMerge(t *testing.T) {
	forge := newForge()
	f := prFlow(t, forge)
	forge.beforeMerge = func() {
		forge.beforeMerge = nil
		if b, err := f.act(promote.ActionClose, "UOWN1"); err != nil || b.State != promote.StateClosed {
			t.Errorf("close during the merge = %+v, %v", b, err)
		}
	}
	drain(t, f.s)
	b := get(t, f.st, f.build.ID)
	if b.State != promote.StatePromoted || b.ProductionCommit != "merge-head-promotebot/hello/"+b.ID || forge.merges != 1 {
		t.Fatalf("after the merge: %+v, %d merges", b, forge.merges)
	}
	got := states(t, f.st, b.ID)
	if n := len(got); n < 2 || got[n-2] != promote.StateClosed || got[n-1] != promote.StatePromoted {
		t.Errorf("history %v, want closed then promoted at its end", got)
	}
	for _, c := range forge.closed {
		if strings.HasPrefix(c, "1 ") {
			t.Errorf("the merged pull request was closed: %v", forge.closed)
		}
	}
}

// TestPRCloseBeforeTheMerge: the owner closes the build after the job read
// the pull request but before it merged: no merge, the pull request is
// closed.
func TestPRCloseBeforeTheMerge(t *testing.T) {
	forge := newForge()
	forge.mergeErrs = []error{fmt.Errorf("%w: checks pending", promote.ErrNotMergeable)}
	f := prFlow(t, forge)
	drain(t, f.s) // the pull request waits for its checks
	forge.onPR = func() {
		forge.onPR = nil
		if _, err := f.act(promote.ActionClose, "UOWN1"); err != nil {
			t.Errorf("close: %v", err)
		}
	}
	f.clock.Add(10 * time.Minute) // the next poll
	drain(t, f.s)
	b := get(t, f.st, f.build.ID)
	if b.State != promote.StateClosed || forge.merges != 0 || len(forge.closed) == 0 || forge.closed[0] != "1 promotebot/hello/"+b.ID {
		t.Fatalf("build %+v; %d merges, closed %v", b, forge.merges, forge.closed)
	}
}

// TestPRClosedButMergedByAPerson: a person merged the pull request on
// GitHub just before the owner's Close took effect: the build is recorded
// as promoted, merged by that person.
func TestPRClosedButMergedByAPerson(t *testing.T) {
	forge := newForge()
	forge.mergeErrs = []error{fmt.Errorf("%w: review required", promote.ErrNotMergeable)}
	f := prFlow(t, forge)
	drain(t, f.s)
	forge.set(1, func(pr *promote.PR) {
		pr.Merged, pr.Open, pr.MergeSHA, pr.MergedBy = true, false, "merge-by-hand", "octocat"
	})
	if b, err := f.act(promote.ActionClose, "UOWN1"); err != nil || b.State != promote.StateClosed {
		t.Fatalf("close = %+v, %v", b, err)
	}
	drain(t, f.s)
	b := get(t, f.st, f.build.ID)
	if b.State != promote.StatePromoted || b.ProductionCommit != "merge-by-hand" || b.MergedBy != "octocat" {
		t.Fatalf("build %+v", b)
	}
	if _, err := f.act(promote.ActionClose, "UOWN1"); err == nil {
		t.Error("a promoted build could be closed")
	}
}

// TestPRBadCredentials: a refusal no retry fixes fails the promotion with
// the reason, at once.
func TestPRBadCredentials(t *testing.T) {
	forge := newForge()
	forge.failOpen = fmt.Errorf("github open pull request: %w: 401 Bad credentials", promote.ErrInvalid)
	f := prFlow(t, forge)
	drain(t, f.s)
	if b := get(t, f.st, f.build.ID); b.State != promote.StatePromoteFailed || !strings.Contains(b.Error, "Bad credentials") {
		t.Fatalf("build %+v", b)
	}
	// The owner may try again once it is fixed.
	if b, err := f.act(promote.ActionDeploy, "UOWN1"); err != nil || b.State != promote.StatePromoting {
		t.Fatalf("deploy again = %+v, %v", b, err)
	}
	drain(t, f.s)
	if b := get(t, f.st, f.build.ID); b.State != promote.StatePromoted {
		t.Fatalf("after the second deploy: %+v", b)
	}
}
