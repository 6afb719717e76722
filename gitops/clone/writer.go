package clone

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"

	"github.com/promotebot/promotebot/gitops/trailer"
	"github.com/promotebot/promotebot/promote"
)

// loop is the writer: the one goroutine that owns the clone. It takes the
// first queued change and everything queued behind it, and runs them as one
// batch; between batches, it answers the reads queued (serveReads).
func (r *Repo) loop() {
	defer close(r.done)
	for {
		if len(r.carried) > 0 {
			// Changes taken up during the last push go first; reads
			// queued meanwhile are answered before them.
			select {
			case <-r.stop:
				r.drain()
				return
			case first := <-r.reads:
				r.serveReads(first)
			default:
			}
			batch := r.carried
			r.carried = nil
			r.run(r.batch(batch))
			continue
		}
		select {
		case first := <-r.reqs:
			r.run(r.batch([]*request{first}))
		case first := <-r.reads:
			r.serveReads(first)
		case <-r.stop:
			r.drain()
			return
		}
	}
}

// batch returns batch and the changes queued behind it.
func (r *Repo) batch(batch []*request) []*request {
	for len(batch) < r.opts.MaxBatch {
		select {
		case req := <-r.reqs:
			batch = append(batch, req)
		default:
			return batch
		}
	}
	return batch
}

func (r *Repo) drain() {
	for _, req := range r.carried {
		req.reply <- reply{err: ErrClosed}
	}
	r.carried = nil
	for {
		select {
		case req := <-r.reqs:
			req.reply <- reply{err: ErrClosed}
		case req := <-r.reads:
			req.reply <- ErrClosed
		default:
			return
		}
	}
}

// pending is one change of a batch that produced a commit in this round.
type pending struct {
	req *request
	res Result
}

// run applies a batch: learn the remote tip from the push session itself
// (fetching only when it moved), apply each edit on top of the previous one,
// push all commits at once; on a lost race, start again from the new tip.
func (r *Repo) run(batch []*request) {
	// Branch pushes go one by one; the rest go together.
	main := batch[:0:0]
	for _, req := range batch {
		if req.branch != "" {
			r.retry([]*request{req})
		} else {
			main = append(main, req)
		}
	}
	if len(main) > 0 {
		r.retry(main)
	}
}

// retry runs rounds for a batch until every request has its answer.
func (r *Repo) retry(batch []*request) {
	ctx, cancel := r.untilStop()
	defer cancel()
	var last error
	delay := r.opts.Backoff
	for attempt := 1; attempt <= r.opts.MaxAttempts; attempt++ {
		if attempt > 1 {
			if !sleep(ctx, jitter(delay)) {
				break
			}
			delay = min(delay*2, 5*time.Second)
		}
		done, err := r.round(ctx, &batch, last)
		if done {
			return
		}
		last = err
		if errors.Is(err, errStale) {
			delay = r.opts.Backoff // a race: retry soon
		}
	}
	if last == nil {
		last = ctx.Err()
	}
	r.replyAll(batch, &RetriesExhaustedError{Attempts: r.opts.MaxAttempts, Last: last})
}

// untilStop returns a context that ends with Close, and its cancel.
func (r *Repo) untilStop() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-r.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// round is one attempt at a batch. It returns done once every request in the
// batch has its answer; otherwise the error to retry on. The batch shrinks to
// the requests still waiting.
func (r *Repo) round(ctx context.Context, batch *[]*request, last error) (bool, error) {
	if len(*batch) == 1 && (*batch)[0].branch != "" {
		return r.branchRound(ctx, (*batch)[0])
	}
	s, err := r.openSession(ctx)
	if err != nil {
		return r.failIfPermanent(*batch, err)
	}
	defer func() {
		if cerr := s.close(); cerr != nil {
			r.opts.Logger.Debug("close push session", "err", redact(cerr, r.opts.URL, r.opts.Auth))
		}
	}()
	known, err := r.trackedTip()
	if err != nil {
		// An unreadable tracking ref (a crash while it was written): fetch.
		r.opts.Logger.Warn("read tracking ref", "err", err)
		known = plumbing.ZeroHash
	}
	tip := s.tip(r.ref)
	var rejected *PushRejectedError
	if errors.As(last, &rejected) && tip == known {
		r.replyAll(*batch, promote.Permanent(rejected)) // refused with the remote unchanged
		return true, nil
	}
	if tip != known {
		if known, err = r.fetch(ctx); err != nil {
			return r.failIfPermanent(*batch, err)
		}
	}
	*batch = live(*batch)
	st := newStaged(r.stor)
	commits, newTip, objects := r.applyAll(st, *batch, known)
	// Failed and unchanged edits were answered; only commits go round again.
	*batch = (*batch)[:0]
	for _, p := range commits {
		*batch = append(*batch, p.req)
	}
	if len(commits) == 0 {
		return true, nil
	}
	start := time.Now()
	pack, err := encodePack(st, objects)
	if err != nil {
		r.replyAll(*batch, err)
		return true, nil
	}
	stopEarly := r.speculateWhilePushing(st, newTip)
	err = s.push(ctx, r.ref, known, newTip, pack)
	stopEarly()
	if err != nil {
		r.opts.Logger.Info("push config repo", "commits", len(commits), "err", redact(err, r.opts.URL, r.opts.Auth))
		return r.failIfPermanent(*batch, err)
	}
	r.pushed(commits, newTip, len(objects), time.Since(start))
	r.tokenForgotten = false
	if r.opts.ObservePush != nil {
		r.opts.ObservePush(time.Since(start))
	}
	// The push made the changes durable and their callers have their answers;
	// keeping a local copy of the objects is for the next round.
	start = time.Now()
	if err := st.commit(pack); err != nil {
		r.opts.Logger.Warn("store pushed objects", "err", err)
		newTip = plumbing.ZeroHash // the next round fetches them instead
	}
	r.track(newTip, time.Since(start))
	if err := r.consolidate(); err != nil {
		// The clone still works, only slower: say so and carry on.
		r.opts.Logger.Warn("merge packs", "err", err)
	}
	return true, nil
}

// openSession opens a push session with the credentials of the moment.
func (r *Repo) openSession(ctx context.Context) (*session, error) {
	auth, err := r.authFor(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return openSession(ctx, r.ep, auth)
}

// failIfPermanent answers the batch with err when retrying cannot help. A
// token refused before its time gets one more try, with a new token.
func (r *Repo) failIfPermanent(batch []*request, err error) (bool, error) {
	if r.retryWithNewToken(err) {
		return false, err
	}
	if promote.IsPermanent(err) {
		r.replyAll(batch, err)
		return true, nil
	}
	return false, err
}

// retryWithNewToken tells Auth.Forget of the token a 401 refused, once
// until a round succeeds again, and reports whether it did.
func (r *Repo) retryWithNewToken(err error) bool {
	a := r.opts.Auth
	if r.tokenForgotten || a.Forget == nil || !a.usesToken(r.ep) || !errors.Is(err, transport.ErrAuthenticationRequired) {
		return false
	}
	tok := a.handedOut.latest()
	if tok == "" {
		return false
	}
	r.opts.Logger.Warn("the git server refused the token; trying once more with a new one")
	r.tokenForgotten = true
	a.Forget(tok)
	return true
}

func (r *Repo) trackedTip() (plumbing.Hash, error) {
	ref, err := r.stor.Reference(r.trackRef)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return plumbing.ZeroHash, nil
	}
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("read %s: %w", r.trackRef, err)
	}
	return ref.Hash(), nil
}

// live drops the requests whose caller has given up.
func live(batch []*request) []*request {
	out := batch[:0]
	for _, req := range batch {
		if err := req.ctx.Err(); err != nil {
			req.reply <- reply{err: err}
			continue
		}
		out = append(out, req)
	}
	return out
}

// applyAll runs each edit on top of the previous commit. An edit that fails
// gets its error now; one that changes nothing on the remote's tip gets its
// result now; the others (commits, and edits that change nothing only on top
// of an earlier commit of the batch) wait for the push.
//
// With more than one edit to run, they first run concurrently on the tip
// (speculate); an edit that read nothing the earlier ones changed has its
// changes replayed instead of running again. The result is the same as
// running each in turn.
func (r *Repo) applyAll(st *staged, batch []*request, tip plumbing.Hash) ([]pending, plumbing.Hash, []plumbing.Hash) {
	base := tip
	baseTree, err := r.treeOf(tip)
	if err != nil {
		for _, req := range batch {
			req.reply <- reply{err: err}
		}
		return nil, base, nil
	}
	// The edits to run: those whose change did not land already.
	run := make([]*request, len(batch))
	n := 0
	for i, req := range batch {
		if req.once != nil {
			if c, found, lerr := r.landed(tip, *req.once); lerr != nil || found {
				req.reply <- reply{res: Result{Base: hashString(c), Landed: found}, err: lerr}
				continue
			}
		}
		run[i] = req
		n++
	}
	// Edits run during the last push on this very tree need not run again.
	guesses := make([]*guess, len(run))
	fresh := make([]*request, len(run))
	early := 0
	for i, req := range run {
		switch {
		case req == nil:
		case req.early != nil && req.early.tree == baseTree:
			guesses[i] = req.early.guess
			early++
		default:
			fresh[i] = req
		}
	}
	start := time.Now()
	if n-early > 1 && runtime.GOMAXPROCS(0) > 1 {
		for i, g := range speculate(st, baseTree, fresh) {
			if fresh[i] != nil {
				guesses[i] = g
			}
		}
	}
	speculated := time.Since(start)
	replayed := 0
	defer func() {
		r.opts.Logger.Debug("applied batch", "edits", n, "early", early, "replayed", replayed,
			"speculate", speculated, "took", time.Since(start))
	}()
	var changed changedPaths
	var commits []pending
	var objects []plumbing.Hash
	for i, req := range run {
		if req == nil {
			continue
		}
		t := newTree(st, baseTree)
		var out Outcome
		var eerr error
		if g := guessFor(guesses, i); g != nil && g.err == nil && !changed.overlaps(g.touched) && replay(t, g.ops) {
			out = g.out
			changed.add(g.ops)
			replayed++
		} else {
			t = newTree(st, baseTree) // a failed replay may have changed it
			rec := &recorder{f: t}
			out, eerr = runEdit(req.edit, rec)
			changed.add(rec.ops)
		}
		if eerr != nil {
			req.reply <- reply{err: eerr}
			continue
		}
		treeHash, written, werr := t.write()
		if werr != nil {
			req.reply <- reply{err: fmt.Errorf("write tree: %w", werr)}
			continue
		}
		if treeHash == baseTree {
			res := Result{Outcome: out, Base: hashString(base)}
			if base == tip {
				req.reply <- reply{res: res}
				continue
			}
			// Nothing to change only thanks to a commit of this batch: the
			// answer waits for that commit's push, and goes round again
			// with the batch if the push fails.
			commits = append(commits, pending{req: req, res: res})
			continue
		}
		c, cerr := newCommit(st, r.opts.Author, r.opts.SignKey, r.opts.Now(), treeHash, base, out.Message())
		if cerr != nil {
			req.reply <- reply{err: cerr}
			continue
		}
		objects = append(append(objects, written...), c)
		commits = append(commits, pending{req: req, res: Result{Outcome: out, Commit: c.String(), Changed: true, Base: hashString(base)}})
		base, baseTree = c, treeHash
	}
	return commits, base, objects
}

// guessFor returns the speculative run of the i-th edit, if there was one.
func guessFor(guesses []*guess, i int) *guess {
	if i < len(guesses) {
		return guesses[i]
	}
	return nil
}

// landed looks for the change once names on the first-parent history of
// tip, newest first, back to once.Since (less onceSlack) or to the newest
// commit carrying once.NotBefore, whichever comes first. Commits of the
// batch being built need no look: a change asked for once at a time cannot
// be among them.
func (r *Repo) landed(tip plumbing.Hash, once Once) (plumbing.Hash, bool, error) {
	since := once.Since.Add(-onceSlack)
	for h := tip; !h.IsZero(); {
		c, err := r.repo.CommitObject(h)
		if err != nil {
			return plumbing.ZeroHash, false, fmt.Errorf("read history at %s: %w", h, err)
		}
		if c.Committer.When.Before(since) {
			break
		}
		have := trailer.Parse(c.Message)
		if hasTrailers(have, once.Trailers) {
			return h, true, nil
		}
		if len(once.NotBefore) > 0 && hasTrailers(have, once.NotBefore) {
			break
		}
		if len(c.ParentHashes) == 0 {
			break
		}
		h = c.ParentHashes[0]
	}
	return plumbing.ZeroHash, false, nil
}

// hasTrailers tells whether have holds every trailer of want.
func hasTrailers(have, want []trailer.Trailer) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			if h.Key == w.Key && h.Value == w.Value {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// runEdit calls an edit, turning a panic into an error so that one bad edit
// cannot take the writer, and every change queued behind it, down.
func runEdit(edit Edit, f Files) (out Outcome, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("edit panicked: %v", p)
		}
	}()
	return edit(f)
}

func (r *Repo) treeOf(commit plumbing.Hash) (plumbing.Hash, error) {
	if commit.IsZero() {
		return plumbing.ZeroHash, nil
	}
	c, err := r.repo.CommitObject(commit)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("read commit %s: %w", commit, err)
	}
	return c.TreeHash, nil
}

func (r *Repo) pushed(commits []pending, tip plumbing.Hash, objects int, took time.Duration) {
	r.opts.Logger.Info("pushed config repo", "changes", len(commits), "objects", objects,
		"tip", tip.String()[:12], "took", took)
	for _, p := range commits {
		p.req.reply <- reply{res: p.res}
	}
}

// track moves the tracking ref to what was pushed; zero forgets it, so that
// the next round fetches.
func (r *Repo) track(tip plumbing.Hash, stored time.Duration) {
	var err error
	if tip.IsZero() {
		err = r.stor.RemoveReference(r.trackRef)
	} else {
		err = r.stor.SetReference(plumbing.NewHashReference(r.trackRef, tip))
	}
	if err != nil {
		// The push happened; the next fetch repairs the tracking ref.
		r.opts.Logger.Warn("update tracking ref", "err", err)
	}
	r.opts.Logger.Debug("stored pushed objects", "took", stored)
}

func (r *Repo) replyAll(batch []*request, err error) {
	err = redact(err, r.opts.URL, r.opts.Auth)
	for _, req := range batch {
		req.reply <- reply{err: err}
	}
}

func hashString(h plumbing.Hash) string {
	if h.IsZero() {
		return ""
	}
	return h.String()
}

// branchRound applies one edit on the config branch's tip and pushes the
// commit to the request's own branch, replacing what that branch held.
func (r *Repo) branchRound(ctx context.Context, req *request) (bool, error) {
	batch := []*request{req}
	s, err := r.openSession(ctx)
	if err != nil {
		return r.failIfPermanent(batch, err)
	}
	defer func() {
		if cerr := s.close(); cerr != nil {
			r.opts.Logger.Debug("close push session", "err", redact(cerr, r.opts.URL, r.opts.Auth))
		}
	}()
	known, err := r.trackedTip()
	if err != nil || s.tip(r.ref) != known {
		if known, err = r.fetch(ctx); err != nil {
			return r.failIfPermanent(batch, err)
		}
	}
	if err := req.ctx.Err(); err != nil {
		req.reply <- reply{err: err}
		return true, nil
	}
	st := newStaged(r.stor)
	commits, newTip, objects := r.applyAll(st, batch, known)
	if len(commits) == 0 {
		return true, nil // answered: failed, or nothing to change
	}
	ref := plumbing.NewBranchReferenceName(req.branch)
	old := s.tip(ref)
	pack, err := encodePack(st, objects)
	if err != nil {
		r.replyAll(batch, err)
		return true, nil
	}
	if err := s.push(ctx, ref, old, newTip, pack); err != nil {
		r.opts.Logger.Info("push branch", "branch", req.branch, "err", redact(err, r.opts.URL, r.opts.Auth))
		return r.failIfPermanent(batch, err)
	}
	r.pushed(commits, newTip, len(objects), 0)
	r.tokenForgotten = false
	if err := st.commit(pack); err != nil {
		r.opts.Logger.Warn("store pushed objects", "err", err)
	}
	return true, nil
}
