package history

import (
	"errors"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// The walker's cache of objects is bounded in bytes, whatever the length of
// the history, in two pools: small objects (a project's folders, a few
// entries each, stored as deltas of their older versions) are kept apart
// from large ones (a folder of hundreds of projects, one per commit), so
// that the chain of a project's folder read one bump ago is still there
// at the next, hundreds of commits later.
const (
	maxSmallBytes = 8 << 20
	maxLargeBytes = 32 << 20
	smallObject   = 4 << 10
)

// maxDeltaDepth bounds a delta chain (git writes at most 4,095), so that a
// pack whose deltas refer to one another in a circle is an error, not a
// stack overflow.
const maxDeltaDepth = 1 << 12

// errNotTree is returned for an object that should be a tree and is not.
var errNotTree = errors.New("not a tree")

// rawObject is an object's type and content; checked tells that it has
// been read as a tree and is well-formed, and then overlays whether it
// holds an overlays folder (scanTree).
type rawObject struct {
	typ      plumbing.ObjectType
	data     []byte
	checked  bool
	overlays bool
}

// size estimates the bytes o holds: its content and its map entry.
func (o *rawObject) size() int {
	const overhead = 128
	return overhead + len(o.data)
}

// objectCache keeps the objects read last: the trees that consecutive
// commits share and the delta bases they are stored against.
type objectCache struct {
	small, large generations
}

func newObjectCache() *objectCache {
	return &objectCache{small: newGenerations(maxSmallBytes), large: newGenerations(maxLargeBytes)}
}

func (c *objectCache) get(h plumbing.Hash) *rawObject {
	if o := c.small.get(h); o != nil {
		return o
	}
	return c.large.get(h)
}

func (c *objectCache) put(h plumbing.Hash, o *rawObject) {
	if len(o.data) < smallObject {
		c.small.put(h, o)
	} else {
		c.large.put(h, o)
	}
}

// generations holds objects up to max bytes in two generations: when the
// recent one holds half of them it becomes the older one and the older one
// is dropped, and a hit in the older one moves to the recent one. It is an
// LRU's approximation at the cost of a map look-up.
type generations struct {
	recent, older map[plumbing.Hash]*rawObject
	bytes, max    int // bytes held by recent
}

func newGenerations(maxBytes int) generations {
	return generations{recent: map[plumbing.Hash]*rawObject{}, older: map[plumbing.Hash]*rawObject{}, max: maxBytes}
}

func (g *generations) get(h plumbing.Hash) *rawObject {
	if o, ok := g.recent[h]; ok {
		return o
	}
	o, ok := g.older[h]
	if ok {
		g.put(h, o)
	}
	return o
}

func (g *generations) put(h plumbing.Hash, o *rawObject) {
	if g.bytes+o.size() > g.max/2 {
		clear(g.older)
		g.older, g.recent, g.bytes = g.recent, g.older, 0
	}
	g.recent[h] = o
	g.bytes += o.size()
}

// object reads the object h: from the cache, else from a pack (resolving
// its deltas from the cache), else through go-git (loose objects,
// alternates).
func (w *historyWalker) object(h plumbing.Hash, depth int) (*rawObject, error) {
	if o := w.objects.get(h); o != nil {
		return o, nil
	}
	if depth > maxDeltaDepth {
		return nil, fmt.Errorf("read object %s: delta chain longer than %d", h, maxDeltaDepth)
	}
	o, found, err := w.fromPack(h, depth)
	if !found {
		o, err = w.whole(h)
	}
	if err != nil {
		return nil, fmt.Errorf("read object %s: %w", h, err)
	}
	w.objects.put(h, o)
	return o, nil
}

// fromPack reads the object h from the first pack that has it; found is
// false when none has.
func (w *historyWalker) fromPack(h plumbing.Hash, depth int) (_ *rawObject, found bool, _ error) {
	for _, p := range w.packs {
		off, err := p.idx.FindOffset(h)
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			continue
		}
		if err != nil {
			return nil, true, err
		}
		typ, data, base, err := p.read(off)
		if err != nil {
			return nil, true, err
		}
		if base.IsZero() {
			return &rawObject{typ: typ, data: data}, true, nil
		}
		b, err := w.object(base, depth+1)
		if err != nil {
			return nil, true, err
		}
		patched, err := packfile.PatchDelta(b.data, data)
		return &rawObject{typ: b.typ, data: patched}, true, err
	}
	return nil, false, nil
}

// whole reads the object h through go-git.
func (w *historyWalker) whole(h plumbing.Hash) (*rawObject, error) {
	obj, err := w.stor.EncodedObject(plumbing.AnyObject, h)
	if err != nil {
		return nil, err
	}
	if obj.Size() > maxObjectSize {
		return nil, fmt.Errorf("%w: %d bytes", errTooLarge, obj.Size())
	}
	r, err := obj.Reader()
	if err != nil {
		return nil, err
	}
	data := make([]byte, obj.Size())
	_, err = io.ReadFull(r, data)
	return &rawObject{typ: obj.Type(), data: data}, errors.Join(err, r.Close())
}

// commit reads the commit h from the packs, or through go-git. The walk
// reads each commit once, so it is not cached.
func (w *historyWalker) commit(h plumbing.Hash) (*object.Commit, error) {
	o, found, err := w.fromPack(h, 0)
	if !found {
		c, err := object.GetCommit(w.stor, h)
		if err != nil {
			return nil, fmt.Errorf("read commit %s: %w", h, err)
		}
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", h, err)
	}
	obj := &plumbing.MemoryObject{}
	obj.SetType(o.typ)
	if _, err := obj.Write(o.data); err != nil {
		return nil, fmt.Errorf("read commit %s: %w", h, err)
	}
	c, err := object.DecodeCommit(w.stor, knownHash{obj, h})
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", h, err)
	}
	return c, nil
}

// knownHash is an object read by its hash: go-git's MemoryObject would
// compute it from the content again.
type knownHash struct {
	*plumbing.MemoryObject
	hash plumbing.Hash
}

func (o knownHash) Hash() plumbing.Hash { return o.hash }

// readTree returns a tree's content; a zero hash is the empty tree. The walk
// reads most trees twice, as a commit's and as its child's parent's: the
// cache keeps them, checked.
func (w *historyWalker) readTree(h plumbing.Hash) (tree, error) {
	t, _, err := w.readFolder(h)
	return t, err
}

// readFolder is readTree, and tells whether the tree holds an overlays
// folder; the answer is found when the tree is checked, and kept with it.
func (w *historyWalker) readFolder(h plumbing.Hash) (t tree, overlays bool, err error) {
	if h.IsZero() {
		return nil, false, nil
	}
	o, err := w.object(h, 0)
	if err != nil {
		return nil, false, err
	}
	if !o.checked {
		if o.typ != plumbing.TreeObject {
			return nil, false, fmt.Errorf("read tree %s: %w", h, errNotTree)
		}
		if o.overlays, err = scanTree(o.data); err != nil {
			return nil, false, fmt.Errorf("read tree %s: %w", h, err)
		}
		o.checked = true
	}
	return tree(o.data), o.overlays, nil
}
