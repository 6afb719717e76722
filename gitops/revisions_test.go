package gitops_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/promotebot/promotebot/gitops"
	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/gitops/clone/clonetest"
	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/promote"
)

// fetches counts the fetches a server answered: each starts with the
// upload-pack ref advertisement.
func fetches(srv *gittest.Server) int {
	n := 0
	for _, req := range srv.Requests() {
		if req.Authorized && req.Method == http.MethodGet && req.Service == gittest.UploadPack {
			n++
		}
	}
	return n
}

func qaBuild(id, target, tag string) promote.Build {
	return promote.Build{ID: id, Project: "hello", Image: "registry.example.com/acme/hello:" + tag,
		Kind: promote.KindBranch, Target: target}
}

// TestContains asks about a history the bot's clone learns by fetching:
// its QA commit on main, its promotion pushed to a branch that a person
// merges, people's commits and a side branch merged later.
//
//	main: initial - qa - P - Q - M - M2 - N
//	                      \     /   /
//	 promotion branch:     B --'   /
//	 side:   initial - S ---------'
func TestContains(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	srv := gittest.NewServer(t, filepath.Dir(bare), "u", "p")
	c := gitops.NewConfigRepo(clonetest.Open(t, srv.RepoURL(bare), func(o *clone.Options) {
		o.Auth = clone.Auth{Username: "u", Password: "p"}
	}))
	ctx := context.Background()
	initial := gittest.Head(t, bare, "main")
	qa, err := c.DeployQA(ctx, helloConfig, qaBuild("01JA", "feature/login", "1.4.0"))
	if err != nil {
		t.Fatal(err)
	}
	work := gittest.Clone(t, bare)
	gittest.Git(t, work, "checkout", "-q", "-b", "side", initial)
	side := gittest.CommitFiles(t, work, map[string]string{"docs/side.md": "side\n"}, "Side change")
	gittest.Git(t, work, "checkout", "-q", "main")
	p := gittest.CommitFiles(t, work, map[string]string{"docs/p.md": "p\n"}, "P")
	gittest.Push(t, work)
	promotion, err := c.PromoteBranch(ctx, helloConfig, qaBuild("01JA", "feature/login", "1.4.0"), nil,
		promote.Person{ID: "UOWN1", Name: "Olga"}, "promotebot/hello/01JA")
	if err != nil {
		t.Fatal(err)
	}
	b := promotion.SHA
	q := gittest.CommitFiles(t, work, map[string]string{"docs/q.md": "q\n"}, "Q")
	gittest.Git(t, work, "fetch", "-q", "origin")
	gittest.Git(t, work, "merge", "-q", "--no-ff", "-m", "Merge the promotion", "origin/promotebot/hello/01JA")
	m := gittest.Git(t, work, "rev-parse", "HEAD")
	gittest.Git(t, work, "merge", "-q", "--no-ff", "-m", "Merge side", "side")
	n := gittest.CommitFiles(t, work, map[string]string{"docs/n.md": "n\n"}, "N")
	gittest.Push(t, work)
	before := fetches(srv)

	for _, tc := range []struct {
		name             string
		revision, commit string
		want             bool
	}{
		{"descendant through a merge", n, b, true},
		{"the merge", m, b, true},
		{"the commit itself", b, b, true},
		{"first-parent descendant", n, qa.Commit, true},
		{"the promotion holds the QA commit", b, qa.Commit, true},
		{"the side branch merged", n, side, true},
		{"an ancestor of the commit", p, b, false},
		{"an older revision", qa.Commit, b, false},
		{"the initial commit", initial, qa.Commit, false},
		{"a side branch forked before", side, qa.Commit, false},
		{"a commit beside the merged branch", q, b, false},
		{"asked again", n, b, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Contains(ctx, tc.revision, tc.commit)
			if err != nil || got != tc.want {
				t.Fatalf("Contains(%.7s, %.7s) = %v, %v; want %v", tc.revision, tc.commit, got, err, tc.want)
			}
		})
	}
	if f := fetches(srv) - before; f != 1 {
		t.Fatalf("%d fetches to learn what was pushed after the clone was made, want 1", f)
	}

	for _, tc := range []struct{ revision, commit string }{
		{strings.Repeat("0123456789", 4), b},
		{n, strings.Repeat("fe", 20)},
		{"main", b},
		{n[:12], b},
		{n + "\n", b},
		{"", ""},
	} {
		if _, err := c.Contains(ctx, tc.revision, tc.commit); !errors.Is(err, promote.ErrUnknownRevision) || !promote.IsPermanent(err) {
			t.Errorf("Contains(%q, %q) = %v, want ErrUnknownRevision", tc.revision, tc.commit, err)
		}
	}
}

// TestPins asks what QA and production overlays pinned at the bot's
// commits, before and after later ones changed them.
func TestPins(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	c := gitops.NewConfigRepo(clonetest.Open(t, bare))
	ctx := context.Background()
	initial := gittest.Head(t, bare, "main")
	first, second := qaBuild("01JA", "feature/login", "1.4.0"), qaBuild("01JB", "feature/login", "1.5.0")
	d1, err := c.DeployQA(ctx, helloConfig, first)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := c.DeployQA(ctx, helloConfig, second)
	if err != nil || d2.Environment != d1.Environment {
		t.Fatalf("second deploy = %+v, %v; first in %s", d2, err, d1.Environment)
	}
	promoter := promote.Person{ID: "UOWN1", Name: "Olga"}
	p1, err := c.Promote(ctx, helloConfig, first, nil, promoter)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := c.Promote(ctx, helloConfig, second, nil, promoter)
	if err != nil {
		t.Fatal(err)
	}
	qa := d1.Environment
	for _, tc := range []struct {
		name, revision, env, image string
		want                       bool
	}{
		{"deployed to QA", d1.Commit, qa, first.Image, true},
		{"replaced in QA, asked later", d2.Commit, qa, first.Image, false},
		{"the replacement", d2.Commit, qa, second.Image, true},
		{"replaced in QA, asked at the deploy", d1.Commit, qa, first.Image, true},
		{"not yet deployed", d1.Commit, qa, second.Image, false},
		{"QA overlay not there yet", initial, qa, first.Image, false},
		{"another QA overlay", d2.Commit, "qa/branch-other", first.Image, false},
		{"production before promotion", d2.Commit, "production", first.Image, false},
		{"production as seeded", initial, "production", "registry.example.com/acme/hello:1.3.0", true},
		{"promoted", p1, "production", first.Image, true},
		{"replaced in production, asked later", p2, "production", first.Image, false},
		{"the production replacement", p2, "production", second.Image, true},
		{"replaced in production, asked at the promotion", p1, "production", first.Image, true},
		{"a digest the tag does not have", p2, "production", second.Image + "@sha256:" + strings.Repeat("a", 64), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Pins(ctx, helloConfig, tc.revision, tc.env, tc.image)
			if err != nil || got != tc.want {
				t.Fatalf("Pins(%.7s, %s, %s) = %v, %v; want %v", tc.revision, tc.env, tc.image, got, err, tc.want)
			}
		})
	}

	// No production overlay at all.
	noProd := helloConfig
	noProd.Path = "apps/none"
	if got, err := c.Pins(ctx, noProd, p2, "production", second.Image); err != nil || got {
		t.Errorf("a project without overlays: Pins = %v, %v; want false", got, err)
	}
	for _, tc := range []struct{ env, image string }{
		{"", first.Image},
		{"qa", first.Image},
		{"qa/", first.Image},
		{"staging", first.Image},
		{"qa/../production", first.Image},
		{"qa/branch-feature-login/x", first.Image},
		{"qa/Branch-Feature-Login", first.Image},
		{"production/", first.Image},
		{"production", "busybox:1.36"},                        // pinned, but not the project's image
		{"production", "registry.example.com/acme/hello"},     // no tag
		{"production", "registry.example.com/acme/hello:a b"}, // no reference
	} {
		if _, err := c.Pins(ctx, helloConfig, p2, tc.env, tc.image); !errors.Is(err, promote.ErrInvalid) {
			t.Errorf("Pins(%q, %q) = %v, want ErrInvalid", tc.env, tc.image, err)
		}
	}
	if _, err := c.Pins(ctx, helloConfig, strings.Repeat("ab", 20), "production", first.Image); !errors.Is(err, promote.ErrUnknownRevision) {
		t.Errorf("unknown revision: %v, want ErrUnknownRevision", err)
	}
}

// TestRevisionsWhileApplying reads from several goroutines while the bot
// deploys and another writer pushes (run with -race): the reads fetch what
// the other writer pushed, between the bot's pushes.
func TestRevisionsWhileApplying(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	c := gitops.NewConfigRepo(clonetest.Open(t, bare))
	other := clonetest.Open(t, bare)
	ctx := context.Background()
	base := qaBuild("01J0", "feature/base", "1.0.0")
	d0, err := c.DeployQA(ctx, helloConfig, base)
	if err != nil {
		t.Fatal(err)
	}
	check := func(revision string) error {
		if ok, err := c.Contains(ctx, revision, d0.Commit); err != nil || !ok {
			return fmt.Errorf("Contains(%.7s, %.7s) = %v, %v", revision, d0.Commit, ok, err)
		}
		if ok, err := c.Pins(ctx, helloConfig, revision, d0.Environment, base.Image); err != nil || !ok {
			return fmt.Errorf("Pins(%.7s) = %v, %v", revision, ok, err)
		}
		return nil
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	}
	for w := range 3 {
		wg.Go(func() {
			for i := range 2 {
				b := qaBuild(fmt.Sprintf("01JW%d%d", w, i), fmt.Sprintf("feature/w%d", w), fmt.Sprintf("1.%d.%d", w, i))
				d, err := c.DeployQA(ctx, helloConfig, b)
				if err == nil {
					err = check(d.Commit)
				}
				if err == nil {
					if ok, perr := c.Pins(ctx, helloConfig, d.Commit, d.Environment, b.Image); perr != nil || !ok {
						err = fmt.Errorf("Pins of own deploy %.7s = %v, %v", d.Commit, ok, perr)
					}
				}
				if err != nil {
					fail(err)
				}
			}
		})
	}
	for w := range 2 {
		wg.Go(func() {
			for i := range 3 {
				res, err := other.Apply(ctx, func(f clone.Files) (clone.Outcome, error) {
					return clone.Outcome{Subject: "Note"}, f.WriteFile(fmt.Sprintf("notes/%d-%d.txt", w, i), []byte("x"))
				})
				if err == nil {
					err = check(res.Commit)
				}
				if err != nil {
					fail(err)
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}
