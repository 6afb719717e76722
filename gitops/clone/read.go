package clone

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// ForReading returns the directory of a repository to read: src itself
// when it is on disk, else a fresh bare clone of branch that cleanup
// removes. Its errors hold no credentials.
func ForReading(ctx context.Context, src, branch string, a Auth) (dir string, cleanup func() error, err error) {
	local := src
	if u, err := url.Parse(src); err == nil && u.Scheme == "file" {
		local = u.Path
	}
	if st, err := os.Stat(local); err == nil && st.IsDir() {
		return local, func() error { return nil }, nil
	}
	tmp, err := os.MkdirTemp("", "promotebot-audit-")
	if err != nil {
		return "", nil, fmt.Errorf("clone %s: %w", RedactURL(src), err)
	}
	cleanup = func() error {
		if err := os.RemoveAll(tmp); err != nil {
			return fmt.Errorf("remove the temporary clone: %w", err)
		}
		return nil
	}
	a = a.withTokenLog()
	auth, err := readAuth(ctx, src, a)
	if err == nil {
		_, err = git.PlainCloneContext(ctx, tmp, true, &git.CloneOptions{
			URL:           src,
			Auth:          auth,
			ReferenceName: plumbing.NewBranchReferenceName(branch),
			SingleBranch:  true,
			Tags:          git.NoTags,
		})
	}
	if err != nil {
		return "", nil, redact(errors.Join(fmt.Errorf("clone %s: %w", RedactURL(src), err), cleanup()), src, a)
	}
	return tmp, cleanup, nil
}

// readAuth returns the auth method for src's endpoint.
func readAuth(ctx context.Context, src string, a Auth) (transport.AuthMethod, error) {
	ep, err := transport.NewEndpoint(src)
	if err != nil {
		return nil, fmt.Errorf("repository url: %w", err)
	}
	if a.usesToken(ep) {
		return a.tokenMethod(ctx)
	}
	return a.method(ep)
}
