package clone_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/gitops/clone/clonetest"
	"github.com/promotebot/promotebot/gitops/gittest"
)

// batchEdits are edits that depend on each other in every way a batch
// allows: independent writes, a file each edit appends to, directory
// listings, a removal, a write that an earlier commit already made, a
// failure. runs counts each edit's calls.
func batchEdits(runs []atomic.Int32) []clone.Edit {
	write := func(name, content string) func(clone.Files) error {
		return func(f clone.Files) error { return f.WriteFile(name, []byte(content)) }
	}
	appendLine := func(line string) func(clone.Files) error {
		return func(f clone.Files) error {
			data, _ := f.ReadFile("log.txt")
			return f.WriteFile("log.txt", append(data, line+"\n"...))
		}
	}
	list := func(dir, to string) func(clone.Files) error {
		return func(f clone.Files) error {
			entries, err := f.ReadDir(dir)
			if err != nil {
				return err
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			return f.WriteFile(to, []byte(strings.Join(names, ",")))
		}
	}
	boom := errors.New("boom")
	steps := []func(clone.Files) error{
		write("env/01/a", "1"),
		appendLine("2"),
		write("env/02/a", "x"),
		appendLine("4"),
		list("env", "count.txt"),
		func(f clone.Files) error { return f.RemoveAll("env/01") },
		write("env/03/a", "3"),
		list("env", "count2.txt"),
		func(f clone.Files) error {
			if err := f.WriteFile("env/09/a", []byte("9")); err != nil {
				return err
			}
			return boom
		},
		write("env/02/a", "x"), // no change, thanks to step 3
		write("other/z", "z"),
		func(f clone.Files) error {
			data, err := f.ReadFile("apps/hello/base/kustomization.yaml")
			if err != nil {
				return err
			}
			return f.WriteFile("copy/kustomization.yaml", data)
		},
	}
	edits := make([]clone.Edit, len(steps))
	for i, step := range steps {
		edits[i] = func(f clone.Files) (clone.Outcome, error) {
			runs[i].Add(1)
			return clone.Outcome{Subject: fmt.Sprint("step ", i)}, step(f)
		}
	}
	return edits
}

// batchRun is what applying batchEdits gave: each edit's result and error,
// the remote's history ("%T %s" of main) and how often each edit ran.
type batchRun struct {
	res  []clone.Result
	errs []error
	log  string
	runs []atomic.Int32
}

// fixedNow is the commit time of the batch tests, so that histories made
// on different remotes compare equal.
func fixedNow() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }

// holdEdit is the batch tests' first change, which the writer is held in.
func holdEdit(f clone.Files) (clone.Outcome, error) {
	return clone.Outcome{Subject: "hold"}, f.WriteFile("hold.txt", []byte("x"))
}

// oneByOne applies holdEdit then batchEdits one at a time (MaxBatch 1) to
// a fresh local remote: what a batch must give.
func oneByOne(t *testing.T) batchRun {
	t.Helper()
	bare := gittest.NewRemote(t, seed)
	r := clonetest.Open(t, bare, func(o *clone.Options) { o.Now, o.MaxBatch = fixedNow, 1 })
	apply(t, r, holdEdit)
	b := batchRun{runs: make([]atomic.Int32, 12)}
	edits := batchEdits(b.runs)
	b.res, b.errs = make([]clone.Result, len(edits)), make([]error, len(edits))
	for i, e := range edits {
		b.res[i], b.errs[i] = r.Apply(context.Background(), e)
	}
	b.log = gittest.Git(t, bare, "log", "--format=%T %s", "main")
	return b
}

// checkSameAsOneByOne checks that a batch gave the history and results of
// one by one, and that the edits whose paths no earlier edit of the batch
// changed ran once and the others twice.
func checkSameAsOneByOne(t *testing.T, got, want batchRun) {
	t.Helper()
	if got.log != want.log {
		t.Errorf("batched history:\n%s\none by one:\n%s", got.log, want.log)
	}
	for i := range got.res {
		if got.res[i].Changed != want.res[i].Changed || got.res[i].Subject != want.res[i].Subject ||
			(got.errs[i] == nil) != (want.errs[i] == nil) {
			t.Errorf("edit %d: %+v, %v; one by one: %+v, %v", i, got.res[i], got.errs[i], want.res[i], want.errs[i])
		}
	}
	for i := range got.runs {
		want := int32(1)
		switch i {
		case 3, 4, 5, 7, 8, 9:
			want = 2
		}
		if n := got.runs[i].Load(); n != want {
			t.Errorf("edit %d ran %d times, want %d", i, n, want)
		}
	}
}

// TestBatchSameAsOneByOne applies a batch of edits that run concurrently
// first and checks that the history it pushes is the one the same edits
// give applied one at a time; edits whose paths no earlier edit of the
// batch changed run only once.
func TestBatchSameAsOneByOne(t *testing.T) {
	defer runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0)))
	runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0)))
	bare := gittest.NewRemote(t, seed)
	r := clonetest.Open(t, bare, func(o *clone.Options) { o.Now = fixedNow })
	got := batchRun{runs: make([]atomic.Int32, 12)}
	edits := batchEdits(got.runs)
	got.res, got.errs = make([]clone.Result, len(edits)), make([]error, len(edits))
	// Hold the writer in an edit of its own while the batch queues.
	release := make(chan struct{})
	started := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		apply(t, r, func(f clone.Files) (clone.Outcome, error) {
			close(started)
			<-release
			return holdEdit(f)
		})
	})
	<-started
	for i, e := range edits {
		wg.Go(func() { got.res[i], got.errs[i] = r.Apply(context.Background(), e) })
		time.Sleep(20 * time.Millisecond) // queued in order
	}
	close(release)
	wg.Wait()
	got.log = gittest.Git(t, bare, "log", "--format=%T %s", "main")
	checkSameAsOneByOne(t, got, oneByOne(t))
}

// TestChangesDuringAPushRunOnItsTree queues a batch of edits while a push is
// under way: they run at once on the tree being pushed, and the next round,
// which starts from that tree, replays those whose paths no earlier edit of
// the batch changed. The history is the one the edits give one at a time.
func TestChangesDuringAPushRunOnItsTree(t *testing.T) {
	defer runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0)))
	runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0)))
	// Queued while the first push waits at the server.
	bare := gittest.NewRemote(t, seed)
	srv := gittest.NewServer(t, filepath.Dir(bare), "u", "p")
	pushing := make(chan struct{})
	release := make(chan struct{})
	var first sync.Once
	srv.Intercept(func(_ http.ResponseWriter, req *http.Request) bool {
		if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/"+gittest.ReceivePack) {
			first.Do(func() {
				close(pushing)
				<-release
			})
		}
		return false
	})
	r := clonetest.Open(t, srv.RepoURL(bare), func(o *clone.Options) {
		o.Now, o.Auth = fixedNow, clone.Auth{Username: "u", Password: "p"}
	})
	var wg sync.WaitGroup
	wg.Go(func() { apply(t, r, holdEdit) })
	<-pushing
	got := batchRun{runs: make([]atomic.Int32, 12)}
	edits := batchEdits(got.runs)
	got.res, got.errs = make([]clone.Result, len(edits)), make([]error, len(edits))
	for i, e := range edits {
		wg.Go(func() { got.res[i], got.errs[i] = r.Apply(context.Background(), e) })
		time.Sleep(20 * time.Millisecond) // queued in order
	}
	// Every edit ran once on the tree being pushed before the push ends.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		ran := 0
		for i := range got.runs {
			ran += int(got.runs[i].Load())
		}
		if ran == len(got.runs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d edits ran during the push", ran, len(got.runs))
		}
	}
	close(release)
	wg.Wait()
	got.log = gittest.Git(t, bare, "log", "--format=%T %s", "main")
	checkSameAsOneByOne(t, got, oneByOne(t))
	if pushes := srv.Pushes(); pushes != 2 {
		t.Errorf("%d pushes, want 2 (the held one, then the batch)", pushes)
	}
}
