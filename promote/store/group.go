package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// maxGroup bounds how many write transactions share one commit.
const maxGroup = 64

// groupCommit runs the write transactions of one SQLite database through one
// goroutine that commits them in groups: while a commit waits for its fsync,
// the next transactions queue; they then run together, each inside a
// savepoint of one database transaction, and share one commit and one fsync.
// Each keeps its own outcome: a transaction whose function fails is rolled
// back to its savepoint, and the others commit. A lone transaction is run at
// once, so nothing waits for company.
type groupCommit struct {
	w    *sql.DB
	d    *dialect
	reqs chan *groupReq
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

type groupReq struct {
	ctx  context.Context
	fn   txFunc
	done chan error
}

// errStoreClosed is returned for transactions asked of a closed store.
var errStoreClosed = errors.New("store closed")

func newGroupCommit(w *sql.DB, d *dialect) *groupCommit {
	g := &groupCommit{w: w, d: d, reqs: make(chan *groupReq), stop: make(chan struct{}), done: make(chan struct{})}
	go g.loop()
	return g
}

// run runs fn in a write transaction, committed with those queued with it.
func (g *groupCommit) run(ctx context.Context, fn txFunc) error {
	r := &groupReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case g.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-g.stop:
		return errStoreClosed
	}
	// Once queued, the request is answered whatever ctx does, so that its
	// outcome (committed or not) is never left unknown.
	return <-r.done
}

// close stops the loop once the group in progress is committed.
func (g *groupCommit) close() {
	g.once.Do(func() { close(g.stop) })
	<-g.done
}

func (g *groupCommit) loop() {
	defer close(g.done)
	for {
		var first *groupReq
		select {
		case first = <-g.reqs:
		case <-g.stop:
			return
		}
		group := []*groupReq{first}
	more:
		for len(group) < maxGroup {
			select {
			case r := <-g.reqs:
				group = append(group, r)
			default:
				break more
			}
		}
		g.commit(group)
	}
}

// commit runs a group in one transaction. A lone request runs without a
// savepoint; in a group each runs in its own.
func (g *groupCommit) commit(group []*groupReq) {
	errs := make([]error, len(group))
	err := inTx(context.Background(), g.w, g.d, func(tx *sql.Tx) error {
		if len(group) == 1 {
			r := group[0]
			if errs[0] = r.ctx.Err(); errs[0] == nil {
				errs[0] = r.fn(context.WithoutCancel(r.ctx), tx)
			}
			return errs[0]
		}
		for i, r := range group {
			var err error
			errs[i], err = savepoint(tx, r)
			if err != nil {
				return err // the transaction is unusable: everyone fails
			}
		}
		return nil
	})
	for i, r := range group {
		switch {
		case errs[i] != nil:
			r.done <- errs[i]
		default:
			r.done <- err
		}
	}
}

// savepoint runs one request inside a savepoint of tx: its own error (the
// savepoint rolled back) or, when even that fails, an error that ends tx.
func savepoint(tx *sql.Tx, r *groupReq) (own, fatal error) {
	ctx := context.WithoutCancel(r.ctx)
	if _, err := tx.ExecContext(ctx, `SAVEPOINT g`); err != nil {
		return nil, fmt.Errorf("savepoint: %w", err)
	}
	// A request whose caller gave up before its turn is not run; once it
	// runs, it runs to the end: interrupting a statement would roll back the
	// whole group's transaction.
	if own = r.ctx.Err(); own == nil {
		own = r.fn(ctx, tx)
	}
	if own != nil {
		if _, err := tx.ExecContext(ctx, `ROLLBACK TO g`); err != nil {
			return own, fmt.Errorf("rollback to savepoint: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `RELEASE g`); err != nil {
		return own, fmt.Errorf("release savepoint: %w", err)
	}
	return own, nil
}
