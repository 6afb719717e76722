package clone

import (
	"errors"
	"io/fs"
	"reflect"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
)

// buildTree writes files into a fresh tree and returns its root hash.
func buildTree(t *testing.T, s *memory.Storage, files map[string]string) plumbing.Hash {
	t.Helper()
	tr := newTree(s, plumbing.ZeroHash)
	for name, data := range files {
		if err := tr.WriteFile(name, []byte(data)); err != nil {
			t.Fatalf("WriteFile(%s): %v", name, err)
		}
	}
	h, _, err := tr.write()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// listFiles walks a stored tree and returns every file with its content.
func listFiles(t *testing.T, s *memory.Storage, root plumbing.Hash) map[string]string {
	t.Helper()
	out := map[string]string{}
	if root.IsZero() {
		return out
	}
	tr, err := object.GetTree(s, root)
	if err != nil {
		t.Fatal(err)
	}
	err = tr.Files().ForEach(func(f *object.File) error {
		c, err := f.Contents()
		out[f.Name] = c
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTreeEditsOnlyTouchTheirPath(t *testing.T) {
	s := memory.NewStorage()
	root := buildTree(t, s, map[string]string{
		"apps/a/base/k.yaml":    "a",
		"apps/b/base/k.yaml":    "b",
		"apps/b/overlays/x.yml": "x",
		"README.md":             "readme",
	})
	tr := newTree(s, root)
	if err := tr.WriteFile("apps/a/overlays/qa/env/k.yaml", []byte("new")); err != nil {
		t.Fatal(err)
	}
	if err := tr.WriteFile("apps/a/base/k.yaml", []byte("a2")); err != nil {
		t.Fatal(err)
	}
	h, written, err := tr.write()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"apps/a/base/k.yaml":            "a2",
		"apps/a/overlays/qa/env/k.yaml": "new",
		"apps/b/base/k.yaml":            "b",
		"apps/b/overlays/x.yml":         "x",
		"README.md":                     "readme",
	}
	if got := listFiles(t, s, h); !reflect.DeepEqual(got, want) {
		t.Fatalf("files = %v, want %v", got, want)
	}
	// 2 blobs; trees: env, qa, overlays, base, a, apps, root. Nothing of apps/b.
	if len(written) != 9 {
		t.Fatalf("wrote %d objects, want 9", len(written))
	}
	bTree := func(root plumbing.Hash) plumbing.Hash {
		tr, err := object.GetTree(s, root)
		if err != nil {
			t.Fatal(err)
		}
		e, err := tr.FindEntry("apps/b")
		if err != nil {
			t.Fatal(err)
		}
		return e.Hash
	}
	for _, w := range written {
		if w == bTree(root) {
			t.Fatal("rewrote the untouched apps/b tree")
		}
	}
}

func TestTreeNoOpAndRoundTrip(t *testing.T) {
	s := memory.NewStorage()
	root := buildTree(t, s, map[string]string{"a/b.yaml": "x", "a/c.yaml": "y"})
	tr := newTree(s, root)
	if err := tr.WriteFile("a/b.yaml", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if h, written, err := tr.write(); err != nil || h != root || len(written) != 0 {
		t.Fatalf("same bytes: root %s written %d err %v, want unchanged", h, len(written), err)
	}
	tr = newTree(s, root)
	for _, data := range []string{"changed", "x"} {
		if err := tr.WriteFile("a/b.yaml", []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	if h, _, err := tr.write(); err != nil || h != root {
		t.Fatalf("change and change back: root %s, want %s (%v)", h, root, err)
	}
}

func TestTreeRemoveAndReadDir(t *testing.T) {
	s := memory.NewStorage()
	root := buildTree(t, s, map[string]string{
		"p/overlays/qa/one/k.yaml": "1",
		"p/overlays/qa/one/m.yaml": "1",
		"p/overlays/qa/two/k.yaml": "2",
		"p/base/k.yaml":            "b",
	})
	tr := newTree(s, root)
	if err := tr.RemoveAll("p/overlays/qa/one"); err != nil {
		t.Fatal(err)
	}
	if err := tr.RemoveAll("p/overlays/qa/missing"); err != nil {
		t.Fatalf("removing a missing dir: %v", err)
	}
	if _, err := tr.ReadFile("p/overlays/qa/one/k.yaml"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("read removed file: %v, want ErrNotExist", err)
	}
	ents, err := tr.ReadDir("p/overlays/qa")
	if err != nil || len(ents) != 1 || ents[0].Name() != "two" || !ents[0].IsDir() {
		t.Fatalf("ReadDir = %v, %v; want [two/]", ents, err)
	}
	if err := tr.RemoveAll("p/overlays/qa/two/k.yaml"); err != nil {
		t.Fatal(err)
	}
	h, _, err := tr.write()
	if err != nil {
		t.Fatal(err)
	}
	if got := listFiles(t, s, h); !reflect.DeepEqual(got, map[string]string{"p/base/k.yaml": "b"}) {
		t.Fatalf("files = %v (empty directories must disappear)", got)
	}
}

func TestTreeRefusesEscapingPaths(t *testing.T) {
	s := memory.NewStorage()
	tr := newTree(s, buildTree(t, s, map[string]string{"a/b": "x"}))
	for _, name := range []string{"../x", "/etc/passwd", "a/../../x", "a//b", "a/./b", ".git/config", "a/.GIT/x", "a\\b", "a/\x00", "a/"} {
		if err := tr.WriteFile(name, []byte("x")); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("WriteFile(%q) = %v, want ErrInvalidPath", name, err)
		}
		if _, err := tr.ReadFile(name); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("ReadFile(%q) = %v, want ErrInvalidPath", name, err)
		}
	}
	if err := tr.WriteFile("a/b/c", []byte("x")); err == nil {
		t.Error("writing below a file succeeded")
	}
	if err := tr.RemoveAll(""); err == nil {
		t.Error("removing the root succeeded")
	}
}

func TestTreeSortsLikeGit(t *testing.T) {
	// git compares a directory name as if it ended in "/": "a-b" < "a/" < "a0".
	s := memory.NewStorage()
	h := buildTree(t, s, map[string]string{"a/x": "1", "a-b": "2", "a0": "3"})
	tr, err := object.GetTree(s, h)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range tr.Entries {
		names = append(names, e.Name)
	}
	if want := []string{"a-b", "a", "a0"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("entries %v, want %v", names, want)
	}
}

func TestTreeReportsSymlinksAndSubmodules(t *testing.T) {
	s := memory.NewStorage()
	blob := s.NewEncodedObject()
	blob.SetType(plumbing.BlobObject)
	w, err := blob.Writer()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("../../etc/passwd")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	bh, err := s.SetEncodedObject(blob)
	if err != nil {
		t.Fatal(err)
	}
	obj := s.NewEncodedObject()
	root := &object.Tree{Entries: []object.TreeEntry{
		{Name: "link", Mode: filemode.Symlink, Hash: bh},
		{Name: "sub", Mode: filemode.Submodule, Hash: bh},
	}}
	if err := root.Encode(obj); err != nil {
		t.Fatal(err)
	}
	rh, err := s.SetEncodedObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	ents, err := newTree(s, rh).ReadDir("")
	if err != nil || len(ents) != 2 {
		t.Fatalf("ReadDir: %v %v", ents, err)
	}
	if ents[0].Type() != fs.ModeSymlink || ents[0].Type().IsRegular() || ents[1].Type().IsRegular() || ents[1].IsDir() {
		t.Fatalf("types %v %v: symlinks and submodules must not look like files", ents[0].Type(), ents[1].Type())
	}
}

func TestTreeFilesReadsAndRefusesChanges(t *testing.T) {
	s := memory.NewStorage()
	root := buildTree(t, s, map[string]string{"apps/a/base/k.yaml": "a", "README.md": "readme"})
	f := TreeFiles(s, root)
	if data, err := f.ReadFile("apps/a/base/k.yaml"); err != nil || string(data) != "a" {
		t.Fatalf("ReadFile = %q, %v", data, err)
	}
	if entries, err := f.ReadDir("apps/a"); err != nil || len(entries) != 1 || entries[0].Name() != "base" || !entries[0].IsDir() {
		t.Fatalf("ReadDir = %v, %v", entries, err)
	}
	for name, err := range map[string]error{
		"write":  f.WriteFile("README.md", []byte("changed")),
		"remove": f.RemoveAll("apps"),
	} {
		if !errors.Is(err, ErrReadOnly) {
			t.Errorf("%s: %v, want ErrReadOnly", name, err)
		}
	}
	if got := listFiles(t, s, root); got["README.md"] != "readme" || got["apps/a/base/k.yaml"] != "a" {
		t.Errorf("tree changed: %v", got)
	}
	if data, err := f.ReadFile("README.md"); err != nil || string(data) != "readme" {
		t.Errorf("ReadFile after a refused write = %q, %v", data, err)
	}
}
