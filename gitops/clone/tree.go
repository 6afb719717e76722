package clone

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"

	"github.com/promotebot/promotebot/promote"
)

// ErrInvalidPath is returned for a file name that is not a clean path relative
// to the repository root (absolute, "..", empty elements, ".git").
var ErrInvalidPath = promote.NewPermanent("invalid path")

// tree is a Files view over a git tree that loads directories on demand and
// keeps changes in memory until write turns them into git objects. Only the
// directories on the path of a change are ever read or re-encoded, so the cost
// of a change does not depend on the size of the repository.
type tree struct {
	s    storer.EncodedObjectStorer
	root *dirNode
}

type dirNode struct {
	hash    plumbing.Hash // tree object it was loaded from; zero for a new dir
	entries map[string]*entry
	loaded  bool
	dirty   bool
}

type entry struct {
	mode filemode.FileMode
	hash plumbing.Hash // object id; for a changed file, the id of data
	dir  *dirNode      // set for directories once loaded or created
	data []byte        // new content of a changed file
}

func newTree(s storer.EncodedObjectStorer, root plumbing.Hash) *tree {
	return &tree{s: s, root: &dirNode{hash: root, loaded: root.IsZero(), entries: map[string]*entry{}}}
}

var _ Files = (*tree)(nil)

// splitPath validates a name and returns its elements.
func splitPath(name string) ([]string, error) {
	if name == "" || name == "." {
		return nil, nil
	}
	if strings.HasPrefix(name, "/") || path.Clean(name) != name || strings.ContainsAny(name, "\\\x00") {
		return nil, fmt.Errorf("%w: %q", ErrInvalidPath, name)
	}
	parts := strings.Split(name, "/")
	for _, p := range parts {
		if p == ".." || p == "." || strings.EqualFold(p, ".git") {
			return nil, fmt.Errorf("%w: %q", ErrInvalidPath, name)
		}
	}
	return parts, nil
}

func (t *tree) load(d *dirNode) error {
	if d.loaded {
		return nil
	}
	obj, err := object.GetTree(t.s, d.hash)
	if err != nil {
		return fmt.Errorf("read tree %s: %w", d.hash, err)
	}
	for _, e := range obj.Entries {
		d.entries[e.Name] = &entry{mode: e.Mode, hash: e.Hash}
	}
	d.loaded = true
	return nil
}

func (t *tree) subdir(e *entry) (*dirNode, error) {
	if e.dir == nil {
		e.dir = &dirNode{hash: e.hash, entries: map[string]*entry{}}
	}
	return e.dir, t.load(e.dir)
}

// walk returns the directory holding the last element of parts, creating
// missing directories when create is set (marking the path dirty).
func (t *tree) walk(parts []string, create bool) (*dirNode, []*dirNode, error) {
	d := t.root
	if err := t.load(d); err != nil {
		return nil, nil, err
	}
	chain := []*dirNode{d}
	for _, p := range parts[:len(parts)-1] {
		e, ok := d.entries[p]
		switch {
		case !ok && !create:
			return nil, nil, fs.ErrNotExist
		case !ok:
			e = &entry{mode: filemode.Dir, dir: &dirNode{entries: map[string]*entry{}, loaded: true}}
			d.entries[p] = e
		case e.mode != filemode.Dir:
			if !create {
				return nil, nil, fs.ErrNotExist
			}
			return nil, nil, fmt.Errorf("%s is a file: %w", p, fs.ErrExist)
		}
		sub, err := t.subdir(e)
		if err != nil {
			return nil, nil, err
		}
		d = sub
		chain = append(chain, d)
	}
	return d, chain, nil
}

// ReadFile implements Files.
func (t *tree) ReadFile(name string) ([]byte, error) {
	parts, err := splitPath(name)
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("is a directory")}
	}
	d, _, err := t.walk(parts, false)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	e, ok := d.entries[parts[len(parts)-1]]
	if !ok || e.mode == filemode.Dir || e.mode == filemode.Submodule {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
	}
	if e.data != nil {
		return bytes.Clone(e.data), nil
	}
	return t.readBlob(e.hash)
}

func (t *tree) readBlob(h plumbing.Hash) ([]byte, error) {
	b, err := object.GetBlob(t.s, h)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	r, err := b.Reader()
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	data, err := io.ReadAll(r)
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	return data, nil
}

// WriteFile implements Files. Writing the bytes a file already holds changes
// nothing.
func (t *tree) WriteFile(name string, data []byte) error {
	parts, err := splitPath(name)
	if err != nil {
		return err
	}
	if len(parts) == 0 {
		return fmt.Errorf("write %q: %w", name, ErrInvalidPath)
	}
	d, chain, err := t.walk(parts, true)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	base := parts[len(parts)-1]
	h := plumbing.ComputeHash(plumbing.BlobObject, data)
	if e, ok := d.entries[base]; ok {
		if e.mode == filemode.Dir {
			return fmt.Errorf("write %s: is a directory", name)
		}
		if e.hash == h && e.mode == filemode.Regular {
			return nil
		}
	}
	d.entries[base] = &entry{mode: filemode.Regular, hash: h, data: bytes.Clone(data)}
	markDirty(chain)
	return nil
}

// RemoveAll implements Files.
func (t *tree) RemoveAll(name string) error {
	parts, err := splitPath(name)
	if err != nil {
		return err
	}
	if len(parts) == 0 {
		return fmt.Errorf("remove %q: refusing to remove the root: %w", name, ErrInvalidPath)
	}
	d, chain, err := t.walk(parts, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	if _, ok := d.entries[parts[len(parts)-1]]; !ok {
		return nil
	}
	delete(d.entries, parts[len(parts)-1])
	markDirty(chain)
	return nil
}

func markDirty(chain []*dirNode) {
	for _, d := range chain {
		d.dirty = true
	}
}

// ReadDir implements Files.
func (t *tree) ReadDir(name string) ([]fs.DirEntry, error) {
	parts, err := splitPath(name)
	if err != nil {
		return nil, err
	}
	d := t.root
	if err := t.load(d); err != nil {
		return nil, err
	}
	if len(parts) > 0 {
		parent, _, err := t.walk(parts, false)
		if err != nil {
			return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
		}
		e, ok := parent.entries[parts[len(parts)-1]]
		if !ok || e.mode != filemode.Dir {
			return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
		}
		if d, err = t.subdir(e); err != nil {
			return nil, err
		}
	}
	out := make([]fs.DirEntry, 0, len(d.entries))
	for n, e := range d.entries {
		if e.dir != nil && e.dir.loaded && len(e.dir.entries) == 0 {
			continue // emptied directory: gone once written
		}
		out = append(out, dirEntry{name: n, mode: e.mode})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

type dirEntry struct {
	name string
	mode filemode.FileMode
}

func (e dirEntry) Name() string { return e.name }
func (e dirEntry) IsDir() bool  { return e.mode == filemode.Dir }
func (e dirEntry) Type() fs.FileMode {
	switch e.mode {
	case filemode.Dir:
		return fs.ModeDir
	case filemode.Symlink:
		return fs.ModeSymlink
	case filemode.Submodule:
		return fs.ModeIrregular
	}
	return 0
}
func (e dirEntry) Info() (fs.FileInfo, error) { return fileInfo(e), nil }

type fileInfo dirEntry

func (i fileInfo) Name() string { return i.name }
func (i fileInfo) Size() int64  { return 0 }
func (i fileInfo) Mode() fs.FileMode {
	if i.mode == filemode.Dir {
		return fs.ModeDir | 0o755
	}
	return dirEntry(i).Type() | 0o644
}
func (i fileInfo) ModTime() time.Time { return time.Time{} }
func (i fileInfo) IsDir() bool        { return i.mode == filemode.Dir }
func (i fileInfo) Sys() any           { return nil }

// write stores the changed blobs and trees and returns the new root tree and
// every object written, which is exactly what a push of it must send.
func (t *tree) write() (plumbing.Hash, []plumbing.Hash, error) {
	if !t.root.dirty {
		return t.root.hash, nil, nil
	}
	var written []plumbing.Hash
	h, err := t.writeDir(t.root, &written)
	return h, written, err
}

func (t *tree) writeDir(d *dirNode, written *[]plumbing.Hash) (plumbing.Hash, error) {
	if !d.dirty {
		return d.hash, nil
	}
	entries := make([]object.TreeEntry, 0, len(d.entries))
	for name, e := range d.entries {
		switch {
		case e.dir != nil && e.dir.dirty:
			h, err := t.writeDir(e.dir, written)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			if h.IsZero() {
				continue // directory left empty: git has no empty trees
			}
			e.hash = h
		case e.data != nil:
			if err := t.store(plumbing.BlobObject, e.data, e.hash); err != nil {
				return plumbing.ZeroHash, err
			}
			*written = append(*written, e.hash)
		}
		entries = append(entries, object.TreeEntry{Name: name, Mode: e.mode, Hash: e.hash})
	}
	if len(entries) == 0 {
		return plumbing.ZeroHash, nil
	}
	// git orders entries by name, comparing a directory as if it ended in "/".
	sort.Slice(entries, func(i, j int) bool { return sortKey(entries[i]) < sortKey(entries[j]) })
	obj := t.s.NewEncodedObject()
	if err := (&object.Tree{Entries: entries}).Encode(obj); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("encode tree: %w", err)
	}
	h, err := t.s.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store tree: %w", err)
	}
	*written = append(*written, h)
	return h, nil
}

func sortKey(e object.TreeEntry) string {
	if e.Mode == filemode.Dir {
		return e.Name + "/"
	}
	return e.Name
}

func (t *tree) store(typ plumbing.ObjectType, data []byte, want plumbing.Hash) error {
	obj := t.s.NewEncodedObject()
	obj.SetType(typ)
	obj.SetSize(int64(len(data)))
	w, err := obj.Writer()
	if err != nil {
		return fmt.Errorf("store object: %w", err)
	}
	if _, err := w.Write(data); err != nil {
		return fmt.Errorf("store object: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("store object: %w", err)
	}
	h, err := t.s.SetEncodedObject(obj)
	if err != nil {
		return fmt.Errorf("store object: %w", err)
	}
	if h != want {
		return fmt.Errorf("store object: hash %s, want %s", h, want)
	}
	return nil
}

// ErrReadOnly is returned by a change of a read-only Files view (TreeFiles).
var ErrReadOnly = promote.NewPermanent("read-only files")

// TreeFiles returns a read-only Files view of the git tree root stored in s:
// the files of a commit as they were, for reading history (an auditor
// renders an old commit's overlays with it). WriteFile and RemoveAll return
// ErrReadOnly, so nothing can be written to s through it.
func TreeFiles(s storer.EncodedObjectStorer, root plumbing.Hash) Files {
	return readOnlyTree{newTree(s, root)}
}

// readOnlyTree is a tree whose changes are refused.
type readOnlyTree struct{ *tree }

// WriteFile implements Files: it is refused.
func (readOnlyTree) WriteFile(name string, _ []byte) error {
	return fmt.Errorf("write %s: %w", name, ErrReadOnly)
}

// RemoveAll implements Files: it is refused.
func (readOnlyTree) RemoveAll(name string) error {
	return fmt.Errorf("remove %s: %w", name, ErrReadOnly)
}
