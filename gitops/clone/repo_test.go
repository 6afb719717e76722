package clone_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ProtonMail/go-crypto/openpgp"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"

	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/gitops/clone/clonetest"
	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/gitops/overlay"
	"github.com/promotebot/promotebot/gitops/trailer"
	"github.com/promotebot/promotebot/promote"
)

const seed = "../../testdata/configrepo"

// writeFile is the simplest edit: one file with given content.
func writeFile(name, content string) clone.Edit {
	return func(f clone.Files) (clone.Outcome, error) {
		return clone.Outcome{
			Subject:  "Write " + name,
			Trailers: []trailer.Trailer{{Key: "Promotebot-Build", Value: name}},
		}, f.WriteFile(name, []byte(content))
	}
}

func apply(t *testing.T, r *clone.Repo, e clone.Edit) clone.Result {
	t.Helper()
	res, err := r.Apply(context.Background(), e)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return res
}

func TestApplyOverFileAndHTTP(t *testing.T) {
	for _, transportName := range []string{"path", "file", "http"} {
		t.Run(transportName, func(t *testing.T) {
			bare := gittest.NewRemote(t, seed)
			url := bare
			switch transportName {
			case "file":
				url = "file://" + bare
			case "http":
				url = gittest.NewServer(t, filepath.Dir(bare), "ci", "s3cret-pass").RepoURL(bare)
			}
			r := clonetest.Open(t, url, func(o *clone.Options) {
				o.Auth = clone.Auth{Username: "ci", Password: "s3cret-pass"}
			})
			res := apply(t, r, writeFile("apps/hello/overlays/qa/x/kustomization.yaml", "a: 1\n"))
			if !res.Changed || res.Commit == "" {
				t.Fatalf("result %+v, want a commit", res)
			}
			if head := gittest.Head(t, bare, "main"); head != res.Commit {
				t.Fatalf("remote main at %s, want %s", head, res.Commit)
			}
			got, ok := gittest.ReadFile(t, bare, "main", "apps/hello/overlays/qa/x/kustomization.yaml")
			if !ok || got != "a: 1\n" {
				t.Fatalf("pushed file %q (%t)", got, ok)
			}
			log := gittest.Log(t, bare, "main")
			c := log[0]
			if c.Subject != "Write apps/hello/overlays/qa/x/kustomization.yaml" || c.AuthorEmail != "bot@example.com" ||
				c.CommitterName != "promotebot" || len(c.Trailers) != 1 || c.Trailers[0].Key != "Promotebot-Build" {
				t.Fatalf("commit %+v", c)
			}
			if files := gittest.ChangedFiles(t, bare, res.Commit); len(files) != 1 {
				t.Fatalf("changed %v, want one file", files)
			}
			gittest.Git(t, bare, "fsck", "--strict")

			// The same edit again changes nothing and makes no commit.
			again := apply(t, r, writeFile("apps/hello/overlays/qa/x/kustomization.yaml", "a: 1\n"))
			if again.Changed || again.Commit != "" || again.Base != res.Commit || gittest.Head(t, bare, "main") != res.Commit {
				t.Fatalf("no-op produced %+v", again)
			}
		})
	}
}

func TestReopenFetchesIncrementally(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	dir := filepath.Join(t.TempDir(), "clone")
	r, err := clone.Open(context.Background(), clone.Options{URL: bare, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	apply(t, r, writeFile("a.txt", "1"))
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Apply(context.Background(), writeFile("b.txt", "1")); !errors.Is(err, clone.ErrClosed) {
		t.Fatalf("Apply after Close: %v, want ErrClosed", err)
	}
	// A person pushes while the bot is down.
	work := gittest.Clone(t, bare)
	gittest.CommitFiles(t, work, map[string]string{"human.txt": "hi"}, "Human change")
	gittest.Push(t, work)

	r2, err := clone.Open(context.Background(), clone.Options{URL: bare, Dir: dir})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer r2.Close()
	res := apply(t, r2, writeFile("b.txt", "2"))
	log := gittest.Log(t, bare, "main")
	if log[0].Hash != res.Commit || log[1].Subject != "Human change" {
		t.Fatalf("history %v", subjects(log))
	}
}

func subjects(log []gittest.Commit) []string {
	var s []string
	for _, c := range log {
		s = append(s, c.Subject)
	}
	return s
}

// TestRaceIsRetriedOnNewTip has another writer push between the bot's read
// of the tip and its push: the push is refused, the edit runs again on the
// new tip, and both changes survive.
func TestRaceIsRetriedOnNewTip(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	work := gittest.Clone(t, bare)
	r := clonetest.Open(t, bare)
	var runs atomic.Int32
	edit := func(f clone.Files) (clone.Outcome, error) {
		if runs.Add(1) == 1 {
			gittest.CommitFiles(t, work, map[string]string{"other.txt": "x"}, "Other writer")
			gittest.Push(t, work)
		}
		// The edit depends on what it reads: it must see the other writer's file.
		_, err := f.ReadFile("other.txt")
		return clone.Outcome{Subject: fmt.Sprintf("Saw other: %t", err == nil)}, f.WriteFile("mine.txt", []byte("y"))
	}
	res := apply(t, r, edit)
	if runs.Load() != 2 {
		t.Fatalf("edit ran %d times, want 2", runs.Load())
	}
	log := gittest.Log(t, bare, "main")
	if got := subjects(log[:2]); got[0] != "Saw other: true" || got[1] != "Other writer" || log[0].Hash != res.Commit {
		t.Fatalf("history %v", got)
	}
}

func TestRetriesRunOut(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	work := gittest.Clone(t, bare)
	r := clonetest.Open(t, bare, func(o *clone.Options) { o.MaxAttempts = 3 })
	n := 0
	edit := func(f clone.Files) (clone.Outcome, error) {
		n++ // every attempt loses the race
		gittest.CommitFiles(t, work, map[string]string{"other.txt": fmt.Sprint(n)}, "Other writer")
		gittest.Push(t, work)
		return clone.Outcome{Subject: "mine"}, f.WriteFile("mine.txt", []byte("y"))
	}
	_, err := r.Apply(context.Background(), edit)
	var ex *clone.RetriesExhaustedError
	if !errors.As(err, &ex) || ex.Attempts != 3 || !strings.Contains(err.Error(), "gave up after 3 attempts") {
		t.Fatalf("err = %v, want RetriesExhaustedError after 3", err)
	}
	if _, ok := gittest.ReadFile(t, bare, "main", "mine.txt"); ok {
		t.Fatal("the change was pushed anyway")
	}
}

// TestTwoWritersRace runs two bots with their own clones against one remote.
func TestTwoWritersRace(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	bots := []*clone.Repo{clonetest.Open(t, bare), clonetest.Open(t, bare)}
	const each = 15
	var wg sync.WaitGroup
	errs := make(chan error, 2*each)
	for b, r := range bots {
		for i := range each {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := r.Apply(context.Background(), writeFile(fmt.Sprintf("bot%d/f%02d", b, i), "x"))
				errs <- err
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	log := gittest.Log(t, bare, "main")
	if len(log) != 2*each+1 {
		t.Fatalf("%d commits, want %d", len(log), 2*each+1)
	}
	for b := range bots {
		for i := range each {
			if _, ok := gittest.ReadFile(t, bare, "main", fmt.Sprintf("bot%d/f%02d", b, i)); !ok {
				t.Fatalf("lost bot%d/f%02d", b, i)
			}
		}
	}
	gittest.Git(t, bare, "fsck", "--strict")
}

// TestQueuedChangesShareAPush submits many changes at once: each gets its own
// commit, and far fewer pushes than changes reach the server.
func TestQueuedChangesShareAPush(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	srv := gittest.NewServer(t, filepath.Dir(bare), "u", "p")
	r := clonetest.Open(t, srv.RepoURL(bare), func(o *clone.Options) { o.Auth = clone.Auth{Username: "u", Password: "p"} })
	const n = 40
	var wg sync.WaitGroup
	results := make([]clone.Result, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = apply(t, r, writeFile(fmt.Sprintf("f/%02d", i), "x"))
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, res := range results {
		if !res.Changed || seen[res.Commit] {
			t.Fatalf("result %+v: want a distinct commit per change", res)
		}
		seen[res.Commit] = true
	}
	if log := gittest.Log(t, bare, "main"); len(log) != n+1 {
		t.Fatalf("%d commits, want %d", len(log), n+1)
	}
	if pushes := srv.Pushes(); pushes >= n {
		t.Fatalf("%d pushes for %d changes: queued changes were not batched", pushes, n)
	}
}

func TestFailedEditCommitsNothing(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	r := clonetest.Open(t, bare)
	before := gittest.Head(t, bare, "main")
	boom := errors.New("render failed: kustomize says no")
	_, err := r.Apply(context.Background(), func(f clone.Files) (clone.Outcome, error) {
		if err := f.WriteFile("x.yaml", []byte("x")); err != nil {
			return clone.Outcome{}, err
		}
		return clone.Outcome{}, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the edit's error", err)
	}
	_, err = r.Apply(context.Background(), func(clone.Files) (clone.Outcome, error) { panic("bad edit") })
	if err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("panicking edit: %v", err)
	}
	if head := gittest.Head(t, bare, "main"); head != before {
		t.Fatal("a failed edit was pushed")
	}
	apply(t, r, writeFile("ok.txt", "fine")) // the writer survived
}

func TestWrongCredentials(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	srv := gittest.NewServer(t, filepath.Dir(bare), "ci", "right-password")
	for _, url := range []string{srv.RepoURL(bare), strings.Replace(srv.RepoURL(bare), "http://", "http://ci:wrong-password@", 1)} {
		_, err := clone.Open(context.Background(), clone.Options{
			URL: url, Dir: t.TempDir(),
			Auth: clone.Auth{Username: "ci", Password: "wrong-password"},
		})
		if !errors.Is(err, transport.ErrAuthenticationRequired) && !errors.Is(err, transport.ErrAuthorizationFailed) {
			t.Fatalf("err = %v, want an authentication error", err)
		}
		if strings.Contains(err.Error(), "wrong-password") {
			t.Fatalf("the password leaked into the error: %v", err)
		}
		if !promote.IsPermanent(err) {
			t.Fatalf("refused credentials: %v is not permanent", err)
		}
	}
}

// TestRefusedPushIsNotRetried: a push the server refuses the credentials
// for (403) is permanent where it is made: answered after one push, not
// after the rounds of retries a server error gets.
func TestRefusedPushIsNotRetried(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	srv := gittest.NewServer(t, filepath.Dir(bare), "ci", "pw")
	var pushes atomic.Int32
	srv.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/"+gittest.ReceivePack) {
			return false
		}
		pushes.Add(1)
		http.Error(w, "no write access", http.StatusForbidden)
		return true
	})
	r := clonetest.Open(t, srv.RepoURL(bare), func(o *clone.Options) { o.Auth = clone.Auth{Username: "ci", Password: "pw"} })
	_, err := r.Apply(context.Background(), writeFile("x.txt", "1"))
	var exhausted *clone.RetriesExhaustedError
	if !promote.IsPermanent(err) || errors.As(err, &exhausted) || pushes.Load() != 1 {
		t.Fatalf("Apply = %v after %d pushes, want a permanent error after one", err, pushes.Load())
	}
}

func TestServerErrorsAreRetried(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	srv := gittest.NewServer(t, filepath.Dir(bare), "u", "p")
	r := clonetest.Open(t, srv.RepoURL(bare), func(o *clone.Options) { o.Auth = clone.Auth{Username: "u", Password: "p"} })
	srv.FailPushes(2, 0)
	res := apply(t, r, writeFile("x.txt", "1"))
	if gittest.Head(t, bare, "main") != res.Commit {
		t.Fatal("not pushed after the server recovered")
	}
}

func TestHookRejectionIsTerminal(t *testing.T) {
	for _, transportName := range []string{"path", "http"} {
		t.Run(transportName, func(t *testing.T) {
			bare := gittest.NewRemote(t, seed)
			url := bare
			if transportName == "http" {
				url = gittest.NewServer(t, filepath.Dir(bare), "ci", "s3cret-pass").RepoURL(bare)
			}
			// The hook's words reach the error, cleaned: no terminal escapes,
			// and the pusher's own password (echoed by a careless hook) hidden.
			gittest.InstallHook(t, bare, "pre-receive", "#!/bin/sh\n"+
				"printf '\\033[31mmain is protected\\033[0m\\r\\n' >&2\n"+
				"echo 'ask #platform; your password s3cret-pass is wrong' >&2\nexit 1\n")
			r := clonetest.Open(t, url, func(o *clone.Options) {
				o.MaxAttempts = 5
				o.Auth = clone.Auth{Username: "ci", Password: "s3cret-pass"}
			})
			start := time.Now()
			_, err := r.Apply(context.Background(), writeFile("x.txt", "1"))
			var rej *clone.PushRejectedError
			if !errors.As(err, &rej) {
				t.Fatalf("err = %v, want PushRejectedError", err)
			}
			var ex *clone.RetriesExhaustedError
			if errors.As(err, &ex) {
				t.Fatalf("a refusal was retried until exhausted: %v", err)
			}
			want := "main is protected / ask #platform; your password *** is wrong"
			if !strings.Contains(err.Error(), "pre-receive hook declined") || !strings.Contains(err.Error(), "(remote: "+want+")") {
				t.Errorf("err = %q, want the hook's refusal and its words %q", err, want)
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "\x1b") {
				t.Errorf("err = %q holds the password or a terminal escape", err)
			}
			t.Logf("refused in %v: %v", time.Since(start), err)
		})
	}
}

// TestRemoteMessagesAreBounded: a hook that talks without end does not
// fill the error (nor Slack, nor the build's record).
func TestRemoteMessagesAreBounded(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	gittest.InstallHook(t, bare, "pre-receive", "#!/bin/sh\nyes 'refused: é' | head -c 200000 >&2\nexit 1\n")
	r := clonetest.Open(t, bare, func(o *clone.Options) { o.MaxAttempts = 2 })
	_, err := r.Apply(context.Background(), writeFile("x.txt", "1"))
	var rej *clone.PushRejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("err = %v, want PushRejectedError", err)
	}
	if len(rej.Remote) > 1010 || !strings.HasPrefix(rej.Remote, "refused: é / refused: é") || !strings.HasSuffix(rej.Remote, " …") || !utf8.ValidString(rej.Remote) {
		t.Errorf("Remote is %d bytes: %.80q…", len(rej.Remote), rej.Remote)
	}
}

// TestNoSuccessWithoutThePush applies the same edit many times at once to a
// remote that refuses every push: in a batch, the copies after the first
// change nothing on top of its commit, and must not be told "done" while that
// commit is refused.
func TestNoSuccessWithoutThePush(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	gittest.RejectPushes(t, bare, "main is protected")
	r := clonetest.Open(t, bare, func(o *clone.Options) { o.MaxAttempts = 2 })
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			res, err := r.Apply(context.Background(), writeFile("same.txt", "1"))
			if err == nil {
				t.Errorf("apply %d: %+v, want the refusal", i, res)
			}
		})
	}
	wg.Wait()
}

func TestSignedCommitsVerify(t *testing.T) {
	entity, err := openpgp.NewEntity("promotebot", "test", "bot@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key.asc")
	gittest.WriteArmoredKey(t, keyFile, openpgp.PrivateKeyType, entity, true)
	key, err := clone.LoadSigningKey(keyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	bare := gittest.NewRemote(t, seed)
	r := clonetest.Open(t, bare, func(o *clone.Options) { o.SignKey = key })
	res := apply(t, r, writeFile("signed.txt", "1"))

	repo, err := git.PlainOpen(bare)
	if err != nil {
		t.Fatal(err)
	}
	c, err := repo.CommitObject(plumbing.NewHash(res.Commit))
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(t.TempDir(), "pub.asc")
	gittest.WriteArmoredKey(t, pub, openpgp.PublicKeyType, entity, false)
	pubKey, err := os.ReadFile(pub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Verify(string(pubKey)); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	other, err := openpgp.NewEntity("someone", "", "x@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	otherPub := filepath.Join(t.TempDir(), "other.asc")
	gittest.WriteArmoredKey(t, otherPub, openpgp.PublicKeyType, other, false)
	otherKey, err := os.ReadFile(otherPub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Verify(string(otherKey)); err == nil {
		t.Fatal("signature verified with the wrong key")
	}
}

// TestSmallPacksAreMerged checks the clone does not collect a pack per push
// forever, and that it stays whole and usable after the packs are merged.
func TestSmallPacksAreMerged(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	dir := filepath.Join(t.TempDir(), "clone")
	r, err := clone.Open(context.Background(), clone.Options{URL: bare, Dir: dir, MaxPacks: 4})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		apply(t, r, writeFile(fmt.Sprintf("f/%02d", i), fmt.Sprint(i)))
	}
	// Apply answers once the push succeeded; the clone is checked at rest.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	packs, err := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.pack"))
	if err != nil {
		t.Fatal(err)
	}
	if len(packs) > 4 {
		t.Fatalf("%d packs in the clone, want at most 4", len(packs))
	}
	gittest.Git(t, dir, "fsck", "--strict", "--no-dangling")
	r, err = clone.Open(context.Background(), clone.Options{URL: bare, Dir: dir, MaxPacks: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Every file written so far is still readable through the clone.
	res := apply(t, r, func(f clone.Files) (clone.Outcome, error) {
		var all strings.Builder
		for i := range 12 {
			data, err := f.ReadFile(fmt.Sprintf("f/%02d", i))
			if err != nil {
				return clone.Outcome{}, err
			}
			all.Write(data)
		}
		return clone.Outcome{Subject: "sum"}, f.WriteFile("all", []byte(all.String()))
	})
	if got, _ := gittest.ReadFile(t, bare, "main", "all"); got != "01234567891011" || !res.Changed {
		t.Fatalf("after merging packs: %q", got)
	}
}

func TestApplyOverSSH(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	srv := gittest.NewSSHServer(t, filepath.Dir(bare))
	r := clonetest.Open(t, srv.RepoURL(bare), func(o *clone.Options) {
		o.Auth = clone.Auth{SSHKeyFile: srv.KeyFile, KnownHostsFile: srv.KnownHostsFile}
	})
	res := apply(t, r, writeFile("over-ssh.txt", "1"))
	if gittest.Head(t, bare, "main") != res.Commit {
		t.Fatal("not pushed over ssh")
	}

	// A host key that is not the pinned one is refused.
	other := gittest.NewSSHServer(t, filepath.Dir(bare))
	_, err := clone.Open(context.Background(), clone.Options{
		URL: other.RepoURL(bare), Dir: t.TempDir(),
		Auth: clone.Auth{SSHKeyFile: other.KeyFile, KnownHostsFile: srv.KnownHostsFile},
	})
	if err == nil || !strings.Contains(err.Error(), "knownhosts") {
		t.Fatalf("err = %v, want a known_hosts refusal", err)
	}
}

var hello = promote.Project{ID: "hello", Path: "apps/hello", Image: "registry.example.com/acme/hello", URL: "https://hello.example.com"}

// TestOverlaysThroughARealRemote drives the QA and production edits through
// smart HTTP and reads the results back with the git CLI.
func TestOverlaysThroughARealRemote(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	srv := gittest.NewServer(t, filepath.Dir(bare), "u", "p")
	r := clonetest.Open(t, srv.RepoURL(bare), func(o *clone.Options) { o.Auth = clone.Auth{Username: "u", Password: "p"} })
	edit := func(e clone.Edit, err error) clone.Edit {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	meta := overlay.Meta{Build: "b1", Source: "branch feature/login @ 0123abc https://ci.example.com/1"}
	kust := "apps/hello/overlays/qa/branch-feature-login/kustomization.yaml"

	res := apply(t, r, edit(overlay.QAOverlay(hello, promote.KindBranch, "feature/login", "registry.example.com/acme/hello:1.4.0", meta)))
	if got, _ := gittest.ReadFile(t, bare, "main", kust); !strings.Contains(got, "newTag: 1.4.0") || envOf(res) != "qa/branch-feature-login" {
		t.Fatalf("created overlay:\n%s", got)
	}
	c := gittest.Log(t, bare, "main")[0]
	if v := c.TrailerValues("Promotebot-Environment"); len(v) != 1 || v[0] != "qa/branch-feature-login" {
		t.Fatalf("trailers %+v", c.Trailers)
	}
	res = apply(t, r, edit(overlay.QAOverlay(hello, promote.KindBranch, "feature/login", "registry.example.com/acme/hello:1.5.0", meta)))
	if got, _ := gittest.ReadFile(t, bare, "main", kust); !strings.Contains(got, "newTag: 1.5.0") || !res.Changed {
		t.Fatalf("updated overlay:\n%s", got)
	}
	if files := gittest.ChangedFiles(t, bare, res.Commit); len(files) != 1 || files[0] != kust {
		t.Fatalf("update changed %v", files)
	}

	// Production: the pushed file equals the golden file, byte for byte.
	apply(t, r, edit(overlay.ProductionImage(hello, "registry.example.com/acme/hello:1.4.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", overlay.Meta{Build: "b1", PromotedBy: "Ann <slack:UOWN1>"}, nil)))
	got, _ := gittest.ReadFile(t, bare, "main", "apps/hello/overlays/production/kustomization.yaml")
	want, err := os.ReadFile("../overlay/testdata/production/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("production overlay differs from the golden file:\n%s", got)
	}

	// A base broken by a person: the render fails, nothing is pushed.
	work := gittest.Clone(t, bare)
	gittest.CommitFiles(t, work, map[string]string{"apps/hello/base/kustomization.yaml": "resources:\n- missing.yaml\n"}, "Break the base")
	gittest.Push(t, work)
	head := gittest.Head(t, bare, "main")
	_, err = r.Apply(context.Background(), edit(overlay.QAOverlay(hello, promote.KindTag, "v2", "registry.example.com/acme/hello:2.0.0", meta)))
	var rerr *overlay.RenderError
	if !errors.As(err, &rerr) || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("err = %v, want kustomize's render error", err)
	}
	if gittest.Head(t, bare, "main") != head {
		t.Fatal("a change that does not render was pushed")
	}
}

// TestApplyToBranch: the commit goes to a branch of its own, built on the
// config branch's tip, which stays as it was; a second call rebuilds the
// branch on the tip of the moment.
func TestApplyToBranch(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	r := clonetest.Open(t, bare)
	main := gittest.Head(t, bare, "main")
	res, err := r.ApplyToBranch(context.Background(), "promotebot/hello/B1", writeFile("prod.txt", "1"))
	if err != nil || !res.Changed || res.Base != main {
		t.Fatalf("ApplyToBranch = %+v, %v", res, err)
	}
	if gittest.Head(t, bare, "main") != main || gittest.Head(t, bare, "promotebot/hello/B1") != res.Commit {
		t.Fatal("the commit is not on its branch only")
	}
	if got, _ := gittest.ReadFile(t, bare, "promotebot/hello/B1", "prod.txt"); got != "1" {
		t.Fatalf("branch file = %q", got)
	}
	// main moves on; the branch is rebuilt on the new tip (a force push).
	moved := apply(t, r, writeFile("other.txt", "x"))
	again, err := r.ApplyToBranch(context.Background(), "promotebot/hello/B1", writeFile("prod.txt", "1"))
	if err != nil || again.Base != moved.Commit || gittest.Head(t, bare, "promotebot/hello/B1") != again.Commit {
		t.Fatalf("rebuild = %+v, %v; main at %s", again, err, moved.Commit)
	}
	// Nothing to change on the tip: nothing pushed.
	apply(t, r, writeFile("prod.txt", "2"))
	same, err := r.ApplyToBranch(context.Background(), "promotebot/hello/B2", writeFile("prod.txt", "2"))
	if err != nil || same.Changed {
		t.Fatalf("unchanged = %+v, %v", same, err)
	}
	for _, bad := range []string{"", "main", "a..b", "x~1"} {
		if _, err := r.ApplyToBranch(context.Background(), bad, writeFile("prod.txt", "3")); err == nil {
			t.Errorf("branch %q accepted", bad)
		}
	}
}

// envOf is the environment a change's trailers name.
func envOf(res clone.Result) string {
	env, _ := overlay.Landed(hello, promote.KindBranch, res.Trailers)
	return env
}
