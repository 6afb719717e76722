// Package history reads the config repository's history as an auditor does:
// one change per commit with promotebot's trailers, one per project for a
// commit without them that changed production, with signatures checked
// when asked; and judges it (Check): who approved and promoted what, and
// which production changes did not go through the bot.
package history

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/gitops/trailer"
)

// Change is one change of the config repository's history as an auditor
// reads it: a commit with promotebot's trailers, or a commit without them
// that changed a project's production overlay (one Change per project it
// touched). The JSON names are the audit command's output contract.
type Change struct {
	// Commit is the full commit hash.
	Commit string `json:"commit"`
	// Time is the committer time, in UTC.
	Time time.Time `json:"time"`
	// Author and Committer are "Name <email>".
	Author    string `json:"author"`
	Committer string `json:"committer"`
	// Subject is the message's first line.
	Subject string `json:"subject"`
	// Project is the Promotebot-Project trailer, or for a change without
	// trailers the project whose folder it touched (Options.ProjectPaths,
	// else the folder's last element).
	Project string `json:"project"`
	// Environment is "production" or "qa/<env>".
	Environment string `json:"environment"`
	// Image, Build and Source are the Promotebot-Image, -Build and -Source
	// trailers.
	Image  string `json:"image"`
	Build  string `json:"build"`
	Source string `json:"source"`
	// Approvals are the well-formed Approved-by trailers, in message order.
	Approvals []ApprovedBy `json:"approvals"`
	// PromotedBy is the Promoted-by trailer.
	PromotedBy SlackUser `json:"promotedBy"`
	// BuildAuthor is who wrote the build, as CI reported it
	// (Promotebot-Author); empty when the commit does not say.
	BuildAuthor string `json:"buildAuthor"`
	// RequiredApprovals is the project's policy when the change was made
	// (Promotebot-Required-Approvals), or -1 when the commit does not say.
	RequiredApprovals int `json:"requiredApprovals"`
	// PR is the pull request the change was merged through: the URL of a
	// "Merges <url>." line, or "#N" from GitHub's "Merge pull request #N".
	PR string `json:"pr"`
	// Signed tells whether the commit carries a signature (of any kind).
	Signed bool `json:"signed"`
	// Signature, when Options.KeyRing is set, is "good <key id>",
	// "none" or "bad"; otherwise empty.
	Signature string `json:"signature"`
	// Trailers tells whether the commit carries promotebot's trailers
	// (its own, or for a merge, those of the branch it merged).
	Trailers bool `json:"trailers"`
	// BotMade tells whether it carries a Promotebot-Build trailer, which
	// only the bot writes.
	BotMade bool `json:"botMade"`
	// Root is set for the repository's first commit.
	Root bool `json:"root"`
	// Paths, for a change without trailers, lists the production overlay
	// files it changed.
	Paths []string `json:"paths"`
	// Malformed lists the trailers that could not be read ("Key: value"):
	// they count for nothing.
	Malformed []string `json:"malformed"`
}

// ApprovedBy is one Approved-by trailer: "<Name> <slack:U…> <RFC 3339 time>".
type ApprovedBy struct {
	Name    string    `json:"name"`
	SlackID string    `json:"slackId"`
	At      time.Time `json:"at"`
}

// SlackUser is a person named in a trailer: "<Name> <slack:U…>".
type SlackUser struct {
	Name    string `json:"name"`
	SlackID string `json:"slackId"`
}

// String formats the person as the trailers do.
func (u SlackUser) String() string {
	if u.SlackID == "" {
		return u.Name
	}
	return trailer.Person(u.Name, u.SlackID)
}

// Options selects what Read reads and returns.
type Options struct {
	// Branch is the branch whose first-parent history is read (default "main").
	Branch string
	// Auth holds the credentials for a remote src.
	Auth clone.Auth
	// Project, when set, keeps only that project's changes.
	Project string
	// Env, when set, keeps only that environment: "production", "qa/<env>",
	// or a prefix ending in "/" ("qa/"); "qa" means "qa/".
	Env string
	// Since and Until, when set, keep the changes committed in [Since, Until].
	Since, Until time.Time
	// ProjectPaths maps a project's folder ("apps/hello") to its id, to name
	// the project of a production change without trailers.
	ProjectPaths map[string]string
	// KeyRing, when set, is an armored OpenPGP key ring: every change's
	// commit signature is checked against it (Change.Signature).
	KeyRing string
}

// Matches tells whether c passes the Project, Env, Since and Until filters.
func (o Options) Matches(c Change) bool {
	return o.matchesTime(c.Time) && (o.Project == "" || c.Project == o.Project) && o.matchesEnv(c.Environment)
}

func (o Options) matchesTime(t time.Time) bool {
	return (o.Since.IsZero() || !t.Before(o.Since)) && (o.Until.IsZero() || !t.After(o.Until))
}

func (o Options) matchesEnv(env string) bool {
	want := o.Env
	if want == "qa" {
		want = "qa/"
	}
	if strings.HasSuffix(want, "/") {
		return strings.HasPrefix(env, want)
	}
	return want == "" || env == want
}

// Read returns the changes on the first-parent history of
// opts.Branch, newest first. src is a repository on disk (bare or with a
// work tree, or a file:// URL of one), read in place, or a remote URL, cloned
// (bare, one branch) into a temporary directory that is removed afterwards.
//
// Only commits without promotebot trailers are diffed against their first
// parent, to find the production overlays they changed; the others are
// known from their trailers alone.
func Read(ctx context.Context, src string, opts Options) (_ []Change, err error) {
	if opts.Branch == "" {
		opts.Branch = "main"
	}
	if opts.KeyRing != "" {
		if _, err := openpgp.ReadArmoredKeyRing(strings.NewReader(opts.KeyRing)); err != nil {
			return nil, fmt.Errorf("key ring: %w", err)
		}
	}
	dir, cleanup, err := clone.ForReading(ctx, src, opts.Branch, opts.Auth)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, cleanup()) }()
	stor, repo, err := openForReading(dir)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, stor.Close()) }()
	ref, err := repo.Reference(plumbing.NewBranchReferenceName(opts.Branch), true)
	if err != nil {
		return nil, fmt.Errorf("branch %s of %s: %w", opts.Branch, clone.RedactURL(src), err)
	}
	w := &historyWalker{stor: stor, opts: opts}
	return w.walk(ctx, ref.Hash())
}

// openForReading opens the repository in dir (its .git when it has one)
// with the pack files kept open: a history walk reads thousands of objects.
func openForReading(dir string) (*filesystem.Storage, *git.Repository, error) {
	if st, err := os.Stat(filepath.Join(dir, ".git")); err == nil && st.IsDir() {
		dir = filepath.Join(dir, ".git")
	}
	stor := filesystem.NewStorageWithOptions(osfs.New(dir), cache.NewObjectLRUDefault(),
		filesystem.Options{KeepDescriptors: true})
	repo, err := git.Open(stor, nil)
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("open %s: %w", dir, err), stor.Close())
	}
	return stor, repo, nil
}

type historyWalker struct {
	stor *filesystem.Storage
	opts Options
}

// walk follows first parents from tip to the root.
func (w *historyWalker) walk(ctx context.Context, tip plumbing.Hash) ([]Change, error) {
	var changes []Change
	for h, n := tip, 0; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		c, err := object.GetCommit(w.stor, h)
		if err != nil {
			return nil, fmt.Errorf("read commit %s: %w", h, err)
		}
		found, err := w.changesOf(c)
		if err != nil {
			return nil, err
		}
		changes = append(changes, found...)
		if len(c.ParentHashes) == 0 {
			return changes, nil
		}
		h = c.ParentHashes[0]
	}
}

// changesOf returns what one commit of the first-parent line did, filtered.
func (w *historyWalker) changesOf(c *object.Commit) ([]Change, error) {
	at := c.Committer.When.UTC()
	if !w.opts.matchesTime(at) {
		return nil, nil
	}
	base := Change{
		Commit:    c.Hash.String(),
		Time:      at,
		Author:    identity(c.Author),
		Committer: identity(c.Committer),
		Subject:   subject(c.Message),
		PR:        pullRequest(c.Message),
		Signed:    c.PGPSignature != "",
		Root:      len(c.ParentHashes) == 0,
	}
	m := readMeta(trailer.Parse(c.Message))
	if !m.trailers && len(c.ParentHashes) > 1 {
		// A promotion pull request merged by a person on GitHub: the merge
		// has GitHub's message; the trailers are on the branch it merged.
		head, err := object.GetCommit(w.stor, c.ParentHashes[1])
		if err != nil {
			return nil, fmt.Errorf("read commit %s: %w", c.ParentHashes[1], err)
		}
		if hm := readMeta(trailer.Parse(head.Message)); hm.trailers && hm.env == trailer.Production {
			m = hm
		}
	}
	if m.trailers {
		m.fill(&base)
		if !w.opts.Matches(base) {
			return nil, nil
		}
		return []Change{w.verified(c, base)}, nil
	}
	if !w.opts.matchesEnv(trailer.Production) {
		return nil, nil
	}
	return w.humanChanges(c, base)
}

// humanChanges returns one Change per project whose production overlay a
// commit without trailers changed.
func (w *historyWalker) humanChanges(c *object.Commit, base Change) ([]Change, error) {
	var parentTree plumbing.Hash
	if len(c.ParentHashes) > 0 {
		p, err := object.GetCommit(w.stor, c.ParentHashes[0])
		if err != nil {
			return nil, fmt.Errorf("read commit %s: %w", c.ParentHashes[0], err)
		}
		parentTree = p.TreeHash
	}
	var paths []string
	if err := w.diffTrees(parentTree, c.TreeHash, "", &paths); err != nil {
		return nil, fmt.Errorf("diff %s: %w", c.Hash, err)
	}
	byProject := map[string][]string{}
	var order []string
	for _, p := range paths {
		dir, _ := productionPath(p)
		id := w.opts.ProjectPaths[dir]
		if id == "" {
			id = path.Base(dir)
		}
		if _, ok := byProject[id]; !ok {
			order = append(order, id)
		}
		byProject[id] = append(byProject[id], p)
	}
	var changes []Change
	for _, id := range order {
		ch := base
		ch.Project, ch.Environment, ch.Paths = id, trailer.Production, byProject[id]
		if w.opts.Matches(ch) {
			changes = append(changes, w.verified(c, ch))
		}
	}
	return changes, nil
}

// verified sets the change's Signature when a key ring was given.
func (w *historyWalker) verified(c *object.Commit, ch Change) Change {
	switch {
	case w.opts.KeyRing == "":
	case c.PGPSignature == "":
		ch.Signature = "none"
	default:
		e, err := c.Verify(w.opts.KeyRing)
		if err != nil {
			ch.Signature = "bad"
		} else {
			ch.Signature = "good " + e.PrimaryKey.KeyIdString()
		}
	}
	return ch
}

// diffTrees appends to out the production overlay files (productionPath)
// that differ between trees a and b (either may be zero: empty). Subtrees
// with equal hashes are skipped, and below an "overlays" folder only
// "production" is looked into.
func (w *historyWalker) diffTrees(a, b plumbing.Hash, prefix string, out *[]string) error {
	ea, err := w.entries(a)
	if err != nil {
		return err
	}
	eb, err := w.entries(b)
	if err != nil {
		return err
	}
	inOverlays := path.Base(prefix) == "overlays" && strings.Contains(prefix, "/")
	names := make([]string, 0, len(ea)+len(eb))
	for n := range ea {
		names = append(names, n)
	}
	for n := range eb {
		if _, ok := ea[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		if inOverlays && name != "production" {
			continue
		}
		x, y := ea[name], eb[name]
		if x == y {
			continue
		}
		full := path.Join(prefix, name)
		xt, yt := x.Mode == filemode.Dir, y.Mode == filemode.Dir
		if xt || yt {
			var th, tk plumbing.Hash
			if xt {
				th = x.Hash
			}
			if yt {
				tk = y.Hash
			}
			if err := w.diffTrees(th, tk, full, out); err != nil {
				return err
			}
		}
		// A file on either side, or a file replaced by a folder.
		if (x.Mode != 0 && !xt) || (y.Mode != 0 && !yt) {
			if _, ok := productionPath(full); ok {
				*out = append(*out, full)
			}
		}
	}
	return nil
}

// entries returns a tree's entries by name; a zero hash is the empty tree.
func (w *historyWalker) entries(h plumbing.Hash) (map[string]object.TreeEntry, error) {
	m := map[string]object.TreeEntry{}
	if h.IsZero() {
		return m, nil
	}
	t, err := object.GetTree(w.stor, h)
	if err != nil {
		return nil, err
	}
	for _, e := range t.Entries {
		m[e.Name] = e
	}
	return m, nil
}

// productionPath tells whether p is a file inside a production overlay,
// "<project folder>/overlays/production/…", and returns the project folder.
func productionPath(p string) (string, bool) {
	parts := strings.Split(p, "/")
	for i := 1; i+2 < len(parts); i++ {
		if parts[i] == "overlays" && parts[i+1] == trailer.Production {
			return strings.Join(parts[:i], "/"), true
		}
	}
	return "", false
}

func identity(s object.Signature) string {
	return s.Name + " <" + s.Email + ">"
}

func subject(msg string) string {
	line, _, _ := strings.Cut(msg, "\n")
	return strings.TrimSpace(line)
}

var (
	mergesLine  = regexp.MustCompile(`^Merges (https?://\S+)\.$`)
	githubMerge = regexp.MustCompile(`^Merge pull request (#[0-9]+) from `)
)

// pullRequest finds the pull request a commit merged: the bot's
// "Merges <url>." line (promote's mergeMessage), else GitHub's default
// subject "Merge pull request #N from …".
func pullRequest(msg string) string {
	for line := range strings.Lines(msg) {
		if !strings.HasPrefix(line, "Merges ") {
			continue
		}
		if m := mergesLine.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			return m[1]
		}
	}
	if m := githubMerge.FindStringSubmatch(subject(msg)); m != nil {
		return m[1]
	}
	return ""
}
