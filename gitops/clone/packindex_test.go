package clone

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/promotebot/promotebot/gitops/gittest"
)

// packObjectsTo runs git pack-objects in repo with revs on stdin and
// returns the pack.
func packObjectsTo(t *testing.T, repo, revs string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("git", append([]string{"pack-objects", "--stdout", "--revs", "-q"}, args...)...)
	cmd.Dir = repo
	cmd.Env = gittest.Env()
	cmd.Stdin = strings.NewReader(revs)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("git pack-objects: %v: %s", err, stderr.String())
	}
	return out.Bytes()
}

// writePack sends pack through fetchStorage's PackfileWriter into the clone
// in dir and returns its storage.
func writePack(t *testing.T, dir string, pack []byte) *filesystem.Storage {
	t.Helper()
	stor := filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRUDefault())
	w, err := (&fetchStorage{Storage: stor, dir: dir}).PackfileWriter()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(pack); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return stor
}

// history makes a remote with a few commits that change the same files, so
// that its packs hold deltas, and returns it.
func history(t *testing.T) string {
	t.Helper()
	remote, err := gittest.MakeConfigRepo(t.TempDir(), 20, 60)
	if err != nil {
		t.Fatal(err)
	}
	return remote
}

// The index of a pack of ref deltas (a client that cannot read offset
// deltas gets those) is the one git index-pack makes.
func TestIndexPackRefDeltas(t *testing.T) {
	remote := history(t)
	pack := packObjectsTo(t, remote, "main\n")
	dir := t.TempDir()
	stor := writePack(t, dir, pack)
	defer stor.Close() //nolint:errcheck // test
	packs, err := stor.ObjectPacks()
	if err != nil || len(packs) != 1 {
		t.Fatalf("packs %v, %v", packs, err)
	}
	base := filepath.Join(dir, "objects", "pack", "pack-"+packs[0].String())
	gittest.Git(t, "", "index-pack", "-o", filepath.Join(dir, "git.idx"), base+".pack")
	ours, _ := os.ReadFile(base + ".idx")
	theirs, _ := os.ReadFile(filepath.Join(dir, "git.idx"))
	if !bytes.Equal(ours, theirs) {
		t.Fatal("the index differs from git index-pack's")
	}
	tip := plumbing.NewHash(gittest.Git(t, remote, "rev-parse", "main"))
	if _, err := object.GetCommit(stor, tip); err != nil {
		t.Fatal(err)
	}
}

// A thin pack's deltas against objects the clone has already are resolved
// from the clone.
func TestIndexPackThin(t *testing.T) {
	remote := history(t)
	dir := t.TempDir()
	writePack(t, dir, packObjectsTo(t, remote, "main~10\n", "--delta-base-offset")).Close() //nolint:errcheck // test
	thin := packObjectsTo(t, remote, "main\n^main~10\n", "--thin", "--delta-base-offset")
	stor := writePack(t, dir, thin)
	defer stor.Close() //nolint:errcheck // test
	tip := plumbing.NewHash(gittest.Git(t, remote, "rev-parse", "main"))
	c, err := object.GetCommit(stor, tip)
	if err != nil {
		t.Fatal(err)
	}
	files, err := c.Files()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := files.ForEach(func(f *object.File) error { n++; _, err := f.Contents(); return err }); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no files")
	}
}

// A damaged pack is refused and leaves nothing behind.
func TestIndexPackDamaged(t *testing.T) {
	remote := history(t)
	pack := packObjectsTo(t, remote, "main\n")
	pack[len(pack)/2] ^= 0xff
	dir := t.TempDir()
	stor := filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRUDefault())
	defer stor.Close() //nolint:errcheck // test
	w, err := (&fetchStorage{Storage: stor, dir: dir}).PackfileWriter()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(pack); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil {
		t.Fatal("a damaged pack was accepted")
	}
	left, _ := os.ReadDir(filepath.Join(dir, "objects", "pack"))
	if len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}
