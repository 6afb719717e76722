// Package history reads the config repository's history as an auditor does:
// one change per commit with promotebot's trailers, and one per project
// whose production a commit changed (it renders differently) without the
// bot's production trailers for it, with signatures checked when asked; and
// judges it (Check): who approved and promoted what, and which production
// changes did not go through the bot; and measures it (DORA): the DORA
// figures of production, per project and overall.
package history

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/gitops/trailer"
)

// Change is one change of the config repository's history as an auditor
// reads it: what a commit's promotebot trailers say, and one Change without
// trailers per project whose production the commit changed (it renders
// differently) that its trailers do not cover. The JSON names are the audit
// command's output contract.
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
	// trailers the project whose production changed (Options.ProjectPaths,
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
	// BuiltAt is when CI built the image (Promotebot-Built-At) and
	// ReceivedAt when the bot received the build (Promotebot-Received-At),
	// in UTC; null when the commit does not say (older history, or CI
	// sent no builtAt).
	BuiltAt    *time.Time `json:"builtAt"`
	ReceivedAt *time.Time `json:"receivedAt"`
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
	// Trailers tells whether the change is what promotebot's trailers say
	// (the commit's own, or for a merge, those of the branch it merged);
	// false for a production change they do not cover.
	Trailers bool `json:"trailers"`
	// BotMade tells whether it carries a Promotebot-Build,
	// Promotebot-Rollback-Of or Promotebot-Teardown trailer, which only
	// the bot writes.
	BotMade bool `json:"botMade"`
	// Root is set for the repository's first commit.
	Root bool `json:"root"`
	// Paths, for a change without trailers, lists the files production
	// reads that it changed: the project folder but its other overlays.
	Paths []string `json:"paths"`
	// Claims, for a change without trailers of a commit that has some, is
	// what they say instead: "qa/<env> of <project>", "production of
	// <project>".
	Claims string `json:"claims"`
	// BeyondMerged, for a change without trailers made by a merge whose
	// trailers cover the project, is the merged branch head: production
	// after the merge renders as on none of its parents.
	BeyondMerged string `json:"beyondMerged"`
	// QAPinned, for a QA change, tells whether the commit really deployed
	// Image: a project folder it changed pins it in
	// overlays/qa/<env>/kustomization.yaml.
	QAPinned bool `json:"qaPinned"`
	// Malformed lists the trailers that could not be read ("Key: value"):
	// they count for nothing.
	Malformed []string `json:"malformed"`
	// RollbackOf, for a rollback, is its Promotebot-Rollback-Of trailer:
	// the build production ran, whose image an earlier one replaced.
	RollbackOf string `json:"rollbackOf"`
	// Reason is the Promotebot-Reason trailer: why it was rolled back.
	Reason string `json:"reason"`
	// RollbackPinned, for a production rollback, tells whether the commit
	// did what a rollback does and nothing more: of the files production
	// reads in the project's folder, it changed only
	// overlays/production/kustomization.yaml, and there only the images
	// entry of Image's repository, which gives Image now.
	RollbackPinned bool `json:"rollbackPinned"`
	// Teardown, for the removal of a QA environment, is its
	// Promotebot-Teardown trailer: why ("branch-deleted", "tag-deleted",
	// "expired", "by <name> <slack:U…>").
	Teardown string `json:"teardown"`
	// TeardownRemoved, for a teardown, tells whether the commit did what a
	// teardown does and nothing more: it removed the folder
	// overlays/qa/<env> of the project and environment its trailers name,
	// which was there before, and changed no other file.
	TeardownRemoved bool `json:"teardownRemoved"`

	// guess, while Read walks, marks a production change whose project was
	// guessed from its folder's name (settle).
	guess *guess
	// pins, for a production change without trailers, are the images the
	// production overlay pins after it (normalized): production ran them
	// from then on, which a later rollback may go back to.
	pins []string
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
	// ProjectPaths maps a project's folder ("apps/hello") to its id. Any
	// other folder with overlays/production/kustomization.yaml is a project
	// too, named by its last element.
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
// Every commit is diffed against its first parent (a merge against every
// parent) to find the projects whose production it changed: a project's
// production overlay is rendered before and after, but only when the files
// it reads changed (productionKey) and the commit's trailers do not cover
// it, so the bot's own commits and QA-only changes render nothing.
func Read(ctx context.Context, src string, opts Options) ([]Change, error) {
	var changes []Change
	err := Walk(ctx, src, opts, func(c Change) error {
		changes = append(changes, c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return changes, nil
}

// Walk calls fn with each change Read would return, in the same order
// (newest first), as the walk finds them, so that nothing but what fn keeps
// stays in memory. An error from fn stops the walk and is returned.
func Walk(ctx context.Context, src string, opts Options, fn func(Change) error) (err error) {
	if opts.Branch == "" {
		opts.Branch = "main"
	}
	if opts.KeyRing != "" {
		if _, err := openpgp.ReadArmoredKeyRing(strings.NewReader(opts.KeyRing)); err != nil {
			return fmt.Errorf("key ring: %w", err)
		}
	}
	dir, cleanup, err := clone.ForReading(ctx, src, opts.Branch, opts.Auth)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, cleanup()) }()
	stor, repo, err := openForReading(dir)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, stor.Close()) }()
	ref, err := repo.Reference(plumbing.NewBranchReferenceName(opts.Branch), true)
	if err != nil {
		return fmt.Errorf("branch %s of %s: %w", opts.Branch, clone.RedactURL(src), err)
	}
	packs, err := openPacks(stor.Filesystem())
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closePacks(packs)) }()
	w := &historyWalker{stor: stor, packs: packs, opts: opts, learned: map[string]string{}, objects: newObjectCache(),
		renders: map[string][]rendered{}}
	return w.walk(ctx, ref.Hash(), fn)
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
	stor    *filesystem.Storage
	packs   []*pack
	opts    Options
	objects *objectCache          // trees and their delta bases, by hash
	renders map[string][]rendered // by folder, newest first (render)
	// renderBytes is the size of the renders kept.
	renderBytes int
	// learned names the project of a folder, without Options.ProjectPaths:
	// the project of the newest QA commit of the bot that deployed into that
	// folder alone (see projectID).
	learned map[string]string
	// taught is what learned is at the end of the walk (learnAll); nil
	// until a guessed change needs it.
	taught map[string]string
}

// walk follows first parents from tip to the root and gives fn each change
// found, in order. A production change whose project was guessed from its
// folder's name is judged again first (settle) with the project that older
// commits name.
func (w *historyWalker) walk(ctx context.Context, tip plumbing.Hash, fn func(Change) error) error {
	c, err := w.commit(tip)
	if err != nil {
		return err
	}
	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		parents, err := w.parents(c)
		if err != nil {
			return err
		}
		found, err := w.changesOf(c, parents)
		if err != nil {
			return err
		}
		var older plumbing.Hash
		if len(parents) > 0 {
			older = parents[0].Hash
		}
		for _, ch := range found {
			keep, err := w.settle(ctx, older, &ch)
			if err != nil {
				return err
			}
			if !keep {
				continue
			}
			if err := fn(ch); err != nil {
				return err
			}
		}
		if len(parents) == 0 {
			return nil
		}
		c = parents[0]
	}
}

// parents reads a commit's parents, in order. The walk reads each commit
// once: the first parent is the next commit it looks at.
func (w *historyWalker) parents(c *object.Commit) ([]*object.Commit, error) {
	parents := make([]*object.Commit, len(c.ParentHashes))
	for i, h := range c.ParentHashes {
		p, err := w.commit(h)
		if err != nil {
			return nil, err
		}
		parents[i] = p
	}
	return parents, nil
}

// guess is what a production change of a folder whose project was guessed
// from the folder's name needs to be judged again once an older QA commit
// of the bot has named the folder's project (learn).
type guess struct {
	folder string
	facts  trailerFacts
}

// settle judges a change of a guessed folder again with the project that
// the history older than its commit teaches for that folder (learnAll from
// older, its first parent, zero for the root; read on the first guess): a
// change the commit's own production trailers cover for that project is no
// person's change after all (false). A folder is guessed only while no
// newer commit taught its project, so what the history from the first
// guess's parent teaches serves every later (older) guess too.
func (w *historyWalker) settle(ctx context.Context, older plumbing.Hash, ch *Change) (bool, error) {
	g := ch.guess
	if g == nil {
		return true, nil
	}
	ch.guess = nil
	if w.taught == nil {
		taught, err := w.learnAll(ctx, older)
		if err != nil {
			return false, err
		}
		w.taught = taught
	}
	if id := w.taught[g.folder]; id != "" && id != ch.Project {
		if g.facts.covers(id) {
			return false, nil
		}
		ch.Project = id
	}
	return true, nil
}

// learnAll reads the first-parent history from tip (zero: none) to the
// root for what learn takes from it, and returns the project of each folder
// it names.
func (w *historyWalker) learnAll(ctx context.Context, tip plumbing.Hash) (map[string]string, error) {
	taught := map[string]string{}
	if tip.IsZero() {
		return taught, nil
	}
	for h, n := tip, 0; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		c, err := w.commit(h)
		if err != nil {
			return nil, err
		}
		var first plumbing.Hash
		if len(c.ParentHashes) > 0 {
			first = c.ParentHashes[0]
		}
		if w.opts.matchesTime(c.Committer.When.UTC()) {
			if err := w.learnFrom(c, taught); err != nil {
				return nil, err
			}
		}
		if first.IsZero() {
			return taught, nil
		}
		h = first
	}
}

// learnFrom adds to taught what learn takes from the commit c.
func (w *historyWalker) learnFrom(c *object.Commit, taught map[string]string) error {
	parents, err := w.parents(c)
	if err != nil {
		return err
	}
	m := trailersOf(c, parents)
	if !m.trailers || !learns(w.opts, m) {
		return nil
	}
	var first plumbing.Hash
	if len(parents) > 0 {
		first = parents[0].TreeHash
	}
	folders, err := w.touched(first, c.TreeHash)
	if err != nil {
		return fmt.Errorf("diff %s: %w", c.Hash, err)
	}
	learnInto(taught, w.opts, folders, m)
	return nil
}

// changesOf returns what one commit of the first-parent line did, filtered:
// its trailers' change, and one change without trailers per project whose
// production it changed that its trailers do not cover.
func (w *historyWalker) changesOf(c *object.Commit, parentCommits []*object.Commit) ([]Change, error) {
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
	m := trailersOf(c, parentCommits)
	parents := make([]plumbing.Hash, len(parentCommits))
	for i, p := range parentCommits {
		parents[i] = p.TreeHash
	}
	var first plumbing.Hash
	if len(parents) > 0 {
		first = parents[0]
	}
	folders, err := w.touched(first, c.TreeHash)
	if err != nil {
		return nil, fmt.Errorf("diff %s: %w", c.Hash, err)
	}
	var changes []Change
	if m.trailers {
		ch := base
		m.fill(&ch)
		w.learn(folders, m)
		ch.QAPinned = w.pinsQA(c.TreeHash, folders, m)
		if m.rollback() {
			if ch.RollbackPinned, err = w.rollbackPinned(first, c.TreeHash, folders, m); err != nil {
				return nil, fmt.Errorf("diff %s: %w", c.Hash, err)
			}
		}
		if m.teardown != "" {
			if ch.TeardownRemoved, err = w.teardownRemoved(first, c.TreeHash, folders, m); err != nil {
				return nil, fmt.Errorf("diff %s: %w", c.Hash, err)
			}
		}
		if w.opts.Matches(ch) {
			changes = append(changes, w.verified(c, ch))
		}
	}
	for _, folder := range folders {
		ch := base
		ch.Project, ch.Environment = w.projectID(folder), trailer.Production
		if len(w.opts.ProjectPaths) == 0 && w.learned[folder] == "" && len(parents) < 2 {
			ch.guess = &guess{folder: folder, facts: m}
		}
		if !w.opts.Matches(ch) {
			continue
		}
		ok, err := w.judgeProduction(c, parents, folder, m, &ch)
		if err != nil {
			return nil, fmt.Errorf("diff %s: %w", c.Hash, err)
		}
		if ok {
			changes = append(changes, w.verified(c, ch))
		}
	}
	return changes, nil
}

// trailersOf reads a commit's trailers. A merge without trailers of its own
// takes those of the branch it merged (its second parent) when they are
// production's: a promotion pull request merged by a person on GitHub has
// GitHub's message.
func trailersOf(c *object.Commit, parents []*object.Commit) trailerFacts {
	m := readMeta(trailer.Parse(c.Message))
	if m.trailers || len(parents) < 2 {
		return m
	}
	if hm := readMeta(trailer.Parse(parents[1].Message)); hm.trailers && hm.env == trailer.Production {
		return hm
	}
	return m
}

// judgeProduction tells whether the commit c changed the production of the
// project in folder in a way its trailers m do not cover, and fills ch with
// it. Trailers cover a project's production when they are the bot's
// production trailers for it; a merge is covered only for what the branch
// it merged brought: production after the merge must render as on one of
// its parents, else what the merge brings beyond the merged branch is a
// change of its own.
func (w *historyWalker) judgeProduction(c *object.Commit, parents []plumbing.Hash, folder string, m trailerFacts, ch *Change) (bool, error) {
	var first plumbing.Hash
	if len(parents) > 0 {
		first = parents[0]
	}
	if m.covers(ch.Project) && len(parents) < 2 {
		return false, nil
	}
	if project, err := w.isProject(folder, first, c.TreeHash); err != nil || !project {
		return false, err
	}
	against := first
	switch {
	case m.covers(ch.Project):
		for _, p := range parents {
			if differs, err := w.productionDiffers(folder, p, c.TreeHash); err != nil || !differs {
				return false, err
			}
		}
		against, ch.BeyondMerged = parents[1], c.ParentHashes[1].String()
	default:
		differs, err := w.productionDiffers(folder, first, c.TreeHash)
		if err != nil || !differs {
			return false, err
		}
		if m.trailers {
			ch.Claims = m.claim()
		}
	}
	paths, err := w.productionFiles(folder, against, c.TreeHash)
	if err != nil {
		return false, err
	}
	ch.Paths = paths
	ch.pins, err = w.productionPins(c.TreeHash, folder)
	return err == nil, err
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
