package clone_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// readContains asks r whether commit is rev or one of its ancestors.
func readContains(r *clone.Repo, rev, commit string) (bool, error) {
	var ok bool
	err := r.Read(context.Background(), []string{rev, commit}, func(v *clone.View) error {
		var err error
		ok, err = v.Contains(rev, commit)
		return err
	})
	return ok, err
}

// TestReadFetchesWhatTheCloneLacks: commits another writer pushed after the
// clone was made are fetched once for every read that names them, at once
// or later; a commit the remote does not have costs one fetch however
// often, and at once, it is asked for; a malformed one costs none.
func TestReadFetchesWhatTheCloneLacks(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	srv := gittest.NewServer(t, filepath.Dir(bare), "u", "p")
	r := clonetest.Open(t, srv.RepoURL(bare), func(o *clone.Options) { o.Auth = clone.Auth{Username: "u", Password: "p"} })
	base := gittest.Head(t, bare, "main")

	work := gittest.Clone(t, bare)
	var pushed []string
	for i := range 3 {
		pushed = append(pushed, gittest.CommitFiles(t, work, map[string]string{"human.txt": fmt.Sprint(i)}, "Human change"))
	}
	gittest.Push(t, work)
	before := fetches(srv)

	const readers = 8
	var wg sync.WaitGroup
	errs := make([]error, readers)
	for i := range readers {
		wg.Go(func() {
			rev := pushed[i%len(pushed)]
			ok, err := readContains(r, rev, base)
			if err == nil && !ok {
				err = fmt.Errorf("%s does not contain %s", rev, base)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if n := fetches(srv) - before; n != 1 {
		t.Fatalf("%d fetches for %d reads of 3 new commits, want 1", n, readers)
	}

	unknown := strings.Repeat("ab", 20)
	before = fetches(srv)
	for i := range readers {
		wg.Go(func() { _, errs[i] = readContains(r, unknown, base) })
	}
	wg.Wait()
	_, err := readContains(r, base, unknown)
	errs = append(errs, err)
	for _, err := range errs {
		if !errors.Is(err, promote.ErrUnknownRevision) || !promote.IsPermanent(err) {
			t.Fatalf("unknown commit: %v, want ErrUnknownRevision", err)
		}
	}
	if n := fetches(srv) - before; n != 1 {
		t.Fatalf("%d fetches for a commit the remote does not have, asked %d times within 10 s, want 1", n, readers+1)
	}

	before = fetches(srv)
	for _, bad := range []string{"", "HEAD", "main", base[:12], strings.ToUpper(base) + "0", strings.Repeat("g", 40)} {
		if _, err := readContains(r, bad, base); !errors.Is(err, promote.ErrUnknownRevision) {
			t.Errorf("revision %q: %v, want ErrUnknownRevision", bad, err)
		}
	}
	if n := fetches(srv) - before; n != 0 {
		t.Fatalf("%d fetches for malformed revisions, want none", n)
	}
}

// TestReadFiles reads a file as an older commit has it, read-only.
func TestReadFiles(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	r := clonetest.Open(t, bare)
	first := apply(t, r, writeFile("a.txt", "1"))
	apply(t, r, writeFile("a.txt", "2"))
	err := r.Read(context.Background(), []string{first.Commit}, func(v *clone.View) error {
		f, err := v.Files(first.Commit)
		if err != nil {
			return err
		}
		if got, err := f.ReadFile("a.txt"); err != nil || string(got) != "1" {
			return fmt.Errorf("a.txt = %q, %v; want \"1\"", got, err)
		}
		if err := f.WriteFile("a.txt", []byte("3")); !errors.Is(err, clone.ErrReadOnly) {
			return fmt.Errorf("WriteFile: %v, want ErrReadOnly", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestReadCommits reads the tip the clone knows, a commit, and the ids of
// its files, as git names them.
func TestReadCommits(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	r := clonetest.Open(t, bare)
	base := gittest.Head(t, bare, "main")
	res := apply(t, r, writeFile("dir/a.txt", "1"))
	blob := strings.TrimSpace(gittest.Git(t, bare, "rev-parse", res.Commit+":dir/a.txt"))
	err := r.Read(context.Background(), nil, func(v *clone.View) error {
		tip, err := v.Tip()
		if err != nil || tip != res.Commit {
			return fmt.Errorf("Tip = %s, %v; want %s", tip, err, res.Commit)
		}
		c, err := v.Commit(tip)
		if err != nil || c.Hash != tip || len(c.Parents) != 1 || c.Parents[0] != base || c.Message != res.Message() ||
			c.Committed.IsZero() {
			return fmt.Errorf("Commit = %+v, %v", c, err)
		}
		for name, want := range map[string]string{
			"dir/a.txt":   blob,
			"dir":         "", // a folder
			"dir/a.txt/x": "",
			"missing.txt": "",
		} {
			if got, err := v.FileID(tip, name); err != nil || got != want {
				return fmt.Errorf("FileID(%s) = %q, %v; want %q", name, got, err, want)
			}
		}
		if _, err := v.FileID(tip, "../x"); !errors.Is(err, clone.ErrInvalidPath) {
			return fmt.Errorf("FileID(../x): %v, want ErrInvalidPath", err)
		}
		if _, err := v.Commit(strings.Repeat("0", 40)); !errors.Is(err, promote.ErrUnknownRevision) {
			return fmt.Errorf("Commit of an unknown commit: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestReadEnds: a View is of no use once its read returned, a read that
// panics is an error and the clone carries on, and Close ends reads.
func TestReadEnds(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	r := clonetest.Open(t, bare)
	head := gittest.Head(t, bare, "main")
	var kept *clone.View
	if err := r.Read(context.Background(), nil, func(v *clone.View) error { kept = v; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := kept.Files(head); err == nil {
		t.Error("Files of a View whose read ended: no error")
	}
	if _, err := kept.Contains(head, head); err == nil {
		t.Error("Contains of a View whose read ended: no error")
	}
	if _, err := kept.Tip(); err == nil {
		t.Error("Tip of a View whose read ended: no error")
	}
	if _, err := kept.FileID(head, "a.txt"); err == nil {
		t.Error("FileID of a View whose read ended: no error")
	}
	if err := r.Read(context.Background(), nil, func(*clone.View) error { panic("boom") }); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("a read that panics: %v", err)
	}
	apply(t, r, writeFile("after.txt", "x"))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Read(ctx, []string{head}, func(*clone.View) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("a read whose context ended: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Read(context.Background(), []string{head}, func(*clone.View) error { return nil }); !errors.Is(err, clone.ErrClosed) {
		t.Errorf("Read after Close: %v, want ErrClosed", err)
	}
}

// TestContainsStopsBelowTheTargetsTime: the walk goes no lower than an hour
// before the commit it looks for, so a descendant committed with a clock
// less than an hour behind is found, and one whose clock was further behind
// hides the rest of the history from it.
func TestContainsStopsBelowTheTargetsTime(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	var behind atomic.Int64
	r := clonetest.Open(t, bare, func(o *clone.Options) {
		o.Now = func() time.Time { return time.Now().Add(-time.Duration(behind.Load())) }
	})
	commitBehind := func(d time.Duration, name string) string {
		behind.Store(int64(d))
		return apply(t, r, writeFile(name, "x")).Commit
	}
	target := commitBehind(0, "target.txt")
	commitBehind(50*time.Minute, "skewed.txt")
	tip := commitBehind(0, "tip.txt")
	if ok, err := readContains(r, tip, target); err != nil || !ok {
		t.Fatalf("behind by 50 minutes: Contains = %v, %v; want true", ok, err)
	}
	commitBehind(3*time.Hour, "far.txt")
	tip = commitBehind(0, "tip2.txt")
	if ok, err := readContains(r, tip, target); err != nil || ok {
		t.Fatalf("behind by 3 hours: Contains = %v, %v; want false (the walk stops there)", ok, err)
	}
}
