package clone_test

import (
	"context"
	"testing"
	"time"

	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/gitops/clone/clonetest"
	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/gitops/trailer"
)

// TestApplyOnceAfterTheBranchMovedOn is a crash between a push and its
// record: build a's change landed, build b's landed after it, and a's change
// is asked for again by a writer whose clone never saw either. It must not
// land twice (that would put a's file back over b's).
func TestApplyOnceAfterTheBranchMovedOn(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	first, second := clonetest.Open(t, bare), clonetest.Open(t, bare)
	asked := time.Now()
	onceA := clone.Once{Since: asked, Trailers: []trailer.Trailer{{Key: "Promotebot-Build", Value: "a.txt"}}}

	landed, err := first.ApplyOnce(context.Background(), onceA, writeFile("a.txt", "from a\n"))
	if err != nil || !landed.Changed {
		t.Fatalf("first ApplyOnce: %+v, %v", landed, err)
	}
	apply(t, second, writeFile("b.txt", "from b\n"))
	apply(t, second, byBuild("b", "a.txt", "from b\n")) // b's change of the same file
	tip := gittest.Head(t, bare, "main")

	for _, r := range []*clone.Repo{second, clonetest.Open(t, bare)} {
		again, err := r.ApplyOnce(context.Background(), onceA, writeFile("a.txt", "from a\n"))
		if err != nil {
			t.Fatal(err)
		}
		if again.Changed || again.Commit != "" || again.Base != landed.Commit || !again.Landed {
			t.Errorf("ApplyOnce again = %+v, want no change, Landed, and Base %s (the commit that landed)", again, landed.Commit)
		}
	}
	if got := gittest.Head(t, bare, "main"); got != tip {
		t.Errorf("the branch moved to %s; want it left at %s", got, tip)
	}
	if got, _ := gittest.ReadFile(t, bare, "main", "a.txt"); got != "from b\n" {
		t.Errorf("a.txt = %q, want b's content kept", got)
	}
}

// byBuild writes one file as the change of build.
func byBuild(build, name, content string) clone.Edit {
	return func(f clone.Files) (clone.Outcome, error) {
		return clone.Outcome{Subject: "Write " + name + " for " + build,
			Trailers: []trailer.Trailer{{Key: "Promotebot-Build", Value: build}}}, f.WriteFile(name, []byte(content))
	}
}

// TestApplyOnceSearchIsBounded: a commit older than Since (less the margin
// for clocks) is not looked at, so a change asked for anew does land.
func TestApplyOnceSearchIsBounded(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	r := clonetest.Open(t, bare)
	trailers := []trailer.Trailer{{Key: "Promotebot-Build", Value: "a.txt"}}
	apply(t, r, writeFile("a.txt", "one\n"))
	apply(t, r, writeFile("a.txt", "two\n"))
	later := clone.Once{Since: time.Now().Add(time.Hour), Trailers: trailers}
	res, err := r.ApplyOnce(context.Background(), later, writeFile("a.txt", "one\n"))
	if err != nil || !res.Changed {
		t.Fatalf("ApplyOnce with Since after the old commit: %+v, %v; want a new commit", res, err)
	}
	if got, _ := gittest.ReadFile(t, bare, "main", "a.txt"); got != "one\n" {
		t.Errorf("a.txt = %q", got)
	}
	if _, err := r.ApplyOnce(context.Background(), clone.Once{Since: time.Now()}, writeFile("x", "y")); err == nil {
		t.Error("ApplyOnce without trailers: no error")
	}
}

// TestApplyOnceNotBefore: a change asked for again minutes after the same
// change landed, with a commit it must follow in between, is a new one
// (an environment torn down, deployed again, torn down again); without
// NotBefore, Since alone would take the first for it. A retry of the
// first still finds the first past a later commit of another build.
func TestApplyOnceNotBefore(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	r := clonetest.Open(t, bare)
	teardown := []trailer.Trailer{{Key: "Promotebot-Environment", Value: "qa/x"}, {Key: "Promotebot-Teardown", Value: "expired"}}
	remove := func(f clone.Files) (clone.Outcome, error) {
		return clone.Outcome{Subject: "Remove x", Trailers: teardown}, f.RemoveAll("x")
	}
	deployed := func(build string) []trailer.Trailer {
		return []trailer.Trailer{{Key: "Promotebot-Build", Value: build}, {Key: "Promotebot-Environment", Value: "qa/x"}}
	}
	deploy := func(build string) clone.Edit {
		return func(f clone.Files) (clone.Outcome, error) {
			return clone.Outcome{Subject: "Deploy " + build, Trailers: deployed(build)}, f.WriteFile("x/build", []byte(build))
		}
	}
	ctx := context.Background()
	apply(t, r, deploy("b1"))
	first, err := r.ApplyOnce(ctx, clone.Once{Since: time.Now(), Trailers: teardown, NotBefore: deployed("b1")}, remove)
	if err != nil || !first.Changed {
		t.Fatalf("first teardown: %+v, %v", first, err)
	}
	apply(t, r, deploy("b2"))

	// Since alone cannot tell the second teardown from the first.
	asked := time.Now()
	if res, err := r.ApplyOnce(ctx, clone.Once{Since: asked, Trailers: teardown}, remove); err != nil || !res.Landed || res.Base != first.Commit {
		t.Fatalf("without NotBefore: %+v, %v; want the first teardown found", res, err)
	}
	// The first one's retry, bounded by b1's deploy, finds it past b2's.
	if res, err := r.ApplyOnce(ctx, clone.Once{Since: asked, Trailers: teardown, NotBefore: deployed("b1")}, remove); err != nil ||
		!res.Landed || res.Base != first.Commit {
		t.Fatalf("the first teardown again: %+v, %v; want it found", res, err)
	}
	second, err := r.ApplyOnce(ctx, clone.Once{Since: asked, Trailers: teardown, NotBefore: deployed("b2")}, remove)
	if err != nil || !second.Changed || second.Landed {
		t.Fatalf("second teardown: %+v, %v; want a commit of its own", second, err)
	}
	if _, ok := gittest.ReadFile(t, bare, "main", "x/build"); ok {
		t.Error("x/build is still there after the second teardown")
	}
}
