package history

import (
	"bytes"
	"errors"
	"iter"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// hashLen is the length of a SHA-1 object id in a tree object.
const hashLen = 20

// errMalformedTree is returned for a tree object whose entries do not read
// as "<octal mode> <name>\0<hash>".
var errMalformedTree = errors.New("malformed tree entry")

// tree is a tree object's content, well-formed (checkTree). Its entries
// are read from it as they are needed rather than parsed into a slice: the
// walk compares a folder of hundreds of projects with its parent's at each
// commit, and the entries both share cost no allocation.
type tree []byte

// treeEntry is one entry of a tree, its name and raw bytes slices of the
// tree's content.
type treeEntry struct {
	mode filemode.FileMode
	name []byte
	hash plumbing.Hash
	raw  []byte
}

// splitEntry reads t's first entry, and returns it and the rest of t.
func splitEntry(t []byte) (treeEntry, tree, error) {
	var e treeEntry
	sp := bytes.IndexByte(t, ' ')
	if sp < 1 || sp > 7 {
		return e, nil, errMalformedTree
	}
	for _, c := range t[:sp] {
		if c < '0' || c > '7' {
			return e, nil, errMalformedTree
		}
		e.mode = e.mode<<3 | filemode.FileMode(c-'0')
	}
	nul := bytes.IndexByte(t[sp+1:], 0)
	end := sp + 1 + nul + 1 + hashLen
	if nul < 1 || len(t) < end {
		return e, nil, errMalformedTree
	}
	e.name = t[sp+1 : sp+1+nul]
	copy(e.hash[:], t[end-hashLen:end])
	e.raw = t[:end]
	return e, t[end:], nil
}

// checkTree tells whether data reads as a tree object's entries.
func checkTree(data []byte) error {
	for t := tree(data); len(t) > 0; {
		var err error
		if _, t, err = splitEntry(t); err != nil {
			return err
		}
	}
	return nil
}

// next returns t's first entry and the rest of t; ok is false at its end.
// It relies on checkTree: a tree is checked once and read many times.
func (t tree) next() (e treeEntry, rest tree, ok bool) {
	if len(t) == 0 {
		return e, nil, false
	}
	sp := bytes.IndexByte(t, ' ')
	for _, c := range t[:sp] {
		e.mode = e.mode<<3 | filemode.FileMode(c-'0')
	}
	nul := sp + 1 + bytes.IndexByte(t[sp+1:], 0)
	end := nul + 1 + hashLen
	e.name, e.raw = t[sp+1:nul], t[:end]
	copy(e.hash[:], t[nul+1:end])
	return e, t[end:], true
}

// all yields t's entries in their order.
func (t tree) all() iter.Seq[treeEntry] {
	return func(yield func(treeEntry) bool) {
		for e, rest, ok := t.next(); ok && yield(e); e, rest, ok = rest.next() {
		}
	}
}

// find returns the entry name of t.
func (t tree) find(name string) (object.TreeEntry, bool) {
	for e := range t.all() {
		if string(e.name) == name {
			return object.TreeEntry{Name: name, Mode: e.mode, Hash: e.hash}, true
		}
	}
	return object.TreeEntry{}, false
}

// entry returns e as go-git's entry, its name copied.
func (e treeEntry) entry() object.TreeEntry {
	return object.TreeEntry{Name: string(e.name), Mode: e.mode, Hash: e.hash}
}

// joinEntries calls fn with the entries of a and b that have one name
// (either zero when the other side has none), in git's order, but for
// entries stored alike on both sides. A tree that is not in git's order
// only makes entries unpaired: they read as changed.
//
// A folder of hundreds of projects differs from its parent's in one entry
// or two: the entries before it are skipped reading only a's, and once the
// rest of a and b are the same bytes the join stops.
func joinEntries(a, b tree, fn func(x, y object.TreeEntry) error) error {
	for {
		for x, rest, ok := a.next(); ok && bytes.HasPrefix(b, x.raw); x, rest, ok = rest.next() {
			a, b = rest, b[len(x.raw):]
		}
		x, restA, okA := a.next()
		y, restB, okB := b.next()
		c := 0
		switch {
		case !okA && !okB:
			return nil
		case !okB:
			c = -1
		case !okA:
			c = 1
		default:
			c = gitCompare(x, y)
		}
		var ex, ey object.TreeEntry
		if c <= 0 {
			ex, a = x.entry(), restA
		}
		if c >= 0 {
			ey, b = y.entry(), restB
		}
		if err := fn(ex, ey); err != nil {
			return err
		}
		if bytes.Equal(a, b) {
			return nil
		}
	}
}

// gitCompare orders tree entries as git does: by name, a folder's name
// compared as if it ended in "/".
func gitCompare(x, y treeEntry) int {
	n := min(len(x.name), len(y.name))
	if c := bytes.Compare(x.name[:n], y.name[:n]); c != 0 {
		return c
	}
	cx, cy := nextByte(x, n), nextByte(y, n)
	switch {
	case cx < cy:
		return -1
	case cx > cy:
		return 1
	}
	return 0
}

// nextByte is the byte of e's name at i, "/" past a folder's name and 0
// past a file's.
func nextByte(e treeEntry, i int) int {
	switch {
	case i < len(e.name):
		return int(e.name[i])
	case e.mode == filemode.Dir:
		return '/'
	}
	return 0
}
