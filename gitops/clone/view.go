package clone

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/promotebot/promotebot/promote"
)

// View is what a read sees of the clone: its commits and their files. It
// is handed to the function given to Read and is valid only until that
// function returns; so is everything its methods return.
type View struct {
	r *Repo // nil once the read is over
}

// errViewEnded is returned by a View used after its read returned.
var errViewEnded = errors.New("view used after its read ended")

// readRequest is a Read waiting for the writer goroutine.
type readRequest struct {
	ctx   context.Context
	revs  []plumbing.Hash
	fn    func(*View) error
	reply chan error
}

// refetchAfter is how long a commit that a fetch did not bring is answered
// unknown without fetching again: a burst of events naming a commit the
// remote does not have costs one fetch, not one each.
const refetchAfter = 10 * time.Second

// Read runs fn on the goroutine that owns the clone, between batches of
// changes, with a View in which every commit of revs is present. A commit
// the clone lacks is fetched first (one fetch of the config branch serves
// every read waiting at the time); one that the branch's history does not
// hold either, or a rev that is not 40 hex digits (which is not fetched
// for), is an error wrapping promote.ErrUnknownRevision. So is a commit a
// fetch already missed within the last 10 s: it is not fetched again.
//
// fn must be quick (changes wait behind it) and must not keep the View.
// When ctx ends before fn returns, Read returns ctx's error and fn may
// still run: what fn writes belongs to the caller only once Read returned
// nil.
func (r *Repo) Read(ctx context.Context, revs []string, fn func(*View) error) error {
	req := &readRequest{ctx: ctx, fn: fn, reply: make(chan error, 1)}
	for _, rev := range revs {
		h, err := parseRev(rev)
		if err != nil {
			return err
		}
		req.revs = append(req.revs, h)
	}
	select {
	case <-r.closed:
		return ErrClosed
	default:
	}
	select {
	case r.reads <- req:
	case <-r.closed:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.reply:
		return err
	case <-r.done:
		// The writer stopped; it may have answered just before.
		select {
		case err := <-req.reply:
			return err
		default:
			return ErrClosed
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// parseRev accepts a commit id of 40 hex digits.
func parseRev(rev string) (plumbing.Hash, error) {
	if !plumbing.IsHash(rev) {
		return plumbing.ZeroHash, fmt.Errorf("%w: not a commit id of 40 hex digits", promote.ErrUnknownRevision)
	}
	return plumbing.NewHash(rev), nil
}

// serveReads answers first and every read queued behind it: it fetches
// once if any of them names a commit the clone lacks (and no fetch missed
// it of late), then runs each read's function.
func (r *Repo) serveReads(first *readRequest) {
	live := r.liveReads(first)
	fetched, ferr := r.fetchMissing(live)
	for _, req := range live {
		if h, ok := r.lacks(req.revs); ok {
			err := unknownRevision(h)
			if ferr != nil {
				err = ferr // the fetch that might have brought it failed
			}
			req.reply <- err
			continue
		}
		req.reply <- r.runRead(req.fn)
	}
	if fetched {
		if err := r.consolidate(); err != nil {
			r.opts.Logger.Warn("merge packs", "err", err)
		}
	}
}

// liveReads returns first and the reads queued behind it, less those whose
// caller has given up (answered now).
func (r *Repo) liveReads(first *readRequest) []*readRequest {
	var live []*readRequest
	req := first
	for {
		if err := req.ctx.Err(); err != nil {
			req.reply <- err
		} else {
			live = append(live, req)
		}
		if len(live) == r.opts.MaxBatch {
			return live
		}
		select {
		case req = <-r.reads:
		default:
			return live
		}
	}
}

// fetchMissing fetches the config branch when a read names a commit the
// clone lacks and no fetch missed it within refetchAfter. It reports
// whether it fetched, and the fetch's error.
func (r *Repo) fetchMissing(reads []*readRequest) (bool, error) {
	now := time.Now()
	for h, at := range r.missed {
		if now.Sub(at) >= refetchAfter {
			delete(r.missed, h)
		}
	}
	due := false
	for _, req := range reads {
		for _, h := range req.revs {
			if !r.has(h) {
				if _, ok := r.missed[h]; !ok {
					due = true
				}
			}
		}
	}
	if !due {
		return false, nil
	}
	ctx, cancel := r.untilStop()
	defer cancel()
	// The fetch ends early once every read waiting for it has given up.
	var waiting atomic.Int64
	waiting.Store(int64(len(reads)))
	for _, req := range reads {
		stop := context.AfterFunc(req.ctx, func() {
			if waiting.Add(-1) == 0 {
				cancel()
			}
		})
		defer stop()
	}
	if _, err := r.fetch(ctx); err != nil {
		return false, redact(err, r.opts.URL, r.opts.Auth)
	}
	now = time.Now()
	for _, req := range reads {
		for _, h := range req.revs {
			if !r.has(h) {
				r.missed[h] = now
			}
		}
	}
	return true, nil
}

// unknownRevision is the error for a commit the clone does not have.
func unknownRevision(h plumbing.Hash) error {
	return fmt.Errorf("%w %s", promote.ErrUnknownRevision, h)
}

// lacks returns the first of revs the clone does not have.
func (r *Repo) lacks(revs []plumbing.Hash) (plumbing.Hash, bool) {
	for _, h := range revs {
		if !r.has(h) {
			return h, true
		}
	}
	return plumbing.ZeroHash, false
}

// has reports whether the clone holds commit h.
func (r *Repo) has(h plumbing.Hash) bool {
	_, err := r.stor.EncodedObject(plumbing.CommitObject, h)
	return err == nil
}

// runRead calls a read's function with a View that ends when it returns,
// turning a panic into an error as runEdit does.
func (r *Repo) runRead(fn func(*View) error) (err error) {
	v := &View{r: r}
	defer func() {
		v.r = nil
		if p := recover(); p != nil {
			err = fmt.Errorf("read panicked: %v", p)
		}
	}()
	return fn(v)
}

// Files returns the files of commit rev, read-only (see TreeFiles).
func (v *View) Files(rev string) (Files, error) {
	c, err := v.commit(rev)
	if err != nil {
		return nil, err
	}
	return TreeFiles(v.r.stor, c.TreeHash), nil
}

// Tip returns the config branch's tip as the clone last saw it (its
// tracking ref, moved by each fetch and push); "" when it has none.
func (v *View) Tip() (string, error) {
	if v.r == nil {
		return "", errViewEnded
	}
	h, err := v.r.trackedTip()
	if err != nil {
		return "", err
	}
	return hashString(h), nil
}

// Commit is a commit as a View reads it.
type Commit struct {
	// Hash is its id; Parents are its parents' ids, in order.
	Hash    string
	Parents []string
	// Message is the whole commit message.
	Message string
	// Committed is the committer time.
	Committed time.Time
}

// Commit reads commit rev.
func (v *View) Commit(rev string) (Commit, error) {
	c, err := v.commit(rev)
	if err != nil {
		return Commit{}, err
	}
	parents := make([]string, len(c.ParentHashes))
	for i, p := range c.ParentHashes {
		parents[i] = p.String()
	}
	return Commit{Hash: c.Hash.String(), Parents: parents, Message: c.Message, Committed: c.Committer.When}, nil
}

// FileID returns the object id of the file name in commit rev, "" when the
// commit has no such file: equal ids are equal contents, so a walk through
// history finds where a file changed without reading it.
func (v *View) FileID(rev, name string) (string, error) {
	parts, err := splitPath(name)
	if err == nil && len(parts) == 0 {
		err = fmt.Errorf("%w: %q", ErrInvalidPath, name)
	}
	if err != nil {
		return "", err
	}
	c, err := v.commit(rev)
	if err != nil {
		return "", err
	}
	h := c.TreeHash
	for i, part := range parts {
		mode, id, err := v.r.treeEntry(h, part)
		if err != nil {
			return "", err
		}
		if last := i == len(parts)-1; id.IsZero() || last != mode.IsFile() {
			return "", nil
		}
		h = id
	}
	return h.String(), nil
}

// treeEntry finds the entry name of tree h in its raw encoding, zero when
// there is none: a folder of 500 apps is searched, not decoded, which
// makes a walk through history three times faster.
func (r *Repo) treeEntry(h plumbing.Hash, name string) (filemode.FileMode, plumbing.Hash, error) {
	obj, err := r.stor.EncodedObject(plumbing.TreeObject, h)
	if err != nil {
		return 0, plumbing.ZeroHash, fmt.Errorf("read tree %s: %w", h, err)
	}
	rd, err := obj.Reader()
	if err != nil {
		return 0, plumbing.ZeroHash, fmt.Errorf("read tree %s: %w", h, err)
	}
	data := make([]byte, obj.Size())
	_, err = io.ReadFull(rd, data)
	if cerr := rd.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, plumbing.ZeroHash, fmt.Errorf("read tree %s: %w", h, err)
	}
	// Each entry is "<octal mode> <name>\x00<20-byte id>".
	for len(data) > 0 {
		sp := bytes.IndexByte(data, ' ')
		nul := bytes.IndexByte(data, 0)
		if sp < 0 || nul < sp || len(data) < nul+1+hashLen {
			return 0, plumbing.ZeroHash, fmt.Errorf("read tree %s: malformed entry", h)
		}
		if string(data[sp+1:nul]) == name {
			mode, err := filemode.New(string(data[:sp]))
			if err != nil {
				return 0, plumbing.ZeroHash, fmt.Errorf("read tree %s: %w", h, err)
			}
			var id plumbing.Hash
			copy(id[:], data[nul+1:nul+1+hashLen])
			return mode, id, nil
		}
		data = data[nul+1+hashLen:]
	}
	return 0, plumbing.ZeroHash, nil
}

// hashLen is the length of an object id in a tree entry (SHA-1).
const hashLen = 20

// commit reads commit rev.
func (v *View) commit(rev string) (*object.Commit, error) {
	if v.r == nil {
		return nil, errViewEnded
	}
	h, err := parseRev(rev)
	if err != nil {
		return nil, err
	}
	return v.r.commitObject(h)
}

// commitObject reads commit h; a missing one is an unknown revision.
func (r *Repo) commitObject(h plumbing.Hash) (*object.Commit, error) {
	c, err := object.GetCommit(r.stor, h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, unknownRevision(h)
	}
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", h, err)
	}
	return c, nil
}

// Clocks disagree: a commit made after another may carry an earlier
// committer time, by up to this much, and still be found by Contains.
const ancestrySkew = time.Hour

// maxWalk bounds the commits one Contains reads. The walk already stops
// at commits older than the one it looks for (less ancestrySkew), so it
// reads 100,000 commits only when that many were made since; then the
// answer is an error rather than a guess.
const maxWalk = 100_000

// errWalkTooLong is returned by Contains when it reached maxWalk.
var errWalkTooLong = promote.NewPermanent("history walk too long")

// Contains reports whether commit is rev or one of its ancestors. It walks
// from rev back, breadth first over every parent (merges included), and
// does not go below commits older than commit's committer time less an
// hour: an ancestor is (clocks aside) never younger than its descendants,
// so the usual question, about a rev a few commits after commit, reads
// those few commits and not the history.
func (v *View) Contains(rev, commit string) (bool, error) {
	if v.r == nil {
		return false, errViewEnded
	}
	tip, err := parseRev(rev)
	if err != nil {
		return false, err
	}
	want, err := parseRev(commit)
	if err != nil {
		return false, err
	}
	if tip == want {
		return true, nil
	}
	target, err := v.r.commitObject(want)
	if err != nil {
		return false, err
	}
	if !v.r.has(tip) {
		return false, unknownRevision(tip)
	}
	cutoff := target.Committer.When.Add(-ancestrySkew)
	queue := []plumbing.Hash{tip}
	seen := map[plumbing.Hash]bool{tip: true}
	for i := 0; i < len(queue); i++ {
		if i == maxWalk {
			return false, fmt.Errorf("%w: %s not found within %d commits of %s", errWalkTooLong, want, maxWalk, tip)
		}
		c, err := object.GetCommit(v.r.stor, queue[i])
		if err != nil {
			return false, fmt.Errorf("read commit %s: %w", queue[i], err)
		}
		if c.Committer.When.Before(cutoff) {
			continue
		}
		for _, p := range c.ParentHashes {
			if p == want {
				return true, nil
			}
			if !seen[p] {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	return false, nil
}
