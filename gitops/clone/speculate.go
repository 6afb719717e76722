package clone

import (
	"io"
	"io/fs"
	"runtime"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// The edits of a batch run one on top of the other, but most touch files
// no other edit of the batch touches (each QA environment is its own
// folder), and what an edit costs is mostly its renders. So before applying
// a batch in order, the writer runs every edit at once, each on its own
// copy of the round's tip (speculate), recording which paths it looked at
// and what it changed. Then, in order, an edit none of whose paths an
// earlier edit of the batch changed would have read exactly what it read on
// the tip: its recorded changes are replayed on top of the earlier ones, with
// the same result as running it there (an Edit is a function of what it
// reads). Any other edit runs again, there, as before.

// guess is what one edit did on the round's tip.
type guess struct {
	out     Outcome
	err     error
	touched []string // every path read, listed, written or removed
	ops     []fileOp // the changes, in order
}

// fileOp is one change an edit made, and whether it failed.
type fileOp struct {
	remove bool
	name   string
	data   []byte
	failed bool
}

// recorder is a Files that records what an edit does through it.
type recorder struct {
	f       Files
	touched []string
	ops     []fileOp
}

func (r *recorder) ReadFile(name string) ([]byte, error) {
	r.touched = append(r.touched, name)
	return r.f.ReadFile(name)
}

func (r *recorder) ReadDir(name string) ([]fs.DirEntry, error) {
	r.touched = append(r.touched, name)
	return r.f.ReadDir(name)
}

func (r *recorder) WriteFile(name string, data []byte) error {
	r.touched = append(r.touched, name)
	err := r.f.WriteFile(name, data)
	r.ops = append(r.ops, fileOp{name: name, data: data, failed: err != nil})
	return err
}

func (r *recorder) RemoveAll(name string) error {
	r.touched = append(r.touched, name)
	err := r.f.RemoveAll(name)
	r.ops = append(r.ops, fileOp{remove: true, name: name, failed: err != nil})
	return err
}

// replay makes the recorded changes on f; false when one of them does not
// fail or succeed as it did when recorded.
func replay(f Files, ops []fileOp) bool {
	for _, op := range ops {
		var err error
		if op.remove {
			err = f.RemoveAll(op.name)
		} else {
			err = f.WriteFile(op.name, op.data)
		}
		if (err != nil) != op.failed {
			return false
		}
	}
	return true
}

// speculate runs the edits of reqs concurrently, at most GOMAXPROCS at a
// time, each on its own tree of root, and returns what each did (nil for a
// nil request). Only reads reach the storage, one at a time.
func speculate(s storer.EncodedObjectStorer, root plumbing.Hash, reqs []*request) []*guess {
	out := make([]*guess, len(reqs))
	ls := &lockedReader{EncodedObjectStorer: s}
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(reqs)) {
		wg.Go(func() {
			for i := range work {
				rec := &recorder{f: newTree(ls, root)}
				o, err := runEdit(reqs[i].edit, rec)
				out[i] = &guess{out: o, err: err, touched: rec.touched, ops: rec.ops}
			}
		})
	}
	for i, req := range reqs {
		if req != nil {
			work <- i
		}
	}
	close(work)
	wg.Wait()
	return out
}

// lockedReader serializes the reads of a storage that is not safe for
// concurrent use, and reads each object whole while it holds the lock.
// The trees of speculate only read.
type lockedReader struct {
	storer.EncodedObjectStorer
	mu sync.Mutex
}

func (l *lockedReader) EncodedObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	o, err := l.EncodedObjectStorer.EncodedObject(t, h)
	if err != nil {
		return nil, err
	}
	r, err := o.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	m := &plumbing.MemoryObject{}
	m.SetType(o.Type())
	m.SetSize(o.Size())
	if _, err := io.Copy(m, r); err != nil {
		return nil, err
	}
	return m, nil
}

// changedPaths is what the edits applied so far in a round changed: the
// names they wrote or removed, and every directory above those.
type changedPaths struct {
	names map[string]bool // written or removed
	under map[string]bool // names and the directories holding them
}

func (c *changedPaths) add(ops []fileOp) {
	if c.names == nil {
		c.names, c.under = map[string]bool{}, map[string]bool{}
	}
	for _, op := range ops {
		name := cleanName(op.name)
		c.names[name] = true
		for p := name; ; {
			c.under[p] = true
			i := strings.LastIndexByte(p, '/')
			if i < 0 {
				break
			}
			p = p[:i]
		}
		c.under[""] = true
	}
}

// overlaps tells whether reading any of names on the round's tip could
// differ from reading it after the changes: one of them is, holds or lies
// below a changed name.
func (c *changedPaths) overlaps(names []string) bool {
	if len(c.names) == 0 {
		return false
	}
	for _, n := range names {
		n = cleanName(n)
		if c.under[n] || c.names[""] {
			return true
		}
		for p := n; ; {
			if c.names[p] {
				return true
			}
			i := strings.LastIndexByte(p, '/')
			if i < 0 {
				break
			}
			p = p[:i]
		}
	}
	return false
}

// cleanName maps the root's names ("" and ".") to "".
func cleanName(name string) string {
	if name == "." {
		return ""
	}
	return name
}

// While a push is under way the writer only waits for the remote. The
// changes that arrive meanwhile are taken up at once: their edits run on the
// tree being pushed, which is where the next round starts when the push
// succeeds and nobody else pushed; that round then replays them (applyAll)
// instead of running them again. On any other tree they run as usual.

// earlyGuess is an edit's run on the tree of a commit being pushed.
type earlyGuess struct {
	tree  plumbing.Hash
	guess *guess
}

// speculateWhilePushing takes the changes queued on reqs, up to MaxBatch,
// into r.carried while the commit tip is pushed, and runs the edits of those
// for the config branch on tip's tree, at most GOMAXPROCS at a time. Call
// the returned stop when the push returned: it takes no more and waits for
// the edits running. Only reads reach st, one at a time; the caller must not
// change st until stop returned.
func (r *Repo) speculateWhilePushing(st storer.EncodedObjectStorer, tip plumbing.Hash) (stop func()) {
	c, err := object.GetCommit(st, tip)
	if err != nil {
		return func() {} // the next round runs the edits as usual
	}
	tree := c.TreeHash
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		ls := &lockedReader{EncodedObjectStorer: st}
		work := make(chan *request)
		var wg sync.WaitGroup
		defer func() {
			close(work)
			wg.Wait()
		}()
		for range runtime.GOMAXPROCS(0) {
			wg.Go(func() {
				for req := range work {
					rec := &recorder{f: newTree(ls, tree)}
					o, err := runEdit(req.edit, rec)
					req.early = &earlyGuess{tree: tree, guess: &guess{out: o, err: err, touched: rec.touched, ops: rec.ops}}
				}
			})
		}
		for len(r.carried) < r.opts.MaxBatch {
			select {
			case <-quit:
				return
			case req := <-r.reqs:
				r.carried = append(r.carried, req)
				if req.branch != "" {
					continue
				}
				select {
				case work <- req:
				case <-quit:
					return
				}
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}
