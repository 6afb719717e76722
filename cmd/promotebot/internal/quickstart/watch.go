package quickstart

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// WatchCommits prints CommitLine of each new commit on the config repo's
// main after last, oldest first, every second until ctx ends or stopped is
// closed.
func WatchCommits(ctx context.Context, remote string, last plumbing.Hash, out io.Writer, stopped <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stopped:
			return
		case <-t.C:
		}
		commits, err := newCommits(remote, last)
		if err != nil || len(commits) == 0 {
			continue // a push in progress, or nothing new: look again next second
		}
		for _, c := range slices.Backward(commits) {
			if _, err := fmt.Fprintln(out, CommitLine(c)); err != nil {
				return
			}
		}
		last = commits[0].Hash
	}
}

// newCommits lists main's commits after last, newest first (at most 100,
// along first parents).
func newCommits(remote string, last plumbing.Hash) ([]*object.Commit, error) {
	repo, err := git.PlainOpen(remote)
	if err != nil {
		return nil, err
	}
	ref, err := repo.Reference(plumbing.Main, true)
	if err != nil {
		return nil, err
	}
	var out []*object.Commit
	for h := ref.Hash(); h != last && len(out) < 100; {
		c, err := repo.CommitObject(h)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
		if c.NumParents() == 0 {
			break
		}
		h = c.ParentHashes[0]
	}
	return out, nil
}

// CommitLine is how the quickstart prints a commit: "commit <sha, 12 hex>
// <subject>".
func CommitLine(c *object.Commit) string {
	subject, _, _ := strings.Cut(c.Message, "\n")
	return "commit " + c.Hash.String()[:12] + " " + subject
}
