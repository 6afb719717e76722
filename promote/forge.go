package promote

import (
	"context"
	"errors"
)

// Forge is where the config repository lives when promotions go through
// pull requests (package gitops/forge).
type Forge interface {
	// OpenPR opens a pull request from head into base, or returns the one
	// head already has (open, or merged), so that a retry never opens two.
	OpenPR(ctx context.Context, r PRRequest) (PR, error)
	// PR reads a pull request as it is now.
	PR(ctx context.Context, number int) (PR, error)
	// Merge merges pull request number if its head is still headSHA, with
	// the configured method and this commit message, and returns the merge
	// commit. It returns an error wrapping ErrNotMergeable (saying why) when
	// GitHub will not merge yet, ErrHeadMoved when the head moved or the
	// branch conflicts with its base.
	Merge(ctx context.Context, number int, headSHA, title, message string) (string, error)
	// Close closes pull request number and deletes its branch.
	Close(ctx context.Context, number int, branch string) error
}

// PRRequest is a pull request to open.
type PRRequest struct {
	Head, Base  string
	Title, Body string
}

// PR is a pull request as the domain sees it.
type PR struct {
	Number   int
	URL      string
	HeadSHA  string
	Open     bool
	Merged   bool
	MergeSHA string
	MergedBy string // GitHub login of whoever merged it
	// Mergeable is GitHub's mergeable_state: clean, blocked, behind,
	// unstable, dirty, unknown …
	Mergeable string
}

// ErrNotMergeable: GitHub will not merge the pull request yet (required
// checks or reviews); the wrapping error says why.
var ErrNotMergeable = errors.New("not mergeable yet")

// ErrHeadMoved: the pull request's head is not the one given, or its branch
// conflicts with the base; the branch must be rebuilt on the new base.
var ErrHeadMoved = errors.New("pull request head moved or conflicts")
