package clone_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/gitops/clone/clonetest"
	"github.com/promotebot/promotebot/gitops/gittest"
)

// TestFetchKilledWhileWritingTheIndex: a process killed while go-git wrote
// a fetched pack's index leaves a partial pack-X.idx without its pack. The
// next fetch receives the same pack X, and go-git keeps an index that
// exists: the clone would then hold a pack it cannot read, and every change
// would fail with "object not found". Open clears such leftovers.
func TestFetchKilledWhileWritingTheIndex(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	// The pack a first clone of this remote receives, and its index.
	first := filepath.Join(t.TempDir(), "first")
	r, err := clone.Open(context.Background(), clone.Options{URL: bare, Dir: first})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	idxs, _ := filepath.Glob(filepath.Join(first, "objects", "pack", "pack-*.idx"))
	if len(idxs) != 1 {
		t.Fatalf("first clone has packs %v, want one", idxs)
	}
	idx, err := os.ReadFile(idxs[0])
	if err != nil {
		t.Fatal(err)
	}

	for _, cut := range []int{0, 8, 1032, len(idx) / 2, len(idx) - 20, len(idx) - 1} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			// A remote just like the first (the same objects: the same pack).
			copied := filepath.Join(t.TempDir(), "config.git")
			if err := os.CopyFS(copied, os.DirFS(bare)); err != nil {
				t.Fatal(err)
			}
			killedAt(t, copied, idxs[0], idx, cut)
		})
	}
}

// killedAt is a second clone killed after cut bytes of the index.
func killedAt(t *testing.T, bare, idxName string, idx []byte, cut int) {
	dir := filepath.Join(t.TempDir(), "killed")
	if err := os.MkdirAll(filepath.Join(dir, "objects", "pack"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "objects", "pack", filepath.Base(idxName)), idx[:cut], 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "objects", "pack", "tmp_pack_123"), []byte("PACK"), 0o640); err != nil {
		t.Fatal(err)
	}
	// The restart fetches (the same pack); go-git answers from the index
	// it built in memory, so the damage shows only after the next restart.
	restarted, err := clone.Open(context.Background(), clone.Options{URL: bare, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := restarted.Close(); err != nil {
		t.Fatal(err)
	}
	again := clonetest.Open(t, bare, func(o *clone.Options) { o.Dir = dir })
	res, err := again.Apply(context.Background(), writeFile("after-the-crash.txt", "ok\n"))
	if err != nil || !res.Changed {
		t.Fatalf("Apply after the crash: %+v, %v", res, err)
	}
	if got, _ := gittest.ReadFile(t, bare, "main", "after-the-crash.txt"); got != "ok\n" {
		t.Errorf("remote file = %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "objects", "pack", "tmp_pack_123")); err == nil {
		t.Error("the killed process's temporary pack is still there")
	}
}

// TestDamagedIndexIsRefetched: a pack index whose checksum does not match
// (the machine crashed before the page cache reached the disk) is removed
// with its pack, and the branch is fetched again.
func TestDamagedIndexIsRefetched(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	dir := filepath.Join(t.TempDir(), "clone")
	r := clonetest.Open(t, bare, func(o *clone.Options) { o.Dir = dir })
	apply(t, r, writeFile("before.txt", "one\n"))
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	idxs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*.idx"))
	if len(idxs) == 0 {
		t.Fatal("no pack index in the clone")
	}
	for _, name := range idxs {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0xff
		if err := os.WriteFile(name, b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	again := clonetest.Open(t, bare, func(o *clone.Options) { o.Dir = dir })
	if res := apply(t, again, writeFile("after.txt", "two\n")); !res.Changed {
		t.Fatalf("Apply after the damage: %+v", res)
	}
	for _, f := range []string{"before.txt", "after.txt"} {
		if _, ok := gittest.ReadFile(t, bare, "main", f); !ok {
			t.Errorf("%s missing on the remote", f)
		}
	}
}

// TestLostObjectsAreFetchedAgain: whatever removed objects from the clone
// (a pack deleted by hand, a disk that lost it), the fetch at start wants
// what the clone lacks (go-git asks for a ref whose object is missing), so
// the writer works again after a restart.
func TestLostObjectsAreFetchedAgain(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	dir := filepath.Join(t.TempDir(), "clone")
	first, err := clone.Open(context.Background(), clone.Options{URL: bare, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	apply(t, first, writeFile("before.txt", "one\n"))
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	packs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*"))
	for _, p := range packs {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	r := clonetest.Open(t, bare, func(o *clone.Options) { o.Dir = dir })
	if res := apply(t, r, writeFile("after.txt", "two\n")); !res.Changed {
		t.Fatalf("Apply after the loss: %+v", res)
	}
	for _, f := range []string{"before.txt", "after.txt"} {
		if _, ok := gittest.ReadFile(t, bare, "main", f); !ok {
			t.Errorf("%s missing on the remote", f)
		}
	}
}

// TestRefKilledWhileWritten: go-git truncates a ref file before it writes
// it; a process killed in between leaves it empty, or cut short, and
// go-git then refuses every fetch ("ref file is empty"). Open removes such
// a ref and fetches it again.
func TestRefKilledWhileWritten(t *testing.T) {
	for name, content := range map[string]string{"empty": "", "cut": "46c4198750e4bf1c", "no newline": "46c4198750e4bf1c2d81550b037009e8d788f79e"} {
		t.Run(name, func(t *testing.T) {
			bare := gittest.NewRemote(t, seed)
			dir := filepath.Join(t.TempDir(), "clone")
			first, err := clone.Open(context.Background(), clone.Options{URL: bare, Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			if err := first.Close(); err != nil {
				t.Fatal(err)
			}
			ref := filepath.Join(dir, "refs", "remotes", "origin", "main")
			if _, err := os.Stat(ref); err != nil {
				t.Fatalf("the clone has no loose tracking ref: %v", err)
			}
			if err := os.WriteFile(ref, []byte(content), 0o640); err != nil {
				t.Fatal(err)
			}
			again := clonetest.Open(t, bare, func(o *clone.Options) { o.Dir = dir })
			if res := apply(t, again, writeFile("after.txt", "1\n")); !res.Changed {
				t.Fatalf("Apply after the crash: %+v", res)
			}
		})
	}
}
