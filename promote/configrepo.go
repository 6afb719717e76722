package promote

import (
	"context"
)

// QADeployment is where a build's QA overlay landed.
type QADeployment struct {
	Environment string // "qa/<env>"
	URL         string
	Commit      string // empty when the overlay already held the image
}

// BuildChecker vets a reported build before it is stored; it needs no
// clone of the config repository, so the webhook accepts builds while the
// clone is still being made.
type BuildChecker interface {
	// Check refuses, with ErrInvalid, an image or target the project may not
	// deploy, and gives the environment and URL the target takes when no
	// other target holds them: its plain name.
	Check(p Project, kind Kind, target, image string) (env, url string, err error)
	// Fallback gives the environment and URL the target takes when another
	// target holds its plain name: its own hashed name.
	Fallback(p Project, kind Kind, target string) (env, url string, err error)
}

// ConfigRepo is the config repository as the domain uses it (package gitops).
type ConfigRepo interface {
	BuildChecker
	// DeployQA writes the build's QA overlay, commits it with the build's
	// trailers and pushes it. It takes the environment announced when the
	// build was accepted (b.Environment) whenever that one is free or
	// already the target's. Running it again for the same build changes
	// nothing. Permanent errors (IsPermanent) end the build; others are retried.
	DeployQA(ctx context.Context, p Project, b Build) (QADeployment, error)
	// Promote sets the production overlay's image to the build's, committed
	// with the approvals and the promoter in its trailers, straight to the
	// config branch (direct mode). It returns the commit; running it again
	// for the same build changes nothing. Errors as DeployQA's.
	Promote(ctx context.Context, p Project, b Build, approvals []Approval, promoter Person) (commit string, err error)
	// PromoteBranch is Promote onto branch (a pull request's head), built on
	// the config branch's tip, replacing what branch held. It returns the
	// branch's commit, its message (subject and trailers, for the merge
	// commit), or unchanged when production already runs the image.
	PromoteBranch(ctx context.Context, p Project, b Build, approvals []Approval, promoter Person, branch string) (PromotionCommit, error)
}

// PromotionCommit is the commit a pull request promotes.
type PromotionCommit struct {
	SHA       string
	Subject   string
	Trailers  string // "Key: value" lines
	Unchanged bool   // production already runs the image (SHA is the config tip)
	// Diff is what the change does to the rendered production manifests.
	Diff string
}
