package clone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/promotebot/promotebot/gitops/trailer"
)

// Options configures a Repo.
type Options struct {
	// URL is the remote: https://, ssh://, scp-like user@host:path, file:// or a local path.
	URL string
	// Branch is the one branch the bot reads and writes (default "main").
	Branch string
	// Dir is where the persistent bare clone lives (inside the data dir).
	Dir string
	// Auth holds the remote's credentials.
	Auth Auth
	// Author is the author and committer of every commit.
	Author Signature
	// SignKey, when set, signs every commit (OpenPGP).
	SignKey *openpgp.Entity
	// MaxAttempts bounds fetch-apply-push rounds for one batch (default 8).
	MaxAttempts int
	// Backoff is the first retry delay, doubled each time up to 5 s (default 50 ms).
	Backoff time.Duration
	// MaxBatch bounds how many queued changes go out in one push (default 256).
	MaxBatch int
	// MaxPacks is how many packs the clone may hold before the small ones are
	// merged (default 50): each push and each fetch adds one.
	MaxPacks int
	// Logger receives structured logs (default: discard).
	Logger *slog.Logger
	// ObservePush, when set, is told how long each successful push took
	// (for a latency histogram).
	ObservePush func(time.Duration)
	// Now returns the commit time (default time.Now).
	Now func() time.Time
}

// Result is what became of one change.
type Result struct {
	Outcome
	// Commit is the new commit's id; empty when nothing changed.
	Commit string
	// Changed is false when the edit left every file as it was.
	Changed bool
	// Base is the commit the edit ran on: when nothing changed, the commit
	// whose files already were what the edit wanted.
	Base string
	// Landed is set when ApplyOnce found the change on the branch already:
	// the edit did not run, and Base is the commit that made it.
	Landed bool
}

// ErrClosed is returned by Apply after Close.
var ErrClosed = errors.New("config repo closed")

// RetriesExhaustedError means a batch could not be pushed within MaxAttempts
// rounds; Last is the final round's error. Callers may try again later.
type RetriesExhaustedError struct {
	Attempts int
	Last     error
}

func (e *RetriesExhaustedError) Error() string {
	return fmt.Sprintf("gave up after %d attempts: %v", e.Attempts, e.Last)
}

func (e *RetriesExhaustedError) Unwrap() error { return e.Last }

// Repo is the bot's clone of the config repository. Every change goes through
// Apply, every read through Read; one goroutine owns the clone (go-git
// repositories are not safe for concurrent use), pushes queued changes
// together and answers reads between them.
type Repo struct {
	opts     Options
	ep       *transport.Endpoint
	auth     transport.AuthMethod // nil when the token comes per connection: see authFor
	repo     *git.Repository
	stor     *filesystem.Storage
	ref      plumbing.ReferenceName // refs/heads/<branch> on the remote
	trackRef plumbing.ReferenceName // refs/remotes/origin/<branch> here
	reqs     chan *request
	reads    chan *readRequest
	// missed holds when a fetch last failed to bring a commit a read
	// named (writer goroutine): see refetchAfter.
	missed map[plumbing.Hash]time.Time
	// tokenForgotten is set once a refused token was forgotten, until a
	// push succeeds: a second refusal is then terminal (writer goroutine).
	tokenForgotten bool
	// carried holds the changes taken from reqs while a push was under way
	// (speculateWhilePushing), in order, for the next batch (writer
	// goroutine).
	carried []*request
	stop    chan struct{}
	done    chan struct{}
	closed  chan struct{}
}

type request struct {
	ctx   context.Context
	edit  Edit
	reply chan reply
	// branch, when set, is where the commit goes instead of the config
	// branch: a branch of its own, created or moved (ApplyToBranch).
	branch string
	// once, when set, makes the change a no-op if it landed already
	// (ApplyOnce).
	once *Once
	// early is the edit's run on the tree of a commit being pushed when
	// the change arrived, nil if there was none (speculateWhilePushing).
	early *earlyGuess
}

type reply struct {
	res Result
	err error
}

// Open opens the persistent clone in opts.Dir, cloning the remote first when
// there is none, fetches the branch and starts the writer.
func Open(ctx context.Context, opts Options) (*Repo, error) {
	opts = withDefaults(opts)
	ep, err := transport.NewEndpoint(opts.URL)
	if err != nil {
		return nil, redact(fmt.Errorf("config repo url: %w", err), opts.URL, opts.Auth)
	}
	auth, err := opts.Auth.method(ep)
	if err != nil {
		return nil, redact(err, opts.URL, opts.Auth)
	}
	r := &Repo{
		opts: opts, ep: ep, auth: auth,
		ref:      plumbing.NewBranchReferenceName(opts.Branch),
		trackRef: plumbing.NewRemoteReferenceName("origin", opts.Branch),
		reqs:     make(chan *request, opts.MaxBatch),
		reads:    make(chan *readRequest, opts.MaxBatch),
		missed:   map[plumbing.Hash]time.Time{},
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		closed:   make(chan struct{}),
	}
	if err := r.open(); err != nil {
		return nil, redact(err, opts.URL, opts.Auth)
	}
	if _, err := r.fetch(ctx); err != nil {
		r.closeStorage()
		return nil, redact(err, opts.URL, opts.Auth)
	}
	go r.loop()
	return r, nil
}

func withDefaults(o Options) Options {
	if o.Branch == "" {
		o.Branch = "main"
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.Backoff <= 0 {
		o.Backoff = 50 * time.Millisecond
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.MaxPacks <= 0 {
		o.MaxPacks = 50
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Author.Name == "" {
		o.Author.Name = "promotebot"
	}
	if o.Author.Email == "" {
		o.Author.Email = "promotebot@localhost"
	}
	o.Auth = o.Auth.withTokenLog()
	return o
}

// open opens or creates the bare clone. A fresh clone only needs the remote
// configured: the first fetch brings the full history of the one branch.
func (r *Repo) open() error {
	if err := os.MkdirAll(r.opts.Dir, 0o750); err != nil {
		return fmt.Errorf("config repo dir: %w", err)
	}
	removed, err := repairPacks(r.opts.Dir)
	if err != nil {
		return err
	}
	if _, err := repairRefs(r.opts.Dir); err != nil {
		return err
	}
	// A small object cache: the writer touches a handful of trees per change.
	r.stor = filesystem.NewStorageWithOptions(osfs.New(r.opts.Dir),
		cache.NewObjectLRU(8*cache.MiByte), filesystem.Options{KeepDescriptors: true})
	fs := &fetchStorage{Storage: r.stor, dir: r.opts.Dir}
	repo, err := git.Open(fs, nil)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.Init(fs, nil)
	}
	if err != nil {
		return fmt.Errorf("open config repo clone in %s: %w", r.opts.Dir, err)
	}
	r.repo = repo
	cfg, err := repo.Config()
	if err != nil {
		return fmt.Errorf("read clone config: %w", err)
	}
	cfg.Remotes["origin"] = &config.RemoteConfig{
		Name:  "origin",
		URLs:  []string{RedactURL(r.opts.URL)},
		Fetch: []config.RefSpec{config.RefSpec(fmt.Sprintf("+%s:%s", r.ref, r.trackRef))},
	}
	if err := repo.SetConfig(cfg); err != nil {
		return fmt.Errorf("write clone config: %w", err)
	}
	if removed {
		// The tracking ref may name objects that went with a damaged pack:
		// without it, the next fetch brings the whole branch again.
		r.opts.Logger.Warn("removed a damaged pack from the clone; fetching the branch afresh", "dir", r.opts.Dir)
		if err := r.stor.RemoveReference(r.trackRef); err != nil {
			return fmt.Errorf("repair clone: %w", err)
		}
	}
	return nil
}

func (r *Repo) closeStorage() {
	if err := r.stor.Close(); err != nil {
		r.opts.Logger.Warn("close config repo storage", "err", err)
	}
}

// Close stops the writer after the batch in flight and releases the clone.
// Changes still queued fail with ErrClosed.
func (r *Repo) Close() error {
	select {
	case <-r.closed:
		return nil
	default:
	}
	close(r.closed)
	close(r.stop)
	<-r.done
	return r.stor.Close()
}

// Dir returns the directory of the persistent clone.
func (r *Repo) Dir() string { return filepath.Clean(r.opts.Dir) }

// Apply runs edit on the tip of the remote branch, checks, commits and pushes
// it, retrying on a newer tip when another writer pushed first. Changes queued
// while a push is in flight go out together, one commit each, in one push.
//
// A change whose ctx ends before it is applied is dropped. If ctx ends while
// its push is in flight, Apply returns ctx's error although the change may
// have landed: applying the same edit again is then a no-op, which is how
// callers that must know make sure.
func (r *Repo) Apply(ctx context.Context, edit Edit) (Result, error) {
	return r.send(ctx, &request{ctx: ctx, edit: edit, reply: make(chan reply, 1)})
}

// ApplyToBranch runs edit on the tip of the config branch and pushes the
// commit to branch instead (a pull request's head), creating it or moving it
// there whatever it held before: each call rebuilds the branch on the current
// tip. An edit that changes nothing pushes nothing (Result.Changed false).
func (r *Repo) ApplyToBranch(ctx context.Context, branch string, edit Edit) (Result, error) {
	ref := plumbing.NewBranchReferenceName(branch)
	if err := ref.Validate(); err != nil || branch == "" || ref == r.ref {
		return Result{}, fmt.Errorf("%w: branch %q", ErrInvalidPath, branch)
	}
	return r.send(ctx, &request{ctx: ctx, edit: edit, reply: make(chan reply, 1), branch: branch})
}

// Once names a change that must land at most once, however often it is
// asked for: a commit on the config branch whose trailers hold every one of
// Trailers is that change. Since bounds the search: the change cannot have
// landed before it (the search goes back a few minutes further, for clocks
// that disagree).
type Once struct {
	Trailers []trailer.Trailer
	Since    time.Time
	// NotBefore, when set, bounds the search further: the change cannot
	// be older than a commit whose trailers hold every one of NotBefore,
	// so the search ends at the newest such commit. It tells apart two
	// changes with the same Trailers asked for within minutes of each
	// other, when something they both follow happened between them (a QA
	// environment torn down, deployed again by a new build, and torn down
	// again: the second teardown follows that build's deploy).
	NotBefore []trailer.Trailer
}

// onceSlack is how much earlier than Once.Since the search goes.
const onceSlack = 10 * time.Minute

// ApplyOnce is Apply for a change that must land at most once although the
// config branch moves on between attempts: when a commit after once.Since
// (and after the newest commit carrying once.NotBefore) already carries
// once.Trailers (an earlier attempt pushed it, and the caller crashed
// before it could record that), the edit does not run and the Result names
// that commit as Base, with Landed set and Changed false. Without this, a
// retry would apply the edit again on top of later changes, undoing them.
func (r *Repo) ApplyOnce(ctx context.Context, once Once, edit Edit) (Result, error) {
	if len(once.Trailers) == 0 {
		return Result{}, errors.New("ApplyOnce: no trailers name the change")
	}
	return r.send(ctx, &request{ctx: ctx, edit: edit, reply: make(chan reply, 1), once: &once})
}

func (r *Repo) send(ctx context.Context, req *request) (Result, error) {
	select {
	case <-r.closed:
		return Result{}, ErrClosed
	default:
	}
	select {
	case r.reqs <- req:
	case <-r.closed:
		return Result{}, ErrClosed
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	select {
	case rep := <-req.reply:
		return rep.res, rep.err
	case <-r.done:
		// The writer stopped; it may have answered just before.
		select {
		case rep := <-req.reply:
			return rep.res, rep.err
		default:
			return Result{}, ErrClosed
		}
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// authFor returns the auth method for the next connection: the one made at
// Open, or, with Auth.Token on an https remote, one holding the token Token
// gives now (it may have been refreshed since the last connection).
func (r *Repo) authFor(ctx context.Context) (transport.AuthMethod, error) {
	if !r.opts.Auth.usesToken(r.ep) {
		return r.auth, nil
	}
	return r.opts.Auth.tokenMethod(ctx)
}

// fetch brings the branch up to date and returns its tip (zero for a remote
// without the branch yet).
func (r *Repo) fetch(ctx context.Context) (plumbing.Hash, error) {
	auth, err := r.authFor(ctx)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("fetch %s: %w", r.opts.Branch, err)
	}
	err = r.repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin",
		RemoteURL:  r.opts.URL,
		RefSpecs:   []config.RefSpec{config.RefSpec(fmt.Sprintf("+%s:%s", r.ref, r.trackRef))},
		Auth:       auth,
		Tags:       git.NoTags,
	})
	switch {
	case err == nil, errors.Is(err, git.NoErrAlreadyUpToDate):
	case errors.Is(err, transport.ErrEmptyRemoteRepository), isNoMatchingRef(err):
		return plumbing.ZeroHash, nil
	default:
		return plumbing.ZeroHash, fmt.Errorf("fetch %s: %w", r.opts.Branch, refused(err))
	}
	return r.trackedTip()
}

func isNoMatchingRef(err error) bool {
	var e git.NoMatchingRefSpecError
	return errors.As(err, &e)
}

func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
