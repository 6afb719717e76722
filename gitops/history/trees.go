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

// entryLen returns the length of t's first entry and the length of its
// mode, or an error when it is malformed. It builds no entry: the walk
// checks, and skips, the entries of a folder of hundreds of projects at
// each commit.
func entryLen(t []byte) (n, sp int, err error) {
	for ; sp < len(t) && t[sp] != ' '; sp++ {
		if c := t[sp]; c < '0' || c > '7' || sp == 7 {
			return 0, 0, errMalformedTree
		}
	}
	if sp < 1 || sp == len(t) {
		return 0, 0, errMalformedTree
	}
	nul := bytes.IndexByte(t[sp+1:], 0)
	n = sp + 1 + nul + 1 + hashLen
	if nul < 1 || len(t) < n {
		return 0, 0, errMalformedTree
	}
	return n, sp, nil
}

// checkTree tells whether data reads as a tree object's entries.
func checkTree(data []byte) error {
	_, err := scanTree(data)
	return err
}

// scanTree checks data as checkTree does and tells, in the same pass,
// whether its first entry named "overlays" is a folder: whether the folder
// may be a project's (see touchedIn).
func scanTree(data []byte) (overlays bool, err error) {
	const name = " overlays\x00"
	seen := false
	for t := data; len(t) > 0; {
		n, sp, err := entryLen(t)
		if err != nil {
			return false, err
		}
		if !seen && n == sp+len(name)+hashLen && string(t[sp:sp+len(name)]) == name {
			e, _, _ := tree(t).next()
			seen, overlays = true, e.mode == filemode.Dir
		}
		t = t[n:]
	}
	return overlays, nil
}

// next returns t's first entry and the rest of t; ok is false at its end.
// It relies on checkTree: a tree is checked once and read many times.
func (t tree) next() (e treeEntry, rest tree, ok bool) {
	if len(t) == 0 {
		return e, nil, false
	}
	sp := 0
	for ; t[sp] != ' '; sp++ {
		e.mode = e.mode<<3 | filemode.FileMode(t[sp]-'0')
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
		n := sameEntries(a, b)
		a, b = a[n:], b[n:]
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

// sameEntries returns the length of the entries a and b begin with alike,
// byte for byte.
func sameEntries(a, b tree) int {
	n := 0
	for n < len(a) {
		l, _, err := entryLen(a[n:])
		if err != nil || len(b) < n+l || !bytes.Equal(a[n:n+l], b[n:n+l]) {
			break
		}
		n += l
	}
	return n
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
